"""The one place where Loa's dramatiq broker is chosen and set.

Importing this module sets the broker from the settings (Redis when ``LOA_REDIS_URL`` is
set, dramatiq's in-memory ``StubBroker`` otherwise) *before* ``worker.queues.actors`` defines any
actor, which is what dramatiq requires. ``use_broker`` swaps it later (the demo forces the
in-memory broker; tests run the same actors on both) and re-declares the actors on it.

Queues: one per provider instance, ``sms.<name>``, so a slow provider never holds up
another; receipts have their own.
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from worker.settings import Settings, SettingsError, get_settings

RECEIPTS_QUEUE = "receipts"


def queue_for(provider_name: str) -> str:
    """The dramatiq queue of a provider instance."""
    return f"sms.{provider_name}"


def build_broker(settings: Settings) -> dramatiq.Broker:
    """A broker for these settings, not yet installed.

    Raises:
        SettingsError: ``LOA_REDIS_URL`` has an option redis-py cannot use (checked here,
            where redis is imported anyway, rather than in every command's settings).
    """
    if settings.redis_url is None:
        return StubBroker()
    _check_redis_options(settings.redis_url.get_secret_value())
    # Recovery: a dead worker's unacknowledged jobs return once its heartbeat is older
    # than the timeout *and* some command runs maintenance; dramatiq's 0.1 % chance can
    # take hours on a quiet queue, so Loa asks for maintenance far more often.
    broker = RedisBroker(
        url=settings.redis_url.get_secret_value(),
        namespace=settings.redis_namespace,
        heartbeat_timeout=settings.redis_heartbeat_timeout_ms,
        maintenance_chance=settings.redis_maintenance_chance,
    )
    from worker.queues.collector import CollectorTuning

    broker.add_middleware(CollectorTuning())
    if os.environ.get("dramatiq_prom_db"):  # noqa: SIM112 - dramatiq names it so; set by `loa worker`
        from dramatiq.middleware.prometheus import Prometheus

        from worker.metrics import LoaMetrics

        broker.add_middleware(Prometheus())
        broker.add_middleware(LoaMetrics())
    return broker


def _check_redis_options(url: str) -> None:
    from redis import ConnectionPool

    try:  # makes a connection object, does not connect
        ConnectionPool.from_url(url).make_connection()
    except (ValueError, TypeError) as exc:
        raise SettingsError(f"LOA_REDIS_URL: {exc}") from None


def declare_queues(broker: dramatiq.Broker, settings: Settings) -> list[str]:
    """Declare every provider's queue and the receipts queue; returns their names."""
    names = [queue_for(name) for name in settings.providers] + [RECEIPTS_QUEUE]
    for name in names:
        broker.declare_queue(name)
    return names


def use_broker(broker: dramatiq.Broker, settings: Settings | None = None) -> dramatiq.Broker:
    """Install ``broker`` as the global broker and move Loa's actors onto it.

    dramatiq binds an actor to the broker current at definition time; moving them lets a
    process (the demo, a test) pick its broker after ``worker.queues.actors`` was imported.
    """
    dramatiq.set_broker(broker)
    from worker.queues import actors  # the actors module imports this one: import here, not above

    for actor in actors.ALL:
        actor.broker = broker
        broker.declare_actor(actor)
    declare_queues(broker, settings or get_settings())
    return broker


dramatiq.set_broker(build_broker(get_settings()))
