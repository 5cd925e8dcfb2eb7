"""The ledger's rows held to the log: every fact a report shows about a message or a
campaign must be one its sealed events, or the launch's own event, commit to.

- ``replay``: each message's status, error code, sent and final times are where its
  last events left them;
- ``counted``: each campaign has as many messages as its launch and arrivals made, with
  the carriers and parts they planned (``rows_digest``: the parts billed, the network
  counted in every breakdown);
- ``campaigns_agree``: each campaign's state is the one its last state event set, its
  intake counts (rows read, rejected, duplicates, who launched) and its spec (prices,
  texts, sender) those its launch and arrivals recorded (``spec_digest``).

    rows_digest = SHA-256( "\\n".join(f"{id},{carrier or ''},{parts}") in id order )

(a message of a later channel, ``channel`` > 0, adds ``f",{channel}"``: the channel it
went by, which decides where its events may start; a campaign with its SMS alone digests
as it always did).

PostgreSQL computes it in the server (one ``string_agg``, no row leaves it); SQLite, in
Python: the same bytes either way (a test holds them to it). An arrival's event commits
to the rows of its own batches.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from campaigns.status import FINAL, Status
from ledger.chain import Verdict, stamp
from ledger.schema import campaigns, events, messages

#: Messages whose rows disagree with their events, named one by one at most this many.
NAMED = 20

_PG_DIGEST = """
    SELECT encode(sha256(convert_to(coalesce(string_agg(
        id::text || ',' || coalesce(carrier, '') || ',' || parts::text
            || CASE WHEN channel > 0 THEN ',' || channel::text ELSE '' END,
        E'\\n' ORDER BY id
    ), ''), 'UTF8')), 'hex')
    FROM messages WHERE campaign_key = %(key)s AND batch BETWEEN %(low)s AND %(high)s
