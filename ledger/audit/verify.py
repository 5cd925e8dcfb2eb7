"""``loa audit verify``: the log checked from the events as they are now, against every
commitment made to it, by someone who trusts nothing else in the database.

1. **The hash chain** (``ledger.chain``): the first seal whose link does not hold (an
   event edited, deleted or moved; a seal removed) is ``broken``.
2. **The Merkle tree** over the same events in the same order: at the size of every
   checkpoint the ledger signed, its root must be the checkpoint's, and the checkpoint
   signed by this ledger's key; a checkpoint larger than the log means the log was cut
   off. Every earlier verdict's (size, head, root) must still hold too. Events rewritten
   and re-chained from the start leave a chain that holds, and a tree that no longer
   has the roots it was signed with.
3. **Checkpoints the auditor holds** (``held``): each consistent with the tree now, and
   signed by the key the auditor was given.
4. **Every message against its events**: its status must be the one its last event moved
   it to (no event: still ``queued``), and its error code the code of that move (what a
   report's breakdown of failures counts). ``UPDATE messages SET status = 'delivered'``
   leaves the log intact and the row a liar: named here, and reports refuse to vouch.

Each finding names what was altered; ``Verdict.ok`` only when there is none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from campaigns.status import Status, can_move
from ledger.audit import checkpoints as notes
from ledger.audit.log import sealed
from ledger.audit.merkle import Peaks, leaf_hash
from ledger.audit.rows import rows_digest
from ledger.chain import GENESIS, Verdict, canonical, link_of, not_sealed, stamp
from ledger.schema import campaigns, checkpoints, events, messages, verifications

#: Messages whose rows disagree with their events, named one by one at most this many.
NAMED = 20


@dataclass
class _Commitment:
    """A (size, root or head) the log committed to, and how to name it."""

    label: str
    size: int
    root: bytes | None = None
    head: str | None = None


def verify_log(
    engine: Engine,
    key: tuple[str, bytes] | None = None,
    held: Sequence[notes.Checkpoint] = (),
    page: int = 10_000,  # pragma: no mutate (page size: the same verdict read in any pages)
) -> Verdict:
    """Verify the log (see the module's documentation).

    Parameters:
        key: this ledger's verifier key (name, Ed25519 public key), to check the
            checkpoints' signatures by; None: their roots are checked, not who signed.
        held: checkpoints the auditor brought (``checkpoints.parse``d), checked against
            the tree and, with ``key``, its signature.

    Returns:
        The verdict: ``broken`` for the chain, ``problems`` for everything else.
    """
    verdict = Verdict()
    with engine.connect() as conn:
        commitments = _commitments(conn, key, held, verdict)
        _walk(conn, commitments, verdict, page)
        _replay(conn, verdict)
        _counted(conn, verdict)
        if verdict.broken is None:  # past a break, nothing sealed can be counted on
            verdict.unsealed = _unsealed(conn)
    return verdict


def _commitments(
    conn: Connection,
    key: tuple[str, bytes] | None,
    held: Sequence[notes.Checkpoint],
    verdict: Verdict,
) -> list[_Commitment]:
    """Every (size, root/head) to check the tree against; signatures checked here."""
    found: list[_Commitment] = []
    for row in conn.execute(sa.select(checkpoints).order_by(checkpoints.c.id)):
        label = f"checkpoint #{row.id} ({row.size} events, {stamp(row.at)})"
        try:
            note = notes.parse(row.note)
            if key is not None:
                notes.check(note, *key)
        except notes.CheckpointError as exc:
            verdict.problems.append(f"{label}: {exc}")
            continue
        if (note.size, note.root.hex()) != (row.size, row.root):
            verdict.problems.append(f"{label}: its row differs from its signed note: altered")
        found.append(_Commitment(label, note.size, root=note.root))
    for number, note in enumerate(held, start=1):
        label = f"the checkpoint you hold{f' #{number}' if len(held) > 1 else ''}"
        label += f" ({note.size} events, {note.time or 'no time'})"
        if key is not None:
            try:
                notes.check(note, *key)
            except notes.CheckpointError as exc:
                verdict.problems.append(f"{label}: {exc}")
        found.append(_Commitment(label, note.size, root=note.root))
    for row in conn.execute(sa.select(verifications).order_by(verifications.c.id)):
        label = f"the verification of {stamp(row.at)} ({row.sealed} events)"
        root = bytes.fromhex(row.root) if row.root else None
        found.append(_Commitment(label, row.sealed, root=root, head=row.head))
    verdict.checkpoints = len(found)
    return found


def _walk(conn: Connection, commitments: list[_Commitment], verdict: Verdict, page: int) -> None:
    """Recompute the chain and the tree, seal by seal, checking each commitment at its
    size; stops at the first broken link (nothing after it can be trusted)."""
    by_size: dict[int, list[_Commitment]] = {}
    for commitment in commitments:
        by_size.setdefault(commitment.size, []).append(commitment)
    peaks, previous, expected = Peaks(), GENESIS, 1
    moves = _Moves(verdict)
    _check(by_size.pop(0, []), peaks, previous, verdict)
    for row in sealed(conn, page=page):
        why = None
        if row.seq != expected:
            why = f"seal out of sequence (expected {expected})"
        elif row.id is None:
            why = "event missing"
        else:
            encoded = canonical(row)  # once: the chain's link and the tree's leaf
            if link_of(previous, encoded) != row.hash:
                why = "event altered"
        if why is not None:
            verdict.broken = {"seq": row.seq, "event_id": row.event_id, "reason": why}
            break
        previous, expected = row.hash, expected + 1
        peaks.append(leaf_hash(encoded))
        if row.message_id is not None:
            moves.check(row)
        verdict.sealed += 1
        _check(by_size.pop(peaks.size, []), peaks, previous, verdict)
    verdict.head, verdict.root = previous, peaks.root().hex()
    _providers(conn, moves.provider, verdict)
    if verdict.broken is not None:
        return  # what lies past the break is the break's to explain
    for size in sorted(by_size):
        for commitment in by_size[size]:
            verdict.problems.append(
                f"{commitment.label}: the log has only {peaks.size} sealed events: "
                f"{size - peaks.size} were cut off"
            )


class _Moves:
    """Each message's events, in log order, must move it as ``campaigns.status`` allows,
    each from where the one before left it: an event made up (a receipt turning an
    ``undelivered`` message ``delivered``, a move no worker makes) is named, though it
    was sealed like any other."""

    def __init__(self, verdict: Verdict) -> None:
        self.verdict, self.state, self.named = verdict, {}, 0
        #: The provider each message was last claimed for (a claim's event names it).
        self.provider: dict[int, str] = {}

    def check(self, row: Any) -> None:
        if isinstance(row.detail, dict) and "provider" in row.detail:
            self.provider[row.message_id] = row.detail["provider"]
        was = self.state.get(row.message_id, Status.QUEUED.value)
        why = None
        if row.from_status != was:
            why = f"moves it from {row.from_status}, but its events had left it {was}"
        else:
            try:
                allowed = can_move(Status(row.from_status), Status(row.to_status))
            except ValueError:
                allowed = False
            if not allowed:
                why = f"moves it from {row.from_status} to {row.to_status}, which no rule allows"
        self.state[row.message_id] = row.to_status
        if why is None:
            return
        self.named += 1
        if self.named <= NAMED:
            self.verdict.problems.append(
                f"event {row.id} (seal {row.seq}) of message {row.message_id}: {why}: "
                "made up or altered"
            )
        elif self.named == NAMED + 1:
            self.verdict.problems.append("… and more events that move messages as none may")


def _providers(conn: Connection, claimed: dict[int, str], verdict: Verdict) -> None:
    """Each message a worker claimed is with the provider its last claim named: a row
    moved to another provider (another price, another breakdown) behind the log is
    named."""
    if not claimed:
        return
    named = 0
    # A queued message may have moved to a fallback provider since its last claim (a
    # halt gave it back, a reroute moved it): its next claim names the new one.
    query = (
        sa.select(messages.c.id, messages.c.provider)
        .where(messages.c.status != Status.QUEUED.value)
        .order_by(messages.c.id)
    )
    for message_id, provider in conn.execution_options(yield_per=20_000).execute(query):
        was = claimed.get(message_id)
        if was is None or was == provider:
            continue
        named += 1
        if named <= NAMED:
            verdict.problems.append(
                f"message {message_id}: its row says provider {provider}, its claim "
                f"{was}: the row was altered"
            )
    if named > NAMED:
        verdict.problems.append(f"… {named - NAMED} more messages moved to another provider")


def _check(found: list[_Commitment], peaks: Peaks, head: str, verdict: Verdict) -> None:
    for commitment in found:
        if commitment.root is not None and commitment.root != peaks.root():
            verdict.problems.append(
                f"{commitment.label}: the first {peaks.size} events no longer hash to its "
                "root: rewritten"
            )
        elif commitment.head is not None and commitment.head != head:
            verdict.problems.append(
                f"{commitment.label}: the chain's link at {peaks.size} is no longer the "
                "head it recorded: rewritten"
            )


def _replay(conn: Connection, verdict: Verdict) -> None:
    """Name the messages whose status is not the one their last event moved them to, or
    whose error code is not the one that move left."""
    last = (
        sa.select(events.c.message_id, sa.func.max(events.c.id).label("last_id"))
        .where(events.c.message_id.is_not(None))
        .group_by(events.c.message_id)
        .subquery()
    )
    logged = sa.func.coalesce(events.c.to_status, "queued")
    code = _code_left(events)
    query = (
        sa.select(
            messages.c.id,
            campaigns.c.id.label("campaign"),
            messages.c.status,
            logged,
            messages.c.error_code,
            code,
        )
        .select_from(
            messages.join(campaigns, campaigns.c.key == messages.c.campaign_key)
            .outerjoin(last, last.c.message_id == messages.c.id)
            .outerjoin(events, events.c.id == last.c.last_id)
        )
        .where(sa.or_(messages.c.status != logged, messages.c.error_code.is_distinct_from(code)))
        .order_by(messages.c.id)
    )
    disagree = conn.execute(query.limit(NAMED + 1)).all()
    for row in disagree[:NAMED]:
        if row[2] != row[3]:
            said, logged_as = f"says {row[2]}", f"say {row[3]}"
        else:
            said, logged_as = f"has the error code {row[4]!r}", f"say {row[5]!r}"
        verdict.problems.append(
            f"message {row[0]} (campaign {row[1]}): its row {said}, "
            f"its events {logged_as}: the row was altered"
        )
    if len(disagree) > NAMED:
        count = conn.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
        verdict.problems.append(f"… {count - NAMED} more messages whose rows disagree")
    verdict.messages = conn.scalar(sa.select(sa.func.count()).select_from(messages)) or 0


def _code_left(event: sa.Table) -> sa.ColumnElement[Any]:
    """The error code the message's last move left on its row (``None`` without an event):
    a cancellation's is always ``campaign_cancelled`` (a bulk cancellation's events
    once carried none); a receipt explains only an undelivered message; any other move
    leaves its own code, cut to the column's 32 characters (``ledger.messages._move``,
    ``ledger.receipts``, ``ledger.finaliser``)."""
    return sa.case(
        (event.c.to_status == "cancelled", "campaign_cancelled"),
        (
            sa.and_(event.c.source == "receipt", event.c.to_status != "undelivered"),
            sa.null(),
        ),
        else_=sa.func.substr(event.c.code, 1, 32),
    )


def _counted(conn: Connection, verdict: Verdict) -> None:
    """Each campaign has as many messages as its launch and arrivals said they made
    (``planned``, ``welcomes`` in the planner's events): a message row added or deleted
    behind the log is named by its campaign."""
    said: dict[str, int] = {}
    digests: dict[str, str] = {}
    query = sa.select(events.c.campaign_id, events.c.detail).where(
        events.c.source == "planner", events.c.message_id.is_(None)
    )
    for campaign_id, detail in conn.execute(query):
        made = (detail or {}).get("planned", 0) + (detail or {}).get("welcomes", 0)
        said[campaign_id] = said.get(campaign_id, 0) + int(made or 0)
        if (detail or {}).get("rows_digest"):
            digests[campaign_id] = detail["rows_digest"]
    keys = dict(conn.execute(sa.select(campaigns.c.id, campaigns.c.key)).all())
    for campaign_id, digest in sorted(digests.items()):
        if campaign_id in keys and rows_digest(conn, keys[campaign_id]) != digest:
            verdict.problems.append(
                f"campaign {campaign_id}: its messages' carriers or parts are not those its "
                "launch recorded: rows were altered"
            )
    counted = dict(
        conn.execute(
            sa.select(campaigns.c.id, sa.func.count(messages.c.id))
            .select_from(campaigns.outerjoin(messages, messages.c.campaign_key == campaigns.c.key))
            .group_by(campaigns.c.id)
        ).all()
    )
    for campaign_id in sorted(set(said) | set(counted)):
        there, made = counted.get(campaign_id, 0), said.get(campaign_id)
        if made is None:
            verdict.problems.append(f"campaign {campaign_id}: no launch in the log")
        elif there != made:
            verdict.problems.append(
                f"campaign {campaign_id}: {there} messages, its launch made {made}: rows were "
                "added or deleted"
            )


def _unsealed(conn: Connection) -> int:
    """Events not sealed yet, wherever their ids are (not only near the highest sealed:
    an event with an id far from the others must be counted too)."""
    query = sa.select(sa.func.count()).select_from(events).where(not_sealed())
    return conn.scalar(query) or 0


__all__ = ["verify_log"]
