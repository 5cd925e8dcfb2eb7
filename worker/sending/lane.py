"""A process's way to one provider: sender coroutines on the sending loop, taking messages
in turn from one queue that every batch of the process feeds.

Why a lane and not a task per message: a batch thread prepares its next group (the
``handed`` mark, one round trip to the ledger) while the senders are still busy with the
previous ones, so the provider never waits for the ledger; and a sender that lives as
long as the process costs the loop no task, future and callback per message.

A sender takes the provider's rate tokens for its message at the moment it sends it,
through the gate (``worker.sending.gate``): never earlier, so that a message waiting here for a
free sender never carries a token that would go out together with later ones.

The lane also reacts first to trouble at the provider, since it sees every answer:

- an outage (5xx, refused connection): the provider's cooldown starts (shared through
  Redis), and until it ends this lane holds back every message it is handed, whichever
  batch it belongs to (they come back ``HELD``, free of charge);
- a throttle (429): the provider's rate is lowered (``worker.sending.ratelimit``); an isolated
  throttle also pauses the provider as long as it asked, like a cooldown that does not
  double;
- the first success of a request sent after a cooldown ended tells the cooldown the
  provider recovered, so the next outage starts from the shortest pause again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from providers import ErrorKind, OutgoingMessage, Provider, SendError, SendResult
from worker.logging import get_logger
from worker.metrics import count_wait
from worker.sending.attempt import attempt
from worker.sending.gate import Gate

if TYPE_CHECKING:
    from worker.sending.cooldown import Cooldown


class Held:
    """What a sender answers for a message it did not send because its batch said hold
    (halted, or winding down) or the provider is cooling down."""

    def __repr__(self) -> str:
        return "HELD"


HELD = Held()

log = get_logger("loa.lane")


class Unpaid:
    """A message not sent because its rate tokens could not be had (Redis unreachable):
    like ``HELD``, and the batch learns the error."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __repr__(self) -> str:
        return f"Unpaid({type(self.error).__name__})"


Result = SendResult | SendError | Held | Unpaid


class Owner(Protocol):
    """What a lane needs of whoever hands it messages (a batch): on the loop only."""

    campaign_id: str

    def picked(self) -> bool:
        """One of this owner's messages passed the gate (or is held back before it): go
        ahead (True) or hold it (False: it is answered ``HELD``). Once per message."""

    def going(self) -> bool:
        """Whether this owner's messages may still go (asked again after a wait)."""

    def ended(self, message_id: int, result: Result) -> None:
        """One of this owner's messages is done with."""


class Lane:
    """Sender coroutines for one provider in this process.

    Parameters:
        provider: the provider instance the senders call.
        loop: the process's sending loop.
        width: how many senders, so messages in flight to the provider at most.
        gate: what lets a message through the provider's rate, by the message's sender
            (brandname): ``gate(sender)``.
        cooldown: the provider's cooldown (called off the loop: it may ask Redis).
        immediate_retries: quick retries of a message-level refusal (``worker.sending.attempt``).
    """

    def __init__(
        self,
        provider: Provider,
        loop: asyncio.AbstractEventLoop,
        width: int,
        gate: GateFor,
        cooldown: Cooldown,
        immediate_retries: int = 0,
    ) -> None:
        self.provider, self.loop, self.width = provider, loop, width
        self._gate, self.cooldown = gate, cooldown
        self.immediate_retries = immediate_retries
        self.by_parts = provider.config.rate_unit == "parts"
        self._queue: asyncio.Queue[tuple[Owner, OutgoingMessage]] | None = None
        self._senders: list[asyncio.Task[None]] = []
        #: Loop time until which nothing is sent (a cooldown or pause this lane saw).
        self.cool_until = 0.0
        #: This lane met a cooldown and has not seen a success since it ended.
        self._troubled = False

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

    def cooling(self) -> bool:
        """On the loop: the provider is in a cooldown or pause this lane knows of."""
        return self.loop.time() < self.cool_until

    async def _sender(self) -> None:
        assert self._queue is not None
        while True:
            owner, message = await self._queue.get()
            try:
                result = await self._one(owner, message)
            except Exception as error:  # never let a sender die: the message is in doubt
                log.error("lane.sender_error", error=type(error).__name__)
                result = self.provider.classify(error)
            owner.ended(message.message_id, result)

    async def _one(self, owner: Owner, message: OutgoingMessage) -> Result:
        """Take ``message`` through the gate and to the provider; what came of it. The
        owner counts it as picked once it passed the gate (or was held back before): a
        batch prepares its next group, and marks it handed, only when nothing of its
        last one still waits here, so a process killed holds few messages marked handed
        that never left."""
        if not owner.going() or self.cooling():
            owner.picked()
            return HELD
        cost = message.parts if self.by_parts else 1
        gate = self._gate(message.sender)
        try:
            count_wait(self.provider.name, await gate.through(cost))
        except Exception as error:  # Redis away: nothing was granted, nothing sent
            owner.picked()
            return Unpaid(error)
        if not owner.picked() or self.cooling():  # trouble came while it waited
            await gate.give_back(cost)
            return HELD
        started = self.loop.time()
        try:
            # No logging context bound here: nothing on this path logs (the batch's
            # thread logs each outcome with its context), and binding costs every
            # message a few microseconds of the loop that all of them share.
            result: Result = await attempt(
                self.provider, message, gate, cost, self.immediate_retries
            )
        except Exception as error:  # a bug, not a provider answer: in doubt
            result = self.provider.classify(error)
        try:
            if isinstance(result, SendError) and result.provider_wide:
                await self._trouble(result, gate, cost)
            elif self._troubled and started >= self.cool_until:
                self._troubled = False
                await asyncio.to_thread(self.cooldown.recovered)
        except Exception as error:  # Redis away: the answer itself still counts
            log.warning("lane.trouble_not_shared", error=type(error).__name__)
        return result

    async def _trouble(self, error: SendError, gate: Gate, cost: int) -> None:
        """The provider as a whole refused: an outage starts (or joins) its cooldown; a
        throttle lowers its rate, and pauses it as asked when it was isolated."""
        if error.kind is not ErrorKind.RETRYABLE:
            return
        span = 0.0
        if not error.throttled:
            span = await asyncio.to_thread(self.cooldown.start, error.retry_after)
        elif gate.bucket is None:  # no agreed rate, nothing to adapt: each throttle pauses
            span = await asyncio.to_thread(self.cooldown.pause, error.retry_after or 1.0)
        elif await gate.bucket.throttled(cost, error.retry_after or 0.0) and error.retry_after:
            # The bucket holds every process's senders for the pause; the cooldown tells
            # the batches, so that a long one gives them back instead of holding threads.
            await asyncio.to_thread(self.cooldown.pause, error.retry_after)
            return
        if span > 0:
            self.cool_until = max(self.cool_until, self.loop.time() + span)
            self._troubled = True

    async def aclose(self) -> None:
        """Stop the senders (on the loop). Messages still queued are the batches' to
        account for: a closing process finishes no batch."""
        for task in self._senders:
            task.cancel()
        await asyncio.gather(*self._senders, return_exceptions=True)
        self._senders = []


class GateFor(Protocol):
    def __call__(self, sender: str | None) -> Gate: ...
