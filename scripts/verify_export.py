#!/usr/bin/env python3
"""Verify a Loa audit export alone: Python 3.9 or later, its standard library, and for the
signature either the ``cryptography`` package or the ``openssl`` command.

An auditor runs, in the export's folder (``loa audit export`` copies this script there)::

    python3 verify_export.py [FOLDER] [--key VERIFIER_KEY] [--since OLD_CHECKPOINT]

``--key`` is the verifier key the carrier gave you (``name+keyid+base64``); without it
the key written in the folder is used, which proves only that the folder agrees with
itself. ``--since`` is a checkpoint you hold from before: the export must prove that
the log it comes from still contains, unchanged, every event that checkpoint counted.

It prints ``OK`` and the checkpoint it verified against, and exits 0, when:

1. ``checkpoint.txt`` is signed by the key (Ed25519, in the signed-note form transparency
   logs use: the lines above the blank one are what is signed);
2. every event in ``events.jsonl`` is a leaf of the tree that checkpoint commits to:
   ``leaf = SHA-256(0x00 || event as canonical JSON)`` (keys sorted, no spaces, UTF-8),
   and its inclusion proof leads from the leaf to the checkpoint's root (RFC 9162,
   section 2.1.3.2), with ``node = SHA-256(0x01 || left || right)``;
3. every event is of the exported campaign, and each recipient's events, in log order,
   move it from ``queued`` step by step (each starts where the one before it ended) to
   the status ``recipients.csv`` shows: an event left out, or a row edited, breaks that;
   and ``recipients.csv`` has as many recipients as the campaign's launch event counted;
4. with ``--since`` (or the ``consistency.json`` the export carries), the older
   checkpoint's tree is a prefix of this one (RFC 9162, section 2.1.4.2).

Otherwise it prints ``BROKEN:`` and what does not hold, and exits 1; it exits 2 when it
cannot check the signature at all (no ``cryptography``, no ``openssl``).

Compare the checkpoint it prints with the one you were sent (a daily report carries one):
the same name, size and root mean the same log.

A CSV cell a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, a tab or a
carriage return first, unless wholly a number) was written with a leading quote, as was
any cell that began with a quote; that quote is taken off before comparing (``plain``).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

FORMAT = "loa-audit-export-v2"


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
    return {"origin": lines[0], "size": int(lines[1]), "root": root, "time": time,
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
    raise Broken(f"{where}: not signed by the key {name}+{kid.hex()}")


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


def canonical(event: dict) -> bytes:
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def plain(cell: str) -> str:
    return cell[1:] if cell.startswith("'") else cell


def check_events(folder: Path, checkpoint: dict, campaign: str) -> dict:
    """Every event included in the checkpoint's tree, of the campaign; returns each
    message's events in log order, and the campaign's launch count."""
    by_message: dict = defaultdict(list)
    planned, last, count = None, -1, 0
    with (folder / "events.jsonl").open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            where = f"events.jsonl line {number}"
            entry = json.loads(line)
            index, event = entry["index"], entry["event"]
            if not isinstance(index, int) or index <= last:
                raise Broken(f"{where}: events out of log order, or twice")
            last, count = index, count + 1
            proof = [bytes.fromhex(h) for h in entry["proof"]]
            leaf = leaf_hash(canonical(event))
            if root_from_inclusion(leaf, index, checkpoint["size"], proof) != checkpoint["root"]:
                raise Broken(
                    f"{where} (event {event.get('id')}): not in the log: altered or made up"
                )
            if event.get("campaign_id") != campaign:
                raise Broken(f"{where}: an event of another campaign")
            if event.get("message_id") is not None:
                by_message[event["message_id"]].append((number, event))
            elif event.get("source") == "planner" and isinstance(event.get("detail"), dict):
                planned = event["detail"].get("planned")
    return {"by_message": by_message, "planned": planned, "events": count}


def check_recipients(folder: Path, by_message: dict, planned) -> int:
    """Each recipient's status is where its events left it; returns how many."""
    count = 0
    with (folder / "recipients.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            count += 1
            message, status = int(plain(row["message_id"])), plain(row["status"])
            state = "queued"
            for number, event in by_message.pop(message, []):
                if event.get("from_status") != state:
                    raise Broken(
                        f"events.jsonl line {number}: message {message} moves from "
                        f"{event.get('from_status')}, but its events left it {state}: "
                        "an event is missing"
                    )
                state = event.get("to_status")
            if state != status:
                raise Broken(
                    f"recipients.csv: message {message} shows {status}, its events leave it "
                    f"{state}: the row or the events were altered"
                )
    if by_message:
        raise Broken(f"events.jsonl: events of message {min(by_message)}, not in recipients.csv")
    if planned is not None and planned != count:
        raise Broken(f"recipients.csv: {count} recipients, the launch counted {planned}")
    return count


def verify(folder: Path, key_text: str | None, since: Path | None) -> str:
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise Broken(f"manifest.json: not a {FORMAT} export")
    checkpoint = read_checkpoint((folder / "checkpoint.txt").read_text(encoding="utf-8"),
                                 "checkpoint.txt")  # fmt: skip
    key = read_key(key_text or manifest["verifier_key"])
    check_signature(checkpoint, key, "checkpoint.txt")
    found = check_events(folder, checkpoint, manifest["campaign"])
    recipients = check_recipients(folder, found["by_message"], found["planned"])
    said = []
    proof_file = folder / "consistency.json"
    if since is not None or proof_file.exists():
        if not proof_file.exists():
            raise Broken("--since: the export carries no consistency.json (export it with --since)")
        proof = json.loads(proof_file.read_text(encoding="utf-8"))
        older = read_checkpoint(proof["since"], "consistency.json")
        if since is not None:
            held = read_checkpoint(since.read_text(encoding="utf-8"), str(since))
            if (held["size"], held["root"]) != (older["size"], older["root"]):
                raise Broken(f"consistency.json: proves from another checkpoint than {since}")
        check_signature(older, key, "consistency.json")
        hashes = [bytes.fromhex(h) for h in proof["proof"]]
        check_consistency(older["size"], checkpoint["size"], hashes, older["root"],
                          checkpoint["root"])  # fmt: skip
        said.append(f"extends the checkpoint of {older['size']} events ({older['time']})")
    by = "the key you gave" if key_text else "the key in this folder (give --key to mean more)"
    return (
        f"OK: {found['events']} events of {manifest['campaign']}, each in the log; "
        f"{recipients} recipients, each where its events left it"
        + "".join(f"; {s}" for s in said)
        + f"\nverified against: {checkpoint['origin']} size {checkpoint['size']} root "
        f"{base64.b64encode(checkpoint['root']).decode()} ({checkpoint['time']}), signed by {by}"
        "\ncompare it with the checkpoint you were sent"
    )


def main(argv: list) -> int:
    args, key, since = list(argv[1:]), None, None
    for flag in ("--key", "--since"):
        if flag in args:
            at = args.index(flag)
            value = args[at + 1] if at + 1 < len(args) else ""
            del args[at : at + 2]
            key, since = (value, since) if flag == "--key" else (key, Path(value))
    folder = Path(args[0]) if args else Path(__file__).resolve().parent
    try:
        print(verify(folder, key, since))
    except Unchecked as exc:
        print(f"NOT VERIFIED: {exc}")
        return 2
    except (Broken, OSError, ValueError, KeyError, TypeError) as exc:
        print(f"BROKEN: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
