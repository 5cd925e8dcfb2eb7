"""The log's Merkle tree: RFC 9162 §2.1 (Certificate Transparency 2.0), SHA-256.

Every sealed event is a leaf, in the order sealed; the tree of the first ``n`` leaves has
one root, ``MTH(D[n])``, which a signed checkpoint commits to. Two proofs follow from it:

- **inclusion** (§2.1.3): the hashes that lead from one leaf to the root of a tree of
  ``size`` leaves: an auditor holding one event and a checkpoint knows the event is in
  the log the checkpoint signed;
- **consistency** (§2.1.4): the hashes that show the tree of ``size2`` leaves contains the
  tree of ``size1`` as its prefix: nothing checkpointed before was rewritten or cut off.

Hashing, with domain separation of leaves and nodes (§2.1.1), so that no leaf can pass
for a node::

    leaf_hash(d)    = SHA-256(0x00 || d)
    node_hash(l, r) = SHA-256(0x01 || l || r)
    MTH({})         = SHA-256()
    MTH(D[n])       = node_hash(MTH(D[0:k]), MTH(D[k:n])), k the largest power of 2 < n

Why written here rather than taken from a library: the verification (§2.1.3.2, §2.1.4.2)
must also live in the auditor's standalone script, with the standard library only, so it
is written out in any case; and pymerkle, the maintained Python tree, appended a million
leaves in 43 s on this machine (``benchmarks/audit.py`` measures both), where a full
verify must take under a minute with the reading and encoding of every event. Each
function is tested against the RFC's reference vectors (those of transparency-dev/merkle
and Certificate Transparency) and cross-checked against pymerkle's roots.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof that does not prove what it claims (a wrong hash, length or position)."""


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``: the hash of one entry as a leaf (RFC 9162 §2.1.1)."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: an interior node (RFC 9162 §2.1.1)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


