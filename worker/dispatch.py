"""Sending a batch and applying a receipt: the work behind the actors.

The order inside a batch is what makes "never send twice, never lose one" hold:
claim the rows (one conditional UPDATE, committed), then for each message call the
provider with no transaction open, then record the result in its own short transaction.
A redelivered job finds nothing left to claim; a crash between the provider call and the
record leaves the row in ``sending`` for the reaper, never back in ``queued``.
"""

from __future__ import annotations

import contextvars
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import dramatiq

from campaigns.plan import column_for
from campaigns.spec import CampaignSpec
from campaigns.status import Status
from campaigns.text import Encoding
from ledger.halts import halt, halted
from ledger.messages import (
    ClaimedMessage,
    apply_receipt,
    claim_batch,
    mark_handed,
    reap,
    record_outcome,
    record_sent,
    release,
)
from ledger.schema import now
from ledger.summary import load_campaign
from providers import ErrorKind, OutgoingMessage, Provider, SendError
from worker.broker import queue_for
from worker.logging import bound, get_logger
from worker.metrics import count_outcome, count_wait
from worker.runtime import Runtime

log = get_logger("loa.dispatch")

#: What each error kind makes of a message (retryable is decided by attempts left).
_FINAL_FOR: dict[ErrorKind, Status] = {
    ErrorKind.PERMANENT: Status.FAILED,
    ErrorKind.AMBIGUOUS: Status.UNKNOWN,  # may have gone out: resending risks a duplicate
}


class ReceiptNotMatched(Exception):
    """A receipt for a provider id not recorded yet (it overtook the send's answer)."""


def enqueue_batch(
    provider_name: str, campaign_id: str, batch: int, delay_ms: int | None = None
) -> None:
    """Put one batch on its provider's queue."""
    from worker.actors import send_batch

    message = send_batch.message(campaign_id, batch).copy(queue_name=queue_for(provider_name))
    dramatiq.get_broker().enqueue(message, delay=delay_ms)


def retry_delay_ms(attempt: int) -> int:
    """Exponential backoff with full jitter: about 1 s, 2 s, 4 s … capped at a minute."""
    ceiling = min(60_000, 1000 * 2 ** max(0, attempt - 1))
    return int(ceiling / 2 + random.uniform(0, ceiling / 2))


def send_batch(runtime: Runtime, campaign_id: str, batch: int) -> None:
    """Claim and send one batch of a campaign.

    Raises:
        Database errors, for dramatiq's Retries middleware: nothing was sent for a row that
        was not claimed, and a claimed row is never sent twice.
    """
    engine = runtime.engine
    with bound(campaign_id=campaign_id, batch=batch):
        campaign = load_campaign(engine, campaign_id)
        if campaign.state != "running":
            log.info("batch.skipped", state=campaign.state)
            return
        if halted(engine, campaign.provider) is not None:
            # The provider waits for an operator; `loa provider resume` re-enqueues this.
            log.info("batch.skipped", provider_halted=campaign.provider)
            return
        window, moment = campaign.spec.window, now()
        if window is not None and not window.is_open(moment) and moment < campaign.valid_until:
            # Outside the sending hours: come back when they open; never drop the batch.
            # (If validity runs out first, the rows expire when the batch comes back.)
            opening = min(window.next_opening(moment), campaign.valid_until)
            delay_ms = int((opening - moment).total_seconds() * 1000) + 1000
            enqueue_batch(campaign.provider, campaign_id, batch, delay_ms=delay_ms)
            log.info("batch.outside_sending_hours", hours=str(window), delay_ms=delay_ms)
            return
        claimed = claim_batch(engine, campaign_id, batch)
        if not claimed:
            log.debug("batch.nothing_to_claim")
            return
        provider = runtime.provider(campaign.provider)
        columns = _template_columns(campaign.spec, campaign.list_columns)
        outcome = _send_all(
            runtime, provider, campaign.spec, columns, campaign.valid_until, claimed
        )
        if outcome.halt is not None:
            # Nothing will succeed until a person acts. Give back what was not handed to
            # the provider, and stop the provider (every campaign on it) with the reason.
            error = outcome.halt
            release(engine, [m.id for m in outcome.untouched], code=error.code)
            halt(engine, provider.name, f"{error.code} {error.detail}".strip())
            log.warning("provider.halted", provider=provider.name, released=len(outcome.untouched))
        if outcome.retry:
            release(engine, [m.id for m, _ in outcome.retry])
            attempts = max(m.attempts for m, _ in outcome.retry)
            asked = max((e.retry_after or 0 for _, e in outcome.retry), default=0)
            delay = max(retry_delay_ms(attempts), int(asked * 1000))  # Retry-After is a floor
            enqueue_batch(campaign.provider, campaign_id, batch, delay_ms=delay)
            log.info("batch.retry_scheduled", count=len(outcome.retry), delay_ms=delay)


