"""The audit log at scale (issue #21): a ledger of a million events, sealed, checkpointed
and verified the way ``loa audit`` does it, on PostgreSQL.

Printed, all measured in this one run, in the same database through the same driver, each
beside a floor that does the same reading and hashing with nothing of Loa's (the events
streamed by one query, ``hashlib`` over a plain ``repr`` of each row, no canonical JSON,
no tree, no checks), subject and floor in turn (``benchmarks.figures``: medians):

- events sealed per second (``ledger.chain.seal_all``: the hash chain, as workers' events
  are sealed by the housekeeper): every event sealed in turn by the floor (the events
  read, chained with hashlib, as many link rows inserted by one statement into a copy of
  ``seals`` with its indexes, no lock) and by ``seal_all``; each side undone untimed (the
  links emptied; the seals deleted, the append-only trigger bypassed) and done again
  until its timed calls fill a second: at the quick size one pass is a fifth of a
  second, a few of a loaded machine's time slices;
- the first checkpoint (every event read and hashed as a leaf; each round but the last
  signs with a throwaway key so that it starts from nothing, and is deleted after,
  untimed); floor: every sealed event read and hashed as a leaf, no tree. Then a second
  one after 1 % more events (only those are read: the first one's peaks hold the rest;
  printed only, milliseconds);
- a full ``verify_log`` (chain and tree recomputed from every event, every checkpoint's
  root and signature, every message row replayed): the target is under a minute; floor:
  every sealed event read and the chain recomputed, nothing checked;
- the same leaves put into pymerkle's ``InmemoryTree``, the maintained Python RFC 9162
  tree, and into ``ledger.audit.merkle.Peaks``: the reason the tree is Loa's own (the
  ratio is printed); in memory, so each built again and again to fill a second of this
  process's CPU (both sides are this one process's Python: its CPU seconds are the work);
- an inclusion proof and a consistency proof from a tree of every leaf;
- an export of one campaign of about 100,000 events (claims, sends, receipts of a third
  as many recipients) written beside the million (floor: a ``COPY`` of the same events
  to a file), and ``verify_export.py`` checking it in an isolated Python, as an auditor
  would.

    uv run python -m benchmarks.audit                # 1,000,000 events, 1 round
    uv run python -m benchmarks.audit --quick        # 20,000 events, 3 rounds
    uv run python -m benchmarks.audit --events 100000 --rounds 3
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks import figures
from benchmarks.figures import Figure
from ledger.audit.checkpoints import public_of
from ledger.audit.log import make_checkpoint, sealed, tree
from ledger.audit.merkle import Peaks, leaf_hash, verify_consistency, verify_inclusion
from ledger.audit.verify import verify_log
from ledger.chain import canonical, seal_all
from ledger.db import make_engine
from ledger.migrate import upgrade
from ledger.schema import events
from tests.rig import scratch_database

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SEED = bytes(range(7, 39))
ORIGIN = "loa/bench"
T0 = datetime(2026, 12, 1, tzinfo=UTC)
STATUSES = ("queued", "sending", "sent", "delivered")


def write_events(engine, first: int, count: int) -> None:
    """``count`` events as a campaign's messages leave them, in chunks of 20,000."""
    chunk = 20_000
    with engine.begin() as conn:
        for start in range(first, first + count, chunk):
            rows = [
                {
                    "campaign_id": f"bench-{i // 250_000}",
                    "message_id": None,
                    "at": T0 + timedelta(microseconds=i),
                    "source": "worker",
                    "from_status": STATUSES[i % 3],
                    "to_status": STATUSES[i % 3 + 1],
                    "code": None,
                    "detail": {"part": i % 3 + 1} if i % 7 == 0 else None,
                }
                for i in range(start, min(first + count, start + chunk))
            ]
            conn.execute(events.insert(), rows)


def timed(what, *args):
    started = time.perf_counter()
    result = what(*args)
    return result, time.perf_counter() - started


#: The same seals, joined to their events, in the chain's order: what the floors read.
_SEALED = """
SELECT s.seq, s.event_id, s.hash, e.id, e.campaign_id, e.message_id, e.at, e.source,
    e.from_status, e.to_status, e.code, e.detail
FROM seals s JOIN events e ON e.id = s.event_id ORDER BY s.seq
"""
_EVENTS = "SELECT * FROM events WHERE id BETWEEN %(first)s AND %(last)s ORDER BY id"
_LINKS = """
INSERT INTO bench_links (seq, event_id, hash, sealed_at)
SELECT %(first)s + n - 1, event_id, hash, now()
FROM unnest(%(ids)s::bigint[], %(hashes)s::varchar[]) WITH ORDINALITY AS u(event_id, hash, n)
"""


