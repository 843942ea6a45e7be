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
(`batch_statement`; before it was written so, a batch waited on the database 12 times): it moves the head
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

The package: this module is the writers' side (submit, stage, committed, discard, settle) and each app's
Sequencer; `rows.py` checks records and holds the SQL that queues them and chains a batch; `tickets.py` what
a writer waits on; `worker.py` the worker thread of one chain (leading or following).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Mapping

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import Connection
from sqlalchemy.pool import NullPool

from app.config import ConfigError
from app.extensions import db
from app.ledger import chain
from app.ledger.sequencer.rows import PENDING, InvalidRecord, prepare, queue_rows
from app.ledger.sequencer.tickets import Ticket
from app.ledger.sequencer.worker import Worker

__all__ = ["InvalidRecord", "Sequencer", "Ticket", "active", "committed", "discard", "enabled", "for_app", "prepare",
           "settle", "stage", "stop_all", "submit", "wait_seconds"]

log = logging.getLogger(__name__)
MODES = ("auto", "off")
EXTENSION = "audit_sequencer"


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


def submit(model: type, rows: list[dict]) -> Ticket:
    """Hand rows to this process's worker of the chain, to be written in a transaction of its own."""
    return for_app().hand(model, prepare(model, rows), local=True)


def stage(connection: Connection, model: type, rows: list[dict]) -> Ticket:
    """Queue prepared rows in the caller's transaction (`appending`); call `committed` or `discard` after it."""
    queue_rows(connection, model, rows)
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
        ids = connection.execute(sa.select(PENDING.c.record_id).where(
            PENDING.c.chain == model.CHAIN, PENDING.c.error.is_(None))).scalars().all()
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




class Sequencer:
    """One app's workers (one per chain) in this process, and the engine they connect with."""

    def __init__(self, url: sa.URL) -> None:
        self.pid = os.getpid()
        # Connections of their own, outside the app's pool: held for long, and untouched by its dispose();
        # named, so that pg_stat_activity shows which process leads (the one holding the advisory lock).
        self.engine = sa.create_engine(url, poolclass=NullPool,
                                       connect_args={"application_name": f"zsb-audit-sequencer {self.pid}"})
        self.lock = threading.Lock()
        self.workers: dict[str, Worker] = {}
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
                        worker = self.workers[model.CHAIN] = Worker(self, model)
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

    def retire(self, worker: Worker, *, now: bool = False) -> bool:
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


