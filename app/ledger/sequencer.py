"""The chains' sequencer on PostgreSQL: writers queue records, one process per chain chains them in batches.

Why: a direct append (app/ledger/chain.py `_write`, still the path on SQLite and with AUDIT_SEQUENCER=off)
holds the chain's head row for its whole transaction, and a process lock besides, so a chain takes 550–690
records/s whatever the number of writers. Here only the chaining itself is done one batch at a time, by one
process; figures in docs/benchmarks.md, "Audit-log appends" (bench/ledger_appends.py).

Writing. A writer checks its rows against the table (`prepare`: type, NOT NULL and length of every column —
a row the database refused later would stop the chain), gives each its id (IdMixin's new_id: callers can refer
to the record at once) and its `recorded_at` (the writer's time, when the record is logged), then:
- `appending` (the caller's transaction): the rows go into `audit_pending` in that transaction (`stage`), so
  they are durable exactly when the caller's writes are, and vanish with them on a rollback;
- `append`/`append_many` (a transaction of their own): the rows are handed to this process's worker of the
  chain (`submit`), which writes all the rows handed to it meanwhile in one statement — into the chain when
  this process leads it, else into `audit_pending`. Why not a transaction per call: measured on the 2-core
  bench machine, 32 writers each committing its own INSERT of the bare record through SQLAlchemy reach only
  2,000–2,900/s (the round trips and Python of each transaction, not the database's work); the sequencer
  would add to that, never go past it. Each call's rows are still written all together or not at all.
Queueing checks, in the INSERT itself (one statement: one snapshot, in which a head and its records are always
committed together), that the chain's head is there and not behind its records: a chain whose head was
deleted or rolled back refuses writes at once (ChainUnavailable, 503), as the direct path does, instead of
queueing records that could never be chained.

Sequencing. Each process that writes a chain runs one worker thread for it, on a connection of its own
(named `zsb-audit-sequencer <pid>` in pg_stat_activity). The worker holding the chain's advisory lock
(`pg_try_advisory_lock`, a session lock: released with its connection, so a leader that dies, or whose
connection does, is replaced) is the chain's one sequencer; the others try every CANDIDACY_SECONDS, at once
when a leader resigns. A batch is one statement in autocommit, so one round trip and one transaction
(`_batch_statement`; before it was written so, a batch waited on the database 12 times): it moves the head
from the head this leader last wrote — only if it is still that — and only then inserts the records
(hashed here: seq, prev_hash, record_hash, leaf_salt) and the Merkle tree's new nodes (computed from the tree's
frontier the leader keeps), deletes the queued rows it chained, NOTIFYs, and reads the rows queued meanwhile
for the next batch. The first batch of a leader, and any batch whose head is not as it was left (or that the
database refuses), is done the careful way instead: `chain._write`, the direct path's own code, which locks
the head FOR UPDATE, catches the tree up if it lags, and refuses to fork a chain whose head is missing or
behind its records. Both take the head's row lock before inserting, as direct writers do, so a process with
AUDIT_SEQUENCER=off on the same database only waits for the sequencer. Nothing else happens under the lock: no
network, no waiting for writers. A queued row the database refuses all the same is kept in the queue with its
error (for an operator), out of the chain's way; a local call's refused rows raise in the caller.

Wake-ups: writers in the leader's process wake it through a pipe; a worker that queues rows NOTIFYs the
chain's `pending` channel in the same statement, and the leader LISTENs to it; the leader still reads the
queue at least every PENDING_POLL_SECONDS (rows of a process that died before it could say so). The leader
also VACUUMs the queue every VACUUM_AFTER_ROWS rows from a thread of its own, and reads it by index only
(see `_connect`), so the queue stays cheap to read whatever autovacuum does.

Reading one's writes: by default every append returns only once its records are in the chain — `append` and
`append_many` return them with their seq and hashes, and the face decision, the auditors' reads and
verification, the citizen's own data-access log and the tests read the tables straight after an action — or
raises ChainUnavailable (503 audit_log_unavailable) after AUDIT_SEQUENCE_WAIT_SECONDS, the records staying
queued (durable: chained when a sequencer runs again). Measured, the wait costs an append a batch or two
(the "until durable" and "until sequenced" latencies in docs/benchmarks.md) and no throughput, and without
it readers would each have to call `settle`, so it is the default; `wait=False` returns once the records are
durable. In the leader's process a waiter is answered from its batch; in others from the leader's NOTIFY on
the chain's `sequenced` channel, which carries the chain columns of every record that came through the queue;
a waiter older than SWEEP_SECONDS (a notification missed while reconnecting) looks its records up instead.

`settle(model)` waits until everything queued for a chain when it is called is in the chain (for a reader
of records written with wait=False, or left queued by a process that died).

SQLite keeps the direct path (AUDIT_SEQUENCER=auto means PostgreSQL only): it has one writer at a time anyway.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import select
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.pool import NullPool

from app.config import ConfigError
from app.extensions import db
from app.ledger import chain, tree
from app.ledger.models import ChainHead, PendingRecord, TreeNode
from app.modelbase import UTCDateTime, utcnow
from tlog import merkle

log = logging.getLogger(__name__)

MODES = ("auto", "off")
EXTENSION = "audit_sequencer"
BATCH = 1000  # records per sequencing transaction at most
CANDIDACY_SECONDS = 0.25  # how often a worker that is not the leader tries to become it
PENDING_POLL_SECONDS = 1.0  # the leader reads the queue at least this often unprompted
SWEEP_SECONDS = 0.2  # a waiter older than this is looked up in the records (a notification missed)
IDLE_EXIT_SECONDS = 30.0  # a worker with nothing to do for this long stops (its process starts one when needed)
RETRY_SECONDS = 0.5  # after a broken chain or a lost connection
NOTIFY_RECORDS = 30  # records described per NOTIFY payload (~210 bytes each)
# The leader vacuums the queue after this many of its rows were chained, at most this often.
VACUUM_AFTER_ROWS = 10_000
VACUUM_MIN_SECONDS = 5.0
# Record columns the sequencer sets: never taken from a writer's fields.
CHAIN_COLUMNS = frozenset({"seq", "prev_hash", "record_hash", "leaf_salt", "recorded_at"})

_PENDING = PendingRecord.__table__
_HEADS = ChainHead.__table__
_NODES = TreeNode.__table__


class InvalidRecord(IntegrityError):
    """A record that breaks a rule of its table (type, NOT NULL, length), refused before it is queued: once
    queued, a record must be one the sequencer can insert."""

    def __init__(self, model: type, problem: str) -> None:
        super().__init__(f"append to {model.__tablename__}", None, ValueError(problem))


def enabled(config: Mapping, dialect_name: str) -> bool:
    """Whether AUDIT_SEQUENCER puts appends on `dialect_name` through the sequencer."""
    mode = str(config.get("AUDIT_SEQUENCER") or "auto").strip().lower()
    if mode not in MODES:
        raise ConfigError(f"AUDIT_SEQUENCER must be one of {', '.join(MODES)}, got {mode!r}")
    return mode == "auto" and dialect_name == "postgresql"


def active() -> bool:
    """Whether the current app's appends go through the sequencer."""
    return enabled(current_app.config, db.engine.dialect.name)


