"""Which claims live worker processes hold: what lets the reaper settle a dead worker's
rows within seconds, not after the whole lease.

A batch claims its rows with a token (``ledger.messages.claim_batch``) and holds them
``sending`` while it works. Every worker process keeps the tokens of the batches it is
working on in a Redis set of its own (``<namespace>:claims:<process>``), rewritten every
``REFRESH`` seconds and expiring after ``TTL``: a process killed with ``kill -9`` stops
rewriting it, and within ``TTL`` its tokens are gone; a batch that ended with an error
leaves the set at once. The reaper (``worker.upkeep.recovery``) then settles the rows of any
token no live process holds, once they were claimed at least ``GRACE`` ago (a claim is
registered before it is made, and appears in Redis within ``REFRESH``).

A Redis that restarted empty knows no claims at all, which would make every batch look
dead: the reaper believes the sets only once Redis has been up for ``GRACE``, by which
time every live process has written its own again. The lease (``LOA_SENDING_LEASE_SECONDS``)
stays the net under all this, and the only rule without Redis.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from worker.logging import get_logger

log = get_logger("loa.liveness")

#: How often a worker process rewrites its set of claims (seconds).
REFRESH = 3
#: How long the set lives without being rewritten (seconds): three missed rewrites.
TTL = 10
#: How old a claim must be before the reaper may take it for dead (seconds).
GRACE = TTL + REFRESH

#: The member that says "this process is alive", present even when it holds no claim.
ALIVE = "alive"


class Claims:
    """The claim tokens this process's batches hold (thread-safe)."""

    def __init__(self) -> None:
        self.process = uuid.uuid4().hex[:12]
        self._tokens: set[str] = set()
        self._lock = threading.Lock()

    def new_token(self) -> str:
        """A fresh claim token (32 characters, as the ledger stores them)."""
        return uuid.uuid4().hex

    @contextmanager
    def holding(self, token: str) -> Iterator[str]:
        """Register ``token`` for the block: claim inside it, settle before it ends."""
        with self._lock:
            self._tokens.add(token)
        try:
            yield token
        finally:
            with self._lock:
                self._tokens.discard(token)

    def snapshot(self) -> list[str]:
        with self._lock:
            return sorted(self._tokens)


#: This process's claims (one set per process: dramatiq's threads share it).
claims = Claims()


def claims_key(namespace: str, process: str) -> str:
    return f"{namespace}:claims:{process}"


def publish(client: Any, namespace: str, held: Claims = claims) -> None:
    """Rewrite this process's set of claims in Redis, with its expiry, atomically."""
    key = claims_key(namespace, held.process)
    with client.pipeline(transaction=True) as pipe:
        pipe.delete(key)
        pipe.sadd(key, ALIVE, *held.snapshot())
        pipe.expire(key, TTL)
        pipe.execute()


def keep_alive(settings: Any, held: Claims = claims) -> threading.Thread | None:
    """Publish this process's claims every ``REFRESH`` seconds, in a daemon thread, for
    the process's life (nothing without Redis: the lease alone applies)."""
    if settings.redis_url is None:
        return None
    import redis

    client = redis.Redis.from_url(
        settings.redis_url.get_secret_value(),
        socket_timeout=REFRESH,
        socket_connect_timeout=REFRESH,
    )
    stop = threading.Event()

    def run() -> None:
        while True:
            try:
                publish(client, settings.redis_namespace, held)
            except redis.RedisError as exc:  # Redis away: the next round tries again
                log.warning("liveness.publish_failed", error=type(exc).__name__)
            if stop.wait(REFRESH):
                return

    thread = threading.Thread(target=run, name="loa-liveness", daemon=True)
    thread.start()
    return thread


def live_claims(client: Any, namespace: str) -> set[str] | None:
    """Every claim token a live worker process holds, or ``None`` when Redis has not
    been up long enough to know (it restarted within ``GRACE``)."""
    if int(client.info("server").get("uptime_in_seconds", 0)) < GRACE:
        return None
    held: set[str] = set()
    for key in client.scan_iter(match=f"{namespace}:claims:*", count=500):
        held.update(member.decode() for member in client.smembers(key))
    held.discard(ALIVE)
    return held
