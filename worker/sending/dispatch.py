"""Sending a batch and applying a receipt: the work behind the actors.

The order inside a batch is what makes "never send twice, never lose one" hold:
claim the rows (one conditional UPDATE, committed), then mark each group handed, call the
provider with no transaction open, and record the results (``worker.sending.batch``). A
redelivered job finds nothing left to claim; a crash between the provider call and the
record leaves the row in ``sending`` for the reaper, never back in ``queued``.

A job is one provider's share of a batch (``campaigns.routing``): it claims only the rows
routed to that provider. When the provider halts, the campaign's fallback providers take
over the rows not yet handed over (``_hand_over``). A message whose text is over what the
provider sending it takes (``Provider.limits``) fails before it goes, as the provider's
refusal would fail it (``_fitting``): the plan holds every text against the route's and the
fallbacks' limits, so only a campaign recorded before that check, or a provider whose type
changed since, gets this far.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime

import dramatiq
from sqlalchemy.engine import Engine

from campaigns.channels import TemplateChannel
from campaigns.hours import held_until
from campaigns.plan import column_for
from campaigns.spec import CampaignSpec
from campaigns.status import Status
from campaigns.text import Encoding
from ledger.channels.fallback import spare_claimed
from ledger.halts import all_halts, halt, reroute
from ledger.messages import (
    ClaimedMessage,
    apply_receipt,
    claim_batch,
    record_outcome,
    release,
    set_campaign_state,
)
from ledger.schema import now
from ledger.summary import load_for_batch
from providers import ErrorKind, OutgoingMessage, Provider, ProviderConfigError, Template
from worker.logging import bound, get_logger
from worker.metrics import count_outcome
from worker.processes.liveness import claims
from worker.queues.jobs import enqueue_batch
from worker.runtime import Runtime
from worker.sending.batch import BatchOutcome, send_claimed

log = get_logger("loa.dispatch")

#: The code of a message failed for a text longer than the provider sending it takes.
OVER_LIMIT = "text_over_provider_limit"


class ReceiptNotMatched(dramatiq.Retry):
    """A receipt for a provider id not recorded yet: it overtook the send's answer, which
    a worker records within a fraction of a second. A ``Retry``, so dramatiq tries again
    shortly without logging an error for an expected race."""


def retry_delay_ms(attempt: int) -> int:
    """Exponential backoff with full jitter: about 1 s, 2 s, 4 s … capped at a minute."""
    ceiling = min(60_000, 1000 * 2 ** max(0, attempt - 1))
    return int(ceiling / 2 + random.uniform(0, ceiling / 2))


def send_batch(
    runtime: Runtime, campaign_id: str, batch: int, provider_name: str | None = None
) -> None:
    """Claim and send one provider's share of a batch of a campaign (``None``: the
    campaign's default provider, as jobs enqueued before routing were).

    Raises:
        Database errors, for dramatiq's Retries middleware: nothing was sent for a row that
        was not claimed, and a claimed row is never sent twice.
    """
    # Single statements, one round trip each (PostgreSQL: autocommit, no ping): a worker
    # at full speed starts a batch every few dozen milliseconds.
    statements = runtime.statement_engine
    with bound(campaign_id=campaign_id, batch=batch):
        campaign = load_for_batch(statements, campaign_id, provider_name)
        provider_name = campaign.provider
        if campaign.state != "running":
            log.info("batch.skipped", state=campaign.state)
            return
        if campaign.halted is not None:
            # The provider waits for an operator (`loa provider resume` re-enqueues what
            # is left); a fallback provider may take the batch meanwhile.
            moved = _hand_over(runtime, campaign.spec, campaign_id, batch, provider_name)
            log.info("batch.skipped", provider_halted=provider_name, handed_over=moved)
            return
        window, moment = campaign.spec.window, now()
        opening = held_until(window, moment, campaign.valid_until)
        if opening is not None:
            # Outside the sending hours: come back when they open; never drop the batch.
            # (If validity runs out first, the rows expire when the batch comes back.)
            delay_ms = int((opening - moment).total_seconds() * 1000) + 1000
            enqueue_batch(provider_name, campaign_id, batch, delay_ms=delay_ms)
            log.info("batch.outside_sending_hours", hours=str(window), delay_ms=delay_ms)
            return
        # The claim is held (published for the reaper) from before it is made until its
        # rows are settled or given back: a batch that dies leaves its token unheld.
        with claims.holding(claims.new_token()) as token:
            claimed = claim_batch(statements, campaign_id, batch, provider_name, token)
            claimed = _expire_overdue(runtime.engine, claimed, moment)
            if campaign.spec.channels is not None and claimed:
                # A later channel's message the channel before reached meanwhile (it was
                # given back unsent after the delivery came) is spared, not sent.
                spared = spare_claimed(
                    runtime.engine, campaign_id, [m.id for m in claimed], claimed[0].claim
                )
                claimed = [m for m in claimed if m.id not in spared]
            if not claimed:
                log.debug("batch.nothing_to_claim")
                return
            provider = runtime.provider(provider_name)
            render = _renderer(
                campaign.spec, campaign.list_columns, campaign.valid_until, provider_name
            )
            claimed, render = _fitting(runtime.engine, provider, claimed, render)
            if not claimed:
                return
            outcome = send_claimed(
                runtime, provider, campaign_id, campaign.valid_until, claimed, render
            )
            _follow_up(runtime, campaign.spec, provider.name, campaign_id, batch, outcome)


def _give_back(
    engine: Engine, given: list[ClaimedMessage], code: str | None = None, refund: bool = False
) -> None:
    """Give back what a batch claimed and did not settle, each row only while it is still
    under the batch's claim (``ledger.messages.release``)."""
    if given:
        release(engine, [m.id for m in given], code=code, refund=refund, claim=given[0].claim)


