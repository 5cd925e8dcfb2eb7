"""The log as the ledger holds it: the sealed events are the Merkle tree's leaves, in the
order sealed (leaf ``i`` is seal ``seq = i + 1``, its data the event's canonical encoding,
``ledger.chain.canonical``, the encoding the hash chain has always covered: an old
ledger's events enter the tree in their order, unchanged), and the checkpoints signed over
them (``ledger.audit.checkpoints``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Connection, Engine

from ledger.audit.checkpoints import Checkpoint, public_of, sign
from ledger.audit.merkle import Peaks, Tree, leaf_hash
from ledger.chain import canonical, lock_sealers
from ledger.schema import checkpoints, events, now, seals

#: Rows read at a time while streaming the log.
PAGE = 10_000

_log = structlog.get_logger(__name__)


class LogBroken(RuntimeError):
    """A sealed event is missing: no tree can be signed over it (``loa audit verify``
    says which)."""


def sealed(conn: Connection, after: int = 0, page: int = PAGE) -> Iterator[Any]:
    """The seals after ``after`` (a seq) in order, each with its event's columns
    (``id`` None: the event is missing), read a page at a time."""
    query = (
        sa.select(seals.c.seq, seals.c.event_id, seals.c.hash, events)
        .select_from(seals.outerjoin(events, events.c.id == seals.c.event_id))
        .order_by(seals.c.seq)
    )
    while True:
        rows = conn.execute(query.where(seals.c.seq > after).limit(page)).all()
        yield from rows
        if len(rows) < page:
            return
        after = rows[-1].seq


def leaf_of(row: Any) -> bytes:
    """The leaf hash of one sealed event.

    Raises:
        LogBroken: its event is missing.
    """
    if row.id is None:
        raise LogBroken(f"seal {row.seq}: event {row.event_id} is missing")
    return leaf_hash(canonical(row))


def tree(conn: Connection, size: int | None = None) -> Tree:
    """The tree of the first ``size`` sealed events (all by default), every level kept,
    for proofs (32 bytes a leaf, twice over).

    Raises:
        LogBroken: a sealed event is missing.
    """
    leaves = []
    for row in sealed(conn):
        if size is not None and len(leaves) >= size:
            break
        leaves.append(leaf_of(row))
    return Tree(leaves)


def trusted_start(conn: Connection, origin: str, public: bytes) -> Peaks:
    """The compact range of the largest checkpoint this log's key signed whose kept peaks
    still lead to its signed root: where a new checkpoint goes on from. A row that fails
    (not signed by this key, its size or peaks not its note's) is passed over and logged:
    whoever can insert a row with peaks of a tree of their own making would otherwise
    have the next checkpoint signed over their tree, without ever holding the key."""
    from ledger.audit.checkpoints import CheckpointError, check, parse

    newest_first = sa.select(checkpoints).order_by(
        checkpoints.c.size.desc(), checkpoints.c.id.desc()
    )
    for row in conn.execute(newest_first):
        try:
            note = parse(row.note)
            check(note, origin, public)
            peaks = peaks_of(row)
            if note.size != row.size or peaks.root() != note.root:
                raise CheckpointError("its kept peaks do not lead to its signed root")
        except (CheckpointError, ValueError) as exc:
            _log.warning("checkpoint_passed_over", checkpoint=row.id, size=row.size, why=str(exc))
            continue
        return peaks
    return Peaks()


def peaks_of(row: Any) -> Peaks:
    """The compact range a checkpoint row kept.

    Raises:
        ValueError: the row's peaks are not hex, or not as many as its size has.
    """
    hashes = [bytes.fromhex(h) for h in row.peaks.split(",") if h]
    return Peaks(row.size, hashes)


def make_checkpoint(
    engine: Engine, origin: str, seed: bytes, extensions: tuple[str, ...] = ()
) -> Checkpoint:
    """Sign a checkpoint of every event sealed so far and keep it. Only the events sealed
    since the last checkpoint this key signed are read and hashed (its peaks hold the
    rest, ``trusted_start``); sealers wait meanwhile, so the size is exact.
    ``extensions``: more signed lines (``ledger.audit.checkpoints.sign``).

    Raises:
        LogBroken: a sealed event since the last checkpoint is missing.
    """
    with engine.begin() as conn:
        lock_sealers(conn, wait=True)
        peaks = trusted_start(conn, origin, public_of(seed))
        for row in sealed(conn, after=peaks.size):
            peaks.append(leaf_of(row))
        checkpoint = sign(origin, peaks.size, peaks.root(), now(), seed, extensions)
        conn.execute(
            checkpoints.insert().values(
                size=checkpoint.size,
                root=checkpoint.root.hex(),
                at=now(),
                note=checkpoint.text,
                peaks=",".join(p.hex() for p in peaks.state),
            )
        )
    return checkpoint
