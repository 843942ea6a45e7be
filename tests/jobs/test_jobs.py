"""The job system (app/jobs) with its real processes: `flask jobs worker` and `flask jobs scheduler` started as
subprocesses on this run's queue (a SQLite file, or Redis under this run's prefix) and database, sending to the
WeChat stand-in over HTTP.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from app import jobs
from app.applications.models import Application
from app.applications.services.notices import notify_status_change
from app.audit import services as audit
from app.config import ConfigError
from app.extensions import db
from app.ledger.models import Checkpoint
from app.notifications.models import Notification
from tests.helpers import REPOSITORY

# Short periods, so that what the scheduler does happens within a test.
PROCESS_SETTINGS = {"JOBS_TICK_SECONDS": "1", "NOTIFY_SWEEP_SECONDS": "1", "NOTIFY_RETRY_BASE_SECONDS": "1",
                    "AUDIT_CHECKPOINT_SECONDS": "2", "JOBS_WORKERS": "2"}


def process_env(test_settings: dict, **extra: str) -> dict:
    """The environment a job process of this run needs: the run's database, queue, stand-in and witness."""
    env = {**os.environ, "PYTHONPATH": str(REPOSITORY), "FLASK_APP": "wsgi", "APP_ENV": "testing",
           "DATABASE_URL": test_settings["DATABASE_URL"], "REDIS_KEY_PREFIX": test_settings["REDIS_KEY_PREFIX"],
           "JOBS_SQLITE_PATH": test_settings["JOBS_SQLITE_PATH"], "WECHAT_API_BASE": test_settings["WECHAT_API_BASE"],
           "AUDIT_WITNESS_FILE": test_settings["AUDIT_WITNESS_FILE"], "UPLOAD_STORAGE": "memory",
           **PROCESS_SETTINGS, **extra}
    if test_settings["REDIS_URL"]:
        env["REDIS_URL"] = test_settings["REDIS_URL"]
    else:
        env.pop("REDIS_URL", None)
    return env


class Processes:
    """Job processes started by a test module; each one's output goes to a file (read when a test fails)."""

    def __init__(self, settings: dict, directory: Path) -> None:
        self.settings, self.directory, self.running = settings, directory, {}

    def start(self, role: str, **extra: str) -> subprocess.Popen:
        log = open(self.directory / f"{role}-{len(self.running)}.log", "w")  # noqa: SIM115 - closed in stop()
        process = subprocess.Popen([sys.executable, "-m", "flask", "jobs", role], cwd=REPOSITORY,
                                   env=process_env(self.settings, **extra), stdout=log, stderr=subprocess.STDOUT,
                                   text=True)
        self.running[process] = log
        return process

    def output(self, process: subprocess.Popen) -> str:
        if not self.running[process].closed:
            self.running[process].flush()
        return Path(self.running[process].name).read_text()

    def wait_started(self, process: subprocess.Popen) -> None:
        wait_for(lambda: "consumer started" in self.output(process) or process.poll() is not None,
                 what="the job process starting")
        assert process.poll() is None, self.output(process)

    def stop(self, process: subprocess.Popen, sig: int = signal.SIGTERM) -> int:
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.running[process].close()
        return process.returncode


@pytest.fixture(scope="module")
def processes(test_settings, tmp_path_factory):
    started = Processes(test_settings, tmp_path_factory.mktemp("jobs-logs"))
    yield started
    for process in list(started.running):
        started.stop(process)


@pytest.fixture(scope="module")
def worker_and_scheduler(app, processes):
    """One worker and one scheduler for the module's tests (each test's fresh state empties their queue)."""
    return processes.start("worker"), processes.start("scheduler")


def wait_for(condition, seconds: float = 30.0, what: str = "the condition"):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {seconds:g} s")


def stand_in(server, touser: str) -> dict:
    return requests.get(f"{server.url}/_sandbox/messages", params={"touser": touser}, timeout=5).json()


def notify(citizen_id: str) -> str:
    """A status change and its notification, committed together as the lifecycle does them."""
    application = Application(citizen_id=citizen_id, matter_code="gjj-withdrawal", matter_version=1,
                              acting_user=f"citizen:{citizen_id}", status="submitted")
    db.session.add(application)
    notification = notify_status_change(application, "住房公积金提取", "submitted", None)
    db.session.commit()
    return notification.id


