"""tlog.merkle against published vectors (RFC 6962 hashing, transparency-dev/merkle) and against itself."""

from __future__ import annotations

import base64
import hashlib
import json
import random
from pathlib import Path

import pytest

from tlog import merkle
from tlog.merkle import MemoryTree, ProofError

TESTDATA = Path(__file__).parent / "testdata"


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# --------------------------------------------------------------------------- RFC 6962 hashing (rfc6962_test.go)


def test_rfc6962_hashes():
    assert merkle.EMPTY_ROOT == h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert merkle.root([]) == merkle.EMPTY_ROOT
    # The hash of an empty leaf is not the empty tree's root.
    assert merkle.hash_leaf(b"") == h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    assert merkle.hash_leaf(b"L123456") == h("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56")
    assert merkle.hash_children(b"N123", b"N456") == h(
        "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb")


def test_hashing_is_second_preimage_resistant():
    one, two = merkle.hash_leaf(b"Hello"), merkle.hash_leaf(b"World")
    assert one != two
    node = merkle.hash_children(one, two)
    assert node != merkle.hash_leaf(one + two)
    assert node != merkle.hash_children(two, one)


# ---------------------------------------------------------------- the reference tree (testonly/constants.go)

LEAF_INPUTS = [h(x) for x in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                              "606162636465666768696a6b6c6d6e6f")]
ROOTS = [merkle.EMPTY_ROOT] + [h(x) for x in (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]
NODE_HASHES = {
    (0, 0): "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    (0, 1): "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    (0, 2): "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
    (0, 3): "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
    (0, 4): "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    (0, 5): "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
    (0, 6): "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
    (0, 7): "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    (1, 0): "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    (1, 1): "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    (1, 2): "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    (1, 3): "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    (2, 0): "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    (2, 1): "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    (3, 0): "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}


def reference_tree() -> MemoryTree:
    return MemoryTree(merkle.hash_leaf(data) for data in LEAF_INPUTS)


def test_reference_roots_for_sizes_0_to_8():
    leaves = [merkle.hash_leaf(data) for data in LEAF_INPUTS]
    tree = reference_tree()
    for size, expected in enumerate(ROOTS):
        assert merkle.root(leaves[:size]) == expected, size
        assert tree.root(size) == expected, size


def test_reference_tree_stores_exactly_its_complete_subtrees():
    assert {node: digest.hex() for node, digest in reference_tree().nodes.items()} == NODE_HASHES


# The proofs of proof/verify_test.go (leaf numbers there are 1-based): MemoryTree must produce exactly these.
INCLUSION_PROOFS = [
    (0, 1, []),
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
CONSISTENCY_PROOFS = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_PROOFS)
def test_go_inclusion_proofs(index, size, proof):
    tree = reference_tree()
    assert [p.hex() for p in tree.inclusion_proof(index, size)] == proof
    merkle.verify_inclusion(index, size, tree.leaf_hash(index), [h(p) for p in proof], ROOTS[size])


@pytest.mark.parametrize(("size1", "size2", "proof"), CONSISTENCY_PROOFS)
def test_go_consistency_proofs(size1, size2, proof):
    assert [p.hex() for p in reference_tree().consistency_proof(size1, size2)] == proof
    merkle.verify_consistency(size1, size2, [h(p) for p in proof], ROOTS[size1], ROOTS[size2])


# --------------------------------------------------------------- transparency-dev/merkle's testdata vectors


def _b64(value):
    return base64.b64decode(value)


def _vectors(kind: str) -> list:
    files = sorted((TESTDATA / kind).glob("*/*.json"))
    return [pytest.param(json.loads(path.read_text()), id=f"{path.parent.name}/{path.stem}") for path in files]


INCLUSION_VECTORS = _vectors("inclusion")
CONSISTENCY_VECTORS = _vectors("consistency")


def test_vector_counts():
    happy = [v for v in INCLUSION_VECTORS + CONSISTENCY_VECTORS if not v.values[0]["wantErr"]]
    malformed = [v for v in INCLUSION_VECTORS + CONSISTENCY_VECTORS if v.values[0]["wantErr"]]
    assert len(happy) == 10 and len(malformed) >= 30
    assert {v.id for v in happy} == {f"{n}/happy-path" for n in range(5)}
    assert all(v.id.endswith("/happy-path") for v in happy)  # every other file is a corruption


def _verify_inclusion_vector(vector):
    merkle.verify_inclusion(vector["leafIdx"], vector["treeSize"], _b64(vector["leafHash"]),
                            [_b64(p) for p in vector["proof"] or []], _b64(vector["root"]))


def _verify_consistency_vector(vector):
    merkle.verify_consistency(vector["size1"], vector["size2"], [_b64(p) for p in vector["proof"] or []],
                              _b64(vector["root1"]), _b64(vector["root2"]))


@pytest.mark.parametrize("vector", INCLUSION_VECTORS)
def test_inclusion_vectors(vector):
    if vector["wantErr"]:
        with pytest.raises(ProofError):
            _verify_inclusion_vector(vector)
    else:
        _verify_inclusion_vector(vector)
        assert merkle.root_from_inclusion(vector["leafIdx"], vector["treeSize"], _b64(vector["leafHash"]),
                                          [_b64(p) for p in vector["proof"] or []]) == _b64(vector["root"])


@pytest.mark.parametrize("vector", CONSISTENCY_VECTORS)
def test_consistency_vectors(vector):
    if vector["wantErr"]:
        with pytest.raises(ProofError):
            _verify_consistency_vector(vector)
    else:
        _verify_consistency_vector(vector)


# --------------------------------------------------------------------- edge cases of the verifiers (Go table)

SOME = h("abacaba000000000000000000000000000000000000000000060061e00123456")


@pytest.mark.parametrize(("size1", "size2", "root1", "root2", "proof", "ok"), [
    (0, 0, SOME, SOME, [], True),
    (0, 1, SOME, merkle.EMPTY_ROOT, [], True),  # every tree extends the empty one
    (1, 1, SOME, SOME, [], True),
    (0, 0, SOME, merkle.EMPTY_ROOT, [], False),  # same size, different roots
    (1, 1, SOME, merkle.EMPTY_ROOT, [], False),
    (1, 0, SOME, SOME, [], False),  # time travel
    (2, 1, SOME, SOME, [], False),
    (1, 2, SOME, merkle.EMPTY_ROOT, [], False),  # a proof is needed
    (0, 0, SOME, SOME, [SOME], False),  # roots match but the proof is not empty
    (0, 1, SOME, SOME, [SOME], False),
    (1, 1, SOME, SOME, [SOME], False),
])
def test_consistency_edge_cases(size1, size2, root1, root2, proof, ok):
    if ok:
        merkle.verify_consistency(size1, size2, proof, root1, root2)
    else:
        with pytest.raises(ProofError):
            merkle.verify_consistency(size1, size2, proof, root1, root2)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 0), (2, 1), (-1, 4)])
