"""Fixtures for the worker's tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


@contextmanager
def redis_runtime(
    engine: Any, tmp_path: Path, namespace: str, **settings: Any
) -> Iterator[Runtime]:
    """A runtime on ``engine`` and the tests' Redis (``namespace`` of its own), with its
    dramatiq broker installed, as a ``loa worker`` process has; ``settings`` override.
    The broker's keys are flushed and it is closed afterwards."""
    from dramatiq.brokers.redis import RedisBroker
    from pydantic import SecretStr

    from tests.conftest import REDIS_URL
    from worker.queues.broker import use_broker
    from worker.settings import Settings

    loaded = Settings(
        database_url=SecretStr(engine.url.render_as_string(hide_password=False)),
        redis_url=SecretStr(REDIS_URL),
        redis_namespace=namespace,
        var_dir=tmp_path,
        **settings,
    )
    broker = RedisBroker(url=REDIS_URL, namespace=namespace)
    use_broker(broker, loaded)
    try:
        yield Runtime(loaded, engine=engine)
    finally:
        broker.flush_all()
        broker.close()
