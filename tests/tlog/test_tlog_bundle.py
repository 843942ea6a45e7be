"""tlog.bundle: a bundle built like the service builds it verifies; every attack is named at its first failure."""

from __future__ import annotations

import base64
import copy
import json
import random

import pytest

from tests.tlog.factory import LOG, ORIGIN, make_log
from tlog import note, records
from tlog.bundle import BundleError, Report, load_bundle, verify_bundle
from tlog.checkpoint import Checkpoint
from tlog.merkle import MemoryTree, hash_leaf

SEQS = range(5, 17)  # 12 records of a log of 40


def other_tree(size: int) -> MemoryTree:
    """A tree of other leaves: what a log that forked its history would sign."""
    return MemoryTree(hash_leaf(b"fork %d" % i) for i in range(size))


@pytest.fixture(scope="module")
def log():
    return make_log(40)


@pytest.fixture
def bundle(log):
    return log.bundle(SEQS, consistency_from=30)


@pytest.fixture
def verifiers(log):
    return [log.signer.verifier()]


def test_bundle_verifies(log, bundle, verifiers):
    report = verify_bundle(bundle, verifiers)
    assert report == Report(True, 12, None, Checkpoint.parse(note.open(bundle["checkpoint"], verifiers).text), LOG)
    root = base64.b64encode(log.tree.root()).decode()
    assert report.summary() == f"ok: 12 records of {LOG} included in checkpoint size 40 (root {root})"


def test_bundle_verifies_with_a_previous_checkpoint(log, bundle, verifiers):
    report = verify_bundle(bundle, verifiers, previous=log.checkpoint(30))
    assert report.ok and report.previous.size == 30
    assert report.summary().endswith("consistent with the previous checkpoint of size 30")
    assert verify_bundle(bundle, verifiers, previous=log.checkpoint(40)).ok  # the same checkpoint
    assert verify_bundle(log.bundle(SEQS), verifiers, previous=log.checkpoint(0)).ok  # nothing to prove


def test_whole_log_and_single_record(log, verifiers):
    assert verify_bundle(log.bundle(range(1, 41)), verifiers).checked == 40
    assert verify_bundle(log.bundle([1], size=1), verifiers).ok
    assert verify_bundle(log.bundle([2, 7, 40]), verifiers).checked == 3  # not consecutive: no chain link
    assert verify_bundle(log.bundle([]), verifiers).summary().startswith("ok: 0 records")


def test_witness_cosignatures_and_rotated_keys(log, verifiers):
    witness = note.Signer.generate("witness.example/w1")
    bundle = log.bundle(SEQS)
    bundle["checkpoint"] = note.sign(note.open(bundle["checkpoint"], verifiers).text, log.signer, witness)
    assert verify_bundle(bundle, verifiers).ok  # the witness's signature is by an unknown key: ignored
    assert verify_bundle(bundle, [witness.verifier()]).ok  # a witness's key alone also vouches for it
    retired = note.Signer.generate(ORIGIN)
    assert verify_bundle(bundle, [retired.verifier(), *verifiers]).ok  # any trusted key will do


# ----------------------------------------------------------------------------------------------- attacks


def _record(bundle, seq):
    return next(r for r in bundle["records"] if r["seq"] == seq)


def edit_payload(b):
    _record(b, 7)["payload"]["result"] = "通过" if _record(b, 7)["payload"]["result"] != "通过" else "未通过"


def edit_payload_and_rehash(b):
    record = _record(b, 7)
    record["payload"]["score"] = 0.99
    record["record_hash"] = records.record_hash(record["prev_hash"], record["payload"])


def edit_salt(b):
    _record(b, 9)["salt"] = "00" * 16


def swap_records(b):
    b["records"][2], b["records"][3] = b["records"][3], b["records"][2]


def remove_proof_hash(b):
    _record(b, 11)["inclusion"].pop()


def flip_proof_bit(b):
    proof = _record(b, 11)["inclusion"]
    raw = bytearray(base64.b64decode(proof[0]))
    raw[0] ^= 4
    proof[0] = base64.b64encode(bytes(raw)).decode()


def drop_a_record_in_the_middle(b):
    # Not an attack on the bundle by itself (a bundle may select records), but then the chain link is not
    # checked across the gap: the next record still verifies by its own proof.
    del b["records"][4]


def wrong_seq(b):
    b["records"][7]["seq"] = 13  # seq 12's record claims to be seq 13


def duplicate_record(b):
    b["records"][8] = copy.deepcopy(b["records"][7])


