"""The reaper, run by every ``loa worker`` process: messages a dead worker left ``sending``
past the lease are settled without anyone running ``loa reap`` (which still exists, for
cron and for hands). Several reapers at once are safe: each move is conditional, so a
row is settled, and its batch enqueued again, by exactly one of them."""

from __future__ import annotations

import threading
from typing import Any

from dramatiq.middleware import Middleware

from worker.logging import get_logger

log = get_logger("loa.reaper")


def reap_interval(lease_seconds: int) -> float:
    """How often to look: a third of the lease, between 5 s and a minute."""
    return min(60.0, max(5.0, lease_seconds / 3))


class Reaper(Middleware):
    """Runs ``worker.dispatch.reap_stale`` in a daemon thread of each worker process."""

    def __init__(self) -> None:
        self._stop = threading.Event()

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        threading.Thread(target=self._run, name="loa-reaper", daemon=True).start()

    def before_worker_shutdown(self, broker: Any, worker: Any) -> None:
        self._stop.set()

    def _run(self) -> None:
        from worker.dispatch import reap_stale
        from worker.runtime import get_runtime

        runtime = get_runtime()
        interval = reap_interval(runtime.settings.sending_lease_seconds)
        while not self._stop.wait(interval):
            try:
                reap_stale(runtime)
            except Exception as exc:  # the ledger may be away for a moment: try next time
                log.warning("reaper.failed", error=type(exc).__name__)
