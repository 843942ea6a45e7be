"""Benchmark: verifying an audit chain of 1,000,000 records on PostgreSQL, the old way and the new one.

    python bench/ledger_verify.py [DATABASE_URL] [--records 1000000] [--batch 20000] [--checkpoint-every 100000]
        [--later 50000] [--workers N] [--repeat 1] [--skip-old] [--keep] [--database NAME]

DATABASE_URL (the argument, else the environment, else postgresql://postgres@127.0.0.1:5432/postgres) names
the server: a fresh database `zsb_bench_verify_<pid>` is created on it and dropped at the end (unless --keep;
--database NAME reuses a kept one and skips the fill). The face-verification chain is filled through the
app's own writer (`append_many`, --batch records a transaction: hashes, tree nodes and head as in
production), with a signed checkpoint cut every --checkpoint-every records and one at the end.

Then it times, over the same rows:
- the previous verifier (a copy of it below: an ORM object per row, the hash chain only),
- `app.ledger.verify.verify_chain` in full (links, hashes, leaves and inner nodes, checkpoints, head), with
  its default processes (--workers) and in one process, and
- the same with `since_checkpoint=True` after --later more records (from the newest checkpoint on),
and prints records/s for each and the ratio new / old.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
PROVIDERS = (("wechat", "1.0", 0.8), ("local", "1.0", 0.1), ("sandbox", "1.0", 0.1))
FAIL_REASONS = ("no_match", "not_live", "poor_quality", "user_cancelled", "timeout")


# ------------------------------------------------------------------------------------------------ database


def admin_engine(base_url: str):
    import sqlalchemy as sa

    from app.config import sqlalchemy_url

    return sa.create_engine(sa.engine.make_url(sqlalchemy_url(base_url)), isolation_level="AUTOCOMMIT")


def database_url(base_url: str, name: str) -> str:
    import sqlalchemy as sa

    from app.config import sqlalchemy_url

    return sa.engine.make_url(sqlalchemy_url(base_url)).set(database=name).render_as_string(hide_password=False)


def create_database(base_url: str, name: str) -> None:
    import sqlalchemy as sa

    admin = admin_engine(base_url)
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


def drop_database(base_url: str, name: str) -> None:
    import sqlalchemy as sa

    admin = admin_engine(base_url)
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


# ------------------------------------------------------------------------------------------------ filling


def records(count: int, seed: int = 42):
    """The caller's fields of `count` face-verification records (what `append_many` takes), in order."""
    rng = random.Random(seed)
    pseudonyms = [f"{rng.getrandbits(256):064x}" for _ in range(200)]
    made = 0
    while made < count:
        citizen = rng.randrange(len(pseudonyms))
        provider, version, _ = rng.choices(PROVIDERS, weights=[p[2] for p in PROVIDERS])[0]
        session_id = uuid.UUID(int=rng.getrandbits(128)).hex
        passed = rng.random() < 0.9
        reason = "pass" if passed else rng.choice(FAIL_REASONS)
        threshold = 0.4 if provider == "local" else (0.8 if provider == "sandbox" else None)
        similarity = round(rng.uniform(0.45, 0.99) if passed else rng.uniform(0.0, 0.39), 4) if threshold else None
        base = {"session_id": session_id, "citizen_pseudonym": pseudonyms[citizen],
                "actor": f"citizen:{citizen:032x}", "purpose": "apply", "matter_code": "GJJ-GG-001",
                "provider": provider, "adapter_version": version, "provider_session_id": f"vid-{session_id[:24]}",
                "attempt": rng.randint(1, 3), "request_id": uuid.UUID(int=rng.getrandbits(128)).hex}
        events = [
            {"event": "session_started", "failure_limit": 5},
            {"event": "result", "outcome": reason, "liveness": passed if provider != "local" else None,
             "similarity": similarity, "threshold": threshold, "provider_code": "10000" if passed else "10004"},
            {"event": "decision", "decision": "pass" if passed else "fail", "reason": reason, "outcome": reason,
             "threshold": threshold, "failures": None if passed else rng.randint(1, 5), "failure_limit": 5,
             "verified_until": datetime.now(UTC) + timedelta(minutes=10) if passed else None},
        ]
        for extra in events[:count - made]:
            made += 1
            yield {**base, **extra}


def fill(app, count: int, batch: int, checkpoint_every: int) -> float:
    """Append `count` records through the app's writer, cutting a checkpoint every `checkpoint_every`;
    returns the seconds it took."""
    from app.extensions import db
    from app.face.models import FaceVerificationRecord
    from app.ledger import chain, checkpoints

    began = time.perf_counter()
    written, pending = 0, []
    with app.app_context():
        for fields in records(count):
            pending.append(fields)
            if len(pending) == batch or written + len(pending) == count:
                chain.append_many(FaceVerificationRecord, pending)
                written += len(pending)
                pending = []
                if written % checkpoint_every < batch or written == count:
                    checkpoints.cut(FaceVerificationRecord.CHAIN)
                print(f"\r  {written:,} records", end="", flush=True)
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
    print()
    return time.perf_counter() - began


# ---------------------------------------------------------------------------------------- the old verifier