def break_chain(b):
    record = _record(b, 8)
    record["prev_hash"] = "ab" * 32
    record["record_hash"] = records.record_hash(record["prev_hash"], record["payload"])


@pytest.mark.parametrize(("attack", "expected", "checked"), [
    (edit_payload, "record seq 7: record_hash does not match", 2),
    (edit_payload_and_rehash, "record seq 7: not included in the checkpoint", 2),
    (edit_salt, "record seq 9: not included", 4),
    (swap_records, "record seq 7: out of order (after seq 8)", 3),
    (remove_proof_hash, "record seq 11: not included in the checkpoint of size 40: inclusion proof has 5 hashes", 6),
    (flip_proof_bit, "record seq 11: not included", 6),
    (wrong_seq, "record seq 13: leaf_index 11 is not seq − 1", 7),
    (duplicate_record, "record seq 12: out of order (after seq 12)", 8),
    (break_chain, "record seq 8: prev_hash is not record seq 7's record_hash", 3),
])
def test_attacks_on_records(bundle, verifiers, attack, expected, checked):
    attacked = copy.deepcopy(bundle)
    attack(attacked)
    report = verify_bundle(attacked, verifiers)
    assert not report.ok
    assert report.first_failure.startswith(expected), report.first_failure
    assert report.summary() == f"FAILED: {report.first_failure}"
    assert report.checked == checked  # the records before the first failure verified


def test_selecting_records_is_not_an_attack(bundle, verifiers):
    attacked = copy.deepcopy(bundle)
    drop_a_record_in_the_middle(attacked)
    assert verify_bundle(attacked, verifiers).checked == 11


def test_proof_for_the_wrong_size(log, bundle, verifiers):
    attacked = copy.deepcopy(bundle)
    _record(attacked, 6)["inclusion"] = [base64.b64encode(h).decode() for h in log.tree.inclusion_proof(5, 39)]
    report = verify_bundle(attacked, verifiers)
    assert report.first_failure.startswith("record seq 6: not included in the checkpoint of size 40")
    assert report.checked == 1


def test_checkpoint_for_another_size(log, bundle, verifiers):
    attacked = copy.deepcopy(bundle)
    attacked["checkpoint"] = log.checkpoint(39)
    attacked.pop("consistency")
    assert verify_bundle(attacked, verifiers).first_failure.startswith("record seq 5: not included")


def test_record_beyond_the_checkpoint(log, verifiers):
    bundle = log.bundle([3], size=20)
    bundle["records"].append(log.bundle([30])["records"][0])
    assert verify_bundle(bundle, verifiers).first_failure == "record seq 30: not in the checkpoint's tree of size 20"


def test_first_record_needs_the_genesis_hash(log, verifiers):
    bundle = log.bundle([1, 2])
    first = bundle["records"][0]
    first["prev_hash"] = "11" * 32
    first["record_hash"] = records.record_hash(first["prev_hash"], first["payload"])
    assert verify_bundle(bundle, verifiers).first_failure.startswith("record seq 1: the first record's prev_hash")


def test_checkpoint_signed_by_another_key(log, bundle, verifiers):
    attacked = copy.deepcopy(bundle)
    impostor = note.Signer.generate(ORIGIN)  # same name, another key
    attacked["checkpoint"] = log.checkpoint(signer=impostor)
    report = verify_bundle(attacked, verifiers)
    assert report.first_failure == (
        f"checkpoint: not signed by a trusted key (signed by {ORIGIN}+{impostor.key_id.hex()})")
    assert report.checkpoint is None and report.checked == 0


def test_tampered_checkpoint_text(log, bundle, verifiers):
    attacked = copy.deepcopy(bundle)
    attacked["checkpoint"] = attacked["checkpoint"].replace("\n40\n", "\n41\n", 1)
    report = verify_bundle(attacked, verifiers)
    assert report.first_failure.startswith("checkpoint: invalid signature for key " + ORIGIN)


def test_checkpoint_of_another_log(log, bundle, verifiers):
    attacked = copy.deepcopy(bundle)
    attacked["log"] = "data-access"
    assert verify_bundle(attacked, verifiers).first_failure == (
        f"checkpoint: origin {ORIGIN!r} is not the log 'data-access'")


def test_checkpoint_that_is_no_checkpoint(log, bundle, verifiers):
    attacked = copy.deepcopy(bundle)
    attacked["checkpoint"] = note.sign("hello\n", log.signer)
    assert verify_bundle(attacked, verifiers).first_failure.startswith("checkpoint: checkpoint text has 1 line")


