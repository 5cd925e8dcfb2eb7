"""Fixtures for the worker's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from worker.runtime import Runtime


@pytest.fixture(autouse=True)
def close_runtimes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every runtime a test makes is closed after it, as a worker process closes its own:
    its sending loop, the senders on it and the providers' connections."""
    made: list[Runtime] = []
    build = Runtime.__init__

    def init(self: Runtime, *args, **kwargs) -> None:
        build(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(Runtime, "__init__", init)
    yield
    for runtime in made:
        runtime.close()
