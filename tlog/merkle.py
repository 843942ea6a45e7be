"""RFC 9162 (RFC 6962) Merkle trees: hashing, proof verification, and proof plans for a node store.

Hashes are 32-byte `bytes`. A leaf hash is SHA-256(0x00 ‖ data) and an interior node SHA-256(0x01 ‖ left ‖
right); the distinct prefixes keep a leaf from ever passing for a node (second preimages).

The store this module plans for keeps the hashes of *complete* (perfect) subtrees only. A node id is
`(level, index)`: the subtree of 2**level leaves starting at leaf index·2**level. Every node of a tree of n
leaves whose range ends at or before n is complete and never changes once written, so a log only ever appends
to its store (at most two nodes per leaf on average) and can answer a root or proof for *any* earlier size
from the same rows. Proof elements that are not complete subtrees (the ragged right border of a tree) are
composed on the fly from several stored nodes, like transparency-dev/merkle's "ephemeral" nodes.

The verifiers follow RFC 9162 §2.1.3.2 and §2.1.4.2 step by step and reject a proof of the wrong length
before hashing anything, so a failure says what was wrong rather than only that the roots differ.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

__all__ = [
    "EMPTY_ROOT", "HASH_SIZE", "MemoryTree", "MissingNodeError", "NodeId", "Plan", "ProofError", "append_nodes",
    "consistency_plan", "frontier_ids", "hash_children", "hash_leaf", "inclusion_plan", "root",
    "root_from_frontier", "root_from_inclusion", "root_plan", "verify_consistency", "verify_inclusion",
]

HASH_SIZE = 32
NodeId = tuple[int, int]

#: The root of the empty tree: the SHA-256 of nothing (not a leaf hash, which would carry the 0x00 prefix).
EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof does not verify, or its inputs are malformed; the message says which and why."""


class MissingNodeError(LookupError):
    """A plan was assembled from a store that lacks one of the nodes it names."""


# ------------------------------------------------------------------------------------------------ hashing


def hash_leaf(data: bytes) -> bytes:
    """The leaf hash of `data`: SHA-256(0x00 ‖ data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: SHA-256(0x01 ‖ left ‖ right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """The Merkle tree hash (MTH) over `leaf_hashes`, straight from RFC 9162 §2.1.1.

    The reference definition, recursive and O(n): for tests and small trees, not for a log's store.
    """
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = _split(n)
    return hash_children(root(leaf_hashes[:k]), root(leaf_hashes[k:]))


def _split(n: int) -> int:
    """The largest power of two smaller than n (n ≥ 2): where RFC 9162 splits a tree of n leaves."""
    return 1 << ((n - 1).bit_length() - 1)


# ------------------------------------------------------------------------------------------- verification


def _check_count(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ProofError(f"{what} is negative ({value})")


def _check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes | bytearray):
        raise TypeError(f"{what} must be bytes, not {type(value).__name__}")
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes, not {HASH_SIZE}")


def _hashes(count: int) -> str:
    return "1 hash" if count == 1 else f"{count} hashes"


def _inclusion_length(index: int, size: int) -> int:
    """How many hashes the inclusion proof of leaf `index` in a tree of `size` leaves has.

    Below the level where the paths to `index` and to the last leaf part, every level contributes a sibling
    (the "inner" part); above it, only the levels where `index` lies in a right subtree do (the "border").
    """
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def root_from_inclusion(index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that `proof` leads to from leaf `index` of a tree of `size` leaves (RFC 9162 §2.1.3.2).

    Raises ProofError when the inputs cannot form a proof at all (index outside the tree, wrong length,
    hashes not 32 bytes); comparing the result with a trusted root is the caller's (`verify_inclusion`).
    """
    _check_count(index, "leaf index")
    _check_count(size, "tree size")
    if index >= size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    _check_hash(leaf_hash, "leaf hash")
    for position, element in enumerate(proof):
        _check_hash(element, f"proof hash {position}")
    expected = _inclusion_length(index, size)
    if len(proof) != expected:
        raise ProofError(f"inclusion proof has {_hashes(len(proof))}; leaf {index} of a tree of size {size} "
                         f"needs {expected}")
    fn, sn, digest = index, size - 1, bytes(leaf_hash)
    for element in proof:
        if sn == 0:  # unreachable after the length check; kept as the RFC's own guard
            raise ProofError("inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            digest = hash_children(element, digest)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            digest = hash_children(digest, element)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the path to the root")
    return digest


