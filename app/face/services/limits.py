"""The face-verification rate limit: FACE_MAX_FAILURES failed decisions in FACE_FAILURE_WINDOW_SECONDS lock a
citizen out for the rest of the window (429 with Retry-After, logged); provider faults do not count. Counters
live in the shared state store, so every process sees them."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from app.accounts.models import Citizen
from app.errors import RateLimited
from app.extensions import db
from app.face.models import FaceSession
from app.face.services.log import log_event
from app.modelbase import utcnow


def _failure_key(citizen: Citizen) -> str:
    return f"face-failures:{citizen.id}"


def retry_after(citizen: Citizen) -> int | None:
    """Seconds until the citizen may try again, or None when not locked out."""
    # The store cannot read a counter without changing it: reaching the limit sets a marker key that lives
    # as long as the rest of the window (as the real-name mismatch limit does).
    store = current_app.extensions["state"]
    locked = _failure_key(citizen) + ":locked"
    return max(1, store.ttl(locked)) if store.exists(locked) else None


def count_failure(citizen: Citizen) -> int:
    """Count one failed verification; returns the failures in the citizen's current window."""
    store = current_app.extensions["state"]
    key = _failure_key(citizen)
    failures = store.incr(key, int(_setting("FACE_FAILURE_WINDOW_SECONDS")))
    if failures >= int(_setting("FACE_MAX_FAILURES")):
        store.set(key + ":locked", max(1, store.ttl(key)))
    return failures


def refuse_if_locked(citizen: Citizen, *, request_id: str, session: FaceSession | None = None,
                     purpose: str | None = None, matter_code: str | None = None,
                     application_id: str | None = None) -> None:
    wait = retry_after(citizen)
    if wait is None:
        return
    extra = {} if session else {"purpose": purpose, "matter_code": matter_code, "application_id": application_id}
    log_event("rate_limited", citizen, request_id=request_id, session=session, reason="too_many_failures",
              failure_limit=int(_setting("FACE_MAX_FAILURES")), **extra)
    raise RateLimited("人脸核验失败次数过多,请稍后再试或按办事指南中的非刷脸方式办理", retry_after=wait)


def attempt_number(citizen: Citizen) -> int:
    """Which of the citizen's sessions within the failure window the next one is (1 = the first)."""
    since = utcnow() - timedelta(seconds=int(_setting("FACE_FAILURE_WINDOW_SECONDS")))
    started = db.session.scalar(
        sa.select(sa.func.count(FaceSession.id))
        .where(FaceSession.citizen_id == citizen.id, FaceSession.created_at >= since)
    )
    return int(started or 0) + 1


def _setting(name: str):
    return current_app.config[name]
