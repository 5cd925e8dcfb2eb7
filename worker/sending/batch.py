"""Sending the claimed messages of one batch: concurrency, retries, recording.

The batch's thread prepares messages a group at a time and hands them to the process's
lane to that provider (``worker.sending.lane``: sender coroutines on the process's one sending
loop, shared by every batch); it records what comes back. For each group, in this order:

1. wait out a provider-wide cooldown (a short one; a long one gives the batch back);
2. mark the group handed (one UPDATE), so a reaper can tell "never left" from "may have
   left" if this process dies, and queue it in the lane, where each message takes the
   provider's rate tokens at the moment it goes (``worker.sending.gate``). Not for a provider
   whose idempotency key makes a resend harmless while the reaper resends with it:
   there the reaper queues both kinds again, and a message sent twice is one SMS, so the
   mark would cost a round trip to the ledger per group (measured: 0.35 → 0.40 of the
   bare loop) and protect nothing;
3. prepare the next group while the senders work through this one (at most one group of
   a batch waits in the lane: the provider never waits for the ledger, and little is
   marked handed before it goes);
4. record the accepted ones in bulk (every ``FLUSH_EVERY`` messages or fraction of a
   second), with each part's id for a message the provider sent as several submissions
   (each part has its own receipt: ``ledger.parts``), the rest one by one (they are few).

Retries, by error kind (``providers.base``):
- message-level retryable: tenacity retries it at once, on the loop, up to
  ``immediate_retries`` times within a few seconds; after that the batch gives it back
  and comes back later (a delayed re-enqueue), which counts an attempt;
- provider-wide retryable (5xx, refused connection, 429): the lane starts the provider's
  cooldown or lowers its rate (``worker.sending.lane``) and holds back what waits in it; those
  messages go back to the front of the batch, free of charge, and the batch waits out a
  short cooldown or, for a long one, gives every unsent message back and re-enqueues
  itself for when it ends;
- ambiguous: ``unknown``, unless the provider has an idempotency key (then as retryable);
- permanent: ``failed``; halt: stop handing out, give back what did not go;
- permanent for the whole campaign (``campaign_wide``: its template refused): as a halt,
  but the campaign pauses, not the provider (its other campaigns go on);
- unreachable (no account on this channel): ``unreachable``, which sends the recipient's
  next channel (``ledger.channels.fallback``).

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

from sqlalchemy.exc import DBAPIError

from campaigns.status import Status
from ledger.handover import mark_handed, record_sent
from ledger.messages import ClaimedMessage, record_outcome, release
from ledger.schema import now
from ledger.suppressions import add_numbers
from providers import ErrorKind, OutgoingMessage, Provider, SendError, SendResult
from worker.logging import bound, get_logger
from worker.metrics import count_outcome
from worker.runtime import Runtime
from worker.sending.lane import HELD, Result, Unpaid

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
    ErrorKind.UNREACHABLE: Status.UNREACHABLE,  # not on this channel: the next one may
}


@dataclass
class BatchOutcome:
    """What a batch left to do.

    ``retry``: refused for now, to send again later, the attempt counted; ``down``:
    given back because the provider was down, free of charge; ``halt`` (the provider)
    or ``stop`` (the campaign) and ``untouched``: the error that stopped sending and
    what was never handed to the provider.
    """

    retry: list[tuple[ClaimedMessage, SendError]] = field(default_factory=list)
    down: list[ClaimedMessage] = field(default_factory=list)
    halt: SendError | None = None
    stop: SendError | None = None
    untouched: list[ClaimedMessage] = field(default_factory=list)

    @property
    def ended_by(self) -> SendError | None:
        """What stopped the batch handing out: a halt, or a campaign-wide refusal."""
        return self.halt or self.stop


Render = Callable[[ClaimedMessage], OutgoingMessage]


def send_claimed(
    runtime: Runtime,
    provider: Provider,
    campaign_id: str,
    valid_until: datetime,
    claimed: list[ClaimedMessage],
    render: Render,
) -> BatchOutcome:
    """Send a batch's claimed messages; settle each one or say what is left to do (each
    message's sender, the brandname, picks its own rate limit if the provider sets one).

    Raises:
        Ledger errors, for dramatiq's retries (what was sent is recorded or ``sending``).
    """
    batch = _Batch(runtime, provider, campaign_id, valid_until, claimed, render)
    try:
        while batch.todo or batch.running:
            more = batch.hand_out()
            batch.collect(block=not more)
            if batch.failure is not None:  # cannot go on: wind down, dramatiq retries
                raise batch.failure
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
    ) -> None:
        self.runtime, self.provider, self.render = runtime, provider, render
        self.campaign_id, self.valid_until = campaign_id, valid_until
        self.cooldown = runtime.cooldown(provider.name)
        self.lane = runtime.send_lane(provider.name)
        self.loop = self.lane.loop
        self.group_size = _group_size(
            provider, runtime.settings.send_concurrency, max((m.parts for m in claimed), default=1)
        )
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
        #: Set when the provider must not be sent more of this batch's messages (a halt,
        #: or the batch winding down): for good.
        self.hold = False
        #: What kept a message from its rate tokens (Redis away): raised once collected.
        self.failure: BaseException | None = None
        self.put_backs: dict[int, int] = {}
        self.sent: list[tuple[int, str]] = []
        #: Each part's provider id, by message, for those sent as several submissions.
        self.parts: dict[int, tuple[str, ...]] = {}
        self.recorded_at = time.monotonic()

    def hand_out(self) -> bool:
        """Queue the next group in the lane, once it has a ``handed`` mark (its senders
        take the rate's tokens as each message goes), unless a group of this batch still
        waits there. Returns whether to go on handing out at once (False: nothing left,
        or wait for sends to end)."""
        if not self.todo or self.outcome.ended_by is not None:
            return False
        if self.queued - self.taken >= self.group_size:
            return False
        if self.cooldown.left() > LONG_COOLDOWN:
            self.outcome.down.extend(self.todo)  # come back when it ends, not hold a thread
            self.todo.clear()
            return False
        self.cooldown.wait()  # a short one (a long one gave the batch back above)
        group = [self.todo.popleft() for _ in range(min(self.group_size, len(self.todo)))]
        engine = self.runtime.engine
        if now() >= self.valid_until:
            for message in [*group, *self.todo]:
                code = "validity_passed"
                record_outcome(engine, message.id, Status.EXPIRED, "worker", code, message.claim)
            self.todo.clear()
            return False
        if self.marks_handed:
            # The reaper may have taken some back meanwhile, and another worker claimed
            # them: those are not ours to send. (A batch's messages share one claim.)
            handed = mark_handed(
                self.runtime.statement_engine, [m.id for m in group], group[0].claim
            )
            going = [m for m in group if m.id in handed]
        else:
            going = group
        for message in going:
            self.running[message.id] = message
        self.queued += len(going)
        self.lane.submit(self, [self.render(m) for m in going])
        return bool(self.todo) and self.queued - self.taken < self.group_size

    def picked(self) -> bool:
        """On the loop: one of this batch's messages passed the rate's gate (or was held
        back before it); send it unless on hold. When nothing of the batch waits in the
        lane any more, the batch's thread is woken (if asleep, waiting for results) to
        prepare the next group."""
        self.taken += 1
        if self.taken == self.queued:
            self._wake()
        return not self.hold

    def going(self) -> bool:
        """On the loop: whether this batch's messages may still go."""
        return not self.hold

    def ended(self, message_id: int, result: Result) -> None:
        """On the loop, as each message is done with: results are passed to the batch's
        thread once per turn of the loop, not one by one (each hand-over wakes that
        thread, and the two then take turns at the interpreter lock)."""
        if isinstance(result, SendError) and (
            result.kind is ErrorKind.HALT or result.campaign_wide
        ):
            self.hold = True  # at once: what waits in the lane must not go meanwhile
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
                if len(result.parts) > 1:  # a receipt comes per part: each id is kept
                    self.parts[message.id] = result.parts
                continue
            if isinstance(result, Unpaid):
                self.failure = self.failure or result.error
                result = HELD
            if result is HELD:  # never left: as if it had not been handed out
                if self.outcome.ended_by is not None:
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
            if self.outcome.ended_by is not None:
                self.outcome.untouched.extend(self.todo)
                self.todo.clear()
        count_outcome(self.provider.name, "sent", len(self.sent) - accepted)

    def wind_down(self) -> None:
        """After an infrastructure error (ledger, Redis): hand out nothing more, let what
        is in flight finish and record it (to the spool, if the ledger is away), and give
        back what did not go, if the ledger lets us (the job's retry then finds them
        queued). What cannot be given back stays ``sending``, for the reaper."""
        self.hold = True  # what still waits in the lane comes back unsent
        try:
            while self.running:
                self.collect(block=True)
        except Exception as exc:  # the original error is the one that matters
            log.warning("batch.wind_down_failed", step="collect", error=type(exc).__name__)
        try:
            self.record(force=True)  # the provider's ids first: they cannot be had again
        except Exception as exc:
            log.warning("batch.wind_down_failed", step="record", error=type(exc).__name__)
        try:
            unsent, claim = [m.id for m in self.todo], self.todo[0].claim if self.todo else None
            self.todo.clear()
            release(self.runtime.engine, unsent, "worker_error", refund=True, claim=claim)
        except Exception as exc:
            log.warning("batch.wind_down_failed", step="release", error=type(exc).__name__)

    def record(self, force: bool) -> None:
        """Record the accepted sends, in bulk, when enough have come or enough time passed."""
        if self.sent and (
            force
            or len(self.sent) >= FLUSH_EVERY
            or time.monotonic() - self.recorded_at >= FLUSH_INTERVAL
        ):
            sent, self.sent = self.sent, []
            parts, self.parts = self.parts, {}
            self.recorded_at = time.monotonic()
            try:
                record_sent(self.runtime.statement_engine, self.campaign_id, sent, parts)
            except DBAPIError:
                # The ledger is away and the provider's ids cannot be had again: kept on
                # disk, written when it is back (``worker.sending.spool``), then the batch stops.
                self.runtime.spool.sent(self.campaign_id, sent, parts)
                raise


def _group_size(provider: Provider, width: int, parts: int = 1) -> int:
    """Messages handed out at once: half the lane's width (a group prepared while the
    previous one is sent keeps every sender busy), at most a tenth of a second of the
    provider's rate, so that at a slow rate nothing is marked handed long before it is
    sent (a process killed then leaves its handed messages ``unknown``). A rate counted
    in parts (``rate_unit``) is read in messages of the batch's longest, ``parts``."""
    rate = provider.config.rate_per_second
    if rate is not None and provider.config.rate_unit == "parts":
        rate /= max(1, parts)
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
    elif error.campaign_wide:
        outcome.stop = outcome.stop or error
        outcome.untouched.append(message)  # not its own fault: it goes once mended
    elif kind is ErrorKind.RETRYABLE and error.provider_wide:
        pass  # the caller puts it back: not the message's fault
    elif kind is ErrorKind.RETRYABLE and attempts_left:
        outcome.retry.append((message, error))
    elif kind is ErrorKind.RETRYABLE:
        _record_final(runtime, message.id, Status.FAILED, error.code)
    else:
        _record_final(runtime, message.id, FINAL_FOR[kind], error.code)


def _record_final(runtime: Runtime, message_id: int, status: Status, code: str) -> None:
    """A provider's final answer: into the ledger, or to the spool while it is away (the
    batch stops at its next step that needs the ledger). Not conditional on the claim:
    the message was handed over under it, and the reaper never gives a handed message
    to another claim (it makes it ``unknown``, which this answer may correct)."""
    try:
        record_outcome(runtime.engine, message_id, status, "worker", code)
    except DBAPIError:
        runtime.spool.outcome(message_id, status, code)
