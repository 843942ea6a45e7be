"""Benchmark: appends into one audit chain from 32 concurrent writers in several processes, on PostgreSQL.

    python bench/ledger_appends.py [--seconds 15] [--layouts 2x16,4x8] [--variants plain,direct,sequencer,appending]
        [--server postgresql://postgres@127.0.0.1:5432]

Creates its own database `zsb_bench_appends_<pid>` on --server (loopback only) and drops it at the end. For each
layout (processes × threads) and variant, the writers start together and append data-access records in a
closed loop (each writer's next append once its last one returned) for --seconds, after a warm-up:

- plain: a bare INSERT of the same row into the same table (same indexes; seq from a range of the writer's,
  no hashing, no head), one transaction per record: the database's cost of the row alone;
- direct: `chain.append` with AUDIT_SEQUENCER=off (the head row locked for the whole of each append);
- sequencer: `chain.append` with AUDIT_SEQUENCER=auto (the call's two halves timed: until the record is
  durable, and until it is sequenced, which is when `append` returns);
- appending: `chain.appending` with the sequencer: the record queued in the writer's own transaction (one per
  record, as a request does), waiting until it is sequenced at the block's end.

It prints records/s, the append latency (p50/p95/p99 until durable and until sequenced), each variant's
throughput over the plain INSERT's, and after each chained variant checks that the chain has no gaps (seq 1…n,
n = the head's seq and tree size, nothing left queued) and that the chain and its Merkle tree verify
(app.ledger.verify.verify_chain).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WARMUP_SECONDS = 1.5


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))]


def record(n: int) -> dict:
    """A data-access record's own fields, of the size the prefill writes."""
    return {
        "connector_id": f"gjj-housing-fund-{n % 8}",
        "bureau": "gjj",
        "bureau_name": "郑州住房公积金管理中心",
        "citizen_pseudonym": f"{n:064x}",
        "application_id": f"{n:032x}",
        "purpose": "住房公积金个人住房贷款申请:核验申请人缴存状态与余额",
        "actor": f"citizen:{n:032x}",
        "elements_requested": ["housing_fund.account_status", "housing_fund.balance"],
        "elements_returned": ["housing_fund.account_status", "housing_fund.balance"],
        "outcome": "ok",
        "latency_ms": 100 + n % 50,
        "error": None,
        "http_status": 200,
        "request_id": f"req-{n:016x}",
    }


def make_app(database_url: str, variant: str, threads: int):
    from app import create_app

    return create_app({
        "APP_ENV": "testing",
        "DATABASE_URL": database_url,
        "SANDBOX_ENABLED": False,
        "AUDIT_SEQUENCER": "off" if variant in ("plain", "direct") else "auto",
        # A connection per writer thread (the default pool of 5 + 10 would make writers queue for one).
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "pool_size": threads + 2, "max_overflow": 4},
    })


# ------------------------------------------------------------------------------------------ writer processes