def wait_seconds() -> float:
    return float(current_app.config.get("AUDIT_SEQUENCE_WAIT_SECONDS", 5.0))


# ------------------------------------------------------------------------------------------ writer side


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
    keys, defaults = chain._columns(model)
    checks = _checks(model)
    now = utcnow()
    prepared = []
    for fields in rows:
        unknown = fields.keys() - keys.keys()
        if unknown:
            raise TypeError(f"{model.__name__} has no column(s) {sorted(unknown)}")
        row = {**keys, **fields}
        for key, default in defaults:
            if row[key] is None:
                row[key] = default.arg(None) if default.is_callable else default.arg
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


def _decoded(model: type, record_id: str, fields: dict, written_at: datetime) -> dict:
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

    The rows come as one JSON array (`_queue`): one parameter, encoded by the json module's C encoder, where
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
    return _PENDING.insert().from_select(["chain", "record_id", "fields", "written_at"], select) \
        .returning(_PENDING.c.id)


@cache
def _queue_and_notify_statement(model: type) -> sa.Select:
    """`_queue_statement` and a NOTIFY to the leader, in one statement (the worker's own flush, autocommitted)."""
    queued = _queue_statement(model).cte("queued")
    return sa.select(sa.select(sa.func.count()).select_from(queued).scalar_subquery(),
                     sa.func.pg_notify(sa.bindparam("channel", type_=sa.String), ""))


def _queue(connection: Connection, model: type, rows: list[dict], *, notify: str | None = None) -> None:
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


def _records_json(model: type, rows: list[dict]) -> str:
    """The records as `_batch_statement` takes them: a JSON array of objects, column name → value."""
    columns = [(column.name, column.key, isinstance(column.type, UTCDateTime)) for column in model.__table__.columns]
    return json.dumps([{name: (chain.iso_utc(row[key]) if is_time and row[key] is not None else row[key])
                        for name, key, is_time in columns} for row in rows],
                      ensure_ascii=False, separators=(",", ":"), allow_nan=False)


@cache
def _batch_statement(model: type) -> sa.Select:
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
        .table_valued(*(column.name for column in table.columns)).render_derived(name="r")
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
    dequeued = _PENDING.delete().where(
        _PENDING.c.id == sa.any_(sa.bindparam("pending", type_=postgresql.ARRAY(sa.BigInteger))), moved
    ).cte("dequeued")
    payloads = sa.func.unnest(sa.bindparam("payloads", type_=postgresql.ARRAY(sa.Text))) \
        .table_valued("payload").render_derived(name="p")
    # And the rows queued meanwhile (in the statement's snapshot, but for those it dequeues): the next batch's,
    # read in the same round trip instead of one of their own.
    waiting = (sa.select(_PENDING.c.id, _PENDING.c.record_id, _PENDING.c.fields, _PENDING.c.written_at)
               .where(_PENDING.c.chain == sa.bindparam("chain_name"), _PENDING.c.error.is_(None),
                      _PENDING.c.id != sa.all_(sa.bindparam("pending", type_=postgresql.ARRAY(sa.BigInteger))))
               .order_by(_PENDING.c.id).limit(sa.bindparam("next_limit", type_=sa.Integer)).subquery("q"))
    queued_next = sa.select(sa.func.json_agg(postgresql.aggregate_order_by(
        sa.func.json_build_array(waiting.c.id, waiting.c.record_id, waiting.c.fields, waiting.c.written_at),
        waiting.c.id))).scalar_subquery()
    return sa.select(sa.func.pg_notify(sa.bindparam("channel", type_=sa.String), payloads.c.payload),
                     sa.type_coerce(queued_next, sa.JSON).label("queued_next")
                     ).select_from(head).join(payloads, sa.true()).add_cte(records, nodes, dequeued)


