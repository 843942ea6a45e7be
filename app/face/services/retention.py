"""Retention of face sessions (app/retention says what expires when, and why).

A face session holds the provider's session data (tokens, the verify id) for the few minutes a verification
takes; once it has expired it serves nothing, and the face-verification log keeps its own pseudonymous record
of what happened. Deleted in batches, one transaction each.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.extensions import db
from app.face.models import FaceSession

BATCH = 500


def delete_sessions(cutoff: datetime) -> int:
    """Delete face sessions that expired before `cutoff`; returns how many."""
    deleted = 0
    while True:
        ids = db.session.scalars(sa.select(FaceSession.id).where(FaceSession.expires_at < cutoff)
                                 .limit(BATCH)).all()
        if not ids:
            return deleted
        db.session.execute(sa.delete(FaceSession).where(FaceSession.id.in_(ids)))
        db.session.commit()
        deleted += len(ids)