@dataclass
class _BatchOutcome:
    """What a batch left to do: messages to retry later, and after a halt, the error and
    the messages never handed to the provider."""

    retry: list[tuple[ClaimedMessage, SendError]] = field(default_factory=list)
    halt: SendError | None = None
    untouched: list[ClaimedMessage] = field(default_factory=list)


def _send_all(
    runtime: Runtime,
    provider: Provider,
    spec: CampaignSpec,
    columns: dict[str, tuple[int, ...]],
    valid_until: datetime,
    claimed: list[ClaimedMessage],
) -> _BatchOutcome:
    """Send a batch's messages, up to ``send_concurrency`` at a time, so that a provider
    answering in 250 ms still gets its full rate from one worker process. Each result is
    recorded as it comes; a halt stops whatever has not started yet."""
    outcome, lock, halted = _BatchOutcome(), threading.Lock(), threading.Event()
    limiter = runtime.limiter(provider.name)
    by_parts = provider.config.rate_unit == "parts"

    def one(message: ClaimedMessage) -> None:
        if halted.is_set():
            with lock:
                outcome.untouched.append(message)
            return
        # The provider's agreed rate: wait for tokens here, never raise (no retry burnt).
        count_wait(provider.name, limiter.acquire(message.parts if by_parts else 1))
        if halted.is_set():
            with lock:
                outcome.untouched.append(message)
            return
        if now() >= valid_until:
            record_outcome(runtime.engine, message.id, Status.EXPIRED, "worker", "validity_passed")
            return
        error = _send_one(runtime, provider, spec, columns, valid_until, message)
        if error is None:
            return
        with lock:
            if error.kind is ErrorKind.RETRYABLE:
                outcome.retry.append((message, error))
            else:  # halt: this message was refused unprocessed, like those not started
                outcome.halt = outcome.halt or error
                outcome.untouched.append(message)
                halted.set()

    width = min(runtime.settings.send_concurrency, len(claimed))
    if width <= 1:
        for message in claimed:
            one(message)
        return outcome
    # Each task runs in a copy of this thread's context, so its log lines keep campaign_id.
    tasks = [(contextvars.copy_context(), message) for message in claimed]
    with ThreadPoolExecutor(width, thread_name_prefix="loa-send") as pool:
        for _ in pool.map(lambda task: task[0].run(one, task[1]), tasks):
            pass  # re-raises a task's exception (a ledger error) for dramatiq's retries
    return outcome


def _template_columns(spec: CampaignSpec, list_columns: list[str]) -> dict[str, tuple[int, ...]]:
    """Per language, where each template field sits among the stored list cells (the same
    mapping the planner checked at launch, so every field is found)."""
    found = {}
    for language in spec.messages:
        fields = spec.template(language).fields
        found[language] = tuple(column_for(f, list_columns, spec.columns) or 0 for f in fields)
    return found


