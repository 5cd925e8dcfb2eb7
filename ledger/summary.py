"""Where a campaign stands: intake counts and how many recipients are in each status."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from campaigns.spec import CampaignSpec
from campaigns.status import FINAL, Status
from ledger.halts import all_halts
from ledger.schema import UtcDateTime, campaigns, key_of, messages

if TYPE_CHECKING:
    from ledger.tally import Tally
    from ledger.waiting import WaitingFor


class CampaignNotFound(LookupError):
    """No campaign with that id in the ledger."""


class CampaignStateError(ValueError):
    """The campaign's state does not allow that (resuming a cancelled campaign …)."""


@dataclass(frozen=True)
class CampaignRecord:
    id: str
    name: str
    provider: str
    state: str
    state_reason: str | None
    batches: int
    created_at: datetime
    valid_until: datetime
    spec: CampaignSpec
    intake: dict[str, Any]
    list_columns: list[str]
    list_name: str = ""

    @property
    def open_ended(self) -> bool:
        """A campaign that keeps taking recipients after launch (the month's arrivals
        campaign: welcomes join it as visitors arrive), so having none left to send
        does not make it finished."""
        return self.list_name == "arrivals"


# Every column but the spec, which comes as its stored text: a campaign's spec never
# changes after launch, and each worker job reads it, so the parsed spec is kept by text.
_RECORD = [c for c in campaigns.c if c.name != "spec"]
_RECORD.append(sa.cast(campaigns.c.spec, sa.Text).label("spec_text"))


@lru_cache(maxsize=128)
def _parsed(spec_text: str) -> CampaignSpec:
    """The validated spec of a stored text (frozen: safe to share)."""
    return CampaignSpec.model_validate(json.loads(spec_text))


def _record(row: sa.Row[Any]) -> CampaignRecord:
    return CampaignRecord(
        id=row.id,
        name=row.name,
        provider=row.provider,
        state=row.state,
        state_reason=row.state_reason,
        batches=row.batches,
        created_at=row.created_at,
        valid_until=row.valid_until,
        spec=_parsed(row.spec_text),
        intake=row.intake,
        list_columns=row.list_columns,
        list_name=row.list_name,
    )


