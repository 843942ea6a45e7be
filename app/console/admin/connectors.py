"""The connector approval queue: pending connectors first, approve, disable, each connector's change history.

Every action is the registry service of the API's admin endpoint (`POST /api/v1/connectors/{id}/approve`,
`…/disable`, `GET …/events`, `…/health-check`) called as the logged-in admin, so the `ConnectorEvent` names the
same actor (`staff:<id>`) and the same rules hold: the URL is checked again at approval (422 `unsafe_url`),
both actions are idempotent, a disabled connector can be approved again. Both ask for confirmation first
(`data-confirm`, console.js), since the platform starts or stops calling the bureau at once.
"""

from __future__ import annotations

import marshmallow as ma
from flask import g, redirect, render_template, request, url_for

from app.connectors.models import STATUSES
from app.connectors.schemas import ConnectorListQuerySchema
from app.connectors.services import registry
from app.console.admin.labels import LABELS
from app.console.connector_forms import message
from app.console.views import bp, is_htmx, role
from app.errors import ValidationFailed

DEFAULT_FILTER = "pending"  # the queue: what waits for an admin
DONE_NOTICES = {"approve": "已审核通过:接口已启用,平台从现在起调用它。",
                "disable": "已停用:平台不再调用此接口;需要时可重新审核通过。"}


def admin():
    return g.console.staff


@bp.get("/admin/connectors/")
@role("admin")
def admin_connectors():
    """Every bureau's connectors, pending ones by default (the API's list, its query checked by its schema)."""
    chosen = request.args.get("status", DEFAULT_FILTER)
    args = {name: value for name, value in request.args.items() if value and name != "status"}
    if chosen != "all":
        args["status"] = chosen
    try:
        query = ConnectorListQuerySchema().load(args)
    except ma.ValidationError as error:
        raise ValidationFailed("查询条件有误:" + message(error.messages)) from None
    listing = registry.list_connectors(admin(), **query)
    return render_template("console/admin/connectors.html", title="数据接口审核", listing=listing, chosen=chosen,
                           filters=STATUSES, bureaus=registry.bureau_names(),
                           health=registry.last_health(row.id for row in listing.items), **LABELS)


@bp.get("/admin/connectors/<connector_id>")
@role("admin")
def admin_connector(connector_id: str):
    """One connector: its settings, last health check, approve or disable, and its history."""
    row = registry.visible_connector(connector_id, admin())
    return _detail(row, notice=DONE_NOTICES.get(request.args.get("done", "")))


def _detail(row, *, notice: str | None = None, error: str | None = None, status: int = 200,
            push: str | None = None):
    headers = {"HX-Push-Url": push} if push and is_htmx() else {}
    return render_template("console/admin/connector.html", title=row.name, row=row, notice=notice, error=error,
                           bureaus=registry.bureau_names(), health=registry.last_health([row.id]).get(row.id),
                           events=registry.connector_events(row.id, admin()), **LABELS), status, headers


@bp.post("/admin/connectors/<connector_id>/<any(approve, disable):action>")
@role("admin")
def admin_connector_action(connector_id: str, action: str):
    """Approve or disable (the API's service, as this admin); htmx gets the connector's page with the outcome,
    a plain form post a redirect to it."""
    act = registry.approve if action == "approve" else registry.disable
    try:
        row = act(connector_id, admin())
    except ValidationFailed as refused:  # the URL is no longer safe to call: it stays as it was
        return _detail(registry.visible_connector(connector_id, admin()), error=refused.message, status=422)
    if not is_htmx():
        return redirect(url_for("console.admin_connector", connector_id=row.id, done=action), 303)
    return _detail(row, notice=DONE_NOTICES[action], push=url_for("console.admin_connector", connector_id=row.id))


@bp.post("/admin/connectors/<connector_id>/health-check")
@role("admin")
def admin_connector_health(connector_id: str):
    """Call the connector's health path now (before approving it, say); htmx gets the result in place."""
    row = registry.visible_connector(connector_id, admin())
    registry.health_check(row.id, admin())
    if not is_htmx():
        return redirect(url_for("console.admin_connector", connector_id=row.id), 303)
    return render_template("console/connectors/_health.html", row=row, just_checked=True,
                           health=registry.last_health([row.id]).get(row.id), **LABELS)
