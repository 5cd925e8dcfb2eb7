"""Sending the claimed messages of one batch: concurrency, rate, retries, recording.

The batch's thread prepares messages a group at a time and hands them to the process's
lane to that provider (``worker.lane``: sender coroutines on the process's one sending
loop, shared by every batch); it records what comes back. For each group, in this order:

1. wait out a provider-wide cooldown, then take the provider's rate tokens for as much
   of the group as they cover now, in one go (a wait, never an exception: no dramatiq
   retry is burnt);
2. mark the group handed (one UPDATE), so a reaper can tell "never left" from "may have
   left" if this process dies, and queue it in the lane. Not for a provider whose
   idempotency key makes a resend harmless while the reaper resends with it: there the
   reaper queues both kinds again, and a message sent twice is one SMS, so the mark would
   cost a round trip to the ledger per group (measured: 0.35 → 0.40 of the bare loop)
   and protect nothing;
3. prepare the next group while the senders work through this one (at most one group of
   a batch waits in the lane: the provider never waits for the ledger, and little is
   marked handed before it goes);
4. record the accepted ones in bulk (every ``FLUSH_EVERY`` messages or fraction of a
   second), the rest one by one (they are few).

Retries, by error kind (``providers.base``):
- message-level retryable: tenacity retries it at once, on the loop, up to
  ``immediate_retries`` times within a few seconds; after that the batch gives it back
  and comes back later (a delayed re-enqueue), which counts an attempt;
- provider-wide retryable (5xx, refused connection, 429): starts the provider's
  cooldown and puts the batch on hold (its messages still in the lane come back
  unsent); they go back to the front of the batch, free of charge, and the batch waits
  out a short cooldown or, for a long one, gives every unsent message back and
  re-enqueues itself for when it ends;
- ambiguous: ``unknown``, unless the provider has an idempotency key (then as retryable);
- permanent: ``failed``; halt: stop handing out, give back what did not go.

A message can thus be sent at most ``max_attempts * (1 + immediate_retries)`` times,
each time refused unprocessed, and never past its validity.
"""

from __future__ import annotations