def load_campaign(engine: Engine, campaign_id: str) -> CampaignRecord:
    """Raises ``CampaignNotFound``."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(*_RECORD).where(campaigns.c.id == campaign_id)).first()
    if row is None:
        raise CampaignNotFound(campaign_id)
    return _record(row)


@dataclass(frozen=True)
class BatchCampaign:
    """What a batch job reads of its campaign before it claims: its state, the job's
    provider (the campaign's own unless the job names one) and why that provider is
    halted (None: it may send), the campaign's validity, spec and list columns."""

    state: str
    provider: str
    halted: str | None
    valid_until: datetime
    spec: CampaignSpec
    list_columns: list[str]


# One row, one round trip; the JSON columns come as text and are parsed once per text.
_FOR_BATCH = sa.text(
    """
    SELECT c.state, COALESCE(:provider, c.provider),
        (SELECT reason FROM provider_halts WHERE provider = COALESCE(:provider, c.provider)),
        c.valid_until, CAST(c.spec AS TEXT), CAST(c.list_columns AS TEXT)
    FROM campaigns c WHERE c.id = :id
    """
).columns(valid_until=UtcDateTime)


@lru_cache(maxsize=128)
def _columns(list_columns_text: str) -> tuple[str, ...]:
    return tuple(json.loads(list_columns_text))


def load_for_batch(engine: Engine, campaign_id: str, provider: str | None) -> BatchCampaign:
    """The campaign as a batch job of ``provider`` (None: the campaign's own) sees it.

    Raises:
        CampaignNotFound: no such campaign.
    """
    with engine.connect() as conn:
        row = conn.execute(_FOR_BATCH, {"id": campaign_id, "provider": provider}).first()
    if row is None:
        raise CampaignNotFound(campaign_id)
    state, chosen, halt, valid_until, spec_text, columns_text = row
    spec, columns = _parsed(spec_text), list(_columns(columns_text))
    return BatchCampaign(state, chosen, halt, valid_until, spec, columns)


#: Parts a provider took (and so bills): accepted, whatever happened next. The one
#: definition behind ``loa campaign status``'s parts and the report's parts billed.
BILLED = (Status.SENT, Status.DELIVERED, Status.UNDELIVERED, Status.UNKNOWN)


def parts_billed(engine: Engine, campaign_id: str, channels: tuple[int, ...] = ()) -> int:
    """SMS parts of the campaign's messages a provider took (``BILLED``), read from the
    messages themselves: a list campaign's and an arrivals campaign's alike (the latter
    has no planned total, its welcomes join it as visitors arrive). ``channels``: of a
    campaign with several, its SMS channel's places (a Zalo message is no SMS part)."""
    query = sa.select(sa.func.coalesce(sa.func.sum(messages.c.parts), 0)).where(
        messages.c.campaign_key == key_of(campaign_id),
        messages.c.status.in_([s.value for s in BILLED]),
        messages.c.channel.in_(channels) if channels else sa.true(),
    )
    with engine.connect() as conn:
        return int(conn.scalar(query) or 0)


def reached_once(conn: Connection, channels: Mapping[int, int]) -> dict[int, int]:
    """Of the campaigns (by key) with several channels (``channels``: key -> how many), the
    recipients some channel delivered to, each once (a double is one recipient): what
    every count of "reached" shows for them. One query, for those campaigns only."""
    several = [key for key, count in channels.items() if count > 1]
    reached = dict.fromkeys(several, 0)
    if several:
        reached.update(
            conn.execute(
                sa.select(messages.c.campaign_key, sa.func.count(sa.distinct(messages.c.recipient)))
                .where(
                    messages.c.campaign_key.in_(several),
                    messages.c.status == Status.DELIVERED.value,
                )
                .group_by(messages.c.campaign_key)
            ).all()
        )
    return reached


def status_counts(engine: Engine, campaign_id: str) -> dict[Status, int]:
    """Recipients per status (every status present, zeros included)."""
    query = (
        sa.select(messages.c.status, sa.func.count())
        .where(messages.c.campaign_key == key_of(campaign_id))
        .group_by(messages.c.status)
    )
    counts = dict.fromkeys(Status, 0)
    with engine.connect() as conn:
        for status, count in conn.execute(query):
            counts[Status(status)] = count
    return counts


def queued_batches(
    engine: Engine, campaign_id: str, provider: str | None = None
) -> list[tuple[int, str]]:
    """(batch, provider) pairs that still have ``queued`` messages (to re-enqueue after a
    crash, a pause or a halt), optionally only ``provider``'s."""
    query = (
        sa.select(messages.c.batch, messages.c.provider)
        .where(
            messages.c.campaign_key == key_of(campaign_id), messages.c.status == Status.QUEUED.value
        )
        .distinct()
        .order_by(messages.c.batch, messages.c.provider)
    )
    if provider is not None:
        query = query.where(messages.c.provider == provider)
    with engine.connect() as conn:
        return [(batch, name) for batch, name in conn.execute(query)]


def by_provider(engine: Engine, campaign_id: str) -> dict[str, dict[str, int]]:
    """Recipients per status for each provider of the campaign."""
    query = (
        sa.select(messages.c.provider, messages.c.status, sa.func.count())
        .where(messages.c.campaign_key == key_of(campaign_id))
        .group_by(messages.c.provider, messages.c.status)
    )
    found: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        for provider, status, count in conn.execute(query):
            found.setdefault(provider, {})[status] = count
    return found


def progress_state(
    stored: str, done: bool, halts: Mapping[str, str], waiting: AbstractSet[str]
) -> str:
    """The state ``loa campaign status`` shows: the stored one (scheduled, paused,
    cancelled …) unless it is ``running``, which reads ``completed`` once every recipient
    is final (``done``), and ``halted`` when every provider still holding queued messages
    (``waiting``) is among the halted ones (``halts``: provider -> why)."""
    if stored != "running":
        return stored
    if done:
        return "completed"
    # Halted when nothing left can move without an operator: every provider holding
    # queued messages is halted. While another provider still sends, it is running
    # (and the reason says which provider waits).
    # (With nothing queued it waits only for receipts: running, whatever else is halted.)
    if waiting and waiting <= halts.keys():
        return "halted"
    return "running"


@dataclass(frozen=True)
class CampaignSummary:
    """Every row of the list accounted for: ``rows_read`` equals the recipients plus the
    rejected plus the duplicates, and every recipient is in exactly one status."""

    campaign: CampaignRecord
    statuses: dict[Status, int]
    #: Halted providers that still hold some of this campaign's queued messages, and why.
    halts: dict[str, str] = field(default_factory=dict)
    #: Providers that still hold queued messages of this campaign.
    waiting: frozenset[str] = frozenset()
    #: What the campaign waits for (``ledger.waiting.WaitingFor``: the sending hours, a
    #: halt, a cooldown, a pause …), when someone asked (``worker.campaign.waiting.explain``);
    #: ``None``: not asked, or sending.
    waiting_for: WaitingFor | None = None
    #: SMS parts billed so far (``parts_billed``): what the report shows as well.
    parts: int = 0
    #: The one pass over the messages it was counted from (``ledger.tally``): what
    #: ``explain`` reads per provider, instead of the messages again.
    tally: Tally | None = field(default=None, repr=False, compare=False)

    @property
    def recipients(self) -> int:
        return sum(self.statuses.values())

    @property
    def final(self) -> int:
        return sum(n for s, n in self.statuses.items() if s in FINAL)

    @property
    def done(self) -> bool:
        return self.final == self.recipients

    @property
    def progress_state(self) -> str:
        return progress_state(self.campaign.state, self.done, self.halts, self.waiting)

    @property
    def state_reason(self) -> str | None:
        if self.campaign.state == "running" and self.halts:
            return "; ".join(
                f"provider {name} halted: {why}" for name, why in sorted(self.halts.items())
            )
        return self.campaign.state_reason

    @property
    def stopped(self) -> bool:
        """Paused, halted or cancelled: nothing more will be sent until someone acts."""
        return self.progress_state not in ("running", "completed")

    def as_dict(self) -> dict[str, Any]:
        intake = self.campaign.intake
        return {
            "campaign": self.campaign.id,
            "name": self.campaign.name,
            "provider": self.campaign.provider,
            "state": self.progress_state,
            "state_reason": self.state_reason,
            "halted_providers": dict(sorted(self.halts.items())),
            "created_at": self.campaign.created_at.isoformat(),
            "valid_until": self.campaign.valid_until.isoformat(),
            "rows_read": intake.get("rows_read", 0),
            "rejected": intake.get("rejected", 0),
            "rejected_by_reason": intake.get("rejected_by_reason", {}),
            "duplicates": intake.get("duplicates", 0),
            # Kept off the list on purpose (opt-outs, Do-Not-Call, residents): without
            # them the intake did not add up (read = rejected + duplicates + suppressed
            # + recipients).
            "suppressed": intake.get("suppressed", 0),
            "suppressed_by_list": intake.get("suppressed_by_list", {}),
            "legacy_converted": intake.get("legacy_converted", 0),
            # With several channels, a recipient has a message per channel: the statuses
            # count messages, the recipients are those planned (plus arrivals' welcomes).
            "recipients": self.recipients
            if self.campaign.spec.channels is None
            else self.recipients // len(self.campaign.spec.channel_list),
            "messages": self.recipients,
            # Planned at launch (None for an arrivals campaign, which has no plan) …
            "parts_planned": intake.get("parts"),
            "parts": self.parts,  # … and billed so far, from the messages (as the report)
            "statuses": {s.value: n for s, n in self.statuses.items()},
            "final": self.final,
            "waiting_for": None if self.waiting_for is None else self.waiting_for.as_dict(),
        }


def summarise(engine: Engine, campaign_id: str) -> CampaignSummary:
    """Raises ``CampaignNotFound``."""
    from ledger.tally import tally

    load_campaign(engine, campaign_id)  # raises for an unknown id
    counted = tally(engine, campaign_id)
    statuses = counted.statuses()
    # The campaign's state is read after its messages: a cancel commits the state with
    # the messages it cancels, so a state read after them is at least as new. Read before,
    # a cancel landing between the two reads showed every message final under ``running``,
    # which reads ``completed``; a watch then stopped on a state the campaign never had.
    campaign = load_campaign(engine, campaign_id)
    halts = all_halts(engine)
    waiting: frozenset[str] = frozenset()
    if halts and statuses[Status.QUEUED]:
        waiting = frozenset(g.provider for g in counted.groups if g.status is Status.QUEUED)
    blocking = {name: why for name, why in halts.items() if name in waiting}
    texts: tuple[int, ...] = ()
    if campaign.spec.channels is not None:
        text = campaign.spec.text_channel
        texts = (-1 if text is None else text,)  # template channels alone bill no SMS part
    parts = counted.parts_billed(texts)
    return CampaignSummary(campaign, statuses, blocking, waiting, parts=parts, tally=counted)


def providers_with_queued(conn: Connection, keys: Collection[int]) -> dict[int, frozenset[str]]:
    """The provider instances still holding queued messages, for each campaign (by key) in
    ``keys`` that has some: what tells a halted provider's campaign from a running one
    (``progress_state``), for lists of campaigns (the daily report, ``loa campaign list``)."""
    found: dict[int, set[str]] = {}
    if keys:
        for key, provider in conn.execute(
            sa.select(messages.c.campaign_key, messages.c.provider)
            .where(
                messages.c.campaign_key.in_(list(keys)), messages.c.status == Status.QUEUED.value
            )
            .distinct()
        ):
            found.setdefault(key, set()).add(provider)
    return {key: frozenset(providers) for key, providers in found.items()}