"""
#: Every batch (an arrival's event names its own).
ALL_BATCHES = (0, 2**31 - 1)


def rows_digest(conn: Connection, campaign_key: int, batches: tuple[int, int] = ALL_BATCHES) -> str:
    """The digest of a campaign's messages' ids, carriers and parts (see above), of the
    batches ``batches`` (first, last) only when given."""
    low, high = batches
    if conn.dialect.name == "postgresql":
        params = {"key": campaign_key, "low": low, "high": high}
        return str(conn.exec_driver_sql(_PG_DIGEST, params).scalar())
    query = (
        sa.select(messages.c.id, messages.c.carrier, messages.c.parts, messages.c.channel)
        .where(messages.c.campaign_key == campaign_key, messages.c.batch.between(low, high))
        .order_by(messages.c.id)
    )
    lines = (
        f"{i},{carrier or ''},{parts}" + (f",{channel}" if channel else "")
        for i, carrier, parts, channel in conn.execute(query)
    )
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


#: How far a row's sent and final times may be from their events' (seconds): the ledger
#: once took the two from separate clock readings; a time moved by hours is named.
TIME_SLACK = 60


def replay(conn: Connection, verdict: Verdict) -> None:
    """Name the messages whose row is not where their last event left it: its status, its
    error code (``_code_left``), its final time (a final message's is its last event's)
    and its sent time (its ``sent`` event's), to ``TIME_SLACK``."""
    # One pass over the events: each message's last one, and when it was sent.
    sent_at = sa.func.max(events.c.at).filter(events.c.to_status == Status.SENT.value)
    last = (
        sa.select(
            events.c.message_id,
            sa.func.max(events.c.id).label("last_id"),
            sent_at.label("sent_at"),
        )
        .where(events.c.message_id.is_not(None))
        .group_by(events.c.message_id)
        .subquery()
    )
    # Where a message starts: queued, or standing by for the channel before (``channel``
    # is bound to the launch by ``rows_digest``).
    start = sa.case((messages.c.channel > 0, Status.STANDBY.value), else_=Status.QUEUED.value)
    logged = sa.func.coalesce(events.c.to_status, start)
    code = _code_left(events)
    final = messages.c.status.in_([s.value for s in FINAL])
    apart = _seconds_apart(conn)
    checks = {
        "status": messages.c.status != logged,
        "error code": messages.c.error_code.is_distinct_from(code),
        "final time": sa.or_(
            sa.and_(
                final,
                sa.or_(
                    messages.c.final_at.is_(None),
                    apart(messages.c.final_at, events.c.at) > TIME_SLACK,
                ),
            ),
            sa.and_(~final, messages.c.final_at.is_not(None)),
        ),
        "sent time": sa.or_(
            messages.c.sent_at.is_(None) != last.c.sent_at.is_(None),
            apart(messages.c.sent_at, last.c.sent_at) > TIME_SLACK,
        ),
    }
    shown = {
        "status": (messages.c.status, logged),
        "error code": (messages.c.error_code, code),
        "final time": (messages.c.final_at, sa.case((final, events.c.at), else_=sa.null())),
        "sent time": (messages.c.sent_at, last.c.sent_at),
    }
    columns = [messages.c.id, campaigns.c.id.label("campaign")]
    for name, check in checks.items():
        columns += [sa.case((check, 1), else_=0).label(name), *shown[name]]
    query = (
        sa.select(*columns)
        .select_from(
            messages.join(campaigns, campaigns.c.key == messages.c.campaign_key)
            .outerjoin(last, last.c.message_id == messages.c.id)
            .outerjoin(events, events.c.id == last.c.last_id)
        )
        .where(sa.or_(*checks.values()))
        .order_by(messages.c.id)
    )
    disagree = conn.execute(query.limit(NAMED + 1)).all()
    for row in disagree[:NAMED]:
        at = 2
        for name in checks:
            flagged, said, logged_as = row[at : at + 3]
            at += 3
            if flagged:
                row_said = f"says {said}" if name == "status" else f"'s {name} is {_shown(said)}"
                verdict.problems.append(
                    f"message {row[0]} (campaign {row[1]}): its row{' ' * (name == 'status')}"
                    f"{row_said}, its events say {_shown(logged_as)}: the row was altered"
                )
                break
    if len(disagree) > NAMED:
        count = conn.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
        verdict.problems.append(f"… {count - NAMED} more messages whose rows disagree")
    verdict.messages = conn.scalar(sa.select(sa.func.count()).select_from(messages)) or 0


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if hasattr(value, "astimezone"):
        return stamp(value)
    return str(value)


def _seconds_apart(conn: Connection) -> Any:
    """``f(a, b)``: SQL for how many seconds apart two times are, in this dialect (NULL
    when either is)."""
    if conn.dialect.name == "postgresql":
        return lambda a, b: sa.func.abs(sa.extract("epoch", a - b))
    return lambda a, b: sa.func.abs(sa.func.julianday(a) - sa.func.julianday(b)) * 86400


def _code_left(event: sa.Table) -> sa.ColumnElement[Any]:
    """The error code the message's last move left on its row (``None`` without an event):
    an operator's cancellation's is always ``campaign_cancelled`` (a bulk cancellation's
    events once carried none; a halted channel's, its own ``channel_halted``); a receipt explains only an undelivered message; any other move
    leaves its own code, cut to the column's 32 characters (``ledger.messages._move``,
    ``ledger.receipts``, ``ledger.finaliser``)."""
    return sa.case(
        (
            sa.and_(event.c.to_status == "cancelled", event.c.source != "fallback"),
            "campaign_cancelled",
        ),
        (
            sa.and_(event.c.source == "receipt", event.c.to_status != "undelivered"),
            sa.null(),
        ),
        else_=sa.func.substr(event.c.code, 1, 32),
    )


def counted(conn: Connection, verdict: Verdict) -> None:
    """Each campaign has as many messages as its launch and arrivals said they made
    (``planned``, ``welcomes`` in the planner's events), with the carriers and parts each
    committed to (``rows_digest``: a launch's over the campaign, an arrival's over its
    batches): a message row added, deleted or altered behind the log is named by its
    campaign."""
    said: dict[str, int] = {}
    digests: list[tuple[str, str, tuple[int, int]]] = []
    for campaign_id, detail in _planned(conn):
        # A campaign with several channels makes a message per recipient per channel.
        made = detail.get("planned", 0) * detail.get("channels", 1) + detail.get("welcomes", 0)
        said[campaign_id] = said.get(campaign_id, 0) + int(made or 0)
        if detail.get("rows_digest"):
            batches = tuple(detail.get("batches") or ALL_BATCHES)
            digests.append((campaign_id, detail["rows_digest"], batches))  # type: ignore[arg-type]
    keys = dict(conn.execute(sa.select(campaigns.c.id, campaigns.c.key)).all())
    altered = sorted(
        {
            campaign_id
            for campaign_id, digest, batches in digests
            if campaign_id in keys and rows_digest(conn, keys[campaign_id], batches) != digest
        }
    )
    for campaign_id in altered:
        verdict.problems.append(
            f"campaign {campaign_id}: its messages' carriers or parts are not those its "
            "launch recorded: rows were altered"
        )
    counts = dict(
        conn.execute(
            sa.select(campaigns.c.id, sa.func.count(messages.c.id))
            .select_from(campaigns.outerjoin(messages, messages.c.campaign_key == campaigns.c.key))
            .group_by(campaigns.c.id)
        ).all()
    )
    for campaign_id in sorted(set(said) | set(counts)):
        there, made = counts.get(campaign_id, 0), said.get(campaign_id)
        if made is None:
            verdict.problems.append(f"campaign {campaign_id}: no launch in the log")
        elif there != made:
            verdict.problems.append(
                f"campaign {campaign_id}: {there} messages, its launch made {made}: rows were "
                "added or deleted"
            )


def _planned(conn: Connection) -> list[tuple[str, dict[str, Any]]]:
    """(campaign, detail) of every planner event of a campaign (its launch, its
    arrivals), in log order."""
    query = (
        sa.select(events.c.campaign_id, events.c.detail)
        .where(events.c.source == "planner", events.c.message_id.is_(None))
        .order_by(events.c.id)
    )
    return [(c, d if isinstance(d, dict) else {}) for c, d in conn.execute(query)]


#: The campaign's columns its launch commits to, beside its spec (what a report shows:
#: its name, sender, provider, category, list).
SPEC_COLUMNS = ("name", "category", "brandname", "provider", "spec", "list_name")


def spec_digest(values: dict[str, Any]) -> str:
    """SHA-256 of a campaign's ``SPEC_COLUMNS`` as canonical JSON (keys sorted, no spaces,
    UTF-8): its prices, texts and sender as launched."""
    chosen = {name: values.get(name) for name in SPEC_COLUMNS}
    text = json.dumps(chosen, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def campaigns_agree(conn: Connection, verdict: Verdict) -> None:
    """Each campaign's row is what its events committed to: its state the one its last
    state event set (none: as launched, ``running`` or ``scheduled``; nothing moves a
    campaign out of ``cancelled``); its intake counts those its one launch recorded, plus
    its arrivals'; its spec the one every launch and arrival event's ``spec_digest``
    commits to (an event inserted later with another digest leaves the first one
    disagreeing)."""
    states: dict[str, str] = {}
    reopened: set[str] = set()
    query = (
        sa.select(events.c.campaign_id, events.c.detail)
        .where(events.c.message_id.is_(None), events.c.source != "planner")
        .order_by(events.c.id)
    )
    for campaign_id, detail in conn.execute(query):
        if isinstance(detail, dict) and isinstance(detail.get("state"), str):
            if states.get(campaign_id) == "cancelled" and detail["state"] != "cancelled":
                reopened.add(campaign_id)
            states[campaign_id] = detail["state"]
    intakes: dict[str, dict[str, Any]] = {}
    specs: dict[str, set[str]] = {}
    launches: dict[str, int] = {}
    for campaign_id, detail in _planned(conn):
        if detail.get("spec_digest"):
            specs.setdefault(campaign_id, set()).add(detail["spec_digest"])
        if "arrivals" in detail:
            intakes[campaign_id] = add_counts(intakes.get(campaign_id, {}), detail["arrivals"])
            continue
        launches[campaign_id] = launches.get(campaign_id, 0) + 1
        counts = {
            k: v
            for k, v in detail.items()
            if k not in ("list", "rows_digest", "spec_digest", "channels")
        }
        intakes[campaign_id] = add_counts(intakes.get(campaign_id, {}), counts)
    for campaign_id in sorted(c for c, n in launches.items() if n > 1):
        verdict.problems.append(
            f"campaign {campaign_id}: launched {launches[campaign_id]} times in the log, once "
            "in fact: made up"
        )
    for campaign_id in sorted(reopened):
        verdict.problems.append(
            f"campaign {campaign_id}: its events move it out of cancelled, which no rule "
            "allows: made up"
        )
    for row in conn.execute(sa.select(campaigns).order_by(campaigns.c.id)):
        said = states.get(row.id)
        if said is None and row.state not in ("running", "scheduled"):
            said = "running"
        if said is not None and row.state != said:
            verdict.problems.append(
                f"campaign {row.id}: its row says {row.state}, its events {said}: the row was "
                "altered"
            )
        if row.id in intakes and _nonzero(row.intake or {}) != _nonzero(intakes[row.id]):
            verdict.problems.append(
                f"campaign {row.id}: its intake counts (rows read, rejected, duplicates, who "
                "launched) are not those its launch and arrivals recorded: the row was altered"
            )
        if row.id in specs and specs[row.id] != {spec_digest(row._asdict())}:
            verdict.problems.append(
                f"campaign {row.id}: its spec (prices, texts, sender) is not the one it was "
                "launched with: the row was altered"
            )


def add_counts(total: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    """Counts (and dicts of counts) added key by key, as arrivals add to a campaign's
    intake (``ledger.arrivals``) and verify adds them up again; anything else (who
    launched) as the latest says."""
    out = dict(total)
    for name, value in more.items():
        if isinstance(value, dict):
            out[name] = add_counts(out.get(name) or {}, value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = (out.get(name) or 0) + value
        else:
            out[name] = value
    return out


def _nonzero(counts: dict[str, Any]) -> dict[str, Any]:
    """``counts`` without its zeros and empty dicts (an arrival that read nothing adds
    its keys, at zero, to the intake without an event)."""
    out = {}
    for name, value in counts.items():
        if isinstance(value, dict):
            value = _nonzero(value)
        if value not in (0, {}, None):
            out[name] = value
    return out
