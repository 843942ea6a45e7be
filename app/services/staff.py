"""Placeholder: replaced by the staff service."""


def seed_sandbox_staff() -> None:
    pass
