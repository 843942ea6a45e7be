"""`flask jobs …`: the worker and scheduler processes, and running a task by hand."""

from __future__ import annotations

import signal
import sys

import click
from flask import current_app
from flask.cli import AppGroup

from app import jobs

group = AppGroup("jobs", help="Background work: workers, the scheduler, tasks run by hand.")


@group.command("worker")
@click.option("--workers", "-w", type=click.IntRange(1, 64), default=None,
              help="worker threads in this process (default JOBS_WORKERS)")
def worker_command(workers):
    """Run tasks from the queue until SIGTERM (which lets running tasks finish) or Ctrl-C."""
    app = current_app._get_current_object()
    count = workers or int(app.config["JOBS_WORKERS"])
    click.echo(f"job worker: {count} thread(s) on the {jobs.backend(app.config)} queue {jobs.queue_name(app.config)}")
    _stop_cleanly_until_the_consumer_runs()
    jobs.for_app().consumer(workers=count, periodic=False).run()


@group.command("scheduler")
def scheduler_command():
    """Enqueue periodic tasks when they are due until SIGTERM (run exactly one per deployment)."""
    app = current_app._get_current_object()
    click.echo(f"job scheduler: ticks every {app.config['JOBS_TICK_SECONDS']:g} s on the "
               f"{jobs.backend(app.config)} queue {jobs.queue_name(app.config)}")
    _stop_cleanly_until_the_consumer_runs()
    jobs.for_app().consumer(workers=0, periodic=True).run()


def _stop_cleanly_until_the_consumer_runs() -> None:
    """A SIGTERM before Huey's consumer has set its own handlers (it does so once its threads run) ends the
    process cleanly (exit 0, nothing was running yet) instead of by the signal's default action."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))


@group.command("list")
def list_command():
    """The declared tasks, and the period of each periodic one."""
    app = current_app._get_current_object()
    for name, declared in sorted(jobs.DECLARED.items()):
        click.echo(f"{name:<28} {jobs.describe_period(declared, app.config)}")


@group.command("run")
@click.argument("name")
@click.argument("args", nargs=-1)
def run_command(name, args):
    """Run task NAME now, in this process (not through the queue), and print what it returned."""
    declared = jobs.DECLARED.get(name)
    if declared is None:
        raise click.ClickException(f"no task {name!r}; `flask jobs list` shows them")
    click.echo(f"{name}: {declared.func(*args)!r}")
