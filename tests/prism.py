"""Twilio's own API description served by Stoplight Prism (``../shared/twilio-oai``): the
independent judge of what the Twilio adapter sends. Prism answers 422 with the violations
when a request breaks the description, 401 without basic auth, 201 otherwise.

Installed by ``make prism`` (``make test`` does it first; npm, about 10 s); started once
per test session on a free port.
"""

from __future__ import annotations

import os
import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRISM = ROOT / ".cache" / "prism" / "node_modules" / ".bin" / "prism"
DESCRIPTION = ROOT.parent / "shared" / "twilio-oai" / "twilio_api_v2010.json"
STARTUP_SECONDS = 90


class PrismMissing(RuntimeError):
    """Prism or Twilio's description is not on this machine; the message says how to fix."""


@contextmanager
def prism(port: int) -> Iterator[str]:
    """Run ``prism mock`` on ``port`` and yield its base URL once it listens.

    Raises:
        PrismMissing: not installed, or the description is not found.
        RuntimeError: it did not start within ``STARTUP_SECONDS``.
    """
    description = Path(os.environ.get("LOA_TWILIO_OAI", DESCRIPTION))
    if not PRISM.exists():
        raise PrismMissing(f"Prism is not installed at {PRISM}: run `make prism`")
    if not description.exists():
        raise PrismMissing(f"Twilio's API description is not at {description}")
    command = [str(PRISM), "mock", "-h", "127.0.0.1", "-p", str(port), str(description)]
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
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError("Prism did not start in time") from None
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