def _sequenced_payloads(written: list[dict], queued_ids: set[str]) -> list[str]:
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
class _Queued:
    """A queued row as the leader reads it (from the queue, or with the batch before: `_batch_statement`)."""

    id: int
    record_id: str
    fields: dict
    written_at: datetime


@dataclass(frozen=True)
class _Head:
    """The head the leader last wrote, and its tree's frontier: all a batch needs to follow on from it."""

    seq: int
    hash: str
    frontier: dict[tuple[int, int], bytes]


# ---------------------------------------------------------------------------------------------- tickets


class _Signal:
    """A one-shot flag to wait for: threading.Event's job for one waiting thread and few setters, on a bare lock
    (an Event is a Condition, which allocates and juggles a waiter lock on every wait: a tenth of the cost of
    an append's bookkeeping, measured). The flag is the truth; the lock only wakes the waiter."""

    __slots__ = ("_flag", "_lock")

    def __init__(self) -> None:
        self._flag = False
        self._lock = threading.Lock()
        self._lock.acquire()

    def set(self) -> None:
        if not self._flag:
            self._flag = True
            try:
                self._lock.release()
            except RuntimeError:  # released already by another setter
                pass

    def is_set(self) -> bool:
        return self._flag

    def wait(self, timeout: float) -> bool:
        if not self._flag and self._lock.acquire(timeout=max(timeout, 0.0)):
            try:
                self._lock.release()  # for the next waiter
            except RuntimeError:
                pass
        return self._flag


class Ticket:
    """One call's records on their way into the chain: wait for them to be durable, or in the chain."""

    def __init__(self, worker: _Worker, rows: list[dict], *, local: bool) -> None:
        self.worker = worker
        self.rows = rows
        self.local = local  # handed to the worker (own transaction), not queued by the caller
        self.taken = False  # the worker has put the rows into a transaction
        self.chained: dict[str, dict] = {}  # record id → its chain columns, as written
        self.error: BaseException | None = None
        self.created = time.monotonic()
        self.durable_at: float | None = None  # perf_counter() when the rows became durable (benchmarks)
        self.durable = _Signal()
        self.done = _Signal()
        if not rows:  # (nothing to wait for)
            self.durable.set()
            self.done.set()

    def wait(self, timeout: float) -> list[dict]:
        """The rows as written into the chain; ChainUnavailable past `timeout` seconds (the rows stay queued)."""
        if not self.done.wait(timeout):
            self.worker.abandon(self)
            if not self.done.is_set():
                log.warning("chain %s: %d record(s) not sequenced within %.1f s", self.worker.model.CHAIN,
                            len(self.rows), timeout)
                raise chain.ChainUnavailable()
        self._raise()
        return [{**row, **self.chained[row["id"]]} for row in self.rows]

    def wait_durable(self, timeout: float) -> list[dict]:
        """The rows as queued (no seq yet unless already chained), once they are committed."""
        if not self.durable.wait(timeout):
            self.worker.abandon(self)
            if not self.durable.is_set():
                raise chain.ChainUnavailable()
        self._raise()
        self.worker.forget(self)  # nobody waits for the chain
        return [{**row, **self.chained.get(row["id"], {})} for row in self.rows]

    def _raise(self) -> None:
        if isinstance(self.error, chain.ChainUnavailable):
            raise chain.ChainUnavailable()  # one of its own per waiter: the worker's is shared by many
        if self.error is not None:
            raise self.error

    def _fail(self, error: BaseException) -> None:
        self.error = error
        self.durable.set()
        self.done.set()

    def _durable(self) -> None:
        if self.durable_at is None:
            self.durable_at = time.perf_counter()
        self.durable.set()


def submit(model: type, rows: list[dict]) -> Ticket:
    """Hand rows to this process's worker of the chain, to be written in a transaction of its own."""
    return for_app().hand(model, prepare(model, rows), local=True)


def stage(connection: Connection, model: type, rows: list[dict]) -> Ticket:
    """Queue prepared rows in the caller's transaction (`appending`); call `committed` or `discard` after it."""
    _queue(connection, model, rows)
    return for_app().hand(model, rows, local=False)


def committed(ticket: Ticket) -> None:
    """The caller's transaction that queued the ticket's rows committed: they are durable; wake the leader."""
    ticket._durable()
    ticket.worker.poke(queued=True)


def discard(ticket: Ticket) -> None:
    """The caller's transaction that queued the ticket's rows rolled back: they are gone."""
    ticket.worker.forget(ticket)


def settle(model: type, timeout: float | None = None) -> None:
    """Wait until every record queued for `model`'s chain when this is called is in the chain."""
    if not active():
        return
    sequencer = for_app()
    with sequencer.engine.connect() as connection:
        ids = connection.execute(sa.select(_PENDING.c.record_id).where(
            _PENDING.c.chain == model.CHAIN, _PENDING.c.error.is_(None))).scalars().all()
        if not ids:
            return
        ticket, others = sequencer.watch(model, ids)
        ticket.worker.resolve_from(connection, [ticket])  # chained between the read and the registration
    ticket.worker.poke(queued=True)
    timeout = wait_seconds() if timeout is None else timeout
    deadline = time.monotonic() + timeout
    ticket.wait(timeout)
    for other in others:  # records someone else waits for already: their tickets say when
        if not other.done.wait(max(0.0, deadline - time.monotonic())):
            raise chain.ChainUnavailable()


