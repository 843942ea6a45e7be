"""The transparency log over the audit chains, tried as an auditor and as a hostile operator would.

An auditor fetches signed checkpoints and the log's public key, checks inclusion and consistency proofs with
the RFC 9162 algorithms (tlog, the same code the offline verifier runs), and downloads evidence bundles that
`zsb-verify` checks with no database. An operator who edits the database — a record, the tree, the tail with
the head, a whole chain, an older backup — is caught by POST /api/v1/audit/verify and /readyz, naming the
first failing record or the checkpoint the log no longer holds.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import pytest
import sqlalchemy as sa
from face_flow import LI_NA as OTHER
from face_flow import WANG_QIANG
from face_flow import ZHANG_WEI as PERSON

from app.extensions import db
from tests.helpers import REPOSITORY, assert_error
from tlog import bundle as evidence
from tlog import merkle, note
from tlog.checkpoint import Checkpoint

LOG = "/api/v1/audit/auditor-access"
FACE_LOG = "/api/v1/audit/face-verifications"


def b64(value: str) -> bytes:
    return base64.b64decode(value)


@pytest.fixture
def auditor(staff_headers):
    return staff_headers("auditor")


def public_verifiers(client) -> list[note.Verifier]:
    keys = client.get("/api/v1/audit/public-keys")
    assert keys.status_code == 200
    return [note.Verifier.from_key(key) for key in keys.json["keys"]]


def checkpoint_of(client, auditor, log: str = "auditor-access", *, cut: bool = False) -> Checkpoint:
    """The log's checkpoint (a fresh one with `cut`), its signature verified with the published key."""
    path = f"/api/v1/audit/{log}/checkpoint"
    answer = client.post(path, headers=auditor) if cut else client.get(path, headers=auditor)
    assert answer.status_code == (201 if cut else 200), answer.get_data(as_text=True)
    assert answer.headers["Content-Type"].startswith("text/plain")
    opened = note.open(answer.get_data(as_text=True), public_verifiers(client))
    return Checkpoint.parse(opened.text)


def grow(client, auditor, records: int) -> None:
    """Append `records` auditor-access records (each logged query is one)."""
    for _ in range(records):
        assert client.get("/api/v1/audit/data-access", headers=auditor).status_code == 200


def verify(client, auditor, log: str = "all") -> dict:
    answer = client.post("/api/v1/audit/verify", headers=auditor, json={"log": log})
    assert answer.status_code == 200, answer.json
    return answer.json


def sql(app, statement: str, **params) -> None:
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(sa.text(statement), params)


# ------------------------------------------------------------------------------------- what auditors get


def test_a_checkpoint_is_a_signed_note_of_the_tree_in_the_c2sp_format(client, auditor):
    grow(client, auditor, 4)
    checkpoint = checkpoint_of(client, auditor, cut=True)
    assert checkpoint.origin == "sandbox.zsb.invalid/audit/auditor-access"
    assert checkpoint.size >= 5  # four queries, and the cut itself is logged before it is cut
    keys = client.get("/api/v1/audit/public-keys").json["keys"]
    assert keys[0].startswith("sandbox.zsb.invalid/audit+")
    # The latest checkpoint is what GET answers; a POST cuts a newer one when the log grew.
    assert checkpoint_of(client, auditor) == checkpoint
    assert checkpoint_of(client, auditor, cut=True).size > checkpoint.size


def test_every_record_has_an_inclusion_proof_that_recomputes_the_signed_root(client, auditor):
    grow(client, auditor, 6)
    checkpoint = checkpoint_of(client, auditor, cut=True)
    for seq in range(1, checkpoint.size + 1):
        proof = client.get(f"{LOG}/proof/inclusion", headers=auditor,
                           query_string={"seq": seq, "size": checkpoint.size})
        assert proof.status_code == 200, proof.json
        body = proof.json
        assert (body["leaf_index"], body["tree_size"]) == (seq - 1, checkpoint.size)
        merkle.verify_inclusion(seq - 1, checkpoint.size, b64(body["leaf_hash"]), [b64(h) for h in body["hashes"]],
                                checkpoint.root_hash)


