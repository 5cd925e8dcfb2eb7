"""Twilio's own API description served by Stoplight Prism: the
independent judge of what the Twilio adapter sends (kept in ``tests/contracts``). Prism answers 422 with the violations
when a request breaks the description, 401 without basic auth, 201 otherwise.

Installed by ``make prism`` (``make test`` does it first; npm, about 10 s); started once
per test session on a free port.
"""

from __future__ import annotations

import gzip
import hashlib
import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRISM = ROOT / ".cache" / "prism" / "node_modules" / ".bin" / "prism"
#: Twilio's description as published, compressed (provenance: tests/contracts/README.md).
PACKED = ROOT / "tests" / "contracts" / "twilio_api_v2010.json.gz"
SHA256 = "99cae87a6bb1725f71363364cbd30282a13140374b2d5f9bdd5bdfa5d4c8a6d7"
STARTUP_SECONDS = 90


def description() -> Path:
    """Twilio's description, unpacked once into ``.cache`` and checked against its hash."""
    unpacked = ROOT / ".cache" / "twilio-oai" / "twilio_api_v2010.json"
    if not unpacked.exists() or hashlib.sha256(unpacked.read_bytes()).hexdigest() != SHA256:
        data = gzip.decompress(PACKED.read_bytes())
        if hashlib.sha256(data).hexdigest() != SHA256:
            raise PrismMissing(f"{PACKED} is not Twilio's description as published")
        unpacked.parent.mkdir(parents=True, exist_ok=True)
        unpacked.write_bytes(data)
    return unpacked


class PrismMissing(RuntimeError):
    """Prism or Twilio's description is not on this machine; the message says how to fix."""


@contextmanager
def prism(port: int) -> Iterator[str]:
    """Run ``prism mock`` on ``port`` and yield its base URL once it listens.

    Raises:
        PrismMissing: not installed, or the description is not found.
        RuntimeError: it did not start within ``STARTUP_SECONDS``.
    """
    if not PRISM.exists():
        raise PrismMissing(f"Prism is not installed at {PRISM}: run `make prism`")
    command = [str(PRISM), "mock", "-h", "127.0.0.1", "-p", str(port), str(description())]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def drain() -> None:  # Prism logs every request: keep its pipe from filling up
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=drain, daemon=True).start()
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if time.monotonic() > deadline:
                raise RuntimeError("Prism did not start in time")
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                if process.poll() is not None:
                    raise RuntimeError(f"Prism exited at start-up ({process.returncode})") from None
                continue
            if "Prism is listening" in line:
                break
        yield f"http://127.0.0.1:{port}"
    finally:
        assert process.stdout is not None
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()
