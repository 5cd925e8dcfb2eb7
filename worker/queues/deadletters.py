"""Dead letters: jobs dramatiq gave up on, which it keeps in Redis (``<ns>:<queue>.XQ``
for 7 days) but offers no way to run again. Requeueing a Loa job is always safe: a
``send_batch`` claims before it sends, so whatever already went out is not sent twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import dramatiq
from dramatiq.brokers.redis import RedisBroker

#: Options dramatiq's middleware leave on a message; a requeued job starts afresh.
_SPENT_OPTIONS = ("retries", "traceback", "eta", "redis_message_id")


@dataclass(frozen=True)
class DeadLetter:
    queue: str
    message_id: str
    actor: str
    args: tuple[object, ...]
    failed_at: datetime
    error: str | None

    def as_dict(self) -> dict[str, object]:
        return {
            "queue": self.queue,
            "message_id": self.message_id,
            "actor": self.actor,
            "args": list(self.args),
            "failed_at": self.failed_at.isoformat(),
            "error": self.error,
        }


def _keys(broker: RedisBroker, queue: str) -> tuple[str, str]:
    full = f"{broker.namespace}:{queue}.XQ"
    return full, f"{full}.msgs"


def dead_letters(broker: RedisBroker, queues: list[str]) -> list[DeadLetter]:
    """Every dead job of ``queues``, oldest first."""
    found = []
    for queue in queues:
        ids_key, messages_key = _keys(broker, queue)
        for raw_id, score in broker.client.zrange(ids_key, 0, -1, withscores=True):
            data = broker.client.hget(messages_key, raw_id)
            if data is None:
                continue
            message = dramatiq.Message.decode(data)
            found.append(
                DeadLetter(
                    queue=queue,
                    message_id=message.message_id,
                    actor=message.actor_name,
                    args=tuple(message.args),
                    failed_at=datetime.fromtimestamp(score / 1000, UTC),
                    error=(message.options.get("traceback") or "").strip().splitlines()[-1:][0]
                    if message.options.get("traceback")
                    else None,
                )
            )
    return sorted(found, key=lambda d: d.failed_at)


def requeue(broker: RedisBroker, queues: list[str], message_ids: set[str] | None = None) -> int:
    """Put dead jobs back on their queues (all of them, or those in ``message_ids``) with
    their retries reset. Returns how many."""
    count = 0
    for queue in queues:
        ids_key, messages_key = _keys(broker, queue)
        for raw_id in broker.client.zrange(ids_key, 0, -1):  # Redis's own ids, not dramatiq's
            data = broker.client.hget(messages_key, raw_id)
            if data is None:
                continue
            message = dramatiq.Message.decode(data)
            if message_ids is not None and message.message_id not in message_ids:
                continue
            options = {k: v for k, v in message.options.items() if k not in _SPENT_OPTIONS}
            # Message.copy would merge options; build it anew so the spent ones are gone.
            fresh = dramatiq.Message(
                queue_name=queue,
                actor_name=message.actor_name,
                args=message.args,
                kwargs=message.kwargs,
                options=options,
                message_id=message.message_id,
                message_timestamp=message.message_timestamp,
            )
            broker.enqueue(fresh)
            pipe = broker.client.pipeline()
            pipe.zrem(ids_key, raw_id)
            pipe.hdel(messages_key, raw_id)
            pipe.execute()
            count += 1
    return count
