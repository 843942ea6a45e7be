"""The catalogue's response cache: rendered JSON bodies with strong ETags, kept per process and dropped when
the catalogue revision (one row, bumped in the same transaction as every write) moves on.

The views wrap their answers in it (app/catalogue/api.py): the services return models, the cache holds what
the schemas made of them. Writes anywhere that change what catalogue responses show (a matter, a bundle, the
connectors providing an element) commit through `commit_change()`.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app

from app.catalogue.models import CatalogueState
from app.extensions import db
from app.modelbase import utcnow

STATE_ID = 1



@dataclass(frozen=True)
class Rendered:
    """A response body ready to send, with its strong ETag (a hash of the body itself)."""

    body: bytes
    etag: str
    revision: int


def render(payload, revision: int = 0) -> Rendered:
    """Serialize `payload` to the JSON the API sends (UTF-8, sorted keys) and tag it."""
    body = current_app.json.dumps(payload).encode()
    return Rendered(body, hashlib.sha256(body).hexdigest()[:32], revision)


class CatalogueCache:
    """A bounded LRU of rendered responses, trusted for `max_age` seconds before the revision is re-read.

    One instance per app (per process). Thread-safe: gunicorn's threaded workers share it.
    """

    def __init__(
        self,
        *,
        max_age: float,
        read_revision: Callable[[], int],
        max_entries: int = 512,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.max_age = max_age
        self.max_entries = max_entries
        self._read_revision = read_revision
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, Rendered] = OrderedDict()
        self._revision: int | None = None
        self._checked_at = float("-inf")

    def get(self, key: Hashable, build: Callable[[], object]) -> Rendered:
        """The rendered response for `key`, building it with `build()` on a miss."""
        revision = self.revision()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.revision == revision:
                self._entries.move_to_end(key)
                return entry
        entry = render(build(), revision)
        with self._lock:
            # A write may have landed while we built: keep the entry only if it is still current.
            if self._revision == revision:
                self._entries[key] = entry
                self._entries.move_to_end(key)
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
        return entry

    def revision(self) -> int:
        """The catalogue revision, re-read from the database at most every `max_age` seconds."""
        now = self._clock()
        if now - self._checked_at < self.max_age and self._revision is not None:
            return self._revision
        current = self._read_revision()
        with self._lock:
            if current != self._revision:
                self._entries.clear()
                self._revision = current
            self._checked_at = now
        return current

    def invalidate(self, revision: int) -> None:
        """Forget every entry: this process just wrote `revision`."""
        with self._lock:
            self._entries.clear()
            self._revision = revision
            self._checked_at = self._clock()

    def __len__(self) -> int:
        return len(self._entries)


def cache() -> CatalogueCache:
    """This app's catalogue cache, created on first use."""
    extensions = current_app.extensions
    found = extensions.get("catalogue_cache")
    if found is None:
        found = extensions["catalogue_cache"] = CatalogueCache(
            max_age=float(current_app.config["CATALOGUE_CACHE_SECONDS"]),
            read_revision=read_revision,
        )
    return found


def max_age() -> int:
    """How long clients and proxies may reuse a catalogue response (Cache-Control max-age)."""
    return int(round(float(current_app.config["CATALOGUE_CACHE_SECONDS"])))


def read_revision() -> int:
    """The catalogue revision as committed in the database (0 before anything was seeded)."""
    revision = db.session.execute(
        sa.select(CatalogueState.revision).where(CatalogueState.id == STATE_ID)
    ).scalar_one_or_none()
    return revision or 0


def _bump_revision() -> int:
    """Advance the revision inside the caller's transaction (atomic in SQL, so processes cannot collide)."""
    updated = db.session.execute(
        sa.update(CatalogueState)
        .where(CatalogueState.id == STATE_ID)
        .values(revision=CatalogueState.revision + 1, updated_at=utcnow())
    )
    if updated.rowcount == 0:
        db.session.add(CatalogueState(id=STATE_ID, revision=1))
        db.session.flush()
        return 1
    return db.session.execute(
        sa.select(CatalogueState.revision).where(CatalogueState.id == STATE_ID)
    ).scalar_one()


def commit_change() -> None:
    """Bump the revision, commit, and clear this process's cache (the caller's changes are pending)."""
    revision = _bump_revision()
    db.session.commit()
    cache().invalidate(revision)