import queue
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from campaigns.status import Status
from ledger.handover import mark_handed, record_sent
from ledger.messages import ClaimedMessage, record_outcome, release
from ledger.schema import now
from ledger.suppressions import add_numbers
from providers import ErrorKind, OutgoingMessage, Provider, SendError, SendResult
from worker.lane import HELD, Result
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
    """One batch on its way out (the state ``send_claimed`` loops over). Also the lane's
    ``Owner`` of its messages: ``picked`` and ``ended`` run on the sending loop."""

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
        self.lane = runtime.send_lane(provider.name)
        self.loop = self.lane.loop
        self.by_parts = provider.config.rate_unit == "parts"
        self.group_size = _group_size(provider, runtime.settings.send_concurrency)
        # Whether "handed" means anything to the reaper for this provider (see above).
        self.marks_handed = not (provider.idempotent and runtime.settings.reaper_resends_with_key)
        self.outcome, self.todo = BatchOutcome(), deque(claimed)
        self.running: dict[int, ClaimedMessage] = {}  # by message id, in the lane
        self.finished: queue.SimpleQueue[list[tuple[int, Result]]] = queue.SimpleQueue()
        self.ended_now: list[tuple[int, Result]] = []  # on the loop only
        self.passing = False  # on the loop only: a pass to the thread is scheduled
        # Messages queued in the lane and taken by a sender: their difference is what
        # still waits there (each counter written by one thread only).
        self.queued, self.taken = 0, 0
        #: Set when the provider must not be sent more of this batch's messages for now;
        #: ``holds`` counts the times it was set (on the loop), so the batch's thread
        #: never clears a hold that came after the cooldown it waited out.
        self.hold, self.holds = False, 0
        self.put_backs: dict[int, int] = {}
        self.sent: list[tuple[int, str]] = []
        self.recorded_at = time.monotonic()

    def hand_out(self) -> bool:
        """Queue the next group in the lane, once it has the provider's tokens and a
        ``handed`` mark, unless a group of this batch still waits there. Returns whether
        to go on handing out at once (False: nothing left, or wait for sends to end)."""
        if not self.todo or self.outcome.halt is not None:
            return False
        if self.queued - self.taken >= self.group_size:
            return False
        if self.cooldown.left() > LONG_COOLDOWN:
            self.outcome.down.extend(self.todo)  # come back when it ends, not hold a thread
            self.todo.clear()
            return False
        candidates = [self.todo[i] for i in range(min(self.group_size, len(self.todo)))]
        holds = self.holds  # a failure's cooldown begins before its hold: waited out below
        group = self._paid(candidates)
        for _ in group:
            self.todo.popleft()
        engine = self.runtime.engine
        if now() >= self.valid_until:
            for message in [*group, *self.todo]:
                record_outcome(engine, message.id, Status.EXPIRED, "worker", "validity_passed")
            self.todo.clear()
            return False
        if self.marks_handed:
            handed = mark_handed(self.runtime.statement_engine, [m.id for m in group])
            # The reaper may have taken some back meanwhile: those are not ours to send.
            going = [m for m in group if m.id in handed]
        else:
            going = group
        for message in going:
            self.running[message.id] = message
        if self.holds == holds:
            # The cooldown, if any, was waited out before the tokens. A send that failed
            # since began another one: its hold stays, and these come back ``HELD``.
            self.hold = False
        self.queued += len(going)
        self.lane.submit(self, [self.render(m) for m in going])
        return bool(self.todo) and self.queued - self.taken < self.group_size

    def _paid(self, candidates: list[ClaimedMessage]) -> list[ClaimedMessage]:
        """The head of ``candidates`` that can go now: the provider's tokens for as many
        as they cover, taken in one go (a token held for later could add to a burst);
        unused tokens go back."""
        waited = self.cooldown.wait()
        costs = [m.parts if self.by_parts else 1 for m in candidates]
        granted, wait = self.limiter.take(sum(costs), least=costs[0])
        waited += wait
        if granted < costs[0]:  # one message dearer than the whole burst: in pieces
            waited += self.limiter.acquire(costs[0] - granted)
            granted = costs[0]
        count_wait(self.provider.name, waited)
        paid, used = 0, 0
        while paid < len(candidates) and used + costs[paid] <= granted:
            used += costs[paid]
            paid += 1
        self.limiter.give_back(granted - used)
        return candidates[:paid]

    def picked(self) -> bool:
        """On the loop: a sender takes one of this batch's messages; send it unless on hold.
        When the lane has no more of this batch's messages, the batch's thread is woken
        (if asleep, waiting for results) to prepare the next group."""
        self.taken += 1
        if self.taken == self.queued:
            self._wake()
        return not self.hold

    def ended(self, message_id: int, result: Result) -> None:
        """On the loop, as each message is done with: results are passed to the batch's
        thread once per turn of the loop, not one by one (each hand-over wakes that
        thread, and the two then take turns at the interpreter lock)."""
        if isinstance(result, SendError) and (
            result.provider_wide or result.kind is ErrorKind.HALT
        ):
            self.hold = True  # at once: what waits in the lane must not go meanwhile
            self.holds += 1
        self._wake()
        self.ended_now.append((message_id, result))

    def _wake(self) -> None:
        """On the loop: pass what ended to the batch's thread at the end of this turn
        (an empty list when nothing did: a wake-up alone)."""
        if not self.passing:
            self.passing = True
            self.loop.call_soon(self._pass_on)

    def _pass_on(self) -> None:
        ended, self.ended_now, self.passing = self.ended_now, [], False
        self.finished.put(ended)

    def _finished(self, block: bool) -> list[tuple[int, Result]]:
        """The messages done with: some when ``block``, else those already done."""
        got = []
        try:
            got.extend(self.finished.get(block=block))
            while True:
                got.extend(self.finished.get_nowait())
        except queue.Empty:
            return got

    def collect(self, block: bool) -> None:
        """Take in the messages done with (waiting for one when ``block``)."""
        if not self.running:
            return
        accepted = len(self.sent)
        for message_id, result in self._finished(block):
            message = self.running.pop(message_id)
            if isinstance(result, SendResult):
                self.sent.append((message.id, result.provider_message_id))
                continue
            if result is HELD:  # never left: as if it had not been handed out
                if self.outcome.halt is not None:
                    self.outcome.untouched.append(message)
                else:
                    self.todo.appendleft(message)
                continue
            assert isinstance(result, SendError)
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
        self.hold = True  # what still waits in the lane comes back unsent
        try:
            while self.running:
                self.collect(block=True)
            unsent = [m.id for m in self.todo]
            self.todo.clear()
            release(self.runtime.engine, unsent, code="worker_error", refund=True)
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
            record_sent(self.runtime.statement_engine, self.campaign_id, self.sent)
            self.sent = []
            self.recorded_at = time.monotonic()


def _group_size(provider: Provider, width: int) -> int:
    """Messages handed out at once: half the lane's width (a group prepared while the
    previous one is sent keeps every sender busy), at most a tenth of a second of the
    provider's rate, so that at a slow rate nothing is marked handed long before it is
    sent."""
    rate = provider.config.rate_per_second
    group = max(1, width // 2)
    return max(1, group if rate is None else min(group, int(rate / 10)))


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
    if error.opt_out:  # the recipient said STOP to the provider: no campaign may text them
        add_numbers(runtime.engine, "opt_out", [message.recipient], f"provider:{provider.name}")
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
