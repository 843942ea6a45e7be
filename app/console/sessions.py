"""The console's server-side sessions: a staff login kept in the state store, under an opaque id.

Flask's (signed) cookie carries only the session id; who is logged in, since when and when last seen live in
the shared state store (Redis in production), under the id's SHA-256, so a copy of the store holds no
usable cookie. A session ends CONSOLE_IDLE_SECONDS after its last request, CONSOLE_ABSOLUTE_SECONDS after
login whatever happens, and at logout — in every process at once, since they share the store. The staff
account is read again on every request: a deactivated account or a withdrawn role takes effect at once.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass

from flask import current_app

from app.accounts.models import StaffUser
from app.extensions import db

KEY_PREFIX = "console-session:"

# The clock, as a module attribute so the timeout tests can move it.
now = time.time


@dataclass(frozen=True)
class ConsoleSession:
    """A live session: its id (the cookie's) and its staff member."""

    sid: str
    staff: StaffUser


def _key(sid: str) -> str:
    return KEY_PREFIX + hashlib.sha256(sid.encode()).hexdigest()


def _store():
    return current_app.extensions["state"]


def _save(sid: str, record: dict) -> None:
    config = current_app.config
    remaining = record["created"] + config["CONSOLE_ABSOLUTE_SECONDS"] - record["seen"]
    ttl = max(1, int(min(config["CONSOLE_IDLE_SECONDS"], remaining)) + 1)
    _store().put(_key(sid), json.dumps(record, separators=(",", ":")), ttl)


def start(staff: StaffUser) -> str:
    """A new session for `staff`; its id (for the cookie)."""
    sid = secrets.token_urlsafe(32)
    moment = now()
    _save(sid, {"staff": staff.id, "created": moment, "seen": moment})
    return sid


def resume(sid: str | None) -> ConsoleSession | None:
    """The live session of `sid`, now marked as seen; None when it is unknown, timed out or its account is
    gone or deactivated (the session is then ended)."""
    if not sid or not isinstance(sid, str):
        return None
    raw = _store().get(_key(sid))
    if raw is None:
        return None
    record, moment, config = json.loads(raw), now(), current_app.config
    idle = moment - record["seen"] >= config["CONSOLE_IDLE_SECONDS"]
    expired = moment - record["created"] >= config["CONSOLE_ABSOLUTE_SECONDS"]
    staff = None if idle or expired else db.session.get(StaffUser, record["staff"])
    if staff is None or not staff.active:
        end(sid)
        return None
    _save(sid, {**record, "seen": moment})
    return ConsoleSession(sid, staff)


def end(sid: str | None) -> None:
    """End the session `sid` (nothing when there is none)."""
    if sid and isinstance(sid, str):
        _store().delete(_key(sid))
