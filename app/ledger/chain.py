"""Tamper-evident, append-only logs: one shared implementation for every audit chain.

Each record carries `seq` (1, 2, 3… per chain), `prev_hash` (the previous record's hash; 64 zeros for the
first) and `record_hash` = SHA-256 over `prev_hash` and the canonical JSON of the record (sorted keys, no
spaces, UTF-8, times as UTC ISO 8601 with a `Z`). Changing a field, deleting a row or reordering rows breaks
the chain at the first affected record, which `app.ledger.verify.verify_chain` reports.

On PostgreSQL (AUDIT_SEQUENCER=auto) writers queue their records and one sequencer per chain chains them in
batches (app/ledger/sequencer/ says why and how); `_write` below is what it runs for each batch. The direct
path, on SQLite and with AUDIT_SEQUENCER=off, runs that same `_write` in each writer's transaction.

Writes are serialized per chain: the chain's head row in `audit_chain_heads` is locked (`SELECT … FOR UPDATE`
on PostgreSQL) in the writing transaction. SQLite has no row locks, so there the writer's transaction starts
with `BEGIN IMMEDIATE`, which takes the database's write lock before the head is read (two processes cannot
read the same head), and a process-local lock keeps one process's threads from queueing on that lock. A unique
(seq) constraint per chain table is the last safety net.
The application never updates or deletes a record; only `append` / `append_many` (a transaction of their own)
and `appending` (within the caller's next commit, falling back to a transaction of its own) write them.

Verification (of the chain, its Merkle tree and its checkpoints) is app/ledger/verify.py's.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import AppError
from app.extensions import db
from app.ledger import sequencer, tree
from app.ledger.models import ChainedRecord, ChainHead
from app.modelbase import utcnow
from tlog import records

__all__ = ["ChainUnavailable", "ChainedRecord", "append", "append_many", "appending"]
log = logging.getLogger(__name__)

GENESIS = "0" * 64


class ChainUnavailable(AppError):
    """A chain cannot be appended to: its head row is gone or disagrees with its records (a finding for
    `flask audit verify`). Nothing that needs the record is done: fail closed, but answer."""

    status_code, error, message = 503, "audit_log_unavailable", "审计日志暂时无法写入,本次操作未执行,请稍后再试"

_local_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
_HEADS = ChainHead.__table__
_PENDING = "audit_chain_pending"  # session.info key of the records `appending` waits to write


# One definition of how a record is hashed, shared with the offline verifier (tlog, which runs without us).
canonical_json = records.canonical_json
iso_utc = records.iso_utc
record_hash = records.record_hash


def append(model: type, **fields) -> Any:
    """Append one record to `model`'s chain and commit it in a transaction of its own.

    Callers pass only the record's own fields; seq, hashes and time are set here. The record is committed
    before this returns, independently of the caller's unit of work, so a later failure in the request
    cannot lose the log line (and an audit write failure raises, so nothing is done unlogged). It is in the
    chain too (seq and hashes set) unless the sequencer could not chain it within AUDIT_SEQUENCE_WAIT_SECONDS:
    ChainUnavailable then, the record staying queued.
    """
    return append_many(model, [fields])[0]


def append_many(model: type, rows: list[dict], *, wait: bool = True) -> list[Any]:
    """Append several records to `model`'s chain, in order, in one transaction (all or none are written).

    One lock of the head, one INSERT of all rows and one commit for a batch. Returns the records as written
    (objects in no session). With the sequencer, `wait=False` returns once they are committed (queued: their
    seq and hashes may not be known yet).
    """
    if not rows:
        return []
    if sequencer.active():
        ticket = sequencer.submit(model, rows)
        written = ticket.wait(sequencer.wait_seconds()) if wait else ticket.wait_durable(sequencer.wait_seconds())
        return [model(**row) for row in written]
    # Own connection: independent of the request's transaction. Callers must not hold an uncommitted write of
    # their own on SQLite at this point (SQLite allows one writer at a time).
    with _local_locks[model.CHAIN], db.engine.connect() as connection, connection.begin():
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock, before the head is read
        written = _write(connection, model, rows)
    return [model(**row) for row in written]


@contextmanager
def appending(session: Session, model: type, rows: list[dict], *, wait: bool = True) -> Iterator[None]:
    """Append `rows` to `model`'s chain in the transaction of `session`'s next commit: the block's or, failing
    that, one at the end of the block.

    For a service that writes its outcome right after logging what it did: one transaction and one commit
    for both, so the records are committed with (never after) the writes that use what they log. At that
    commit the session's own writes are flushed first and the head is locked last (on SQLite the process lock
    and `BEGIN IMMEDIATE` come first, before any write), so the chain is locked no longer than by
    `append_many`, and never while waiting for a row the caller writes. Only a commit of the whole transaction
    takes them, not a savepoint's.

    If the block raises before that commit, or the commit fails, the session is rolled back and the records
    are appended on their own (`append_many`) before the error goes on: the caller's failure cannot lose them.

    With the sequencer the records are queued in that transaction instead (durable with it, never without
    it), and the block's end waits until they are in the chain unless `wait` is false (see `append`).
    """
    if not rows:
        yield
        return
    if _PENDING in session.info:
        raise RuntimeError("one pending batch of chain records per session at a time")
    queued = sequencer.active()
    # Checked and given their ids now: the same ids whichever transaction finally takes them.
    pending = _Pending(model, sequencer.prepare(model, list(rows)) if queued else list(rows), queued=queued)
    session.info[_PENDING] = pending
    try:
        yield
        if not pending.committed:
            session.commit()
    except BaseException:
        if not pending.committed:
            session.info.pop(_PENDING, None)
            try:
                session.rollback()
            finally:
                pending.release()
                append_many(model, pending.rows)
        elif wait:
            _chained(pending, quiet=True)  # committed before the block failed: read back like any other
        raise
    else:
        if wait:
            _chained(pending)
    finally:
        pending.release()
        if session.info.get(_PENDING) is pending:
            del session.info[_PENDING]


def _chained(pending: _Pending, *, quiet: bool = False) -> None:
    """Wait until the records `appending` queued are in the chain; `quiet`: another error is on its way, and a
    chain that cannot take them is only logged (they are committed: the sequencer chains them later)."""
    if pending.ticket is None:
        return
    try:
        pending.ticket.wait(sequencer.wait_seconds())
    except ChainUnavailable:
        if not quiet:
            raise


@dataclass
class _Pending:
    """Records waiting for their session's commit (`appending`)."""

    model: type
    rows: list[dict]
    queued: bool = False  # through the sequencer (the rows prepared: checked, with their ids)
    staged: bool = False  # written in the session's transaction, not committed yet
    committed: bool = False
    lock: threading.Lock | None = None  # the chain's process lock while staged
    ticket: sequencer.Ticket | None = None  # the sequencer's, once staged

    def release(self) -> None:
        if self.lock is not None:
            self.lock, lock = None, self.lock
            lock.release()