def _expire_overdue(
    engine: Engine, claimed: list[ClaimedMessage], moment: datetime
) -> list[ClaimedMessage]:
    """Messages past their own validity (a welcome 12 h after its arrival) become
    ``expired`` instead of going out; returns the others."""
    going = []
    for message in claimed:
        if message.valid_until is not None and message.valid_until <= moment:
            code = "validity_passed"
            record_outcome(engine, message.id, Status.EXPIRED, "worker", code, message.claim)
        else:
            going.append(message)
    return going


def _fitting(
    engine: Engine,
    provider: Provider,
    claimed: list[ClaimedMessage],
    render: Callable[[ClaimedMessage], OutgoingMessage],
) -> tuple[list[ClaimedMessage], Callable[[ClaimedMessage], OutgoingMessage]]:
    """The claimed messages whose text ``provider`` takes, and their renderer; the others
    are recorded ``failed`` (``OVER_LIMIT``) without being sent: the provider would refuse
    them at every attempt. Nothing to do for a provider with no limit on a text; otherwise
    each text is rendered once here and the renderer returned hands out those texts."""
    limits = provider.limits
    if limits.max_characters is None and limits.max_parts is None:
        return claimed, render
    rendered: dict[int, OutgoingMessage] = {}
    going = []
    for message in claimed:
        outgoing = render(message)
        over = [
            (unit, limit)
            for unit, limit, hard in limits.exceeded(len(outgoing.text), outgoing.parts)
            if hard
        ]
        if not over:
            rendered[message.id] = outgoing
            going.append(message)
            continue
        unit, limit = over[0]
        with bound(message_id=message.id):
            log.warning(
                "message.over_provider_limit",
                provider=provider.name,
                characters=len(outgoing.text),
                parts=outgoing.parts,
                limit=f"{limit} {unit}",
            )
        record_outcome(engine, message.id, Status.FAILED, "worker", OVER_LIMIT, message.claim)
        count_outcome(provider.name, ErrorKind.PERMANENT.value)
    return going, lambda message: rendered[message.id]


def _hand_over(
    runtime: Runtime, spec: CampaignSpec, campaign_id: str, batch: int, provider_name: str
) -> int:
    """Move the batch's messages still queued for the halted ``provider_name`` to the
    campaign's fallback providers, in order, each taking what it can reach, and put each
    one's share on its queue. Returns how many moved (what no fallback takes waits for
    ``loa provider resume``). A template channel's messages (Zalo) never go to the SMS
    routing's fallbacks: they would go out as SMS, and their own SMS after them; the
    fallback sweep sends their next channel instead (``ledger.channels.fallback``)."""
    moved = 0
    if spec.template_channel(provider_name) is not None:
        return moved
    for fallback in spec.router().fallback_for(provider_name, set(all_halts(runtime.engine))):
        try:
            countries = runtime.provider(fallback).countries
        except ProviderConfigError as exc:
            log.warning("fallback.unusable", provider=fallback, error=str(exc))
            continue
        taken = reroute(runtime.engine, campaign_id, batch, provider_name, fallback, countries)
        if taken:
            enqueue_batch(fallback, campaign_id, batch)
            log.warning("batch.handed_over", provider=provider_name, to=fallback, messages=taken)
            moved += taken
    return moved


