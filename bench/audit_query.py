"""Benchmark: the auditor's face-verification log query over 1,000,000 records on PostgreSQL, and chain checks.

    python bench/audit_query.py postgresql://postgres@127.0.0.1:5432/postgres [--records 1000000]
        [--citizens 200] [--days 60] [--queries 200] [--keep]

Creates a fresh database on the server of the URL (dropped at the end unless --keep), builds the schema from
the models (create_all, as the tests do), and generates `--records` face-verification log records: `--citizens`
citizens verifying over `--days` days, each verification a session_started, result and decision record (with a
share of failures, rate limits and replays), through WeChat, local and sandbox. The hash chain is computed in
Python in seq order with the app's own `record_hash`, and the rows are loaded with COPY, so the chain is valid
and `verify_chain` has real work to do.

Then it measures, for `--queries` random (citizen, 7-day window) pairs, the first page of 50:
- the SQL the service issues (`SELECT … WHERE citizen_pseudonym = … AND recorded_at in range ORDER BY seq
  LIMIT 51`), and
- the whole auditor request (GET /api/v1/audit/face-verifications?id_number&from&to&limit=50 through the
  Flask test client: token check, validation, the query, the auditor-access log record, serialisation);
prints p50/p95/max (goal: p95 under 50 ms) and the plan of one query; then times `verify_chain` over the whole
chain (records per second) and the pass-rate statistics over the whole range.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COLUMNS = ("id", "seq", "prev_hash", "record_hash", "recorded_at")
PROVIDERS = (("wechat", "1.0", 0.8), ("local", "1.0", 0.1), ("sandbox", "1.0", 0.1))
FAIL_REASONS = ("no_match", "not_live", "poor_quality", "user_cancelled", "timeout")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))]


def create_database(base_url: str) -> tuple[str, str]:
    """A new, empty database on the server of `base_url`: (its URL, its name)."""
    import sqlalchemy as sa

    from app.config import sqlalchemy_url

    url = sa.engine.make_url(sqlalchemy_url(base_url))
    name = f"zsb_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False), name


def drop_database(base_url: str, name: str) -> None:
    import sqlalchemy as sa

    from app.config import sqlalchemy_url

    admin = sa.create_engine(sa.engine.make_url(sqlalchemy_url(base_url)), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def citizens(count: int) -> list[str]:
    """Fictitious ID-number-like strings (never real numbers); the records hold only their pseudonyms."""
    return [f"BENCH{n:013d}" for n in range(count)]


def generate(count: int, numbers: list[str], days: int, seed: int = 42):
    """Yield the hashed field dicts of `count` records in seq order, timestamps spread over `days` days."""
    from app.audit.services import pseudonym_of
    from app.face.models import FaceVerificationRecord
    from app.ledger.chain import GENESIS, record_hash

    rng = random.Random(seed)
    pseudonyms = [pseudonym_of(number) for number in numbers]
    end = datetime.now(UTC).replace(microsecond=0)
    start = end - timedelta(days=days)
    step = (end - start) / count
    prev = GENESIS
    seq = 0
    fields = FaceVerificationRecord.HASHED_FIELDS
    while seq < count:
        citizen = rng.randrange(len(pseudonyms))
        provider, version, _ = rng.choices(PROVIDERS, weights=[p[2] for p in PROVIDERS])[0]
        session_id = uuid.UUID(int=rng.getrandbits(128)).hex
        passed = rng.random() < 0.9
        reason = "pass" if passed else rng.choice(FAIL_REASONS)
        threshold = 0.4 if provider == "local" else (0.8 if provider == "sandbox" else None)
        similarity = round(rng.uniform(0.45, 0.99) if passed else rng.uniform(0.0, 0.39), 4) if threshold else None
        base = {name: None for name in fields}
        base.update(session_id=session_id, citizen_pseudonym=pseudonyms[citizen], actor=f"citizen:{citizen:032x}",
                    purpose="apply", matter_code="GJJ-GG-001", provider=provider, adapter_version=version,
                    provider_session_id=f"vid-{session_id[:24]}", attempt=rng.randint(1, 3),
                    request_id=uuid.UUID(int=rng.getrandbits(128)).hex)
        events = [
            {"event": "session_started", "failure_limit": 5},
            {"event": "result", "outcome": reason, "liveness": passed if provider != "local" else None,
             "similarity": similarity, "threshold": threshold, "provider_code": "10000" if passed else "10004"},
            {"event": "decision", "decision": "pass" if passed else "fail", "reason": reason, "outcome": reason,
             "threshold": threshold, "failures": None if passed else rng.randint(1, 5), "failure_limit": 5},
        ]
        if rng.random() < 0.03:
            events.append({"event": "replay_rejected", "reason": "already_consumed"})
        for extra in events:
            if seq >= count:
                break
            seq += 1
            recorded_at = start + step * seq
            record = {**base, **extra, "id": uuid.UUID(int=rng.getrandbits(128)).hex}
            if record["event"] == "decision" and passed:
                record["verified_until"] = recorded_at + timedelta(minutes=10)
            payload = {name: record[name] for name in fields}
            payload.update(chain="face-verifications", seq=seq, recorded_at=recorded_at)
            digest = record_hash(prev, payload)
            yield {**record, "seq": seq, "prev_hash": prev, "record_hash": digest, "recorded_at": recorded_at}
            prev = digest


def load(app, count: int, numbers: list[str], days: int) -> tuple[float, float]:
    """COPY the generated records in; returns (seconds generating + copying, seconds indexing + analysing)."""
    from app.extensions import db
    from app.face.models import FaceVerificationRecord
    from app.ledger.models import ChainHead

    table = FaceVerificationRecord.__table__
    columns = [column.name for column in table.columns]
    indexes = [index for index in table.indexes]
    began = time.perf_counter()
    with app.app_context():
        # Secondary indexes after the load: building them once is far cheaper than maintaining them per row.
        for index in indexes:
            index.drop(db.engine)
        raw = db.engine.raw_connection()
        try:
            cursor = raw.cursor()
            last = None
            with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
                for record in generate(count, numbers, days):
                    copy.write_row([record[name] for name in columns])
                    last = record
            raw.commit()
        finally:
            raw.close()
        loaded = time.perf_counter() - began
        began = time.perf_counter()
        for index in indexes:
            index.create(db.engine)
        db.session.add(ChainHead(chain="face-verifications", seq=last["seq"], head_hash=last["record_hash"]))
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql(f"VACUUM ANALYZE {table.name}")
    return loaded, time.perf_counter() - began


def windows(numbers: list[str], days: int, queries: int, seed: int = 7):
    rng = random.Random(seed)
    end = datetime.now(UTC)
    for _ in range(queries):
        to = end - timedelta(seconds=rng.uniform(0, (days - 7) * 86400))
        yield rng.choice(numbers), to - timedelta(days=7), to


def time_sql(app, numbers: list[str], days: int, queries: int) -> tuple[list[float], str]:
    import sqlalchemy as sa

    from app.audit.services import pseudonym_of
    from app.extensions import db
    from app.face.models import FaceVerificationRecord as R

    timings, full = [], 0
    with app.app_context():
        for number, since, to in windows(numbers, days, queries):
            query = (sa.select(R).where(R.citizen_pseudonym == pseudonym_of(number), R.recorded_at >= since,
                                        R.recorded_at < to).order_by(R.seq).limit(51))
            began = time.perf_counter()
            rows = db.session.scalars(query).all()
            timings.append((time.perf_counter() - began) * 1000)
            full += len(rows) > 50
            db.session.expunge_all()
        compiled = query.compile(db.engine, compile_kwargs={"literal_binds": True})
        plan = db.session.execute(sa.text(f"EXPLAIN (ANALYZE, BUFFERS) {compiled}")).scalars().all()
    print(f"{full} of {queries} windows held more than one page")
    return timings, "\n".join(plan)


def time_http(app, numbers: list[str], days: int, queries: int) -> list[float]:
    client = app.test_client()
    login = client.post("/api/v1/auth/staff/login", json={"username": "auditor", "password": "sandbox-pass"})
    headers = {"Authorization": f"Bearer {login.json['access_token']}"}
    timings = []
    for number, since, to in windows(numbers, days, queries, seed=11):
        query = {"id_number": number, "from": since.isoformat(), "to": to.isoformat(), "limit": 50}
        began = time.perf_counter()
        answer = client.get("/api/v1/audit/face-verifications", headers=headers, query_string=query)
        timings.append((time.perf_counter() - began) * 1000)
        assert answer.status_code == 200, answer.json
    return timings


def report(label: str, timings: list[float]) -> None:
    print(f"{label:<44} n={len(timings)}  p50 {statistics.median(timings):6.2f} ms  "
          f"p95 {percentile(timings, 0.95):6.2f} ms  max {max(timings):7.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("database_url", help="a PostgreSQL URL; a fresh database is created on its server")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--citizens", type=int, default=200)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    args = parser.parse_args()
    if not args.database_url.startswith(("postgres://", "postgresql")):
        sys.exit("this benchmark needs a PostgreSQL URL")

    from app import create_app
    from app.extensions import db
    from app.face.models import FaceVerificationRecord
    from app.ledger.verify import verify_chain

    url, name = create_database(args.database_url)
    print(f"database {name}; {args.records:,} records, {args.citizens} citizens, {args.days} days")
    try:
        app = create_app({"APP_ENV": "testing", "DATABASE_URL": url, "REDIS_URL": None})
        with app.app_context():
            db.create_all()
            from app.services.seed import seed_all

            seed_all()  # the sandbox auditor account (and the catalogue) for the HTTP measurement
        numbers = citizens(args.citizens)
        loaded, indexed = load(app, args.records, numbers, args.days)
        print(f"generate + hash + COPY   {loaded:7.1f} s ({args.records / loaded:,.0f} records/s)")
        print(f"indexes + VACUUM ANALYZE {indexed:7.1f} s")

        timings, plan = time_sql(app, numbers, args.days, args.queries)
        report("query SQL (citizen + 7 days, first 50)", timings)
        report("GET /api/v1/audit/face-verifications", time_http(app, numbers, args.days, args.queries))
        print("plan of the last query:\n  " + plan.replace("\n", "\n  "))

        with app.app_context():
            began = time.perf_counter()
            result = verify_chain(FaceVerificationRecord)
            took = time.perf_counter() - began
        assert result.ok, result.first_broken
        print(f"verify_chain             {took:7.1f} s for {result.checked:,} records "
              f"({result.checked / took:,.0f} records/s), ok={result.ok}")

        client = app.test_client()
        login = client.post("/api/v1/auth/staff/login", json={"username": "auditor", "password": "sandbox-pass"})
        began = time.perf_counter()
        stats = client.get("/api/v1/audit/face-verifications/stats",
                           headers={"Authorization": f"Bearer {login.json['access_token']}"},
                           query_string={"from": (datetime.now(UTC) - timedelta(days=args.days + 1)).isoformat()})
        took = time.perf_counter() - began
        assert stats.status_code == 200
        print(f"pass-rate stats, {args.days} days {took * 1000:9.1f} ms ({len(stats.json['items'])} day×provider rows)")
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    finally:
        if args.keep:
            print(f"kept database {name}")
        else:
            drop_database(args.database_url, name)


if __name__ == "__main__":
    main()
