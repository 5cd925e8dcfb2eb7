#!/usr/bin/env python3
"""Verify a Loa audit export alone: Python 3.9 or later, its standard library, and for the
signature either the ``cryptography`` package or the ``openssl`` command.

An auditor runs, in the export's folder (``loa audit export`` copies this script there)::

    python3 verify_export.py --key VERIFIER_KEY [--since OLD_CHECKPOINT] [FOLDER]

``--key`` is the verifier key the carrier gave you once, through another channel than
the exports (``name+keyid+base64``): the key written in a folder proves only that the
folder agrees with itself. ``--since`` is a checkpoint you hold from before (a daily
report's, an earlier export's): the export must prove that the log it comes from still
contains, unchanged, every event that checkpoint counted. FOLDER: the export (default:
the current folder when it holds a ``manifest.json``, else this script's).

It prints ``OK`` and the checkpoint it verified against, and exits 0, when:

1. ``checkpoint.txt`` is signed by the key (Ed25519, in the signed-note form transparency
   logs use: the lines above the blank one are what is signed);
2. every event in ``events.jsonl`` is a leaf of the tree that checkpoint commits to:
   ``leaf = SHA-256(0x00 || event as canonical JSON)`` (keys sorted, no spaces, UTF-8),
   and its inclusion proof leads from the leaf to the checkpoint's root (RFC 9162,
   section 2.1.3.2), with ``node = SHA-256(0x01 || left || right)``;
3. every event is of the exported campaign; the last is the export's own event, at the
   leaf the signed checkpoint names (its line ``export N``), which commits to how many
   of the campaign's events came before it and the SHA-256 of their leaves, and to
   ``recipients.csv`` (its rows, and the SHA-256 of the whole file): an event left out
   or added, a byte of the file changed, no longer matches it (keep the file as you
   received it; open a copy in a spreadsheet); the rows are as many as the campaign's
   launch and arrivals made (their ``planned`` and ``welcomes``; a message per recipient
   per channel when the campaign has several);
4. each recipient's events, in log order, move it from ``queued`` (a later channel's:
   ``standby``) step by step, each as
   Loa's status rules allow and from where the one before left it; its row is where
   they leave it: its status, the provider of its last claim (unless given back since:
   a halt moves waiting messages to a fallback), the error code of its
   last move, when it was sent and when it ended (the export read the rows and wrote
   its own event while nothing could move them); a move no rule allows (``undelivered``
   to ``delivered``) is a made-up event;
5. with ``--since`` (or the ``consistency.json`` the export carries), the older
   checkpoint's tree is a prefix of this one (RFC 9162, section 2.1.4.2).

Otherwise it prints ``BROKEN`` and what does not hold, and exits 1; it exits 2 when it
cannot check at all (no ``--key``; a file that cannot be read; no ``cryptography`` and
no ``openssl``; a ``--since`` other than the checkpoint the export was made from),
saying why.

Compare the checkpoint it prints with the one you were sent with the export: the same
name, size and root mean the same log. The log's size counts every event of every
campaign; the export holds only this campaign's.

A CSV cell a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, a tab or a
carriage return first, unless wholly a number) was written with a leading quote, as was
any cell that began with a quote; that quote is taken off before comparing (``plain``).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

FORMAT = "loa-audit-export-v3"
#: Files larger than this are not an export's (a checkpoint is under 1 KiB).
LIMITS = {"manifest.json": 1 << 20, "checkpoint.txt": 1 << 16, "consistency.json": 1 << 20}
FINAL = {
    "delivered", "undelivered", "failed", "expired", "unknown", "cancelled", "unreachable",
    "unneeded",
}  # fmt: skip
#: Loa's status rules (campaigns/status.py): where each status may move to. ``standby``
#: is where a later channel's message starts (SMS after Zalo); ``unneeded``, where it
#: ends when the channel before reached the person.
MOVES = {
    "queued": {"sending", "expired", "failed", "cancelled", "unneeded"},
    "sending": {"queued", "sent"} | FINAL,
    "sent": FINAL - {"cancelled", "unreachable", "unneeded"},
    "unknown": {"delivered", "undelivered", "failed", "expired"},  # a late, real answer
    "standby": {"queued", "unneeded", "cancelled", "expired"},
    "delivered": set(), "undelivered": set(), "failed": set(), "expired": set(),
    "cancelled": set(), "unreachable": set(), "unneeded": set(),
}  # fmt: skip


class Broken(Exception):
    """The export does not verify; the message says where and why."""


class Unchecked(Exception):
    """The signature could not be checked at all (nothing here to check Ed25519 with)."""


# ---- RFC 9162 (section 2.1): the tree's hashes and the two proofs


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion(leaf: bytes, index: int, size: int, proof: list) -> bytes:
    """Section 2.1.3.2: the root the proof leads to from ``leaf`` at ``index``."""
    if index >= size:
        raise Broken(f"leaf {index} is not in a tree of {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise Broken("an inclusion proof longer than the tree is high")
        if fn % 2 == 1 or fn == sn:
            r = node_hash(p, r)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise Broken("an inclusion proof shorter than the tree is high")
    return r


def check_consistency(size1: int, size2: int, proof: list, root1: bytes, root2: bytes) -> None:
    """Section 2.1.4.2: the tree of ``size1`` leaves is the prefix of that of ``size2``."""
    if size1 > size2:
        raise Broken(f"the log has {size2} events, fewer than the {size1} counted before: cut")
    if size1 == size2:
        if proof or root1 != root2:
            raise Broken(f"two different logs of {size1} events")
        return
    if size1 == 0:
        return
    if not proof:
        raise Broken("no consistency proof")
    path = ([root1] if size1 & (size1 - 1) == 0 else []) + list(proof)
    fn, sn = size1 - 1, size2 - 1
    while fn % 2 == 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise Broken("a consistency proof longer than the tree is high")
        if fn % 2 == 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or fr != root1:
        raise Broken(f"the log's first {size1} events are not those counted before: rewritten")
    if sr != root2:
        raise Broken("the consistency proof does not lead to this checkpoint's root")


# ---- checkpoints: a signed note (origin, size, root, extension lines; a signature line)


def read_checkpoint(text: str, where: str) -> dict:
    body, blank, signatures = text.partition("\n\n")
    lines = body.split("\n")
    if not blank or len(lines) < 3 or not lines[1].isdigit():
        raise Broken(f"{where}: not a checkpoint (name, size, root, blank line, signature)")
    try:
        root = base64.b64decode(lines[2], validate=True)
    except ValueError:
        root = b""
    if len(root) != 32:
        raise Broken(f"{where}: line 3: the root is not base64 of 32 bytes")
    signed = []
    for line in signatures.rstrip("\n").split("\n"):
        name, _, encoded = line[2:].partition(" ")
        if line.startswith("\u2014 "):
            try:
                signed.append((name, base64.b64decode(encoded, validate=True)))
            except ValueError:
                raise Broken(f"{where}: a signature that is not base64") from None
    time = next((line[5:] for line in lines[3:] if line.startswith("time ")), "no time")
    export = next((line[7:] for line in lines[3:] if line.startswith("export ")), None)
    return {"origin": lines[0], "size": int(lines[1]), "root": root, "time": time,
            "export": int(export) if export and export.isdigit() else None,
            "body": (body + "\n").encode(), "signatures": signed}  # fmt: skip


def read_key(text: str) -> tuple:
    name, _, rest = text.strip().partition("+")
    kid, _, encoded = rest.partition("+")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except ValueError:
        raw = b""
    if len(raw) != 33 or raw[0] != 1:
        raise Broken("the verifier key is not name+keyid+base64 of an Ed25519 key")
    public = raw[1:]
    expected = hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4]
    if expected.hex() != kid.lower():
        raise Broken("the verifier key's id does not match its name and key")
    return name, expected, public


def check_signature(checkpoint: dict, key: tuple, where: str) -> None:
    name, kid, public = key
    for signer, raw in checkpoint["signatures"]:
        if signer == name and raw[:4] == kid and len(raw) == 68:
            if not ed25519_holds(public, raw[4:], checkpoint["body"]):
                raise Broken(f"{where}: the signature does not hold: the checkpoint was altered")
            return
    others = ", ".join(f"{signer}+{raw[:4].hex()}" for signer, raw in checkpoint["signatures"])
    raise Broken(
        f"{where}: signed by {others}, not by the key you gave ({name}+{kid.hex()}): another "
        "log, another key, or a key given under another log name"
    )


def ed25519_holds(public: bytes, signature: bytes, message: bytes) -> bool:
    """Ed25519 with the ``cryptography`` package, else ``openssl pkeyutl`` (3.0 or later)."""
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError:
        return _openssl_holds(public, signature, message)
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except InvalidSignature:
        return False
    return True


def _openssl_holds(public: bytes, signature: bytes, message: bytes) -> bool:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise Unchecked(
            "cannot check the signature: install the cryptography package "
            "(pip install cryptography) or the openssl command (3.0 or later)"
        )
    der = bytes.fromhex("302a300506032b6570032100") + public  # SubjectPublicKeyInfo
    pem = b"-----BEGIN PUBLIC KEY-----\n" + base64.encodebytes(der) + b"-----END PUBLIC KEY-----\n"
    with tempfile.TemporaryDirectory() as folder:
        paths = {}
        for name, data in (("key.pem", pem), ("sig", signature), ("msg", message)):
            paths[name] = os.path.join(folder, name)
            with open(paths[name], "wb") as handle:
                handle.write(data)
        done = subprocess.run(
            [openssl, "pkeyutl", "-verify", "-pubin", "-inkey", paths["key.pem"], "-rawin",
             "-in", paths["msg"], "-sigfile", paths["sig"]],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    if "Signature Verified Successfully" in done.stdout:
        return True
    if done.returncode != 0 and "Signature Verification Failure" not in done.stdout:
        raise Unchecked(f"openssl could not check Ed25519: {done.stderr.strip()[:200]}")
    return False


# ---- the export's own files


def regular(path: Path, limit: int | None = None) -> Path:
    """``path`` if it is a regular file (not a link, a pipe or a device), within ``limit``."""
    import stat

    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise Broken(f"{path.name}: missing") from None
    if not stat.S_ISREG(info.st_mode):
        raise Broken(f"{path.name}: not a regular file (a link, a pipe, a device)")
    if limit is not None and info.st_size > limit:
        raise Broken(f"{path.name}: {info.st_size} bytes, too large to be what it says")
    return path


def read_text(path: Path) -> str:
    return regular(path, LIMITS.get(path.name)).read_text(encoding="utf-8")


def canonical(event: dict) -> bytes:
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def plain(cell: str) -> str:
    return cell[1:] if cell.startswith("'") else cell


def check_events(folder: Path, checkpoint: dict, campaign: str) -> dict:
    """Every event included in the checkpoint's tree and of the campaign; the last one the
    export's own, at the leaf the checkpoint names, whose commitments the events before
    it must match. Returns each message's events in log order, the export event's
    commitments, and how many recipients the launch and arrivals made."""
    own = checkpoint["export"]
    if own is None:
        raise Broken("checkpoint.txt: names no export event (no line 'export N'): not an export's")
    by_message: dict = defaultdict(list)
    last, hashed, count, committed, made = -1, hashlib.sha256(), 0, None, 0
    with regular(folder / "events.jsonl").open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            where = f"events.jsonl line {number}"
            if committed is not None:
                raise Broken(f"{where}: an event after the export's own")
            try:
                entry = json.loads(line)
                index, event, proof = entry["index"], entry["event"], entry["proof"]
                proof = [bytes.fromhex(h) for h in proof]
                detail = event.get("detail") or {}
            except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
                raise Broken(f"{where}: not an event as an export writes it") from None
            if not isinstance(index, int) or index <= last or index > own:
                raise Broken(f"{where}: events out of log order, twice, or after the export's")
            last = index
            leaf = leaf_hash(canonical(event))
            if root_from_inclusion(leaf, index, checkpoint["size"], proof) != checkpoint["root"]:
                raise Broken(
                    f"{where} (event {event.get('id')}): not in the log: altered or made up"
                )
            if event.get("campaign_id") != campaign:
                raise Broken(f"{where}: an event of another campaign")
            if index == own:  # the export's own: the checkpoint signed its place
                if not isinstance(detail, dict) or detail.get("action") != "export":
                    raise Broken(f"{where}: the checkpoint's export event is not an export's")
                if (detail.get("events"), detail.get("events_digest")) != (
                    count, hashed.hexdigest()
                ):  # fmt: skip
                    raise Broken(
                        f"events.jsonl: {count} events before the export's own, not those it "
                        f"committed to ({detail.get('events')}): some were left out or added"
                    )
                committed = {**detail, "at": event.get("at")}
                continue
            hashed.update(leaf)
            count += 1
            if event.get("message_id") is not None:
                by_message[event["message_id"]].append((number, event))
            elif event.get("source") == "planner" and isinstance(detail, dict):
                # A message per recipient per channel (Zalo, then SMS: ``channels``).
                channels = int(detail.get("channels") or 1)
                made += int(detail.get("planned") or 0) * channels
                made += int(detail.get("welcomes") or 0)
    if committed is None:
        raise Broken(
            f"events.jsonl: ends before the export's own event (leaf {own} in the "
            "checkpoint): events were left out, or the file is another export's"
        )
    return {"by_message": by_message, "events": count, "export": committed, "made": made}


def check_recipients(folder: Path, found: dict) -> dict:
    """The rows are those the export event committed to (the whole file), as many as the
    campaign made, each where its events leave it. Returns the count per status."""
    export, by_message = found["export"], found["by_message"]
    data = regular(folder / "recipients.csv").read_bytes()
    if hashlib.sha256(data).hexdigest() != export.get("recipients_digest"):
        raise Broken(
            "recipients.csv: not the file the export's event committed to: edited (or "
            "saved again by a spreadsheet: check the copy you received)"
        )
    statuses: dict = defaultdict(int)
    count = 0
    rows = csv.DictReader(io.StringIO(data.decode("utf-8"), newline=""))
    try:
        for count, row in enumerate(rows, start=1):
            cells = {name: plain(value or "") for name, value in row.items() if name}
            message = int(cells["message_id"])
            statuses[cells["status"]] += 1
            replay(message, cells, by_message.pop(message, []), count)
    except (csv.Error, KeyError, ValueError) as exc:
        raise Broken(f"recipients.csv row {count}: not as an export writes it ({exc})") from None
    if count != found["made"]:
        raise Broken(
            f"recipients.csv: {count} recipients, but the campaign's launch and arrivals made "
            f"{found['made']}: rows were added or dropped before the export"
        )
    if by_message:
        raise Broken(f"events.jsonl: events of message {min(by_message)}, not in recipients.csv")
    return dict(statuses)


def replay(message: int, row: dict, events: list, number: int) -> None:
    """The message's events, in log order, from ``queued`` (or ``standby``, a later
    channel's message): each from where the last left it, each a move the rules allow;
    its row where the last left it."""
    first = events[0][1].get("from_status") if events else row["status"]
    state = "standby" if first == "standby" else "queued"
    left = {"provider": None, "error_code": "", "sent_at": "", "final_at": ""}
    for line, event in events:
        moved_from, moved_to = event.get("from_status"), event.get("to_status")
        if moved_from != state:
            raise Broken(
                f"events.jsonl line {line}: message {message} moves from {moved_from}, "
                f"but its events left it {state}: an event is missing"
            )
        if moved_to not in MOVES.get(state, set()):
            raise Broken(
                f"events.jsonl line {line}: message {message} moves from {state} to "
                f"{moved_to}, which no rule allows: a made-up event"
            )
        state = moved_to
        left.update(code_left(event), final_at=event.get("at") if state in FINAL else "")
        if state == "sending" and (event.get("detail") or {}).get("provider"):
            left["provider"] = event["detail"]["provider"]
        elif state == "queued":  # given back: a halt may move it to a fallback provider
            left["provider"] = None
        if state == "sent":
            left["sent_at"] = event.get("at")
    if row["status"] != state:
        raise Broken(
            f"recipients.csv row {number}: message {message} shows {row['status']}, its "
            f"events leave it {state}: the row or the events were altered"
        )
    for name, value in left.items():
        if value is not None and row[name] != value:
            raise Broken(
                f"recipients.csv row {number}: message {message}'s {name} is "
                f"{row[name] or 'empty'}, its events say {value or 'empty'}: altered"
            )


def code_left(event: dict) -> dict:
    """The error code a move leaves on its message (Loa's ``ledger.audit.verify``): a
    cancellation's is ``campaign_cancelled`` (a halted channel's, its own); a receipt explains only an undelivered
    message; any other move leaves its code, cut to 32 characters."""
    if event.get("to_status") == "cancelled" and event.get("source") != "fallback":
        return {"error_code": "campaign_cancelled"}
    if event.get("source") == "receipt" and event.get("to_status") != "undelivered":
        return {"error_code": ""}
    return {"error_code": (event.get("code") or "")[:32]}


def verify(folder: Path, key_text: str, since: Path | None) -> str:
    try:
        manifest = json.loads(read_text(folder / "manifest.json"))
        campaign = manifest["campaign"]
    except (ValueError, TypeError, KeyError):
        raise Broken("manifest.json: not an export's manifest") from None
    if manifest.get("format") != FORMAT:
        raise Broken(f"manifest.json: not a {FORMAT} export")
    checkpoint = read_checkpoint(read_text(folder / "checkpoint.txt"), "checkpoint.txt")
    key = read_key(key_text)
    check_signature(checkpoint, key, "checkpoint.txt")
    found = check_events(folder, checkpoint, campaign)
    statuses = check_recipients(folder, found)
    said = []
    proof_file = folder / "consistency.json"
    if since is not None or proof_file.exists():
        if not proof_file.exists():
            raise Unchecked(
                "--since: the export carries no consistency.json: ask for an export made "
                "with --since the checkpoint you hold (loa audit export --since FILE)"
            )
        try:
            proof = json.loads(read_text(proof_file))
            older = read_checkpoint(str(proof["since"]), "consistency.json")
            hashes = [bytes.fromhex(h) for h in proof["proof"]]
        except (ValueError, TypeError, KeyError):
            raise Broken(
                "consistency.json: not a consistency proof as an export writes it"
            ) from None
        yours = "a checkpoint carried in this folder (give --since YOUR_FILE to hold it to yours)"
        if since is not None:
            held = read_checkpoint(since.read_text(encoding="utf-8"), str(since))
            if (held["size"], held["root"]) != (older["size"], older["root"]):
                raise Unchecked(
                    f"the export proves the log extends a checkpoint of {older['size']} "
                    f"events ({older['time']}), not yours of {held['size']} ({held['time']}): "
                    "ask for an export made with --since the checkpoint you hold"
                )
            yours = f"your checkpoint of {held['size']} events ({held['time']})"
        check_signature(older, key, "consistency.json")
        check_consistency(older["size"], checkpoint["size"], hashes, older["root"],
                          checkpoint["root"])  # fmt: skip
        said.append(f"the log extends {yours}")
    export = found["export"]
    counts = ", ".join(f"{name} {n}" for name, n in sorted(statuses.items()))
    return (
        f"{SAID['ok']}: {found['events']} events of {campaign}, each in the log, and none left out "
        f"(the export's own event, {export.get('at')}, commits to them); "
        f"{sum(statuses.values())} recipients ({counts}), each where its events led it"
        + "".join(f"; {s}" for s in said)
        + "\nverified against the checkpoint signed by the key you gave, "
        f"{vietnam_time(checkpoint['time'])}:"
        f"\n  name {checkpoint['origin']}\n  size {checkpoint['size']} (every event of the "
        f"log, all campaigns)\n  root {base64.b64encode(checkpoint['root']).decode()}"
        "\ncompare its name, size and root with the checkpoint.txt you were sent"
    )


def vietnam_time(stamp: str) -> str:
    """A checkpoint's UTC time (``2026-12-01T03:00:00.000000Z``) with Vietnam's beside it."""
    from datetime import datetime, timedelta, timezone

    try:
        utc = timezone.utc  # noqa: UP017 (datetime.UTC is Python 3.11's; this runs on 3.9)
        at = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=utc)
    except ValueError:
        return stamp
    local = at.astimezone(timezone(timedelta(hours=7)))
    return f"{stamp} ({local.strftime('%H:%M:%S %d/%m/%Y')} giờ Việt Nam)"


#: What each outcome is called, in Vietnamese beside the English an auditor's scripts read.
SAID = {
    "ok": "OK · HỢP LỆ",
    "broken": "BROKEN · BỊ SỬA ĐỔI",
    "unchecked": "NOT VERIFIED · CHƯA KIỂM ĐƯỢC",
}


def main(argv: list) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="verify_export.py", description="Verify a Loa audit export (see the script's top)."
    )
    parser.add_argument("folder", nargs="?", type=Path, help="the export (default: here)")
    parser.add_argument(
        "--key", required=True, help="the verifier key the carrier gave you (name+keyid+base64)"
    )
    parser.add_argument("--since", type=Path, help="a checkpoint you hold from before")
    try:
        args = parser.parse_args(argv[1:])
    except SystemExit as exit:  # argparse said why
        return 0 if exit.code == 0 else 2
    folder = args.folder
    if folder is None:
        here = Path.cwd()
        folder = here if (here / "manifest.json").exists() else Path(__file__).resolve().parent
    if not args.key.strip():
        print(f"{SAID['unchecked']}: --key is empty: give the verifier key you were sent")
        return 2
    if args.since is not None and not args.since.is_file():
        print(f"{SAID['unchecked']}: --since {args.since}: not a file")
        return 2
    try:
        print(verify(folder, args.key, args.since))
    except Unchecked as exc:
        print(f"{SAID['unchecked']}: {exc}")
        return 2
    except Broken as exc:
        print(f"{SAID['broken']}: {exc}")
        return 1
    except (OSError, UnicodeError) as exc:
        print(f"{SAID['unchecked']}: cannot read the export: {exc}")
        return 2
    except Exception as exc:  # whatever a hostile file makes of a parser: said, not traced
        print(
            f"{SAID['broken']}: an export's file is not as an export writes it ({type(exc).__name__})"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