def test_inclusion_outside_the_tree(index, size):
    with pytest.raises(ProofError):
        merkle.verify_inclusion(index, size, SOME, [], merkle.EMPTY_ROOT)


def test_single_leaf_tree():
    leaf = merkle.hash_leaf(b"data")
    merkle.verify_inclusion(0, 1, leaf, [], leaf)
    for root, leaf_hash in [(leaf, b""), (b"", leaf), (b"", b"")]:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(0, 1, leaf_hash, [], root)


def test_malformed_inputs_are_clear_errors():
    with pytest.raises(TypeError):
        merkle.verify_inclusion("0", 1, SOME, [], SOME)
    with pytest.raises(TypeError):
        merkle.verify_inclusion(True, 1, SOME, [], SOME)
    with pytest.raises(TypeError):
        merkle.verify_consistency(1, 2, ["not bytes"], SOME, SOME)
    with pytest.raises(ProofError, match="proof hash 1 is 31 bytes"):
        merkle.verify_inclusion(0, 4, SOME, [SOME, SOME[:31]], SOME)
    with pytest.raises(ProofError, match="needs 2"):
        merkle.verify_inclusion(0, 4, SOME, [SOME] * 3, SOME)


# ---------------------------------------------------------------------------------- properties of the tree


def leaves(count: int, seed: int = 0) -> list[bytes]:
    return [merkle.hash_leaf(hashlib.sha256(b"%d %d" % (seed, i)).digest()) for i in range(count)]


