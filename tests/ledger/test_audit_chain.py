"""The shared hash-chain implementation (app/ledger/chain.py) on the backend of this run.

Tampering is done the way an attacker with database access would: plain SQL on the table, never through the
application. The verifier must report the first broken link for each kind of change, and nothing for an
intact chain, also while other threads are appending.
"""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from app.connectors.models import AuditorAccessRecord, DataAccessRecord
from app.extensions import db
from app.ledger import chain
from app.ledger.chain import GENESIS, canonical_json, record_hash
from app.ledger.models import ChainHead
from app.ledger.verify import verify_chain


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


@pytest.fixture
def five(app):
    """Five records on the data-access chain; returns them in order."""
    with app.app_context():
        return chain.append_many(DataAccessRecord, [record(n) for n in range(1, 6)])


def sql(app, statement: str, **params) -> None:
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(sa.text(statement), params)


def verify(app):
    with app.app_context():
        return verify_chain(DataAccessRecord)


def test_records_are_linked_from_the_genesis_hash(app, five):
    assert [r.seq for r in five] == [1, 2, 3, 4, 5]
    assert five[0].prev_hash == GENESIS
    for previous, current in zip(five, five[1:], strict=False):
        assert current.prev_hash == previous.record_hash
    result = verify(app)
    assert (result.ok, result.checked, result.first_broken) == (True, 5, None)
    assert result.head_hash == five[-1].record_hash
    with app.app_context():
        head = db.session.get(ChainHead, "data-access")
        assert (head.seq, head.head_hash) == (5, five[-1].record_hash)


def test_the_hash_covers_the_stored_row_exactly(app, five):
    """Recomputed from the row as read back: ids, JSON lists and times survive the database unchanged."""
    with app.app_context():
        stored = db.session.scalars(sa.select(DataAccessRecord).order_by(DataAccessRecord.seq)).all()
        assert [r.id for r in stored] == [r.id for r in five] and all(len(r.id) == 32 for r in stored)
        for row in stored:
            assert record_hash(row.prev_hash, row.chain_payload()) == row.record_hash
        payload = stored[0].chain_payload()
    assert payload["chain"] == "data-access" and payload["seq"] == 1
    assert canonical_json(payload).decode().startswith('{"actor":"citizen:1","application_id":null,')
    assert payload["recorded_at"].tzinfo is not None


def test_canonical_json_is_one_spelling_per_record():
    from datetime import datetime, timedelta, timezone

    beijing = datetime(2024, 3, 18, 18, 12, 45, 123456, tzinfo=timezone(timedelta(hours=8)))
    one = canonical_json({"b": 1, "a": "张伟", "at": beijing})
    assert one == '{"a":"张伟","at":"2024-03-18T10:12:45.123456Z","b":1}'.encode()
    with pytest.raises(TypeError):
        canonical_json({"x": object()})


@pytest.mark.parametrize(
    ("statement", "broken_seq", "checked", "reason"),
    [
        pytest.param("UPDATE data_access_records SET outcome = 'failed' WHERE seq = 3", 3, 2,
                     "record_hash does not match", id="changed-field"),
        pytest.param("UPDATE data_access_records SET elements_returned = '[]' WHERE seq = 2", 2, 1,
                     "record_hash does not match", id="changed-json-field"),
        pytest.param("UPDATE data_access_records SET citizen_pseudonym = 'x' WHERE seq = 5", 5, 4,
                     "record_hash does not match", id="changed-last-record"),
        pytest.param("DELETE FROM data_access_records WHERE seq = 3", 4, 2, "expected seq 3, found 4",
                     id="deleted-middle"),
        pytest.param("DELETE FROM data_access_records WHERE seq = 1", 2, 0, "expected seq 1, found 2",
                     id="deleted-first"),
        pytest.param("DELETE FROM data_access_records WHERE seq = 5", 5, 4, "chain ends at seq 4, head says 5",
                     id="deleted-last"),
    ],
)
def test_tampering_is_reported_at_the_first_broken_link(app, five, statement, broken_seq, checked, reason):
    sql(app, statement)
    result = verify(app)
    assert result.ok is False
    assert result.first_broken["seq"] == broken_seq
    assert reason in result.first_broken["reason"]
    assert result.checked == checked


