"""The connector registry: bureaus register and manage their data services, admins approve and disable them.

Rules (API.md, BRIEF §4.5):
- a bureau account registers connectors for its own bureau (the code comes from the account, never the
  body) and sees and changes only those; anyone else's connector is a 404, as if it did not exist;
- the platform generates the signing secret; it is stored encrypted and shown only in the answers to
  registration and rotation;
- the URL guard checks `base_url` at registration, on every change and again at approval (DNS may have
  changed since); the connector client checks the peer once more on every connection;
- changing what an admin approved (URL, paths, elements or mapping, trust level) returns an active
  connector to `pending`;
- every change is a `ConnectorEvent` naming the actor, with the changed fields (a secret only as "rotated");
- a change of the active set bumps the catalogue revision (GET /data-elements lists providers) and makes
  this process rebuild its connector registry at once (app/connectors/services/runtime.py).
- a health check's outcome is remembered (the state store, HEALTH_KEPT_SECONDS) as the connector's last health.

Default mapping convention: a connector registered with `elements` and no `mapping` answers in the
platform's standard shape, each element at its own dotted name, e.g. `{"person": {"name": "张伟"},
"updated_at": "2024-03-18T10:12:45+08:00"}`: element `person.name` maps to the path `person.name`, and the
record's last-updated time is read from `updated_at` unless `source_updated_path` says otherwise.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime

import sqlalchemy as sa
from flask import current_app

from app.accounts.models import StaffUser
from app.catalogue import cache
from app.catalogue.models import Department
from app.connectors.models import DEFAULTS, MAX_USAGE_DAYS, Connector, ConnectorEvent, DataAccessRecord
from app.connectors.services.runtime import runtime, spec_of
from app.errors import Forbidden, NotFound, ValidationFailed
from app.extensions import db
from app.modelbase import new_id, utcnow
from app.pii import vault
from app.web.paging import Page, page_of
from shared_data import elements
from shared_data.client import HealthResult
from shared_data.connectors import ConnectorSpec
from shared_data.errors import InvalidSpec, UnsafeUrl

DEFAULT_UPDATED_PATH = "updated_at"  # with the default mapping convention (module docstring)
# Fields an admin approved: changing one returns an active connector to `pending`.
REAPPROVAL_FIELDS = frozenset({"base_url", "query_path", "health_path", "mapping", "trust_level"})
SPEC_FIELDS = (
    "name",
    "base_url",
    "query_path",
    "health_path",
    "auth_type",
    "timeout_seconds",
    "trust_level",
    "mapping",
    "source_updated_path",
    "max_response_bytes",
)
CONNECTOR_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# The last health check of each connector, in the shared state store: a hint for the bureau's list (the
# check is cheap to run again), not a record, so it lives only this long and needs no table.
HEALTH_KEY = "connector-health:"
HEALTH_KEPT_SECONDS = 30 * 24 * 3600


@dataclass(frozen=True)
class LastHealth:
    """A connector's last health check: its outcome and when it ran."""

    ok: bool
    latency_ms: int
    error: str | None
    checked_at: datetime


class UnsafeConnectorUrl(ValidationFailed):
    error, message = "unsafe_url", "接口地址不安全或不被允许"

    @classmethod
    def of(cls, exc: UnsafeUrl) -> UnsafeConnectorUrl:
        """The 422 for a refused URL, naming the guard's reason (e.g. private_address, https_required)."""
        return cls(f"接口地址不安全或不被允许:{exc.reason}", errors={"json": {"base_url": [exc.reason]}})


def new_secret() -> str:
    """A fresh signing secret (256 bits, URL-safe text)."""
    return secrets.token_urlsafe(32)


def subject(staff: StaffUser) -> str:
    return f"staff:{staff.id}"


# ------------------------------------------------------------------------------------------------ reads


