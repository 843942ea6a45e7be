"""The worker thread of one chain in one process: the leader chains batches; the others queue and wait."""

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
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError

from app.ledger import chain, tree
from app.ledger.sequencer.rows import (
    CHAIN_COLUMNS,
    PENDING,
    Head,
    Queued,
    batch_statement,
    decode_row,
    queue_rows,
    records_json,
    sequenced_payloads,
)
from app.ledger.sequencer.tickets import Ticket
from tlog import merkle

if TYPE_CHECKING:
    from app.ledger.sequencer import Sequencer

log = logging.getLogger(__name__)
BATCH = 1000  # records per sequencing transaction at most
CANDIDACY_SECONDS = 0.25  # how often a worker that is not the leader tries to become it
PENDING_POLL_SECONDS = 1.0  # the leader reads the queue at least this often unprompted
SWEEP_SECONDS = 0.2  # a waiter older than this is looked up in the records (a notification missed)
IDLE_EXIT_SECONDS = 30.0  # a worker with nothing to do for this long stops (its process starts one when needed)
RETRY_SECONDS = 0.5  # after a broken chain or a lost connection
# The leader vacuums the queue after this many of its rows were chained, at most this often.
VACUUM_AFTER_ROWS = 10_000
VACUUM_MIN_SECONDS = 5.0

def _answer(tickets: list[Ticket]) -> None:
    """Wake the waiters of `tickets` (outside the worker's lock: each wake-up takes locks of its own)."""
    for ticket in tickets:
        ticket._durable()
        ticket.done.set()


def _close_pipe(*fds: int) -> None:
    for fd in fds:
        os.close(fd)


def lock_key(chain_name: str) -> int:
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


class Worker(threading.Thread):
    """A process's worker of one chain: the chain's sequencer while it holds the chain's advisory lock; else it
    queues the rows handed to it, tells the leader, and answers this process's waiters when the leader has
    chained their records."""

    def __init__(self, sequencer: Sequencer, model: type) -> None:
        super().__init__(name=f"audit-sequencer-{model.CHAIN}", daemon=True)
        self.sequencer, self.model = sequencer, model
        self.key = lock_key(model.CHAIN)
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
        self._head: Head | None = None  # valid while this worker leads and nobody else moved the head
        self._prefetched: list[Queued] | None = None  # the queue as the last batch saw it (while leading)
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
                sa.select(PENDING.c.id, PENDING.c.record_id, PENDING.c.fields, PENDING.c.written_at)
                .where(PENDING.c.chain == self.model.CHAIN, PENDING.c.error.is_(None))
                .order_by(PENDING.c.id).limit(limit)).all()
            self.connection.commit()
        if not queued and not rows:
            self._taken = []
            return False
        self._dequeued += len(queued)
        if self._dequeued >= VACUUM_AFTER_ROWS and now >= self._vacuum_at:
            self._dequeued, self._vacuum_at = 0, now + VACUUM_MIN_SECONDS
            threading.Thread(target=self._vacuum, name=f"audit-queue-vacuum-{self.model.CHAIN}", daemon=True).start()
        decoded = [decode_row(self.model, row.record_id, row.fields, row.written_at) for row in queued] + rows
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
                connection.exec_driver_sql(f"VACUUM (SKIP_LOCKED) {PENDING.name}")
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
            "new_hash": head_hash, "records": records_json(self.model, written),
            "nodes": json.dumps([{"level": level, "idx": index, "hash": digest.hex()}
                                 for level, index, digest in nodes]),
            "pending": [row.id for row in queued], "channel": _channel("sequenced", self.model.CHAIN),
            "payloads": sequenced_payloads(written, {row.record_id for row in queued}),
            "next_limit": BATCH,
        }
        try:
            moved = self.connection.execute(batch_statement(self.model), params).all()
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
        self._prefetched = [Queued(item[0], item[1], item[2], datetime.fromisoformat(item[3]))
                            for item in moved[0].queued_next or ()]
        known = {**head.frontier, **{(level, index): digest for level, index, digest in nodes}}
        self._head = Head(seq, head_hash, {node: known[node] for node in merkle.frontier_ids(seq)})
        return written

    def _chain(self, connection: Connection, queued: list, rows: list[dict]) -> list[dict]:
        """Chain `rows` the careful way (chain._write: the head locked and checked, the tree caught up if it
        lags) in the open transaction, delete the queue's rows and NOTIFY; remember the head for `_chain_fast`."""
        written = chain._write(connection, self.model, rows, prepared=True)
        if queued:
            connection.execute(PENDING.delete().where(
                PENDING.c.id == sa.any_(sa.bindparam("ids", type_=postgresql.ARRAY(sa.BigInteger)))),
                {"ids": [row.id for row in queued]})
        seq = written[-1]["seq"]
        for payload in sequenced_payloads(written, {row.record_id for row in queued}):
            self._notify(connection, "sequenced", payload)
        frontier = tree.node_hashes(connection, self.model.CHAIN, merkle.frontier_ids(seq))
        self._head = Head(seq, written[-1]["record_hash"], frontier) \
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
                    written = self._chain(connection, [row], [decode_row(self.model, row.record_id, row.fields,
                                                                       row.written_at)])
            except (sa.exc.IntegrityError, sa.exc.DataError) as one:
                log.error("audit sequencer %s: queued record %s refused, kept in audit_pending: %s",
                          self.model.CHAIN, row.record_id, one)
                self.connection.execute(PENDING.update().where(PENDING.c.id == row.id)
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
                queue_rows(self.connection, self.model, [row for ticket in tickets for row in ticket.rows],
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

