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
from ledger.audit.fallbacks import Justified, marks
from ledger.audit.log import sealed
from ledger.audit.merkle import Peaks, leaf_hash
from ledger.audit.rows import NAMED, campaigns_agree, counted, replay
from ledger.chain import GENESIS, Verdict, canonical, link_of, not_sealed, stamp
from ledger.schema import checkpoints, events, messages, verifications


class ForeignKey(ValueError):
    """The key given to check signatures by signed none of the ledger's checkpoints: a
    mistyped key or log name, another ledger's key, or checkpoints all signed again with
    another key. Not a verdict by itself (the message says which keys): ``loa audit
    verify`` records nothing, the housekeeper records its verdict as not holding."""


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

    Raises:
        ForeignKey: ``key`` signed none of the ledger's checkpoints (there are some).
    """
    verdict = Verdict()
    with engine.connect() as conn:
        if key is not None:
            _signs_some(conn, key, held)
        commitments = _commitments(conn, key, held, verdict)
        _walk(conn, commitments, verdict, page)
        replay(conn, verdict)
        counted(conn, verdict)
        campaigns_agree(conn, verdict)
        marks(conn, verdict)
        if verdict.broken is None:  # past a break, nothing sealed can be counted on
            verdict.unsealed = _unsealed(conn)
    return verdict


def _signs_some(conn: Connection, key: tuple[str, bytes], held: Sequence[notes.Checkpoint]) -> None:
    """Raise ``ForeignKey`` when the ledger has checkpoints and ``key`` signed none of them
    nor of those the auditor holds: every one would otherwise be named altered, for a
    key or log name mistyped. (A checkpoint held and signed by the key shows it is the
    right one: the ledger's, all signed by another, were signed again.)"""
    kid = notes.key_id(*key)
    if any((name, signed) == (key[0], kid) for note in held for name, signed, _ in note.signatures):
        return
    found: set[str] = set()
    for (note,) in conn.execute(sa.select(checkpoints.c.note)):
        try:
            signatures = notes.parse(note).signatures
        except notes.CheckpointError:
            continue
        if any((name, signed) == (key[0], kid) for name, signed, _ in signatures):
            return
        found.update(f"{name}+{signed.hex()}" for name, signed, _ in signatures)
    if found:
        raise ForeignKey(
            f"the key {key[0]}+{kid.hex()} signed none of this ledger's checkpoints (they are "
            f"signed by {', '.join(sorted(found))}): a mistyped key or LOA_AUDIT_LOG_NAME, or "
            "another ledger's key; if it is the key the carrier gave you, every checkpoint "
            "was signed again with another: treat the log as altered."
        )


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
    moves, justified = _Moves(verdict), Justified(conn, verdict)
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
            justified.check(row, moves.state)
        verdict.sealed += 1
        _check(by_size.pop(peaks.size, []), peaks, previous, verdict)
    verdict.head, verdict.root = previous, peaks.root().hex()
    _providers(conn, moves.provider, verdict)
    _starts(conn, moves, verdict)
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
        #: Messages whose first event moves them out of ``standby``: a later channel's
        #: (held to their rows' ``channel`` by ``_starts``).
        self.standing: set[int] = set()

    def check(self, row: Any) -> None:
        if isinstance(row.detail, dict) and "provider" in row.detail:
            self.provider[row.message_id] = row.detail["provider"]
        elif row.to_status == Status.QUEUED.value:
            # Given back: a halt may move it to a fallback provider before its next
            # claim, or before it is cancelled or expires waiting (never sent again).
            self.provider.pop(row.message_id, None)
        was = self.state.get(row.message_id)
        if was is None:  # where it started: queued, or standing by for the channel before
            was = Status.QUEUED.value
            if row.from_status == Status.STANDBY.value:
                was = row.from_status
                self.standing.add(row.message_id)
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


def _starts(conn: Connection, moves: _Moves, verdict: Verdict) -> None:
    """Only a later channel's message (``channel`` > 0, bound to the launch) may start
    ``standby``, and every one of them does: a first channel's message made to stand by,
    or a fallback's message sent without waiting its turn, is named."""
    later = set(conn.scalars(sa.select(messages.c.id).where(messages.c.channel > 0)))
    if not later and not moves.standing:
        return
    wrong = sorted(moves.standing - later)
    wrong += sorted(i for i in later - moves.standing if i in moves.state)
    for message_id in wrong[:NAMED]:
        where = "stands by" if message_id in moves.standing else "is queued"
        verdict.problems.append(
            f"message {message_id}: its first event says it {where} at launch, its row's "
            "channel says otherwise: altered"
        )
    if len(wrong) > NAMED:
        verdict.problems.append(f"… {len(wrong) - NAMED} more messages started as none may")


def _providers(conn: Connection, claimed: dict[int, str], verdict: Verdict) -> None:
    """Each message a worker claimed is with the provider its last claim named: a row
    moved to another provider (another price, another breakdown) behind the log is
    named."""
    if not claimed:
        return
    named = 0
    # A message given back since its last claim is not in ``claimed`` (``_Moves``).
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


def _unsealed(conn: Connection) -> int:
    """Events not sealed yet, wherever their ids are (not only near the highest sealed:
    an event with an id far from the others must be counted too)."""
    query = sa.select(sa.func.count()).select_from(events).where(not_sealed())
    return conn.scalar(query) or 0


__all__ = ["verify_log"]