def verify_inclusion(index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Check that leaf `index` with hash `leaf_hash` is in the tree of `size` leaves whose root is `root`.

    Returns None on success; raises ProofError saying why otherwise.
    """
    _check_hash(root, "root hash")
    computed = root_from_inclusion(index, size, leaf_hash, proof)
    if computed != root:
        raise ProofError(f"inclusion proof of leaf {index} leads to root {computed.hex()}, not {bytes(root).hex()}")


def _consistency_length(size1: int, size2: int) -> int:
    """How many hashes the consistency proof from `size1` to `size2` has (0 < size1 < size2).

    It is the inclusion path of the old tree's last leaf, less the levels inside the largest complete subtree
    that ends with that leaf (their hashes are known from the old root's side), plus that subtree's own hash
    unless it is the whole old tree (size1 a power of two, whose root the verifier already holds).
    """
    shift = (size1 & -size1).bit_length() - 1
    length = _inclusion_length(size1 - 1, size2) - shift
    return length if size1 == 1 << shift else length + 1


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    """Check that the tree of `size2` leaves with root `root2` extends the one of `size1` leaves, `root1`.

    RFC 9162 §2.1.4.2. Equal sizes need an empty proof and equal roots; from the empty tree (size1 0) every
    tree is consistent and the proof is empty. Raises ProofError saying why when the proof fails.
    """
    _check_count(size1, "old tree size")
    _check_count(size2, "new tree size")
    _check_hash(root1, "old root hash")
    _check_hash(root2, "new root hash")
    for position, element in enumerate(proof):
        _check_hash(element, f"proof hash {position}")
    if size1 > size2:
        raise ProofError(f"old tree size {size1} is larger than the new one {size2}")
    if size1 == size2:
        if proof:
            raise ProofError(f"trees of the same size need an empty consistency proof, not {_hashes(len(proof))}")
        if root1 != root2:
            raise ProofError(f"two different roots for the same tree size {size1}")
        return
    if size1 == 0:
        if proof:
            raise ProofError(f"consistency with the empty tree needs an empty proof, not {_hashes(len(proof))}")
        return
    expected = _consistency_length(size1, size2)
    if len(proof) != expected:
        raise ProofError(f"consistency proof has {_hashes(len(proof))}; from size {size1} to {size2} "
                         f"needs {expected}")

    path = list(proof)
    if size1 & (size1 - 1) == 0:  # the old tree is one complete subtree: its root starts the path
        path.insert(0, bytes(root1))
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    old = new = path[0]
    for element in path[1:]:
        if sn == 0:  # unreachable after the length check; kept as the RFC's own guard
            raise ProofError("consistency proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            old = hash_children(element, old)
            new = hash_children(element, new)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            new = hash_children(new, element)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("consistency proof is shorter than the path to the root")
    if old != root1:
        raise ProofError(f"consistency proof does not lead to the old root at size {size1}")
    if new != root2:
        raise ProofError(f"consistency proof does not lead to the new root at size {size2}")


# ------------------------------------------------------------------------------------------ node planning


def _range_ids(start: int, end: int) -> list[NodeId]:
    """The complete subtrees that tile leaves [start, end), left to right, largest first.

    Every range a proof or root needs starts at a multiple of a power of two at least its length (the RFC's
    split keeps that true at every level), so the tiles are the binary digits of end − start in decreasing
    order, and the range's MTH is their fold from the right (`_fold`).
    """
    ids: list[NodeId] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        ids.append((level, start >> level))
        start += 1 << level
    return ids


def frontier_ids(size: int) -> list[NodeId]:
    """The complete subtrees that make up a tree of `size` leaves, left to right (one per set bit of size).

    Their hashes are all a writer needs to append (`append_nodes`) and to compute the root
    (`root_from_frontier`).
    """
    _check_size(size, "tree size")
    return _range_ids(0, size)


def _check_size(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{what} is negative ({value})")


def _lookup(hashes: Mapping[NodeId, bytes], node: NodeId) -> bytes:
    try:
        digest = hashes[node]
    except KeyError:
        raise MissingNodeError(f"node (level {node[0]}, index {node[1]}) is not in the store") from None
    if not isinstance(digest, bytes | bytearray) or len(digest) != HASH_SIZE:
        raise ValueError(f"node {node} is not a {HASH_SIZE}-byte hash")
    return bytes(digest)


def _fold(ids: Sequence[NodeId], hashes: Mapping[NodeId, bytes]) -> bytes:
    """The MTH of adjacent complete subtrees `ids` (largest first): hashed together from the right."""
    if not ids:
        return EMPTY_ROOT
    digest = _lookup(hashes, ids[-1])
    for node in reversed(ids[:-1]):
        digest = hash_children(_lookup(hashes, node), digest)
    return digest


def append_nodes(size: int, frontier: Mapping[NodeId, bytes],
                 leaf_hashes: Sequence[bytes]) -> list[tuple[int, int, bytes]]:
    """The nodes `(level, index, hash)` that appending `leaf_hashes` to a tree of `size` leaves completes.

    `frontier` holds (at least) the hashes of `frontier_ids(size)`. The result lists the new leaves (level 0)
    and every subtree they complete, each after both of its children: inserting in this order, a reader
    never finds a parent whose children are missing.
    """
    _check_size(size, "tree size")
    stack = [(level, index, _lookup(frontier, (level, index))) for level, index in frontier_ids(size)]
    created: list[tuple[int, int, bytes]] = []
    position = size
    for offset, leaf in enumerate(leaf_hashes):
        if not isinstance(leaf, bytes | bytearray) or len(leaf) != HASH_SIZE:
            raise ValueError(f"leaf hash {offset} is not a {HASH_SIZE}-byte hash")
        node = (0, position, bytes(leaf))
        created.append(node)
        stack.append(node)
        position += 1
        # Two complete subtrees of one level side by side are the two halves of the next level's subtree.
        while len(stack) >= 2 and stack[-1][0] == stack[-2][0]:
            level, left_index, left = stack[-2]
            right = stack[-1][2]
            parent = (level + 1, left_index >> 1, hash_children(left, right))
            stack[-2:] = [parent]
            created.append(parent)
    return created


def root_from_frontier(size: int, frontier: Mapping[NodeId, bytes]) -> bytes:
    """The root of a tree of `size` leaves from the hashes of its `frontier_ids`."""
    return root_plan(size).assemble(frontier)[0]


class Plan:
    """Which stored nodes a root or proof needs, and how to compose it from them.

    Planning is separate from reading so a store can fetch `node_ids` in one query; `assemble` then builds
    the result from whatever mapping of node id to hash the store returns (MissingNodeError if one is absent).
    """

    __slots__ = ("_elements", "node_ids")

    def __init__(self, elements: Iterable[Sequence[NodeId]]) -> None:
        self._elements: tuple[tuple[NodeId, ...], ...] = tuple(tuple(element) for element in elements)
        #: every stored node the result needs, each once, in the order first needed
        self.node_ids: list[NodeId] = list(dict.fromkeys(node for element in self._elements for node in element))

    @property
    def elements(self) -> tuple[tuple[NodeId, ...], ...]:
        """Per result hash, the complete subtrees it is composed of (one node when it is itself complete)."""
        return self._elements

    def assemble(self, hashes: Mapping[NodeId, bytes]) -> list[bytes]:
        """The proof (or `[root]`) composed from the stored hashes."""
        return [_fold(element, hashes) for element in self._elements]

    def __len__(self) -> int:
        return len(self._elements)

    def __repr__(self) -> str:
        return f"Plan({len(self._elements)} hashes from {len(self.node_ids)} nodes)"


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose MTHs form the inclusion proof of `index` (RFC 9162 §2.1.3.1), bottom-up."""
    ranges: list[tuple[int, int]] = []
    low, high = 0, size
    while high - low > 1:
        middle = low + _split(high - low)
        if index < middle:
            ranges.append((middle, high))
            high = middle
        else:
            ranges.append((low, middle))
            low = middle
    return ranges[::-1]


def _consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """The leaf ranges whose MTHs form the consistency proof (RFC 9162 §2.1.4.1 SUBPROOF), bottom-up."""
    ranges: list[tuple[int, int]] = []
    low, high, m, whole_old_tree = 0, size2, size1, True
    while True:
        n = high - low
        if m == n:
            if not whole_old_tree:  # the verifier knows the old root, but not this subtree of it
                ranges.append((low, high))
            break
        middle = low + _split(n)
        if m <= middle - low:
            ranges.append((middle, high))
            high = middle
        else:
            ranges.append((low, middle))
            m -= middle - low
            low = middle
            whole_old_tree = False
    return ranges[::-1]


def inclusion_plan(index: int, size: int) -> Plan:
    """The plan of the inclusion proof of leaf `index` in the tree of `size` leaves."""
    _check_size(index, "leaf index")
    _check_size(size, "tree size")
    if index >= size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    return Plan(_range_ids(low, high) for low, high in _inclusion_ranges(index, size))


def consistency_plan(size1: int, size2: int) -> Plan:
    """The plan of the consistency proof from the tree of `size1` leaves to the one of `size2` ≥ size1."""
    _check_size(size1, "old tree size")
    _check_size(size2, "new tree size")
    if size1 > size2:
        raise ValueError(f"old tree size {size1} is larger than the new one {size2}")
    if size1 == 0 or size1 == size2:
        return Plan(())
    return Plan(_range_ids(low, high) for low, high in _consistency_ranges(size1, size2))


def root_plan(size: int) -> Plan:
    """The plan of the root of the tree of `size` leaves (`assemble` returns `[root]`; EMPTY_ROOT for 0)."""
    return Plan([frontier_ids(size)])


# ------------------------------------------------------------------------------------------ in memory


class MemoryTree:
    """A tree in a dict node store, built and read through the plans exactly as a database-backed log is.

    For tests (this library's and the service's) and small tools; it keeps every complete subtree in memory.
    """

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._nodes: dict[NodeId, bytes] = {}
        self._size = 0
        self.extend(leaf_hashes)

    @property
    def size(self) -> int:
        return self._size

    @property
    def nodes(self) -> Mapping[NodeId, bytes]:
        """The node store (read-only view)."""
        return MappingProxyType(self._nodes)

    def append(self, leaf_hash: bytes) -> int:
        """Append one leaf hash; returns its leaf index."""
        self.extend([leaf_hash])
        return self._size - 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        leaves = list(leaf_hashes)
        for level, index, digest in append_nodes(self._size, self._nodes, leaves):
            self._nodes[(level, index)] = digest
        self._size += len(leaves)

    def leaf_hash(self, index: int) -> bytes:
        if not 0 <= index < self._size:
            raise IndexError(f"leaf index {index} is not in a tree of size {self._size}")
        return self._nodes[(0, index)]

    def root(self, size: int | None = None) -> bytes:
        """The root at `size` leaves (default: the current size)."""
        return root_plan(self._at(size)).assemble(self._nodes)[0]

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_plan(index, self._at(size)).assemble(self._nodes)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        return consistency_plan(size1, self._at(size2)).assemble(self._nodes)

    def _at(self, size: int | None) -> int:
        if size is None:
            return self._size
        _check_size(size, "tree size")
        if size > self._size:
            raise ValueError(f"tree size {size} is beyond the tree's {self._size} leaves")
        return size

    def __len__(self) -> int:
        return self._size

    def __repr__(self) -> str:
        return f"MemoryTree(size={self._size})"
