"""Signed checkpoints: the log's size and Merkle root at a moment, signed with Ed25519, in
the form transparency logs hand to their auditors (C2SP ``tlog-checkpoint`` in a
``signed-note``, as the Go checksum database, Sigstore and Sigsum write them)::

    loa/ninh-thuan                      <- the log's name (origin)
    1048576                             <- its size: events sealed
    dGhlIE1lcmtsZSByb290IGluIGJhc2U2NA==  <- MTH of them, base64
    time 2026-12-01T03:00:00.000000Z    <- when it was signed (an extension line)

    — loa/ninh-thuan AbCdEf...==        <- key name, base64(key id (4) || signature (64))

The signature covers every line above the blank one, newlines included. The key id is
the first four bytes of ``SHA-256(name || "\\n" || 0x01 || public key)``; the auditor's
verifier key is ``name+<key id in hex>+base64(0x01 || public key)`` (the note format's
``vkey``), which ``loa audit keygen`` and ``loa audit checkpoint`` print.

A checkpoint an auditor holds pins the log: any later tree must be consistent with it
(``merkle.verify_consistency``); a ledger rewritten, re-chained or cut back, even with a
new key, cannot produce that proof.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

from ledger.chain import stamp

#: The em dash and space that start a signature line (U+2014, as the note format has it).
SIGNATURE_START = "\u2014 "
ED25519 = b"\x01"
#: A log's (and its key's) name: printable, no spaces or plus signs (the vkey separator).
NAME = re.compile(r"[!-*,-~]{1,64}")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or whose signature does not hold; the message
    names the line (``line 3: …``) or what failed."""


class BadKey(ValueError):
    """A signing or verifier key that is not one (the message says why)."""


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint.

    Attributes:
        origin: the log's name.
        size: leaves (sealed events) in the tree.
        root: the tree's root (32 bytes).
        time: when it was made (``None`` in a note without a ``time`` line).
        body: the signed text (every line up to the blank one).
        signatures: (key name, key id, signature) of each signature line.
        extensions: the signed lines after the root (``time …``; an export's checkpoint
            also ``export <leaf index of the export's own event>``).
    """

    origin: str
    size: int
    root: bytes
    time: str | None
    body: str
    signatures: tuple[tuple[str, bytes, bytes], ...] = ()
    extensions: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The note as written to a file or a report."""
        lines = [
            f"{SIGNATURE_START}{name} {base64.b64encode(kid + sig).decode()}"
            for name, kid, sig in self.signatures
        ]
        return self.body + "\n" + "\n".join(lines) + "\n"


def key_id(name: str, public: bytes) -> bytes:
    """The note format's key id: ``SHA-256(name || "\\n" || 0x01 || public)[:4]``."""
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public).digest()[:4]


def verifier_key(name: str, public: bytes) -> str:
    """``name+<key id hex>+base64(0x01 || public)``: what an auditor is given."""
    encoded = base64.b64encode(ED25519 + public).decode()
    return f"{name}+{key_id(name, public).hex()}+{encoded}"


def parse_verifier_key(text: str) -> tuple[str, bytes]:
    """(name, 32-byte public key) from a verifier key.

    Raises:
        BadKey: not ``name+hex8+base64`` of an Ed25519 key, or its id does not match.
    """
    parts = text.strip().split("+", 2)  # base64 may hold "+" too; names and ids do not
    if len(parts) != 3 or not NAME.fullmatch(parts[0]):
        raise BadKey("a verifier key is name+keyid+base64 (from `loa audit keygen`)")
    name, kid, encoded = parts
    try:
        raw = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise BadKey("the verifier key's last part is not base64") from None
    if len(raw) != 33 or raw[:1] != ED25519:
        raise BadKey("the verifier key is not an Ed25519 key (0x01 and 32 bytes)")
    if key_id(name, raw[1:]).hex() != kid.lower():
        raise BadKey("the verifier key's id does not match its name and key")
    return name, raw[1:]


def signing_key(secret: str) -> bytes:
    """The 32-byte Ed25519 seed from a setting: base64 (as ``loa audit keygen`` prints).

    Raises:
        BadKey: not base64 of exactly 32 bytes, or a seed of one repeated byte.
    """
    try:
        seed = base64.b64decode(secret.strip(), validate=True)
    except binascii.Error:
        raise BadKey("not base64 (make one with `loa audit keygen`)") from None
    if len(seed) != 32:
        raise BadKey(f"an Ed25519 seed is 32 bytes, this is {len(seed)}")
    if len(set(seed)) < 8:
        raise BadKey("too weak: a seed of a few repeated bytes (use `loa audit keygen`)")
    return seed


