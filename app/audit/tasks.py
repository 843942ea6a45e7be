"""The audit logs' periodic task: cut a signed checkpoint of each log that grew (and publish it to the witness)."""

from __future__ import annotations

import logging

from app import jobs
from app.audit.transparency import cut_due_checkpoints

log = logging.getLogger(__name__)


def _period(config) -> float:
    # Looked at four times per AUDIT_CHECKPOINT_SECONDS (never more often than the scheduler ticks), so a log
    # that grows gets its checkpoint within a quarter of the period after the period is up.
    return max(float(config["JOBS_TICK_SECONDS"]), float(config["AUDIT_CHECKPOINT_SECONDS"]) / 4)


@jobs.periodic("audit.checkpoints", every=_period)
def checkpoints() -> int:
    """Each log that grew and whose latest checkpoint is AUDIT_CHECKPOINT_SECONDS old gets a new one."""
    cut = cut_due_checkpoints()
    for signed in cut:
        log.info("checkpoint %s at size %s", signed.chain, signed.size)
    return len(cut)
