"""Subscription-message notifications: the outbox (`enqueue`) and its worker (`deliver_pending`, `run_worker`).

The outbox. A status change calls `enqueue` in the transaction that makes the change; `enqueue` only adds a
row to the session, so the change and its notification are committed together or rolled back together. A
crash before the commit loses both (the change did not happen, so nothing is announced); after it, the row
waits for the worker. Nothing here talks to WeChat inside a request: WeChat being down, slow or refusing can
never fail or slow down the request that caused the notification.

The worker. `deliver_pending` is one pass: it claims due rows (`pending`, `next_attempt_at <= now`) one at a
time and sends each through `WeChatClient.send_subscribe_message`, outside any database transaction:

- claiming is a short transaction that counts the attempt and moves `next_attempt_at` a lease ahead. On
  PostgreSQL the row is selected `FOR UPDATE SKIP LOCKED`, so concurrent workers never pick the same row; on
  SQLite the database's single writer lock serialises claims. A worker that dies after claiming leaves the
  row pending: it is due again when the lease ends (delivery is at least once; WeChat may then show a message
  twice, which is better than never);
- the outcome is written with a compare-and-set on the attempt count, so a worker whose lease ran out cannot
  overwrite the result of the worker that took the row over:
  sent → `sent`; 43101 (not subscribed / cancelled) → `refused`, never retried; WeChat unavailable (network,
  timeout, 5xx, garbage, -1 busy, 45009/45011 quotas, a token refused even after one refresh, configuration
  refused) → `pending` again after NOTIFY_RETRY_BASE_SECONDS × 2^(attempt-1), or `failed` once
  NOTIFY_MAX_ATTEMPTS attempts were made; any other errcode (40003 openid, 40037 template, 47003 data, 41030
  page, unknown codes) → `failed` at once, since the same message would be rejected again.

`flask notify-worker` (app/cli.py) runs `run_worker` in the foreground; `flask dev` runs it in a daemon thread
(`start_worker_thread`), so `make run` delivers messages to the WeChat stand-in.

Personal data: a row holds the template data WeChat shows — matter name, status label, time, application
number and a short remark — and nothing else; the openid is read from the citizen when sending and is never
copied into the row or logged. Logs carry notification ids, errcodes and counts only.

The template (WECHAT_SUBSCRIBE_TEMPLATE_ID, 办理进度通知): thing1 事项名称, phrase2 办理状态, time3 更新时间,
character_string4 申请编号, thing5 备注. WeChat's limits (longer values are refused with 47003): thing at most
20 characters, phrase at most 5 Chinese characters, character_string at most 32 ASCII characters.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from flask import Flask, current_app

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
KIND_TEMPLATES = {"status_changed": "WECHAT_SUBSCRIBE_TEMPLATE_ID", "identity_moved": "WECHAT_ACCOUNT_TEMPLATE_ID"}
OUTCOMES = ("sent", "refused", "retrying", "failed")


def enqueue(*, citizen_id: str, application_id: str | None, kind: str, data: dict) -> Notification:
    """Add a pending notification to the current transaction, without committing: the caller's commit sends it."""
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
        id=new_id(),  # known before the flush, so the caller can put it on the timeline
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
    return notification


def thing(text: str | None, default: str) -> str:
    """`text` on one line, at most THING_MAX characters (an ellipsis marks a cut), or `default` when blank."""
    text = " ".join(str(text or "").split()) or default
    return text if len(text) <= THING_MAX else text[: THING_MAX - 1] + "…"


# --- the worker --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Claim:
    """A row this worker claimed: what it needs to send it, and the attempt it counted."""

    id: str
    kind: str
    application_id: str | None
    data: dict
    openid: str
    attempt: int


def deliver_pending(*, limit: int, now: datetime | None = None, stop: threading.Event | None = None) -> dict:
    """One worker pass: send up to `limit` due notifications; returns how many ended in each outcome.

    `now` fixes the clock for the whole pass (tests); `stop` ends the pass early between two messages.
    """
    config = current_app.config
    client = wechat.client()
    max_attempts = max(1, int(config["NOTIFY_MAX_ATTEMPTS"]))
    base = float(config["NOTIFY_RETRY_BASE_SECONDS"])
    # Long enough for a token fetch, a send, a token refresh and a second send, each up to the timeout.
    lease = timedelta(seconds=max(60.0, 4 * float(config["WECHAT_TIMEOUT_SECONDS"]) + 30))
    counts = dict.fromkeys(OUTCOMES, 0)
    seen: list[str] = []
    while len(seen) < limit and not (stop is not None and stop.is_set()):
        moment = now or utcnow()
        claim = _claim_next(moment, lease, exclude=seen)
        if claim is None:
            break
        seen.append(claim.id)
        if claim.attempt > max_attempts:
            # Claimed before by a worker that never recorded an outcome (it crashed, or this row crashes it).
            outcome = _record(claim, status="failed",
                              last_error=f"no outcome recorded after {max_attempts} attempts")
        else:
            outcome = _deliver(claim, client, config, moment, max_attempts, base)
        if outcome:
            counts[outcome] += 1
    return counts


def _claim_next(now: datetime, lease: timedelta, *, exclude: list[str]) -> _Claim | None:
    """Claim the oldest due row (skipping rows other workers hold): count the attempt, lease it, commit."""
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


def _deliver(claim: _Claim, client, config, now: datetime, max_attempts: int, base: float) -> str | None:
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
        if claim.attempt >= max_attempts:
            log.warning("notification %s failed after %s attempts (%s)", claim.id, claim.attempt, exc.detail)
            return _record(claim, status="failed", last_error=exc.detail)
        retry_at = now + timedelta(seconds=base * 2 ** (claim.attempt - 1))
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


def run_worker(app: Flask, *, stop: threading.Event) -> None:
    """Run passes every NOTIFY_POLL_SECONDS until `stop` is set; a failing pass is logged, not fatal."""
    poll = float(app.config["NOTIFY_POLL_SECONDS"])
    batch = max(1, int(app.config["NOTIFY_BATCH_SIZE"]))
    log.info("notification worker started: every %ss, up to %s messages a pass", poll, batch)
    while not stop.is_set():
        counts: dict | None = None
        try:
            # A fresh app context (and database session) per pass: nothing lingers between passes.
            with app.app_context():
                counts = deliver_pending(limit=batch, stop=stop)
        except Exception:  # noqa: BLE001 - the worker outlives a database restart or a bad pass; logged below
            log.exception("notification pass failed; trying again in %ss", poll)
        if counts and any(counts.values()):
            log.info("notifications: %s", format_counts(counts))
        # A full batch means more may be due: go on at once instead of waiting.
        if not (counts and sum(counts.values()) >= batch):
            stop.wait(poll)
    log.info("notification worker stopped")


def start_worker_thread(app: Flask) -> threading.Event:
    """Run the worker in a daemon thread (flask dev); set the returned event to stop it."""
    stop = threading.Event()
    threading.Thread(target=run_worker, args=(app,), kwargs={"stop": stop}, name="notify-worker",
                     daemon=True).start()
    return stop


def format_counts(counts: dict) -> str:
    """`sent 3, refused 0, retrying 1, failed 0`: a pass's counts for a log line or the CLI."""
    return ", ".join(f"{outcome} {counts.get(outcome, 0)}" for outcome in OUTCOMES)