@event.listens_for(Session, "before_commit")
def _stage_pending(session: Session) -> None:
    pending = session.info.get(_PENDING)
    # Only a commit of the whole transaction: records written inside a savepoint could still be rolled back.
    if pending is None or pending.staged or session.in_nested_transaction():
        return
    connection = session.connection()
    if pending.queued:
        # Queued after the caller's own writes, as below, but no lock is taken: the sequencer chains them.
        session.flush()
        pending.ticket = sequencer.stage(connection, pending.model, pending.rows)
        pending.staged = True
        return
    if connection.dialect.name == "sqlite" and not connection.connection.dbapi_connection.in_transaction:
        # As in append_many: the process lock, then the database's write lock before anything is read. (A
        # session that has written already holds that write lock: it needs neither.)
        lock = _local_locks[pending.model.CHAIN]
        lock.acquire()
        pending.lock = lock
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    # The caller's writes first: on PostgreSQL, a row of theirs that another transaction holds is waited for
    # before the head is locked, not while every other writer of the chain waits behind this one.
    session.flush()
    _write(connection, pending.model, pending.rows)
    pending.staged = True


@event.listens_for(Session, "after_commit")
def _pending_committed(session: Session) -> None:
    pending = session.info.get(_PENDING)
    if pending is not None and pending.staged:
        pending.committed = True
        pending.release()
        if pending.ticket is not None:
            sequencer.committed(pending.ticket)
        del session.info[_PENDING]


