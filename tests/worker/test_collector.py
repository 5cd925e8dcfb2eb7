"""The worker processes' collector tuning (``worker.queues.collector``)."""

import gc

from worker.queues.broker import build_broker
from worker.queues.collector import GEN0_THRESHOLD, CollectorTuning
from worker.settings import Settings


def test_a_booted_worker_freezes_what_it_holds_and_spaces_out_collections():
    before, frozen_before = gc.get_threshold(), gc.get_freeze_count()
    try:
        CollectorTuning().after_worker_boot(None, None)
        assert gc.get_threshold() == (GEN0_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > frozen_before
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_only_the_redis_workers_tune_their_collector():
    # The embedded mode runs inside the caller's process (a CLI, a test): left alone.
    assert not any(
        isinstance(m, CollectorTuning) for m in build_broker(Settings(redis_url=None)).middleware
    )
    redis = build_broker(Settings(redis_url="redis://127.0.0.1:6379/15"))
    assert any(isinstance(m, CollectorTuning) for m in redis.middleware)
