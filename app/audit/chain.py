"""Tamper-evident, append-only logs: one shared implementation for every audit chain.

Each record carries `seq` (1, 2, 3… per chain), `prev_hash` (the previous record's hash; 64 zeros for the
first) and `record_hash` = SHA-256 over `prev_hash` and the canonical JSON of the record (sorted keys, no
spaces, UTF-8, times as UTC ISO 8601 with a `Z`). Changing a field, deleting a row or reordering rows breaks
the chain at the first affected record, which `verify_chain` reports.

Writes are serialized per chain: the chain's head row in `audit_chain_heads` is locked (`SELECT … FOR UPDATE`
on PostgreSQL) in the writer's transaction, and a process-local lock covers SQLite, which has no row locks
and serializes writers itself. A unique (seq) constraint per chain is the last safety net.
The application never updates or deletes a record; only `append` writes them.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.extensions import db
from app.models.audit import ChainHead
from app.models.base import utcnow

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


class ChainedRecord:
    """Mixin contract for a log model: `CHAIN` names the chain; `chain_payload()` is what gets hashed.

    Models define columns `seq`, `prev_hash`, `record_hash`, `recorded_at` and the fields listed in
    `HASHED_FIELDS`; every hashed field is a column, so the verifier can recompute hashes from rows alone.
    """

    CHAIN: str = ""
    HASHED_FIELDS: tuple[str, ...] = ()

    def chain_payload(self) -> dict:
        payload = {name: getattr(self, name) for name in self.HASHED_FIELDS}
        payload.update(chain=self.CHAIN, seq=self.seq, recorded_at=self.recorded_at)
        return payload


def append(model: type, **fields) -> Any:
    """Append one record to `model`'s chain and commit it in a transaction of its own.

    Callers pass only the record's own fields; seq, hashes and time are set here. The record is committed
    before this returns, independently of the caller's unit of work, so a later failure in the request
    cannot lose the log line (and an audit write failure raises, so nothing is done unlogged).
    """
    chain = model.CHAIN
    # Own session and connection: independent of the request's transaction. Callers must not hold an
    # uncommitted write of their own on SQLite at this point (SQLite allows one writer at a time).
    with _local_locks[chain]:
        with Session(db.engine, expire_on_commit=False) as writer:
            with writer.begin():
                head = _locked_head(writer, chain)
                record = model(**fields)
                record.seq = head.seq + 1
                record.prev_hash = head.head_hash
                record.recorded_at = utcnow()
                record.record_hash = record_hash(record.prev_hash, record.chain_payload())
                writer.add(record)
                head.seq = record.seq
                head.head_hash = record.record_hash
            writer.expunge(record)
    return record


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
    expected_prev = GENESIS
    expected_seq = 1
    checked = 0
    last_seq = 0
    while True:
        rows = reader.scalars(
            select(model).where(model.seq > last_seq).order_by(model.seq).limit(batch_size)
        ).all()
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
    head = reader.get(ChainHead, model.CHAIN)
    if head is not None and (head.seq != checked or head.head_hash != expected_prev):
        # Rows deleted from the end leave an intact but shorter chain: the head row remembers the length.
        return VerifyResult(False, checked, {"seq": checked + 1, "id": None,
                                             "reason": f"chain ends at seq {checked}, head says {head.seq}"},
                            expected_prev)
    return VerifyResult(True, checked, None, expected_prev)