# ------------------------------------------------------------------------------------------ the workers


class Sequencer:
    """One app's workers (one per chain) in this process, and the engine they connect with."""

    def __init__(self, url: sa.URL) -> None:
        self.pid = os.getpid()
        # Connections of their own, outside the app's pool: held for long, and untouched by its dispose();
        # named, so that pg_stat_activity shows which process leads (the one holding the advisory lock).
        self.engine = sa.create_engine(url, poolclass=NullPool,
                                       connect_args={"application_name": f"zsb-audit-sequencer {self.pid}"})
        self.lock = threading.Lock()
        self.workers: dict[str, _Worker] = {}
        _SEQUENCERS.add(self)

    def hand(self, model: type, rows: list[dict], *, local: bool) -> Ticket:
        """A ticket for `rows`, registered with the chain's worker (started if need be) and, when `local`,
        queued for it to write. A worker that stopped refuses it (under its own lock, which is all a writer
        takes: the sequencer's lock only to start a worker), and the next worker takes it."""
        worker = self.workers.get(model.CHAIN)
        while True:
            if worker is None:
                with self.lock:
                    worker = self.workers.get(model.CHAIN)
                    if worker is None:
                        worker = self.workers[model.CHAIN] = _Worker(self, model)
                        worker.start()
            ticket = Ticket(worker, rows, local=local)
            if worker.accept(ticket):
                break
            worker = None  # it stopped meanwhile: the next one takes the rows
        if local:
            worker.poke()
        return ticket

    def watch(self, model: type, ids: list[str]) -> tuple[Ticket, list[Ticket]]:
        """A durable ticket for those of `ids` nobody waits for yet, and the tickets of the others."""
        while True:
            worker = self.workers.get(model.CHAIN) or self.hand(model, [], local=False).worker
            with worker.lock:
                if worker.closed:
                    continue
                others = list({id(t): t for i in ids if (t := worker.waiting.get(i)) is not None}.values())
                ticket = Ticket(worker, [{"id": i} for i in ids if i not in worker.waiting], local=False)
                ticket.durable.set()
                worker._register(ticket)
                return ticket, others

    def retire(self, worker: _Worker, *, now: bool = False) -> bool:
        """Remove `worker` if it has nothing to do — for IDLE_EXIT_SECONDS unless `now` (under the lock new work
        is handed to a worker, so none can reach one that stopped)."""
        with self.lock, worker.lock:
            if not worker.idle(now=now):
                return False
            worker.closed = True
            if self.workers.get(worker.model.CHAIN) is worker:
                del self.workers[worker.model.CHAIN]
            return True

    def stop(self, timeout: float = 5.0) -> None:
        """Stop this process's workers now, giving up any chain they lead (tests; a process shutting down).
        Records not yet durable are refused (ChainUnavailable); queued ones stay for the next sequencer."""
        with self.lock:
            workers, self.workers = list(self.workers.values()), {}
        for worker in workers:
            with worker.lock:
                worker.closed = worker.stopping = True
            worker.poke()
        for worker in workers:
            worker.join(timeout)


_creating = threading.Lock()
_SEQUENCERS: weakref.WeakSet[Sequencer] = weakref.WeakSet()


def stop_all() -> None:
    """Stop the workers of every app's sequencer in this process (tests; a process shutting down)."""
    for found in list(_SEQUENCERS):
        if found.pid == os.getpid():
            found.stop()


def for_app() -> Sequencer:
    """The current app's sequencer in this process (a forked process builds its own)."""
    found = current_app.extensions.get(EXTENSION)
    if found is None or found.pid != os.getpid():
        with _creating:
            found = current_app.extensions.get(EXTENSION)
            if found is None or found.pid != os.getpid():
                found = current_app.extensions[EXTENSION] = Sequencer(db.engine.url)
    return found


def _answer(tickets: list[Ticket]) -> None:
    """Wake the waiters of `tickets` (outside the worker's lock: each wake-up takes locks of its own)."""
    for ticket in tickets:
        ticket._durable()
        ticket.done.set()


def _close_pipe(*fds: int) -> None:
    for fd in fds:
        os.close(fd)


def _lock_key(chain_name: str) -> int:
    """The advisory lock of a chain's sequencer: 64 bits of a hash of its name."""
    digest = hashlib.sha256(b"zsb-audit-sequencer\x00" + chain_name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _channel(kind: str, chain_name: str) -> str:
    return f"zsb_audit_{kind}:{chain_name}"


def _connection_lost(exc: BaseException) -> bool:
    """Whether `exc` says the connection is gone (SQLAlchemy's wrapping, or psycopg's own from `notifies`)."""
    if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError) or getattr(exc, "connection_invalidated",
                                                                                  False):
        return True
    import psycopg  # only ever reached on PostgreSQL

    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)


