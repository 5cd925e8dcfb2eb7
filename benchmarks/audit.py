"""The audit log at scale (issue #21): a ledger of a million events, sealed, checkpointed
and verified the way ``loa audit`` does it, on PostgreSQL (or SQLite with ``--sqlite``).

Printed, all measured in this one run:

- events sealed per second (``ledger.chain.seal_all``: the hash chain, as workers' events
  are sealed by the housekeeper);
- the first checkpoint (every event read and hashed as a leaf) and a second one after
  1 % more events (only those are read: the first one's peaks hold the rest);
- a full ``verify_log`` (chain and tree recomputed from every event, every checkpoint's
  root and signature, every message row replayed): the target is under a minute;
- the same leaves put into pymerkle's ``InmemoryTree``, the maintained Python RFC 9162
  tree, and into ``ledger.audit.merkle.Peaks``: the reason the tree is Loa's own (the
  ratio is printed);
- an inclusion proof and a consistency proof from a tree of every leaf;
- an export of one campaign of about 100,000 events (claims, sends, receipts of a third
  as many recipients) written beside the million, and ``verify_export.py`` checking it
  in an isolated Python, as an auditor would.

    uv run python -m benchmarks.audit                # 1,000,000 events on PostgreSQL
    uv run python -m benchmarks.audit --events 100000 --sqlite
"""

from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--sqlite", action="store_true", help="an embedded SQLite ledger")
    parser.add_argument(
        "--export", type=int, default=100_000, help="events of the exported campaign"
    )
    args = parser.parse_args()
    count, more = args.events, max(1, args.events // 100)
    with ExitStack() as stack:
        if args.sqlite:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            url = f"sqlite:///{folder / 'loa.db'}"
        else:
            url = stack.enter_context(scratch_database(POSTGRES_URL, "loa_bench_audit"))
        engine = make_engine(url)
        upgrade(engine)
        _, wrote = timed(write_events, engine, 1, count)
        print(f"ledger: {engine.dialect.name}, {count:,} events written in {wrote:.1f} s")

        sealed_count, seconds = timed(seal_all, engine)
        print(
            f"sealed: {sealed_count:,} events in {seconds:.1f} s = {sealed_count / seconds:,.0f}/s"
        )

        first, seconds = timed(make_checkpoint, engine, ORIGIN, SEED)
        print(f"first checkpoint ({first.size:,} leaves, every event read): {seconds:.1f} s")
        write_events(engine, count + 1, more)
        seal_all(engine)
        second, seconds = timed(make_checkpoint, engine, ORIGIN, SEED)
        print(f"next checkpoint (+{more:,} events, only those read): {seconds:.2f} s")

        verdict, seconds = timed(verify_log, engine, (ORIGIN, public_of(SEED)))
        assert verdict.ok, verdict.problems
        target = "within" if seconds < 60 else "OVER"
        print(
            f"verify: {verdict.sealed:,} events, {verdict.checkpoints} checkpoints, in "
            f"{seconds:.1f} s ({target} the minute's target)"
        )

        with engine.connect() as conn:
            encoded = [canonical(row) for row in sealed(conn)]
        peaks = Peaks()
        started = time.perf_counter()
        for data in encoded:
            peaks.append(leaf_hash(data))
        ours = time.perf_counter() - started
        assert peaks.root() == second.root
        from pymerkle import InmemoryTree

        reference = InmemoryTree(algorithm="sha256")
        started = time.perf_counter()
        for data in encoded:
            reference.append_entry(data)
        theirs = time.perf_counter() - started
        assert reference.get_root() == second.root
        print(
            f"tree of {len(encoded):,} leaves: Loa's peaks {ours:.1f} s, pymerkle "
            f"{theirs:.1f} s (pymerkle ÷ Loa = {theirs / ours:.1f}); same root"
        )

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
        exported(engine, args.export)
        engine.dispose()


def exported(engine, events_wanted: int) -> None:
    """A campaign of ``events_wanted / 3`` recipients claimed, sent and delivered (three
    events each), exported and checked by the stand-alone script."""
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
    made = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "export"
        manifest, seconds = timed(export, engine, out, spec.id, ORIGIN, SEED)
        key = verifier_key(ORIGIN, public_of(SEED))
        command = [sys.executable, "-I", "-S", str(out / "verify_export.py"), "--key", key]
        started = time.perf_counter()
        checked = subprocess.run(command, capture_output=True, text=True, check=False)
        checking = time.perf_counter() - started
    assert checked.returncode == 0, checked.stdout
    print(
        f"export: {manifest['events']:,} events of {len(claimed):,} recipients (made in "
        f"{made:.0f} s) among {manifest['checkpoint']['size']:,} in the log: written in "
        f"{seconds:.1f} s; verify_export.py (isolated Python, openssl) {checking:.1f} s, OK"
    )


if __name__ == "__main__":
    main()
