"""Benchmark: the authenticated hot path (`GET /api/v1/me`, `GET /api/v1/applications`) against a bare Flask
route, under gunicorn with PostgreSQL and Redis, as production runs them.

    python bench/hot_path.py [--server postgresql://postgres@127.0.0.1:5432] [--redis redis://127.0.0.1:6379/0]
        [--rounds 5] [--duration 4] [--connections 16] [--workers 2] [--threads 4]

Creates its own database `zsb_bench_hot_<pid>` (dropped at the end) and Redis key prefix, migrates and
seeds it, starts the sandbox stand-ins in this process and gunicorn serving bench/wsgi_bench.py (the real app
plus one bare route; bench/stack.py), logs a sandbox citizen in over HTTP, proves 张伟's identity with a
sandbox face pass and makes two drafts, then loads the three routes with wrk (Debian package `wrk`)
**interleaved**: each round measures the bare route, /me and /applications for --duration seconds each, so
the machine's drift touches all three alike. It prints each round, the median throughput of each route and
the ratios (goals: /me >= 0.5, /applications >= 0.3 of the bare route).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import requests
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.catalogue import parse_wrk  # noqa: E402
from bench.stack import Service  # noqa: E402

GOALS = {"/api/v1/me": 0.5, "/api/v1/applications": 0.3}
ZHANG = ("张伟", "410105198503120013")
MATTER = "GJJ-GG-002"


def load(url: str, seconds: int, connections: int, token: str | None) -> dict:
    command = ["wrk", "--latency", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s"]
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    result = subprocess.run([*command, url], capture_output=True, text=True, check=True)
    return parse_wrk(result.stdout)


def citizen_token(base: str) -> str:
    """A face-bound citizen (张伟) with two drafts: the token of the session a phone would hold."""
    session = requests.Session()
    login = session.post(f"{base}/api/v1/auth/wechat/login", json={"code": "dev-bench-hot-path"}, timeout=10)
    login.raise_for_status()
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    session.post(f"{base}/api/v1/me/real-name", headers=headers, json={"name": ZHANG[0], "id_number": ZHANG[1]},
                 timeout=10).raise_for_status()
    started = session.post(f"{base}/api/v1/face/sessions", headers=headers, timeout=10,
                           json={"purpose": "real_name", "biometric_consent": True})
    started.raise_for_status()
    done = session.post(f"{base}/api/v1/face/sessions/{started.json()['session_id']}/complete", headers=headers,
                        json={"evidence": {"sandbox": "pass"}}, timeout=10)
    done.raise_for_status()
    token = done.json()["tokens"]["access_token"]
    for _ in range(2):
        session.post(f"{base}/api/v1/applications", headers={"Authorization": f"Bearer {token}"},
                     json={"matter_code": MATTER}, timeout=10).raise_for_status()
    return token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=4, help="seconds per route per round")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")

    from app.config import sqlalchemy_url

    name = f"zsb_bench_hot_{os.getpid()}"
    admin = sa.create_engine(sqlalchemy_url(args.server), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(sqlalchemy_url(args.server)).set(database=name).render_as_string(hide_password=False)
    service = Service(url, args.redis, REDIS_KEY_PREFIX=f"{name}:")
    try:
        service.prepare()
        base = service.start_api(args.workers, args.threads)
        token = citizen_token(base)
        routes = [("bare Flask route", "/_bench/bare", None), ("GET /api/v1/me", "/api/v1/me", token),
                  ("GET /api/v1/applications", "/api/v1/applications", token)]
        for _, path, route_token in routes:  # warm every worker's pools and caches
            load(base + path, 2, args.connections, route_token)
        results: dict[str, list[dict]] = {label: [] for label, _, _ in routes}
        for round_number in range(1, args.rounds + 1):
            line = []
            for label, path, route_token in routes:
                result = load(base + path, args.duration, args.connections, route_token)
                results[label].append(result)
                line.append(f"{label.split()[-1]} {result['rps']:.0f}/s")
            print(f"round {round_number}: " + ", ".join(line), flush=True)
    finally:
        service.stop()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        shutil.rmtree(service.workdir, ignore_errors=True)
        import redis

        client = redis.Redis.from_url(args.redis)
        for key in client.scan_iter(match=f"*{name}:*"):
            client.delete(key)
        client.close()

    print(f"gunicorn: {args.workers} workers x {args.threads} threads; wrk: {args.connections} connections; "
          f"{args.rounds} interleaved rounds of {args.duration} s per route; PostgreSQL and Redis on 127.0.0.1")
    print(f"{'route':<28} {'req/s (median)':>15} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'x bare':>7}")
    bare = statistics.median(r["rps"] for r in results["bare Flask route"])
    for label, path, _ in routes:
        rps = statistics.median(r["rps"] for r in results[label])
        p50 = statistics.median(r["p50"] for r in results[label])
        p99 = statistics.median(r["p99"] for r in results[label])
        errors = sum(r["errors"] for r in results[label])
        goal = f"  (goal >= {GOALS[path]:.1f})" if path in GOALS else ""
        print(f"{label:<28} {rps:>15.0f} {p50:>8.2f} {p99:>8.2f} {errors:>8} {rps / bare:>7.2f}{goal}")


if __name__ == "__main__":
    main()