def test_split_view(bundle, verifiers, log):
    # The log's own key signed another root for the same size: the log shows two trees.
    forked = note.sign(Checkpoint(ORIGIN, 40, other_tree(40).root()).to_text(), log.signer)
    report = verify_bundle(bundle, verifiers, previous=forked)
    assert report.first_failure.startswith("previous checkpoint: a different root for the same size 40 (a split view")
    assert report.checked == 0 and report.checkpoint.size == 40


def test_rollback(log, verifiers):
    bundle = log.bundle(SEQS, size=30)
    report = verify_bundle(bundle, verifiers, previous=log.checkpoint(40))
    assert report.first_failure == ("previous checkpoint: size 40 is larger than the bundle's checkpoint size 30 "
                                    "(the log was rolled back)")


def test_previous_checkpoint_problems(log, bundle, verifiers):
    other_origin = note.sign(Checkpoint("zsb.example.gov.cn/audit/data-access", 30, log.tree.root(30)).to_text(),
                             log.signer)
    assert verify_bundle(bundle, verifiers, previous=other_origin).first_failure.startswith(
        "previous checkpoint: origin")
    unknown = log.checkpoint(30, signer=note.Signer.generate(ORIGIN))
    assert verify_bundle(bundle, verifiers, previous=unknown).first_failure.startswith(
        "previous checkpoint: not signed by a trusted key")
    assert verify_bundle(bundle, verifiers, previous="garbage").first_failure.startswith(
        "previous checkpoint: malformed note")


def test_missing_or_invalid_consistency_proof(log, bundle, verifiers):
    previous = log.checkpoint(30)
    missing = copy.deepcopy(bundle)
    del missing["consistency"]
    assert verify_bundle(missing, verifiers, previous=previous).first_failure == (
        "consistency: the bundle has no consistency proof from the previous checkpoint's size 30")
    assert verify_bundle(bundle, verifiers, previous=log.checkpoint(25)).first_failure == (
        "consistency: the proof is from size 30, not the previous checkpoint's 25")
    invalid = copy.deepcopy(bundle)
    invalid["consistency"]["hashes"][0] = base64.b64encode(bytes(32)).decode()
    report = verify_bundle(invalid, verifiers, previous=previous)
    assert report.first_failure.startswith("consistency: from size 30 to 40: consistency proof does not lead")
    truncated = copy.deepcopy(bundle)
    truncated["consistency"]["hashes"].pop()
    assert "needs" in verify_bundle(truncated, verifiers, previous=previous).first_failure
    wrong_to = copy.deepcopy(bundle)
    wrong_to["consistency"]["to"] = 39
    assert verify_bundle(wrong_to, verifiers, previous=previous).first_failure == (
        "consistency: the proof is to size 39, not the checkpoint's 40")
    # A previous checkpoint whose tree is not a prefix of this one: the proof cannot verify.
    forged = note.sign(Checkpoint(ORIGIN, 30, other_tree(30).root()).to_text(), log.signer)
    assert verify_bundle(bundle, verifiers, previous=forged).first_failure.startswith("consistency: from size 30")


