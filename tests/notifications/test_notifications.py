"""The notification outbox and its delivery policy, over real HTTP to the WeChat stand-in (subscribe/send).

Each test uses openids of its own (the stand-in lives for the whole session); the magic prefixes `refuse-`,
`flaky-`, `busy-`, `http500-` and `unknown-` make the stand-in answer as app/sandbox/wechat.py documents.
Delivery through the job system's worker and scheduler processes is tested in tests/jobs/test_jobs.py; here
`deliver_pending` runs the same attempts inline, with the clock in the test's hands.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa

from app.accounts.models import Citizen
from app.applications.models import Application
from app.applications.services.notices import notify_status_change, status_message
from app.extensions import db
from app.modelbase import utcnow
from app.notifications.models import Notification
from app.notifications.services import deliver_pending, enqueue
from app.sandbox.server import serve
from app.sandbox.wechat import create_wechat_app
from tests.helpers import REPOSITORY

ROOT = REPOSITORY
TEMPLATE = "sandbox-status-template"
MATTER = "住房公积金提取"
NOTHING = {"sent": 0, "refused": 0, "retrying": 0, "failed": 0}


def counts(**changed) -> dict:
    return {**NOTHING, **changed}


def unique(prefix: str = "n-") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def stand_in_messages(server, touser: str) -> dict:
    response = requests.get(f"{server.url}/_sandbox/messages", params={"touser": touser}, timeout=5)
    assert response.status_code == 200
    return response.json()


def new_application(citizen_id: str, status: str = "submitted") -> Application:
    application = Application(citizen_id=citizen_id, matter_code="gjj-withdrawal", matter_version=1,
                              acting_user=f"citizen:{citizen_id}", status=status)
    db.session.add(application)
    return application


def notify(citizen_id: str, status: str = "submitted", matter: str = MATTER, remark: str | None = None) -> str:
    """A status change and its notification committed together, as the lifecycle does; the notification id."""
    application = new_application(citizen_id, status)
    notification = notify_status_change(application, matter, status, remark)
    db.session.commit()
    return notification.id


def row(notification_id: str) -> Notification:
    db.session.expire_all()
    return db.session.get(Notification, notification_id)


# --- the outbox ---------------------------------------------------------------------------------------------

def test_a_committed_notification_is_sent_by_the_next_pass(app, wechat_server, citizen):
    openid = unique()
    with app.app_context():
        citizen_id = citizen(openid)
        notification_id = notify(citizen_id, "accepted")
        assert row(notification_id).status == "pending"

        assert deliver_pending(limit=10) == counts(sent=1)

        sent = row(notification_id)
        assert (sent.status, sent.attempts, sent.last_error) == ("sent", 1, None)
        assert sent.sent_at is not None
        application_id = sent.application_id
    [message] = stand_in_messages(wechat_server, openid)["messages"]
    assert (message["touser"], message["template_id"]) == (openid, TEMPLATE)
    assert message["data"]["thing1"] == {"value": MATTER}
    assert message["data"]["phrase2"] == {"value": "已受理"}
    assert message["data"]["character_string4"] == {"value": application_id}
    assert message["page"] == f"pages/applications/detail?id={application_id}"
    assert message["miniprogram_state"] == "developer"
    assert str(message["msgid"]) == sent.wechat_msgid


def test_enqueue_leaves_the_commit_to_the_caller(app, citizen):
    with app.app_context():
        citizen_id = citizen(unique())
        application = new_application(citizen_id)
        data = status_message(application, MATTER, "submitted")
        enqueue(citizen_id=citizen_id, application_id=application.id, kind="status_changed", data=data)
        db.session.flush()
        db.session.rollback()  # the status change failed: its notification goes with it
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Notification)) == 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Application)) == 0
        assert deliver_pending(limit=10) == NOTHING


CRASHING_WRITER = textwrap.dedent("""
    import os, signal, sys
    from app import create_app
    from app.extensions import db
    from app.applications.models import Application
    from app.applications.services.notices import notify_status_change

    database_url, citizen_id, commit = sys.argv[1], sys.argv[2], sys.argv[3] == "commit"
    app = create_app({"APP_ENV": "testing", "DATABASE_URL": database_url})
    with app.app_context():
        application = Application(citizen_id=citizen_id, matter_code="gjj-withdrawal", matter_version=1,
                                  acting_user="citizen:" + citizen_id, status="submitted")
        db.session.add(application)
        notify_status_change(application, "住房公积金提取")
        db.session.flush()  # both rows are in the database's transaction
        if commit:
            db.session.commit()
        print(application.id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # the process dies here: no rollback, no clean-up
""")


@pytest.mark.parametrize("commit", [False, True], ids=["crash-before-commit", "crash-after-commit"])
def test_a_crash_loses_neither_the_application_nor_its_notification(app, test_settings, citizen, wechat_server,
                                                                    commit):
    openid = unique()
    with app.app_context():
        citizen_id = citizen(openid)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", CRASHING_WRITER, test_settings["DATABASE_URL"], citizen_id,
         "commit" if commit else "crash"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    application_id = result.stdout.strip()
    with app.app_context():
        db.session.expire_all()
        application = db.session.get(Application, application_id)
        stored = db.session.scalars(sa.select(Notification).where(Notification.application_id == application_id)).all()
        if not commit:
            assert application is None and stored == []
            return
        assert application is not None and [n.status for n in stored] == ["pending"]
        assert deliver_pending(limit=10) == counts(sent=1)
    assert len(stand_in_messages(wechat_server, openid)["messages"]) == 1


def test_enqueue_refuses_what_wechat_could_not_send(app, citizen):
    with app.app_context():
        citizen_id = citizen(unique())
        good = {"thing1": {"value": MATTER}}
        with pytest.raises(ValueError):
            enqueue(citizen_id=citizen_id, application_id=None, kind="newsletter", data=good)
        for data in ({}, {"thing1": MATTER}, {"thing1": {"value": 3}}, {"thing1": {"value": "x", "color": "red"}}):
            with pytest.raises(ValueError):
                enqueue(citizen_id=citizen_id, application_id=None, kind="status_changed", data=data)
        assert not db.session.new


# --- outcomes -------------------------------------------------------------------------------------------------

def test_a_refusal_is_recorded_and_never_retried(app, wechat_server, citizen):
    openid = unique("refuse-")
    with app.app_context():
        notification_id = notify(citizen(openid))
        assert deliver_pending(limit=10) == counts(refused=1)
        refused = row(notification_id)
        assert (refused.status, refused.attempts, refused.sent_at) == ("refused", 1, None)
        assert refused.last_error.startswith("errcode 43101")
        assert "rid:" not in refused.last_error
        assert deliver_pending(limit=10, now=utcnow() + timedelta(days=1)) == NOTHING
    assert stand_in_messages(wechat_server, openid) == {"messages": [], "attempts": 1}


def test_a_transient_error_is_retried_after_the_backoff_then_sent(app, wechat_server, citizen):
    openid = unique("flaky-")
    with app.app_context():
        notification_id = notify(citizen(openid))
        now = utcnow()
        assert deliver_pending(limit=10, now=now) == counts(retrying=1)
        waiting = row(notification_id)
        assert (waiting.status, waiting.attempts) == ("pending", 1)
        assert waiting.last_error.startswith("errcode -1")
        assert waiting.next_attempt_at == now + timedelta(seconds=app.config["NOTIFY_RETRY_BASE_SECONDS"])

        assert deliver_pending(limit=10, now=waiting.next_attempt_at - timedelta(seconds=1)) == NOTHING
        assert deliver_pending(limit=10, now=waiting.next_attempt_at) == counts(sent=1)
        sent = row(notification_id)
        assert (sent.status, sent.attempts, sent.last_error) == ("sent", 2, None)
    assert stand_in_messages(wechat_server, openid)["attempts"] == 2
    assert len(stand_in_messages(wechat_server, openid)["messages"]) == 1


def test_attempts_back_off_exponentially_and_end_in_failed(app, wechat_server, citizen):
    openid = unique("busy-")
    max_attempts, base = app.config["NOTIFY_MAX_ATTEMPTS"], app.config["NOTIFY_RETRY_BASE_SECONDS"]
    with app.app_context():
        notification_id = notify(citizen(openid))
        now, delays = utcnow(), []
        for _ in range(max_attempts - 1):
            assert deliver_pending(limit=10, now=now) == counts(retrying=1)
            waiting = row(notification_id)
            delays.append((waiting.next_attempt_at - now).total_seconds())
            now = waiting.next_attempt_at
        assert delays == [base * 2**i for i in range(max_attempts - 1)]  # 30, 60, 120, 240, 480 s
        assert deliver_pending(limit=10, now=now) == counts(failed=1)
        failed = row(notification_id)
        assert (failed.status, failed.attempts) == ("failed", max_attempts)
        assert failed.last_error.startswith("errcode -1")
        assert deliver_pending(limit=10, now=now + timedelta(days=1)) == NOTHING
    assert stand_in_messages(wechat_server, openid)["attempts"] == max_attempts


def test_http_errors_are_transient(app, citizen):
    with app.app_context():
        notification_id = notify(citizen(unique("http500-")))
        assert deliver_pending(limit=10) == counts(retrying=1)
        assert row(notification_id).last_error == "HTTP 500"


def test_a_message_wechat_rejects_fails_without_retries(app, wechat_server, citizen):
    openid = unique("unknown-")
    with app.app_context():
        notification_id = notify(citizen(openid))
        assert deliver_pending(limit=10) == counts(failed=1)
        failed = row(notification_id)
        assert (failed.status, failed.attempts) == ("failed", 1)
        assert failed.last_error.startswith("errcode 40003")
        assert deliver_pending(limit=10, now=utcnow() + timedelta(days=1)) == NOTHING


def test_data_wechat_refuses_fails_with_47003_naming_the_field(app, citizen):
    with app.app_context():
        citizen_id = citizen(unique())
        # Built by hand, past WeChat's limit for a phrase (status_message would have cut it).
        notification = enqueue(citizen_id=citizen_id, application_id=None, kind="status_changed",
                               data={**status_message(Application(id="d" * 32), MATTER, "submitted"),
                                     "phrase2": {"value": "已经提交给了部门"}})
        db.session.commit()
        assert deliver_pending(limit=10) == counts(failed=1)
        assert row(notification.id).last_error.startswith("errcode 47003")
        assert "phrase2" in row(notification.id).last_error


def test_an_expired_access_token_is_refreshed_once(app, wechat_server, citizen):
    with app.app_context():
        first = notify(citizen(unique()))
        assert deliver_pending(limit=10) == counts(sent=1)  # the client now holds a token
        assert requests.post(f"{wechat_server.url}/_sandbox/tokens/expire", timeout=5).status_code == 204
        second = notify(citizen(unique()))
        assert deliver_pending(limit=10) == counts(sent=1)
        assert row(first).status == row(second).status == "sent"


def test_wechat_down_keeps_notifications_pending_and_raises_nothing(app, make_app, citizen):
    down = serve(create_wechat_app())
    url = down.url
    down.stop()  # nothing listens there now
    worker_app = make_app(WECHAT_API_BASE=url)
    with app.app_context():
        notification_id = notify(citizen(unique()))
    with worker_app.app_context():
        assert deliver_pending(limit=10) == counts(retrying=1)
        waiting = row(notification_id)
        assert (waiting.status, waiting.attempts, waiting.last_error) == ("pending", 1, "ConnectionError")
        assert waiting.next_attempt_at > utcnow()


def test_two_workers_send_each_message_once(app, wechat_server, citizen):
    openids = [unique() for _ in range(12)]
    with app.app_context():
        for openid in openids:
            notify(citizen(openid))
    results, errors = [], []

    def worker():
        try:
            with app.app_context():
                results.append(deliver_pending(limit=50))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sum(result["sent"] for result in results) == len(openids)
    assert [len(stand_in_messages(wechat_server, openid)["messages"]) for openid in openids] == [1] * len(openids)
    with app.app_context():
        assert set(db.session.scalars(sa.select(Notification.attempts))) == {1}


# --- the message itself -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "label"), [
    ("draft", "草稿"), ("submitted", "已提交"), ("accepted", "已受理"), ("supplement_requested", "待补正"),
    ("resubmitted", "已补正"), ("approved", "已办结"), ("rejected", "未通过"), ("delivered", "已送达"),
    ("withdrawn", "已撤回"), ("some_new_status", "已更新"),
])
def test_status_labels(status, label):
    data = status_message(Application(id="a" * 32), MATTER, status)
    assert data["phrase2"] == {"value": label}


def test_status_message_fits_wechats_limits_and_shows_beijing_time(app):
    long_name = "不动产登记、住房公积金提取与医保关系转移接续一件事联办服务"
    at = utcnow().replace(year=2025, month=6, day=1, hour=23, minute=5)
    data = status_message(Application(id="b" * 32), long_name, "rejected", "材料\n不齐全,  请 补充", at=at)
    assert set(data) == {"thing1", "phrase2", "time3", "character_string4", "thing5"}
    assert len(data["thing1"]["value"]) == 20 and data["thing1"]["value"].endswith("…")
    assert data["time3"] == {"value": "2025年06月02日 07:05"}
    assert data["thing5"] == {"value": "材料 不齐全, 请 补充"}
    assert status_message(Application(id="c" * 32), "", "approved")["thing1"] == {"value": "政务服务事项"}


def test_a_long_matter_name_is_cut_so_wechat_accepts_it(app, wechat_server, citizen):
    openid = unique()
    with app.app_context():
        notify(citizen(openid), matter="不动产登记、住房公积金提取与医保关系转移接续一件事联办服务",
               remark="您提交的申请已由部门受理,正在审核中,预计五个工作日内办结")
        assert deliver_pending(limit=10) == counts(sent=1)
    [message] = stand_in_messages(wechat_server, openid)["messages"]
    assert len(message["data"]["thing5"]["value"]) == 20


def test_no_personal_data_in_the_outbox_or_the_message(app, client, citizen_as, wechat_server):
    name, id_number = "张伟", "410105198503120013"
    citizen_as(name, id_number)
    with app.app_context():
        person = db.session.scalars(sa.select(Citizen).where(Citizen.assurance == "face")).one()
        openid = person.openid
        notification_id = notify(person.id, "approved")
        assert deliver_pending(limit=10) == counts(sent=1)
        stored = db.session.execute(sa.select(Notification.__table__).where(
            Notification.id == notification_id)).mappings().one()
    message = repr(stand_in_messages(wechat_server, openid)["messages"][0]["data"])
    for secret in (name, id_number, openid):  # the openid is read from the citizen when sending, not copied
        assert secret not in repr(dict(stored))
    assert name not in message and id_number not in message


# --- the stand-in -------------------------------------------------------------------------------------------------

@pytest.fixture
def token(wechat_server) -> str:
    params = {"grant_type": "client_credential", "appid": "wx-sandbox-appid", "secret": "sandbox-wechat-secret"}
    return requests.get(f"{wechat_server.url}/cgi-bin/token", params=params, timeout=5).json()["access_token"]


VALID_DATA = {"thing1": {"value": MATTER}, "phrase2": {"value": "已受理"}, "time3": {"value": "2025年06月01日 15:01"},
              "character_string4": {"value": "a" * 32}, "thing5": {"value": "部门正在办理"}}


@pytest.mark.parametrize(("change", "errcode"), [
    ({"touser": None}, 40003),
    ({"touser": "has space"}, 40003),
    ({"template_id": None}, 40037),
    ({"template_id": "someone-elses-template"}, 40037),
    ({"page": 7}, 41030),
    ({"miniprogram_state": "beta"}, 47003),
    ({"data": None}, 47003),
    ({"data": {k: v for k, v in VALID_DATA.items() if k != "time3"}}, 47003),
    ({"data": {**VALID_DATA, "thing9": {"value": "x"}}}, 47003),
    ({"data": {**VALID_DATA, "thing1": {"value": "x" * 21}}}, 47003),
    ({"data": {**VALID_DATA, "phrase2": {"value": "done"}}}, 47003),
    ({"data": {**VALID_DATA, "time3": {"value": "tomorrow"}}}, 47003),
    ({"data": {**VALID_DATA, "character_string4": {"value": "编号"}}}, 47003),
    ({}, 0),
])
def test_stand_in_checks_the_message(wechat_server, token, change, errcode):
    body = {"touser": unique(), "template_id": TEMPLATE, "data": VALID_DATA, "page": "pages/index",
            "miniprogram_state": "formal", **change}
    body = {key: value for key, value in body.items() if value is not None}
    answer = requests.post(f"{wechat_server.url}/cgi-bin/message/subscribe/send", params={"access_token": token},
                           json=body, timeout=5).json()
    assert answer["errcode"] == errcode
    if errcode:
        assert "rid:" in answer["errmsg"]
    else:
        assert isinstance(answer["msgid"], int)


@pytest.mark.parametrize(("access_token", "errcode"), [(None, 41001), ("forged", 40001)])
def test_stand_in_checks_the_access_token(wechat_server, access_token, errcode):
    params = {"access_token": access_token} if access_token else {}
    answer = requests.post(f"{wechat_server.url}/cgi-bin/message/subscribe/send", params=params,
                           json={"touser": "x", "template_id": TEMPLATE, "data": VALID_DATA}, timeout=5).json()
    assert answer["errcode"] == errcode


def test_stand_in_messages_can_be_cleared(wechat_server, token):
    openid = unique()
    requests.post(f"{wechat_server.url}/cgi-bin/message/subscribe/send", params={"access_token": token},
                  json={"touser": openid, "template_id": TEMPLATE, "data": VALID_DATA}, timeout=5)
    assert len(stand_in_messages(wechat_server, openid)["messages"]) == 1
    assert requests.delete(f"{wechat_server.url}/_sandbox/messages", timeout=5).status_code == 204
    assert stand_in_messages(wechat_server, openid) == {"messages": [], "attempts": 0}


def test_a_pass_logs_no_openid(app, citizen, caplog):
    openid = unique("busy-")
    with app.app_context():
        notify(citizen(openid))
        caplog.clear()
        assert deliver_pending(limit=10) == counts(retrying=1)
    assert caplog.records and openid not in caplog.text
