"""A process's way to one provider: ``send_concurrency`` sender coroutines on the sending
loop, taking messages in turn from one queue that every batch of the process feeds.

Why a lane and not a task per message: a batch thread prepares its next group (rate
tokens, the ``handed`` mark, one round trip to the ledger) while the senders are still busy
with the previous ones, so the provider never waits for the ledger; and a sender that lives
as long as the process costs the loop no task, future and callback per message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from providers import OutgoingMessage, Provider, SendError, SendResult
from worker.attempt import attempt

if TYPE_CHECKING:
    from worker.runtime import Runtime


class Held:
    """What a sender answers for a message it did not send because its batch said hold
    (the provider is cooling down, halted, or the batch is winding down)."""

    def __repr__(self) -> str:
        return "HELD"


HELD = Held()

Result = SendResult | SendError | Held


class Owner(Protocol):
    """What a lane needs of whoever hands it messages (a batch): on the loop only."""

    campaign_id: str

    def picked(self) -> bool:
        """A sender is about to send one of this owner's messages: go ahead (True) or
        hold it (False: it is answered ``HELD``)."""

    def ended(self, message_id: int, result: Result) -> None:
        """One of this owner's messages is done with."""


class Lane:
    """Sender coroutines for one provider in this process.

    Parameters:
        runtime: settings, limiters and cooldowns (for the immediate retries).
        provider: the provider instance the senders call.
        loop: the process's sending loop.
        width: how many senders, so messages in flight to the provider at most.
    """

    def __init__(
        self,
        runtime: Runtime,
        provider: Provider,
        loop: asyncio.AbstractEventLoop,
        width: int,
    ) -> None:
        self.runtime, self.provider, self.loop, self.width = runtime, provider, loop, width
        self._queue: asyncio.Queue[tuple[Owner, OutgoingMessage]] | None = None
        self._senders: list[asyncio.Task[None]] = []

    def submit(self, owner: Owner, messages: Iterable[OutgoingMessage]) -> None:
        """Queue ``messages`` for the senders, from any thread (one hop to the loop)."""
        items = [(owner, message) for message in messages]
        if items:
            self.loop.call_soon_threadsafe(self._enqueue, items)

    def _enqueue(self, items: list[tuple[Owner, OutgoingMessage]]) -> None:
        if self._queue is None:  # first use, on the loop: the queue belongs to it
            self._queue = asyncio.Queue()
            self._senders = [self.loop.create_task(self._sender()) for _ in range(self.width)]
        for item in items:
            self._queue.put_nowait(item)

    async def _sender(self) -> None:
        assert self._queue is not None
        while True:
            owner, message = await self._queue.get()
            if not owner.picked():
                owner.ended(message.message_id, HELD)
                continue
            try:
                # No logging context bound here: nothing on this path logs (the batch's
                # thread logs each outcome with its context), and binding costs every
                # message a few microseconds of the loop that all of them share.
                result: Result = await attempt(self.runtime, self.provider, message)
            except Exception as error:  # a bug, not a provider answer: in doubt
                result = self.provider.classify(error)
            owner.ended(message.message_id, result)

    async def aclose(self) -> None:
        """Stop the senders (on the loop). Messages still queued are the batches' to
        account for: a closing process finishes no batch."""
        for task in self._senders:
            task.cancel()
        await asyncio.gather(*self._senders, return_exceptions=True)
        self._senders = []
