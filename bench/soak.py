"""Load and fault soak: a mixed workload for a fixed time on the whole service, with faults, then the invariants.

    python bench/soak.py [--seconds 300] [--faults postgres,redis,worker,bureau] [--workers 2]

Everything runs on 127.0.0.1 on servers this script starts itself (bench/stack.py): a private PostgreSQL
cluster (`initdb`/`pg_ctl` on a port of its own) and a private `redis-server`, migrated and seeded, the sandbox
stand-ins, gunicorn with --workers processes, one job worker and the job scheduler. The machine's shared
PostgreSQL and Redis are never touched.

The workload, in threads, for --seconds: one citizen per sandbox person (log in, prove the identity by face
once, then over and over: browse the catalogue, open a draft of 住房公积金个人缴存证明出具, consent, prefill from
the bureaus, verify the face, submit); a reviewer accepting and approving what was submitted; an auditor
querying the data-access log and verifying the chains. Faults, spread over the run: PostgreSQL restarted,
Redis stopped for a few seconds and started again, the job worker killed with SIGKILL (another is started),
the housing-fund bureau hanging for a few seconds.

It prints throughput, p50/p95/p99 and errors per operation, the 503s during each fault and how long the
service took to answer again, each process's memory (start, end, slope), and then checks that nothing is lost
or half-written: every submission the service acknowledged is in the database, submitted, with its frozen
values; every notification is there and sent (after the queue has drained); every audit chain, Merkle tree,
checkpoint and the witness verify (`flask audit verify`); no request ever got a 500. Exit status 1 when an
invariant fails. tests/soak/test_soak.py runs a short version (seconds) in `make test`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import requests
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stack import BIN, ROOT, PrivatePostgres, PrivateRedis, Service, wait_until  # noqa: E402

PEOPLE = [("张伟", "410105198503120013"), ("李娜", "410102199207040225"), ("王强", "410103197811300350"),
          ("刘洋", "41012220010215047X"), ("陈静", "41010419650908058X"), ("赵磊", "410105199001010636")]
MATTER = "GJJ-GG-002"  # 住房公积金个人缴存证明出具: zero-material for whoever the housing-fund bureau knows
FAULTS = ("postgres", "redis", "worker", "bureau")
TIMEOUT = 15
STAFF_PASSWORD = "sandbox-pass"


@dataclass
class Stats:
    """What every call answered, by operation: latencies, status classes, and the submissions acknowledged."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    acknowledged: set[str] = field(default_factory=set)
    timeline: list[tuple[float, str, int]] = field(default_factory=list)  # (time, operation, status)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, operation: str, status: int, seconds: float) -> None:
        with self.lock:
            self.latencies[operation].append(seconds * 1000)
            kind = ("transport" if status == 0 else "ok" if status < 400 else "outage" if status == 503
                    else str(status))
            self.statuses[operation][kind] += 1
            self.timeline.append((time.monotonic(), operation, status))


