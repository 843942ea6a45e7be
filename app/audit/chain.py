"""Tamper-evident, append-only logs: one shared implementation for every audit chain.

Each record carries `seq` (1, 2, 3… per chain), `prev_hash` (the previous record's hash; 64 zeros for the
first) and `record_hash` = SHA-256 over `prev_hash` and the canonical JSON of the record (sorted keys, no
spaces, UTF-8, times as UTC ISO 8601 with a `Z`). Changing a field, deleting a row or reordering rows breaks
the chain at the first affected record, which `verify_chain` reports.

Writes are serialized per chain: the chain's head row in `audit_chain_heads` is locked (`SELECT … FOR UPDATE`
on PostgreSQL) in the writer's transaction. SQLite has no row locks, so there the writer's transaction starts
with `BEGIN IMMEDIATE`, which takes the database's write lock before the head is read (two processes cannot
read the same head), and a process-local lock keeps one process's threads from queueing on that lock. A unique
(seq) constraint per chain table is the last safety net.
The application never updates or deletes a record; only `append` / `append_many` write them.

`verify_chain` reads the head first and checks the records up to it, so records appended while it runs are
neither reported as broken nor counted; the head row also reveals records deleted from the end of a chain.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.extensions import db
from app.models.audit import ChainedRecord, ChainHead
from app.models.base import utcnow

__all__ = ["ChainedRecord", "VerifyResult", "append", "append_many", "verify_chain"]

GENESIS = "0" * 64
_local_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)


def _json_default(value: Any):
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"not JSON-serialisable in an audit record: {type(value).__name__}")


def iso_utc(value: datetime) -> str:
    """UTC ISO 8601 with microseconds and `Z`: one spelling per instant, so hashes are reproducible."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(payload: dict) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the bytes a record's hash is taken over."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_json_default).encode("utf-8")


def record_hash(prev_hash: str, payload: dict) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + canonical_json(payload)).hexdigest()


def append(model: type, **fields) -> Any:
    """Append one record to `model`'s chain and commit it in a transaction of its own.

    Callers pass only the record's own fields; seq, hashes and time are set here. The record is committed
    before this returns, independently of the caller's unit of work, so a later failure in the request
    cannot lose the log line (and an audit write failure raises, so nothing is done unlogged).
    """
    return append_many(model, [fields])[0]


def append_many(model: type, rows: list[dict]) -> list[Any]:
    """Append several records to `model`'s chain, in order, in one transaction (all or none are written).

    One lock of the head and one commit for a batch: the prefill logs all its connector calls at once.
    """
    if not rows:
        return []
    chain = model.CHAIN
    # Own session and connection: independent of the request's transaction. Callers must not hold an
    # uncommitted write of their own on SQLite at this point (SQLite allows one writer at a time).
    with _local_locks[chain]:
        with Session(db.engine, expire_on_commit=False) as writer:
            with writer.begin():
                if writer.get_bind().dialect.name == "sqlite":
                    writer.execute(text("BEGIN IMMEDIATE"))  # the write lock, before the head is read
                head = _locked_head(writer, chain)
                records = []
                for fields in rows:
                    record = model(**fields)
                    _apply_defaults(record)
                    record.seq = head.seq + 1
                    record.prev_hash = head.head_hash
                    record.recorded_at = utcnow()
                    record.record_hash = record_hash(record.prev_hash, record.chain_payload())
                    writer.add(record)
                    head.seq = record.seq
                    head.head_hash = record.record_hash
                    records.append(record)
            for record in records:
                writer.expunge(record)
    return records


def _apply_defaults(record) -> None:
    """Fill Python-side column defaults (such as the id) now: the hash is taken before the row is flushed."""
    for column in record.__table__.columns:
        default = column.default
        if default is None or not getattr(default, "is_scalar", False) and not getattr(default, "is_callable", False):
            continue
        if getattr(record, column.key, None) is None:
            setattr(record, column.key, default.arg(None) if default.is_callable else default.arg)


def _locked_head(writer: Session, chain: str) -> ChainHead:
    """The chain's head row, locked for this transaction; created on the chain's first record."""
    query = select(ChainHead).where(ChainHead.chain == chain).with_for_update()
    head = writer.execute(query).scalar_one_or_none()
    if head is None:
        try:
            with writer.begin_nested():  # two first writers may race to create it: one wins, both go on
                writer.add(ChainHead(chain=chain, seq=0, head_hash=GENESIS))
        except IntegrityError:
            pass
        head = writer.execute(query).scalar_one()
    return head


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    first_broken: dict | None
    head_hash: str


def verify_chain(model: type, batch_size: int = 5000) -> VerifyResult:
    """Recompute the chain from its rows; report the first record whose link or hash does not hold."""
    with Session(db.engine) as reader:  # its own session: never detaches the request's objects
        return _verify(reader, model, batch_size)


def _verify(reader: Session, model: type, batch_size: int) -> VerifyResult:
    # The head first: a record is committed together with the head that counts it, so every record up to the
    # head's seq is visible below, and records appended meanwhile (seq beyond it) are left for the next run.
    head = reader.get(ChainHead, model.CHAIN)
    head_seq, head_hash = (head.seq, head.head_hash) if head is not None else (None, None)
    reader.expunge_all()
    expected_prev = GENESIS
    expected_seq = 1
    checked = 0
    last_seq = 0
    while True:
        query = select(model).where(model.seq > last_seq)
        if head_seq is not None:
            query = query.where(model.seq <= head_seq)
        rows = reader.scalars(query.order_by(model.seq).limit(batch_size)).all()
        if not rows:
            break
        for row in rows:
            reason = None
            if row.seq != expected_seq:
                reason = f"missing record(s): expected seq {expected_seq}, found {row.seq}"
            elif row.prev_hash != expected_prev:
                reason = "prev_hash does not match the previous record's hash"
            elif record_hash(row.prev_hash, row.chain_payload()) != row.record_hash:
                reason = "record_hash does not match the record's contents"
            if reason:
                return VerifyResult(False, checked, {"seq": row.seq, "id": row.id, "reason": reason},
                                    expected_prev)
            checked += 1
            expected_prev = row.record_hash
            expected_seq += 1
        last_seq = rows[-1].seq
        reader.expunge_all()  # keeps memory flat over millions of records
    if head_seq is None:
        if checked:
            # Records without a head row: the head was deleted (or never written by `append`).
            return VerifyResult(False, checked, {"seq": checked, "id": None,
                                                 "reason": "the chain's head row is missing"}, expected_prev)
    elif checked != head_seq or head_hash != expected_prev:
        # Rows deleted from the end leave an intact but shorter chain: the head row remembers the length.
        return VerifyResult(False, checked, {"seq": checked + 1, "id": None,
                                             "reason": f"chain ends at seq {checked}, head says {head_seq}"},
                            expected_prev)
    return VerifyResult(True, checked, None, expected_prev)
