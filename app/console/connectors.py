"""The bureaus' pages: their own connectors — register, edit, rotate the secret, health check, usage per day.

Every view calls the registry service the API's endpoint calls (app/connectors/services/registry.py), as the
logged-in staff member, so each change is the same `ConnectorEvent` with the same actor (`staff:<id>`) and
another bureau's connector is the same 404. Forms are loaded through the API's schemas (connector_forms.py).

A signing secret is shown once: in the page answering the registration or the rotation, and nowhere else —
it is not stored for a later page. Those forms post with htmx, which replaces the page's content and puts the
connector's own URL in the address bar, so a reload shows the connector without its secret (and posts
nothing again).
"""

from __future__ import annotations

import marshmallow as ma
from flask import g, redirect, render_template, request, url_for

from app.connectors.models import STATUSES
from app.connectors.schemas import ConnectorListQuerySchema, UsageQuerySchema
from app.connectors.services import registry
from app.console import connector_forms as forms
from app.console.charts import Series, bar_chart
from app.console.views import bp, is_htmx, role
from app.errors import ValidationFailed

USAGE_DAYS = (7, 14, 30, 90)
DEFAULT_USAGE_DAYS = 14
# What a failed health check's error code means (shared_data/client.py names them); others are shown as is.
HEALTH_ERRORS = {
    "connect_timeout": "连接超时",
    "read_timeout": "响应超时",
    "connection_error": "无法连接",
    "redirect_refused": "服务返回了重定向(不跟随)",
    "unsafe_url": "接口地址不安全或不被允许",
}
EVENT_LABELS = {"registered": "登记", "updated": "修改", "secret_rotated": "轮换签名密钥", "approved": "审核通过",
                "disabled": "停用", "seeded": "初始化(沙箱)"}
LABELS = {"statuses": forms.STATUS_LABELS, "auth_types": forms.AUTH_LABELS, "trust_levels": forms.TRUST_LABELS,
          "health_errors": HEALTH_ERRORS, "event_labels": EVENT_LABELS}


def staff():
    """The logged-in staff member: the registry service names them `staff:<id>`, as `views.actor()` does."""
    return g.console.staff


def own(connector_id: str):
    """The caller's own connector (another bureau's, or none: 404)."""
    return registry.visible_connector(connector_id, staff(), own_only=True)


def page(template: str, status: int = 200, *, push: str | None = None, **context):
    """A page; `push`: the URL htmx puts in the address bar for it (the page a reload should show)."""
    response = render_template(template, **LABELS, **context), status
    if push and is_htmx():
        return (*response, {"HX-Push-Url": push})
    return response


# ------------------------------------------------------------------------------------------ the list


@bp.get("/connectors/")
@role("bureau")
def connectors_index():
    """The bureau's connectors, newest first (the API's list, its query checked by the API's schema)."""
    try:
        query = ConnectorListQuerySchema().load({name: value for name, value in request.args.items() if value})
    except ma.ValidationError as error:
        raise ValidationFailed("查询条件有误:" + forms.message(error.messages)) from None
    listing = registry.list_connectors(staff(), **query)
    return page("console/connectors/index.html", title="数据接口", listing=listing,
                health=registry.last_health(row.id for row in listing.items), status_filter=query.get("status"),
                filters=STATUSES)


# ------------------------------------------------------------------------------------------ register


@bp.route("/connectors/new", methods=["GET", "POST"])
@role("bureau")
def connector_new():
    """The registration form; a valid one registers the connector (pending) and shows its secret once."""
    if request.method == "GET":
        return page("console/connectors/form.html", title="登记数据接口", values={}, errors={}, row=None,
                    groups=forms.element_groups())
    try:
        row, secret = registry.register(forms.registration(request.form), staff())
    except (forms.FormInvalid, ValidationFailed) as invalid:
        return page("console/connectors/form.html", 422, title="登记数据接口", values=forms.values_of(request.form),
                    errors=_errors(invalid), row=None, groups=forms.element_groups())
    return page("console/connectors/secret.html", 201, push=url_for("console.connector_detail", connector_id=row.id),
                title="接口已登记", row=row, secret=secret, rotated=False)


def _errors(invalid: Exception) -> dict[str, str]:
    return invalid.errors if isinstance(invalid, forms.FormInvalid) else forms.service_errors(invalid)