class Client:
    def __init__(self, base: str, stats: Stats) -> None:
        self.base, self.stats = base, stats
        self.http = requests.Session()
        self.token: str | None = None

    def call(self, operation: str, method: str, path: str, **kwargs) -> requests.Response | None:
        headers = kwargs.pop("headers", {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        started = time.perf_counter()
        try:
            response = self.http.request(method, self.base + path, headers=headers, timeout=TIMEOUT, **kwargs)
        except requests.RequestException:
            self.stats.record(operation, 0, time.perf_counter() - started)
            return None
        self.stats.record(operation, response.status_code, time.perf_counter() - started)
        return response


def ok(response: requests.Response | None, *statuses: int) -> bool:
    return response is not None and response.status_code in (statuses or (200,))


def citizen_loop(base: str, stats: Stats, person: tuple[str, str], index: int, stop: threading.Event) -> None:
    client = Client(base, stats)
    while not stop.is_set() and not client.token:  # log in and prove the identity (retried through faults)
        login = client.call("login", "POST", "/api/v1/auth/wechat/login", json={"code": f"dev-soak-{index}"})
        if not ok(login):
            time.sleep(0.5)
            continue
        client.token = login.json()["access_token"]
        claim = client.call("real_name", "POST", "/api/v1/me/real-name",
                            json={"name": person[0], "id_number": person[1]})
        if claim is not None and claim.status_code == 422:
            return  # a sandbox person the registry does not confirm (API.md's table): nothing to load with
        if not ok(claim):
            client.token = None
            time.sleep(5 if claim is not None and claim.status_code == 429 else 0.5)
            continue
        started = client.call("face", "POST", "/api/v1/face/sessions",
                              json={"purpose": "real_name", "biometric_consent": True}, )
        done = started is not None and ok(started, 201) and client.call(
            "face", "POST", f"/api/v1/face/sessions/{started.json()['session_id']}/complete",
            json={"evidence": {"sandbox": "pass"}})
        if not ok(done or None):
            client.token = None
            time.sleep(0.5)
            continue
        client.token = done.json()["tokens"]["access_token"]
    while not stop.is_set():
        client.call("catalogue", "GET", "/api/v1/matters", params={"per_page": 20})
        created = client.call("draft", "POST", "/api/v1/applications", json={"matter_code": MATTER})
        if not ok(created, 201):
            time.sleep(0.2)
            continue
        application = created.json()
        consent = application.get("consent_required") or {}
        path = f"/api/v1/applications/{application['id']}"
        if consent.get("elements") and not ok(client.call(
                "consent", "POST", path + "/consent", json={"elements": consent["elements"],
                                                             "purpose": consent["purpose"]}), 201):
            continue
        if not ok(client.call("prefill", "POST", path + "/prefill")):
            continue
        face = client.call("face", "POST", "/api/v1/face/sessions",
                           json={"purpose": "identity_check", "biometric_consent": True, "matter_code": MATTER})
        if not ok(face, 201) or not ok(client.call("face", "POST", f"/api/v1/face/sessions/"
                                                   f"{face.json()['session_id']}/complete",
                                                   json={"evidence": {"sandbox": "pass"}})):
            continue
        submitted = client.call("submit", "POST", path + "/submit",
                                headers={"Idempotency-Key": f"soak-{application['id']}"})
        if ok(submitted):
            with stats.lock:
                stats.acknowledged.add(application["id"])


def staff_login(client: Client, username: str) -> bool:
    login = client.call("staff_login", "POST", "/api/v1/auth/staff/login",
                        json={"username": username, "password": STAFF_PASSWORD})
    if ok(login):
        client.token = login.json()["access_token"]
        return True
    return False


def reviewer_loop(base: str, stats: Stats, stop: threading.Event) -> None:
    client = Client(base, stats)
    while not stop.is_set():
        if not client.token and not staff_login(client, "reviewer-gjj"):
            time.sleep(0.5)
            continue
        inbox = client.call("inbox", "GET", "/api/v1/review/applications",
                            params={"status": "submitted", "per_page": 20})
        if not ok(inbox):
            time.sleep(0.5)
            continue
        for item in inbox.json().get("items", [])[:5]:
            path = f"/api/v1/review/applications/{item['id']}"
            if ok(client.call("accept", "POST", path + "/accept")):
                client.call("approve", "POST", path + "/approve", json={})
        time.sleep(0.2)


def auditor_loop(base: str, stats: Stats, stop: threading.Event) -> None:
    client = Client(base, stats)
    rounds = 0
    while not stop.is_set():
        if not client.token and not staff_login(client, "auditor"):
            time.sleep(0.5)
            continue
        client.call("audit_query", "GET", "/api/v1/audit/data-access", params={"limit": 20})
        rounds += 1
        if rounds % 10 == 0:
            client.call("audit_verify", "POST", "/api/v1/audit/verify", json={"log": "all"})
        time.sleep(0.3)


# --------------------------------------------------------------------------------------------- the faults

@dataclass
class Fault:
    name: str
    started: float = 0.0
    ended: float = 0.0
    recovered: float | None = None  # when a call answered below 500 again, after the fault ended


def inject(fault: str, pg: PrivatePostgres, redis_server: PrivateRedis, service: Service) -> None:
    if fault == "postgres":
        pg.restart()
    elif fault == "redis":
        redis_server.stop()
        time.sleep(3)
        redis_server.start()
    elif fault == "worker":
        worker = service.processes["worker"]
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        time.sleep(2)
        service.start_jobs("worker")
    elif fault == "bureau":
        url = service.sandbox["bureau:housing_fund"].url
        requests.post(f"{url}/_sandbox/mode", json={"mode": "hang"}, timeout=5).raise_for_status()
        time.sleep(4)
        requests.post(f"{url}/_sandbox/mode", json={"mode": "normal"}, timeout=5).raise_for_status()


# ---------------------------------------------------------------------------------------------- memory

def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def slope(samples: list[tuple[float, int]]) -> float:
    """Least-squares slope of (seconds, kB) in MB per minute."""
    if len(samples) < 3:
        return 0.0
    xs, ys = [s[0] for s in samples], [s[1] / 1024 for s in samples]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mean_x) ** 2 for x in xs)
    return 0.0 if den == 0 else 60 * sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / den


