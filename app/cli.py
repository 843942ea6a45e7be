"""`flask` CLI commands."""

import sys
import uuid

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from app.accounts.models import ROLES


@click.command("create-staff")
@click.argument("username")
@click.option("--role", "roles", multiple=True, required=True, type=click.Choice(ROLES),
              help="a role of the account; repeat for several")
@click.option("--bureau", "bureau_code", help="bureau code (required for, and only for, a bureau account)")
@click.option("--department", "department_code",
              help="department code (required for, and only for, a reviewer account)")
@click.option("--display-name", default="", help="the name shown to colleagues (default: the username)")
@click.option("--password-stdin", is_flag=True,
              help="read the password from the first line of standard input instead of a hidden prompt")
@with_appcontext
def create_staff_command(username, roles, bureau_code, department_code, display_name, password_stdin):
    """Create a staff account; the password is asked for twice without echo (or read from stdin)."""
    from app.accounts.services.staff import create_staff
    from app.errors import AppError

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = create_staff(
            username, password, roles,
            bureau_code=bureau_code, department_code=department_code, display_name=display_name,
        )
    except AppError as exc:
        details = [f"  {field}: {message}"
                   for field, messages in ((exc.errors or {}).get("json") or {}).items()
                   for message in messages]
        raise click.ClickException("\n".join([exc.message, *details])) from None
    click.echo(f"created staff account {user.username} ({', '.join(user.roles)}) id={user.id}")


@click.group("audit")
def audit_group():
    """The tamper-evident audit logs."""


def log_option(help_text: str):
    """`--log all|<one chained log>`, for the audit commands."""
    return click.option("--log", "log_name", default="all", show_default=True,
                        type=click.Choice(["all", "data-access", "auditor-access", "face-verifications"]),
                        help=help_text)


@audit_group.command("verify")
@log_option("the chain to verify")
@click.option("--incremental", is_flag=True,
              help="re-hash only the records after each chain's newest checkpoint that holds (default: all); "
                   "misses edits to the records before it")
@with_appcontext
def audit_verify_command(log_name, incremental):
    """Recompute each chain, its Merkle tree and its checkpoints and report the first failure; exits 1 when a
    chain is broken."""
    from app.audit import services as audit
    from app.errors import AppError

    try:
        result = audit.verify(log_name, actor="cli", request_id=uuid.uuid4().hex, incremental=incremental)
    except AppError as exc:
        raise click.ClickException(exc.message) from None
    for name, chain in result.logs.items():
        state = "ok" if chain.ok else "BROKEN"
        since = f" after checkpoint {chain.started_after}" if chain.started_after else ""
        click.echo(f"{name}: {state}, {chain.checked} records{since}, {chain.checkpoints} checkpoints, "
                   f"head {chain.head_hash}")
        if chain.first_broken:
            broken = chain.first_broken
            click.echo(f"  first broken: seq {broken['seq']} (id {broken['id']}): {broken['reason']}")
    for finding in result.witness:
        click.echo(f"{finding['log']}: BEHIND ITS WITNESS (checkpoint size {finding['checkpoint_size']}): "
                   f"{finding['reason']}")
    if not result.ok:
        sys.exit(1)


@audit_group.command("checkpoint")
@log_option("the log to cut a checkpoint of")
@with_appcontext
def audit_checkpoint_command(log_name):
    """Cut, sign and publish a checkpoint of each log now, and print the signed notes."""
    from app.audit import services as audit
    from app.audit import transparency

    names = list(audit.CHAINED_LOGS) if log_name == "all" else [log_name]
    for name in names:
        click.echo(transparency.checkpoints.cut(transparency.chain_of(name)).note)


@audit_group.command("generate-key")
@click.argument("name")
def audit_generate_key_command(name):
    """Make a checkpoint signing key NAME (e.g. zsb.example.gov.cn/audit): prints the signer key for
    AUDIT_SIGNING_KEY (keep it secret) and its verifier key (publish it to auditors)."""
    from tlog.note import Signer

    signer = Signer.generate(name)
    click.echo(f"AUDIT_SIGNING_KEY={signer.private_key_text()}")
    click.echo(f"verifier key: {signer.verifier_key()}")


@click.group("read-cache")
def read_cache_group():
    """The API processes' cached reads (app/web/readcache.py)."""


@read_cache_group.command("renew")
@with_appcontext
def read_cache_renew_command():
    """Make every API process drop its cached reads now (after changing accounts or applications by hand in
    the database; changes made through the service need nothing)."""
    from app.web import readcache

    readcache.renew_everything(current_app)
    click.echo("read caches renewed")


def init_app(app: Flask) -> None:
    """Register the project's commands on `app`."""
    app.cli.add_command(create_staff_command)
    app.cli.add_command(audit_group)
    app.cli.add_command(read_cache_group)