class _Worker(threading.Thread):
    """A process's worker of one chain: the chain's sequencer while it holds the chain's advisory lock; else it
    queues the rows handed to it, tells the leader, and answers this process's waiters when the leader has
    chained their records."""

    def __init__(self, sequencer: Sequencer, model: type) -> None:
        super().__init__(name=f"audit-sequencer-{model.CHAIN}", daemon=True)
        self.sequencer, self.model = sequencer, model
        self.key = _lock_key(model.CHAIN)
        self.lock = threading.Lock()
        self.local: deque[Ticket] = deque()  # own-transaction rows not yet taken
        self.waiting: dict[str, Ticket] = {}  # record id → the ticket waiting for it
        self.leader = False
        self.closed = False  # takes no more tickets (retired or stopping)
        self.stopping = False
        self.connection: Connection | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._woken = False
        self._queued = True  # rows may be queued: the leader reads the queue (any process may have written)
        self._tell_leader = False  # a caller of ours queued rows: NOTIFY the leader
        self._read_queue_at = 0.0
        self._candidacy_at = 0.0
        self._retry_at = 0.0
        self._active_at = time.monotonic()
        self._taken: list[Ticket] = []  # local tickets in the transaction under way
        self._head: _Head | None = None  # valid while this worker leads and nobody else moved the head
        self._prefetched: list[_Queued] | None = None  # the queue as the last batch saw it (while leading)
        self._dequeued = 0  # queued rows chained since the queue was last vacuumed
        self._vacuum_at = 0.0
        # Closed with the worker (never at exit: the daemon thread may still be using them then).
        weakref.finalize(self, _close_pipe, self._wake_r, self._wake_w).atexit = False

    # ---- called by writers (any thread)

    def accept(self, ticket: Ticket) -> bool:
        """Take `ticket` (its rows to write when local, else only to wait for): False once stopped."""
        with self.lock:
            if self.closed:
                return False
            self._register(ticket)
            if ticket.local:
                self.local.append(ticket)
            self._active_at = time.monotonic()
        return True

    def _register(self, ticket: Ticket) -> None:
        for row in ticket.rows:
            self.waiting[row["id"]] = ticket

    def forget(self, ticket: Ticket) -> None:
        with self.lock:
            for row in ticket.rows:
                if self.waiting.get(row["id"]) is ticket:
                    del self.waiting[row["id"]]

    def abandon(self, ticket: Ticket) -> None:
        """A waiter gives up: rows not yet taken are never written; taken ones still may be."""
        with self.lock:
            if ticket.local and not ticket.taken and ticket in self.local:
                self.local.remove(ticket)
                ticket._fail(chain.ChainUnavailable())
        self.forget(ticket)

    def poke(self, *, queued: bool = False) -> None:
        with self.lock:
            if queued:
                self._queued = self._tell_leader = True
            self._active_at = time.monotonic()
            if self._woken:
                return
            self._woken = True
        try:
            os.write(self._wake_w, b"\0")
        except BlockingIOError:  # the pipe is full of wake-ups already
            pass

    def idle(self, *, now: bool = False) -> bool:
        return (not self.local and not self.waiting
                and (now or time.monotonic() - self._active_at > IDLE_EXIT_SECONDS))

    # ---- the worker's thread

    def run(self) -> None:
        while True:
            if self.stopping:
                self._close(resign=True)
                with self.lock:
                    local, self.local = list(self.local), deque()
                for ticket in local:
                    ticket._fail(chain.ChainUnavailable())
                self._fail_waiting(chain.ChainUnavailable())
                return
            try:
                if self.connection is None:
                    self._connect()
                self._notifications()
                if not self.leader and time.monotonic() >= self._candidacy_at:
                    self._stand()
                busy = self._lead() if self.leader else self._follow()
                if not busy:
                    if self.sequencer.retire(self):
                        self._close(resign=True)
                        return
                    self._sleep()
            except Exception as exc:  # noqa: BLE001 - the worker must outlive any one failure
                lost = _connection_lost(exc)
                had_work = self.leader or bool(self.local or self.waiting or self._taken)
                if not lost and had_work:
                    log.exception("audit sequencer %s failed; restarting", self.model.CHAIN)
                elif not lost:  # (a database dropped under an idle worker, as tests do)
                    log.warning("audit sequencer %s stopped: %s", self.model.CHAIN, str(exc).splitlines()[0])
                elif had_work:
                    log.warning("audit sequencer %s: connection lost (%s); reconnecting", self.model.CHAIN,
                                str(exc).splitlines()[0])
                self._close(resign=False, lost=True)
                self._fail_taken(chain.ChainUnavailable())
                # Nothing waits on this worker: stop (the next append starts one) rather than retry alone.
                if self.sequencer.retire(self, now=True):
                    return
                time.sleep(RETRY_SECONDS)

    def _connect(self) -> None:
        # Autocommit: each statement is its own transaction, without a BEGIN and a COMMIT round trip each;
        # what needs several statements takes `_transaction`.
        self.connection = self.sequencer.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        # The queue is read in id order through its (chain, id) index: a plain index scan skips (and marks)
        # the entries of rows deleted since, where the bitmap scan the planner picks on stale statistics
        # visits every one of them (7 ms for 20,000, measured, between two vacuums).
        self.connection.exec_driver_sql("SET enable_bitmapscan = off")
        self.leader = False
        self._head = None
        self._prefetched = None
        self._listen("sequenced")

    def _listen(self, kind: str, *, stop: str | None = None) -> None:
        quote = self.connection.dialect.identifier_preparer.quote_identifier
        if stop:
            self.connection.exec_driver_sql(f"UNLISTEN {quote(_channel(stop, self.model.CHAIN))}")
        self.connection.exec_driver_sql(f"LISTEN {quote(_channel(kind, self.model.CHAIN))}")
        self.connection.commit()

    def _close(self, *, resign: bool, lost: bool = False) -> None:
        connection, self.connection, self.leader = self.connection, None, False
        if connection is None:
            return
        if lost:
            connection.invalidate()  # nothing to roll back or reset on a connection that is gone
            connection.close()
            return
        try:
            if resign:  # the others need not wait for their next try
                self._notify(connection, "sequenced", "resign")
                connection.commit()
            connection.close()
        except Exception:  # noqa: BLE001 - closing a connection that failed
            connection.invalidate()

    def _stand(self) -> None:
        """Try to become the chain's sequencer."""
        self._candidacy_at = time.monotonic() + CANDIDACY_SECONDS
        won = self.connection.execute(sa.select(sa.func.pg_try_advisory_lock(self.key))).scalar()
        self.connection.commit()
        if won:
            self.leader = True
            self._queued = True
            self._head = None
            self._prefetched = None
            self._listen("pending", stop="sequenced")
            log.info("audit sequencer %s: leading in process %d", self.model.CHAIN, os.getpid())
            self._sweep(force=True)  # records the previous leader chained before we listened

    def _take_local(self, limit: int) -> list[Ticket]:
        taken, count = [], 0
        with self.lock:
            while self.local and (not taken or count + len(self.local[0].rows) <= limit):
                ticket = self.local.popleft()
                ticket.taken = True
                taken.append(ticket)
                count += len(ticket.rows)
        return taken

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """A transaction of several statements on the worker's connection (autocommit otherwise)."""
        connection = self.connection
        connection.commit()  # (ends SQLAlchemy's view of the autocommitted statements before)
        connection.execution_options(isolation_level="READ COMMITTED")
        try:
            with connection.begin():
                yield connection
        finally:
            connection.execution_options(isolation_level="AUTOCOMMIT")

    def _lead(self) -> bool:
        """One batch into the chain; whether there was anything to do."""
        now = time.monotonic()
        if now < self._retry_at:
            return False
        tickets = self._take_local(BATCH)
        self._taken = tickets
        rows = [row for ticket in tickets for row in ticket.rows]
        with self.lock:
            hinted = self._queued or now >= self._read_queue_at
            self._queued = self._tell_leader = False
        queued: list = []
        limit = max(BATCH - len(rows), 1)
        prefetched, self._prefetched = self._prefetched, None
        if prefetched is not None:
            # Read with the batch before; rows queued since come with this batch's result, unless there is
            # nothing else to do (rows beyond `limit` come again with this batch's result too).
            queued = prefetched[:limit]
            read_queue = hinted and not queued and not rows
        else:
            read_queue = hinted
        if read_queue:
            self._read_queue_at = now + PENDING_POLL_SECONDS
            queued = self.connection.execute(
                sa.select(_PENDING.c.id, _PENDING.c.record_id, _PENDING.c.fields, _PENDING.c.written_at)
                .where(_PENDING.c.chain == self.model.CHAIN, _PENDING.c.error.is_(None))
                .order_by(_PENDING.c.id).limit(limit)).all()
            self.connection.commit()
        if not queued and not rows:
            self._taken = []
            return False
        self._dequeued += len(queued)
        if self._dequeued >= VACUUM_AFTER_ROWS and now >= self._vacuum_at:
            self._dequeued, self._vacuum_at = 0, now + VACUUM_MIN_SECONDS
            threading.Thread(target=self._vacuum, name=f"audit-queue-vacuum-{self.model.CHAIN}", daemon=True).start()
        decoded = [_decoded(self.model, row.record_id, row.fields, row.written_at) for row in queued] + rows
        written = self._chain_fast(queued, decoded) if self._head is not None else None
        if written is None:
            self._queued = True  # (the careful way reads no next batch: the queue is read again next time)
            try:
                with self._transaction() as connection:
                    written = self._chain(connection, queued, decoded)
            except chain.ChainUnavailable as exc:
                self._broken(exc, tickets)
                return True
            except (sa.exc.IntegrityError, sa.exc.DataError) as exc:
                self._isolate(tickets, queued, exc)
                return True
        if len(queued) >= limit:
            self._queued = True  # more where these came from
        self._taken = []
        self._chained(written)
        return True

    def _vacuum(self) -> None:
        """VACUUM the queue (every row of it is deleted within milliseconds of its insert): beside the leader,
        on a connection of its own, so that the leader's reads stay short whatever autovacuum does."""
        try:
            with self.sequencer.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.exec_driver_sql(f"VACUUM (SKIP_LOCKED) {_PENDING.name}")
        except Exception as exc:  # noqa: BLE001 - autovacuum remains; nothing depends on this one
            log.info("audit sequencer %s: vacuum of the queue failed: %s", self.model.CHAIN, exc)

    def _chain_fast(self, queued: list, rows: list[dict]) -> list[dict] | None:
        """Chain `rows` after the head this leader last wrote, in one statement (so one round trip and, in
        autocommit, one transaction): the records, their tree nodes, the queue's rows deleted, the head moved
        only if it still is the one we wrote, and the NOTIFY. None (nothing written) when the head is not as
        we left it, or the statement fails: `_chain` then does it the careful way, and says why."""
        head = self._head
        written, leaves = chain._linked(self.model, rows, head.seq, head.hash, prepared=True)
        nodes = merkle.append_nodes(head.seq, head.frontier, leaves)
        seq, head_hash = written[-1]["seq"], written[-1]["record_hash"]
        params = {
            "chain_name": self.model.CHAIN, "old_seq": head.seq, "old_hash": head.hash, "new_seq": seq,
            "new_hash": head_hash, "records": _records_json(self.model, written),
            "nodes": json.dumps([{"level": level, "idx": index, "hash": digest.hex()}
                                 for level, index, digest in nodes]),
            "pending": [row.id for row in queued], "channel": _channel("sequenced", self.model.CHAIN),
            "payloads": _sequenced_payloads(written, {row.record_id for row in queued}),
            "next_limit": BATCH,
        }
        try:
            moved = self.connection.execute(_batch_statement(self.model), params).all()
            self.connection.commit()
        except (sa.exc.IntegrityError, sa.exc.DataError, ValueError) as exc:
            self.connection.rollback()
            log.info("audit sequencer %s: batch refused (%s); checking the head", self.model.CHAIN,
                     str(exc.orig or exc).splitlines()[0])
            moved = []
        if not moved:
            self._head = None
            return None
        self._read_queue_at = time.monotonic() + PENDING_POLL_SECONDS
        self._prefetched = [_Queued(item[0], item[1], item[2], datetime.fromisoformat(item[3]))
                            for item in moved[0].queued_next or ()]
        known = {**head.frontier, **{(level, index): digest for level, index, digest in nodes}}
        self._head = _Head(seq, head_hash, {node: known[node] for node in merkle.frontier_ids(seq)})
        return written

    def _chain(self, connection: Connection, queued: list, rows: list[dict]) -> list[dict]:
        """Chain `rows` the careful way (chain._write: the head locked and checked, the tree caught up if it
        lags) in the open transaction, delete the queue's rows and NOTIFY; remember the head for `_chain_fast`."""
        written = chain._write(connection, self.model, rows, prepared=True)
        if queued:
            connection.execute(_PENDING.delete().where(
                _PENDING.c.id == sa.any_(sa.bindparam("ids", type_=postgresql.ARRAY(sa.BigInteger)))),
                {"ids": [row.id for row in queued]})
        seq = written[-1]["seq"]
        for payload in _sequenced_payloads(written, {row.record_id for row in queued}):
            self._notify(connection, "sequenced", payload)
        frontier = tree.node_hashes(connection, self.model.CHAIN, merkle.frontier_ids(seq))
        self._head = _Head(seq, written[-1]["record_hash"], frontier) \
            if len(frontier) == len(merkle.frontier_ids(seq)) else None
        return written

    def _chained(self, written: list[dict]) -> None:
        with self.lock:
            self._active_at = time.monotonic()
            done = [ticket for row in written if (ticket := self.waiting.pop(row["id"], None)) is not None
                    and self._resolve(ticket, row)]
        _answer(done)

    @staticmethod
    def _resolve(ticket: Ticket, row: Mapping) -> bool:
        """Note a record of `ticket`'s as chained (under the lock); whether that was its last."""
        ticket.chained[row["id"]] = {key: row[key] for key in CHAIN_COLUMNS}
        return len(ticket.chained) == len(ticket.rows)

    def _broken(self, exc: chain.ChainUnavailable, tickets: list[Ticket]) -> None:
        """The head is missing or behind its records: nothing can be chained until an operator has looked.
        Every waiter is answered now (503); queued rows stay queued; try again after RETRY_SECONDS."""
        self._retry_at = time.monotonic() + RETRY_SECONDS
        self._head = None
        self._taken = []
        for ticket in tickets:
            ticket._fail(exc)
        self._fail_waiting(exc)
        self._notify(self.connection, "sequenced", "broken")
        self.connection.commit()

    def _fail_waiting(self, exc: BaseException) -> None:
        with self.lock:
            tickets = {id(ticket): ticket for ticket in self.waiting.values() if not ticket.local or ticket.taken}
            for record_id in [key for key, ticket in self.waiting.items() if id(ticket) in tickets]:
                del self.waiting[record_id]
        for ticket in tickets.values():
            ticket._fail(exc)

    def _fail_taken(self, exc: BaseException) -> None:
        for ticket in self._taken:
            self.forget(ticket)
            ticket._fail(exc)
        self._taken = []

    def _isolate(self, tickets: list[Ticket], queued: list, exc: Exception) -> None:
        """A batch the database refused (not for the head): chain its parts one by one, so one bad record
        stops neither the chain nor the others. A local call's error goes to its caller (nothing of it is
        written); a queued row the database refuses is kept in the queue with its error, out of the way."""
        log.error("audit sequencer %s: a batch was refused (%s); retrying record by record", self.model.CHAIN,
                  str(getattr(exc, "orig", None) or exc).splitlines()[0])
        for row in queued:
            try:
                with self._transaction() as connection:
                    written = self._chain(connection, [row], [_decoded(self.model, row.record_id, row.fields,
                                                                       row.written_at)])
            except (sa.exc.IntegrityError, sa.exc.DataError) as one:
                log.error("audit sequencer %s: queued record %s refused, kept in audit_pending: %s",
                          self.model.CHAIN, row.record_id, one)
                self.connection.execute(_PENDING.update().where(_PENDING.c.id == row.id)
                                        .values(error=str(one.orig or one)[:2000]))
                self.connection.commit()
                with self.lock:
                    ticket = self.waiting.pop(row.record_id, None)
                if ticket is not None:
                    ticket._fail(chain.ChainUnavailable())
            else:
                self._chained(written)
        for ticket in tickets:
            try:
                with self._transaction() as connection:
                    written = self._chain(connection, [], ticket.rows)
            except (sa.exc.IntegrityError, sa.exc.DataError) as one:
                self.forget(ticket)
                ticket._fail(one)
            else:
                self._chained(written)
        self._taken = []

    def _follow(self) -> bool:
        """Queue the rows handed to us in one statement, which also tells the leader; whether there were any."""
        tickets = self._take_local(BATCH)
        self._taken = tickets
        with self.lock:
            tell, self._tell_leader = self._tell_leader, False
        if tickets:
            try:
                _queue(self.connection, self.model, [row for ticket in tickets for row in ticket.rows],
                       notify=_channel("pending", self.model.CHAIN))
                self.connection.commit()
            except chain.ChainUnavailable as exc:
                for ticket in tickets:
                    self.forget(ticket)
                    ticket._fail(exc)
            except DBAPIError as exc:
                if _connection_lost(exc):
                    raise
                self.connection.rollback()
                for ticket in tickets:
                    self.forget(ticket)
                    ticket._fail(exc)
            else:
                for ticket in tickets:
                    ticket._durable()
            self._taken = []
        elif tell:
            self._notify(self.connection, "pending", "")
            self.connection.commit()
        self._sweep()
        return bool(tickets)

    def _notify(self, connection: Connection, kind: str, payload: str) -> None:
        connection.execute(sa.select(sa.func.pg_notify(_channel(kind, self.model.CHAIN), payload)))

    def _sweep(self, *, force: bool = False) -> None:
        """Look up the records of durable waiters older than SWEEP_SECONDS (all of them when `force`)."""
        horizon = time.monotonic() - (0 if force else SWEEP_SECONDS)
        with self.lock:
            tickets = {id(ticket): ticket for ticket in self.waiting.values()
                       if (ticket.taken or not ticket.local) and ticket.created <= horizon}
        if tickets:
            self.resolve_from(self.connection, list(tickets.values()))
            self.connection.commit()

    def resolve_from(self, connection: Connection, tickets: list[Ticket]) -> None:
        """Answer the waiters whose records the chain holds (one query per 1,000 records)."""
        table = self.model.__table__
        ids = [row["id"] for ticket in tickets for row in ticket.rows]
        for start in range(0, len(ids), 1000):
            found = connection.execute(
                sa.select(table.c.id, *(table.c[key] for key in CHAIN_COLUMNS))
                .where(table.c.id == sa.any_(sa.bindparam("ids", type_=postgresql.ARRAY(sa.String))))
                , {"ids": ids[start:start + 1000]}).mappings().all()
            with self.lock:
                done = [ticket for row in found if (ticket := self.waiting.pop(row["id"], None)) is not None
                        and self._resolve(ticket, row)]
            _answer(done)

    def _sleep(self) -> None:
        """Until a writer of ours, a notification or the next periodic duty."""
        now = time.monotonic()
        if self.leader:
            until = max(self._read_queue_at, self._retry_at)
        else:
            until = self._candidacy_at
            if self.waiting:
                until = min(until, now + SWEEP_SECONDS)
        raw = self.connection.connection.dbapi_connection
        with self.lock:
            ready = bool(self.local) or self._tell_leader or (self.leader and self._queued)
        if not ready:
            select.select([self._wake_r, raw.fileno()], [], [], max(0.0, until - now))
        # Emptied before the flag is cleared: a wake-up after this writes to the pipe again, and one in between
        # left its work where the readiness check above sees it.
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        with self.lock:
            self._woken = False

    def _notifications(self) -> bool:
        """Act on the notifications received (without waiting); whether there were any."""
        notes = list(self.connection.connection.dbapi_connection.notifies(timeout=0))
        if not notes:
            return False
        payloads = {note.payload for note in notes if note.channel.startswith("zsb_audit_sequenced")}
        if any(note.channel.startswith("zsb_audit_pending") for note in notes):
            with self.lock:
                self._queued = True
        if "resign" in payloads:
            self._candidacy_at = 0.0
        if "broken" in payloads:
            self._fail_waiting(chain.ChainUnavailable())
        unread = False
        for payload in payloads - {"resign", "broken"}:
            try:
                described = json.loads(payload)["records"]
            except (ValueError, KeyError, TypeError):
                unread = True  # not ours to read: look the waiters' records up instead
                continue
            done = []
            with self.lock:
                for record_id, seq, prev_hash, record_hash, leaf_salt in described:
                    ticket = self.waiting.pop(record_id, None)
                    if ticket is not None:
                        row = next(r for r in ticket.rows if r["id"] == record_id)  # (its time is ours)
                        if self._resolve(ticket, {"id": record_id, "seq": seq, "prev_hash": prev_hash,
                                                  "record_hash": record_hash, "leaf_salt": leaf_salt,
                                                  "recorded_at": row.get("recorded_at")}):
                            done.append(ticket)
            _answer(done)
        if unread and not self.leader:
            with self.lock:  # (a caller's transaction may have committed its rows but not yet said so)
                tickets = {id(ticket): ticket for ticket in self.waiting.values() if ticket.taken or not ticket.local}
            if tickets:
                self.resolve_from(self.connection, list(tickets.values()))
                self.connection.commit()
        return True
