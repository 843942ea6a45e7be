"""Benchmark: the catalogue list against a bare Flask route, both under gunicorn as in production.

    python bench/catalogue.py [--duration 10] [--connections 16] [--workers 2] [--database-url URL]

Starts gunicorn on 127.0.0.1 serving the real app (bench/wsgi_bench.py adds one bare route to it, so both
routes share the server, the middleware and the configuration), then loads each route from a second
process with wrk (Debian package `wrk`) and prints throughput, p50/p99 latency and the ratio. The
database is a fresh SQLite file, migrated and seeded, unless --database-url names another (PostgreSQL).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, timeout: float = 20) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"server did not come up at {url}")


def parse_wrk(output: str) -> dict:
    """Requests/sec and latency percentiles (ms) from `wrk --latency` output."""

    def ms(text: str) -> float:
        value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p50 = ms(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1))
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return {"rps": rps, "p50": p50, "p99": p99, "errors": int(non2xx.group(1)) if non2xx else 0}


def load(url: str, duration: int, connections: int) -> dict:
    result = subprocess.run(
        ["wrk", "--latency", f"-t{min(2, connections)}", f"-c{connections}", f"-d{duration}s", url],
        capture_output=True, text=True, check=True,
    )
    return parse_wrk(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per route")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--path", default="/api/v1/matters?per_page=20", help="the catalogue request")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")

    workdir = Path(tempfile.mkdtemp(prefix="zsb-bench-"))
    env = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": args.database_url or f"sqlite:///{workdir / 'bench.db'}",
        # Both routes are measured without the per-address limit, which would throttle one load client.
        "RATELIMIT_ENABLED": "0",
        "FLASK_APP": "wsgi",
    }
    env.pop("REDIS_URL", None)
    subprocess.run([BIN / "flask", "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run([BIN / "flask", "seed"], cwd=ROOT, env=env, check=True, capture_output=True)

    port = free_port()
    server = subprocess.Popen(
        [BIN / "gunicorn", "--chdir", str(ROOT), "-w", str(args.workers), "--threads", str(args.threads),
         "-b", f"127.0.0.1:{port}", "--log-level", "warning", "bench.wsgi_bench:app"],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base + "/healthz")
        # Warm every worker's cache and connection pool before measuring.
        load(base + args.path, 2, args.connections)
        load(base + "/_bench/bare", 2, args.connections)
        bare = load(base + "/_bench/bare", args.duration, args.connections)
        catalogue = load(base + args.path, args.duration, args.connections)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"gunicorn: {args.workers} workers x {args.threads} threads; wrk: {args.connections} connections, "
          f"{args.duration} s per route; database: {'SQLite' if not args.database_url else 'given URL'}")
    print(f"{'route':<32} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for name, r in (("bare Flask route", bare), (f"GET {args.path}", catalogue)):
        print(f"{name:<32} {r['rps']:>10.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} {r['errors']:>8}")
    print(f"catalogue / bare throughput ratio: {catalogue['rps'] / bare['rps']:.2f} (goal >= 0.50)")


if __name__ == "__main__":
    main()
