"""Staff accounts: the list, and a new account.

The API has no staff-account endpoints (API.md; accounts are created with `flask create-staff`), so these
pages use what the accounts domain offers: `create_staff`, which checks every field (username, password
length, roles, a bureau account's bureau, a reviewer's department) and refuses a taken username. It has no
service to change an account's roles or to deactivate one, so neither is offered here (the list says so)
rather than written into a view: which changes are allowed, and what becomes of the account's sessions and
tokens, are the accounts domain's rules to write first.
"""

from __future__ import annotations

import marshmallow as ma
import sqlalchemy as sa
from flask import redirect, render_template, request, url_for

from app.accounts.models import ROLES, StaffUser
from app.accounts.services.staff import create_staff
from app.console import admin_forms as forms
from app.console.admin.labels import LABELS
from app.console.views import bp, is_htmx, role
from app.errors import AppError
from app.web.paging import page_of
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
    listing = page_of(sa.select(StaffUser).order_by(StaffUser.username), **paging)
    created = request.args.get("created", "")
    return render_template("console/admin/staff.html", title="工作人员账号", listing=listing,
                           created=created if created in {row.username for row in listing.items} else "", **LABELS)


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


def _form(*, values: dict, errors: dict, status: int = 200):
    return render_template("console/admin/staff_form.html", title="新建工作人员账号", values=values, errors=errors,
                           role_choices=ROLES, **LABELS), status
