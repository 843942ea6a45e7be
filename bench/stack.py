"""The whole service on 127.0.0.1 for benchmarks and the soak: servers of its own, started and stopped here.

- `PrivatePostgres`: a throwaway cluster (`initdb`, `pg_ctl` on a port of its own, trust auth on loopback), so a
  fault test may restart it without touching the machine's shared PostgreSQL;
- `PrivateRedis`: a `redis-server` on a port of its own, nothing saved to disk;
- `Service`: migrate and seed a database, the sandbox stand-ins (WeChat and the six bureaus) in this process,
  gunicorn serving the app, and the job system's worker and scheduler, all with one environment.

Nothing here is imported by the service; only bench/ and tests/ use it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PG_BIN_CANDIDATES = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(count: int) -> int:
    """The first of `count` consecutive free ports (the sandbox bureaus take a range)."""
    for _ in range(100):
        first = free_port()
        sockets = []
        try:
            for port in range(first, first + count):
                sockets.append(socket.socket())  # kept before binding, so a failed bind closes it too
                sockets[-1].bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError(f"no {count} consecutive free ports")


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} within {timeout:g} s")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


def pg_bin(name: str) -> str | None:
    for directory in PG_BIN_CANDIDATES:
        if (directory / name).exists():
            return str(directory / name)
    return shutil.which(name)


def have_private_servers() -> str | None:
    """None when initdb, pg_ctl and redis-server are all here; else what is missing."""
    missing = [name for name, found in (("initdb", pg_bin("initdb")), ("pg_ctl", pg_bin("pg_ctl")),
                                        ("redis-server", shutil.which("redis-server"))) if not found]
    return ", ".join(missing) or None


class PrivatePostgres:
    """A PostgreSQL cluster of our own in a temporary directory (as the user running this, or `postgres`
    when that is root, which PostgreSQL refuses to run as)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.data = workdir / "pgdata"
        self.log = workdir / "postgres.log"
        self.socket_dir = workdir / "pgsocket"
        self.user = "postgres" if os.geteuid() == 0 else None

    def _run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        if self.user:
            command = ("runuser", "-u", self.user, "--", *command)
        return subprocess.run(command, check=check, capture_output=True, text=True)

    def start(self) -> PrivatePostgres:
        if not self.data.exists():
            for path in (self.data, self.socket_dir):
                path.mkdir(parents=True)
            if self.user:
                shutil.chown(self.data.parent, self.user)
                for path in (self.data, self.socket_dir):
                    shutil.chown(path, self.user)
            self._run(pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
            with open(self.data / "postgresql.conf", "a") as conf:
                # Loopback only; quick to stop; fsync off (a bench, not a bank: the soak's "nothing lost" is
                # about what the service acknowledged, checked against this same server).
                conf.write(f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                           f"unix_socket_directories = '{self.socket_dir}'\nmax_connections = 200\n"
                           "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
        self._pg_ctl("start", "-w", "-t", "60", "-l", str(self.log))
        return self

    def _pg_ctl(self, *args: str) -> None:
        self._run(pg_bin("pg_ctl"), "-D", str(self.data), *args)

    def stop(self) -> None:
        self._run(pg_bin("pg_ctl"), "-D", str(self.data), "stop", "-m", "fast", "-w", check=False)

    def restart(self) -> None:
        self._pg_ctl("restart", "-m", "fast", "-w", "-t", "60", "-l", str(self.log))

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"


class PrivateRedis:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    def start(self) -> PrivateRedis:
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, 15, "redis-server did not answer")
        return self

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


class Service:
    """The app on a database and a Redis: migrated, seeded, with its sandbox, gunicorn and job processes."""

    def __init__(self, database_url: str, redis_url: str, *, workdir: Path | None = None, **settings: str) -> None:
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="zsb-stack-"))
        bureau_base, wechat_port = free_ports(6), free_port()
        self.env = {**os.environ, "APP_ENV": "development", "FLASK_APP": "wsgi", "PYTHONPATH": str(ROOT),
                    "DATABASE_URL": database_url, "REDIS_URL": redis_url,
                    "REDIS_KEY_PREFIX": f"zsb-stack-{os.getpid()}:", "INSTANCE_DIR": str(self.workdir),
                    "SANDBOX_BUREAU_BASE_PORT": str(bureau_base), "SANDBOX_WECHAT_PORT": str(wechat_port),
                    "WECHAT_API_BASE": f"http://127.0.0.1:{wechat_port}", "RATELIMIT_ENABLED": "0",
                    **settings}
        self.processes: dict[str, subprocess.Popen] = {}
        self.logs: list = []  # the processes' output files, closed by stop()
        self.sandbox: dict = {}
        self.base = ""

    def prepare(self) -> None:
        """Migrate and seed, then start the sandbox stand-ins and tell the bureaus their secrets."""
        for command in (["db", "upgrade"], ["seed"]):
            subprocess.run([BIN / "flask", *command], cwd=ROOT, env=self.env, check=True, capture_output=True)
        from app import create_app
        from app.devserver import push_bureau_secrets, start_sandbox

        saved = dict(os.environ)
        os.environ.update(self.env)
        try:
            self.app = create_app()
        finally:
            os.environ.clear()
            os.environ.update(saved)
        self.sandbox = start_sandbox(self.app)
        with self.app.app_context():
            push_bureau_secrets()

    def start_api(self, workers: int = 2, threads: int = 4) -> str:
        port = free_port()
        log = self._log("gunicorn")
        self.processes["api"] = subprocess.Popen(
            [BIN / "gunicorn", "--chdir", str(ROOT), "-w", str(workers), "--threads", str(threads),
             "-b", f"127.0.0.1:{port}", "--log-level", "warning", "--graceful-timeout", "10",
             "bench.wsgi_bench:app"], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{port}"
        wait_until(lambda: answers(self.base + "/healthz"), 60, "gunicorn did not answer")
        return self.base

    def start_jobs(self, role: str, name: str | None = None) -> subprocess.Popen:
        log = self._log(name or role)
        process = subprocess.Popen([BIN / "flask", "jobs", role], cwd=ROOT, env=self.env, stdout=log,
                                   stderr=subprocess.STDOUT)
        self.processes[name or role] = process
        return process

    def _log(self, name: str):
        log = open(self.workdir / f"{name}.log", "a")  # noqa: SIM115 - lives as long as the process; stop() closes
        self.logs.append(log)
        return log

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        for server in self.sandbox.values():
            server.stop()
        for log in self.logs:
            log.close()
        if getattr(self, "app", None) is not None:
            from app import dispose

            dispose(self.app)
