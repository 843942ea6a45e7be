"""The rows' side of the sequencer: checking records before they are queued, and the SQL that queues them and
chains a batch in one statement."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError

from app.ledger import chain
from app.ledger.models import ChainHead, PendingRecord, TreeNode
from app.modelbase import UTCDateTime, utcnow

log = logging.getLogger(__name__)
# Record columns the sequencer sets: never taken from a writer's fields.
CHAIN_COLUMNS = frozenset({"seq", "prev_hash", "record_hash", "leaf_salt", "recorded_at"})
NOTIFY_RECORDS = 30  # records described per NOTIFY payload (~210 bytes each)

PENDING = PendingRecord.__table__
_HEADS = ChainHead.__table__
_NODES = TreeNode.__table__


class InvalidRecord(IntegrityError):
    """A record that breaks a rule of its table (type, NOT NULL, length), refused before it is queued: once
    queued, a record must be one the sequencer can insert."""

    def __init__(self, model: type, problem: str) -> None:
        super().__init__(f"append to {model.__tablename__}", None, ValueError(problem))




@dataclass(frozen=True)
class _Check:
    key: str
    kind: str  # datetime, bool, int, float, str, json, any
    nullable: bool
    length: int | None


@cache
def _checks(model: type) -> tuple[_Check, ...]:
    checks = []
    for column in model.__table__.columns:
        if column.key in CHAIN_COLUMNS:
            continue
        kind, kind_type = "any", column.type
        if isinstance(kind_type, UTCDateTime):
            kind = "datetime"
        elif isinstance(kind_type, sa.Boolean):
            kind = "bool"
        elif isinstance(kind_type, sa.Integer):
            kind = "int"
        elif isinstance(kind_type, sa.Float):
            kind = "float"
        elif isinstance(kind_type, sa.String):
            kind = "str"
        elif isinstance(kind_type, sa.JSON):
            kind = "json"
        checks.append(_Check(column.key, kind, bool(column.nullable), getattr(kind_type, "length", None)))
    return tuple(checks)


def _problem(check: _Check, value: Any) -> str | None:
    if value is None:
        return None if check.nullable else "must not be null"
    kind = check.kind
    if kind == "str":
        if not isinstance(value, str):
            return f"must be a string, got {type(value).__name__}"
        if check.length is not None and len(value) > check.length:
            return f"longer than {check.length} characters"
    elif kind == "int" and (not isinstance(value, int) or isinstance(value, bool)):
        return f"must be an integer, got {type(value).__name__}"
    elif kind == "float" and (not isinstance(value, int | float) or isinstance(value, bool)):
        return f"must be a number, got {type(value).__name__}"
    elif kind == "bool" and not isinstance(value, bool):
        return f"must be true or false, got {type(value).__name__}"
    elif kind == "datetime" and (not isinstance(value, datetime) or value.tzinfo is None):
        return "must be a timezone-aware datetime"
    elif kind == "json":
        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            return f"is not JSON: {exc}"
    return None


def prepare(model: type, rows: list[dict]) -> list[dict]:
    """The rows as they will be inserted, but for the chain's own columns: checked, with their ids and the
    writer's time (`recorded_at`). Raises TypeError for an unknown column, InvalidRecord for a bad value."""
    checks = _checks(model)
    now = utcnow()
    prepared = []
    for fields in rows:
        row = chain.completed(model, fields)
        for check in checks:
            problem = _problem(check, row[check.key])
            if problem:
                raise InvalidRecord(model, f"{model.__name__}.{check.key} {problem}")
        row["recorded_at"] = now
        prepared.append(row)
    return prepared


def _encoded(model: type, row: dict) -> dict:
    """A row's own fields as the queue keeps them (JSON values; times as UTC ISO 8601)."""
    fields = {}
    for check in _checks(model):
        if check.key == "id":
            continue
        value = row[check.key]
        fields[check.key] = chain.iso_utc(value) if check.kind == "datetime" and value is not None else value
    return fields


def decode_row(model: type, record_id: str, fields: dict, written_at: datetime) -> dict:
    keys, _ = chain._columns(model)
    row = {**keys, **fields, "id": record_id, "recorded_at": written_at}
    for check in _checks(model):
        if check.kind == "datetime" and isinstance(row[check.key], str):
            row[check.key] = datetime.fromisoformat(row[check.key].replace("Z", "+00:00"))
    return row