# ------------------------------------------------------------------------------------------ the run

def run(seconds: float, faults: tuple[str, ...], *, workers: int = 2, out=sys.stdout) -> dict:
    """One soak; returns the report (`problems` empty when every invariant held)."""
    import tempfile

    workdir = Path(tempfile.mkdtemp(prefix="zsb-soak-"))
    os.chmod(workdir, 0o755)  # the private PostgreSQL may run as `postgres`
    pg, redis_server = PrivatePostgres(workdir).start(), PrivateRedis(workdir).start()
    admin = sa.create_engine(pg.url().replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text('CREATE DATABASE "zsb"'))
    admin.dispose()
    service = Service(pg.url("zsb"), redis_server.url, workdir=workdir,
                      JOBS_TICK_SECONDS="1", NOTIFY_SWEEP_SECONDS="2", NOTIFY_RETRY_BASE_SECONDS="1",
                      AUDIT_CHECKPOINT_SECONDS="5", PREFILL_DEADLINE_SECONDS="2",
                      AUDIT_WITNESS_FILE=str(workdir / "witness.jsonl"))
    stats, stop = Stats(), threading.Event()
    memory: dict[str, list[tuple[float, int]]] = defaultdict(list)
    done_faults: list[Fault] = []
    try:
        service.prepare()
        base = service.start_api(workers)
        service.start_jobs("worker")
        service.start_jobs("scheduler")
        print(f"soak: {seconds:g} s, gunicorn {workers} workers, faults: {', '.join(faults) or 'none'}",
              file=out, flush=True)
        threads = [threading.Thread(target=citizen_loop, args=(base, stats, person, i, stop), daemon=True)
                   for i, person in enumerate(PEOPLE)]
        threads += [threading.Thread(target=reviewer_loop, args=(base, stats, stop), daemon=True),
                    threading.Thread(target=auditor_loop, args=(base, stats, stop), daemon=True)]
        start = time.monotonic()
        for thread in threads:
            thread.start()
        plan = [(start + seconds * (index + 1) / (len(faults) + 1), fault) for index, fault in enumerate(faults)]
        while time.monotonic() - start < seconds:
            now = time.monotonic()
            for name, process in list(service.processes.items()):
                pids = [process.pid] + (children(process.pid) if name == "api" else [])
                for number, pid in enumerate(pids):
                    if (kb := rss_kb(pid)) is not None:
                        memory[f"{name}" if number == 0 else f"{name} worker {number}"].append((now - start, kb))
            if plan and now >= plan[0][0]:
                _, fault = plan.pop(0)
                record = Fault(fault, started=time.monotonic())
                inject(fault, pg, redis_server, service)
                record.ended = time.monotonic()
                done_faults.append(record)
                print(f"  fault {fault}: {record.ended - record.started:.1f} s", file=out, flush=True)
            time.sleep(1.0)
        stop.set()
        for thread in threads:
            thread.join(TIMEOUT + 5)
        report = check(service, pg, stats, out)
    finally:
        stop.set()
        service.stop()
        redis_server.stop()
        pg.stop()
    for record in done_faults:
        after = [t for t, _, status in stats.timeline if t >= record.ended and 0 < status < 500]
        record.recovered = (min(after) - record.ended) if after else None
    report.update(summarise(stats, done_faults, memory, seconds, out))
    if report["problems"]:
        print("PROBLEMS:\n  " + "\n  ".join(report["problems"]), file=out)
        print(f"logs kept in {workdir}", file=out)
    else:
        print("invariants: all hold", file=out)
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    return report


