"""The notification outbox: subscription messages for the mini-program, written with the change they announce.

A status change adds its `Notification` to the same database transaction (app/notifications/services.py
`enqueue`), so the change and its message are committed together or not at all; a background worker
(`flask notify-worker`, also started by `flask dev`) sends pending rows through WeChat's `subscribe/send`.

What a row holds: who gets it (the citizen; their openid is read when sending, not copied here), which
application it is about, the template data exactly as WeChat will show it (matter name, status label, time,
application number, a short remark: nothing else, and never a name or an ID number), and the delivery state.

`application_id` has no foreign key on purpose: the outbox records history and must never block (or be
deleted by) the removal or anonymisation of an application, and a message may concern a 一件事 bundle's
parent as well as a single application. The worker never joins on it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.modelbase import IdMixin, UTCDateTime, utcnow

# pending: waiting for its first or next attempt; sent: WeChat accepted it; refused: the citizen has not
# subscribed or has cancelled (WeChat errcode 43101), never retried; failed: retries exhausted, or WeChat
# rejected the message itself (bad openid, template or data).
STATUSES = ("pending", "sent", "refused", "failed")
# What a notification announces; each kind is sent with its own subscription template.
# status_changed: an application's status; identity_moved: the account's face-bound identity moved to another
# account (换绑), so the holder learns of it even if it was not them.
# material_due: a material the citizen owes — one they may bring later (容缺) is due soon or overdue, or a
# supplement (补正) the reviewer asked for is still open (sent once each).
# proactive_eligible: 免申即享, a citizen who opted in now meets a proactive matter's conditions (a draft waits).
KINDS = ("status_changed", "identity_moved", "material_due", "proactive_eligible")


class Notification(IdMixin, db.Model):
    """One subscription message to one citizen, and how its delivery went."""

    __tablename__ = "notifications"
    # The worker's query: pending rows whose next attempt is due, oldest first.
    __table_args__ = (Index("ix_notifications_status_next_attempt_at", "status", "next_attempt_at"),)

    citizen_id: Mapped[str] = mapped_column(ForeignKey("citizens.id"), nullable=False, index=True)
    application_id: Mapped[str | None] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    # WeChat template data, {"thing1": {"value": "…"}, …}: only what the message shows (see the docstring).
    data: Mapped[dict] = mapped_column(JSON, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    # Attempts started so far (counted when a worker claims the row, so a crash mid-send counts too).
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    # Why the last attempt did not succeed: a WeChat errcode and its short message, or a transport fault's
    # class. Never a token, a URL or an openid.
    last_error: Mapped[str | None] = mapped_column(String(200))
    # WeChat's id of the delivered message, for support requests.
    wechat_msgid: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
