"""Subscription-message notifications: the outbox (`enqueue`) and its worker (`deliver_pending`, `run_worker`).

The outbox. A status change calls `enqueue` in the transaction that makes the change; `enqueue` only adds a
row to the session, so the change and its notification are committed together or rolled back together. A
crash before the commit loses both (the change did not happen, so nothing is announced); after it, the row
waits for the worker. Nothing here talks to WeChat inside a request: WeChat being down, slow or refusing can
never fail or slow down the request that caused the notification.

Delivery. Each notification is sent by the job system (app/jobs): `enqueue` marks the row for the session,
and once the transaction commits (`_dispatch_committed`, a session hook) the task `notifications.send` is
queued with the row's id; the periodic `notifications.sweep` queues every row that is due and has no task
(the queue was down at the commit, a worker died, a retry is due after a restart), so the outbox, not the
queue, is what keeps a message from being lost. `deliver(id)` is one task's work, `deliver_pending` a whole
pass inline (the tests of the delivery policy, with the clock in their hands):

- claiming is a short transaction that counts the attempt and moves `next_attempt_at` a lease ahead, only if
  the row is `pending` and due. That is the dedupe key: a task queued twice for the same row (by the commit
  hook and a sweep, or redelivered after its worker died) finds the row leased or finished and does nothing,
  so a message is never sent twice by retries. On PostgreSQL a pass selects `FOR UPDATE SKIP LOCKED`, so
  concurrent workers never pick the same row; on SQLite the database's single writer lock serialises claims.
  A worker that dies after claiming leaves the row pending: it is due again when the lease ends (delivery is
  at least once only across such a crash; WeChat may then show a message twice, which is better than never);
- the outcome is written with a compare-and-set on the attempt count, so a worker whose lease ran out cannot
  overwrite the result of the worker that took the row over:
  sent → `sent`; 43101 (not subscribed / cancelled) → `refused`, never retried; WeChat unavailable (network,
  timeout, 5xx, garbage, -1 busy, 45009/45011 quotas, a token refused even after one refresh, configuration
  refused) → `pending` again after NOTIFY_RETRY_BASE_SECONDS × 2^(attempt-1), or `failed` once
  NOTIFY_MAX_ATTEMPTS attempts were made; any other errcode (40003 openid, 40037 template, 47003 data, 41030
  page, unknown codes) → `failed` at once, since the same message would be rejected again.
  The retry is the job system's (the task raises Huey's RetryTask with that delay); the count and the
  backoff live in the row, so they survive a worker's death and a restart of the queue.

Personal data: a row holds the template data WeChat shows — matter name, status label, time, application
number and a short remark — and nothing else; the openid is read from the citizen when sending and is never
copied into the row or logged. Logs carry notification ids, errcodes and counts only.

The template (WECHAT_SUBSCRIBE_TEMPLATE_ID, 办理进度通知): thing1 事项名称, phrase2 办理状态, time3 更新时间,
character_string4 申请编号, thing5 备注. WeChat's limits (longer values are refused with 47003): thing at most
20 characters, phrase at most 5 Chinese characters, character_string at most 32 ASCII characters.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from flask import current_app

from app.accounts.models import Citizen
from app.extensions import db
from app.integrations import wechat
from app.integrations.wechat import SubscribeMessageRefused, SubscribeMessageRejected, WeChatUnavailable
from app.modelbase import new_id, utcnow
from app.notifications.models import KINDS, Notification

log = logging.getLogger(__name__)

# WeChat's limits for template values (longer ones are refused with 47003).
THING_MAX, PHRASE_MAX, CHARACTER_STRING_MAX = 20, 5, 32
# The time shown is Beijing time; China has had no daylight saving time since 1991, so a fixed offset is exact.
CHINA_TIME = timezone(timedelta(hours=8), "Asia/Shanghai")
# The configuration key naming each kind's template.
KIND_TEMPLATES = {"status_changed": "WECHAT_SUBSCRIBE_TEMPLATE_ID", "identity_moved": "WECHAT_ACCOUNT_TEMPLATE_ID",
                  # The 办理进度 template, its status phrase saying 待补材料.
                  "material_due": "WECHAT_SUBSCRIBE_TEMPLATE_ID",
                  # 免申即享: the same template, its status phrase saying 可申请, the draft's number.
                  "proactive_eligible": "WECHAT_SUBSCRIBE_TEMPLATE_ID"}
OUTCOMES = ("sent", "refused", "retrying", "failed")
# The session's list of notifications added in its transaction, queued once it commits.
OUTBOX_KEY = "zsb_outbox"


def enqueue(*, citizen_id: str, application_id: str | None, kind: str, data: dict,
            once: str | None = None) -> Notification:
    """Add a pending notification to the current transaction, without committing: the caller's commit sends it.

    `once`: a key naming the message (a reminder's material and stage); the notification's id is derived from
    it, so the same message can be written only once, however many passes or workers try (the caller checks
    `already_sent` first, and a race ends in the primary key's refusal)."""
    if kind not in KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    if not citizen_id:
        raise ValueError("a notification needs the citizen it is for")
    if not isinstance(data, dict) or not data or not all(
        isinstance(key, str) and isinstance(entry, dict) and set(entry) == {"value"}
        and isinstance(entry["value"], str) for key, entry in data.items()
    ):
        raise ValueError('notification data must be {"key": {"value": "text"}, …} '
                         "(see app/applications/services/notices.py)")
    now = utcnow()
    notification = Notification(
        # Known before the flush, so the caller can put it on the timeline.
        id=once_id(once) if once else new_id(),
        citizen_id=citizen_id,
        application_id=application_id,
        kind=kind,
        data={key: {"value": entry["value"]} for key, entry in data.items()},
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    db.session.add(notification)
    db.session.info.setdefault(OUTBOX_KEY, []).append(notification.id)
    return notification


def once_id(key: str) -> str:
    """The notification id of the message `key` names (32 hex digits, like every id)."""
    return hashlib.sha256(f"notification-once:{key}".encode()).hexdigest()[:32]


def already_sent(key: str) -> bool:
    """Whether the message `key` names was written before."""
    return db.session.get(Notification, once_id(key)) is not None


def _dispatch_committed(session) -> None:
    """After a commit: queue the send task of each notification the transaction added (best effort: a queue
    that does not answer leaves them to the next sweep, and the commit already happened)."""
    ids = session.info.pop(OUTBOX_KEY, None)
    if not ids:
        return
    from app import jobs

    try:
        for notification_id in ids:
            jobs.enqueue("notifications.send", notification_id)
    except Exception:  # noqa: BLE001 - the outbox row is committed: the sweep sends it; never fail the request
        log.warning("job queue unavailable: %d notification(s) left for the next sweep", len(ids), exc_info=True)


def _forget_rolled_back(session, *args) -> None:
    session.info.pop(OUTBOX_KEY, None)


sa.event.listen(db.session, "after_commit", _dispatch_committed)
sa.event.listen(db.session, "after_rollback", _forget_rolled_back)


def thing(text: str | None, default: str) -> str:
    """`text` on one line, at most THING_MAX characters (an ellipsis marks a cut), or `default` when blank."""
    text = " ".join(str(text or "").split()) or default
    return text if len(text) <= THING_MAX else text[: THING_MAX - 1] + "…"


# --- delivery ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Claim:
    """A row this worker claimed: what it needs to send it, and the attempt it counted."""

    id: str
    kind: str
    application_id: str | None
    data: dict
    openid: str
    attempt: int


@dataclass(frozen=True)
class _Policy:
    max_attempts: int
    base: float  # seconds before the second attempt; doubled for each further one
    lease: timedelta  # how long a claimed row stays a worker's

    @classmethod
    def of(cls, config) -> _Policy:
        # The lease: long enough for a token fetch, a send, a token refresh and a second send, each up to the
        # timeout.
        return cls(max_attempts=max(1, int(config["NOTIFY_MAX_ATTEMPTS"])),
                   base=float(config["NOTIFY_RETRY_BASE_SECONDS"]),
                   lease=timedelta(seconds=max(60.0, 4 * float(config["WECHAT_TIMEOUT_SECONDS"]) + 30)))

    def retry_in(self, attempt: int) -> float:
        return self.base * 2 ** (attempt - 1)


@dataclass(frozen=True)
class Delivery:
    """How one attempt went: the outcome (None: nothing was due, or another worker took the row over) and,
    when it is to be tried again, after how many seconds."""

    outcome: str | None
    retry_in: float | None = None


def deliver(notification_id: str, *, now: datetime | None = None) -> Delivery:
    """One task's work: send notification `notification_id` if it is pending and due (else nothing)."""
    policy = _Policy.of(current_app.config)
    moment = now or utcnow()
    claim = _claim_next(moment, policy.lease, exclude=[], only=notification_id)
    return Delivery(None) if claim is None else _attempt(claim, wechat.client(), moment, policy)


def deliver_pending(*, limit: int, now: datetime | None = None, stop: threading.Event | None = None) -> dict:
    """One whole pass inline: send up to `limit` due notifications; returns how many ended in each outcome.

    `now` fixes the clock for the whole pass (tests); `stop` ends the pass early between two messages.
    """
    client = wechat.client()
    policy = _Policy.of(current_app.config)
    counts = dict.fromkeys(OUTCOMES, 0)
    seen: list[str] = []
    while len(seen) < limit and not (stop is not None and stop.is_set()):
        moment = now or utcnow()
        claim = _claim_next(moment, policy.lease, exclude=seen)
        if claim is None:
            break
        seen.append(claim.id)
        outcome = _attempt(claim, client, moment, policy).outcome
        if outcome:
            counts[outcome] += 1
    return counts


def _attempt(claim: _Claim, client, now: datetime, policy: _Policy) -> Delivery:
    if claim.attempt > policy.max_attempts:
        # Claimed before by a worker that never recorded an outcome (it crashed, or this row crashes it).
        return Delivery(_record(claim, status="failed",
                                last_error=f"no outcome recorded after {policy.max_attempts} attempts"))
    outcome = _deliver(claim, client, current_app.config, now, policy)
    return Delivery(outcome, policy.retry_in(claim.attempt) if outcome == "retrying" else None)


def due_ids(*, limit: int, now: datetime | None = None) -> list[str]:
    """The ids of up to `limit` pending notifications that are due, oldest first (the sweep queues them)."""
    return list(db.session.scalars(
        sa.select(Notification.id)
        .where(Notification.status == "pending", Notification.next_attempt_at <= (now or utcnow()))
        .order_by(Notification.next_attempt_at).limit(limit)))


def _claim_next(now: datetime, lease: timedelta, *, exclude: list[str], only: str | None = None) -> _Claim | None:
    """Claim the oldest due row (skipping rows other workers hold), or row `only` if it is due: count the
    attempt, lease it, commit."""
    query = (
        sa.select(Notification.id, Notification.kind, Notification.application_id, Notification.data,
                  Notification.attempts, Citizen.openid)
        .join(Citizen, Citizen.id == Notification.citizen_id)
        .where(Notification.status == "pending", Notification.next_attempt_at <= now)
        .order_by(Notification.next_attempt_at)
        .limit(1)
        # PostgreSQL: lock the row (not the citizen) and skip rows another worker holds. SQLite ignores it.
        .with_for_update(skip_locked=True, of=Notification)
    )
    if exclude:
        query = query.where(Notification.id.not_in(exclude))
    if only is not None:
        query = query.where(Notification.id == only)
    skipped: list[str] = []
    try:
        while True:
            row = db.session.execute(query.where(Notification.id.not_in(skipped)) if skipped else query).first()
            if row is None:
                db.session.rollback()
                return None
            attempt = row.attempts + 1
            claimed = db.session.execute(
                sa.update(Notification)
                .where(Notification.id == row.id, Notification.status == "pending",
                       Notification.attempts == row.attempts)
                .values(attempts=attempt, next_attempt_at=now + lease)
            ).rowcount
            if claimed == 1:
                db.session.commit()
                return _Claim(id=row.id, kind=row.kind, application_id=row.application_id, data=row.data,
                              openid=row.openid, attempt=attempt)
            # Another worker claimed it between our read and our write (SQLite has no SKIP LOCKED).
            db.session.rollback()
            skipped.append(row.id)
    except BaseException:
        db.session.rollback()
        raise


def _deliver(claim: _Claim, client, config, now: datetime, policy: _Policy) -> str | None:
    """Send one claimed notification and record how it went; returns the outcome (None if it was taken over)."""
    template_id = config[KIND_TEMPLATES[claim.kind]]
    page = None
    if claim.application_id:
        page = str(config["NOTIFY_APPLICATION_PAGE"]).replace("{application_id}", claim.application_id)
    try:
        msgid = client.send_subscribe_message(
            claim.openid, template_id, claim.data, page, miniprogram_state=config["NOTIFY_MINIPROGRAM_STATE"]
        )
    except SubscribeMessageRefused as exc:
        return _record(claim, status="refused", last_error=str(exc))
    except SubscribeMessageRejected as exc:
        log.warning("notification %s rejected by WeChat (errcode %s): not retried", claim.id, exc.errcode)
        return _record(claim, status="failed", last_error=str(exc))
    except WeChatUnavailable as exc:
        if claim.attempt >= policy.max_attempts:
            log.warning("notification %s failed after %s attempts (%s)", claim.id, claim.attempt, exc.detail)
            return _record(claim, status="failed", last_error=exc.detail)
        retry_at = now + timedelta(seconds=policy.retry_in(claim.attempt))
        return _record(claim, status="pending", last_error=exc.detail, next_attempt_at=retry_at)
    return _record(claim, status="sent", last_error=None, sent_at=utcnow(), wechat_msgid=msgid)


def _record(claim: _Claim, *, status: str, last_error: str | None, **values) -> str | None:
    """Write an attempt's outcome unless another worker has claimed the row since (compare-and-set)."""
    try:
        result = db.session.execute(
            sa.update(Notification)
            .where(Notification.id == claim.id, Notification.status == "pending",
                   Notification.attempts == claim.attempt)
            .values(status=status, last_error=last_error[:200] if last_error else None, **values)
        )
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    if result.rowcount != 1:
        log.warning("notification %s was claimed again while attempt %s ran: its outcome is not recorded",
                    claim.id, claim.attempt)
        return None
    return "retrying" if status == "pending" else status


def format_counts(counts: dict) -> str:
    """`sent 3, refused 0, retrying 1, failed 0`: a pass's counts for a log line or the CLI."""
    return ", ".join(f"{outcome} {counts.get(outcome, 0)}" for outcome in OUTCOMES)