class Peaks:
    """The roots of a tree's perfect subtrees, left to right (a compact range from 0):
    enough to give the root of every prefix as the leaves stream past, in O(log n) memory.

    The tree of ``n`` leaves has one perfect subtree for each bit set in ``n`` (the
    largest first); its root folds them from the right, which is RFC 9162's recursion
    read bottom-up.
    """

    def __init__(self, size: int = 0, peaks: Sequence[bytes] = ()) -> None:
        """An empty range, or one restored from a ``state`` of ``size`` leaves.

        Raises:
            ValueError: ``peaks`` is not one hash per bit set in ``size``.
        """
        if len(peaks) != size.bit_count() or any(len(p) != HASH_SIZE for p in peaks):
            raise ValueError(f"a tree of {size} leaves has {size.bit_count()} peaks")
        self.size = size
        self._peaks: list[bytes] = list(peaks)

    @property
    def state(self) -> list[bytes]:
        """The peaks, left to right: with ``size``, what restores this range."""
        return list(self._peaks)

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash (already ``leaf_hash``-ed)."""
        node, size = leaf, self.size
        while size & 1:  # each completed pair of equal subtrees merges into one
            node = node_hash(self._peaks.pop(), node)
            size >>= 1
        self._peaks.append(node)
        self.size += 1

    def root(self) -> bytes:
        """``MTH`` of the leaves appended so far."""
        if not self._peaks:
            return EMPTY_ROOT
        root = self._peaks[-1]
        for peak in reversed(self._peaks[:-1]):
            root = node_hash(peak, root)
        return root


def root_of(leaves: Iterable[bytes]) -> bytes:
    """``MTH`` of the given leaf hashes."""
    peaks = Peaks()
    for leaf in leaves:
        peaks.append(leaf)
    return peaks.root()


def _split(n: int) -> int:
    """The largest power of 2 smaller than ``n`` (``n`` > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


class Tree:
    """A tree over given leaf hashes, with every complete level kept, to answer roots and
    proofs for any size up to its own in O(log n) hashes each.

    Parameters:
        leaves: the leaf hashes (``leaf_hash``), in log order.
    """

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.levels: list[Sequence[bytes]] = [leaves]
        below = leaves
        while len(below) > 1:
            above = [node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
            self.levels.append(above)
            below = above

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def root(self, size: int | None = None) -> bytes:
        """``MTH(D[size])`` (the whole tree by default).

        Raises:
            ValueError: ``size`` beyond the tree.
        """
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise ValueError(f"no tree of {size} leaves: the log has {self.size}")
        return self._mth(0, size) if size else EMPTY_ROOT

    def _mth(self, start: int, end: int) -> bytes:
        """``MTH(D[start:end])``: a perfect aligned subtree is read from its level; any
        other range the RFC's recursion makes is split as it says."""
        n = end - start
        if n & (n - 1) == 0 and start % n == 0:
            return self.levels[n.bit_length() - 1][start // n]
        k = _split(n)
        return node_hash(self._mth(start, start + k), self._mth(start + k, end))

    def inclusion(self, index: int, size: int | None = None) -> list[bytes]:
        """The inclusion proof of leaf ``index`` in the tree of ``size`` leaves: RFC 9162
        §2.1.3.1's ``PATH(index, D[size])``, from the leaf's sibling up.

        Raises:
            ValueError: ``index`` not below ``size``, or ``size`` beyond the tree.
        """
        size = self.size if size is None else size
        if not 0 <= index < size <= self.size:
            raise ValueError(f"no leaf {index} in a tree of {size} (the log has {self.size})")
        path: list[bytes] = []
        start, end = 0, size
        while end - start > 1:  # PATH, unrolled: the siblings are found top-down
            k = _split(end - start)
            if index < start + k:
                path.append(self._mth(start + k, end))
                end = start + k
            else:
                path.append(self._mth(start, start + k))
                start += k
        path.reverse()
        return path

    def consistency(self, size1: int, size2: int | None = None) -> list[bytes]:
        """The consistency proof from the tree of ``size1`` leaves to that of ``size2``:
        RFC 9162 §2.1.4.1's ``PROOF(size1, D[size2])`` (empty when the sizes are equal or
        ``size1`` is 0: nothing to prove).

        Raises:
            ValueError: not ``0 <= size1 <= size2 <= size``.
        """
        size2 = self.size if size2 is None else size2
        if not 0 <= size1 <= size2 <= self.size:
            raise ValueError(f"no proof from {size1} to {size2} leaves (the log has {self.size})")
        if size1 in (0, size2):
            return []
        proof: list[bytes] = []
        m, start, end, whole = size1, 0, size2, True
        while m != end:  # SUBPROOF, unrolled from the top (m == end: the subtree is D[m])
            k = _split(end - start)
            if m - start <= k:
                proof.append(self._mth(start + k, end))
                end = start + k
            else:
                proof.append(self._mth(start, start + k))
                start += k
                whole = False
        if not whole:
            proof.append(self._mth(start, end))
        proof.reverse()
        return proof


def _lsb(n: int) -> int:
    return n & 1


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check an inclusion proof: RFC 9162 §2.1.3.2, step by step.

    Parameters:
        leaf: the leaf's hash (``leaf_hash`` of the entry).
        index, size: the leaf's position (from 0) and the tree's size.
        proof: the path, from the leaf's sibling up.
        root: the root the proof must lead to (a checkpoint's).

    Raises:
        ProofError: the proof does not lead from the leaf to the root.
    """
    if index >= size:
        raise ProofError(f"leaf {index} is not in a tree of {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the inclusion proof is longer than the tree is high")
        if _lsb(fn) or fn == sn:
            r = node_hash(p, r)
            while not _lsb(fn) and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the inclusion proof is shorter than the tree is high")
    if r != root:
        raise ProofError("the inclusion proof leads to another root")


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree of ``size2`` leaves (``root2``) extends that of ``size1``
    (``root1``): RFC 9162 §2.1.4.2, step by step.

    Raises:
        ProofError: it does not (the earlier tree was rewritten, cut, or the proof is
            not one).
    """
    if size1 > size2:
        raise ProofError(f"a tree of {size2} cannot extend one of {size1}: the log was cut")
    if size1 == size2:
        if proof or root1 != root2:
            raise ProofError(f"two different trees of {size1} leaves")
        return
    if size1 == 0:
        if proof:
            raise ProofError("a proof from the empty tree must be empty")
        return
    if not proof:
        raise ProofError("an empty consistency proof between different sizes")
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # an exact power of 2: its root is a node of the path
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while _lsb(fn):
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is longer than the tree is high")
        if _lsb(fn) or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not _lsb(fn) and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the consistency proof is shorter than the tree is high")
    if fr != root1:
        raise ProofError(f"the tree of {size1} leaves is not the prefix it was: rewritten")
    if sr != root2:
        raise ProofError("the consistency proof leads to another root")