def test_consistency_proofs_show_the_log_only_grew(client, auditor):
    kept = [checkpoint_of(client, auditor, cut=True)]
    for records in (1, 3, 8):
        grow(client, auditor, records)
        kept.append(checkpoint_of(client, auditor, cut=True))
    for older in kept:
        for newer in kept:
            if older.size > newer.size:
                continue
            proof = client.get(f"{LOG}/proof/consistency", headers=auditor,
                               query_string={"from": older.size, "to": newer.size})
            assert proof.status_code == 200, proof.json
            merkle.verify_consistency(older.size, newer.size, [b64(h) for h in proof.json["hashes"]],
                                      older.root_hash, newer.root_hash)


def test_bad_proof_requests_are_clear_4xx(client, auditor):
    grow(client, auditor, 2)
    size = checkpoint_of(client, auditor, cut=True).size
    cases = [
        (f"{LOG}/proof/inclusion", {"seq": size + 1, "size": size}, 422),
        (f"{LOG}/proof/inclusion", {"seq": 1, "size": size + 100}, 422),
        (f"{LOG}/proof/inclusion", {"seq": 0}, 422),
        (f"{LOG}/proof/inclusion", {"seq": "x"}, 422),
        (f"{LOG}/proof/consistency", {"from": size, "to": 1}, 422),
        (f"{LOG}/proof/consistency", {"from": 1, "to": size + 100}, 422),
        ("/api/v1/audit/no-such-log/proof/consistency", {"from": 1, "to": 1}, 404),
    ]
    for path, query, status in cases:
        answer = client.get(path, headers=auditor, query_string=query)
        assert answer.status_code == status, (path, query, answer.json)


def test_a_citizen_gets_the_proofs_of_records_about_themselves_only(client, auditor, citizen_as):
    zhang = citizen_as(*PERSON)  # the face pass that proved 张伟 is in the face-verification log
    li = citizen_as(*OTHER)
    size = checkpoint_of(client, auditor, "face-verifications", cut=True).size
    records = client.post(f"{FACE_LOG}/search", headers=auditor, json={"id_number": PERSON[1]}).json["items"]
    assert records
    mine = records[0]["seq"]
    proof = client.get(f"{FACE_LOG}/proof/inclusion", headers=zhang, query_string={"seq": mine, "size": size})
    assert proof.status_code == 200, proof.json
    assert_error(client.get(f"{FACE_LOG}/proof/inclusion", headers=li, query_string={"seq": mine}), 404, "not_found")
    assert_error(client.get(f"{LOG}/proof/inclusion", headers=zhang, query_string={"seq": 1}), 404, "not_found")
    # Checkpoints, consistency proofs and the logs themselves stay the auditors'.
    for path in (f"{FACE_LOG}/checkpoint", f"{FACE_LOG}/proof/consistency?from=1&to=1", FACE_LOG):
        assert_error(client.get(path, headers=zhang), 403, "forbidden")


def test_an_evidence_bundle_verifies_offline_with_the_public_key(client, auditor, citizen_as, tmp_path):
    citizen_as(*PERSON)
    kept = checkpoint_of(client, auditor, "face-verifications", cut=True)
    citizen_as(*OTHER)
    kept_note = client.get(f"{FACE_LOG}/checkpoint", headers=auditor).get_data(as_text=True)
    citizen_as(*WANG_QIANG)
    answer = client.get(f"{FACE_LOG}/export", headers=auditor,
                        query_string={"format": "bundle", "consistency_from": kept.size})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.headers["Content-Type"].startswith("application/json")
    bundle = json.loads(answer.get_data(as_text=True))
    assert bundle["format"] == "zsb-evidence-bundle/v1" and bundle["records"]
    report = evidence.verify_bundle(bundle, public_verifiers(client), previous=kept_note)
    assert report.ok, report.first_failure
    assert report.checked == len(bundle["records"])
    # No name, ID number or image in it: the records are pseudonymous, as in the log.
    text = answer.get_data(as_text=True)
    assert PERSON[0] not in text and PERSON[1] not in text

    # The installed command does the same with nothing but the file and the key.
    path = tmp_path / "bundle.json"
    path.write_text(text, encoding="utf-8")
    key = client.get("/api/v1/audit/public-keys").json["keys"][0]
    done = subprocess.run([sys.executable, "-m", "tlog", str(path), "--key", key], capture_output=True, text=True,
                          cwd=REPOSITORY, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    # …and names the first record an operator edited in the file.
    bundle["records"][1]["payload"]["decision"] = "pass" if bundle["records"][1]["payload"].get("decision") != "pass" \
        else "fail"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "tlog", str(path), "--key", key], capture_output=True, text=True,
                          cwd=REPOSITORY, timeout=60)
    assert done.returncode == 1
    assert str(bundle["records"][1]["seq"]) in done.stdout + done.stderr