def test_a_changed_field_with_a_recomputed_own_hash_breaks_the_next_link(app, five):
    """An attacker who recomputes the record's own hash still breaks the link from the next record."""
    with app.app_context():
        row = db.session.scalars(sa.select(DataAccessRecord).where(DataAccessRecord.seq == 2)).one()
        row.outcome = "failed"
        forged = record_hash(row.prev_hash, row.chain_payload())
        db.session.rollback()
    sql(app, "UPDATE data_access_records SET outcome = 'failed', record_hash = :h WHERE seq = 2", h=forged)
    result = verify(app)
    assert result.first_broken["seq"] == 3
    assert "prev_hash" in result.first_broken["reason"]


def test_swapping_two_records_seq_is_reported(app, five):
    # Through a free value: seq is unique.
    sql(app, "UPDATE data_access_records SET seq = 1000 WHERE seq = 2")
    sql(app, "UPDATE data_access_records SET seq = 2 WHERE seq = 3")
    sql(app, "UPDATE data_access_records SET seq = 3 WHERE seq = 1000")
    result = verify(app)
    assert result.ok is False and result.first_broken["seq"] == 2
    assert result.first_broken["id"] == five[2].id  # the record that now sits at seq 2


def test_a_deleted_head_row_is_reported(app, five):
    sql(app, "DELETE FROM audit_chain_heads WHERE chain = 'data-access'")
    result = verify(app)
    assert result.ok is False and "head row is missing" in result.first_broken["reason"]


def test_an_empty_chain_verifies(app):
    result = verify(app)
    assert (result.ok, result.checked, result.first_broken, result.head_hash) == (True, 0, None, GENESIS)


def test_chains_are_independent(app, five):
    with app.app_context():
        other = chain.append(AuditorAccessRecord, actor="staff:1", action="query", log="data-access",
                             filters={}, result_count=0, request_id="r")
        assert other.seq == 1 and other.prev_hash == GENESIS
        assert verify_chain(AuditorAccessRecord).ok
    sql(app, "UPDATE auditor_access_records SET actor = 'staff:2'")
    with app.app_context():
        assert verify_chain(AuditorAccessRecord).ok is False
    assert verify(app).ok is True


def test_a_failed_batch_writes_nothing(app, five):
    with app.app_context(), pytest.raises(sa.exc.SQLAlchemyError):
        chain.append_many(DataAccessRecord, [record(6), record(7, outcome=None)])  # NOT NULL violated
    result = verify(app)
    assert (result.ok, result.checked) == (True, 5)
    with app.app_context():
        assert db.session.get(ChainHead, "data-access").seq == 5
        assert chain.append(DataAccessRecord, **record(6)).seq == 6
    assert verify(app).ok


def test_concurrent_writers_keep_one_unbroken_chain(app):
    """Threads appending at once (each with its own connection) never fork or break the chain."""
    errors = []

    def write(worker: int):
        try:
            with app.app_context():
                for n in range(8):
                    chain.append(DataAccessRecord, **record(worker * 100 + n))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    result = verify(app)
    assert (result.ok, result.checked) == (True, 32)


def test_verifying_while_records_are_appended_reports_no_false_break(app, five):
    """The verifier reads the head first and stops there, so appends during a verification are not breaks."""
    stop = threading.Event()
    errors = []

    def keep_appending():
        try:
            with app.app_context():
                n = 100
                while not stop.is_set():
                    chain.append(DataAccessRecord, **record(n))
                    n += 1
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    writer = threading.Thread(target=keep_appending)
    writer.start()
    try:
        results = []
        with app.app_context():
            for _ in range(10):
                results.append(verify_chain(DataAccessRecord, batch_size=2))
    finally:
        stop.set()
        writer.join()
    assert errors == []
    assert all(r.ok for r in results), [r.first_broken for r in results if not r.ok]
    assert verify(app).ok