# ------------------------------------------------------------------------------------------ one connector


@bp.get("/connectors/<connector_id>")
@role("bureau")
def connector_detail(connector_id: str):
    """One own connector: its settings, last health check, the actions and its history (never the secret)."""
    row = own(connector_id)
    return _detail(row, notice=None)


def _detail(row, *, notice: str | None, status: int = 200, push: str | None = None):
    return page("console/connectors/detail.html", status, push=push, title=row.name, row=row, notice=notice,
                health=registry.last_health([row.id]).get(row.id),
                events=registry.connector_events(row.id, staff()))


@bp.route("/connectors/<connector_id>/edit", methods=["GET", "POST"])
@role("bureau")
def connector_edit(connector_id: str):
    """The edit form; a change of what an admin approved returns an active connector to pending (the service's
    rule)."""
    row = own(connector_id)
    context = {"title": f"修改:{row.name}", "row": row, "groups": forms.element_groups()}
    if request.method == "GET":
        return page("console/connectors/form.html", values=forms.values_of_connector(row), errors={}, **context)
    before = row.status
    try:
        row = registry.update(row.id, forms.changes(request.form), staff())
    except (forms.FormInvalid, ValidationFailed) as invalid:
        return page("console/connectors/form.html", 422, values=forms.values_of(request.form),
                    errors=_errors(invalid), **context)
    notice = "已保存。" + ("修改涉及已审核的内容,接口已退回待审核,管理员审核通过后恢复调用。"
                          if before == "active" and row.status == "pending" else "")
    return _detail(row, notice=notice, push=url_for("console.connector_detail", connector_id=row.id))


@bp.route("/connectors/<connector_id>/rotate-secret", methods=["GET", "POST"])
@role("bureau")
def connector_rotate(connector_id: str):
    """GET: what rotating means, and the confirmation; POST: a new secret, shown once."""
    row = own(connector_id)
    if request.method == "GET":
        return page("console/connectors/rotate.html", title=f"轮换签名密钥:{row.name}", row=row)
    row, secret = registry.rotate_secret(row.id, staff())
    return page("console/connectors/secret.html", push=url_for("console.connector_detail", connector_id=row.id),
                title="签名密钥已轮换", row=row, secret=secret, rotated=True)


@bp.post("/connectors/<connector_id>/health-check")
@role("bureau")
def connector_health(connector_id: str):
    """Call the connector's health path now; htmx gets the result in place, a plain form the detail page."""
    row = own(connector_id)
    registry.health_check(row.id, staff())
    if not is_htmx():
        return redirect(url_for("console.connector_detail", connector_id=row.id), 303)
    return page("console/connectors/_health.html", row=row, health=registry.last_health([row.id]).get(row.id),
                just_checked=True)


@bp.get("/connectors/<connector_id>/usage")
@role("bureau")
def connector_usage(connector_id: str):
    """Calls, errors and latency p50/p95 per UTC day (the API's usage service), as charts and a table."""
    row = own(connector_id)
    errors: dict[str, str] = {}
    try:
        days = UsageQuerySchema().load({"days": request.args.get("days") or str(DEFAULT_USAGE_DAYS)})["days"]
    except ma.ValidationError as error:
        errors["days"] = forms.message(error.messages)
        days = DEFAULT_USAGE_DAYS
    usage = registry.usage(row.id, staff(), days=days)
    dates = [day["date"].strftime("%m-%d") for day in usage["days"]]
    calls = bar_chart("usage-calls", f"最近 {days} 天每日调用与失败次数", dates, [
        Series("调用", [day["calls"] for day in usage["days"]]),
        Series("失败", [day["errors"] for day in usage["days"]]),
    ])
    latency = bar_chart("usage-latency", f"最近 {days} 天每日延迟(毫秒)", dates, [
        Series("p50", [day["p50_ms"] for day in usage["days"]]),
        Series("p95", [day["p95_ms"] for day in usage["days"]]),
    ], unit=" ms")
    return page("console/connectors/usage.html", 422 if errors else 200, title=f"调用统计:{row.name}", row=row,
                usage=usage, days=days, choices=USAGE_DAYS, errors=errors, calls_chart=calls,
                latency_chart=latency)