def test_a_bundle_cannot_be_asked_for_a_size_beyond_the_log(client, auditor):
    answer = client.get(f"{FACE_LOG}/export", headers=auditor,
                        query_string={"format": "bundle", "consistency_from": 10_000})
    assert_error(answer, 422, "validation_failed")
    answer = client.get(f"{FACE_LOG}/export", headers=auditor, query_string={"format": "csv", "consistency_from": 1})
    assert_error(answer, 422, "validation_failed")


# ------------------------------------------------------------------------------- the hostile operator


def witnessed(client, auditor, records: int = 5) -> Checkpoint:
    """Grow the auditor-access log, cut a checkpoint (the witness file gets it) and check all is well."""
    grow(client, auditor, records)
    checkpoint = checkpoint_of(client, auditor, cut=True)
    report = verify(client, auditor)
    assert report["ok"] is True, report
    assert client.get("/readyz").status_code == 200
    return checkpoint


def assert_caught_by_the_witness(client, auditor, size: int, words: str) -> None:
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json["errors"]["checks"]["audit_witness"] == "failed"
    report = client.post("/api/v1/audit/verify", headers=auditor, json={"log": "all"}).json
    assert report["ok"] is False
    finding = next(item for item in report["witness"] if item["log"] == "auditor-access")
    assert finding["checkpoint_size"] == size and words in finding["reason"]


def test_deleting_the_tail_and_rolling_the_head_and_tree_back_is_caught(app, client, auditor):
    checkpoint = witnessed(client, auditor)
    keep = checkpoint.size - 3
    # Everything an operator can reach in the database, made consistent again at `keep` records.
    sql(app, "DELETE FROM auditor_access_records WHERE seq > :k", k=keep)
    sql(app, "DELETE FROM audit_tree_nodes WHERE chain = 'auditor-access'")
    sql(app, "DELETE FROM audit_checkpoints WHERE chain = 'auditor-access'")
    with app.app_context(), db.engine.begin() as connection:
        last = connection.execute(sa.text(
            "SELECT record_hash FROM auditor_access_records WHERE seq = :k"), {"k": keep}).scalar()
        connection.execute(sa.text("UPDATE audit_chain_heads SET seq = :k, head_hash = :h, tree_size = 0 "
                                   "WHERE chain = 'auditor-access'"), {"k": keep, "h": last})
    assert_caught_by_the_witness(client, auditor, checkpoint.size, "rolled back")


def test_deleting_a_whole_chain_with_its_head_is_caught(app, client, auditor):
    checkpoint = witnessed(client, auditor)
    for table in ("auditor_access_records",):
        sql(app, f"DELETE FROM {table}")
    sql(app, "DELETE FROM audit_tree_nodes WHERE chain = 'auditor-access'")
    sql(app, "DELETE FROM audit_checkpoints WHERE chain = 'auditor-access'")
    sql(app, "DELETE FROM audit_chain_heads WHERE chain = 'auditor-access'")
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json["errors"]["checks"]["audit_witness"] == "failed"
    # Auditor reads cannot be logged into a headless chain (503), but verify still answers, naming both.
    report = client.post("/api/v1/audit/verify", headers=auditor, json={"log": "auditor-access"}).json
    assert report["ok"] is False
    assert report["witness"][0]["checkpoint_size"] == checkpoint.size


def test_restoring_an_older_backup_is_caught(app, client, auditor):
    grow(client, auditor, 3)
    tables = ("auditor_access_records", "audit_tree_nodes", "audit_checkpoints", "audit_chain_heads")
    with app.app_context(), db.engine.connect() as connection:
        backup = {name: [dict(row) for row in connection.execute(db.metadata.tables[name].select()).mappings()]
                  for name in tables}
    checkpoint = witnessed(client, auditor, 4)
    with app.app_context(), db.engine.begin() as connection:
        for name in tables:
            connection.execute(sa.text(f"DELETE FROM {name}"))
        for name in tables:
            if backup[name]:
                connection.execute(db.metadata.tables[name].insert(), backup[name])
    assert_caught_by_the_witness(client, auditor, checkpoint.size, "rolled back")


