"""Recovery with nobody at the keyboard: what the housekeeper (``worker.upkeep.housekeeping``)
does so that a fault costs a bounded wait, not a person's intervention.

============================  ==============================================  ============
fault                         what notices it                                 worst case
============================  ==============================================  ============
a worker killed (kill -9)     its jobs: dramatiq's maintenance, run here on   heartbeat
                              every queue (``maintain_queues``)               timeout + 5 s
                              its claimed rows: its claims no longer          ``GRACE`` +
                              published (``reap_abandoned``)                  5 s
a batch ended in an error     its claim unpublished at once                   ``GRACE`` + 5 s
a job lost (Redis restarted   queued rows of a running campaign with no job   1.5 x
empty, an enqueue that        for them in Redis (``requeue_orphans``)         ``LOA_ORPHAN_
failed in an outage)                                                          AFTER_SECONDS``
the ledger away while a       the provider's ids spooled on disk and written  5 s after it
provider answered             when it is back (``worker.sending.spool``)              is back
no Redis at all (embedded)    the lease (``LOA_SENDING_LEASE_SECONDS``)       the lease
============================  ==============================================  ============

Every move here is conditional in the ledger and every enqueue is safe to repeat (a job
that finds nothing to claim sends nothing), so any number of housekeepers on any number
of machines may do this at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from ledger.halts import all_halts
from ledger.lease import Reaped, reap, reap_unheld, renew, stranded
from ledger.schema import now
from ledger.summary import load_campaign, queued_batches
from providers import ProviderConfigError
from worker.logging import get_logger
from worker.processes.liveness import GRACE, live_claims
from worker.queues.broker import queue_for
from worker.queues.jobs import enqueue_batch
from worker.runtime import Runtime

log = get_logger("loa.recovery")


def _resend_handed(runtime: Runtime) -> Callable[[str], bool]:
    def resend_handed(provider_name: str) -> bool:
        if not runtime.settings.reaper_resends_with_key:
            return False
        try:
            return runtime.provider(provider_name).idempotent
        except ProviderConfigError:
            return False  # a provider no longer configured: in doubt it stays

    return resend_handed


def _requeue(reaped: Reaped, what: str) -> int:
    for campaign_id, batch, provider_name in reaped.requeued:
        enqueue_batch(provider_name, campaign_id, batch)
    requeued = sum(reaped.requeued.values())
    if requeued or reaped.unknown:
        log.warning(f"reaper.{what}", requeued=requeued, unknown=reaped.unknown)
    return requeued


def reap_stale(runtime: Runtime) -> dict[str, int]:
    """Settle what dead workers left ``sending`` past the lease, and put the batches of
    the messages given back on their queues again (``loa reap``, and the housekeeper:
    the net under ``reap_abandoned``, and the only rule without Redis)."""
    lease = timedelta(seconds=runtime.settings.sending_lease_seconds)
    reaped = reap(runtime.engine, lease, _resend_handed(runtime))
    requeued = _requeue(reaped, "settled")
    rescued = rescue_stranded(runtime, lease)
    return {
        "requeued": requeued,
        "unknown": reaped.unknown,
        "batches": len(reaped.requeued),
        "stranded": rescued,
    }


def reap_abandoned(runtime: Runtime) -> dict[str, int] | None:
    """Settle rows ``sending`` under a claim no live worker holds (its process died, or
    its batch ended in an error), once claimed ``GRACE`` ago. ``None`` without Redis, or
    when Redis restarted too recently to know every live claim."""
    client = runtime.redis()
    if client is None:
        return None
    held = live_claims(client, runtime.settings.redis_namespace)
    if held is None:
        return None
    grace = timedelta(seconds=GRACE)
    reaped = reap_unheld(runtime.engine, held, grace, _resend_handed(runtime))
    return {"requeued": _requeue(reaped, "abandoned_claims"), "unknown": reaped.unknown}


def maintain_queues(runtime: Runtime) -> int:
    """Give back to their queues the jobs that dead workers had fetched and not
    acknowledged: dramatiq does it only when one of its commands happens to draw its
    maintenance (a chance per million), which took minutes after a ``kill -9``; here it
    runs on every provider's queue (and its delay queue) each time. Returns the queues
    maintained (0 without Redis)."""
    broker = runtime.maintenance_broker()
    if broker is None:
        return 0
    from worker.queues.broker import RECEIPTS_QUEUE

    names = [queue_for(p) for p in runtime.settings.providers] + [RECEIPTS_QUEUE]
    for name in names:
        for queue in (name, f"{name}.DQ"):
            broker.do_requeue(queue)  # no message ids: maintenance alone
    return 2 * len(names)


def live_jobs(runtime: Runtime) -> set[tuple[str, int, str]] | None:
    """(campaign, batch, provider) of every ``send_batch`` job Redis holds: waiting,
    delayed, or fetched by a worker and not acknowledged. ``None`` without Redis."""
    client = runtime.redis()
    if client is None:
        return None
    namespace, jobs = runtime.settings.redis_namespace, set()
    for provider in runtime.settings.providers:
        queue = queue_for(provider)
        for key in (f"{namespace}:{queue}.msgs", f"{namespace}:{queue}.DQ.msgs"):
            for _, raw in client.hscan_iter(key, count=1000):
                job = _batch_of(raw, provider)
                if job is not None:
                    jobs.add(job)
    return jobs


def batches_without_job(runtime: Runtime, campaign_id: str) -> list[tuple[int, str]]:
    """(batch, provider) of the campaign's batches still holding queued messages that have
    no job in Redis: what resume and a relaunch put back (claims would make a second job
    harmless, but it is work for nothing). Every such batch without Redis."""
    jobs = live_jobs(runtime) or set()
    return [
        (batch, provider)
        for batch, provider in queued_batches(runtime.engine, campaign_id)
        if (campaign_id, batch, provider) not in jobs
    ]


def _batch_of(raw: bytes, provider: str) -> tuple[str, int, str] | None:
    try:
        message: dict[str, Any] = json.loads(raw)
    except ValueError:
        return None
    if message.get("actor_name") != "send_batch":
        return None
    args = list(message.get("args") or [])
    if len(args) < 2:
        return None
    return str(args[0]), int(args[1]), str(args[2] if len(args) > 2 and args[2] else provider)


def requeue_orphans(runtime: Runtime) -> int | None:
    """Enqueue again the batches of running campaigns whose queued rows, left alone for
    ``LOA_ORPHAN_AFTER_SECONDS`` (longer than a launch takes to enqueue its jobs), have
    no job in Redis (Redis restarted without its data, an enqueue failed in an outage, a
    job was dead-lettered). ``None`` without Redis."""
    jobs = live_jobs(runtime)
    if jobs is None:
        return None
    idle = timedelta(seconds=runtime.settings.orphan_after_seconds)
    return rescue_stranded(runtime, idle, jobs, "orphaned")


def rescue_stranded(
    runtime: Runtime,
    idle: timedelta,
    jobs: set[tuple[str, int, str]] | None = None,
    what: str = "stranded",
) -> int:
    """Enqueue again the batches of messages left queued longer than ``idle`` in running
    campaigns (``ledger.lease.stranded``) that have no job in ``jobs`` (when known),
    unless their wait is deliberate: the provider halted (``loa provider resume``
    enqueues them) or the campaign outside its sending hours (its delayed job comes back
    at the opening). The job first, then the note: if the enqueue fails, the next look
    tries again. Returns the messages."""
    moment, rescued, campaigns = now(), 0, {}
    found = stranded(runtime.engine, idle, claimed_only=jobs is None)
    halts = all_halts(runtime.engine) if found else {}  # read once, not once per batch
    for job, count in found.items():
        campaign_id, batch, provider_name = job
        if (jobs is not None and job in jobs) or provider_name in halts:
            continue
        if campaign_id not in campaigns:
            campaigns[campaign_id] = load_campaign(runtime.engine, campaign_id)
        window = campaigns[campaign_id].spec.window
        if window is not None and not window.is_open(moment):
            continue
        enqueue_batch(provider_name, campaign_id, batch)
        renew(runtime.engine, campaign_id, batch, provider_name)
        rescued += count
    if rescued:
        log.warning(f"reaper.{what}_batches_enqueued", messages=rescued)
    return rescued