# ----------------------------------------------------------------------------------------- malformed input


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda b: b.clear(), "bundle: format None is not 'zsb-evidence-bundle/v1'"),
    (lambda b: b.update(format="zsb-evidence-bundle/v2"), "bundle: format 'zsb-evidence-bundle/v2' is not"),
    (lambda b: b.pop("log"), "bundle: missing 'log'"),
    (lambda b: b.update(log=7), "bundle: 'log' must be a string, not int"),
    (lambda b: b.update(log=""), "bundle: 'log' is empty"),
    (lambda b: b.pop("records"), "bundle: missing 'records'"),
    (lambda b: b.update(records={}), "bundle: 'records' must be a list, not dict"),
    (lambda b: b.pop("checkpoint"), "bundle: missing 'checkpoint'"),
    (lambda b: b.update(checkpoint=None), "checkpoint: must be the signed note's text, not NoneType"),
    (lambda b: b.update(checkpoint=""), "checkpoint: malformed note"),
    (lambda b: b["records"].append(3), "record #13: must be an object"),
    (lambda b: b["records"][0].pop("seq"), "record #1: missing 'seq'"),
    (lambda b: b["records"][0].update(seq="5"), "record #1: 'seq' must be an integer, not str"),
    (lambda b: b["records"][0].update(seq=True), "record #1: 'seq' must be an integer, not bool"),
    (lambda b: b["records"][0].update(seq=0), "record #1: 'seq' must be at least 1, not 0"),
    (lambda b: b["records"][0].update(seq=5.0), "record #1: 'seq' must be an integer, not float"),
    (lambda b: b["records"][0].update(leaf_index=5), "record seq 5: leaf_index 5 is not seq − 1"),
    (lambda b: b["records"][0].pop("leaf_index"), "record seq 5: missing 'leaf_index'"),
    (lambda b: b["records"][0].update(salt="xyz"), "record seq 5: 'salt' is not lower-case hex"),
    (lambda b: b["records"][0].update(salt=""), "record seq 5: 'salt' is empty"),
    (lambda b: b["records"][0].update(salt=b["records"][0]["salt"].upper()), "record seq 5: 'salt' is not lower"),
    (lambda b: b["records"][0].update(payload=[1]), "record seq 5: 'payload' must be an object, not list"),
    (lambda b: b["records"][0].update(prev_hash="ab"), "record seq 5: 'prev_hash' is 1 bytes, not 32"),
    (lambda b: b["records"][0].pop("record_hash"), "record seq 5: missing 'record_hash'"),
    (lambda b: b["records"][0].pop("inclusion"), "record seq 5: missing 'inclusion'"),
    (lambda b: b["records"][0].update(inclusion="AAAA"), "record seq 5: 'inclusion' must be a list, not str"),
    (lambda b: b["records"][0]["inclusion"].__setitem__(0, "%%%"), "record seq 5: 'inclusion'[0] is not base64"),
    (lambda b: b["records"][0]["inclusion"].__setitem__(0, 5), "record seq 5: 'inclusion'[0] must be a base64"),
    (lambda b: b["records"][0]["inclusion"].__setitem__(0, "AAAA"), "record seq 5: 'inclusion'[0] is 3 bytes"),
    (lambda b: b["records"][0]["inclusion"].__setitem__(0, "AAB="), "record seq 5: 'inclusion'[0] is not canon"),
    (lambda b: b["records"][0]["payload"].update(bad={1}), "record seq 5: the payload cannot be hashed"),
    (lambda b: b.update(consistency=[]), "consistency: must be an object"),
    (lambda b: b["consistency"].pop("hashes"), "consistency: missing 'hashes'"),
    (lambda b: b["consistency"].update(to="40"), "consistency: 'to' must be an integer, not str"),
    (lambda b: b["consistency"].update({"from": 41}), "consistency: 'from' 41 is larger than 'to' 40"),
])
def test_malformed_bundles_fail_with_a_reason(bundle, verifiers, mutate, expected):
    attacked = copy.deepcopy(bundle)
    mutate(attacked)
    report = verify_bundle(attacked, verifiers)
    assert not report.ok
    assert report.first_failure.startswith(expected), report.first_failure


@pytest.mark.parametrize("value", [None, [], "bundle", 3, 2.5])
def test_a_bundle_that_is_not_an_object(value, verifiers):
    assert verify_bundle(value, verifiers).first_failure == "bundle: must be a JSON object"


def _mutations(rng: random.Random, value):
    """Yield paths into `value` (lists of keys) for every node."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield [key]
            for path in _mutations(rng, child):
                yield [key, *path]
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield [index]
            for path in _mutations(rng, child):
                yield [index, *path]


def test_random_damage_never_raises(bundle, verifiers, log):
    rng = random.Random(1)
    paths = list(_mutations(rng, bundle))
    replacements = [None, True, 0, -1, 2**70, 1.5, "", "x", "AAAA", "00" * 32, [], {}, ["AAAA"], {"a": 1}]
    previous = log.checkpoint(30)
    for _ in range(1500):
        damaged = copy.deepcopy(bundle)
        path = rng.choice(paths)
        parent = damaged
        for key in path[:-1]:
            parent = parent[key]
        if rng.random() < 0.2 and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = copy.deepcopy(rng.choice(replacements))
        report = verify_bundle(damaged, verifiers, previous=previous if rng.random() < 0.5 else None)
        assert isinstance(report, Report)
        assert report.ok or report.first_failure


def test_load_bundle_is_strict(bundle):
    assert load_bundle(json.dumps(bundle)) == bundle
    assert load_bundle(json.dumps(bundle).encode()) == bundle
    for text in ('{"a": 1, "a": 2}', '{"records": [{"seq": 1, "seq": 2}]}', '{"x": NaN}', '{"x": Infinity}',
                 "{", "", b"\xff", "[" * 100_000):
        with pytest.raises(BundleError):
            load_bundle(text)
