"""What a Loa process holds for its whole life: settings, the ledger engine and the
provider instances, built once (per process: dramatiq forks workers) and shared by every
actor thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine

import providers
from ledger.db import make_engine, statement_engine
from ledger.migrate import ensure_current
from worker.sending.cooldown import Cooldown, LocalCooldown, RedisCooldown
from worker.sending.gate import Gate
from worker.sending.ratelimit import Both, Bucket, LocalBucket, RedisBucket, default_burst
from worker.sending.spool import Spool
from worker.settings import Settings, get_settings

# Redis, dramatiq and the sending lanes are imported where first used: a command that only
# reads the ledger (`loa campaign status`) must not pay for them.
if TYPE_CHECKING:
    import redis

    from worker.sending.lane import Lane

#: Seconds a Redis call may take before it counts as Redis being away (a dead server
#: must not hang a sending loop or a batch).
REDIS_TIMEOUT = 10.0


class Runtime:
    """Settings, ledger and providers of this process."""

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.ledger_url())
        self._statement_engine: Engine | None = None
        self._providers: dict[str, providers.Provider] = {}
        self._buckets: dict[str, Bucket | None] = {}
        self._gates: dict[str, Gate] = {}
        self._aredis: Any = None
        self._maintenance: Any = None
        self._cooldowns: dict[str, Cooldown] = {}
        self._lanes: dict[str, Lane] = {}
        self._inboxes: list[Any] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._redis: redis.Redis | None = None
        self._lock = threading.Lock()

    @property
    def statement_engine(self) -> Engine:
        """The ledger for single-statement writes on the sending path
        (``ledger.db.statement_engine``), created on first use."""
        with self._lock:
            if self._statement_engine is None:
                self._statement_engine = statement_engine(self.engine)
            return self._statement_engine

    @property
    def embedded_ledger(self) -> bool:
        return self.engine.url.get_backend_name() == "sqlite"

    def ensure_schema(self) -> None:
        """Migrate an embedded ledger; refuse a shared one that is behind (LedgerError)."""
        ensure_current(self.engine, auto=self.embedded_ledger)

    def provider(self, name: str) -> providers.Provider:
        """The provider instance ``name``, created on first use.

        Raises:
            providers.ProviderConfigError: not configured, or its settings are invalid.
        """
        with self._lock:
            if name not in self._providers:
                raw = self.settings.providers.get(name)
                if raw is None:
                    known = ", ".join(sorted(self.settings.providers))
                    raise providers.ProviderConfigError(
                        f"unknown provider {name!r} (configured: {known})"
                    )
                from worker.sending.tokens import LedgerTokens

                self._providers[name] = providers.create(
                    name,
                    raw.model_dump(),
                    receipt_sink=self._receipt_sink(name),
                    inbox=self._inbox(name),
                    tokens=LedgerTokens(self.engine, name),
                )
            return self._providers[name]

    @property
    def listening(self) -> bool:
        """Whether a provider this process uses receives on its own connection (its
        receipts come to this process, ``Provider.listens``)."""
        with self._lock:
            return any(provider.listens for provider in self._providers.values())

    def open_providers(self) -> None:
        """Open what each configured provider keeps for the process's life (one that
        binds to a message centre binds now, to receive receipts whether or not this
        process sends):
        ``loa worker``'s processes call it once they run. A provider whose settings are
        invalid is left to say so at its first use."""
        loop = self.send_loop()
        for name in sorted(self.settings.providers):
            try:
                provider = self.provider(name)
            except providers.ProviderConfigError:
                continue
            asyncio.run_coroutine_threadsafe(provider.open(), loop).result(timeout=10)

    def bucket(self, name: str, sender: str | None = None) -> Bucket | None:
        """The throughput limit of provider instance ``name`` (and of ``sender`` on it,
        when the instance sets a per-sender rate): shared through Redis when Loa runs on
        Redis, in this process when embedded; ``None`` when no rate is set."""
        config = self.provider(name).config
        provider = self._bucket(f"rate:{name}", config.rate_per_second, config.burst)
        if sender is None or config.sender_rate_per_second is None:
            return provider
        own = self._bucket(
            f"rate:{name}:sender:{sender}", config.sender_rate_per_second, config.sender_burst
        )
        assert own is not None
        return own if provider is None else Both(own, provider)

    def _bucket(self, key: str, rate_per_second: float | None, burst: int | None) -> Bucket | None:
        """One bucket, made on first use (``None`` without a rate)."""
        if rate_per_second is None:
            return None
        with self._lock:
            if key not in self._buckets:
                burst = burst or default_burst(rate_per_second)
                rate = rate_per_second * (1 - self.settings.rate_headroom)
                if self.settings.redis_url is None:
                    self._buckets[key] = LocalBucket(rate, burst)
                else:
                    full_key = f"{self.settings.redis_namespace}:{key}"
                    self._buckets[key] = RedisBucket(self._async_redis(), full_key, rate, burst)
            return self._buckets[key]

    def gate(self, name: str, sender: str | None = None) -> Gate:
        """The way through provider ``name``'s rate (and ``sender``'s on it) for this
        process's senders: one per limit, so that senders asking together share a call."""
        if self.provider(name).config.sender_rate_per_second is None:
            sender = None  # one limit for every sender: one gate
        key = name if sender is None else f"{name}\n{sender}"
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates.setdefault(key, Gate(self.bucket(name, sender)))
        return gate

    def cooldown(self, name: str) -> Cooldown:
        """The provider-wide pause of ``name`` after it said it is down or overloaded,
        shared like its rate limit."""
        with self._lock:
            if name not in self._cooldowns:
                client = self._redis_client()
                if client is None:
                    self._cooldowns[name] = LocalCooldown()
                else:
                    key = f"{self.settings.redis_namespace}:cooldown:{name}"
                    self._cooldowns[name] = RedisCooldown(client, key)
            return self._cooldowns[name]

    def send_lane(self, name: str) -> Lane:
        """The senders of this process for provider ``name``: ``send_concurrency``
        messages in flight to it at most (which also bounds what a crash of this process
        can leave in doubt), and no more than the provider's connections (a sender let
        through the rate must find a connection at once), fed by every batch of the
        process."""
        from worker.sending.lane import Lane

        provider, loop, cooldown = self.provider(name), self.send_loop(), self.cooldown(name)
        with self._lock:
            if name not in self._lanes:
                width = self.settings.send_concurrency
                connections = getattr(provider.config, "connections", None)
                if connections is not None:
                    width = min(width, connections)
                self._lanes[name] = Lane(
                    provider,
                    loop,
                    width,
                    lambda sender: self.gate(name, sender),
                    cooldown,
                    self.settings.immediate_retries,
                )
            return self._lanes[name]

    def send_loop(self) -> asyncio.AbstractEventLoop:
        """The event loop, in a thread of its own, on which this process's sends run
        (every provider's, every batch's): hundreds of requests in flight cost one thread."""
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="loa-send-loop", daemon=True
                )
                thread.start()
                self._loop, self._loop_thread = loop, thread
            return self._loop

    @property
    def spool(self) -> Spool:
        """Where results the ledger could not take wait for it (``worker.sending.spool``)."""
        return Spool(Path(self.settings.var_dir) / "spool")

    def redis(self) -> redis.Redis | None:
        """This process's Redis client (``None`` embedded), for recovery's reads."""
        with self._lock:
            return self._redis_client()

    def maintenance_broker(self) -> Any:
        """A dramatiq broker whose every command runs queue maintenance (gives dead
        workers' jobs back): the housekeeper's, for ``worker.upkeep.recovery.maintain_queues``.
        ``None`` embedded."""
        if self.settings.redis_url is None:
            return None
        with self._lock:
            if self._maintenance is None:
                from dramatiq.brokers.redis import MAINTENANCE_SCALE, RedisBroker

                self._maintenance = RedisBroker(
                    url=self.settings.redis_url.get_secret_value(),
                    namespace=self.settings.redis_namespace,
                    heartbeat_timeout=self.settings.redis_heartbeat_timeout_ms,
                    maintenance_chance=MAINTENANCE_SCALE,
                )
            return self._maintenance

    def _async_redis(self) -> Any:
        """The ``redis.asyncio`` client of the sending loop (the rate buckets are asked
        there); called with ``_lock`` held."""
        if self._aredis is None:
            import redis.asyncio

            assert self.settings.redis_url is not None
            self._aredis = redis.asyncio.Redis.from_url(
                self.settings.redis_url.get_secret_value(),
                socket_timeout=REDIS_TIMEOUT,
                socket_connect_timeout=REDIS_TIMEOUT,
            )
        return self._aredis

    def _redis_client(self) -> redis.Redis | None:
        """One client (and connection pool) for the limiters and cooldowns; ``None`` when
        Loa runs embedded. Called with ``_lock`` held."""
        if self.settings.redis_url is None:
            return None
        if self._redis is None:
            import redis

            self._redis = redis.Redis.from_url(
                self.settings.redis_url.get_secret_value(),
                socket_timeout=REDIS_TIMEOUT,
                socket_connect_timeout=REDIS_TIMEOUT,
            )
        return self._redis

    def _inbox(self, provider_name: str) -> providers.Inbox:
        """Where provider ``provider_name`` stores what arrives on its own connection
        (``worker.inbox``), created here, used on the sending loop."""
        from worker.inbox import LedgerInbox

        inbox = LedgerInbox(self.engine, provider_name)
        self._inboxes.append(inbox)
        return inbox

    def _receipt_sink(self, provider_name: str) -> providers.ReceiptSink:
        def sink(payload: Mapping[str, str], delay_seconds: float) -> None:
            from worker.queues.jobs import enqueue_receipt

            enqueue_receipt(provider_name, payload, int(delay_seconds * 1000))

        return sink

    def close(self) -> None:
        if self._loop is not None:
            loop, self._loop = self._loop, None
            for lane in self._lanes.values():
                asyncio.run_coroutine_threadsafe(lane.aclose(), loop).result(timeout=10)
            # Providers before the rest is cancelled: a provider's bind unbinds on its own
            # tasks, once the receipts it is storing are stored (through its inbox).
            for provider in self._providers.values():
                asyncio.run_coroutine_threadsafe(provider.aclose(), loop).result(timeout=30)
            for inbox in self._inboxes:  # it applies what it stored: a drain's worth of time
                asyncio.run_coroutine_threadsafe(inbox.aclose(), loop).result(timeout=60)
            asyncio.run_coroutine_threadsafe(_cancel_the_rest(), loop).result(timeout=10)
            if self._aredis is not None:
                aredis, self._aredis = self._aredis, None
                asyncio.run_coroutine_threadsafe(aredis.aclose(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
            if self._loop_thread is not None:
                self._loop_thread.join(timeout=10)
            loop.close()
        self._providers.clear()
        self._lanes.clear()
        if self._maintenance is not None:
            self._maintenance.close()
            self._maintenance = None
        if self._redis is not None:
            self._redis.close()
            self._redis = None
        if self._statement_engine is not None and self._statement_engine is not self.engine:
            self._statement_engine.dispose()
        self.engine.dispose()


async def _cancel_the_rest() -> None:
    """Cancel whatever else still runs on the sending loop (on close: nothing may be left
    pending when the loop is closed)."""
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)


_current: Runtime | None = None
_current_lock = threading.Lock()


def get_runtime() -> Runtime:
    """This process's runtime, built from the environment's settings on first use."""
    global _current
    with _current_lock:
        if _current is None:
            _current = Runtime(get_settings())
        return _current


def close_runtime() -> None:
    """Close this process's runtime, if one was built (a provider holding a bind unbinds)."""
    global _current
    with _current_lock:
        runtime, _current = _current, None
    if runtime is not None:
        runtime.close()


def set_runtime(runtime: Runtime | None) -> Runtime | None:
    """Install ``runtime`` for this process (the demo and tests do); returns the old one."""
    global _current
    with _current_lock:
        old, _current = _current, runtime
        return old
