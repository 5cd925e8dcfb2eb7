"""Housekeeping for ``loa worker``: one process of its own next to the worker processes
(``worker.processes.supervisor``), each chore in a daemon thread:

- **recovery** (``worker.upkeep.recovery``, every ``RECOVERY_INTERVAL_SECONDS``): dead workers'
  jobs given back to their queues, the rows of claims no live worker holds settled,
  results spooled while the ledger was away written to it; and every
  ``ORPHANS_INTERVAL_SECONDS``, the batches of running campaigns with queued rows and no
  job in Redis enqueued again;
- the **reaper**: messages a dead worker left ``sending`` past the lease are settled
  without anyone running ``loa reap`` (which still exists, for cron and for hands): the
  net under recovery, and the only rule without Redis. Several reapers at once are
  safe: each move is conditional, so a row is settled, and its batch enqueued again, by
  exactly one of them.
- the **sealer**: new events are chained into the audit log (``ledger.chain``) within a
  few seconds. Sealers take turns under a lock; one that finds another at work skips.
- the **receipt drainer**: receipts the webhook stored are applied to their messages
  (``ledger.receipts``); drainers share the work (``SKIP LOCKED``).
- the **fallback sweep** (``worker.upkeep.fallback``, every 2 s): a multi-channel
  campaign's next channel (SMS after Zalo) queued for those the channel before could not
  reach or did not deliver to in time, spared for those it reached;
- the **finaliser** (``ledger.finaliser``): no final receipt within the provider's window
  -> ``unknown``; still queued past validity -> ``expired``.
- the **arrivals pruner**: event ids and visitors older than the rules' dedupe window
  (``LOA_ARRIVALS_RULES``) are forgotten, so those tables hold one window, not history.
- the **verifier**: once a day, the whole audit chain recomputed and the verdict recorded
  (``ledger.chain.record_verdict``), so reports can say when the log was last proven
  intact.

Why a process of its own, not threads in each worker process: a worker process sends
thousands of messages a second from one interpreter, and every thread in it shares one
lock on that interpreter. Sealing hashes every event and draining parses every receipt:
measured in the sending process, the sealer alone took a fifth of the time the senders
had. Here the chores use another core, and a machine running ``loa worker --processes 8``
does each chore once, not eight times. (Every machine's ``loa worker`` still has its own
housekeeper: they coordinate through the ledger, as the notes above say.)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from worker.logging import get_logger

if TYPE_CHECKING:
    from worker.runtime import Runtime

log = get_logger("loa.housekeeping")

#: How often recovery looks for dead workers' jobs and claims, and replays the spool.
RECOVERY_INTERVAL_SECONDS = 5.0
#: How often, at most, it looks for running campaigns' batches that lost their jobs (a
#: scan of their queued rows and of the jobs in Redis): half LOA_ORPHAN_AFTER_SECONDS.
ORPHANS_INTERVAL_SECONDS = 30.0
#: How often the housekeeper looks whether a checkpoint is due.
CHECKPOINT_CHECK_SECONDS = 60
#: How often the housekeeper tries to seal new events.
SEAL_INTERVAL_SECONDS = 2.0
#: How much the housekeeping process yields the CPU to the workers (``nice``).
HOUSEKEEPING_NICENESS = 10
#: How often it decides multi-channel campaigns' fallbacks (``worker.upkeep.fallback``).
FALLBACK_INTERVAL_SECONDS = 2.0
#: How often it applies receipts the webhook stored.
RECEIPTS_INTERVAL_SECONDS = 1.0
#: How often it runs the finaliser (its moves are conditional: any number of finalisers
#: at once settle each row once).
FINALISE_INTERVAL_SECONDS = 300.0
#: How often the verifier looks whether the chain was verified in the last day.
VERIFY_CHECK_SECONDS = 3600.0
VERIFY_EVERY = 86400.0
#: How often arrivals' event ids and visitors past the dedupe window are forgotten.
PRUNE_INTERVAL_SECONDS = 3600.0


def reap_interval(lease_seconds: int) -> float:
    """How often to look: a third of the lease, between 5 s and a minute."""
    return min(60.0, max(5.0, lease_seconds / 3))


@dataclass
class Chore:
    """``job(runtime)``, every ``interval(runtime)`` seconds."""

    name: str
    job: Callable[[Runtime], object]
    interval: Callable[[Runtime], float]

    def run(self, runtime: Runtime, stop: threading.Event) -> None:
        """Until ``stop`` is set. A failing run (the ledger away for a moment) is logged
        and tried again next time."""
        interval = self.interval(runtime)
        while not stop.wait(interval):
            try:
                self.job(runtime)
            except Exception as exc:
                log.warning(f"{self.name}.failed", error=type(exc).__name__)


def _reap(runtime: Runtime) -> object:
    from worker.upkeep.recovery import reap_stale

    return reap_stale(runtime)


def _recover(runtime: Runtime) -> object:
    """Each step on its own: one that fails (Redis or the ledger away) does not keep the
    others from running."""
    from worker.upkeep.recovery import maintain_queues, reap_abandoned

    done = {}
    steps = (
        ("queues", maintain_queues),
        ("claims", reap_abandoned),
        ("spool", lambda r: r.spool.replay(r.engine)),
    )
    for name, step in steps:
        try:
            done[name] = step(runtime)
        except Exception as exc:
            log.warning("recovery.failed", step=name, error=type(exc).__name__)
    return done


def _orphans(runtime: Runtime) -> object:
    from worker.upkeep.recovery import requeue_orphans

    return requeue_orphans(runtime)


#: How often the sealer looks at every event, not only those near the highest sealed.
SEAL_EVERYWHERE_SECONDS = 60.0
_last_everywhere = [0.0]


def _seal(runtime: Runtime) -> object:
    import time

    from ledger.chain import seal

    everywhere = time.monotonic() - _last_everywhere[0] >= SEAL_EVERYWHERE_SECONDS
    if everywhere:
        _last_everywhere[0] = time.monotonic()
    return seal(runtime.engine, wait=False, everywhere=everywhere)


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


def _verify(runtime: Runtime) -> object:
    from datetime import timedelta

    from ledger.audit.verify import ForeignKey, verify_log
    from ledger.chain import record_verdict, verified_within

    if verified_within(runtime.engine, timedelta(seconds=VERIFY_EVERY)):
        return None  # another housekeeper, or an auditor, did it
    try:
        verdict = verify_log(runtime.engine, runtime.settings.audit_key())
    except ForeignKey as exc:
        # The roots are still checked; but a report must not vouch for a log whose
        # checkpoints its own key did not sign (a mistyped name, or signed again).
        log.error("audit.key_signs_no_checkpoint", why=str(exc))
        verdict = verify_log(runtime.engine)
        verdict.problems.append(f"the ledger's key (LOA_AUDIT_SIGNING_KEY): {exc}")
    record_verdict(runtime.engine, verdict)
    if not verdict.ok:
        log.error("audit.log_altered", problems=len(verdict.problems), **(verdict.broken or {}))
    return verdict


def checkpoint_due(runtime: Runtime) -> object:
    """Sign a checkpoint of the log when a key is set and the newest is older than
    ``LOA_AUDIT_CHECKPOINT_MINUTES`` (any number of housekeepers: the newest one counts).
    Returns the checkpoint, or None."""
    from datetime import timedelta

    import sqlalchemy as sa

    from ledger.audit.log import make_checkpoint
    from ledger.chain import seal_all
    from ledger.schema import checkpoints, now

    seed = runtime.settings.signing_seed()
    if seed is None:
        return None
    every = timedelta(minutes=runtime.settings.audit_checkpoint_minutes)
    with runtime.engine.connect() as conn:
        newest = conn.scalar(sa.select(sa.func.max(checkpoints.c.at)))
    if newest is not None and now() - newest < every:
        return None
    seal_all(runtime.engine)
    return make_checkpoint(runtime.engine, runtime.settings.audit_log_name, seed)


def _prune_arrivals(runtime: Runtime) -> object:
    rules = runtime.settings.arrivals_rules
    if rules is None:
        return None
    from campaigns.arrivals import load_arrivals
    from ledger.arrivals import prune

    window = load_arrivals(rules).rules.once_per
    with runtime.engine.begin() as conn:
        return prune(conn, window)


def _fall_back(runtime: Runtime) -> object:
    from worker.upkeep.fallback import fall_back

    return fall_back(runtime)


def _drain(runtime: Runtime) -> object:
    from ledger.receipts import drain_all

    return drain_all(runtime.engine)


CHORES = (
    Chore("recovery", _recover, lambda _: RECOVERY_INTERVAL_SECONDS),
    Chore(
        "orphans",
        _orphans,
        lambda r: min(ORPHANS_INTERVAL_SECONDS, r.settings.orphan_after_seconds / 2),
    ),
    Chore("reaper", _reap, lambda r: reap_interval(r.settings.sending_lease_seconds)),
    Chore("sealer", _seal, lambda _: SEAL_INTERVAL_SECONDS),
    Chore("receipts", _drain, lambda _: RECEIPTS_INTERVAL_SECONDS),
    Chore("fallback", _fall_back, lambda _: FALLBACK_INTERVAL_SECONDS),
    Chore("finaliser", finalise_now, lambda _: FINALISE_INTERVAL_SECONDS),
    Chore("verifier", _verify, lambda _: VERIFY_CHECK_SECONDS),
    Chore("checkpoints", checkpoint_due, lambda _: CHECKPOINT_CHECK_SECONDS),
    Chore("arrivals", _prune_arrivals, lambda _: PRUNE_INTERVAL_SECONDS),
)


def keep_house() -> int:
    """The housekeeping process (``python -m worker.processes.child housekeeping``): run every
    chore until SIGTERM ends the process (the chores' threads are daemons)."""
    from worker.runtime import get_runtime

    # Its work can wait, the sending loops beside it cannot (a seal pass took a core for
    # most of a second and the send rate dipped by half).
    os.nice(HOUSEKEEPING_NICENESS)
    runtime = get_runtime()
    stop = threading.Event()  # never set: the process ends with the workers
    for chore in CHORES:
        name = f"loa-{chore.name}"
        threading.Thread(target=chore.run, args=(runtime, stop), name=name, daemon=True).start()
    log.info("housekeeping.started", chores=[chore.name for chore in CHORES])
    stop.wait()
    return 0