def old_verify_chain(model: type, batch_size: int = 5000):
    """The verifier as it was before app/ledger/verify.py (kept here for the side-by-side figure): an ORM
    object per row, pages of `batch_size` by seq, the hash chain only (no tree, no checkpoints)."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from app.extensions import db
    from app.ledger.chain import GENESIS
    from app.ledger.models import ChainHead
    from app.ledger.verify import VerifyResult
    from tlog.records import record_hash

    with Session(db.engine) as reader:
        head = reader.get(ChainHead, model.CHAIN)
        head_seq, head_hash = (head.seq, head.head_hash) if head is not None else (None, None)
        reader.expunge_all()
        expected_prev, expected_seq, checked, last_seq = GENESIS, 1, 0, 0
        while True:
            query = select(model).where(model.seq > last_seq)
            if head_seq is not None:
                query = query.where(model.seq <= head_seq)
            rows = reader.scalars(query.order_by(model.seq).limit(batch_size)).all()
            if not rows:
                break
            for row in rows:
                reason = None
                if row.seq != expected_seq:
                    reason = f"missing record(s): expected seq {expected_seq}, found {row.seq}"
                elif row.prev_hash != expected_prev:
                    reason = "prev_hash does not match the previous record's hash"
                elif record_hash(row.prev_hash, row.chain_payload()) != row.record_hash:
                    reason = "record_hash does not match the record's contents"
                if reason:
                    return VerifyResult(False, checked, {"seq": row.seq, "id": row.id, "reason": reason},
                                        expected_prev)
                checked += 1
                expected_prev = row.record_hash
                expected_seq += 1
            last_seq = rows[-1].seq
            reader.expunge_all()
    if checked != head_seq or head_hash != expected_prev:
        return VerifyResult(False, checked, {"seq": checked + 1, "id": None, "reason": "head"}, expected_prev)
    return VerifyResult(True, checked, None, expected_prev)


# ------------------------------------------------------------------------------------------------ timing


def timed(label: str, run, repeat: int, chain_size: int | None = None):
    """The best of `repeat` runs of `run()`: (seconds, records/s, its result); prints each run, with the load
    average after it (the machine may be shared: other load takes the cores the workers need)."""
    best, result = None, None
    for _ in range(repeat):
        began = time.perf_counter()
        result = run()
        took = time.perf_counter() - began
        assert result.ok, result.first_broken
        line = (f"{label:<36} {took:7.2f} s  {result.checked:>9,} records  {result.checked / took:>9,.0f} records/s"
                f"  [load {os.getloadavg()[0]:.1f}]")
        if chain_size is not None:
            line += f"  ({chain_size:,} in the chain: {chain_size / took:,.0f}/s of chain)"
        print(line)
        best = took if best is None else min(best, took)
    return best, result.checked / best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("database_url", nargs="?", default=os.environ.get("DATABASE_URL") or DEFAULT_SERVER,
                        help="a PostgreSQL URL: a fresh database is created on its server")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=20_000, help="records per append_many transaction")
    parser.add_argument("--checkpoint-every", type=int, default=100_000)
    parser.add_argument("--later", type=int, default=50_000,
                        help="records appended after the last checkpoint, for the incremental run")
    parser.add_argument("--workers", type=int, default=None,
                        help="verifier processes (default: the verifier's own choice, one per CPU)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each verifier (the best is reported)")
    parser.add_argument("--skip-old", action="store_true", help="do not time the old verifier")
    parser.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    parser.add_argument("--database", help="reuse this kept database instead of creating and filling one")
    args = parser.parse_args()
    if not args.database_url.startswith(("postgres://", "postgresql")):
        sys.exit("this benchmark needs a PostgreSQL URL")

    from app import create_app
    from app.extensions import db
    from app.face.models import FaceVerificationRecord
    from app.ledger import chain
    from app.ledger.verify import verify_chain

    name = args.database or f"zsb_bench_verify_{os.getpid()}"
    if not args.database:
        create_database(args.database_url, name)
    witness = Path(tempfile.mkdtemp(prefix="zsb-bench-witness-")) / "witness.jsonl"
    print(f"{os.cpu_count()} CPUs; database {name}")
    try:
        # Records written directly by append_many (not queued for a sequencer): the fill is the writer's path.
        app = create_app({"APP_ENV": "testing", "DATABASE_URL": database_url(args.database_url, name),
                          "REDIS_URL": None, "AUDIT_WITNESS_FILE": str(witness), "AUDIT_SEQUENCER": "off"})
        model = FaceVerificationRecord
        if not args.database:
            with app.app_context():
                db.create_all()
            print(f"filling {args.records:,} face-verification records (append_many × {args.batch:,}, "
                  f"a checkpoint every {args.checkpoint_every:,})")
            took = fill(app, args.records, args.batch, args.checkpoint_every)
            print(f"{'fill':<36} {took:7.2f} s  ({args.records / took:,.0f} records/s)")
        with app.app_context():
            old = None
            if not args.skip_old:
                _, old, _ = timed("old: ORM objects, chain only", lambda: old_verify_chain(model), args.repeat)
            _, full, result = timed("new: full", lambda: verify_chain(model, workers=args.workers), args.repeat)
            _, one, _ = timed("new: full, one process", lambda: verify_chain(model, workers=1), args.repeat)
            size = result.checked
            if args.later:  # records after the newest checkpoint: what an incremental run re-hashes
                for start in range(0, args.later, args.batch):
                    chain.append_many(model, list(records(min(args.batch, args.later - start), seed=7 + start)))
                size += args.later
            took, _, later = timed("new: incremental (since checkpoint)",
                                   lambda: verify_chain(model, since_checkpoint=True, workers=args.workers),
                                   args.repeat, chain_size=size)
            print(f"incremental: started after checkpoint {later.started_after:,}, re-hashed {later.checked:,}")
            if old:
                print(f"new full / old: {full / old:.1f}×; one process / old: {one / old:.1f}×")
            db.session.remove()
            db.engine.dispose()
    finally:
        if args.keep or args.database:
            print(f"kept database {name}")
        else:
            drop_database(args.database_url, name)


if __name__ == "__main__":
    main()
