"""Background work on Huey: the tasks the domains declare, the queue they go through, workers and the scheduler.

Why Huey (docs/architecture.md, "Background work", weighs it against Celery): it keeps its queue in SQLite as
well as in Redis, both first-class storages of the library, so `make run` needs no server while production
runs many workers on many hosts against one Redis; its consumer runs workers without the scheduler and the
scheduler without workers, so the two are separate processes; retries with a delay (`RetryTask`), locks and
periodic tasks are built in; and it is one small, well-kept package. Celery's server-free broker (kombu's
SQLAlchemy transport) is documented as experimental and refused its own transport options when tried here.

What runs here, and where it is declared (each domain's `tasks.py`, listed in TASK_MODULES):
- tasks: one unit of work with its arguments, run once by some worker (`enqueue`);
- periodic tasks: run by a worker when the scheduler says they are due, every `every` seconds (a setting,
  so an operator can change it); each is idempotent and decides for itself what is due, so a tick missed
  while the scheduler restarts, or one run twice, does no harm.

The queue is where work waits, not where it is kept: whatever must not be lost is written to the database
first (the notification outbox, the audit logs, the applications) and a periodic task finds what a lost or
failed task left undone. A worker killed mid-task loses only that attempt.

Processes (docs/operations.md): `flask jobs worker` (any number, on any host: `--workers` threads each) and
one `flask jobs scheduler` (it only enqueues; two would enqueue every periodic task twice, which the tasks
survive but need not). `flask dev` starts one of each beside the API.

Configuration: JOBS_BACKEND `sqlite` (a file, JOBS_SQLITE_PATH: one host) or `redis` (REDIS_URL, keys named
after REDIS_KEY_PREFIX; production requires it); `auto` (the default) is redis when REDIS_URL is set.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask, current_app
from huey import Huey, RedisHuey, SqliteHuey
from huey.consumer import Consumer, Scheduler

from app.config import ConfigError
from app.web.health import add_readiness_check

log = logging.getLogger(__name__)

# The modules whose import declares the tasks (the domains').
TASK_MODULES = ("app.notifications.tasks", "app.audit.tasks", "app.applications.tasks", "app.retention.tasks")
BACKENDS = ("auto", "sqlite", "redis")


@dataclass(frozen=True)
class Declared:
    """A task as a domain declares it: its function, and for a periodic one the setting giving its period."""

    name: str
    func: Callable
    # Periodic tasks: the configuration key holding the period in seconds, or a function of the configuration.
    every: str | Callable[[Mapping], float] | None = None
    options: dict = field(default_factory=dict)  # Huey's task options: retries, retry_delay, retry_backoff


DECLARED: dict[str, Declared] = {}


def task(name: str, **options) -> Callable[[Callable], Callable]:
    """Declare `func` as the task `name` (run by a worker once per `enqueue`)."""
    return _declare(name, None, options)


def periodic(name: str, *, every: str | Callable[[Mapping], float], **options) -> Callable[[Callable], Callable]:
    """Declare `func` as the periodic task `name`, run every `config[every]` (or `every(config)`) seconds."""
    return _declare(name, every, options)


def _declare(name: str, every, options: dict) -> Callable[[Callable], Callable]:
    def register(func: Callable) -> Callable:
        if name in DECLARED and DECLARED[name].func is not func:
            raise ValueError(f"task {name!r} is declared twice")
        DECLARED[name] = Declared(name, func, every, options)
        return func

    return register


class Jobs:
    """One app's queue: its Huey and the app's tasks registered on it."""

    def __init__(self, app: Flask, huey: Huey) -> None:
        self.app = app
        self.huey = huey
        self.tasks = {}
        tick = float(app.config["JOBS_TICK_SECONDS"])
        for declared in DECLARED.values():
            bound = _in_app_context(app, declared.func)
            if declared.every is None:
                self.tasks[declared.name] = huey.task(name=declared.name, **declared.options)(bound)
            else:
                every = period(declared, app.config)
                setting = declared.every if isinstance(declared.every, str) else f"the period of {declared.name}"
                if every < tick:
                    raise ConfigError(f"{setting} ({every:g} s) is shorter than JOBS_TICK_SECONDS "
                                      f"({tick:g} s), the scheduler's tick")
                self.tasks[declared.name] = huey.periodic_task(
                    _every(every, tick), name=declared.name, **declared.options)(bound)

    def enqueue(self, name: str, *args, delay: float | None = None) -> None:
        """Queue one run of task `name` with `args` (after `delay` seconds)."""
        wrapper = self.tasks[name]
        if delay:
            wrapper.schedule(args=args, delay=delay)
        else:
            wrapper(*args)

    def consumer(self, *, workers: int, periodic: bool) -> Consumer:
        """A Huey consumer: `workers` worker threads, and the scheduler that enqueues periodic tasks if
        `periodic` (with `workers=0` the consumer is the scheduler alone). Threads, not Huey's forked
        processes: the app's database pool must not cross a fork; more processes scale it further."""
        tick = float(self.app.config["JOBS_TICK_SECONDS"])

        class Ticking(Scheduler):
            periodic_task_seconds = tick  # Huey's is a minute; tests and small periods want less

        class AppConsumer(Consumer):
            scheduler_class = Ticking

        # SIGTERM (systemd's stop, Kubernetes') lets running tasks finish; SIGINT (Ctrl-C) interrupts them.
        return AppConsumer(self.huey, workers=workers, periodic=periodic, worker_type="thread",
                           scheduler_interval=1, check_worker_health=True, graceful_signal="TERM",
                           shutdown_timeout=float(self.app.config["JOBS_SHUTDOWN_SECONDS"]))

    def ping(self) -> bool:
        """Whether the queue's storage answers (for /readyz)."""
        try:
            storage = self.huey.storage
            if hasattr(storage, "conn") and hasattr(storage.conn, "ping"):
                storage.conn.ping()
            else:
                storage.queue_size()
            return True
        except Exception:  # noqa: BLE001 - any failure of the storage means "not ready"; the reason is logged
            log.warning("job queue storage does not answer", exc_info=True)
            return False

    def close(self) -> None:
        storage = self.huey.storage
        pool = getattr(storage, "pool", None)
        if pool is not None:
            pool.disconnect()
        elif hasattr(storage, "close"):
            storage.close()


