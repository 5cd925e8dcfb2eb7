"""Housekeeping run by every ``loa worker`` process, each job in a daemon thread of its own:

- the **reaper**: messages a dead worker left ``sending`` past the lease are settled
  without anyone running ``loa reap`` (which still exists, for cron and for hands).
  Several reapers at once are safe: each move is conditional, so a row is settled, and
  its batch enqueued again, by exactly one of them.
- the **sealer**: new events are chained into the audit log (``ledger.chain``) within a
  few seconds. Sealers take turns under a lock; one that finds another at work skips.
- the **receipt drainer**: receipts the webhook stored are applied to their messages
  (``ledger.receipts``); drainers share the work (``SKIP LOCKED``).
- the **finaliser** (``ledger.finaliser``): no final receipt within the provider's window
  -> ``unknown``; still queued past validity -> ``expired``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dramatiq.middleware import Middleware

from worker.logging import get_logger

if TYPE_CHECKING:
    from worker.runtime import Runtime

log = get_logger("loa.housekeeping")

#: How often each worker process tries to seal new events.
SEAL_INTERVAL_SECONDS = 2.0
#: How often each worker process applies receipts the webhook stored.
RECEIPTS_INTERVAL_SECONDS = 1.0
#: How often each worker process runs the finaliser (its moves are conditional: any
#: number of finalisers at once settle each row once).
FINALISE_INTERVAL_SECONDS = 300.0


def reap_interval(lease_seconds: int) -> float:
    """How often to look: a third of the lease, between 5 s and a minute."""
    return min(60.0, max(5.0, lease_seconds / 3))


class Periodic(Middleware):
    """Runs ``job(runtime)`` every ``interval(runtime)`` seconds in a daemon thread of
    each worker process, until the worker shuts down. A failing run (the ledger away for
    a moment) is logged and tried again next time."""

    def __init__(
        self,
        name: str,
        job: Callable[[Runtime], object],
        interval: Callable[[Runtime], float],
    ) -> None:
        self.name, self.job, self.interval = name, job, interval
        self._stop = threading.Event()

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        threading.Thread(target=self._run, name=f"loa-{self.name}", daemon=True).start()

    def before_worker_shutdown(self, broker: Any, worker: Any) -> None:
        self._stop.set()

    def _run(self) -> None:
        from worker.runtime import get_runtime

        runtime = get_runtime()
        interval = self.interval(runtime)
        while not self._stop.wait(interval):
            try:
                self.job(runtime)
            except Exception as exc:
                log.warning(f"{self.name}.failed", error=type(exc).__name__)


def _reap(runtime: Runtime) -> object:
    from worker.dispatch import reap_stale

    return reap_stale(runtime)


def _seal(runtime: Runtime) -> object:
    from ledger.chain import seal

    return seal(runtime.engine, wait=False)


def finalise_now(runtime: Runtime) -> dict[str, int]:
    """The finaliser with each configured provider's receipt window."""
    from datetime import timedelta

    from ledger.finaliser import finalise

    windows = {}
    for name in runtime.settings.providers:
        try:
            hours = runtime.provider(name).config.receipt_window_hours
        except Exception:  # a provider whose settings broke: the default window
            continue
        windows[name] = timedelta(hours=hours)
    return finalise(runtime.engine, windows)


def finaliser() -> Periodic:
    return Periodic("finaliser", finalise_now, lambda _: FINALISE_INTERVAL_SECONDS)


def _drain(runtime: Runtime) -> object:
    from ledger.receipts import drain_all

    return drain_all(runtime.engine)


def receipts() -> Periodic:
    return Periodic("receipts", _drain, lambda _: RECEIPTS_INTERVAL_SECONDS)


def reaper() -> Periodic:
    return Periodic("reaper", _reap, lambda r: reap_interval(r.settings.sending_lease_seconds))


def sealer() -> Periodic:
    return Periodic("sealer", _seal, lambda _: SEAL_INTERVAL_SECONDS)