def _follow_up(
    runtime: Runtime,
    spec: CampaignSpec,
    provider_name: str,
    campaign_id: str,
    batch: int,
    outcome: BatchOutcome,
) -> None:
    """Give back what a batch did not settle and put the batch on its queue again for
    when it may go: after the provider's cooldown, after a backoff, or after a resume
    (or on a fallback provider's queue at once, after a halt)."""
    engine = runtime.engine
    if outcome.stop is not None:
        # Every message of this campaign would be refused alike (its template): the
        # campaign pauses with the reason, its messages queued for a resume once mended;
        # the provider's other campaigns go on.
        error = outcome.stop
        _give_back(engine, outcome.untouched, code=error.code, refund=True)
        _give_back(engine, outcome.down, code="provider_down", refund=True)
        _give_back(engine, [m for m, _ in outcome.retry])
        # A launched campaign's file cannot change: the way out is a new id (said so).
        reason = (
            f"{provider_name}: {error.code} {error.detail}; sửa tệp chiến dịch, huỷ chiến dịch "
            "này và chạy lại với id mới · mend the campaign file, cancel this campaign and "
            "launch it under a new id"
        )
        set_campaign_state(engine, campaign_id, "paused", reason)
        log.warning("campaign.paused", provider=provider_name, code=error.code)
        return
    if outcome.halt is not None:
        # Nothing will succeed until a person acts. Give back what was not handed to
        # the provider, and stop the provider (every campaign on it) with the reason.
        error = outcome.halt
        _give_back(engine, outcome.untouched, code=error.code, refund=True)
        halt(engine, provider_name, f"{error.code} {error.detail}".strip())
        log.warning("provider.halted", provider=provider_name, released=len(outcome.untouched))
    delay = 0
    if outcome.down:
        _give_back(engine, outcome.down, code="provider_down", refund=True)
        delay = max(1000, int(runtime.cooldown(provider_name).left() * 1000))
    if outcome.retry:
        _give_back(engine, [m for m, _ in outcome.retry])
        attempts = max(m.attempts for m, _ in outcome.retry)
        asked = max((e.retry_after or 0 for _, e in outcome.retry), default=0)
        delay = max(delay, retry_delay_ms(attempts), int(asked * 1000))  # Retry-After: a floor
    if outcome.halt is not None:
        # Everything given back is queued again: the fallback providers take it now.
        _hand_over(runtime, spec, campaign_id, batch, provider_name)
    elif delay:
        enqueue_batch(provider_name, campaign_id, batch, delay_ms=delay)
        log.info(
            "batch.retry_scheduled",
            retry=len(outcome.retry),
            provider_down=len(outcome.down),
            delay_ms=delay,
        )


def _template_columns(spec: CampaignSpec, list_columns: list[str]) -> dict[str, tuple[int, ...]]:
    """Per language, where each template field sits among the stored list cells (the same
    mapping the planner checked at launch, so every field is found)."""
    found = {}
    for language in spec.messages:
        fields = spec.template(language).fields
        found[language] = tuple(column_for(f, list_columns, spec.columns) or 0 for f in fields)
    return found


def _renderer(
    spec: CampaignSpec, list_columns: list[str], valid_until: datetime, provider: str = ""
) -> Callable[[ClaimedMessage], OutgoingMessage]:
    """What turns a claimed row into the message a provider sends (the template filled
    with the row's own cells; for a template channel's provider, its parameters). Looked
    up once per batch, not per message: this runs in the batch's thread, which shares the
    interpreter with the sending loop."""
    channel = spec.template_channel(provider)
    if channel is not None:
        return _template_renderer(spec, channel[1], list_columns, valid_until)
    columns = _template_columns(spec, list_columns)
    templates = {language: (spec.template(language), columns[language]) for language in columns}
    default = templates[spec.language_for(None)]
    encodings = {encoding.value: encoding for encoding in Encoding}

    def render(message: ClaimedMessage) -> OutgoingMessage:
        template, where = templates.get(message.language, default)
        return OutgoingMessage(
            message_id=message.id,
            to=message.recipient,
            text=template.render(tuple(message.fields[i] for i in where)),
            sender=spec.brandname,
            encoding=encodings[message.encoding],
            parts=message.parts,
            attempt=message.attempts,
            valid_until=valid_until,
        )

    return render


def _template_renderer(
    spec: CampaignSpec, channel: TemplateChannel, list_columns: list[str], valid_until: datetime
) -> Callable[[ClaimedMessage], OutgoingMessage]:
    """A template channel's messages: its template id, each parameter filled from the row
    (the planner checked every field has its column)."""
    params = [
        (name, text, tuple(column_for(f, list_columns, spec.columns) or 0 for f in text.fields))
        for name, text in channel.compiled.items()
    ]

    def render(message: ClaimedMessage) -> OutgoingMessage:
        cells = message.fields
        data = {name: text.render(tuple(cells[i] for i in where)) for name, text, where in params}
        return OutgoingMessage(
            message_id=message.id,
            to=message.recipient,
            text="",
            sender=spec.brandname,
            encoding=Encoding.UCS2,
            parts=1,
            attempt=message.attempts,
            valid_until=valid_until,
            template=Template(channel.template, data),
        )

    return render


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
        runtime.engine,
        provider_name,
        receipt.provider_message_id,
        receipt.status,
        receipt.code,
        receipt.network,
    )
    if not outcome.matched:
        raise ReceiptNotMatched(f"{provider_name} receipt for an id not recorded yet")
    if not outcome.moved:
        log.debug("receipt.ignored", status=receipt.status.value)