def test_every_inclusion_proof_verifies_for_sizes_1_to_70():
    all_leaves = leaves(70)
    tree = MemoryTree(all_leaves)
    for size in range(1, 71):
        expected_root = merkle.root(all_leaves[:size])
        assert tree.root(size) == expected_root
        for index in range(size):
            proof = tree.inclusion_proof(index, size)
            merkle.verify_inclusion(index, size, all_leaves[index], proof, expected_root)
            assert merkle.root_from_inclusion(index, size, all_leaves[index], proof) == expected_root


def test_every_consistency_proof_verifies_up_to_40():
    all_leaves = leaves(40)
    tree = MemoryTree(all_leaves)
    roots = [merkle.root(all_leaves[:size]) for size in range(41)]
    for size2 in range(41):
        for size1 in range(size2 + 1):
            merkle.verify_consistency(size1, size2, tree.consistency_proof(size1, size2), roots[size1], roots[size2])


def test_corrupted_proofs_fail():
    rng = random.Random(9162)
    all_leaves = leaves(33)
    tree = MemoryTree(all_leaves)
    for _ in range(300):
        size = rng.randint(2, 33)
        index = rng.randrange(size)
        proof = tree.inclusion_proof(index, size)
        position = rng.randrange(len(proof))
        bad = list(proof)
        bad[position] = bytes([bad[position][0] ^ 1 << rng.randrange(8)]) + bad[position][1:]
        with pytest.raises(ProofError):
            merkle.verify_inclusion(index, size, all_leaves[index], bad, tree.root(size))
        with pytest.raises(ProofError):
            merkle.verify_inclusion(index, size, all_leaves[index], proof, tree.root(size - 1))
        size1 = rng.randint(1, size - 1)
        proof = tree.consistency_proof(size1, size)
        if proof:
            bad = list(proof)
            bad[rng.randrange(len(bad))] = SOME
            with pytest.raises(ProofError):
                merkle.verify_consistency(size1, size, bad, tree.root(size1), tree.root(size))
        with pytest.raises(ProofError):
            merkle.verify_consistency(size1, size, proof, tree.root(size1), tree.root(size - 1))


def test_frontier_ids():
    assert merkle.frontier_ids(0) == []
    assert merkle.frontier_ids(1) == [(0, 0)]
    assert merkle.frontier_ids(6) == [(2, 0), (1, 2)]
    assert merkle.frontier_ids(7) == [(2, 0), (1, 2), (0, 6)]
    assert merkle.frontier_ids(8) == [(3, 0)]
    for size in range(200):
        ids = merkle.frontier_ids(size)
        assert len(ids) == size.bit_count()
        assert sum(1 << level for level, _ in ids) == size


def test_root_from_frontier_matches_the_reference_root():
    all_leaves = leaves(70)
    tree = MemoryTree(all_leaves)
    for size in range(71):
        frontier = {node: tree.nodes[node] for node in merkle.frontier_ids(size)}
        assert merkle.root_from_frontier(size, frontier) == merkle.root(all_leaves[:size])


def test_append_nodes_in_random_batches_equals_one_by_one():
    rng = random.Random(6962)
    all_leaves = leaves(300)
    one_by_one = MemoryTree()
    for leaf in all_leaves:
        one_by_one.append(leaf)
    store: dict = {}
    size = 0
    while size < len(all_leaves):
        batch = all_leaves[size:size + rng.randint(1, 37)]
        frontier = {node: store[node] for node in merkle.frontier_ids(size)}  # only the frontier is given
        created = merkle.append_nodes(size, frontier, batch)
        for level, index, digest in created:
            if level:  # safe order: both children exist before their parent is inserted
                assert (level - 1, 2 * index) in store and (level - 1, 2 * index + 1) in store
            assert (level, index) not in store
            store[(level, index)] = digest
        size += len(batch)
        assert merkle.root_from_frontier(size, store) == merkle.root(all_leaves[:size])
    assert store == dict(one_by_one.nodes)
    assert merkle.append_nodes(size, store, []) == []