@cache
def _queue_statement(model: type) -> sa.Insert:
    """INSERT of queued rows that inserts nothing when the chain's head is missing or behind its records (one
    statement: one snapshot, in which a head and its records are always committed together).

    The rows come as one JSON array (`queue_rows`): one parameter, encoded by the json module's C encoder, where
    arrays of strings would be quoted element by element by the driver (most of the time a batch took)."""
    table = model.__table__
    rows = sa.func.json_array_elements(sa.cast(sa.bindparam("queued_rows", type_=sa.Text), postgresql.JSON)) \
        .table_valued("value", with_ordinality="ord").render_derived(name="u")
    head = sa.select(_HEADS.c.seq).where(_HEADS.c.chain == sa.bindparam("chain_name")).scalar_subquery()
    newest = sa.select(sa.func.coalesce(sa.func.max(table.c.seq), 0)).scalar_subquery()
    select = (sa.select(sa.bindparam("chain_name", type_=sa.String),
                        rows.c.value.op("->>")(sa.literal_column("'id'")),
                        rows.c.value.op("->")(sa.literal_column("'fields'")),
                        sa.cast(rows.c.value.op("->>")(sa.literal_column("'at'")), sa.DateTime(timezone=True)))
              .where(sa.func.coalesce(head, 0) >= newest).order_by(rows.c.ord))
    # RETURNING: the rows inserted are counted from it (an INSERT … SELECT has no reliable rowcount here).
    return PENDING.insert().from_select(["chain", "record_id", "fields", "written_at"], select) \
        .returning(PENDING.c.id)


@cache
def _queue_and_notify_statement(model: type) -> sa.Select:
    """`_queue_statement` and a NOTIFY to the leader, in one statement (the worker's own flush, autocommitted)."""
    queued = _queue_statement(model).cte("queued")
    return sa.select(sa.select(sa.func.count()).select_from(queued).scalar_subquery(),
                     sa.func.pg_notify(sa.bindparam("channel", type_=sa.String), ""))


def queue_rows(connection: Connection, model: type, rows: list[dict], *, notify: str | None = None) -> None:
    """Queue prepared rows in the connection's transaction; ChainUnavailable when the head is broken.
    `notify`: also NOTIFY this channel, in the same statement."""
    params = {"chain_name": model.CHAIN, "queued_rows": json.dumps(
        [{"id": row["id"], "fields": _encoded(model, row), "at": chain.iso_utc(row["recorded_at"])} for row in rows],
        ensure_ascii=False, separators=(",", ":"))}
    if notify is None:
        inserted = len(connection.execute(_queue_statement(model), params).all())
    else:
        inserted = connection.execute(_queue_and_notify_statement(model), {**params, "channel": notify}).scalar()
    if inserted != len(rows):
        log.error("chain %s: the head row is missing or behind its records; run `flask audit verify`", model.CHAIN)
        raise chain.ChainUnavailable()


def records_json(model: type, rows: list[dict]) -> str:
    """The records as `batch_statement` takes them: a JSON array of objects, column name → value."""
    columns = [(column.name, column.key, isinstance(column.type, UTCDateTime)) for column in model.__table__.columns]
    return json.dumps([{name: (chain.iso_utc(row[key]) if is_time and row[key] is not None else row[key])
                        for name, key, is_time in columns} for row in rows],
                      ensure_ascii=False, separators=(",", ":"), allow_nan=False)


