"""`flask` CLI commands."""

import sys

import click
from flask import Flask
from flask.cli import with_appcontext

from app.models.staff import ROLES


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
    from app.errors import AppError
    from app.services.staff import create_staff

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


def init_app(app: Flask) -> None:
    """Register the project's commands on `app`."""
    app.cli.add_command(create_staff_command)
