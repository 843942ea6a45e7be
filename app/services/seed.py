"""Idempotent seeding: the demo catalogue always; the sandbox staff accounts and bureau connectors only with
the sandbox on."""

from flask import current_app


def seed_all() -> None:
    """Bring the database to the seeded state; running it twice changes nothing."""
    from app.services.catalogue import seed_catalogue
    from app.services.connectors import seed_sandbox_connectors
    from app.services.staff import seed_sandbox_staff

    seed_catalogue()
    if current_app.config["SANDBOX_ENABLED"]:
        seed_sandbox_staff()
        seed_sandbox_connectors()