def plain(row) -> bytes:
    """The floors' encoding of an event: its values as Python prints them (no canonical
    JSON)."""
    return repr(tuple(row)).encode()


def streamed(engine, sql: str, params=None):
    """``sql``'s rows read through a server-side cursor, 20,000 at a time."""
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=20_000)
        yield from result.exec_driver_sql(sql, params or {})


def seal_floor(engine, first: int, last: int, seq: int) -> float:
    """The sealing floor: the same events read, chained with hashlib over a plain
    encoding, and as many link rows inserted by one statement (into a copy of ``seals``
    with its indexes, without its triggers)."""
    started = time.perf_counter()
    previous, ids, hashes = "0" * 64, [], []
    for row in streamed(engine, _EVENTS, {"first": first, "last": last}):
        previous = hashlib.sha256(previous.encode() + b"\n" + plain(row)).hexdigest()
        ids.append(row.id)
        hashes.append(previous)
    with engine.begin() as conn:
        conn.exec_driver_sql(_LINKS, {"first": seq, "ids": ids, "hashes": hashes})
    return time.perf_counter() - started


def leaves_floor(engine) -> float:
    """The checkpoint's floor: every sealed event read and hashed as a leaf, no tree."""
    started = time.perf_counter()
    for row in streamed(engine, _SEALED):
        hashlib.sha256(b"\0" + plain(row)).digest()
    return time.perf_counter() - started


def chain_floor(engine) -> float:
    """The verify's floor: every sealed event read and the chain recomputed with
    hashlib, nothing else checked."""
    started = time.perf_counter()
    previous = "0" * 64
    for row in streamed(engine, _SEALED):
        previous = hashlib.sha256(previous.encode() + b"\n" + plain(row)).hexdigest()
    return time.perf_counter() - started


def repeated(work, undo, at_least: float = 1.0) -> float:
    """Seconds one ``work()`` takes (it returns its own), done again after an untimed
    ``undo()`` until the timed calls fill ``at_least`` seconds: ``figures.autorange`` for
    work that writes. A pass over the quick size's events is a fifth of a second, a few of
    a loaded machine's time slices; repeated to a second, both sides see its average."""
    total, calls = 0.0, 0
    while total < at_least:
        undo()
        total += work()
        calls += 1
    return total / calls


def unseal(engine) -> None:
    """Forget every seal (untimed, the append-only trigger bypassed for this transaction):
    the events are unsealed again, for ``seal_all`` to seal once more."""
    with engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        conn.exec_driver_sql("DELETE FROM seals")


def clear_links(engine) -> None:
    """Empty the sealing floor's table (untimed)."""
    with engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE bench_links")