def check(service: Service, pg: PrivatePostgres, stats: Stats, out) -> dict:
    """After the load: let the queue drain, then compare what was acknowledged with what is stored."""
    problems: list[str] = []
    engine = sa.create_engine(pg.url("zsb").replace("postgresql://", "postgresql+psycopg://"))
    pending = sa.text("SELECT count(*) FROM notifications WHERE status = 'pending'")
    try:
        wait_until(lambda: _scalar(engine, pending) == 0, 60, "notifications still pending")
    except RuntimeError as exc:
        problems.append(f"{exc}: {_scalar(engine, pending)}")
    with engine.connect() as connection:
        rows = {row.id: row for row in connection.execute(sa.text(
            "SELECT id, status, submitted_at, submission_values_encrypted FROM applications"))}
        lost = [i for i in stats.acknowledged if i not in rows]
        unsubmitted = [i for i in stats.acknowledged if i in rows and (rows[i].status == "draft"
                                                                         or rows[i].submitted_at is None)]
        half = [i for i in stats.acknowledged if i in rows and rows[i].submission_values_encrypted is None]
        notifications = dict(connection.execute(sa.text(
            "SELECT status, count(*) FROM notifications GROUP BY status")).all())
        without = connection.execute(sa.text(
            "SELECT count(*) FROM applications a WHERE a.submitted_at IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM notifications n WHERE n.application_id = a.id)")).scalar()
        checkpoints = dict(connection.execute(sa.text(
            "SELECT chain, max(tree_size) FROM audit_checkpoints GROUP BY chain")).all())
    engine.dispose()
    problems += [f"acknowledged submission {i} missing" for i in lost]
    problems += [f"acknowledged submission {i} not submitted" for i in unsubmitted]
    problems += [f"submission {i} without its frozen values" for i in half]
    if without:
        problems.append(f"{without} submitted application(s) without a notification")
    if notifications.get("failed"):
        problems.append(f"{notifications['failed']} notification(s) failed")
    if not checkpoints:
        problems.append("no checkpoint was cut")
    verify = subprocess.run([BIN / "flask", "audit", "verify"], cwd=ROOT, env=service.env, capture_output=True,
                            text=True)
    if verify.returncode != 0:
        problems.append("flask audit verify failed: " + (verify.stdout + verify.stderr)[-500:])
    server_errors = {op: counts[kind] for op, counts in stats.statuses.items() for kind in counts
                     if kind.isdigit() and int(kind) >= 500}  # (503s count as "outage")
    if server_errors:
        problems.append(f"answers of 500 or above other than 503: {server_errors}")
    print(f"acknowledged submissions {len(stats.acknowledged)}, all stored and submitted: "
          f"{not (lost or unsubmitted or half)}; notifications {json.dumps(notifications)}; "
          f"checkpoints {json.dumps(checkpoints)}; audit verify {'ok' if verify.returncode == 0 else 'FAILED'}",
          file=out)
    return {"problems": problems, "acknowledged": len(stats.acknowledged), "notifications": notifications}


def _scalar(engine, statement):
    with engine.connect() as connection:
        return connection.execute(statement).scalar()


def summarise(stats: Stats, faults: list[Fault], memory: dict, seconds: float, out) -> dict:
    print(f"{'operation':<14} {'calls':>7} {'/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}  answers",
          file=out)
    total = 0
    for operation in sorted(stats.latencies):
        values = sorted(stats.latencies[operation])
        total += len(values)
        pct = {q: values[min(len(values) - 1, int(q * len(values)))] for q in (0.5, 0.95, 0.99)}
        answers = ", ".join(f"{kind} {count}" for kind, count in sorted(stats.statuses[operation].items()))
        print(f"{operation:<14} {len(values):>7} {len(values) / seconds:>7.1f} {pct[0.5]:>8.1f} {pct[0.95]:>8.1f} "
              f"{pct[0.99]:>8.1f}  {answers}", file=out)
    print(f"{'all':<14} {total:>7} {total / seconds:>7.1f}", file=out)
    for record in faults:
        during = [s for t, _, s in stats.timeline if record.started <= t <= record.ended + 2]
        recovered = f"{record.recovered:.1f} s" if record.recovered is not None else "never"
        print(f"fault {record.name:<9} {record.ended - record.started:5.1f} s: {during.count(503)} answered 503, "
              f"{during.count(0)} transport errors; answering again {recovered} after it ended", file=out)
    print(f"{'process':<18} {'start MB':>9} {'end MB':>8} {'slope MB/min':>13}  (slope after the first fifth)",
          file=out)
    slopes = {}
    for name, samples in sorted(memory.items()):
        # From the end of the first fifth of the run: before it, processes are still importing and warming.
        settled = [sample for sample in samples if sample[0] >= seconds / 5] or samples
        slopes[name] = slope(settled)
        print(f"{name:<18} {samples[0][1] / 1024:>9.1f} {samples[-1][1] / 1024:>8.1f} {slopes[name]:>13.2f}",
              file=out)
    return {"requests": total, "faults": [(f.name, f.recovered) for f in faults], "memory_slopes": slopes,
            "statuses": {op: dict(counts) for op, counts in stats.statuses.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--faults", default=",".join(FAULTS), help=f"comma-separated, of {', '.join(FAULTS)}")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    args = parser.parse_args()
    faults = tuple(f for f in args.faults.split(",") if f)
    unknown = set(faults) - set(FAULTS)
    if unknown:
        raise SystemExit(f"unknown faults: {', '.join(sorted(unknown))}")
    random.seed(0)
    report = run(args.seconds, faults, workers=args.workers)
    sys.exit(1 if report["problems"] else 0)


if __name__ == "__main__":
    main()