def status(notification_id: str) -> tuple[str, int]:
    db.session.expire_all()
    row = db.session.get(Notification, notification_id)
    return row.status, row.attempts


# --- the outbox through the queue -----------------------------------------------------------------------------

def test_a_committed_notification_reaches_wechat_through_the_worker(app, worker_and_scheduler, wechat_server,
                                                                    citizen):
    openid = f"jobs-{uuid.uuid4().hex[:10]}"
    with app.app_context():
        notification_id = notify(citizen(openid))
        wait_for(lambda: status(notification_id)[0] == "sent", what="the message being sent")
        assert status(notification_id) == ("sent", 1)
    assert len(stand_in(wechat_server, openid)["messages"]) == 1


def test_the_same_task_queued_many_times_sends_once(app, worker_and_scheduler, wechat_server, citizen):
    """The row's claim is the dedupe key: tasks queued again (by the commit, by sweeps, by hand) do nothing."""
    openid = f"jobs-{uuid.uuid4().hex[:10]}"
    with app.app_context():
        notification_id = notify(citizen(openid))
        for _ in range(5):
            jobs.enqueue("notifications.send", notification_id)
        wait_for(lambda: status(notification_id)[0] == "sent", what="the message being sent")
        time.sleep(2.5)  # two more sweeps, and every queued duplicate run
        assert status(notification_id) == ("sent", 1)
    assert stand_in(wechat_server, openid)["attempts"] == 1


def test_a_notification_whose_task_was_lost_is_sent_by_the_sweep(app, make_app, worker_and_scheduler,
                                                                 wechat_server, citizen):
    """The queue is down when the change commits: the commit stands, and the sweep sends the message later."""
    openid = f"jobs-{uuid.uuid4().hex[:10]}"
    with app.app_context():
        citizen_id = citizen(openid)
    unreachable = make_app(JOBS_BACKEND="redis", REDIS_URL="redis://127.0.0.1:9/0")
    # Only the queue is away: with the shared store away too the change itself would be refused (the read
    # cache's stamps cannot be renewed: app/web/readcache.py), and nothing would be left for a sweep.
    from app.state import create_store

    unreachable.extensions["state"] = create_store(None)
    with unreachable.app_context():
        notification_id = notify(citizen_id)  # logs that the queue is unavailable; raises nothing
    with app.app_context():
        wait_for(lambda: status(notification_id)[0] == "sent", what="the sweep sending the message")
        assert status(notification_id) == ("sent", 1)
    assert len(stand_in(wechat_server, openid)["messages"]) == 1


def test_wechat_busy_is_retried_by_the_queue_after_the_backoff(app, worker_and_scheduler, wechat_server, citizen):
    openid = f"flaky-{uuid.uuid4().hex[:10]}"  # the stand-in answers -1 (busy) to the first send only
    with app.app_context():
        notification_id = notify(citizen(openid))
        started = time.monotonic()
        wait_for(lambda: status(notification_id)[0] == "sent", what="the retry being sent")
        assert time.monotonic() - started >= 1.0  # NOTIFY_RETRY_BASE_SECONDS after the first attempt
        assert status(notification_id) == ("sent", 2)
    assert stand_in(wechat_server, openid)["attempts"] == 2
    assert len(stand_in(wechat_server, openid)["messages"]) == 1


# --- periodic tasks -------------------------------------------------------------------------------------------

def test_the_scheduler_has_the_worker_cut_checkpoints_and_publish_them(app, worker_and_scheduler, test_settings):
    with app.app_context():
        audit.record_access("auditor:jobs-test", "query", "face-verifications", {}, 0, "req-jobs")
        chain = audit.CHAINED_LOGS["auditor-access"].CHAIN
        wait_for(lambda: db.session.scalar(sa.select(sa.func.count()).select_from(Checkpoint)
                                           .where(Checkpoint.chain == chain)),
                 what="a checkpoint of the auditor-access log")
    witness = Path(test_settings["AUDIT_WITNESS_FILE"])
    wait_for(witness.exists, what="the witness file")
    published = [json.loads(line) for line in witness.read_text().splitlines() if line.strip()]
    assert any(entry["size"] >= 1 for entry in published)


