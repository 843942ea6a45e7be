"""Idempotent submissions: an `Idempotency-Key` names one attempt; a retry with it gets the first answer.

The answer is stored with the change it answers, in one commit (`commit_once`), so a retry finds either
both or neither; a key reused for another request is a 422.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.applications.models import (
    IdempotencyRecord,
)
from app.applications.services import state
from app.applications.services.lifecycle import Actor
from app.errors import ValidationFailed
from app.extensions import db


class IdempotencyKeyReused(ValidationFailed):
    error, message = "idempotency_key_reused", "该 Idempotency-Key 已用于其他请求,请为新的请求生成新的 Key"


def commit_once(actor: Actor, idempotency_key: str | None, scope: str, answer: dict) -> dict:
    """Commit the pending change together with the key's record, so a retry finds one or the other, never half."""
    if idempotency_key:
        db.session.add(IdempotencyRecord(principal=actor.ref, key=idempotency_key, scope=scope, status_code=200,
                                         response=state.jsonable(answer)))
    try:
        db.session.commit()
    except IntegrityError:
        # The same key raced in from a second connection and won: answer what it answered.
        db.session.rollback()
        replay = replayed(actor, idempotency_key, scope) if idempotency_key else None
        if replay is None:
            raise
        return replay
    return answer


def replayed(actor: Actor, key: str, scope: str) -> dict | None:
    """The stored answer of an earlier request with this key (422 when it was for something else)."""
    record = db.session.scalar(sa.select(IdempotencyRecord).where(IdempotencyRecord.principal == actor.ref,
                                                                  IdempotencyRecord.key == key))
    if record is None:
        return None
    if record.scope != scope:
        raise IdempotencyKeyReused()
    return state.thaw(record.response)