def public_of(seed: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    private = Ed25519PrivateKey.from_private_bytes(seed)
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def sign(
    origin: str,
    size: int,
    root: bytes,
    at: datetime,
    seed: bytes,
    extensions: tuple[str, ...] = (),
) -> Checkpoint:
    """A checkpoint of the tree of ``size`` leaves with ``root``, signed at ``at`` by the
    key ``seed`` under the log's own name; ``extensions``: more signed lines after the
    ``time`` line (``export 1041``).

    Raises:
        ValueError: an origin the note format cannot carry, or an extension line that is
            empty or holds a line end.
    """
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if not NAME.fullmatch(origin):
        raise ValueError(
            f"a log name is 1 to 64 printable characters without spaces or +: {origin!r}"
        )
    if any(not line or "\n" in line or "\r" in line for line in extensions):
        raise ValueError(f"an extension line is one line of text: {extensions!r}")
    lines = (f"time {stamp(at)}", *extensions)
    body = f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n" + "".join(
        f"{line}\n" for line in lines
    )
    signature = Ed25519PrivateKey.from_private_bytes(seed).sign(body.encode())
    kid = key_id(origin, public_of(seed))
    signed = ((origin, kid, signature),)
    return Checkpoint(origin, size, root, stamp(at), body, signed, lines)


def parse(text: str) -> Checkpoint:
    """Read a checkpoint note (its signatures are read, not checked: ``check``).

    Raises:
        CheckpointError: naming the line that is not what a checkpoint has there.
    """
    if "\r" in text:
        raise CheckpointError("line 1: a checkpoint has \\n line ends, not \\r\\n")
    body, blank, signatures = text.partition("\n\n")
    if not blank:
        raise CheckpointError("no blank line before the signatures: not a signed checkpoint")
    body += "\n"
    lines = body.split("\n")[:-1]
    if len(lines) < 3:
        raise CheckpointError(f"line {len(lines) + 1}: a checkpoint has a name, a size and a root")
    origin, size_text, root_text, *extensions = lines
    if not NAME.fullmatch(origin):
        raise CheckpointError("line 1: not a log name")
    if (
        not size_text.isascii()
        or not size_text.isdigit()
        or (size_text != "0" and size_text[0] == "0")
    ):
        raise CheckpointError(f"line 2: the size is a decimal number, not {size_text[:40]!r}")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error:
        root = b""
    if len(root) != 32:
        raise CheckpointError("line 3: the root is the base64 of 32 bytes")
    time = None
    for number, line in enumerate(extensions, start=4):
        if not line:
            raise CheckpointError(f"line {number}: an empty extension line")
        if line.startswith("time "):
            time = line[5:]
    read: list[tuple[str, bytes, bytes]] = []
    first = len(lines) + 2
    for number, line in enumerate(signatures.rstrip("\n").split("\n"), start=first):
        if not line.startswith(SIGNATURE_START):
            raise CheckpointError(f"line {number}: a signature line starts with '— '")
        name, _, encoded = line[len(SIGNATURE_START) :].partition(" ")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raw = b""
        if not NAME.fullmatch(name) or len(raw) != 68:
            raise CheckpointError(f"line {number}: not a key name and an Ed25519 signature")
        read.append((name, raw[:4], raw[4:]))
    if not read:
        raise CheckpointError(f"line {first}: no signature")
    return Checkpoint(origin, int(size_text), root, time, body, tuple(read), tuple(extensions))


def check(checkpoint: Checkpoint, name: str, public: bytes) -> None:
    """Check the checkpoint's signature by the key ``name``/``public``.

    Raises:
        CheckpointError: no signature by that key, or one that does not hold.
    """
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    kid = key_id(name, public)
    for signer, signed_kid, signature in checkpoint.signatures:
        if signer == name and signed_kid == kid:
            try:
                Ed25519PublicKey.from_public_bytes(public).verify(
                    signature, checkpoint.body.encode()
                )
            except InvalidSignature:
                raise CheckpointError(
                    f"the signature by {name} does not hold: the checkpoint was altered"
                ) from None
            return
    others = ", ".join(f"{signer}+{signed.hex()}" for signer, signed, _ in checkpoint.signatures)
    raise CheckpointError(
        f"not signed by the key {name}+{kid.hex()} but by {others}: another log, another "
        "key, or the key under another log name (LOA_AUDIT_LOG_NAME)"
    )
