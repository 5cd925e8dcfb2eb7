#!/usr/bin/env python3
"""Verify a Loa audit export alone, with nothing but Python's standard library.

An auditor runs, in the export's folder (``loa audit export`` copies this script there)::

    python3 verify_export.py [FOLDER]

and gets ``OK`` and exit code 0 when:

1. every file listed in ``manifest.json`` is there with the SHA-256 and size it lists
   (nothing added, removed or edited since the export);
2. every event in ``events.jsonl`` hashes to its link:
   ``link = SHA-256(previous link as 64 hex digits + "\\n" + canonical(event))``, where
   ``canonical`` is the UTF-8 JSON of the event's keys sorted, without whitespace,
   non-ASCII written as itself (Loa's chain encoding, version ``loa-chain-v1``);
3. the links in ``chain.csv`` (every seal of the whole chain: seq, link, campaign) run
   from seal 1 to the head named in the manifest; each event's link is the one there,
   computed from the link before it; and every seal the chain gives to this campaign (to
   any campaign, for a whole-ledger export) has its event in ``events.jsonl``;
4. every recipient in ``recipients.csv`` is in exactly one final status, and the counts
   per status are the ones the manifest lists.

A CSV cell that a spreadsheet would run as a formula (one beginning with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return, unless wholly a number) was written with a
leading single quote, as was any cell beginning with a quote (OWASP, "CSV Injection"); the
checker takes that one quote off before comparing a cell with anything (``plain``).

Otherwise it prints the first problem found and exits 1. Other campaigns' events are not
in a one-campaign export, so their links are taken as listed; rewriting any of them would
change every link after it, and so the head: compare the head in the manifest with the
one ``loa audit verify`` printed, or one published at the time.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from collections import Counter
from pathlib import Path

GENESIS = "0" * 64
ENCODING = "loa-chain-v1"
FINAL = {"delivered", "undelivered", "failed", "expired", "unknown", "cancelled"}


class Broken(Exception):
    """The export does not verify; the message says where and why."""


def canonical(event: dict) -> bytes:
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def link(previous: str, event: dict) -> str:
    return hashlib.sha256(previous.encode("ascii") + b"\n" + canonical(event)).hexdigest()


def plain(cell: str) -> str:
    """A CSV cell as it was before Loa quoted it against formulas: every cell Loa
    quoted, and only those, begin with the quote it added."""
    return cell[1:] if cell.startswith("'") else cell


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_files(folder: Path, manifest: dict) -> None:
    for name, entry in sorted(manifest["files"].items()):
        path = folder / name
        if not path.is_file():
            raise Broken(f"{name}: listed in the manifest but missing")
        if path.stat().st_size != entry["bytes"] or sha256_of(path) != entry["sha256"]:
            raise Broken(f"{name}: changed since the export (SHA-256 differs from the manifest)")


def read_links(folder: Path, manifest: dict) -> list[tuple[str, str]]:
    """chain.csv as a list indexed by seq - 1: (link, campaign id of the event there)."""
    links: list[tuple[str, str]] = []
    with (folder / "chain.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if int(row["seq"]) != len(links) + 1:
                raise Broken(f"chain.csv: seal {row['seq']} where {len(links) + 1} was due")
            links.append((row["hash"], plain(row["campaign_id"])))
    head = manifest["chain_head"]
    last = links[-1][0] if links else GENESIS
    if (len(links), last) != (head["seq"], head["hash"]):
        raise Broken("chain.csv: does not end at the chain head named in the manifest")
    return links


def check_events(folder: Path, manifest: dict) -> int:
    links = read_links(folder, manifest)
    campaign = manifest.get("campaign")
    expected = {
        seq
        for seq, (_, owner) in enumerate(links, start=1)
        if manifest.get("whole_ledger") or owner == campaign
    }
    seen: set[int] = set()
    with (folder / "events.jsonl").open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            entry = json.loads(line)
            seq, event = entry["seq"], entry["event"]
            where = f"events.jsonl line {number} (seal {seq})"
            if seq not in expected or seq in seen:
                raise Broken(f"{where}: not a seal of this export, or twice")
            prev = links[seq - 2][0] if seq > 1 else GENESIS
            if entry["prev"] != prev or entry["hash"] != links[seq - 1][0]:
                raise Broken(f"{where}: does not chain (its links differ from chain.csv)")
            if link(prev, event) != entry["hash"]:
                raise Broken(f"{where}: the event does not hash to its link")
            if not manifest.get("whole_ledger") and event["campaign_id"] != campaign:
                raise Broken(f"{where}: an event of another campaign")
            seen.add(seq)
    missing = sorted(expected - seen)
    if missing:
        raise Broken(f"events.jsonl: the event sealed at {missing[0]} is missing")
    if len(seen) != manifest["events"]:
        raise Broken(f"events.jsonl: {len(seen)} events, the manifest says {manifest['events']}")
    return len(seen)


def check_recipients(folder: Path, manifest: dict) -> int:
    statuses: Counter[str] = Counter()
    with (folder / "recipients.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            statuses[plain(row["status"])] += 1
    unfinished = {s: n for s, n in statuses.items() if s not in FINAL}
    if manifest.get("complete") and unfinished:
        raise Broken(f"recipients.csv: not in a final status: {unfinished}")
    if dict(statuses) != manifest["statuses"]:
        raise Broken("recipients.csv: counts per status differ from the manifest")
    return sum(statuses.values())


def verify(folder: Path) -> str:
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    if manifest.get("encoding") != ENCODING:
        raise Broken(f"manifest.json: unknown chain encoding {manifest.get('encoding')!r}")
    check_files(folder, manifest)
    events = check_events(folder, manifest)
    recipients = check_recipients(folder, manifest)
    head = manifest["chain_head"]
    return f"OK: {events} events, {recipients} recipients; chain head {head['seq']} {head['hash']}"


def main(argv: list[str]) -> int:
    folder = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent
    try:
        print(verify(folder))
    except (Broken, OSError, ValueError, KeyError) as exc:
        print(f"BROKEN: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