def test_a_worker_stops_on_sigterm_and_a_killed_one_loses_no_message(app, processes, wechat_server, citizen):
    """SIGTERM ends a worker cleanly; after a SIGKILL the message waits in the outbox for the next worker."""
    # No worker may run while the message is written: the module's pair (started for the tests above, which
    # run first in any process) would take it, and CI once caught it in the middle of sending.
    for running in list(processes.running):
        processes.stop(running)
    calm = processes.start("worker")
    processes.wait_started(calm)
    assert processes.stop(calm) == 0, processes.output(calm)
    openid = f"jobs-{uuid.uuid4().hex[:10]}"
    killed = processes.start("worker", JOBS_WORKERS="1")
    processes.wait_started(killed)
    processes.stop(killed, signal.SIGKILL)
    with app.app_context():
        notification_id = notify(citizen(openid))  # queued while no worker runs
        assert status(notification_id) == ("pending", 0)
        scheduler, worker = processes.start("scheduler"), processes.start("worker")
        try:
            wait_for(lambda: status(notification_id)[0] == "sent", what="the message being sent")
        finally:
            for process in (scheduler, worker):
                processes.stop(process)
    assert len(stand_in(wechat_server, openid)["messages"]) == 1
    assert openid not in processes.output(worker)  # ids and counts only in the logs


# --- configuration and the commands --------------------------------------------------------------------------

def test_periodic_tasks_run_once_per_period_whatever_the_tick():
    for every, tick in ((60.0, 10.0), (15.0, 1.0), (10.0, 10.0), (3600.0, 10.0)):
        due = jobs._every(every, tick)
        start = datetime(2026, 12, 7, 3, 0, 4, tzinfo=UTC)
        runs = sum(due(start + timedelta(seconds=tick * i)) for i in range(int(4 * every / tick)))
        assert runs == 4, (every, tick)


def test_a_period_shorter_than_the_tick_is_refused(make_app):
    with pytest.raises(ConfigError, match="NOTIFY_SWEEP_SECONDS"):
        make_app(NOTIFY_SWEEP_SECONDS=1.0, JOBS_TICK_SECONDS=10.0)


@pytest.mark.parametrize("overrides, message", [
    ({"JOBS_BACKEND": "rabbit"}, "JOBS_BACKEND must be one of"),
    ({"JOBS_BACKEND": "redis", "REDIS_URL": None}, "JOBS_BACKEND=redis needs REDIS_URL"),
])
def test_a_queue_that_cannot_work_is_refused_at_start(make_app, overrides, message):
    with pytest.raises(ConfigError, match=message):
        make_app(**overrides)


def test_production_refuses_a_sqlite_queue():
    from app.config import validate_production

    with pytest.raises(ConfigError, match="JOBS_BACKEND must be redis in production"):
        validate_production({"JOBS_BACKEND": "sqlite"})


def test_readyz_names_a_queue_that_does_not_answer(make_app):
    unreachable = make_app(JOBS_BACKEND="redis", REDIS_URL="redis://127.0.0.1:9/0")
    # Only the queue is away: with the shared store away too the change itself would be refused (the read
    # cache's stamps cannot be renewed: app/web/readcache.py), and nothing would be left for a sweep.
    from app.state import create_store

    unreachable.extensions["state"] = create_store(None)
    response = unreachable.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["errors"]["checks"]["jobs"] == "failed"


def test_jobs_list_and_run(app):
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["jobs", "list"])
    assert listed.exit_code == 0, listed.output
    for name in ("notifications.send", "notifications.sweep", "audit.checkpoints", "applications.reminders",
                 "retention.purge"):
        assert name in listed.output
    ran = runner.invoke(args=["jobs", "run", "notifications.sweep"])
    assert ran.exit_code == 0, ran.output
    assert "notifications.sweep: 0" in ran.output
    assert runner.invoke(args=["jobs", "run", "no.such.task"]).exit_code != 0
