"""Running Loa in one process: dramatiq's in-memory broker with worker threads here.

Used when no Redis is configured (``loa demo``, ``loa campaign launch`` on a laptop):
the jobs would vanish with the process, so the process works them itself and returns
when every recipient of the campaign has a final status, or when nothing is left to do
(with a provider whose receipts come to this process's own binds, when no message
awaits its receipt any more).
No housekeeper runs beside it, so when the work ends this process does the housekeeper's
audit chores itself (``seal_chain``): the events sealed into the chain, and the whole
chain verified when no verification was recorded in the last day.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import dramatiq
from dramatiq.brokers.stub import StubBroker

from campaigns.status import Status
from ledger.summary import CampaignSummary, summarise
from worker.campaign.waiting import explained
from worker.logging import get_logger
from worker.queues.broker import use_broker
from worker.runtime import Runtime, set_runtime

log = get_logger("loa.embedded")

#: How often the ledger is read while waiting (it is also what a progress bar shows).
POLL_SECONDS = 0.2

#: How long an idle worker thread or consumer waits for a message before it looks whether
#: it was told to stop (dramatiq's ``worker_timeout``). Dramatiq's default, a second, made
#: every embedded run (``loa campaign launch``, ``loa demo``) wait about two seconds more
#: at its end, its consumers then its worker threads each running out their wait; in
#: memory, waking ten times a second costs nothing.
STOP_POLL_MS = 100


@contextmanager
def embedded_worker(runtime: Runtime) -> Iterator[StubBroker]:
    """Install an in-memory broker and ``runtime`` for this process and run worker threads
    on it until the block ends."""
    broker = StubBroker()
    use_broker(broker, runtime.settings)
    previous = set_runtime(runtime)
    worker = dramatiq.Worker(
        broker, worker_threads=runtime.settings.worker_threads, worker_timeout=STOP_POLL_MS
    )
    worker.start()
    try:
        _booted(worker)
        yield broker
    finally:
        worker.stop()
        set_runtime(previous)
    # Only when the work ended well: after a failure the error that stopped it is the one
    # to report, and whatever it left unsealed the next run (or `loa audit verify`) seals.
    seal_chain(runtime)


#: The longest a worker's threads may take to begin (seconds).
BOOT_SECONDS = 30.0


def _booted(worker: dramatiq.Worker) -> None:
    """Wait until every thread of ``worker`` runs its loop. A dramatiq thread marks itself
    running as its first step, not when started: a stop that came before that step was
    undone by it, and the thread ran for ever (a launch of nothing, stopped at once, hung
    in ``stop``)."""
    threads = [*worker.workers, *worker.consumers.values()]
    deadline = time.monotonic() + BOOT_SECONDS
    while not all(getattr(thread, "running", True) for thread in threads):
        if time.monotonic() > deadline:
            raise RuntimeError("the in-process worker's threads did not start")
        time.sleep(0.001)  # a thread's first step, a few microseconds away


def seal_chain(runtime: Runtime) -> None:
    """What the housekeeper (``worker.upkeep.housekeeping``) would have done meanwhile:
    every event sealed into the audit chain (``ledger.chain.seal_all``), then, unless a
    verification was recorded within ``VERIFY_EVERY``, the whole chain verified and the
    verdict recorded for reports. A failure is logged, not raised: the campaign's work is
    done, and the events stay in the ledger for the next seal."""
    from sqlalchemy.exc import SQLAlchemyError

    from ledger.chain import record_verdict, seal_all, verified_within, verify
    from worker.upkeep.housekeeping import VERIFY_EVERY

    try:
        sealed = seal_all(runtime.engine)
        if not verified_within(runtime.engine, timedelta(seconds=VERIFY_EVERY)):
            verdict = verify(runtime.engine)
            record_verdict(runtime.engine, verdict)
            if not verdict.ok:
                log.error("audit.chain_broken", **(verdict.broken or {}))
    except SQLAlchemyError as exc:
        log.warning("audit.seal_failed", error=type(exc).__name__)
        return
    log.debug("audit.sealed", events=sealed)


def idle(broker: StubBroker) -> bool:
    """No message waiting, delayed or being worked on."""
    return all(queue.unfinished_tasks == 0 for queue in broker.queues.values())


def wait_for_campaign(
    runtime: Runtime,
    broker: StubBroker | None,
    campaign_id: str,
    *,
    timeout: float,
    on_progress: Callable[[CampaignSummary], None] | None = None,
) -> CampaignSummary:
    """Wait until every recipient is final, the campaign stops running (and nothing of it
    is being sent any more), the in-process
    broker (if given) has nothing left, or ``timeout`` seconds pass; returns the summary
    at that moment. With Redis, other processes do the work and only the ledger is read."""
    deadline = time.monotonic() + timeout
    while True:
        summary = summarise(runtime.engine, campaign_id)
        if on_progress is not None:
            on_progress(summary)
        # A stopped campaign (paused, halted) is returned once what workers had already
        # claimed has settled, so the picture the caller gets does not move any more.
        stopped = summary.stopped and not summary.statuses[Status.SENDING]
        # Returned with what it waits for, if anything (the sending hours …); a broker
        # here means this process sends, so its cooldowns are the real ones.
        if summary.done or stopped or time.monotonic() >= deadline:
            return explained(runtime, summary, cooldowns_here=broker is not None)
        listening = broker is not None and runtime.listening
        # A later channel's messages standing by: this process is the housekeeper that
        # applies the channel's deliveries (the webhook stores them) and decides.
        standing = broker is not None and bool(summary.statuses[Status.STANDBY])
        if listening or standing:
            _apply_receipts(runtime)
        if standing:
            _fall_back(runtime)
        if broker is not None and idle(broker):
            # Read once more: the last job may have finished between the two reads.
            last = summarise(runtime.engine, campaign_id)
            # Receipts that come to this process's own binds come only while it stays:
            # it waits for them (up to ``timeout``), applying them as they are stored;
            # so it does for the next channel while one stands by.
            if (
                not (listening and last.statuses[Status.SENT])
                and not (last.statuses[Status.STANDBY])
            ):
                return explained(runtime, last, cooldowns_here=True)
        time.sleep(POLL_SECONDS)


def _fall_back(runtime: Runtime) -> None:
    """What the housekeeper's fallback sweep would do (``worker.upkeep.fallback``)."""
    from sqlalchemy.exc import SQLAlchemyError

    from worker.upkeep.fallback import fall_back

    try:
        fall_back(runtime)
    except SQLAlchemyError as exc:
        log.warning("fallback.failed", error=type(exc).__name__)


def _apply_receipts(runtime: Runtime) -> None:
    """What the housekeeper's drainer would do: apply the receipts this process's binds
    stored (``ledger.receipts.drain_all``). The ledger away for a moment: next time."""
    from sqlalchemy.exc import SQLAlchemyError

    from ledger.receipts import drain_all

    try:
        drain_all(runtime.engine)
    except SQLAlchemyError as exc:
        log.warning("receipts.drain_failed", error=type(exc).__name__)


#: How often a long-lived embedded process (``loa api`` without Redis) seals the audit log.
SEAL_EVERY = 30.0


def housekeep(runtime: Runtime, stop: threading.Event, every: float = 2.0) -> None:
    """The housekeeper's chores for a long-lived embedded process (``loa api`` without
    Redis sends what it launches, and no ``loa worker`` runs beside it): every ``every``
    seconds the receipts stored by the webhook applied and the fallback sweep, every
    ``SEAL_EVERY`` the audit log sealed, until ``stop`` is set."""
    sealed = time.monotonic()
    while not stop.wait(every):
        _apply_receipts(runtime)
        _fall_back(runtime)
        if time.monotonic() - sealed >= SEAL_EVERY:
            seal_chain(runtime)
            sealed = time.monotonic()
