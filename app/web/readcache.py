"""Reads served from this process's memory while nothing they depend on has changed: the authenticated hot path.

Why: on the bench machine a request that touches the database through the ORM session costs at least ~2 ms
more than a bare route (checkout, transaction, ORM machinery; docs/benchmarks.md, "The authenticated hot
path"), and every authenticated request loaded its account that way, `GET /api/v1/applications` its page on
top. Most of those requests read what the previous one read: a phone's session calls the API many times.

How it stays right. Each cached read names the **version stamps** it depends on: `account:<kind>:<id>` (the
account row: what the guard checks and `/me` shows), `applications:<citizen id>` (a citizen's list), and one
`generation` every read depends on. A stamp is a random text in the shared store (Redis in production), so it
never takes a value it had before. Every transaction that changes a watched row renews the stamps the row
names twice: right after its flush (before the database commits: if the store cannot be written the
transaction fails and is rolled back) and after the commit. A statement that changes rows without loading them
(`UPDATE … WHERE …`) renews the stamps it declares with `touching(...)`, or else the generation, which drops
every cached read everywhere. The guard reads the stamps of the caller in the same round trip as the
revocation check (state.exists_and_get), **before** anything is loaded; an entry is served only while every
stamp still holds the value it was stored under. Whatever a commit changes, it renews a stamp after it, so an
entry holding data from before that commit can no longer match: a deactivated staff account or an account
whose identity moved is refused at once in every process, exactly as before. The blocklist itself is never
cached. A stamp the store does not hold (evicted, a new Redis) is set afresh by the reader, and the store
being unreachable is a 503, as for revocations.

What is not covered: rows changed outside this code (by hand in psql, by a migration while the service runs).
Entries expire after READ_CACHE_SECONDS in any case, which bounds that; an operator who changes accounts by
hand runs `flask read-cache renew` (docs/operations.md). A process that cannot renew a stamp after a commit
(the store went away in between) forgets its own entries and logs it.

Without Redis (the embedded development default) the stamps live in one store shared by every app of the
process, so apps sharing a database in one process (the tests) never serve each other's stale reads. Other
processes cannot renew them, so `flask dev`, whose job processes change applications too (retention,
免申即享 drafts), turns the cache off when there is no Redis (`turn_off`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, current_app, g, has_app_context

from app.extensions import db
from app.state import MemoryStore, fresh_stamp

log = logging.getLogger(__name__)

EXTENSION = "read_cache"
GENERATION = "stamp:generation"
STAMP_TTL_SECONDS = 7 * 24 * 3600
SESSION_KEY = "read_cache_stamps"
TOUCHES = "touches"
MISSING = object()
# Stamps of apps without Redis (module docstring).
_PROCESS_STAMPS = MemoryStore()

# model class -> the stamps one of its rows names; the tables of those models.
_WATCHED: dict[type, Callable[[Any], Iterable[str]]] = {}
_WATCHED_TABLES: set[str] = set()


def account_stamp(kind: str, ident: str) -> str:
    return f"stamp:account:{kind}:{ident}"


def applications_stamp(citizen_id: str) -> str:
    return f"stamp:applications:{citizen_id}"


def watch(model: type, stamps_of: Callable[[Any], Iterable[str]]) -> None:
    """Declare that a change to a row of `model` renews `stamps_of(row)` (called where the cached read is)."""
    _WATCHED[model] = stamps_of
    _WATCHED_TABLES.add(model.__table__.name)


def touching(*stamps: str) -> dict:
    """Execution options for a bulk statement on a watched table whose rows' stamps the caller knows; without
    them the statement renews the generation."""
    return {TOUCHES: stamps}


class ReadCache:
    """One app's entries: key -> (stamp values, stored at, value). Bounded: the oldest half goes when full."""

    def __init__(self, *, max_entries: int, max_age: float, clock: Callable[[], float] = time.monotonic):
        self.max_entries = max_entries
        self.max_age = max_age
        self._clock = clock
        self._entries: dict[Hashable, tuple[tuple, float, Any]] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0 and self.max_age > 0

    def get(self, key: Hashable, stamps: tuple) -> Any:
        entry = self._entries.get(key)
        if entry is None or entry[0] != stamps or self._clock() - entry[1] >= self.max_age:
            return MISSING
        return entry[2]

    def put(self, key: Hashable, stamps: tuple, value: Any) -> None:
        with self._lock:
            if len(self._entries) >= self.max_entries:
                for stale in list(self._entries)[: max(1, self.max_entries // 2)]:  # dicts keep insertion order
                    del self._entries[stale]
            self._entries[key] = (stamps, self._clock(), value)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = ReadCache(max_entries=app.config["READ_CACHE_ENTRIES"],
                                          max_age=app.config["READ_CACHE_SECONDS"])


def turn_off(app: Flask) -> None:
    """Serve every read fresh: for a process whose stamps other processes cannot renew (no Redis)."""
    app.extensions[EXTENSION] = ReadCache(max_entries=0, max_age=0)


def _store(app: Flask):
    state = app.extensions["state"]
    return _PROCESS_STAMPS if isinstance(state, MemoryStore) else state


# --- reading -------------------------------------------------------------------------------------------------

def check_revoked_reading_stamps(revocation_key: str, stamps: list[str]) -> bool:
    """Whether `revocation_key` is set; reads `stamps` (and the generation) for this request on the way, in the
    same round trip when the stamps live in the same store."""
    app = current_app._get_current_object()
    keys = [*stamps, GENERATION]
    state, store = app.extensions["state"], _store(app)
    if store is state:
        revoked, values = state.exists_and_get(revocation_key, keys)
    else:
        revoked, values = state.exists(revocation_key), [store.get(key) for key in keys]
    g.read_stamps = dict(zip(keys, values, strict=True))
    return revoked


def _stamp_values(app: Flask, stamps: Iterable[str]) -> tuple | None:
    """The current value of each stamp (those the guard read for this request, the others now); a stamp the
    store does not hold is set afresh here. None when one could not be set (another reader or a writer set it
    first): that read is simply not cached."""
    known: dict = getattr(g, "read_stamps", None) or {}
    keys = [*stamps, GENERATION]
    store = _store(app)
    values = []
    for key in keys:
        value = known[key] if key in known else store.get(key)
        if value is None:
            value = fresh_stamp()
            if not store.put_if_absent(key, value, STAMP_TTL_SECONDS):
                return None
            known[key] = value
        values.append(value)
    return tuple(values)


def remember(key: Hashable, stamps: Iterable[str], build: Callable[[], Any]) -> Any:
    """`build()`, or what it gave before while every stamp still holds (module docstring). `build` runs after
    the stamps were read; its value is shared between requests and threads, so it must not be changed."""
    app = current_app._get_current_object()
    cache: ReadCache = app.extensions[EXTENSION]
    if not cache.enabled:
        return build()
    values = _stamp_values(app, list(stamps))
    if values is not None:
        value = cache.get(key, values)
        if value is not MISSING:
            return value
    value = build()
    if values is not None:
        cache.put(key, values, value)
    return value


def json_response(key: Hashable, stamps: Iterable[str], build: Callable[[], Any], schema) -> Response:
    """A JSON response of `schema.dump(build())`, remembered as its bytes (flask-smorest passes a Response
    through untouched; the view still declares the schema for the OpenAPI document)."""
    app = current_app._get_current_object()
    body = remember(key, stamps, lambda: app.json.response(schema.dump(build())).get_data())
    return app.response_class(body, mimetype=app.json.mimetype)


# --- renewing ------------------------------------------------------------------------------------------------

def _renew(session, stamps: set[str]) -> None:
    session.info.setdefault(SESSION_KEY, set()).update(stamps)
    if stamps and has_app_context():
        _store(current_app).renew(sorted(stamps), STAMP_TTL_SECONDS)


def _flushed(session, _flush_context) -> None:
    stamps: set[str] = set()
    for row in (*session.new, *session.dirty, *session.deleted):
        stamps_of = _WATCHED.get(type(row))
        if stamps_of is not None:
            stamps.update(stamps_of(row))
    _renew(session, stamps)


def _executing(execute_state) -> None:
    if not (execute_state.is_insert or execute_state.is_update or execute_state.is_delete):
        return
    table = getattr(execute_state.statement, "table", None)
    if getattr(table, "name", None) not in _WATCHED_TABLES:
        return
    _renew(execute_state.session, set(execute_state.execution_options.get(TOUCHES) or (GENERATION,)))


def _committed(session) -> None:
    stamps = session.info.pop(SESSION_KEY, None)
    if not stamps or not has_app_context():
        return
    try:
        _store(current_app).renew(sorted(stamps), STAMP_TTL_SECONDS)
    except Exception:  # noqa: BLE001 - the commit happened; what this process remembers may be stale: forget it
        current_app.extensions[EXTENSION].clear()
        log.error("could not renew %d read-cache stamp(s) after a commit; this process forgot its cached reads "
                  "(others expire theirs within READ_CACHE_SECONDS)", len(stamps), exc_info=True)


def _rolled_back(session, *args) -> None:
    # The stamps were renewed at the flush already; nothing changed in the database, so nothing more to do.
    session.info.pop(SESSION_KEY, None)


def renew_everything(app: Flask) -> None:
    """Renew the generation: every process drops every cached read (`flask read-cache renew`)."""
    _store(app).renew([GENERATION], STAMP_TTL_SECONDS)


sa.event.listen(db.session, "after_flush", _flushed)
sa.event.listen(db.session, "do_orm_execute", _executing)
sa.event.listen(db.session, "after_commit", _committed)
sa.event.listen(db.session, "after_rollback", _rolled_back)
