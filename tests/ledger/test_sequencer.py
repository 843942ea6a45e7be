"""The chains' sequencer on PostgreSQL (app/ledger/sequencer/), with real concurrency: threads, and writers and
leaders in other processes (started with multiprocessing's spawn, as a server's workers are separate programs).

Every test ends the same way: everything that was acknowledged is in one chain, seq 1…n without a gap, nothing
is left queued, and the chain and its Merkle tree verify.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time

import pytest
import sqlalchemy as sa

from app.connectors.models import DataAccessRecord
from app.extensions import db
from app.ledger import chain, sequencer
from app.ledger.models import ChainHead, PendingRecord
from app.ledger.sequencer.worker import lock_key
from app.ledger.verify import verify_chain

SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture(autouse=True)
def postgres_only(is_postgres):
    if not is_postgres:
        pytest.skip("the sequencer runs on PostgreSQL only (SQLite appends directly)")


@pytest.fixture
def own_workers(app):
    """This process's workers (of every app of the session) stopped before and after the test: no leader of
    ours unless the test makes one."""
    sequencer.stop_all()
    yield
    sequencer.stop_all()


def record(n: int) -> dict:
    return {
        "connector_id": f"c-{n % 3}", "bureau": "ga", "bureau_name": "郑州市公安局", "citizen_pseudonym": f"{n:064x}",
        "application_id": None, "purpose": "实名认证", "actor": f"citizen:{n}", "elements_requested": ["person.name"],
        "elements_returned": ["person.name"], "outcome": "ok", "latency_ms": n % 1000, "error": None,
        "http_status": 200, "request_id": f"req-{n}",
    }


def assert_one_unbroken_chain(app, expected_ids: set[str] | None = None) -> list[str]:
    """The chain holds seq 1…n, its head and tree say n, nothing is queued, it verifies; returns its ids."""
    with app.app_context():
        sequencer.settle(DataAccessRecord, timeout=30)
        with db.engine.connect() as connection:
            rows = connection.execute(sa.select(DataAccessRecord.seq, DataAccessRecord.id)
                                      .order_by(DataAccessRecord.seq)).all()
            head = connection.execute(sa.select(ChainHead.seq, ChainHead.tree_size)
                                      .where(ChainHead.chain == DataAccessRecord.CHAIN)).one()
            queued = connection.execute(sa.select(sa.func.count()).select_from(PendingRecord)).scalar()
        result = verify_chain(DataAccessRecord)
    assert [seq for seq, _ in rows] == list(range(1, len(rows) + 1))
    assert (head.seq, head.tree_size) == (len(rows), len(rows))
    assert queued == 0
    assert result.ok, result.first_broken
    ids = [record_id for _, record_id in rows]
    assert len(set(ids)) == len(ids)
    if expected_ids is not None:
        assert expected_ids <= set(ids), f"{len(expected_ids - set(ids))} acknowledged record(s) missing"
    return ids


def advisory_holder(chain_name: str):
    """A connection of the test's holding the chain's sequencer lock: no sequencer can run meanwhile."""
    engine = sa.create_engine(db.engine.url, poolclass=sa.pool.NullPool)
    connection = engine.connect()
    assert connection.execute(sa.select(sa.func.pg_try_advisory_lock(lock_key(chain_name)))).scalar()
    connection.commit()
    return engine, connection


# -------------------------------------------------------------------------------- writers in another process


def _other_process(database_url: str, first: int, count: int, threads: int, go, done, mode: str) -> None:
    """Append `count` records from `threads` threads (mode `append`), or keep appending until killed
    (`forever`), in a process and app of its own."""
    from app import create_app

    other = create_app({"APP_ENV": "testing", "DATABASE_URL": database_url, "SANDBOX_ENABLED": False})

    def write(thread: int) -> None:
        with other.app_context():
            n = first + thread
            while mode == "forever" or n < first + count:
                chain.append(DataAccessRecord, **record(n))
                n += threads
            db.session.remove()

    with other.app_context():
        chain.append(DataAccessRecord, **record(first - 1))  # this process's worker is running (and may lead)
    done.set()  # ready
    go.wait(30)
    workers = [threading.Thread(target=write, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    with other.app_context():
        sequencer.for_app().stop()


def start_other(app, first: int, count: int, threads: int, mode: str = "append"):
    go, ready = SPAWN.Event(), SPAWN.Event()
    process = SPAWN.Process(target=_other_process,
                            args=(app.config["SQLALCHEMY_DATABASE_URI"], first, count, threads, go, ready, mode))
    process.start()
    assert ready.wait(60), "the other process did not start"
    return process, go


def leader(app) -> tuple[int, str] | None:
    """(backend pid, application_name) of the connection holding the data-access chain's sequencer lock."""
    key = lock_key(DataAccessRecord.CHAIN) & 0xFFFF_FFFF_FFFF_FFFF  # a bigint key: two oids
    with app.app_context(), db.engine.connect() as connection:
        found = connection.execute(sa.text(
            "SELECT l.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
            # This run's database: advisory locks are per database, and other runs (xdist's other
            # processes) lead chains of the same name in theirs.
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND l.classid::text::bigint = :high AND l.objid::text::bigint = :low"),
            {"high": key >> 32, "low": key & 0xFFFF_FFFF}).first()
    return tuple(found) if found else None


# ---------------------------------------------------------------------------------------------------- tests


def test_writers_in_two_processes_keep_one_unbroken_chain(app, own_workers):
    """16 threads here and 8 in another process, appending at once: one chain, no gap, every record once."""
    process, go = start_other(app, first=1_000_001, count=400, threads=8)
    mine, errors = [], []

    def write(thread: int) -> None:
        try:
            with app.app_context():
                for n in range(thread, 480, 16):
                    mine.append(chain.append(DataAccessRecord, **record(n)).id)
                db.session.remove()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    workers = [threading.Thread(target=write, args=(t,)) for t in range(16)]
    go.set()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    process.join(60)
    assert errors == [] and process.exitcode == 0
    ids = assert_one_unbroken_chain(app, set(mine))
    assert len(ids) == 480 + 400 + 1


def test_append_returns_the_record_as_chained(app, own_workers):
    """Whichever process leads, append returns the seq and hashes the record has in the chain."""
    process, go = start_other(app, first=2_000_001, count=0, threads=1)  # its worker leads: it started first
    try:
        with app.app_context():
            written = chain.append_many(DataAccessRecord, [record(1), record(2)])
            stored = {row.id: row for row in db.session.scalars(sa.select(DataAccessRecord))}
            assert [r.seq for r in written] == [2, 3]  # after the other process's first record
            for row in written:
                assert (row.seq, row.prev_hash, row.record_hash, row.leaf_salt, row.recorded_at) == (
                    stored[row.id].seq, stored[row.id].prev_hash, stored[row.id].record_hash,
                    stored[row.id].leaf_salt, stored[row.id].recorded_at)
            db.session.remove()
    finally:
        go.set()
        process.join(60)
    assert_one_unbroken_chain(app)


@pytest.mark.parametrize("death", ["killed", "connection-closed"])
def test_a_leader_that_dies_is_replaced_and_nothing_queued_is_lost(app, own_workers, death):
    """The leader (another process, appending without pause) dies while records of ours are queued for it:
    this process takes over, and every record acknowledged as durable here ends up in the chain."""
    process, go = start_other(app, first=3_000_001, count=0, threads=4, mode="forever")
    acknowledged, errors, stop = set(), [], threading.Event()
    go.set()

    def write(thread: int) -> None:
        try:
            with app.app_context():
                n = thread
                while not stop.is_set():
                    # Durable (queued) is all we wait for: the records may not be chained when the leader dies.
                    acknowledged.update(r.id for r in chain.append_many(DataAccessRecord, [record(n)], wait=False))
                    n += 4
                db.session.remove()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    # The other process leads before any writer here starts (on a loaded machine its first append, which
    # starts its worker, may come a while after `go`).
    deadline = time.monotonic() + 30
    while (before := leader(app)) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert before is not None and before[1] == f"zsb-audit-sequencer {process.pid}"
    workers = [threading.Thread(target=write, args=(t,)) for t in range(4)]
    for worker in workers:
        worker.start()
    time.sleep(1.0)
    if death == "killed":
        os.kill(process.pid, signal.SIGKILL)
    else:  # its connection dies (a restart of its pooler, a network cut): its session lock goes with it
        with app.app_context(), db.engine.connect() as connection:
            assert connection.execute(sa.select(sa.func.pg_terminate_backend(before[0]))).scalar()
    # Appends go on meanwhile; a new leader takes over once PostgreSQL has seen the old one's connection go
    # (at once when idle, later when the machine is loaded: a bound, not a fixed sleep).
    deadline = time.monotonic() + 20
    time.sleep(1.5)
    while (leader(app) or (before[0],))[0] == before[0] and time.monotonic() < deadline:
        time.sleep(0.2)
    stop.set()
    for worker in workers:
        worker.join()
    if death == "killed":
        process.join(10)
    else:
        os.kill(process.pid, signal.SIGKILL)
        process.join(10)
    assert errors == []
    assert len(acknowledged) > 50
    assert_one_unbroken_chain(app, acknowledged)
    after = leader(app)
    assert after is not None and after[0] != before[0] and after[1] == f"zsb-audit-sequencer {os.getpid()}"


def test_records_queued_in_a_transaction_that_rolls_back_are_never_chained(app, own_workers):
    with app.app_context():
        session = db.session()
        staged = sequencer.prepare(DataAccessRecord, [record(1), record(2)])
        ticket = sequencer.stage(session.connection(), DataAccessRecord, staged)
        # The sequencer runs while that transaction is open: others' records are chained, not these.
        others = [chain.append(DataAccessRecord, **record(n)).id for n in range(3, 8)]
        session.rollback()
        sequencer.discard(ticket)
        # Through `appending`, the caller failing before its commit: the records are appended on their own
        # instead, once.
        rows = [record(8), record(9)]
        with pytest.raises(RuntimeError), chain.appending(db.session(), DataAccessRecord, rows):
            db.session.flush()
            db.session.connection()  # the transaction is open
            raise RuntimeError("the caller fails before its commit")
        db.session.remove()
    ids = assert_one_unbroken_chain(app, set(others))
    assert not {row["id"] for row in staged} & set(ids)
    with app.app_context():
        logged = db.session.scalars(sa.select(DataAccessRecord.request_id)).all()
    assert sorted(logged) == sorted([f"req-{n}" for n in range(3, 10)])


def test_queued_in_a_committed_transaction_they_are_chained_with_their_ids(app, own_workers):
    with app.app_context():
        rows = [record(1), record(2)]
        with chain.appending(db.session(), DataAccessRecord, rows):
            db.session.commit()
        db.session.remove()
    ids = assert_one_unbroken_chain(app)
    assert len(ids) == 2


def test_the_wait_is_bounded_and_answers_503_when_no_sequencer_can_run(app, own_workers, make_app, staff_headers):
    """A stuck leader (here: the lock held by a connection that never sequences): the auditor's read waits
    AUDIT_SEQUENCE_WAIT_SECONDS, then 503 — and its access record, durable, is chained once a sequencer runs."""
    auditor = staff_headers("auditor")
    impatient = make_app(AUDIT_SEQUENCE_WAIT_SECONDS=0.5)
    with impatient.app_context():
        engine, holder = advisory_holder("auditor-access")
    try:
        started = time.monotonic()
        answer = impatient.test_client().get("/api/v1/audit/data-access", headers=auditor)
        waited = time.monotonic() - started
        assert answer.status_code == 503 and answer.json["error"] == "audit_log_unavailable"
        assert "items" not in answer.json
        assert 0.5 <= waited < 3
        with impatient.app_context(), db.engine.connect() as connection:
            assert connection.execute(sa.select(sa.func.count()).select_from(PendingRecord)).scalar() == 1
    finally:
        holder.close()
        engine.dispose()
    with impatient.app_context():
        from app.connectors.models import AuditorAccessRecord

        sequencer.settle(AuditorAccessRecord, timeout=10)
        assert [r.action for r in db.session.scalars(sa.select(AuditorAccessRecord))] == ["query"]
        assert verify_chain(AuditorAccessRecord).ok
        sequencer.for_app().stop()


def test_a_head_rolled_back_under_a_running_leader_is_refused_not_forked(app, own_workers):
    """The leader remembers the head it wrote; a head changed behind its back is seen, and refused (503)."""
    with app.app_context():
        for n in range(3):
            chain.append(DataAccessRecord, **record(n))
        with db.engine.begin() as connection:
            connection.execute(sa.text("UPDATE audit_chain_heads SET seq = 1 WHERE chain = 'data-access'"))
        with pytest.raises(chain.ChainUnavailable):
            chain.append(DataAccessRecord, **record(10))
        seqs = db.session.scalars(sa.select(DataAccessRecord.seq).order_by(DataAccessRecord.seq)).all()
        db.session.remove()
    assert seqs == [1, 2, 3]


def test_records_that_break_their_table_are_refused_before_they_are_queued(app, own_workers):
    with app.app_context():
        with pytest.raises(sa.exc.IntegrityError):
            chain.append(DataAccessRecord, **{**record(1), "outcome": None})
        with pytest.raises(sa.exc.IntegrityError, match="longer than 16"):
            chain.append(DataAccessRecord, **{**record(1), "outcome": "x" * 17})
        with pytest.raises(sa.exc.IntegrityError, match="integer"):
            chain.append(DataAccessRecord, **{**record(1), "latency_ms": "slow"})
        with pytest.raises(TypeError):
            chain.append(DataAccessRecord, **record(1), colour="blue")
        assert chain.append(DataAccessRecord, **record(2)).seq == 1
        db.session.remove()
    assert_one_unbroken_chain(app)
