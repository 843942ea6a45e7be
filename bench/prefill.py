"""Benchmark: a prefill from 8 connectors each answering in 100 ms, through the app's service path.

    python bench/prefill.py [--runs 40] [--hang-runs 5] [--database-url URL]

The database is --database-url, else DATABASE_URL from the environment, else a fresh SQLite file; give an
empty PostgreSQL database (the bench creates its tables and leaves them).

A second process (this script with --serve) runs 8 sandbox bureau services on 127.0.0.1, each answering after
100 ms (the bureaus' own threads must not compete with the app's for the GIL). This process builds the app on
a fresh SQLite file (or --database-url), registers and approves 8 connectors with disjoint elements through
the registry service, pushes their secrets to the bureaus, creates a matter needing all their elements, a
citizen bound to 张伟, a draft with consent, and then times `app.applications.services.drafting.prefill` — the POST
…/prefill service call: 8 parallel connector calls under one deadline, 8 chained data-access records in one
transaction with the encrypted snapshot. It also times the engine alone (`runtime().prefill`, no log, no
storage), alternating with the service runs so that both see the same machine load, and prints the service's
overhead over the engine. Floor: 100 ms (every connector answers in 100 ms); goal: p50/p95 ≤ 1.2 × floor.

Then one bureau hangs: each prefill must return within PREFILL_DEADLINE_SECONDS + 50 ms with that connector's
fields `timeout`; the measured overrun is printed.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DELAY_MS = 100
# Eight connectors with disjoint elements: (sandbox bureau kind, connector name, mapping of the elements).
CONNECTORS = [
    ("population", "人口-姓名", {"person.name": "data.xm", "person.gender": "data.xb"}),
    ("population", "人口-户籍", {"person.household_address": "data.hjdz", "person.household_region": "data.hjqhdm"}),
    ("population", "人口-婚姻", {"person.marital_status": "data.hyzk", "person.ethnicity": "data.mz"}),
    ("social_insurance", "社保-参保", {"social_insurance.status": "result.insured.cbzt",
                                      "social_insurance.months_paid": "result.insured.ljjfys"}),
    ("social_insurance", "社保-医保", {"social_insurance.medical_insurance_status": "result.insured.yb.cbzt"}),
    ("housing_fund", "公积金", {"housing_fund.account_status": "data.zhzt", "housing_fund.balance": "data.zhye"}),
    ("property", "不动产", {"property.count": "data.zs", "property.certificates": "data.bdcqz"}),
    ("marriage", "婚姻登记", {"marriage.status": "data.hyzt", "marriage.registration_date": "data.djrq"}),
]


# ------------------------------------------------------------------------------------------- bureau process


def _as_face_bound(citizen, name: str, id_number: str) -> None:
    """Give the bench's citizen the identity a real-name claim and a face pass leave (what prefill needs);
    the bench measures the prefill, not the proof (tests/face/test_assurance.py covers that)."""
    from app.extensions import db
    from app.pii import mask_id_number, vault

    pii = vault()
    citizen.real_name_encrypted, citizen.id_number_encrypted = pii.encrypt(name), pii.encrypt(id_number)
    citizen.id_number_hash, citizen.id_number_masked = pii.pseudonym(id_number), mask_id_number(id_number)
    citizen.assurance = "face"
    db.session.commit()


def serve_bureaus() -> None:
    """Run one bureau per connector, each answering after DELAY_MS; print their URLs; stop on stdin EOF."""
    import logging

    import requests

    from app.sandbox.bureaus import create_bureau_app
    from app.sandbox.server import serve

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    servers = [serve(create_bureau_app(kind)) for kind, _name, _mapping in CONNECTORS]
    for server in servers:
        requests.post(f"{server.url}/_sandbox/mode", json={"mode": "normal", "delay_ms": DELAY_MS},
                      timeout=5).raise_for_status()
    print(json.dumps([server.url for server in servers]), flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    for server in servers:
        requests.post(f"{server.url}/_sandbox/reset", timeout=5)
        server.stop()


# ---------------------------------------------------------------------------------------------- the bench


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def setup(urls: list[str], database_url: str):
    """The app with 8 approved connectors, a matter needing all their elements, and a consented draft."""
    import requests

    from app import create_app
    from app.accounts.services import staff
    from app.applications.services import consent
    from app.applications.services import drafting as applications
    from app.catalogue import services as catalogue
    from app.catalogue.schemas import MatterWriteSchema
    from app.catalogue.seed import load_seed_file, seed_catalogue
    from app.connectors.services import registry as connectors
    from app.extensions import db

    app = create_app({
        "APP_ENV": "testing",
        "DATABASE_URL": database_url,
        "SANDBOX_ENABLED": False,
        "CONNECTOR_ALLOWED_INSECURE_ORIGINS": urls,
        # A hanging bureau must keep hanging for every run, not trip its breaker after five.
        "CONNECTOR_CIRCUIT_FAILURE_THRESHOLD": 1_000_000,
    })
    with app.app_context():
        db.create_all()
        seed_catalogue()
        bureau = staff.create_staff("bench-bureau", "bench-password-123", ["bureau"], bureau_code="ga")
        admin = staff.create_staff("bench-admin", "bench-password-123", ["admin"])
        elements = []
        for url, (_kind, name, mapping) in zip(urls, CONNECTORS, strict=True):
            query_path = {"population": "/rkxx/v1/query", "social_insurance": "/api/sbxx/query",
                          "housing_fund": "/gjj/grzh/query", "property": "/bdc/qlxx/query",
                          "marriage": "/hydj/query"}[_kind]
            row, secret = connectors.register(
                {"name": name, "base_url": url, "mapping": mapping, "query_path": query_path,
                 "timeout_seconds": 3.0}, bureau)
            connectors.approve(row.id, admin)
            requests.post(f"{url}/_sandbox/secret", json={"secret": secret}, timeout=5).raise_for_status()
            elements.append(list(mapping))
        body = dict(next(m for m in load_seed_file()["matters"] if m["code"] == "GJJ-GG-002"))
        body.update(code="BENCH-8", name="八个部门共享数据的测试事项")
        body["materials"] = [
            {"code": f"M{n}", "name": f"材料{n}", "evidence": [{"type": "shared_data", "elements": names}]}
            for n, names in enumerate(elements, 1)
        ]
        catalogue.create_matter(MatterWriteSchema().load(body), changed_by="bench")
        from app.accounts.models import Citizen

        citizen = Citizen(openid="bench-citizen")
        db.session.add(citizen)
        db.session.commit()
        _as_face_bound(citizen, "张伟", "410105198503120013")
        draft = applications.create_draft(citizen, "BENCH-8")
        required = consent.consent_required(catalogue.get_matter("BENCH-8"))
        consent.grant_consent(draft, citizen, required["elements"], required["purpose"])
        return app, citizen.id, draft.id, required


def time_service(app, citizen_id: str, application_id: str, runs: int, *, engine: dict | None = None
                 ) -> tuple[list[float], dict, list[float]]:
    """Wall time (ms) of the prefill service call, `runs` times; the last answer; and, given `engine` (the
    `required` of `setup`), that of the engine alone before each service call."""
    from app.accounts.models import Citizen
    from app.applications.models import Application
    from app.applications.services import prefill
    from app.extensions import db

    timings, answer, engine_timings = [], {}, []
    with app.app_context():
        for n in range(runs):
            if engine is not None:
                engine_timings.append(time_engine(engine))
            citizen = db.session.get(Citizen, citizen_id)
            application = db.session.get(Application, application_id)
            started = time.perf_counter()
            answer = prefill.prefill(application, citizen, request_id=f"bench-{n:04d}")
            timings.append((time.perf_counter() - started) * 1000)
            db.session.remove()
    return timings, answer, engine_timings


def time_engine(required: dict) -> float:
    """Wall time (ms) of the engine alone: the 8 parallel calls, no log written, nothing stored."""
    from app.connectors.services.runtime import runtime
    from shared_data.client import CallContext

    context = CallContext(purpose=required["purpose"], application_id="bench", acting_user="citizen:bench",
                          request_id="bench-engine")
    started = time.perf_counter()
    runtime().prefill("410105198503120013", required["elements"], context)
    return (time.perf_counter() - started) * 1000


def report(label: str, timings: list[float]) -> None:
    p50, p95 = statistics.median(timings), percentile(timings, 0.95)
    print(f"{label:<34} n={len(timings):<3} p50 {p50:6.1f} ms ({p50 / DELAY_MS:.2f}×)   "
          f"p95 {p95:6.1f} ms ({p95 / DELAY_MS:.2f}×)   max {max(timings):6.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--hang-runs", type=int, default=5)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_bureaus()
        return

    bureaus = subprocess.Popen([sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True, cwd=ROOT)
    try:
        urls = json.loads(bureaus.stdout.readline())
        with tempfile.TemporaryDirectory() as tmp:
            database_url = args.database_url or f"sqlite:///{tmp}/bench.db"
            app, citizen_id, application_id, required = setup(urls, database_url)
            gc.freeze()  # as wsgi.py does once the app is built (the objects of start-up out of the collector's way)
            print(f"8 connectors in a separate process, each answering in {DELAY_MS} ms; "
                  f"{len(required['elements'])} elements; database {database_url.split(':')[0]}")
            time_service(app, citizen_id, application_id, 3, engine=required)  # warm-up: connections, caches
            service, answer, engine = time_service(app, citizen_id, application_id, args.runs, engine=required)
            assert {f["status"] for f in answer["fields"].values()} == {"ok"}, answer["fields"]
            report("engine alone", engine)
            report("service prefill (log + store)", service)
            overhead = statistics.median(service) - statistics.median(engine)
            print(f"{'service overhead over the engine':<34} p50 {overhead:+6.1f} ms")

            if args.hang_runs:
                import requests

                requests.post(f"{urls[5]}/_sandbox/mode", json={"mode": "hang"}, timeout=5).raise_for_status()
                deadline_ms = app.config["PREFILL_DEADLINE_SECONDS"] * 1000
                hung, answer, _ = time_service(app, citizen_id, application_id, args.hang_runs)
                hung_fields = {name: f["status"] for name, f in answer["fields"].items()
                               if name in CONNECTORS[5][2]}
                others = {f["status"] for name, f in answer["fields"].items() if name not in CONNECTORS[5][2]}
                overruns = [t - deadline_ms for t in hung]
                print(f"one connector hanging (deadline {deadline_ms:.0f} ms): {hung_fields}, others {sorted(others)}")
                print(f"  elapsed {min(hung):.1f}–{max(hung):.1f} ms; overrun past the deadline "
                      f"{min(overruns):+.1f} to {max(overruns):+.1f} ms (goal ≤ +50 ms)")
                requests.post(f"{urls[5]}/_sandbox/reset", timeout=5)
            with app.app_context():
                from app.connectors.services.runtime import runtime
                from app.extensions import db

                runtime().close()
                db.engine.dispose()
    finally:
        bureaus.stdin.close()
        bureaus.wait(timeout=30)


if __name__ == "__main__":
    main()