def _send_one(
    runtime: Runtime,
    provider: Provider,
    spec: CampaignSpec,
    columns: dict[str, tuple[int, ...]],
    valid_until: datetime,
    message: ClaimedMessage,
) -> SendError | None:
    """Send one claimed message and record what happened. Returns the error when the
    caller has more to do (retry later, halt), ``None`` when the message is settled."""
    engine = runtime.engine
    language = spec.language_for(message.language)
    text = spec.template(language).render(tuple(message.fields[i] for i in columns[language]))
    outgoing = OutgoingMessage(
        message_id=message.id,
        to=message.recipient,
        text=text,
        sender=spec.brandname,
        encoding=Encoding(message.encoding),
        parts=message.parts,
        attempt=message.attempts,
        valid_until=valid_until,
    )
    with bound(message_id=message.id):
        if not mark_handed(engine, message.id):
            return None  # the reaper gave it back meanwhile: another job will send it
        try:
            result = provider.send(outgoing)
        except Exception as exc:  # every provider error is classified, none escapes
            error: SendError = provider.classify(exc)
        else:
            record_sent(engine, message.id, result.provider_message_id)
            count_outcome(provider.name, "sent")
            log.debug("message.sent", to=message.recipient, language=language)
            return None
        log.info(
            "message.send_error", kind=error.kind.value, code=error.code, attempt=message.attempts
        )
        count_outcome(provider.name, error.kind.value)
        attempts_left = message.attempts < runtime.settings.max_attempts
        if error.kind is ErrorKind.AMBIGUOUS and provider.idempotent and attempts_left:
            # The same message id makes a resend safe: at worst "already accepted".
            return SendError(ErrorKind.RETRYABLE, error.code, error.detail, error.retry_after)
        if error.kind is ErrorKind.RETRYABLE:
            if attempts_left:
                return error
            record_outcome(engine, message.id, Status.FAILED, "worker", error.code)
            return None
        if error.kind is ErrorKind.HALT:
            return error
        record_outcome(engine, message.id, _FINAL_FOR[error.kind], "worker", error.code)
        return None


def record_receipt(runtime: Runtime, provider_name: str, payload: dict[str, str]) -> None:
    """Apply one raw receipt from ``provider_name``.

    Raises:
        ReceiptNotMatched: no message has that provider id yet; dramatiq retries shortly.
    """
    provider = runtime.provider(provider_name)
    try:
        receipt = provider.parse_receipt(payload)
    except ValueError as exc:
        log.warning("receipt.unparseable", provider=provider_name, error=str(exc))
        return
    if receipt.status is None:
        log.warning("receipt.unknown_status", provider=provider_name, raw_status=receipt.raw_status)
        return
    outcome = apply_receipt(
        runtime.engine, provider_name, receipt.provider_message_id, receipt.status, receipt.code
    )
    if not outcome.matched:
        raise ReceiptNotMatched(f"{provider_name} receipt for an id not recorded yet")
    if not outcome.moved:
        log.debug("receipt.ignored", status=receipt.status.value)


def reap_stale(runtime: Runtime) -> dict[str, int]:
    """Settle what dead workers left ``sending`` past the lease, and put the batches of
    the messages given back on their queues again."""
    lease = timedelta(seconds=runtime.settings.sending_lease_seconds)
    reaped = reap(runtime.engine, lease)
    providers_of: dict[str, str] = {}
    for campaign_id, batch in reaped.requeued:
        if campaign_id not in providers_of:
            providers_of[campaign_id] = load_campaign(runtime.engine, campaign_id).provider
        enqueue_batch(providers_of[campaign_id], campaign_id, batch)
    requeued = sum(reaped.requeued.values())
    if requeued or reaped.unknown:
        log.warning("reaper.settled", requeued=requeued, unknown=reaped.unknown)
    return {"requeued": requeued, "unknown": reaped.unknown, "batches": len(reaped.requeued)}
