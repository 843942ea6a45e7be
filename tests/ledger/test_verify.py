"""The verifier (app/ledger/verify.py) against an operator who edits the database, on the backend of this run.

Every attack is plain SQL on the tables, never through the application, and each must be reported at the
first record or checkpoint it breaks. A chain of twelve records with checkpoints at sizes 5 and 12 is enough
for every shape the tree takes: its nodes are the leaves, (1, 0…5), (2, 0…2) and (3, 0), and the root at 12
is composed of (3, 0) and (2, 2) only, so an edit below them is found by no root — only by checking every node.
The same attacks are verified in one process and split over worker processes, with the same report.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from app.connectors.models import DataAccessRecord
from app.extensions import db
from app.face.models import FaceVerificationRecord
from app.ledger import chain, checkpoints, verify
from app.ledger.models import ChainedRecord
from app.ledger.verify import verify_chain
from tests.helpers import REPOSITORY
from tlog import merkle, note, records
from tlog.checkpoint import Checkpoint

CHAIN = DataAccessRecord.CHAIN


def record(n: int, **changes) -> dict:
    fields = {
        "connector_id": f"c-{n % 3}",
        "bureau": "ga",
        "bureau_name": "郑州市公安局",
        "citizen_pseudonym": f"{n:064x}",
        "application_id": None,
        "purpose": "实名认证",
        "actor": f"citizen:{n}",
        "elements_requested": ["person.name", "person.household_address"],
        "elements_returned": ["person.name"],
        "outcome": "ok",
        "latency_ms": 10 + n,
        "error": None,
        "http_status": 200,
        "request_id": f"req-{n}",
    }
    fields.update(changes)
    return fields


def append(app, first: int, last: int) -> list:
    with app.app_context():
        return chain.append_many(DataAccessRecord, [record(n) for n in range(first, last + 1)])


def cut(app) -> checkpoints.SignedCheckpoint:
    with app.app_context():
        return checkpoints.cut(CHAIN)


def stored_note(app, size: int) -> str:
    with app.app_context():
        return checkpoints.at_size(CHAIN, size).note


@pytest.fixture
def twelve(app):
    """Twelve data-access records, checkpoints at sizes 5 and 12; returns the records in order."""
    written = append(app, 1, 5)
    cut(app)
    written += append(app, 6, 12)
    cut(app)
    return written


def sql(app, statement: str, **params) -> None:
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(sa.text(statement), params)


def run(app, **options) -> verify.VerifyResult:
    with app.app_context():
        return verify_chain(DataAccessRecord, **options)


def broken(app, **options) -> dict:
    result = run(app, **options)
    assert result.ok is False
    return result.first_broken


def set_node(app, level: int, index: int, digest: bytes = b"\x07" * 32) -> None:
    sql(app, "UPDATE audit_tree_nodes SET hash = :h WHERE chain = :c AND level = :l AND idx = :i",
        h=digest, c=CHAIN, l=level, i=index)


def flipped_signature(signed: str) -> str:
    """The signed note with one bit of its signature flipped (same key name and ID)."""
    text, lines = signed.split("\n\n", 1)
    name, encoded = lines.splitlines()[0].rsplit(" ", 1)
    raw = bytearray(base64.b64decode(encoded))
    raw[-1] ^= 1
    return f"{text}\n\n{name} {base64.b64encode(bytes(raw)).decode()}\n"


# ---------------------------------------------------------------------------------------------- intact


def test_an_intact_chain_verifies_with_its_tree_and_checkpoints(app, twelve):
    result = run(app)
    assert (result.ok, result.checked, result.first_broken, result.checkpoints) == (True, 12, None, 2)
    assert result.head_hash == twelve[-1].record_hash and result.started_after == 0


def test_the_byte_level_hashes_are_tlogs_definitions():
    payload = {"b": [1, {"z": 1, "a": 2.5}], "a": "张伟\n\"", "at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
               "none": None, "big": 1e16}
    body = records.canonical_encoder()(payload).encode("utf-8")
    assert body == records.canonical_json(payload)
    assert records.record_hash_of("ab" * 32, body) == records.record_hash("ab" * 32, payload)
    salt = bytes(range(16))
    assert records.leaf_data_of(salt, body) == records.leaf_data(salt, payload)
    assert records.record_leaf_hash_of(salt, body) == records.record_leaf_hash(salt, payload)


def test_times_are_hashed_as_the_writer_spelled_them(app, is_postgres):
    """On PostgreSQL the verifier has the database format times (to_char): the same text as iso_utc, for
    every kind of value the face log holds (a whole second, an old date, a zone other than UTC)."""
    beijing = datetime(2026, 3, 1, 16, 30, 5, 250000, tzinfo=timezone(timedelta(hours=8)))
    moments = [None, datetime(2026, 3, 1, 8, 30, 5, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC),
               datetime(2999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), beijing]
    rows = [{"event": "decision", "citizen_pseudonym": "p" * 64, "actor": "citizen:1", "provider": "sandbox",
             "adapter_version": "1", "request_id": f"r{n}", "verified_until": moment, "similarity": 0.8125,
             "liveness": True, "threshold": 100.0, "attempt": 1} for n, moment in enumerate(moments)]
    with app.app_context():
        chain.append_many(FaceVerificationRecord, rows)
        result = verify_chain(FaceVerificationRecord)
        assert (result.ok, result.checked) == (True, len(rows)), result.first_broken
        if is_postgres:
            with db.engine.connect() as connection:
                for moment in moments[1:]:
                    stored = sa.cast(moment, sa.DateTime(timezone=True))
                    spelled = sa.func.to_char(sa.func.timezone("UTC", stored), verify._ISO_UTC)
                    assert connection.execute(sa.select(spelled)).scalar() == records.iso_utc(moment)


def test_an_empty_chain_and_a_chain_without_checkpoints_verify(app):
    assert (run(app).ok, run(app).checked) == (True, 0)
    append(app, 1, 3)
    result = run(app)
    assert (result.ok, result.checked, result.checkpoints) == (True, 3, 0)


def test_a_checkpoint_of_the_empty_tree_is_checked(app):
    append(app, 1, 1)
    sql(app, "DELETE FROM data_access_records")
    sql(app, "DELETE FROM audit_tree_nodes")
    sql(app, "UPDATE audit_chain_heads SET seq = 0, head_hash = :h, tree_size = 0 WHERE chain = :c",
        h=chain.GENESIS, c=CHAIN)
    assert cut(app).size == 0
    assert run(app).ok
    sql(app, "UPDATE audit_checkpoints SET root_hash = :h", h="ab" * 32)
    found = broken(app)
    assert found["seq"] == 0 and "checkpoint of size 0: its root differs" in found["reason"]


# --------------------------------------------------------------------------------------------- attacks


def shift_up(app, from_seq: int) -> None:
    """Renumber the records from `from_seq` on one up, through a free range (seq is unique)."""
    sql(app, "UPDATE data_access_records SET seq = seq + 1000 WHERE seq >= :s", s=from_seq)
    sql(app, "UPDATE data_access_records SET seq = seq - 999 WHERE seq >= 1000")


def insert_forged(app, seq: int, prev_hash: str) -> str:
    """A record written by hand at `seq` whose own hash holds (the attacker knows the hashing rules)."""
    fields = {**record(99), "id": "f" * 32, "seq": seq, "prev_hash": prev_hash, "leaf_salt": "00" * 16,
              "recorded_at": datetime.now(UTC)}
    payload = chain.payload_of(DataAccessRecord, fields)
    fields["record_hash"] = records.record_hash(prev_hash, payload)
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(DataAccessRecord.__table__.insert(), [fields])
    return fields["record_hash"]


ATTACKS = {
    # name: (what the operator does, the seq reported, whether it carries the record's id, words of the reason)
    "edited-field": (lambda app, rs: sql(app, "UPDATE data_access_records SET outcome = 'failed' WHERE seq = 7"),
                     7, True, "record_hash does not match"),
    "deleted-record": (lambda app, rs: sql(app, "DELETE FROM data_access_records WHERE seq = 6"),
                       7, True, "expected seq 6, found 7"),
    "reordered": (lambda app, rs: (sql(app, "UPDATE data_access_records SET seq = 1000 WHERE seq = 4"),
                                   sql(app, "UPDATE data_access_records SET seq = 4 WHERE seq = 5"),
                                   sql(app, "UPDATE data_access_records SET seq = 5 WHERE seq = 1000")),
                  4, True, "prev_hash does not match"),
    "inserted": (lambda app, rs: (shift_up(app, 6), insert_forged(app, 6, rs[4].record_hash)),
                 7, True, "prev_hash does not match"),
    "appended-past-the-head": (lambda app, rs: insert_forged(app, 13, rs[11].record_hash),
                               13, True, "beyond the chain's head"),
    "deleted-tail": (lambda app, rs: sql(app, "DELETE FROM data_access_records WHERE seq > 10"),
                     11, False, "chain ends at seq 10, head says 12"),
    "edited-leaf": (lambda app, rs: set_node(app, 0, 8), 9, True, "the tree's leaf does not match"),
    "edited-inner-node": (lambda app, rs: set_node(app, 1, 0), 2, False, "tree node (level 1, index 0) does not"),
    "edited-node-of-the-root": (lambda app, rs: set_node(app, 2, 2), 12, False, "tree node (level 2, index 2)"),
    "deleted-leaf": (lambda app, rs: sql(app, "DELETE FROM audit_tree_nodes WHERE level = 0 AND idx = 9"),
                     10, True, "the tree has no leaf"),
    "deleted-inner-node": (lambda app, rs: sql(app, "DELETE FROM audit_tree_nodes WHERE level = 2 AND idx = 1"),
                           8, False, "tree node (level 2, index 1) is missing"),
    "deleted-tree": (lambda app, rs: sql(app, "DELETE FROM audit_tree_nodes"), 1, True, "the tree has no leaf"),
    "checkpoint-root": (lambda app, rs: sql(app, "UPDATE audit_checkpoints SET root_hash = :h WHERE tree_size = 5",
                                            h="ab" * 32),
                        5, False, "checkpoint of size 5: its root differs"),
    "checkpoint-signature": (lambda app, rs: sql(app, "UPDATE audit_checkpoints SET note = :n WHERE tree_size = 5",
                                                 n=flipped_signature(stored_note(app, 5))),
                             5, False, "checkpoint of size 5: its signature does not verify"),
    "checkpoint-past-the-tree": (lambda app, rs: sql(app, "UPDATE audit_checkpoints SET tree_size = 40 "
                                                          "WHERE tree_size = 12"),
                                 40, False, "checkpoint of size 40: beyond the tree's size 12"),
}


def forge_checkpoint_signature(app):
    """A checkpoint of the true root, signed by a key the service does not trust."""
    with app.app_context():
        stored = checkpoints.at_size(CHAIN, 5)
        other = note.Signer.generate("sandbox.zsb.invalid/audit")
        forged = note.sign(Checkpoint(stored.origin, 5, stored.root_hash).to_text(), other)
    sql(app, "UPDATE audit_checkpoints SET note = :n WHERE tree_size = 5", n=forged)


ATTACKS["checkpoint-other-key"] = (lambda app, rs: forge_checkpoint_signature(app), 5, False,
                                   "checkpoint of size 5: its signature does not verify")


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_each_attack_is_reported_at_the_first_record_or_checkpoint_it_breaks(app, twelve, attack):
    tamper, seq, with_id, words = ATTACKS[attack]
    tamper(app, twelve)
    found = broken(app)
    assert found["seq"] == seq and words in found["reason"], found
    if with_id:
        with app.app_context():
            expected = db.session.execute(sa.select(DataAccessRecord.id).where(DataAccessRecord.seq == seq)).scalar()
        assert found["id"] == expected
    else:
        assert found["id"] is None
    assert run(app, workers=3).first_broken == found  # split over processes: the same report


def test_a_reordering_names_the_record_that_moved(app, twelve):
    ATTACKS["reordered"][0](app, twelve)
    assert broken(app)["id"] == twelve[4].id  # the fifth record now sits at seq 4


def test_the_hash_chain_is_reported_before_the_tree(app, twelve):
    """An edit with the record's own hash recomputed breaks its leaf and the next record's link: the chain's
    break is the finding (the tree's is reported when the chain holds)."""
    with app.app_context():
        row = dict(db.session.execute(sa.select(DataAccessRecord.__table__).where(DataAccessRecord.seq == 3))
                   .mappings().one())
    row["outcome"] = "failed"
    forged = records.record_hash(row["prev_hash"], chain.payload_of(DataAccessRecord, row))
    sql(app, "UPDATE data_access_records SET outcome = 'failed', record_hash = :h WHERE seq = 3", h=forged)
    found = broken(app)
    assert (found["seq"], found["id"]) == (4, twelve[3].id) and "prev_hash" in found["reason"]
    # Re-linking the rest too (the attacker rewrites every later hash) leaves the tree to tell.
    set_node(app, 0, 2, b"\x00" * 32)
    sql(app, "DELETE FROM data_access_records WHERE seq > 3")
    sql(app, "UPDATE audit_chain_heads SET seq = 3, head_hash = :h, tree_size = 3 WHERE chain = :c", h=forged, c=CHAIN)
    sql(app, "DELETE FROM audit_checkpoints")
    found = broken(app)
    assert (found["seq"], found["id"]) == (3, twelve[2].id) and "leaf does not match" in found["reason"]


def test_the_head_row_is_checked(app, twelve):
    sql(app, "UPDATE audit_chain_heads SET head_hash = :h WHERE chain = :c", h="0" * 64, c=CHAIN)
    assert "the head's hash is not the last record's" in broken(app)["reason"]
    sql(app, "UPDATE audit_chain_heads SET head_hash = :h, tree_size = 11 WHERE chain = :c",
        h=twelve[-1].record_hash, c=CHAIN)
    found = broken(app)  # the tree holds a twelfth leaf the head no longer counts
    assert found["seq"] == 12 and "leaf beyond the head's tree size 11" in found["reason"]
    sql(app, "DELETE FROM audit_chain_heads WHERE chain = :c", c=CHAIN)
    assert "head row is missing" in broken(app)["reason"]


def test_a_tree_that_lags_its_records_is_checked_up_to_its_size(app):
    """A migrated chain's tree is built by the next append; until then the records alone are checked."""
    append(app, 1, 6)
    sql(app, "DELETE FROM audit_tree_nodes")
    sql(app, "UPDATE audit_chain_heads SET tree_size = 0 WHERE chain = :c", c=CHAIN)
    assert (run(app).ok, run(app).checked) == (True, 6)
    append(app, 7, 7)  # the writer catches the tree up
    assert (run(app).ok, run(app).checked) == (True, 7)


# ---------------------------------------------------------------------------------------- batch sizes


@pytest.mark.parametrize("batch_size", [1, 2, 3, 4])
@pytest.mark.parametrize("seq", [4, 5])
def test_batch_boundaries_change_nothing(app, twelve, batch_size, seq):
    """Rows and nodes come `batch_size` at a time: a break on either side of a boundary is found the same."""
    assert run(app, batch_size=batch_size).ok
    sql(app, "UPDATE data_access_records SET latency_ms = 0 WHERE seq = :s", s=seq)
    found = broken(app, batch_size=batch_size)
    assert found["seq"] == seq and "record_hash" in found["reason"]
    sql(app, "UPDATE data_access_records SET latency_ms = :v WHERE seq = :s", v=10 + seq, s=seq)
    set_node(app, 0, seq - 1)
    assert broken(app, batch_size=batch_size)["seq"] == seq


# ------------------------------------------------------------------------------------- worker processes


@pytest.mark.parametrize("workers", [2, 3, 5])
def test_ranges_stitch_into_the_single_pass_report(app, twelve, workers):
    assert run(app, workers=workers) == run(app, workers=1)
    # A gap exactly at a range's start (ranges of 12/workers), and nodes spanning ranges.
    for statement in ("DELETE FROM data_access_records WHERE seq IN (6, 7)",
                      "DELETE FROM audit_tree_nodes WHERE level = 1 AND idx = 2"):
        sql(app, statement)
        assert run(app, workers=workers) == run(app, workers=1)


FORKING = """
import json, sys, threading
from app import create_app
from app.connectors.models import DataAccessRecord
from app.ledger.verify import verify_chain

if __name__ == "__main__":
    app = create_app(json.loads(sys.argv[1]))
    with app.app_context():
        assert threading.active_count() == 1  # so its workers are forked
        result = verify_chain(DataAccessRecord, workers=3)
    print(json.dumps([result.ok, result.checked, result.checkpoints, result.first_broken]))
"""


def test_a_process_without_other_threads_forks_its_workers(app, twelve, database_url, tmp_path):
    """A CLI command (one thread) forks its workers at once; the suite's process, with its servers' threads,
    goes through the forkserver (every other test here). Both give the single pass's report."""
    script = tmp_path / "verify_forking.py"
    script.write_text(FORKING, encoding="utf-8")
    settings = {"APP_ENV": "testing", "DATABASE_URL": database_url, "REDIS_URL": None,
                "AUDIT_WITNESS_FILE": str(tmp_path / "witness.jsonl")}
    sql(app, "UPDATE data_access_records SET outcome = 'failed' WHERE seq = 9")
    done = subprocess.run([sys.executable, str(script), json.dumps(settings)], capture_output=True, text=True,
                          cwd=REPOSITORY, timeout=120)
    assert done.returncode == 0, done.stderr
    single = run(app, workers=1)
    assert json.loads(done.stdout.splitlines()[-1]) == [False, single.checked, single.checkpoints,
                                                        single.first_broken]


# --------------------------------------------------------------------------------------------- incremental


def test_incremental_starts_at_the_newest_checkpoint_that_holds(app, twelve):
    sql(app, "UPDATE data_access_records SET outcome = 'failed' WHERE seq = 3")  # before the checkpoint at 12
    assert broken(app)["seq"] == 3
    result = run(app, since_checkpoint=True)
    assert (result.ok, result.started_after, result.checked) == (True, 12, 0)  # what incremental cannot see
    append(app, 13, 15)
    result = run(app, since_checkpoint=True)
    assert (result.ok, result.started_after, result.checked) == (True, 12, 3)
    sql(app, "UPDATE data_access_records SET outcome = 'failed' WHERE seq = 14")  # after it: caught
    found = broken(app, since_checkpoint=True)
    assert found["seq"] == 14 and "record_hash" in found["reason"]


def test_incremental_passes_over_a_checkpoint_that_does_not_hold_and_reports_it(app, twelve):
    append(app, 13, 14)
    sql(app, "UPDATE audit_checkpoints SET note = :n WHERE tree_size = 12", n=flipped_signature(stored_note(app, 12)))
    result = run(app, since_checkpoint=True)
    assert result.started_after == 5  # from the older checkpoint, re-hashing what lies after it
    assert result.first_broken["seq"] == 12 and "signature" in result.first_broken["reason"]


def test_incremental_without_a_checkpoint_is_a_full_run(app):
    append(app, 1, 4)
    result = run(app, since_checkpoint=True)
    assert (result.ok, result.started_after, result.checked) == (True, 0, 4)


def test_incremental_catches_later_tree_edits(app, twelve):
    append(app, 13, 16)
    set_node(app, 2, 3)  # leaves 12…15: completed by seq 16
    found = broken(app, since_checkpoint=True)
    assert found["seq"] == 16 and "tree node (level 2, index 3)" in found["reason"]
    assert run(app, since_checkpoint=True, workers=2).first_broken == found


def test_flask_audit_verify_incremental(app, twelve):
    runner = app.test_cli_runner()
    full = runner.invoke(args=["audit", "verify", "--log", "data-access"])
    assert full.exit_code == 0, full.output
    assert "data-access: ok, 12 records, 2 checkpoints" in full.output
    incremental = runner.invoke(args=["audit", "verify", "--log", "data-access", "--incremental"])
    assert incremental.exit_code == 0, incremental.output
    assert "data-access: ok, 0 records after checkpoint 12" in incremental.output
    sql(app, "UPDATE audit_checkpoints SET root_hash = :h WHERE tree_size = 5", h="cd" * 32)
    assert runner.invoke(args=["audit", "verify", "--log", "data-access"]).exit_code == 1


# ------------------------------------------------------------------------------------------ the layout


def test_a_model_with_its_own_payload_is_hashed_through_it(app, twelve, monkeypatch):
    """The fast path builds ChainedRecord.chain_payload's dict from the columns; a model that hashes something
    else is verified through its own chain_payload, from whole rows."""
    monkeypatch.setattr(DataAccessRecord, "chain_payload", lambda self: ChainedRecord.chain_payload(self))
    verify._layout.cache_clear()
    try:
        assert verify._layout(DataAccessRecord, "sqlite").fast is False
        assert run(app).ok
        sql(app, "UPDATE data_access_records SET bureau = 'x' WHERE seq = 9")
        assert broken(app)["seq"] == 9
    finally:
        verify._layout.cache_clear()


def test_the_frontier_fold_is_tlogs_root():
    leaves = [merkle.hash_leaf(bytes([n])) for n in range(13)]
    memory = merkle.MemoryTree(leaves)
    for size in range(14):
        frontier = [memory.nodes[node] for node in merkle.frontier_ids(size)]
        assert verify._fold(frontier) == memory.root(size) == merkle.root(leaves[:size])