def drop_checkpoints_after(engine, keep: int) -> None:
    """Forget the checkpoints after id ``keep`` (a round's, signed by a throwaway key):
    untimed, with the append-only trigger bypassed for this transaction."""
    with engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        conn.exec_driver_sql("DELETE FROM checkpoints WHERE id > %(keep)s", {"keep": keep})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, help="default 1,000,000 (--quick: 20,000)")
    parser.add_argument("--export", type=int, help="events of the exported campaign "
                        "(default 100,000; --quick: 5,000)")  # fmt: skip
    parser.add_argument("--rounds", type=int, help="of each side (default 1; --quick: 3)")
    parser.add_argument("--quick", action="store_true", help="small sizes, ~20 s in all")
    parser.add_argument("--postgres", default=POSTGRES_URL)
    parser.add_argument("--prefix", default="loa_bench_audit")
    args = parser.parse_args()
    count = args.events or (20_000 if args.quick else 1_000_000)
    wanted = args.export or (5_000 if args.quick else 100_000)
    rounds = args.rounds or (3 if args.quick else 1)
    more = max(1, count // 100)
    found: list[Figure] = []
    with scratch_database(args.postgres, args.prefix) as url:
        engine = make_engine(url)
        upgrade(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE bench_links (LIKE seals INCLUDING ALL)")

        # Sealing: every event sealed by the floor (into bench_links) and by seal_all, in
        # turn; each undone (untimed) and done again until it fills a second.
        _, wrote = timed(write_events, engine, 1, count)

        def sealing_all() -> float:
            sealed_count, took = timed(seal_all, engine)
            assert sealed_count == count, sealed_count
            return took

        def floor_all() -> float:
            return seal_floor(engine, 1, count, 1)

        seal_took, floor_took = figures.interleaved(
            lambda: repeated(sealing_all, lambda: unseal(engine)),
            lambda: repeated(floor_all, lambda: clear_links(engine)),
            rounds,
        )
        sealing, sealing_floor = count / seal_took, count / floor_took
        print(f"ledger: postgresql, {count:,} events written in {wrote:.1f} s")
        print(
            f"sealed: {count:,} events, {sealing:,.0f}/s (median of {rounds}, each filling a "
            f"second); floor (read, hashlib chain, one INSERT of the links) {sealing_floor:,.0f}/s"
        )
        found.append(Figure(benchmark="audit", measure=f"sealing {count:,} events",
                            value=sealing, unit="events/s", reference=sealing_floor,
                            reference_name="read + hashlib chain + 1 INSERT",
                            better="higher"))  # fmt: skip

        # The first checkpoint, every event read: each round signs with a key of its own
        # (so it starts from nothing) and is forgotten after, but the last (SEED's).
        with engine.connect() as conn:
            keep = conn.exec_driver_sql("SELECT coalesce(max(id), 0) FROM checkpoints").scalar()
        done = iter(range(rounds))
        made = []

        def checkpoint() -> float:
            last = next(done) == rounds - 1
            seed = SEED if last else bytes(range(100, 132))
            made.append(timed(make_checkpoint, engine, ORIGIN, seed))
            if not last:
                drop_checkpoints_after(engine, keep)
            return made[-1][1]

        took, floor = figures.interleaved(checkpoint, lambda: leaves_floor(engine), rounds)
        first = made[-1][0]
        print(
            f"first checkpoint ({first.size:,} leaves, every event read): {took:.1f} s; "
            f"floor (read, hashlib leaves, no tree) {floor:.1f} s"
        )
        found.append(Figure(benchmark="audit", measure=f"first checkpoint, {count:,} "
                            "events", value=took, unit="s", reference=floor,
                            reference_name="read + hashlib leaves"))  # fmt: skip
        write_events(engine, count + 1, more)
        seal_all(engine)
        second, seconds = timed(make_checkpoint, engine, ORIGIN, SEED)
        print(f"next checkpoint (+{more:,} events, only those read): {seconds:.2f} s")

        verdicts = []

        def verifying() -> float:
            verdict, took = timed(verify_log, engine, (ORIGIN, public_of(SEED)))
            verdicts.append(verdict)
            return took

        took, floor = figures.interleaved(verifying, lambda: chain_floor(engine), rounds)
        verdict = verdicts[-1]
        assert verdict.ok, verdict.problems
        target = "within" if took < 60 else "OVER"
        print(
            f"verify: {verdict.sealed:,} events, {verdict.checkpoints} checkpoints, in "
            f"{took:.1f} s ({target} the minute's target); floor (read, hashlib chain, "
            f"nothing checked) {floor:.1f} s"
        )
        found.append(Figure(benchmark="audit", measure=f"verify, {verdict.sealed:,} events",
                            value=took, unit="s", reference=floor,
                            reference_name="read + hashlib chain",
                            absolute=f"target < 60 s: {'met' if took < 60 else 'missed'}"))  # fmt: skip

        with engine.connect() as conn:
            encoded = [canonical(row) for row in sealed(conn)]
        from pymerkle import InmemoryTree

        def our_tree() -> Peaks:
            peaks = Peaks()
            for data in encoded:
                peaks.append(leaf_hash(data))
            return peaks

        def their_tree() -> InmemoryTree:
            reference = InmemoryTree(algorithm="sha256")
            for data in encoded:
                reference.append_entry(data)
            return reference

        # Checked once, untimed; then each built again and again to fill a second of
        # this process's CPU (a tree of the quick size's leaves takes a twentieth of a
        # second; both are this one process's Python, so its CPU seconds are the work).
        assert our_tree().root() == second.root
        assert their_tree().get_root() == second.root
        mine, pymerkle = figures.interleaved(
            lambda: figures.autorange(our_tree, clock=time.process_time),
            lambda: figures.autorange(their_tree, clock=time.process_time),
            rounds,
        )
        print(
            f"tree of {len(encoded):,} leaves: Loa's peaks {mine:.2f} s, pymerkle "
            f"{pymerkle:.2f} s (pymerkle ÷ Loa = {pymerkle / mine:.1f}); same root"
        )
        found.append(Figure(benchmark="audit", measure=f"Merkle tree of {len(encoded):,} "
                            "leaves", value=mine, unit="s", reference=pymerkle,
                            reference_name="pymerkle InmemoryTree"))  # fmt: skip

        with engine.connect() as conn:
            whole, seconds = timed(tree, conn)
        index = whole.size // 3
        started = time.perf_counter()
        path = whole.inclusion(index)
        proof = whole.consistency(first.size)
        proving = time.perf_counter() - started
        verify_inclusion(whole.levels[0][index], index, whole.size, path, whole.root())
        verify_consistency(first.size, whole.size, proof, first.root, whole.root())
        print(
            f"proofs: the tree read and built in {seconds:.1f} s; one inclusion "
            f"({len(path)} hashes) and one consistency ({len(proof)} hashes) in "
            f"{proving * 1000:.2f} ms, both verified"
        )
        found.append(exported(engine, wanted, rounds))
        engine.dispose()
    figures.report(found)


def exported(engine, events_wanted: int, rounds: int) -> Figure:
    """A campaign of ``events_wanted / 3`` recipients claimed, sent and delivered (three
    events each), exported (beside its floor: a COPY of the same events) and checked by
    the stand-alone script."""
    import subprocess
    import sys

    from campaigns.recipients import ListRow
    from campaigns.spec import CampaignSpec, load_spec
    from campaigns.status import Status
    from ledger.audit.checkpoints import verifier_key
    from ledger.audit.export import export
    from ledger.handover import record_sent
    from ledger.messages import claim_batch
    from ledger.receipts import Inbound, digest, drain_all, store
    from tests.helpers import record

    root = Path(__file__).resolve().parents[1]
    base = load_spec(root / "examples" / "bluezone.toml").model_dump(mode="json")
    spec = CampaignSpec.model_validate({**base, "id": "bench-export"})
    count = max(1, events_wanted // 3)
    rows = [ListRow(i + 2, f"098{i:07d}", ()) for i in range(count)]
    started = time.perf_counter()
    record(engine, spec, rows, batch_size=count)
    claimed = claim_batch(engine, spec.id, 1)
    record_sent(engine, spec.id, [(m.id, f"P{m.id}") for m in claimed])
    receipts = [
        Inbound(spec.provider, f"P{m.id}", Status.DELIVERED, "delivered", None, None,
                digest(spec.provider, {"id": f"P{m.id}"}))
        for m in claimed
    ]  # fmt: skip
    for start in range(0, len(receipts), 5000):
        store(engine, receipts[start : start + 5000])
    drain_all(engine, 5000)
    seal_all(engine)
    made = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        outs = iter(range(rounds))
        manifests = []

        def exporting() -> float:
            out = Path(folder) / f"export-{next(outs)}"
            manifest, took = timed(export, engine, out, spec.id, ORIGIN, SEED)
            manifests.append((manifest, out))
            return took

        def copied() -> float:
            raw = engine.raw_connection()
            try:
                started = time.perf_counter()
                with (
                    raw.driver_connection.cursor() as cursor,
                    (Path(folder) / "copy.tsv").open("wb") as handle,
                    cursor.copy(
                        "COPY (SELECT * FROM events WHERE campaign_id = 'bench-export' "
                        "ORDER BY id) TO STDOUT"
                    ) as copy,
                ):
                    for block in copy:
                        handle.write(block)
                took = time.perf_counter() - started
                raw.commit()
            finally:
                raw.close()
            return took

        seconds, floor = figures.interleaved(exporting, copied, rounds)
        manifest, out = manifests[-1]
        key = verifier_key(ORIGIN, public_of(SEED))
        command = [sys.executable, "-I", "-S", str(out / "verify_export.py"), "--key", key]
        started = time.perf_counter()
        checked = subprocess.run(command, capture_output=True, text=True, check=False)
        checking = time.perf_counter() - started
    assert checked.returncode == 0, checked.stdout
    print(
        f"export: {manifest['events']:,} events of {len(claimed):,} recipients (made in "
        f"{made:.0f} s) among {manifest['checkpoint']['size']:,} in the log: written in "
        f"{seconds:.2f} s (median of {rounds}; COPY of the same events {floor:.2f} s); "
        f"verify_export.py (isolated Python, openssl) {checking:.1f} s, OK"
    )
    return Figure(benchmark="audit", measure=f"export of {manifest['events']:,} events",
                  value=seconds, unit="s", reference=floor,
                  reference_name="COPY of the same events")  # fmt: skip


if __name__ == "__main__":
    main()
