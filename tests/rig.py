"""Loa as production runs it, on one machine: real ``loa`` processes on Redis and
PostgreSQL, sending to a fake gateway (``providers.fakes``) that records every request.

Used by the failure tests (``tests/failures``) and the benchmarks (``benchmarks/``)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import sqlalchemy as sa

from campaigns.phones import CARRIER_PREFIXES
from ledger.db import normalise_url

ROOT = Path(__file__).resolve().parents[1]
#: Mobile prefixes in use (after the 0): the carriers' two-digit ranges.
PREFIXES = tuple(p for p in CARRIER_PREFIXES if len(p) == 2)
PROVIDER = "fake"


@contextmanager
def scratch_database(
    admin_url: str, prefix: str = "loa_test", template: str | None = None
) -> Iterator[str]:
    """A PostgreSQL database of its own (a copy of ``template`` when given), dropped
    afterwards; yields its URL.

    Raises:
        sqlalchemy.exc.OperationalError: the server is not answering.
    """
    admin = sa.create_engine(normalise_url(admin_url), isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            copy = f' TEMPLATE "{template}"' if template else ""
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"{copy}')
    except sa.exc.OperationalError:
        admin.dispose()
        raise
    try:
        yield normalise_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve the ASGI ``app`` with uvicorn on a free loopback port, in a thread, for the
    block; yields its base URL."""
    import threading

    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120  # bounds a hang: it starts in well under a second
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)  # waiting for a server to listen; `started` decides
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def missing(message: str) -> NoReturn:
    """A program a test needs is not installed: under CI (``CI`` set), where ``.ci/run``
    installs it, the test fails rather than pass unseen as a skip; elsewhere it is skipped."""
    import pytest

    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def national(i: int) -> str:
    """The ``i``-th of a run of distinct, valid Vietnamese mobile numbers (0xx xxx xxxx)."""
    return f"0{PREFIXES[i % len(PREFIXES)]}{i // len(PREFIXES):07d}"


def as_national(phone: str) -> str:
    """What a gateway receives for a number (84…), back to the list's national form."""
    return "0" + phone.removeprefix("+").removeprefix("84")


