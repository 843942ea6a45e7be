"""`flask seed` and `flask dev`: the development server with its sandbox (what `make run` starts).

`flask dev` starts every sandbox stand-in as a real HTTP server on 127.0.0.1 — the WeChat API and the six
bureau data services (SANDBOX_BUREAU_BASE_PORT and on) — hands each bureau the secret its connector was
seeded with, starts the job system's worker and scheduler as processes of their own (`flask jobs worker`,
`flask jobs scheduler`: app/jobs), and runs the API; Ctrl-C stops them all (the stand-ins run in daemon
threads). It refuses to run without the sandbox.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from werkzeug.serving import WSGIRequestHandler, run_simple

QUERY = re.compile(r"\?\S*")


class PathOnlyRequestHandler(WSGIRequestHandler):
    """The development server's access log, without query strings: a URL may carry what no log may keep
    (the API refuses identifiers in URLs, but it must see them to refuse them)."""

    def log_request(self, code="-", size="-"):
        # Called once the response starts, when the request's environ has long been built from the path.
        self.requestline = QUERY.sub("", self.requestline, count=1)
        if hasattr(self, "path"):
            self.path = self.path.split("?", 1)[0]
        super().log_request(code, size)


@click.command("seed")
@with_appcontext
def seed_command():
    """Seed the demo catalogue (and, with the sandbox on, its accounts); idempotent."""
    from app.sandbox.seed import seed_all

    seed_all()
    click.echo("seeded")


@click.command("dev")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, envvar="PORT")
@with_appcontext
def dev_command(host: str, port: int):
    """Run the sandbox stand-ins and the API (development only)."""
    app = current_app._get_current_object()
    if not app.config["SANDBOX_ENABLED"]:
        raise click.ClickException("flask dev runs the sandbox; set SANDBOX_ENABLED=1 (never in production)")
    check_port_free(host, port)
    servers = start_sandbox(app)
    for name, server in servers.items():
        click.echo(f"sandbox {name:<24} {server.url}")
    pushed = push_bureau_secrets()
    if not pushed:
        click.echo("no sandbox connectors in the database: run `flask seed` (make run does) to register them")
    click.echo(f"{'API':<32}{f'http://{host}:{port}'}  (docs: /docs)")
    # The job system's worker and scheduler, as production runs them (separate processes): subscription
    # messages reach the WeChat stand-in, the audit logs get their signed checkpoints, retention runs.
    from app import jobs

    click.echo(f"{'job worker and scheduler':<32}{jobs.backend(app.config)} queue, tick "
               f"{app.config['JOBS_TICK_SECONDS']:g}s (flask jobs list)")
    background = [start_jobs_process(role) for role in ("worker", "scheduler")]
    if not app.config["REDIS_URL"]:
        # The job processes change applications too, and without Redis they cannot renew the API's read-cache
        # stamps (app/web/readcache.py): the API reads everything fresh instead.
        from app.web import readcache

        readcache.turn_off(app)
    # SIGTERM (a supervisor, `timeout`) ends the server like Ctrl-C, so the job processes are stopped too.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    try:
        # run_simple, not app.run: Flask ignores app.run() inside a `flask` CLI command.
        run_simple(host, port, app, threaded=True, use_reloader=False, request_handler=PathOnlyRequestHandler)
    finally:
        for process in background:
            stop_process(process)
        for server in servers.values():
            server.stop()


def start_sandbox(app: Flask) -> dict:
    """Start each sandbox stand-in on its configured port; returns the running servers by name.

    A port already in use stops the start, naming the setting that moves it.
    """
    from app.sandbox.bureaus import KINDS, create_bureau_app
    from app.sandbox.server import serve
    from app.sandbox.wechat import create_wechat_app

    host, base = app.config["SANDBOX_HOST"], app.config["SANDBOX_BUREAU_BASE_PORT"]
    plan = [("wechat", lambda: create_wechat_app(appid=app.config["WECHAT_APPID"], secret=app.config["WECHAT_SECRET"]),
             app.config["SANDBOX_WECHAT_PORT"], "SANDBOX_WECHAT_PORT")]
    plan += [(f"bureau:{kind}", lambda kind=kind: create_bureau_app(kind), base + offset,
              f"SANDBOX_BUREAU_BASE_PORT (the six bureaus use {base}-{base + len(KINDS) - 1})")
             for offset, kind in enumerate(KINDS)]
    # Every port first, so a busy one stops nothing half-started (werkzeug itself would exit on the first).
    for _name, _make, port, setting in plan:
        check_port_free(host, port, setting)
    return {name: serve(make(), host, port) for name, make, port, _setting in plan}


def start_jobs_process(role: str) -> subprocess.Popen:
    """`flask jobs worker` or `flask jobs scheduler` in a process of its own, with this process's settings."""
    env = {**os.environ, "FLASK_APP": os.environ.get("FLASK_APP", "wsgi")}
    return subprocess.Popen([sys.executable, "-m", "flask", "jobs", role], env=env)


def stop_process(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM (a worker finishes the task it runs), then SIGKILL after `timeout` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def check_port_free(host: str, port: int, setting: str = "PORT (make run PORT=5050)") -> None:
    """Refuse early when a port is taken, naming the setting that moves it (werkzeug only says it is busy)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise click.ClickException(f"port {port} on {host} is in use ({exc.strerror}): another `make run`? "
                                       f"Stop it, or set {setting} to a free port") from None


def push_bureau_secrets() -> int:
    """Tell each running sandbox bureau the secret its seeded connector holds; returns how many."""
    from app.sandbox.connectors import push_secrets
    from app.sandbox.seed import sandbox_secrets

    secrets = sandbox_secrets()
    push_secrets(secrets)
    return len(secrets)


def init_app(app: Flask) -> None:
    app.cli.add_command(seed_command)
    app.cli.add_command(dev_command)
