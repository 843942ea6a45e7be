"""The applications' periodic task: reminders of materials brought later (容缺) and of open supplement
requests (补正)."""

from __future__ import annotations

import logging

from flask import current_app

from app import jobs
from app.applications.services import reminders
from app.applications.workdays import work_calendar
from app.modelbase import utcnow

log = logging.getLogger(__name__)


@jobs.periodic("applications.reminders", every="REMINDER_RUN_SECONDS")
def remind() -> dict[str, int]:
    counts = reminders.remind_deferred(work_calendar().today(), int(current_app.config["REMINDER_DAYS_BEFORE"]))
    counts["supplement"] = reminders.remind_supplements(utcnow(), int(current_app.config["SUPPLEMENT_REMINDER_DAYS"]))
    if any(counts.values()):
        log.info("reminders: %s", ", ".join(f"{stage} {count}" for stage, count in counts.items()))
    return counts