@dataclass
class Rig:
    """Settings and helpers for one run; ``provider`` holds the fake provider's fields."""

    workdir: Path
    database_url: str
    redis_url: str
    namespace: str
    gateway_url: str
    provider: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    #: More provider instances by name (their full settings), beside ``fake``.
    others: dict[str, dict[str, Any]] = field(default_factory=dict)
    workers: list[subprocess.Popen] = field(default_factory=list)
    _engine: sa.Engine | None = field(default=None, repr=False)

    @property
    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("LOA_") and k not in ("COLUMNS", "LINES", "TERMINAL_WIDTH")
        }
        env.update(
            LOA_DATABASE_URL=self.database_url,
            LOA_REDIS_URL=self.redis_url,
            LOA_REDIS_NAMESPACE=self.namespace,
            LOA_LOG_LEVEL="WARNING",
            LOA_LOG_FORMAT="json",
            PYTHONPATH=str(ROOT),
        )
        fake = {
            "type": "esms",
            "api_key": "fake-key",
            "secret_key": "fake-secret",
            "base_url": self.gateway_url,
            **self.provider,
        }
        for instance, fields in {PROVIDER: fake, **self.others}.items():
            for name, value in fields.items():
                env[f"LOA_PROVIDERS__{instance.upper()}__{name.upper()}"] = str(value)
        for name, value in self.settings.items():
            env[f"LOA_{name.upper()}"] = str(value)
        return env

    def loa(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "scripts", *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise RuntimeError(f"loa {' '.join(args)} failed: {done.stderr[-2000:]}")
        return done

    def start_worker(self, processes: int = 1, threads: int = 8) -> subprocess.Popen:
        """``loa worker`` in a process group of its own (master and worker processes)."""
        env = {**self.env, "dramatiq_prom_host": "127.0.0.1"}
        env["LOA_METRICS_PORT"] = str(free_port())
        command = ["worker", "--processes", str(processes), "--threads", str(threads)]
        worker = subprocess.Popen(
            [sys.executable, "-m", "scripts", *command],
            cwd=self.workdir,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(self.workdir / f"worker-{len(self.workers)}.log", "w"),  # noqa: SIM115
            start_new_session=True,
        )
        self.workers.append(worker)
        return worker

    def kill(self, worker: subprocess.Popen) -> None:
        """``kill -9`` every process of that worker: no shutdown, no acknowledgement."""
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()

    def stop_all(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
        for worker in self.workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()

    def write_campaign(
        self,
        campaign_id: str,
        recipients: int,
        validity: str = "6h",
        provider: str = PROVIDER,
        routing: str = "",
    ) -> tuple[Path, Path]:
        """A campaign file (with ``routing``, the body of a [routing] table, when given)
        and a list of ``recipients`` distinct numbers."""
        spec = self.workdir / f"{campaign_id}.toml"
        spec.write_text(
            f'id = "{campaign_id}"\n'
            'name = "Chào mừng du khách đến Ninh Thuận"\n'
            'category = "public_service"\n'
            'brandname = "NinhThuan"\n'
            f'provider = "{provider}"\n'
            f'validity = "{validity}"\n'
            "[messages]\n"
            'vi = "Ninh Thuận chào đón quý khách. Cài Bluezone: https://bluezone.gov.vn"\n'
            + (f"[routing]\n{routing}\n" if routing else ""),
            encoding="utf-8",
        )
        listing = self.workdir / f"{campaign_id}.csv"
        with listing.open("w", encoding="utf-8") as out:
            out.write("Số điện thoại\n")
            out.writelines(f"{national(i)}\n" for i in range(recipients))
        return spec, listing

    def launch(self, campaign_id: str, recipients: int, **kwargs: Any) -> dict[str, Any]:
        spec, listing = self.write_campaign(campaign_id, recipients, **kwargs)
        return json.loads(
            self.loa("campaign", "launch", str(spec), "-r", str(listing), "--json").stdout
        )

    def rows(self, sql: str, **params: Any) -> list[Any]:
        """Rows of a query on the ledger."""
        if self._engine is None:
            self._engine = sa.create_engine(self.database_url, pool_size=1)
        with self._engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params).all())

    def statuses(self, campaign_id: str) -> Counter[str]:
        """Recipients per status, straight from the ledger."""
        rows = self.rows(
            "SELECT m.status, count(*) FROM messages m JOIN campaigns c "
            "ON c.key = m.campaign_key WHERE c.id = :id GROUP BY m.status",
            id=campaign_id,
        )
        return Counter({status: count for status, count in rows})

    def recipients_in(self, campaign_id: str, status: str) -> set[str]:
        rows = self.rows(
            "SELECT m.recipient FROM messages m JOIN campaigns c "
            "ON c.key = m.campaign_key WHERE c.id = :id AND m.status = :s",
            id=campaign_id,
            s=status,
        )
        return {as_national(row[0]) for row in rows}

    def wait_until(self, campaign_id: str, done, timeout: float) -> Counter[str]:
        """Poll the ledger until ``done(statuses)``; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            counts = self.statuses(campaign_id)
            if done(counts):
                return counts
            if time.monotonic() > deadline:
                raise AssertionError(f"{campaign_id} not done after {timeout} s: {dict(counts)}")
            time.sleep(0.5)  # polling an outcome, not synchronising: the check above decides

    def wait_final(self, campaign_id: str, recipients: int, timeout: float = 300) -> Counter[str]:
        unsettled = ("queued", "sending")
        return self.wait_until(
            campaign_id,
            lambda c: sum(c.values()) == recipients and not any(c[s] for s in unsettled),
            timeout,
        )