def period(declared: Declared, config: Mapping) -> float:
    """A periodic task's period in seconds."""
    return float(declared.every(config) if callable(declared.every) else config[declared.every])


def describe_period(declared: Declared, config: Mapping) -> str:
    if declared.every is None:
        return "queued by the service"
    source = declared.every if isinstance(declared.every, str) else "derived"
    return f"every {period(declared, config):g} s ({source})"


def _in_app_context(app: Flask, func: Callable) -> Callable:
    def run(*args, **kwargs):
        with app.app_context():
            return func(*args, **kwargs)

    run.__name__ = func.__name__
    run.__qualname__ = func.__qualname__
    run.__module__ = func.__module__
    run.__doc__ = func.__doc__
    return run


def _every(seconds: float, tick: float) -> Callable[[datetime], bool]:
    """Huey's test for a periodic task: true at the first tick of each `seconds`-long window of the clock
    (ticks come every `tick` seconds, so exactly one falls first in each window)."""

    def due(moment: datetime) -> bool:
        now = moment.replace(tzinfo=UTC).timestamp() if moment.tzinfo is None else moment.timestamp()
        return int(now // seconds) != int((now - tick) // seconds)

    return due


def backend(config) -> str:
    chosen = str(config.get("JOBS_BACKEND") or "auto").strip().lower()
    if chosen not in BACKENDS:
        raise ConfigError(f"JOBS_BACKEND must be one of {', '.join(BACKENDS)}, got {chosen!r}")
    if chosen == "auto":
        return "redis" if config.get("REDIS_URL") else "sqlite"
    if chosen == "redis" and not config.get("REDIS_URL"):
        raise ConfigError("JOBS_BACKEND=redis needs REDIS_URL")
    return chosen


def queue_name(config) -> str:
    return f"{config['REDIS_KEY_PREFIX']}jobs"


def build_huey(config) -> Huey:
    name = queue_name(config)
    # Results are not kept: tasks write what they do to the database, and nobody waits on a task's value.
    if backend(config) == "redis":
        import redis

        # Timeouts, so that a Redis gone away answers a request's enqueue with an error in seconds (the
        # outbox's sweep sends later) instead of holding the request; longer than the worker's wait below.
        pool = redis.ConnectionPool.from_url(config["REDIS_URL"], socket_timeout=5, socket_connect_timeout=2,
                                             health_check_interval=30)
        # read_timeout: a worker waits on the queue at most this long before looking at its stop flag.
        return RedisHuey(name, connection_pool=pool, results=False, utc=True, clean_name=False, read_timeout=1)
    path = Path(config["JOBS_SQLITE_PATH"])
    path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(name, filename=str(path), results=False, utc=True)


def init_app(app: Flask) -> None:
    from app.jobs.cli import group

    app.cli.add_command(group)
    for module in TASK_MODULES:
        importlib.import_module(module)
    jobs = Jobs(app, build_huey(app.config))
    app.extensions["jobs"] = jobs
    add_readiness_check(app, "jobs", jobs.ping)


def for_app() -> Jobs:
    return current_app.extensions["jobs"]


def enqueue(name: str, *args, delay: float | None = None) -> None:
    """Queue one run of task `name` on the current app's queue."""
    for_app().enqueue(name, *args, delay=delay)