def visible_connector(connector_id: str, staff: StaffUser, *, own_only: bool = False) -> Connector:
    """The connector if `staff` may see it: admins see all (unless `own_only`), a bureau its own; else 404."""
    row = db.session.get(Connector, connector_id) if CONNECTOR_ID.fullmatch(connector_id) else None
    if row is None:
        raise NotFound("接入服务不存在")
    if "admin" in staff.roles and not own_only:
        return row
    if "bureau" in staff.roles and staff.bureau_code and staff.bureau_code == row.bureau_code:
        return row
    raise NotFound("接入服务不存在")  # another bureau's connector: not even its existence is shown


def list_connectors(staff: StaffUser, *, page: int = 1, per_page: int = 20, status: str | None = None) -> Page:
    """A page of the connectors `staff` may see, newest first."""
    conditions = []
    if "admin" not in staff.roles:
        conditions.append(Connector.bureau_code == (staff.bureau_code or ""))
    if status:
        conditions.append(Connector.status == status)
    return page_of(
        sa.select(Connector).where(*conditions).order_by(Connector.created_at.desc(), Connector.id),
        page=page, per_page=per_page,
    )


def connector_events(connector_id: str, staff: StaffUser) -> list[ConnectorEvent]:
    """The registry history of one connector, oldest first."""
    row = visible_connector(connector_id, staff)
    return db.session.scalars(
        sa.select(ConnectorEvent).where(ConnectorEvent.connector_id == row.id).order_by(ConnectorEvent.at)
    ).all()


def element_providers() -> dict[str, list[str]]:
    """Element name → ids of the active connectors providing it, in the order the prefill prefers them."""
    rows = db.session.execute(
        sa.select(Connector.id, Connector.mapping)
        .where(Connector.status == "active")
        .order_by(Connector.trust_level, Connector.name, Connector.id)
    )
    providers: dict[str, list[str]] = defaultdict(list)
    for connector_id, mapping in rows:
        for element in mapping:
            providers[element].append(connector_id)
    return dict(providers)


# ----------------------------------------------------------------------------------------------- writes


def data_elements() -> dict:
    """The dictionary of standard data elements, each with the active connectors providing it."""
    providers = element_providers()
    return {"items": [{**asdict(element), "providers": providers.get(name, [])}
                      for name, element in elements.ELEMENTS.items()]}


def register(data: Mapping, staff: StaffUser) -> tuple[Connector, str]:
    """Register a connector for the account's bureau (status `pending`); returns it and its new secret."""
    if not staff.bureau_code:
        raise Forbidden("该账号未归属任何委办局,不能登记接入服务")
    values = {**DEFAULTS, **{k: v for k, v in data.items() if k not in ("elements", "mapping")}}
    values["mapping"] = _mapping_of(data, existing=None)
    if "mapping" not in data and "source_updated_path" not in data:
        values["source_updated_path"] = DEFAULT_UPDATED_PATH
    values.setdefault("source_updated_path", None)
    secret = new_secret()
    connector_id = new_id()
    spec = _checked_spec(connector_id, staff.bureau_code, values, secret)
    row = Connector(
        id=connector_id,
        bureau_code=staff.bureau_code,
        secret_encrypted=vault().encrypt(secret),
        status="pending",
        version=1,
        created_by=subject(staff),
        **{name: getattr(spec, name) if name != "mapping" else dict(spec.mapping) for name in SPEC_FIELDS},
    )
    db.session.add(row)
    db.session.add(ConnectorEvent(
        connector_id=row.id, action="registered", actor=subject(staff),
        changes={name: {"from": None, "to": _plain(getattr(row, name))} for name in SPEC_FIELDS},
    ))
    db.session.commit()
    return row, secret


