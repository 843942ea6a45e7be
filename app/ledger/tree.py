"""The Merkle tree over each audit chain (RFC 9162), stored as the hashes of its complete subtrees.

A chain's records are its leaves, in seq order (leaf index = seq − 1); a leaf is a salted commitment to the
record (tlog.records.leaf_data), never the record. Only complete subtrees are stored (`audit_tree_nodes`), at
most two rows per leaf; any root or proof, at any tree size, is composed from O(log n) of them by the plans
of tlog.merkle, so answering a proof never reads records and never rebuilds the tree.

Nodes are written by the chain's writer (app/ledger/chain.py) in the transaction that appends the records,
so the tree and the chain cannot disagree about what was committed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy import Connection

from app.ledger.models import TreeNode
from tlog import merkle

_NODES = TreeNode.__table__
NodeId = tuple[int, int]


def node_hashes(connection: Connection, chain: str, ids: Iterable[NodeId]) -> dict[NodeId, bytes]:
    """The stored hashes of the nodes `ids` of `chain` (one query); a node that is missing is left out."""
    ids = list(dict.fromkeys(ids))
    if not ids:
        return {}
    found: dict[NodeId, bytes] = {}
    # Chunks keep the statement small (a consistency proof of a large tree names a few hundred nodes).
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        rows = connection.execute(
            sa.select(_NODES.c.level, _NODES.c.idx, _NODES.c.hash)
            .where(_NODES.c.chain == chain, sa.tuple_(_NODES.c.level, _NODES.c.idx).in_(chunk))
        )
        found.update({(row.level, row.idx): bytes(row.hash) for row in rows})
    return found


def extend(connection: Connection, chain: str, size: int, leaf_hashes: Sequence[bytes]) -> None:
    """Append `leaf_hashes` to `chain`'s tree of `size` leaves: the new leaves and every subtree they complete."""
    if not leaf_hashes:
        return
    frontier = _complete(connection, chain, merkle.frontier_ids(size))
    nodes = merkle.append_nodes(size, frontier, leaf_hashes)
    connection.execute(_NODES.insert(), [{"chain": chain, "level": level, "idx": index, "hash": digest}
                                         for level, index, digest in nodes])


def root(connection: Connection, chain: str, size: int) -> bytes:
    """The tree's root hash at `size` leaves (the SHA-256 of nothing for an empty tree)."""
    if size == 0:
        return merkle.EMPTY_ROOT
    return _assembled(connection, chain, merkle.root_plan(size))[0]


def inclusion_proof(connection: Connection, chain: str, index: int, size: int) -> list[bytes]:
    """The RFC 9162 inclusion proof of leaf `index` in the tree of `size` leaves."""
    return _assembled(connection, chain, merkle.inclusion_plan(index, size))


def consistency_proof(connection: Connection, chain: str, size1: int, size2: int) -> list[bytes]:
    """The RFC 9162 consistency proof between the tree's sizes `size1` ≤ `size2`."""
    return _assembled(connection, chain, merkle.consistency_plan(size1, size2))


def leaf_hash(connection: Connection, chain: str, index: int) -> bytes | None:
    return node_hashes(connection, chain, [(0, index)]).get((0, index))


class TreeIncomplete(LookupError):
    """Nodes a proof needs are not stored: the tree was cut back or edited (a finding, never a crash)."""


def _assembled(connection: Connection, chain: str, plan: merkle.Plan) -> list[bytes]:
    return plan.assemble(_complete(connection, chain, plan.node_ids))


def _complete(connection: Connection, chain: str, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
    found = node_hashes(connection, chain, ids)
    missing = [node for node in ids if node not in found]
    if missing:
        raise TreeIncomplete(f"tree {chain}: {len(missing)} stored node(s) missing, first {missing[0]}")
    return found