def test_rewriting_history_consistently_is_caught_at_the_witnessed_size(app, client, auditor):
    """An operator who re-hashes everything after editing a record has a log consistent with itself; its root
    at the witnessed size is no longer the one the witness holds."""
    checkpoint = witnessed(client, auditor)
    with app.app_context(), db.engine.begin() as connection:  # every node rebuilt over an edited first record
        nodes = connection.execute(sa.text("SELECT level, idx FROM audit_tree_nodes WHERE chain = 'auditor-access'"))
        for level, index in nodes.all():
            connection.execute(sa.text("UPDATE audit_tree_nodes SET hash = :h WHERE chain = 'auditor-access' "
                                       "AND level = :l AND idx = :i"), {"h": bytes([level + 1]) * 32, "l": level,
                                                                        "i": index})
    assert_caught_by_the_witness(client, auditor, checkpoint.size, "rewritten")


def test_a_second_checkpoint_of_a_size_an_auditor_holds_is_a_split_view(app, client, auditor, citizen_as):
    """An operator who rewrites a log and re-signs (they hold the key) serves another checkpoint of a size an
    auditor already holds, or one that does not extend it: the auditor's kept checkpoint shows it offline."""
    citizen_as(*PERSON)
    kept = client.post(f"{FACE_LOG}/checkpoint", headers=auditor).get_data(as_text=True)
    size = Checkpoint.parse(note.open(kept, public_verifiers(client)).text).size
    with app.app_context(), db.engine.begin() as connection:  # the rewrite: other leaves, every node anew
        connection.execute(sa.text("DELETE FROM audit_checkpoints WHERE chain = 'face-verifications'"))
        nodes = connection.execute(sa.text("SELECT level, idx FROM audit_tree_nodes "
                                           "WHERE chain = 'face-verifications'")).all()
        for level, index in nodes:
            connection.execute(sa.text("UPDATE audit_tree_nodes SET hash = :h WHERE chain = 'face-verifications' "
                                       "AND level = :l AND idx = :i"), {"h": bytes([7, level]) * 16, "l": level,
                                                                        "i": index})
    served = client.get(f"{FACE_LOG}/checkpoint", headers=auditor).get_data(as_text=True)
    assert served != kept  # of the same size, re-signed with the real key
    forked = {"format": "zsb-evidence-bundle/v1", "log": "face-verifications", "checkpoint": served, "records": []}
    report = evidence.verify_bundle(forked, public_verifiers(client), previous=kept)
    assert not report.ok and str(size) in report.first_failure
    # And a newer checkpoint of the rewritten log does not extend the kept one.
    citizen_as(*OTHER)
    bundle = json.loads(client.get(f"{FACE_LOG}/export", headers=auditor, query_string={
        "format": "bundle", "consistency_from": size}).get_data(as_text=True))
    report = evidence.verify_bundle({**bundle, "records": []}, public_verifiers(client), previous=kept)
    assert not report.ok and "consisten" in report.first_failure


def test_the_operators_commands_cut_checkpoints_and_make_keys(app, client, auditor):
    grow(client, auditor, 2)
    runner = app.test_cli_runner()
    cut = runner.invoke(args=["audit", "checkpoint", "--log", "auditor-access"])
    assert cut.exit_code == 0, cut.output
    assert Checkpoint.parse(note.open(cut.output.rstrip("\n") + "\n", public_verifiers(client)).text).size >= 2
    made = runner.invoke(args=["audit", "generate-key", "zsb.example.gov.cn/audit"])
    assert made.exit_code == 0, made.output
    signer_line, verifier_line = made.output.splitlines()
    signer = note.Signer.from_key(signer_line.removeprefix("AUDIT_SIGNING_KEY="))
    verifier = note.Verifier.from_key(verifier_line.removeprefix("verifier key: "))
    assert verifier.verify(b"x", signer.sign(b"x"))