def update(connector_id: str, data: Mapping, staff: StaffUser) -> Connector:
    """Change an own connector; changing what was approved returns an active one to `pending`."""
    row = visible_connector(connector_id, staff, own_only=True)
    values = {name: getattr(row, name) for name in SPEC_FIELDS}
    values["mapping"] = dict(row.mapping)
    values.update({k: v for k, v in data.items() if k not in ("elements", "mapping")})
    if "elements" in data or "mapping" in data:
        values["mapping"] = _mapping_of(data, existing=row.mapping)
    changes = {
        name: {"from": _plain(getattr(row, name)), "to": _plain(values[name])}
        for name in SPEC_FIELDS
        if _plain(values[name]) != _plain(getattr(row, name))
    }
    if not changes:
        return row
    # The secret is only needed to validate a whole spec; the stored one is kept.
    _checked_spec(row.id, row.bureau_code, values, vault().decrypt(row.secret_encrypted),
                  check_url="base_url" in changes)
    was_active = row.status == "active"
    for name in changes:
        setattr(row, name, values[name])
    row.version += 1
    if was_active and REAPPROVAL_FIELDS.intersection(changes):
        row.status = "pending"
        row.approved_by = row.approved_at = None
        changes["status"] = {"from": "active", "to": "pending"}
    db.session.add(ConnectorEvent(connector_id=row.id, action="updated", actor=subject(staff), changes=changes))
    commit_registry_change(active_set_changed=was_active)
    return row


def rotate_secret(connector_id: str, staff: StaffUser) -> tuple[Connector, str]:
    """Give an own connector a new secret (the bureau must switch to it); returns it, shown once."""
    row = visible_connector(connector_id, staff, own_only=True)
    secret = new_secret()
    row.secret_encrypted = vault().encrypt(secret)
    row.version += 1
    db.session.add(ConnectorEvent(
        connector_id=row.id, action="secret_rotated", actor=subject(staff), changes={"secret": "rotated"}
    ))
    commit_registry_change(active_set_changed=row.status == "active")
    return row, secret


def approve(connector_id: str, staff: StaffUser) -> Connector:
    """Activate a pending or disabled connector (admin); the URL is checked again first. Idempotent."""
    row = visible_connector(connector_id, staff)
    if row.status == "active":
        return row
    try:
        runtime().url_guard.check(row.base_url)
    except UnsafeUrl as exc:
        db.session.rollback()
        raise UnsafeConnectorUrl.of(exc) from None
    changes = {"status": {"from": row.status, "to": "active"}}
    row.status, row.approved_by, row.approved_at = "active", subject(staff), utcnow()
    row.version += 1
    db.session.add(ConnectorEvent(connector_id=row.id, action="approved", actor=subject(staff), changes=changes))
    commit_registry_change(active_set_changed=True)
    return row


def disable(connector_id: str, staff: StaffUser) -> Connector:
    """Stop calling a connector (admin); it stays registered and can be approved again. Idempotent."""
    row = visible_connector(connector_id, staff)
    if row.status == "disabled":
        return row
    was_active = row.status == "active"
    changes = {"status": {"from": row.status, "to": "disabled"}}
    row.status = "disabled"
    row.version += 1
    db.session.add(ConnectorEvent(connector_id=row.id, action="disabled", actor=subject(staff), changes=changes))
    commit_registry_change(active_set_changed=was_active)
    return row


def health_check(connector_id: str, staff: StaffUser) -> HealthResult:
    """Call the connector's health path now → (ok, latency_ms, error); remembered as its last health."""
    row = visible_connector(connector_id, staff)
    result = runtime().health_check(spec_of(row, bureau_name=row.bureau_code))
    record = {**result._asdict(), "checked_at": utcnow().isoformat()}
    _state().put(HEALTH_KEY + row.id, json.dumps(record, separators=(",", ":")), HEALTH_KEPT_SECONDS)
    return result


def last_health(connector_ids: Iterable[str]) -> dict[str, LastHealth]:
    """The last health check (API or console) of each of `connector_ids` in the last HEALTH_KEPT_SECONDS."""
    found = {}
    for connector_id in connector_ids:
        raw = _state().get(HEALTH_KEY + connector_id)
        if raw is not None:
            record = json.loads(raw)
            found[connector_id] = LastHealth(record["ok"], record["latency_ms"], record["error"],
                                             datetime.fromisoformat(record["checked_at"]))
    return found


def _state():
    return current_app.extensions["state"]


def _mapping_of(data: Mapping, *, existing: Mapping | None) -> dict[str, str]:
    """The mapping a body describes: `mapping` as given, or `elements` under the default convention."""
    if "mapping" in data:
        return dict(data["mapping"])
    # Elements already mapped keep their paths; new ones follow the default convention.
    return {element: (existing or {}).get(element, element) for element in data["elements"]}