@event.listens_for(Session, "after_rollback")
def _pending_rolled_back(session: Session) -> None:
    pending = session.info.get(_PENDING)
    if pending is not None and pending.staged:
        pending.staged = False  # rolled back with the transaction: the next commit writes them again
        pending.release()
        if pending.ticket is not None:
            sequencer.discard(pending.ticket)
            pending.ticket = None


def _write(connection: Connection, model: type, rows: list[dict], *, prepared: bool = False) -> list[dict]:
    """Insert `rows` after the chain's head (locked here) and move the head; returns the rows as inserted.

    Plain rows and Core statements rather than ORM objects: the hash needs every value before the INSERT, so a
    unit of work has nothing left to decide, and its bookkeeping was most of the time spent logging a prefill.
    `prepared` rows (the sequencer's, sequencer.prepare) are complete already, with their id and the time
    their writer logged them (`recorded_at`).
    """
    seq, head_hash, tree_size = _locked_head(connection, model)
    # A chain whose tree lags its records (records written before the tree existed) catches up first.
    leaves = _leaves_of_records(connection, model, tree_size, seq) if tree_size < seq else []
    written, new_leaves = _linked(model, rows, seq, head_hash, prepared=prepared)
    leaves += new_leaves
    seq, head_hash = written[-1]["seq"], written[-1]["record_hash"]
    try:
        connection.execute(model.__table__.insert(), written)
    except IntegrityError:
        if not _head_behind(connection, model, seq - len(written)):
            raise  # a record of the caller's that breaks a constraint
        # The head was rolled back behind its records: appending would fork the chain. Never overwrite history.
        log.error("chain %s: the head row is behind its records; run `flask audit verify`", model.CHAIN)
        raise ChainUnavailable() from None
    try:
        tree.extend(connection, model.CHAIN, seq - len(leaves), leaves)
    except IntegrityError:
        # Nodes beyond the head: the head (or the tree's size) was rolled back. As above, never overwrite.
        log.error("chain %s: its Merkle tree holds nodes beyond the head; run `flask audit verify`", model.CHAIN)
        raise ChainUnavailable() from None
    connection.execute(_HEADS.update().where(_HEADS.c.chain == model.CHAIN)
                       .values(seq=seq, head_hash=head_hash, tree_size=seq))
    return written


def _linked(model: type, rows: list[dict], seq: int, head_hash: str, *, prepared: bool = False
            ) -> tuple[list[dict], list[bytes]]:
    """`rows` as records after (seq, head_hash): their seq, prev_hash, leaf salt and record_hash, and their leaf
    hashes. `prepared` rows are complete already; others are checked and completed here."""
    encode = _canonical_encoder()
    # Every salt of the batch from one read of the system's CSPRNG: each os.urandom releases and takes back
    # the GIL, which under load costs the sequencer more than the bytes.
    salts = os.urandom(16 * len(rows)).hex()
    written, leaves = [], []
    for offset, fields in enumerate(rows):
        row = dict(fields) if prepared else {**completed(model, fields), "recorded_at": utcnow()}
        seq += 1
        row["seq"] = seq
        row["prev_hash"] = head_hash
        row["leaf_salt"] = salts[32 * offset:32 * offset + 32]
        # The model's own chain_payload, read from the row's values (the verifier calls it on the stored row);
        # its canonical JSON encoded once for both hashes.
        body = encode(payload_of(model, row)).encode("utf-8")
        row["record_hash"] = head_hash = records.record_hash_of(head_hash, body)
        leaves.append(records.record_leaf_hash_of(bytes.fromhex(row["leaf_salt"]), body))
        written.append(row)
    return written, leaves


