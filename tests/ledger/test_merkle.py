"""The log's Merkle tree (``ledger.audit.merkle``) against RFC 9162's reference vectors
(those Certificate Transparency and transparency-dev/merkle test with: eight leaves,
their roots, inclusion and consistency proofs), every corruption those projects probe
their verifiers with, and pymerkle's roots for every size up to 70."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.audit.merkle import (
    EMPTY_ROOT,
    Peaks,
    ProofError,
    Tree,
    leaf_hash,
    node_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)

LEAVES = [
    bytes.fromhex(h)
    for h in (
        "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]  # fmt: skip
#: MTH(D[n]) for n = 1..8.
ROOTS = [
    bytes.fromhex(h)
    for h in (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]


def hashes(*short: str) -> list[bytes]:
    return [bytes.fromhex(h) for h in short]


#: (leaf index from 0, tree size, proof)
INCLUSION = [
    (0, 8, hashes(
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    )),
    (5, 8, hashes(
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    )),
    (2, 3, hashes("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")),
    (1, 5, hashes(
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    )),
]  # fmt: skip
#: (size1, size2, proof)
CONSISTENCY = [
    (1, 8, hashes(
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    )),
    (6, 8, hashes(
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    )),
    (2, 5, hashes(
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    )),
    (6, 7, hashes(
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    )),
]  # fmt: skip
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
TREE = Tree([leaf_hash(leaf) for leaf in LEAVES])


def test_leaves_and_nodes_are_hashed_apart():
    assert leaf_hash(b"") == ROOTS[0]  # the one-leaf tree's root is its leaf
    assert node_hash(leaf_hash(LEAVES[0]), leaf_hash(LEAVES[1])) == ROOTS[1]
    assert leaf_hash(b"\x01" + ROOTS[0] * 2) != node_hash(ROOTS[0], ROOTS[0])


@pytest.mark.parametrize("size", range(1, 9))
def test_the_root_of_each_size_is_the_rfcs(size):
    assert TREE.root(size) == ROOTS[size - 1]
    assert root_of(leaf_hash(leaf) for leaf in LEAVES[:size]) == ROOTS[size - 1]


def test_the_empty_tree_is_the_hash_of_nothing():
    assert TREE.root(0) == root_of([]) == EMPTY_ROOT == Peaks().root()
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_proofs_are_the_rfcs_and_verify(index, size, proof):
    assert TREE.inclusion(index, size) == proof
    verify_inclusion(leaf_hash(LEAVES[index]), index, size, proof, ROOTS[size - 1])


@pytest.mark.parametrize(("size1", "size2", "proof"), CONSISTENCY)
def test_consistency_proofs_are_the_rfcs_and_verify(size1, size2, proof):
    assert TREE.consistency(size1, size2) == proof
    verify_consistency(size1, size2, proof, ROOTS[size1 - 1], ROOTS[size2 - 1])


def flipped(proof: list[bytes], i: int) -> list[bytes]:
    wrong = list(proof)
    wrong[i] = bytes([wrong[i][0] ^ 8]) + wrong[i][1:]
    return wrong


def inclusion_probes(index: int, size: int, proof: list[bytes]) -> dict[str, tuple]:
    """transparency-dev/merkle's corruptions of an inclusion proof (leaf, index, size,
    proof, root), each of which a verifier must refuse."""
    leaf, root = leaf_hash(LEAVES[index]), ROOTS[size - 1]
    probes = {
        "index - 1": (leaf, index - 1, size, proof, root),
        "index + 1": (leaf, index + 1, size, proof, root),
        "index ^ 2": (leaf, index ^ 2, size, proof, root),
        "size * 2": (leaf, index, size * 2, proof, root),
        "size / 2": (leaf, index, size // 2, proof, root),
        "wrong leaf": (b"WrongLeaf", index, size, proof, root),
        "empty root": (leaf, index, size, proof, EMPTY_ROOT),
        "random root": (leaf, index, size, proof, SOME_HASH),
        "trailing garbage": (leaf, index, size, [*proof, b""], root),
        "trailing root": (leaf, index, size, [*proof, root], root),
        "preceding garbage": (leaf, index, size, [b"", *proof], root),
        "preceding root": (leaf, index, size, [root, *proof], root),
        "removed component": (leaf, index, size, proof[:-1], root),
    }
    for i in range(len(proof)):
        probes[f"modified proof[{i}]"] = (leaf, index, size, flipped(proof, i), root)
    if len(proof) > 1:
        probes["inserted component"] = (leaf, index, size, [proof[0], SOME_HASH, *proof[1:]], root)
    return {name: probe for name, probe in probes.items() if probe[1] >= 0}


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_every_corrupted_inclusion_proof_is_refused(index, size, proof):
    accepted = []
    for name, probe in inclusion_probes(index, size, proof).items():
        try:
            verify_inclusion(*probe)
        except ProofError:
            continue
        accepted.append(name)
    assert accepted == []


@pytest.mark.parametrize(("size1", "size2", "proof"), CONSISTENCY)
def test_every_corrupted_consistency_proof_is_refused(size1, size2, proof):
    root1, root2 = ROOTS[size1 - 1], ROOTS[size2 - 1]
    probes = {
        "size1 - 1": (size1 - 1, size2, proof, root1, root2),
        "size1 + 1": (size1 + 1, size2, proof, root1, root2),
        "size1 ^ 2": (size1 ^ 2, size2, proof, root1, root2),
        "size2 * 2": (size1, size2 * 2, proof, root1, root2),
        "size2 / 2": (size1, size2 // 2, proof, root1, root2),
        "wrong root1": (size1, size2, proof, b"WrongRoot", root2),
        "wrong root2": (size1, size2, proof, root1, b"WrongRoot"),
        "swapped roots": (size1, size2, proof, root2, root1),
        "empty proof": (size1, size2, [], root1, root2),
        "trailing garbage": (size1, size2, [*proof, b""], root1, root2),
        "trailing root1": (size1, size2, [*proof, root1], root1, root2),
        "trailing root2": (size1, size2, [*proof, root2], root1, root2),
        "preceding garbage": (size1, size2, [b"", *proof], root1, root2),
        "preceding root1": (size1, size2, [root1, *proof], root1, root2),
        "preceding root2": (size1, size2, [root2, *proof], root1, root2),
        "preceding proof[0]": (size1, size2, [proof[0], *proof], root1, root2),
        "truncated proof": (size1, size2, proof[:-1], root1, root2),
    }
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bytes([wrong[i][0] ^ 16]) + wrong[i][1:]
        probes[f"modified proof[{i}]"] = (size1, size2, wrong, root1, root2)
    accepted = []
    for name, probe in probes.items():
        try:
            verify_consistency(*probe)
        except ProofError:
            continue
        accepted.append(name)
    assert accepted == []


@pytest.mark.parametrize(
    ("size1", "size2", "root1", "root2", "proof", "holds"),
    [
        (0, 0, b"r1", b"r1", [], True),
        (0, 1, b"r1", b"r2", [], True),  # the empty tree is every tree's prefix
        (1, 1, b"r2", b"r2", [], True),
        (0, 0, b"r1", b"r2", [], False),
        (1, 1, b"r1", b"r2", [], False),
        (1, 0, b"r1", b"r2", [], False),  # a log cut back
        (2, 1, b"r1", b"r2", [], False),
        (1, 2, b"r1", b"r2", [], False),  # sizes differ: a proof is needed
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),  # equal roots, yet a proof
        (0, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        (1, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
    ],
)
def test_the_edges_of_consistency(size1, size2, root1, root2, proof, holds):
    try:
        verify_consistency(size1, size2, proof, root1, root2)
    except ProofError:
        assert not holds
    else:
        assert holds


def test_a_size_beyond_the_tree_is_refused():
    for ask in (lambda: TREE.root(9), lambda: TREE.inclusion(8, 8), lambda: TREE.inclusion(2, 9)):
        with pytest.raises(ValueError, match="the log has 8"):
            ask()
    with pytest.raises(ValueError):
        TREE.consistency(5, 4)


def test_the_roots_are_pymerkles_for_every_size_up_to_70():
    """An independent, maintained implementation agrees on every shape of tree."""
    from pymerkle import InmemoryTree

    reference = InmemoryTree(algorithm="sha256")
    entries = [f"event {i}".encode() for i in range(70)]
    ours = Tree([leaf_hash(e) for e in entries])
    peaks = Peaks()
    for size, entry in enumerate(entries, start=1):
        reference.append_entry(entry)
        peaks.append(leaf_hash(entry))
        assert ours.root(size) == reference.get_root(size) == peaks.root()


@given(st.integers(1, 300), st.data())
def test_every_proof_of_any_tree_verifies(size, data):
    tree = Tree([leaf_hash(i.to_bytes(4, "big")) for i in range(size)])
    index = data.draw(st.integers(0, size - 1))
    smaller = data.draw(st.integers(0, size))
    verify_inclusion(tree.levels[0][index], index, size, tree.inclusion(index), tree.root())
    verify_consistency(smaller, size, tree.consistency(smaller), tree.root(smaller), tree.root())


def test_peaks_restored_from_their_state_go_on_as_if_never_stopped():
    entries = [leaf_hash(f"event {i}".encode()) for i in range(45)]
    first = Peaks()
    for leaf in entries[:29]:
        first.append(leaf)
    again = Peaks(first.size, first.state)
    for leaf in entries[29:]:
        again.append(leaf)
    assert again.root() == Tree(entries).root() and again.size == 45
    with pytest.raises(ValueError, match="29 leaves has 4 peaks"):
        Peaks(29, first.state[:3])
