"""The outbox's tasks: send one notification, and sweep the outbox for due rows no task is carrying.

`send` runs once per commit that added a notification (app/notifications/services.py queues it after the
commit) and again after each delay WeChat's unavailability calls for (Huey's RetryTask, the delay from the
row's attempt count). `sweep` queues every due row, whether its task was lost (the queue was down at the
commit, a worker died, a retry was scheduled on a queue since wiped) or is merely late; the row's claim makes
the duplicates harmless (see services.deliver).
"""

from __future__ import annotations

import logging

from flask import current_app
from huey.exceptions import RetryTask

from app import jobs
from app.notifications import services

log = logging.getLogger(__name__)


@jobs.task("notifications.send")
def send(notification_id: str) -> None:
    delivery = services.deliver(notification_id)
    if delivery.retry_in is not None:
        raise RetryTask(f"WeChat unavailable; attempt again in {delivery.retry_in:g} s", delay=delivery.retry_in)


@jobs.periodic("notifications.sweep", every="NOTIFY_SWEEP_SECONDS")
def sweep() -> int:
    ids = services.due_ids(limit=max(1, int(current_app.config["NOTIFY_BATCH_SIZE"])))
    for notification_id in ids:
        jobs.enqueue("notifications.send", notification_id)
    if ids:
        log.info("notification sweep: %d due message(s) queued", len(ids))
    return len(ids)
