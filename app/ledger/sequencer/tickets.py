"""Tickets: one call's records on their way into the chain, and what a writer waits on."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from app.ledger import chain

if TYPE_CHECKING:
    from app.ledger.sequencer.worker import Worker

log = logging.getLogger(__name__)


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

    def __init__(self, worker: Worker, rows: list[dict], *, local: bool) -> None:
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