def test_append_nodes_needs_the_frontier():
    tree = MemoryTree(leaves(6))
    partial = dict(tree.nodes)
    del partial[(1, 2)]
    with pytest.raises(merkle.MissingNodeError):
        merkle.append_nodes(6, partial, leaves(1, seed=1))
    with pytest.raises(ValueError):
        merkle.append_nodes(6, tree.nodes, [b"short"])


def _exists(node, size):
    level, index = node
    return level >= 0 and index >= 0 and (index + 1) << level <= size


def test_plans_name_only_nodes_that_exist_up_to_2_20():
    rng = random.Random(20)
    sizes = [1, 2, 3, 2**20, 2**20 - 1, 2**19 + 1, 2**20 - 2**10 + 7] + [rng.randint(1, 2**20) for _ in range(60)]
    for size in sizes:
        plan = merkle.root_plan(size)
        assert all(_exists(node, size) for node in plan.node_ids)
        for index in {0, size - 1, size // 2, rng.randrange(size), rng.randrange(size)}:
            plan = merkle.inclusion_plan(index, size)
            assert all(_exists(node, size) for node in plan.node_ids), (index, size)
            assert len(plan) == merkle._inclusion_length(index, size)
            assert len(plan.node_ids) <= 2 * size.bit_length()  # one ragged element at most
        for size1 in {1, size // 2, size - 1, rng.randint(1, size)}:
            if not 0 < size1 <= size:
                continue
            plan = merkle.consistency_plan(size1, size)
            assert all(_exists(node, size) for node in plan.node_ids), (size1, size)
            assert len(plan.node_ids) <= 3 * size.bit_length()


def test_plans_assemble_from_a_store_of_a_larger_tree():
    # A log answers for an older size from the rows it has now: nodes of the larger tree are never used.
    all_leaves = leaves(50)
    tree = MemoryTree(all_leaves)
    for size in (1, 13, 32, 33, 49):
        plan = merkle.inclusion_plan(5 % size, size)
        proof = plan.assemble(tree.nodes)
        merkle.verify_inclusion(5 % size, size, all_leaves[5 % size], proof, merkle.root(all_leaves[:size]))


def test_plan_errors():
    for call in (lambda: merkle.inclusion_plan(5, 5), lambda: merkle.inclusion_plan(-1, 5),
                 lambda: merkle.consistency_plan(5, 4), lambda: merkle.consistency_plan(-1, 4),
                 lambda: merkle.frontier_ids(-1), lambda: merkle.root_plan(-3)):
        with pytest.raises(ValueError):
            call()
    with pytest.raises(TypeError):
        merkle.inclusion_plan(1.0, 5)
    assert merkle.consistency_plan(0, 9).node_ids == [] and merkle.consistency_plan(0, 9).assemble({}) == []
    assert merkle.consistency_plan(9, 9).assemble({}) == []
    assert merkle.root_plan(0).assemble({}) == [merkle.EMPTY_ROOT]
    with pytest.raises(merkle.MissingNodeError, match="level 0, index 4"):
        merkle.inclusion_plan(5, 6).assemble({})


def test_memory_tree_api():
    tree = MemoryTree()
    assert tree.size == 0 and tree.root() == merkle.EMPTY_ROOT
    all_leaves = leaves(5)
    assert [tree.append(leaf) for leaf in all_leaves] == [0, 1, 2, 3, 4]
    assert tree.size == len(tree) == 5
    assert tree.leaf_hash(4) == all_leaves[4]
    assert tree.inclusion_proof(1) == tree.inclusion_proof(1, 5)
    assert tree.consistency_proof(3) == tree.consistency_proof(3, 5)
    with pytest.raises(ValueError):
        tree.root(6)
    with pytest.raises(IndexError):
        tree.leaf_hash(5)
    with pytest.raises(TypeError):
        tree.nodes[(0, 0)] = b""  # the store is read-only from outside
