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
from sqlalchemy.engine import Connection, Engine

from ledger.audit.checkpoints import Checkpoint, sign
from ledger.audit.merkle import Peaks, Tree, leaf_hash
from ledger.chain import canonical, lock_sealers
from ledger.schema import checkpoints, events, now, seals

#: Rows read at a time while streaming the log.
PAGE = 10_000


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


def latest(conn: Connection) -> Any | None:
    """The largest checkpoint (the newest of that size), or None."""
    newest = sa.select(checkpoints).order_by(checkpoints.c.size.desc(), checkpoints.c.id.desc())
    return conn.execute(newest.limit(1)).first()


def peaks_of(row: Any) -> Peaks:
    """The compact range a checkpoint row kept."""
    hashes = [bytes.fromhex(h) for h in row.peaks.split(",") if h]
    return Peaks(row.size, hashes)


def make_checkpoint(engine: Engine, origin: str, seed: bytes) -> Checkpoint:
    """Sign a checkpoint of every event sealed so far and keep it. Only the events sealed
    since the last checkpoint are read and hashed (its peaks hold the rest); sealers wait
    meanwhile, so the size is exact.

    Raises:
        LogBroken: a sealed event since the last checkpoint is missing.
    """
    with engine.begin() as conn:
        lock_sealers(conn, wait=True)
        last = latest(conn)
        peaks = peaks_of(last) if last is not None else Peaks()
        for row in sealed(conn, after=peaks.size):
            peaks.append(leaf_of(row))
        checkpoint = sign(origin, peaks.size, peaks.root(), now(), seed)
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
