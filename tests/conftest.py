"""Fixtures shared by every test, in the style of dramatiq's own: backends are parameters.

- ``ledger_url``: a fresh ledger per test, on SQLite (a temp file) and on PostgreSQL (a
  database created for the test and dropped after it).
- ``broker``: dramatiq's ``StubBroker`` and a real ``RedisBroker`` with its own namespace,
  whose keys are deleted after the test.

PostgreSQL and Redis come from ``LOA_TEST_POSTGRES_URL`` and ``LOA_TEST_REDIS_URL``
(defaults: the local servers). When one does not answer, its tests are skipped, except
under CI (``CI`` set), where a missing service fails the run instead of hiding it.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import ExitStack

import dramatiq
import pytest
import redis
import sqlalchemy as sa
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from hypothesis import HealthCheck, settings

from ledger.db import make_engine

# Property tests judge what is computed, never how fast: hypothesis's per-example deadline
# (200 ms) and its too-slow health check fail on a loaded machine, not on a broken rule.
settings.register_profile(
    "loa", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("loa")

POSTGRES_URL = os.environ.get(
    "LOA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("LOA_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _unavailable(what: str, exc: Exception) -> None:
    message = f"{what} is not answering ({exc}); set LOA_TEST_{what.upper()}_URL"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def sqlite_url(tmp_path, request, migrated) -> str:
    """A ledger file of this test's own: none yet, or migrated when the test asks for the
    ``engine`` too."""
    path = tmp_path / "ledger.db"
    if "engine" in request.fixturenames:
        shutil.copyfile(migrated("sqlite"), path)
    return f"sqlite:///{path.as_posix()}"


@pytest.fixture
def postgres_url(request, migrated) -> Iterator[str]:
    """A database of its own for this test, dropped afterwards: empty, or migrated (a copy
    of a migrated template) when the test asks for the ``engine`` too."""
    from tests.rig import scratch_database

    with ExitStack() as stack:
        try:
            template = migrated("postgres") if "engine" in request.fixturenames else None
            url = stack.enter_context(scratch_database(POSTGRES_URL, template=template))
        except sa.exc.OperationalError as exc:
            _unavailable("postgres", exc)
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request) -> str:
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def engine(ledger_url):
    """A migrated, empty ledger on each backend: a copy of one this process migrated once
    (``migrated``; ``sqlite_url`` and ``postgres_url`` copy it when a test asks for the
    engine), for a test's ledger is new and every migration the same: running them for
    each of a thousand tests cost a minute of the suite."""
    engine = make_engine(ledger_url)
    yield engine
    engine.dispose()


def _admin() -> sa.Engine:
    from ledger.db import normalise_url

    return sa.create_engine(normalise_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def migrated(tmp_path_factory) -> Iterator[object]:
    """``migrated(backend)``: a ledger at the newest migration, made once per test process
    (a SQLite file's path; a PostgreSQL database's name, its template, dropped at the end)."""
    from ledger.migrate import upgrade

    made: dict[str, str] = {}

    def get(backend: str) -> str:
        if backend not in made:
            if backend == "sqlite":
                path = tmp_path_factory.mktemp("migrated") / "ledger.db"
                engine = make_engine(f"sqlite:///{path.as_posix()}")
                upgrade(engine)
                engine.dispose()
                made[backend] = str(path)
            else:
                name = f"loa_template_{uuid.uuid4().hex[:12]}"
                with _admin().connect() as conn:
                    conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
                url = sa.engine.make_url(POSTGRES_URL).set(database=name)
                engine = make_engine(url.render_as_string(hide_password=False))
                upgrade(engine)
                engine.dispose()  # a template has no one connected to it
                made[backend] = name
        return made[backend]

    yield get
    if "postgres" in made:
        with _admin().connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{made["postgres"]}" WITH (FORCE)')


@pytest.fixture
def redis_namespace() -> Iterator[str]:
    """A Redis key prefix of its own; every key under it is deleted afterwards."""
    namespace = f"loa-test-{uuid.uuid4().hex[:12]}"
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        _unavailable("redis", exc)
    yield namespace
    for key in client.scan_iter(match=f"{namespace}*"):
        client.delete(key)
    client.close()


@pytest.fixture
def stub_broker() -> Iterator[StubBroker]:
    broker = StubBroker()
    yield broker
    broker.flush_all()
    broker.close()


@pytest.fixture
def redis_broker(redis_namespace) -> Iterator[RedisBroker]:
    broker = RedisBroker(url=REDIS_URL, namespace=redis_namespace)
    yield broker
    broker.flush_all()
    broker.close()


@pytest.fixture(autouse=True)
def _restore_global_broker() -> Iterator[None]:
    """Tests install brokers and runtimes; put the process's own back afterwards."""
    from worker import runtime

    before_broker = dramatiq.get_broker()
    before_runtime = runtime.set_runtime(None)
    runtime.set_runtime(before_runtime)
    yield
    from worker.queues.broker import use_broker

    use_broker(before_broker)
    runtime.set_runtime(before_runtime)
