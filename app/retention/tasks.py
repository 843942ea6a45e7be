"""The periodic task retention.purge: one pass over every kind of expiring data (app/retention)."""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app

from app import jobs
from app.applications.services import retention as applications
from app.face.services import retention as face
from app.modelbase import utcnow

log = logging.getLogger(__name__)


@jobs.periodic("retention.purge", every="RETENTION_RUN_SECONDS")
def purge() -> dict[str, int]:
    """Delete or erase what has expired; returns (and logs) the counts of each kind, never what they were."""
    config, now = current_app.config, utcnow()

    def before(setting: str) -> tuple:
        days = int(config[setting])
        return now - timedelta(days=days), days

    uploads_cutoff, _ = before("RETENTION_UPLOAD_DAYS")
    drafts_cutoff, draft_days = before("RETENTION_DRAFT_DAYS")
    sessions_cutoff, _ = before("RETENTION_FACE_SESSION_DAYS")
    snapshots_cutoff, _ = before("RETENTION_SNAPSHOT_DAYS")
    counts = {
        "drafts_expired": applications.expire_drafts(drafts_cutoff, draft_days),
        "uploads_erased": applications.erase_uploads(uploads_cutoff),
        "values_erased": applications.erase_snapshots(snapshots_cutoff),
        "face_sessions_deleted": face.delete_sessions(sessions_cutoff),
    }
    if any(counts.values()):
        log.info("retention: %s", ", ".join(f"{kind} {count}" for kind, count in counts.items()))
    return counts