@cache
def batch_statement(model: type) -> sa.Select:
    """A whole batch in one statement: move the head from (old_seq, old_hash) to (new_seq, new_hash) — only if
    it is still there — and, only then, insert the records and their tree nodes and delete their queued rows;
    NOTIFY the batch. It returns one row when the head moved, none when it was not where it should be.

    The head's UPDATE comes first (the other parts read its result): its row lock is taken before any record is
    inserted, in the same order as every direct writer's, so a direct writer racing a sequencer (a process with
    AUDIT_SEQUENCER=off) waits for it instead of deadlocking with it. Records and nodes come as JSON arrays
    (one parameter each, see `_queue_statement`), the records turned into rows of their table by
    json_populate_recordset. No bind parameter is named like a column: SQLAlchemy would take it for a value to
    SET or INSERT."""
    table = model.__table__
    head = (_HEADS.update()
            .where(_HEADS.c.chain == sa.bindparam("chain_name"), _HEADS.c.seq == sa.bindparam("old_seq"),
                   _HEADS.c.head_hash == sa.bindparam("old_hash"), _HEADS.c.tree_size == sa.bindparam("old_seq"))
            .values(seq=sa.bindparam("new_seq"), head_hash=sa.bindparam("new_hash"),
                    tree_size=sa.bindparam("new_seq"))
            .returning(_HEADS.c.chain).cte("head"))
    moved = sa.select(head.c.chain).exists()
    row_type = sa.literal_column("NULL::" + postgresql.dialect().identifier_preparer.format_table(table))
    values = sa.func.json_populate_recordset(row_type, sa.cast(sa.bindparam("records", type_=sa.Text),
                                                                 postgresql.JSON)) \
        .table_valued(*(column.name for column in table.columns)).alias("r")
    # `AS r`, not `AS r(col, …)`: a column list would name the record type's columns by position, and a table
    # made by migrations has its columns in the order they were added, not the model's (each one added later
    # would take another's name and type).
    records = table.insert().from_select(
        list(table.columns), sa.select(*(values.c[column.name] for column in table.columns)).where(moved)
    ).cte("records")
    node_values = sa.func.json_to_recordset(sa.cast(sa.bindparam("nodes", type_=sa.Text), postgresql.JSON)) \
        .table_valued(sa.column("level", sa.SmallInteger), sa.column("idx", sa.BigInteger),
                      sa.column("hash", sa.Text)).render_derived(name="n", with_types=True)
    nodes = _NODES.insert().from_select(
        ["chain", "level", "idx", "hash"],
        sa.select(sa.bindparam("chain_name", type_=sa.String), node_values.c.level, node_values.c.idx,
                  sa.func.decode(node_values.c.hash, "hex")).where(moved)).cte("nodes")
    dequeued = PENDING.delete().where(
        PENDING.c.id == sa.any_(sa.bindparam("pending", type_=postgresql.ARRAY(sa.BigInteger))), moved
    ).cte("dequeued")
    payloads = sa.func.unnest(sa.bindparam("payloads", type_=postgresql.ARRAY(sa.Text))) \
        .table_valued("payload").render_derived(name="p")
    # And the rows queued meanwhile (in the statement's snapshot, but for those it dequeues): the next batch's,
    # read in the same round trip instead of one of their own.
    waiting = (sa.select(PENDING.c.id, PENDING.c.record_id, PENDING.c.fields, PENDING.c.written_at)
               .where(PENDING.c.chain == sa.bindparam("chain_name"), PENDING.c.error.is_(None),
                      PENDING.c.id != sa.all_(sa.bindparam("pending", type_=postgresql.ARRAY(sa.BigInteger))))
               .order_by(PENDING.c.id).limit(sa.bindparam("next_limit", type_=sa.Integer)).subquery("q"))
    queued_next = sa.select(sa.func.json_agg(postgresql.aggregate_order_by(
        sa.func.json_build_array(waiting.c.id, waiting.c.record_id, waiting.c.fields, waiting.c.written_at),
        waiting.c.id))).scalar_subquery()
    return sa.select(sa.func.pg_notify(sa.bindparam("channel", type_=sa.String), payloads.c.payload),
                     sa.type_coerce(queued_next, sa.JSON).label("queued_next")
                     ).select_from(head).join(payloads, sa.true()).add_cte(records, nodes, dequeued)


def sequenced_payloads(written: list[dict], queued_ids: set[str]) -> list[str]:
    """The NOTIFY payloads of a batch on the chain's `sequenced` channel: the new head's seq and, for each
    record that came through the queue (another process waits for it), what its waiter needs —
    [id, seq, prev_hash, record_hash, leaf_salt] — so that no process has to read its records back. At most
    NOTIFY_RECORDS records per payload (PostgreSQL takes 8,000 bytes)."""
    entries = [[row["id"], row["seq"], row["prev_hash"], row["record_hash"], row["leaf_salt"]]
               for row in written if row["id"] in queued_ids]
    seq = written[-1]["seq"]
    chunks = [entries[start:start + NOTIFY_RECORDS] for start in range(0, len(entries), NOTIFY_RECORDS)] or [[]]
    return [json.dumps({"seq": seq, "records": chunk}, separators=(",", ":")) for chunk in chunks]


@dataclass(frozen=True)
class Queued:
    """A queued row as the leader reads it (from the queue, or with the batch before: `batch_statement`)."""

    id: int
    record_id: str
    fields: dict
    written_at: datetime


@dataclass(frozen=True)
class Head:
    """The head the leader last wrote, and its tree's frontier: all a batch needs to follow on from it."""

    seq: int
    hash: str
    frontier: dict[tuple[int, int], bytes]


