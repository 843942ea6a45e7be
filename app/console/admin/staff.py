"""Staff accounts: the list, a new account, and changing one.

The API has no staff-account endpoints (API.md; accounts are created with `flask create-staff`), so these
pages use the accounts domain's services: `create_staff`, which checks every field (username, password
length, roles, a bureau account's bureau, a reviewer's department) and refuses a taken username, and
`update_staff`, which checks roles and scope by the same rules, keeps an admin from locking themselves out,
and ends what the account held before (its tokens carry the old roles and are refused).
"""

from __future__ import annotations

import marshmallow as ma
from flask import g, redirect, render_template, request, url_for

from app.accounts.models import ROLES, StaffUser
from app.accounts.services.staff import create_staff, get_staff, list_staff, update_staff
from app.console import admin_forms as forms
from app.console.admin.labels import LABELS
from app.console.views import bp, is_htmx, role
from app.errors import AppError
from app.web.schemas import PageQuerySchema


@bp.get("/admin/staff/")
@role("admin")
def admin_staff():
    """Every staff account by username, with its roles, bureau or department, and whether it is active."""
    try:
        paging = PageQuerySchema().load({name: value for name, value in request.args.items()
                                         if name in ("page", "per_page") and value})
    except ma.ValidationError:
        paging = PageQuerySchema().load({})
    listing = list_staff(**paging)
    shown = {row.username for row in listing.items}
    created, changed = request.args.get("created", ""), request.args.get("changed", "")
    return render_template("console/admin/staff.html", title="工作人员账号", listing=listing,
                           created=created if created in shown else "", changed=changed if changed in shown else "",
                           **LABELS)


@bp.route("/admin/staff/new", methods=["GET", "POST"])
@role("admin")
def admin_staff_new():
    """The new-account form; a valid one creates the account (the accounts domain's `create_staff`)."""
    if request.method == "GET":
        return _form(values={"roles": []}, errors={})
    try:
        user = create_staff(**forms.new_staff(request.form))
    except AppError as error:
        if error.status_code not in (409, 422):
            raise
        return _form(values=forms.staff_values(request.form), errors=forms.staff_errors(error),
                     status=error.status_code)
    target = url_for("console.admin_staff", created=user.username)
    if is_htmx():
        return "", 204, {"HX-Redirect": target}
    return redirect(target, 303)


@bp.route("/admin/staff/<staff_id>/edit", methods=["GET", "POST"])
@role("admin")
def admin_staff_edit(staff_id: str):
    """Change an account's roles, bureau or department, or deactivate it (the accounts domain's `update_staff`)."""
    user = get_staff(staff_id)
    if request.method == "GET":
        return _form(values=forms.staff_values_of(user), errors={}, editing=user)
    try:
        update_staff(user, **forms.staff_changes(request.form), by=g.console.staff)
    except AppError as error:
        if error.status_code != 422:
            raise
        return _form(values=forms.staff_values(request.form), errors=forms.staff_errors(error), status=422,
                     editing=user)
    target = url_for("console.admin_staff", changed=user.username)
    if is_htmx():
        return "", 204, {"HX-Redirect": target}
    return redirect(target, 303)


def _form(*, values: dict, errors: dict, status: int = 200, editing: StaffUser | None = None):
    title = "更改工作人员账号" if editing else "新建工作人员账号"
    return render_template("console/admin/staff_form.html", title=title, values=values, errors=errors,
                           role_choices=ROLES, editing=editing, **LABELS), status