def writer_process(database_url: str, variant: str, index: int, threads: int, seconds: float, start_at,
                   results) -> None:
    """One process of writers: `threads` threads appending until `start_at + seconds` (wall clock)."""
    import logging

    logging.disable(logging.WARNING)
    app = make_app(database_url, variant, threads)
    from app.connectors.models import DataAccessRecord
    from app.extensions import db
    from app.ledger import chain, sequencer
    from app.modelbase import utcnow

    table = DataAccessRecord.__table__

    def one(n: int) -> tuple[float, float]:
        started = time.perf_counter()
        if variant == "plain":
            row = {**record(n), "id": f"{n:032x}", "seq": n, "prev_hash": "0" * 64, "record_hash": "0" * 64,
                   "leaf_salt": "0" * 32, "recorded_at": utcnow()}
            with db.engine.begin() as connection:
                connection.execute(table.insert(), row)
            durable = sequenced = time.perf_counter()
        elif variant == "direct":
            chain.append(DataAccessRecord, **record(n))
            durable = sequenced = time.perf_counter()
        elif variant == "sequencer":  # chain.append_many, with the time its record became durable
            ticket = sequencer.submit(DataAccessRecord, [record(n)])
            [DataAccessRecord(**row) for row in ticket.wait(10)]
            sequenced = time.perf_counter()
            durable = ticket.durable_at
        else:  # appending: queued in the writer's own transaction; the block's end waits for the chain
            with chain.appending(db.session(), DataAccessRecord, [record(n)]):
                db.session.commit()
                durable = time.perf_counter()
            sequenced = time.perf_counter()
        return (durable - started) * 1000, (sequenced - started) * 1000

    def write(thread: int, out: dict) -> None:
        n = (index * threads + thread + 1) * 10_000_000  # disjoint from every other writer's (plain's seq)
        durable, sequenced = [], []
        with app.app_context():
            warm_until = time.perf_counter() + WARMUP_SECONDS
            while time.perf_counter() < warm_until:
                one(n)
                n += 1
            while time.time() < start_at.value:
                time.sleep(0.001)
            end = start_at.value + seconds
            while time.time() < end:
                d, s = one(n)
                n += 1
                durable.append(d)
                sequenced.append(s)
            db.session.remove()
        out[thread] = (durable, sequenced)

    outcome: dict = {}
    workers = [threading.Thread(target=write, args=(t, outcome)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    durable = [x for d, _ in outcome.values() for x in d]
    sequenced = [x for _, s in outcome.values() for x in s]
    results.put((index, durable, sequenced))
    with app.app_context():
        db.engine.dispose()


# ------------------------------------------------------------------------------------------------ the run


def reset(database_url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(sa.text(
            "TRUNCATE data_access_records, audit_chain_heads, audit_tree_nodes, audit_pending, audit_checkpoints"))
        connection.execute(sa.text("CHECKPOINT"))
    engine.dispose()


def check(app, variant: str) -> str:
    """No gaps, nothing queued, chain and tree verify."""
    import sqlalchemy as sa

    from app.connectors.models import DataAccessRecord
    from app.extensions import db
    from app.ledger import sequencer
    from app.ledger.models import ChainHead, PendingRecord
    from app.ledger.verify import verify_chain

    with app.app_context():
        if variant != "plain":
            sequencer.settle(DataAccessRecord, timeout=60)
            sequencer.for_app().stop()  # no leader of ours in the next variant
        with db.engine.connect() as connection:
            count, low, high, distinct = connection.execute(sa.select(
                sa.func.count(), sa.func.min(DataAccessRecord.seq), sa.func.max(DataAccessRecord.seq),
                sa.func.count(sa.distinct(DataAccessRecord.seq)))).one()
            if variant == "plain":
                return f"{count} rows"
            head = connection.execute(sa.select(ChainHead.seq, ChainHead.tree_size)
                                      .where(ChainHead.chain == "data-access")).one()
            queued = connection.execute(sa.select(sa.func.count()).select_from(PendingRecord)).scalar()
        gaps = not (low == 1 and high == count == distinct == head.seq == head.tree_size)
        started = time.perf_counter()
        result = verify_chain(DataAccessRecord)
        took = time.perf_counter() - started
        db.session.remove()
    verdict = "ok" if (not gaps and not queued and result.ok) else "FAILED"
    return (f"{verdict}: {count} records, seq {low}…{high}, head {head.seq}, tree {head.tree_size}, queued "
            f"{queued}, gaps {'yes' if gaps else 'none'}; verify_chain {'ok' if result.ok else result.first_broken}"
            f" ({result.checked} checked, {took:.1f} s)")


def run_variant(database_url: str, variant: str, processes: int, threads: int, seconds: float) -> dict:
    reset(database_url)
    context = multiprocessing.get_context("spawn")
    start_at = context.Value("d", 0.0)
    results = context.Queue()
    children = [context.Process(target=writer_process,
                                args=(database_url, variant, i, threads, seconds, start_at, results))
                for i in range(processes)]
    for child in children:
        child.start()
    # Every child has imported, built its app and warmed up well before this (checked below by the counts).
    start_at.value = time.time() + 4.0 + WARMUP_SECONDS
    gathered = [results.get(timeout=seconds + 120) for _ in children]
    for child in children:
        child.join(timeout=60)
    durable = [x for _, d, _ in gathered for x in d]
    sequenced = [x for _, _, s in gathered for x in s]
    return {"variant": variant, "layout": f"{processes}x{threads}", "records": len(sequenced),
            "rate": len(sequenced) / seconds, "durable": durable, "sequenced": sequenced}


def line(result: dict, plain_rate: float | None) -> str:
    d, s = result["durable"], result["sequenced"]
    ratio = f"{result['rate'] / plain_rate:5.2f}×" if plain_rate else "   — "
    return (f"{result['layout']:>5} {result['variant']:<10} {result['rate']:8.0f}/s {ratio}  durable p50/p95/p99 "
            f"{statistics.median(d):6.2f} {percentile(d, .95):6.2f} {percentile(d, .99):6.2f} ms   sequenced "
            f"{statistics.median(s):6.2f} {percentile(s, .95):6.2f} {percentile(s, .99):6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="measured time per variant")
    parser.add_argument("--layouts", default="2x16,4x8", help="processes x threads, comma-separated")
    parser.add_argument("--variants", default="plain,direct,sequencer,appending")
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    args = parser.parse_args()

    import sqlalchemy as sa

    from app.config import sqlalchemy_url

    server = sa.engine.make_url(sqlalchemy_url(args.server))
    if server.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("--server must be on the loopback interface")
    name = f"zsb_bench_appends_{os.getpid()}"
    admin = sa.create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    database_url = server.set(database=name).render_as_string(hide_password=False)
    try:
        app = make_app(database_url, "sequencer", 1)  # (for the checks: settle needs the sequencer)
        from app.extensions import db

        with app.app_context():
            db.create_all()
            db.engine.dispose()
        print(f"PostgreSQL {database_url.rsplit('@', 1)[-1]}, {os.cpu_count()} CPUs, {args.seconds:.0f} s per variant")
        for layout in args.layouts.split(","):
            processes, threads = (int(part) for part in layout.split("x"))
            plain_rate = None
            for variant in args.variants.split(","):
                result = run_variant(database_url, variant, processes, threads, args.seconds)
                if variant == "plain":
                    plain_rate = result["rate"]
                print(line(result, plain_rate), flush=True)
                print(f"{'':17}{check(app, variant)}", flush=True)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