def payload_of(model: type, row: Mapping[str, Any]) -> dict:
    """What a record's hashes are taken over, from its row's values (a mapping of column → value)."""
    return model.chain_payload(SimpleNamespace(**row, CHAIN=model.CHAIN, HASHED_FIELDS=model.HASHED_FIELDS))


def _leaves_of_records(connection: Connection, model: type, after: int, up_to: int) -> list[bytes]:
    """The leaf hashes of the records after seq `after` up to `up_to`, from the rows as stored."""
    table = model.__table__
    rows = connection.execute(
        select(table).where(table.c.seq > after, table.c.seq <= up_to).order_by(table.c.seq)
    ).mappings()
    return [records.record_leaf_hash(bytes.fromhex(row["leaf_salt"]), payload_of(model, row)) for row in rows]


_canonical_encoder = cache(records.canonical_encoder)


@cache
def _columns(model: type) -> tuple[dict[str, None], list[tuple[str, Any]]]:
    """Every column of the model's table (all None) and the Python-side defaults (such as the id) to fill."""
    keys, defaults = {}, []
    for column in model.__table__.columns:
        keys[column.key] = None
        default = column.default
        if default is not None and (getattr(default, "is_scalar", False) or getattr(default, "is_callable", False)):
            defaults.append((column.key, default))
    return keys, defaults


def completed(model: type, fields: dict) -> dict:
    """`fields` with every other column of `model` filled in (its Python-side default, else None); TypeError
    for a column the model has not."""
    keys, defaults = _columns(model)
    unknown = fields.keys() - keys.keys()
    if unknown:
        raise TypeError(f"{model.__name__} has no column(s) {sorted(unknown)}")
    row = {**keys, **fields}
    for key, default in defaults:
        if row[key] is None:
            row[key] = default.arg(None) if default.is_callable else default.arg
    return row


def _head_behind(failed: Connection, model: type, head_seq: int) -> bool:
    """Whether the chain holds records past `head_seq` (read on another connection of the same engine: the
    failed transaction can read nothing more on PostgreSQL)."""
    with failed.engine.connect() as connection:
        return (connection.execute(select(func.max(model.seq))).scalar() or 0) > head_seq


class _HeadLost(Exception):
    """(Inside `_locked_head`: the chain has records, but its head row had to be created.)"""


def _locked_head(connection: Connection, model: type) -> tuple[int, str, int]:
    """(seq, head_hash, tree_size) of the chain's head row, locked for this transaction; created on the first record.

    A chain that has records but no head lost its head (deleted with the tail, or by hand): starting a new
    chain over the old records would hide that, so it is ChainUnavailable until an operator has looked.
    """
    chain = model.CHAIN
    query = select(_HEADS.c.seq, _HEADS.c.head_hash, _HEADS.c.tree_size).where(_HEADS.c.chain == chain) \
        .with_for_update()
    head = connection.execute(query).first()
    if head is None:
        try:
            # Two first writers may race to create it: one wins, both go on. Records are looked for only once
            # the head is ours: before, another first writer's head and records could commit between our two
            # reads and look like records without a head.
            with connection.begin_nested():
                connection.execute(_HEADS.insert().values(chain=chain, seq=0, head_hash=GENESIS))
                if connection.execute(select(func.max(model.seq))).scalar() is not None:
                    raise _HeadLost
        except IntegrityError:
            pass
        except _HeadLost:
            log.error("chain %s has records but no head row; run `flask audit verify`", chain)
            raise ChainUnavailable() from None
        head = connection.execute(query).one()
    return head.seq, head.head_hash, head.tree_size