def _checked_spec(connector_id: str, bureau: str, values: Mapping, secret: str, *,
                  check_url: bool = True) -> ConnectorSpec:
    """The spec `values` describe: its URL checked by the guard first (422 `unsafe_url`, whatever is wrong with
    the URL), then every field validated (422 per field)."""
    if check_url:
        try:
            runtime().url_guard.check(values["base_url"])
        except UnsafeUrl as exc:
            db.session.rollback()
            raise UnsafeConnectorUrl.of(exc) from None
    spec = ConnectorSpec(id=connector_id, bureau=bureau, secret=secret, **{name: values[name] for name in SPEC_FIELDS})
    try:
        spec.validate()
    except InvalidSpec as exc:
        db.session.rollback()
        raise ValidationFailed(next(iter(exc.errors.values()))[0], errors={"json": exc.errors}) from None
    return spec


def _plain(value):
    """A JSON-comparable copy of a column value (mappings arrive as dicts or MappingProxies)."""
    return dict(value) if isinstance(value, Mapping) else value


def commit_registry_change(*, active_set_changed: bool) -> None:
    """Commit; when the active set changed, through the catalogue (its revision shows providers); then tell
    this process's runtime to rebuild its registry."""
    if active_set_changed:
        cache.commit_change()
    else:
        db.session.commit()
    runtime().invalidate()


# ------------------------------------------------------------------------------------------------ usage


def usage(connector_id: str, staff: StaffUser, *, days: int = 30) -> dict:
    """Calls, outcomes and latency percentiles per UTC day over the last `days` days, from the access log.

    Percentiles (nearest rank) are computed here rather than in SQL: SQLite has no percentile function, and
    PostgreSQL's percentile_cont would make the two backends answer differently.
    """
    row = visible_connector(connector_id, staff)
    days = max(1, min(days, MAX_USAGE_DAYS))
    last = utcnow().date()
    first = last - timedelta(days=days - 1)
    since = datetime.combine(first, dtime.min, UTC)
    latencies: dict[date, list[int]] = defaultdict(list)
    outcomes: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    query = (
        sa.select(DataAccessRecord.recorded_at, DataAccessRecord.outcome, DataAccessRecord.latency_ms)
        .where(DataAccessRecord.connector_id == row.id, DataAccessRecord.recorded_at >= since)
        .execution_options(yield_per=5000)
    )
    for recorded_at, outcome, latency_ms in db.session.execute(query):
        day = recorded_at.astimezone(UTC).date()
        latencies[day].append(latency_ms)
        outcomes[day][outcome] += 1
    per_day = [_day_stats(first + timedelta(days=n), latencies, outcomes) for n in range(days)]
    every_latency = [value for values in latencies.values() for value in values]
    total = {
        "calls": len(every_latency),
        **{key: sum(day[key] for day in per_day) for key in ("ok", "not_found", "errors", "timeouts")},
        "p50_ms": percentile(every_latency, 0.50),
        "p95_ms": percentile(every_latency, 0.95),
    }
    return {"connector_id": row.id, "from": first, "to": last, "days": per_day, "total": total}


def _day_stats(day: date, latencies, outcomes) -> dict:
    counts = outcomes.get(day, {})
    values = latencies.get(day, [])
    return {
        "date": day,
        "calls": len(values),
        "ok": counts.get("ok", 0),
        "not_found": counts.get("not_found", 0),
        "errors": counts.get("failed", 0) + counts.get("timeout", 0),
        "timeouts": counts.get("timeout", 0),
        "p50_ms": percentile(values, 0.50),
        "p95_ms": percentile(values, 0.95),
    }


def percentile(values: list[int], fraction: float) -> int | None:
    """The nearest-rank percentile of `values` (None for none)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def bureau_names() -> dict[str, str]:
    """Bureau (department) code → name."""
    return dict(db.session.execute(sa.select(Department.code, Department.name)).all())
