"""Run a local fake gateway (``providers.fakes``) in its own process, and talk to it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass
class FakeGateway:
    url: str
    process: subprocess.Popen
    #: The fake's first line (``listening on …``): where its protocol is served.
    banner: str = ""

    @property
    def where(self) -> dict[str, Any]:
        """The provider settings that point at this fake: an SMSC's ``host`` and
        ``port`` (``smpp://HOST:PORT`` in its banner), else an HTTP ``base_url``."""
        found = re.search(r"smpp://([^:\s]+):(\d+)", self.banner)
        if found:
            return {"host": found[1], "port": int(found[2])}
        return {"base_url": self.url}

    def _call(self, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            self.url + path, data=data, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())

    def faults(self, *faults: dict[str, Any]) -> None:
        self._call("/_fake/faults", list(faults))

    def latency(self, ms: float) -> None:
        self._call("/_fake/config", {"latency_ms": ms})

    def throttle(
        self, every: int = 0, hidden_rate: float = 0.0, retry_after: float | None = None
    ) -> None:
        """Answer every ``every``-th request 429, or any beyond ``hidden_rate`` a second."""
        config = {"throttle_every": every, "hidden_rate": hidden_rate}
        self._call("/_fake/config", {**config, "throttle_retry_after": retry_after})

    def received(self) -> list[tuple[float, str, str, str]]:
        """Every request, in arrival order: (time, phone, RequestId, answer)."""
        return [tuple(row) for row in self._call("/_fake/received")["received"]]

    def sessions(self) -> dict[str, Any]:
        """The fake SMSC's sessions: ``binds``, ``unbinds``, ``open`` connections."""
        return self._call("/_fake/sessions")

    def reset(self) -> None:
        self._call("/_fake/reset", {})


@contextmanager
def fake_gateway(module: str = "providers.fakes.esms", *args: str) -> Iterator[FakeGateway]:
    """Start ``python -m module --port 0 …`` and yield it once it listens."""
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--port", "0", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()  # blocks until the server listens (or dies)
        if not line.startswith("listening on "):
            raise RuntimeError(f"{module} did not start: {line!r}")
        yield FakeGateway(line.split()[-1], process, line.strip())
    finally:
        process.kill()
        process.wait()
