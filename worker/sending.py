"""Sending the claimed messages of one batch: concurrency, rate, retries, recording.

The batch's thread hands messages, a few at a time, to the process's sending loop (one
event loop in its own thread, shared by every batch), and records what comes back; the
loop only calls providers. For each group handed out, in this order:

1. wait out a provider-wide cooldown, then take the provider's rate tokens for as much
   of the group as they cover now, in one go (a wait, never an exception: no dramatiq
   retry is burnt);
2. take a send slot for each: at most ``send_concurrency`` messages in flight per
   process (tokens first, so a batch waiting for them holds no slot);
3. mark the group handed (one UPDATE), so a reaper can tell "never left" from "may
   have left" if this process dies, and send it at once;
4. record the accepted ones in bulk (every ``FLUSH_EVERY`` messages or fraction of a
   second), the rest one by one (they are few).

Retries, by error kind (``providers.base``):
- message-level retryable: tenacity retries it at once, on the loop, up to
  ``immediate_retries`` times within a few seconds; after that the batch gives it back
  and comes back later (a delayed re-enqueue), which counts an attempt;
- provider-wide retryable (5xx, refused connection, 429): starts the provider's
  cooldown; the message goes back to the front of the batch, free of charge, and the
  batch waits out a short cooldown or, for a long one, gives every unsent message back
  and re-enqueues itself for when it ends;
- ambiguous: ``unknown``, unless the provider has an idempotency key (then as retryable);
- permanent: ``failed``; halt: stop handing out, give back what did not go.

A message can thus be sent at most ``max_attempts * (1 + immediate_retries)`` times,
each time refused unprocessed, and never past its validity.
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from campaigns.status import Status
from ledger.handover import mark_handed, record_sent
from ledger.messages import ClaimedMessage, record_outcome, release
from ledger.schema import now
from providers import ErrorKind, OutgoingMessage, Provider, SendError, SendResult
from worker.attempt import attempt
from worker.logging import bound, get_logger
from worker.metrics import count_outcome, count_wait
from worker.runtime import Runtime

log = get_logger("loa.sending")

#: Accepted messages recorded in one transaction at most this many at a time …
FLUSH_EVERY = 200
#: … and at least this often (seconds): what a crash can leave ``unknown`` is bounded.
FLUSH_INTERVAL = 0.25
#: A cooldown this long (seconds) is not waited out by a batch holding a worker thread.
LONG_COOLDOWN = 5.0
#: Times a message may go back to the front of its batch after provider-wide failures.
PUT_BACKS = 3

#: What each final error kind makes of a message.
FINAL_FOR: dict[ErrorKind, Status] = {
    ErrorKind.PERMANENT: Status.FAILED,
    ErrorKind.AMBIGUOUS: Status.UNKNOWN,  # may have gone out: resending risks a duplicate
}


@dataclass
class BatchOutcome:
    """What a batch left to do.

    ``retry``: refused for now, to send again later, the attempt counted; ``down``:
    given back because the provider was down, free of charge; ``halt`` and
    ``untouched``: the error that stopped the provider and what was never handed to it.
    """

    retry: list[tuple[ClaimedMessage, SendError]] = field(default_factory=list)
    down: list[ClaimedMessage] = field(default_factory=list)
    halt: SendError | None = None
    untouched: list[ClaimedMessage] = field(default_factory=list)


Render = Callable[[ClaimedMessage], OutgoingMessage]


def send_claimed(
    runtime: Runtime,
    provider: Provider,
    campaign_id: str,
    valid_until: datetime,
    claimed: list[ClaimedMessage],
    render: Render,
    sender: str | None = None,
) -> BatchOutcome:
    """Send a batch's claimed messages; settle each one or say what is left to do.
    ``sender`` (the brandname) picks its own rate limit, if the provider sets one.

    Raises:
        Ledger errors, for dramatiq's retries (what was sent is recorded or ``sending``).
    """
    batch = _Batch(runtime, provider, campaign_id, valid_until, claimed, render, sender)
    try:
        while batch.todo or batch.running:
            more = batch.hand_out()
            batch.collect(block=not more)
            batch.record(force=not batch.running)
    except Exception:
        batch.wind_down()
        raise
    return batch.outcome


class _Batch:
    """One batch on its way out (the state ``send_claimed`` loops over)."""

    def __init__(
        self,
        runtime: Runtime,
        provider: Provider,
        campaign_id: str,
        valid_until: datetime,
        claimed: list[ClaimedMessage],
        render: Render,
        sender: str | None,
    ) -> None:
        self.runtime, self.provider, self.render = runtime, provider, render
        self.campaign_id, self.valid_until = campaign_id, valid_until
        self.limiter = runtime.limiter(provider.name, sender)
        self.cooldown = runtime.cooldown(provider.name)
        self.loop, self.slots = runtime.send_loop(), runtime.send_slots(provider.name)
        self.by_parts = provider.config.rate_unit == "parts"
        self.group_size = _group_size(provider, runtime.settings.send_concurrency)
        self.outcome, self.todo = BatchOutcome(), deque(claimed)
        self.running: dict[int, ClaimedMessage] = {}  # by message id, handed out
        self.finished: queue.SimpleQueue[list[tuple[int, SendResult | SendError]]] = (
            queue.SimpleQueue()
        )
        self.ended: list[tuple[int, SendResult | SendError]] = []  # on the loop only
        self.put_backs: dict[int, int] = {}
        self.sent: list[tuple[int, str]] = []
        self.recorded_at = time.monotonic()

    def hand_out(self) -> bool:
        """Hand the next group to the sending loop, once it has the provider's tokens,
        process-wide send slots and a ``handed`` mark. Returns whether to go on handing
        out at once (False: nothing left, or no slot free until a send finishes)."""
        if not self.todo or self.outcome.halt is not None:
            return False
        if self.cooldown.left() > LONG_COOLDOWN:
            self.outcome.down.extend(self.todo)  # come back when it ends, not hold a thread
            self.todo.clear()
            return False
        candidates = [self.todo[i] for i in range(min(self.group_size, len(self.todo)))]
        group, slots_short = self._paid(candidates)
        if not group:
            return False
        for _ in group:
            self.todo.popleft()
        engine = self.runtime.engine
        if now() >= self.valid_until:
            for message in [*group, *self.todo]:
                record_outcome(engine, message.id, Status.EXPIRED, "worker", "validity_passed")
            for _ in group:
                self.slots.release()
            self.todo.clear()
            return False
        handed = mark_handed(engine, [m.id for m in group])
        going = []
        for message in group:
            if message.id not in handed:  # the reaper took it back meanwhile: not ours
                self.slots.release()
                continue
            self.running[message.id] = message
            going.append(self.render(message))
        if going:
            # One hop to the loop for the whole group; the tasks run in a copy of this
            # thread's context, so their log lines keep campaign_id.
            context = contextvars.copy_context()
            self.loop.call_soon_threadsafe(self._start, going, context)
        # Go on handing out (the next take waits for tokens) unless slots ran short:
        # then wait for this batch's own sends to finish.
        return bool(self.todo) and not slots_short

    def _paid(self, candidates: list[ClaimedMessage]) -> tuple[list[ClaimedMessage], bool]:
        """The head of ``candidates`` that can go now: the provider's tokens for as many
        as they cover, taken in one go (a token held for later could add to a burst),
        then a send slot each; unused tokens go back. Tokens first: a batch waiting for
        them holds no slot that another batch's sends could use. Also returns whether
        slots ran short."""
        waited = self.cooldown.wait()
        costs = [m.parts if self.by_parts else 1 for m in candidates]
        granted, wait = self.limiter.take(sum(costs), least=costs[0])
        waited += wait
        if granted < costs[0]:  # one message dearer than the whole burst: in pieces
            waited += self.limiter.acquire(costs[0] - granted)
            granted = costs[0]
        count_wait(self.provider.name, waited)
        paid, used, short = 0, 0, False
        while paid < len(candidates) and used + costs[paid] <= granted:
            # Never wait for a slot while this batch has results of its own to collect.
            if not self.slots.acquire(blocking=not self.running and not paid):
                short = True
                break
            used += costs[paid]
            paid += 1
        self.limiter.give_back(granted - used)
        return candidates[:paid], short

    def _start(self, going: list[OutgoingMessage], context: contextvars.Context) -> None:
        """On the loop: one task per message; each result lands in ``finished``."""
        for message in going:
            task = self.loop.create_task(
                attempt(self.runtime, self.provider, message), context=context
            )
            task.add_done_callback(partial(self._done, message.message_id))

    def _done(self, message_id: int, task: asyncio.Task[SendResult | SendError]) -> None:
        """On the loop, as each send ends: results are passed to the batch's thread once
        per turn of the loop, not one by one (each hand-over wakes that thread, and the
        two then take turns at the interpreter lock)."""
        error = None if task.cancelled() else task.exception()
        if task.cancelled() or error is not None:  # a bug, not a provider answer: in doubt
            result: SendResult | SendError = self.provider.classify(
                error or RuntimeError("send cancelled")
            )
        else:
            result = task.result()
        if not self.ended:
            self.loop.call_soon(self._pass_on)
        self.ended.append((message_id, result))

    def _pass_on(self) -> None:
        ended, self.ended = self.ended, []
        self.slots.release(len(ended))
        self.finished.put(ended)

    def _finished(self, block: bool) -> list[tuple[int, SendResult | SendError]]:
        """The sends that finished: some when ``block``, else those already done."""
        got = []
        try:
            got.extend(self.finished.get(block=block))
            while True:
                got.extend(self.finished.get_nowait())
        except queue.Empty:
            return got

    def collect(self, block: bool) -> None:
        """Take in the sends that finished (waiting for one when ``block``)."""
        if not self.running:
            return
        accepted = len(self.sent)
        for message_id, result in self._finished(block):
            message = self.running.pop(message_id)
            if isinstance(result, SendResult):
                self.sent.append((message.id, result.provider_message_id))
                continue
            _settle_error(self.runtime, self.provider, message, result, self.outcome)
            if result.provider_wide and result.kind is ErrorKind.RETRYABLE:
                # Not the message's fault: back to the front, after the cooldown.
                self.put_backs[message.id] = self.put_backs.get(message.id, 0) + 1
                if self.put_backs[message.id] <= PUT_BACKS:
                    self.todo.appendleft(message)
                else:
                    self.outcome.down.append(message)
            if self.outcome.halt is not None:
                self.outcome.untouched.extend(self.todo)
                self.todo.clear()
        count_outcome(self.provider.name, "sent", len(self.sent) - accepted)

    def wind_down(self) -> None:
        """After an infrastructure error (ledger, Redis): hand out nothing more, let what
        is in flight finish and record it, and give back what did not go, if the ledger
        lets us (the job's retry then finds them queued). What cannot be recorded stays
        ``sending``, for the reaper."""
        unsent = [m.id for m in self.todo]
        self.todo.clear()
        try:
            release(self.runtime.engine, unsent, code="worker_error", refund=True)
            while self.running:
                self.collect(block=True)
            self.record(force=True)
        except Exception as exc:  # the original error is the one that matters
            log.warning("batch.wind_down_failed", error=type(exc).__name__)

    def record(self, force: bool) -> None:
        """Record the accepted sends, in bulk, when enough have come or enough time passed."""
        if self.sent and (
            force
            or len(self.sent) >= FLUSH_EVERY
            or time.monotonic() - self.recorded_at >= FLUSH_INTERVAL
        ):
            record_sent(self.runtime.engine, self.campaign_id, self.sent)
            self.sent = []
            self.recorded_at = time.monotonic()


def _group_size(provider: Provider, width: int) -> int:
    """Messages handed out at once: about a tenth of a second of the provider's rate, so
    that at a slow rate nothing is marked handed long before it is sent."""
    rate = provider.config.rate_per_second
    group = width if rate is None else int(rate / 10)
    return max(1, min(group, width))


def _settle_error(
    runtime: Runtime,
    provider: Provider,
    message: ClaimedMessage,
    error: SendError,
    outcome: BatchOutcome,
) -> None:
    """Record a failed send, or note in ``outcome`` what the batch must do about it."""
    with bound(message_id=message.id):
        log.info(
            "message.send_error", kind=error.kind.value, code=error.code, attempt=message.attempts
        )
    count_outcome(provider.name, error.kind.value)
    attempts_left = message.attempts < runtime.settings.max_attempts
    kind = error.kind
    if kind is ErrorKind.AMBIGUOUS and provider.idempotent and attempts_left:
        kind = ErrorKind.RETRYABLE  # the same message id makes a resend safe
    if kind is ErrorKind.HALT:
        outcome.halt = outcome.halt or error
        outcome.untouched.append(message)  # refused unprocessed, like those not handed
    elif kind is ErrorKind.RETRYABLE and error.provider_wide:
        pass  # the caller puts it back: not the message's fault
    elif kind is ErrorKind.RETRYABLE and attempts_left:
        outcome.retry.append((message, error))
    elif kind is ErrorKind.RETRYABLE:
        record_outcome(runtime.engine, message.id, Status.FAILED, "worker", error.code)
    else:
        record_outcome(runtime.engine, message.id, FINAL_FOR[kind], "worker", error.code)
