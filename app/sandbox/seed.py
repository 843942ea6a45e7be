"""Seeding for development and tests: the demo catalogue always; with the sandbox on, the sandbox staff accounts
and the sandbox bureaus as active connectors. Idempotent: running it twice changes nothing.

It lives with the sandbox so that no production module imports the sandbox; `flask seed` and the test
set-up call `seed_all`.
"""

from __future__ import annotations

import functools

import sqlalchemy as sa
from flask import current_app

from app.accounts.models import StaffUser
from app.accounts.services.staff import hash_password
from app.catalogue.seed import seed_catalogue
from app.connectors.models import Connector, ConnectorEvent
from app.connectors.services import registry as connectors
from app.extensions import db
from app.modelbase import utcnow
from app.pii import vault
from app.sandbox.bureaus import BUREAUS, sandbox_specs
from app.sandbox.connectors import bureau_urls


def seed_all() -> None:
    """Bring the database to the seeded state."""
    seed_catalogue()
    if current_app.config["SANDBOX_ENABLED"]:
        seed_sandbox_staff()
        seed_sandbox_connectors()


def seed_sandbox_connectors() -> int:
    """Register the sandbox bureaus (at the configured URLs) as active connectors; idempotent.

    Existing rows keep their secret and status; only a moved URL is updated. Returns the rows added.
    """
    urls = bureau_urls(current_app.config)
    specs = sandbox_specs(urls, {kind: connectors.new_secret() for kind in urls})
    existing = {row.id: row for row in db.session.scalars(sa.select(Connector).where(
        Connector.id.in_([spec.id for spec in specs])))}
    kinds = {bureau.connector_id: bureau for bureau in BUREAUS.values()}
    added = changed = 0
    now = utcnow()
    for spec in specs:
        row = existing.get(spec.id)
        if row is None:
            row = Connector(
                id=spec.id,
                bureau_code=kinds[spec.id].code,
                secret_encrypted=vault().encrypt(spec.secret),
                status="active",
                version=1,
                created_by="seed",
                approved_by="seed",
                approved_at=now,
                **{name: getattr(spec, name) if name != "mapping" else dict(spec.mapping)
                   for name in connectors.SPEC_FIELDS},
            )
            db.session.add(row)
            db.session.add(ConnectorEvent(connector_id=spec.id, action="seeded", actor="seed",
                                          changes={"status": {"from": None, "to": "active"}}))
            added += 1
        elif row.base_url != spec.base_url:
            db.session.add(ConnectorEvent(connector_id=spec.id, action="updated", actor="seed",
                                          changes={"base_url": {"from": row.base_url, "to": spec.base_url}}))
            row.base_url = spec.base_url
            row.version += 1
            changed += 1
    if added or changed:
        connectors.commit_registry_change(active_set_changed=True)
    return added


def sandbox_secrets() -> dict[str, tuple[str, str, str]]:
    """kind → (base URL, secret, auth type) of each seeded sandbox connector, for `push_secrets`."""
    ids = {bureau.connector_id: kind for kind, bureau in BUREAUS.items()}
    rows = db.session.scalars(sa.select(Connector).where(Connector.id.in_(list(ids)))).all()
    return {ids[row.id]: (row.base_url, vault().decrypt(row.secret_encrypted), row.auth_type) for row in rows}


SANDBOX_PASSWORD = "sandbox-pass"


# API.md "The development sandbox": username, roles, bureau, department, display name.
SANDBOX_ACCOUNTS = (
    ("admin", ["admin"], None, None, "沙箱管理员"),
    ("auditor", ["auditor"], None, None, "沙箱审计员"),
    ("reviewer-gjj", ["reviewer"], None, "gjj", "郑州住房公积金管理中心审核员"),
    ("bureau-ga", ["bureau"], "ga", None, "郑州市公安局数据共享管理员"),
    ("agent", ["agent"], None, None, "沙箱帮办员"),
)


@functools.cache
def _sandbox_password_hash() -> str:
    # Seeding runs before every test: hash once per process. Every sandbox account shares this hash (and
    # salt); acceptable for development-only accounts whose password is public anyway.
    return hash_password(SANDBOX_PASSWORD)


def seed_sandbox_staff() -> None:
    """Create the sandbox accounts of API.md that do not exist yet (password `sandbox-pass`); idempotent."""
    usernames = [account[0] for account in SANDBOX_ACCOUNTS]
    existing = set(db.session.scalars(sa.select(StaffUser.username).where(StaffUser.username.in_(usernames))))
    for username, roles, bureau_code, department_code, display_name in SANDBOX_ACCOUNTS:
        if username not in existing:
            db.session.add(StaffUser(
                username=username,
                display_name=display_name,
                password_hash=_sandbox_password_hash(),
                roles=roles,
                bureau_code=bureau_code,
                department_code=department_code,
            ))
    db.session.commit()
