"""The fallback sweep as a chore: decide every due next channel (``ledger.channels.
fallback``) and put the batches of the messages it queued on their providers' queues.

The ledger's decision is committed first, the jobs enqueued after: a job lost between
the two (Redis away, a crash) leaves queued rows without a job, which recovery enqueues
again (``worker.upkeep.recovery.requeue_orphans``); a job twice claims nothing twice.
"""

from __future__ import annotations

from ledger.channels.fallback import Swept, sweep
from worker.logging import get_logger
from worker.queues.jobs import enqueue_batch
from worker.runtime import Runtime

log = get_logger("loa.fallback")


def fall_back(runtime: Runtime) -> Swept:
    """One sweep; returns what it decided."""
    swept = sweep(runtime.engine)
    for (campaign_id, batch, provider), _ in sorted(swept.queued.items()):
        enqueue_batch(provider, campaign_id, batch)
    if swept.decided:
        log.info(
            "fallback.decided",
            queued=sum(swept.queued.values()),
            spared=swept.spared,
            settled=swept.settled,
        )
    return swept
