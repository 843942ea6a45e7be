"""Chain records committed with the caller's own writes (`chain.appending`), on the backend of this run.

The records go into the transaction of the session's next commit; whatever goes wrong before that commit
succeeds — an error in the block, a commit that fails, a savepoint that is not the whole transaction — they
are written on their own all the same, exactly once, and the chain stays unbroken.
"""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from app.accounts.models import Citizen
from app.connectors.models import DataAccessRecord
from app.extensions import db
from app.ledger import chain
from app.ledger.verify import verify_chain


def record(n: int) -> dict:
    return {
        "connector_id": f"c-{n % 3}",
        "bureau": "ga",
        "bureau_name": "郑州市公安局",
        "citizen_pseudonym": f"{n:064x}",
        "application_id": None,
        "purpose": "实名认证",
        "actor": f"citizen:{n}",
        "elements_requested": ["person.name"],
        "elements_returned": ["person.name"],
        "outcome": "ok",
        "latency_ms": n,
        "error": None,
        "http_status": 200,
        "request_id": f"req-{n}",
    }


def logged(app) -> list[str]:
    """The request ids of the data-access records, in chain order, after checking the chain."""
    with app.app_context():
        result = verify_chain(DataAccessRecord)
        assert result.ok, result.first_broken
        return list(db.session.scalars(sa.select(DataAccessRecord.request_id).order_by(DataAccessRecord.seq)))


def citizens(app) -> set[str]:
    with app.app_context():
        return set(db.session.scalars(sa.select(Citizen.openid)))


def test_the_records_commit_with_the_callers_writes(app):
    with app.app_context():
        with chain.appending(db.session(), DataAccessRecord, [record(1), record(2)]):
            db.session.add(Citizen(openid="appending-1"))
            db.session.commit()
    assert logged(app) == ["req-1", "req-2"]
    assert "appending-1" in citizens(app)


def test_without_a_commit_in_the_block_they_commit_at_its_end(app):
    with app.app_context():
        with chain.appending(db.session(), DataAccessRecord, [record(1)]):
            db.session.add(Citizen(openid="appending-2"))
    assert logged(app) == ["req-1"]
    assert "appending-2" in citizens(app)


def test_an_error_before_the_commit_still_writes_them(app):
    with app.app_context(), pytest.raises(RuntimeError, match="boom"):
        with chain.appending(db.session(), DataAccessRecord, [record(1), record(2)]):
            db.session.add(Citizen(openid="appending-3"))
            raise RuntimeError("boom")
    assert logged(app) == ["req-1", "req-2"]
    assert "appending-3" not in citizens(app)  # the caller's writes are rolled back, not the log


def test_a_failed_commit_still_writes_them(app):
    with app.app_context(), pytest.raises(sa.exc.IntegrityError):
        with chain.appending(db.session(), DataAccessRecord, [record(1)]):
            db.session.add_all([Citizen(openid="twice"), Citizen(openid="twice")])  # unique openid
            db.session.commit()
    assert logged(app) == ["req-1"]
    assert "twice" not in citizens(app)


def test_the_first_commit_takes_them_once(app):
    """A block that commits, writes more and then fails: the records went with the first commit, only once."""
    with app.app_context(), pytest.raises(RuntimeError):
        with chain.appending(db.session(), DataAccessRecord, [record(1)]):
            db.session.add(Citizen(openid="first"))
            db.session.commit()
            db.session.add(Citizen(openid="second"))
            db.session.commit()
            raise RuntimeError("after both commits")
    assert logged(app) == ["req-1"]
    assert {"first", "second"} <= citizens(app)


def test_a_savepoint_is_not_the_commit_that_takes_them(app, is_postgres):
    with app.app_context(), pytest.raises(RuntimeError):
        with chain.appending(db.session(), DataAccessRecord, [record(1)]):
            with db.session.begin_nested():
                db.session.add(Citizen(openid="in-savepoint"))
            raise RuntimeError("before the transaction commits")
    assert logged(app) == ["req-1"]
    if is_postgres:  # (pysqlite commits a savepoint opened outside a transaction when it is released)
        assert "in-savepoint" not in citizens(app)


def test_no_records_leave_the_session_alone(app):
    with app.app_context():
        with chain.appending(db.session(), DataAccessRecord, []):
            db.session.add(Citizen(openid="nothing-logged"))
        db.session.rollback()  # not committed by `appending`: nothing was pending
    assert logged(app) == []
    assert "nothing-logged" not in citizens(app)


def test_writers_of_both_kinds_keep_one_unbroken_chain(app):
    """Threads appending with their session's commit and on their own at once never fork the chain."""
    errors = []

    def write(worker: int):
        try:
            with app.app_context():
                for n in range(6):
                    number = worker * 100 + n
                    if worker % 2:
                        chain.append_many(DataAccessRecord, [record(number)])
                    else:
                        with chain.appending(db.session(), DataAccessRecord, [record(number)]):
                            db.session.add(Citizen(openid=f"writer-{number}"))
                db.session.remove()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(logged(app)) == 24
    assert len([c for c in citizens(app) if c.startswith("writer-")]) == 12
