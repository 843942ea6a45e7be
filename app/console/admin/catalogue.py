"""The catalogue: list matters, edit or create one (validated and versioned as through the API), preview its guide.

The edit form is loaded by the schema of `PUT /api/v1/matters/{code}` (`MatterReplaceSchema`; a new matter by
`POST /api/v1/matters`'s `MatterWriteSchema`) in admin_forms.py and written by the catalogue service the API
calls, with the admin as `changed_by` (`staff:<id>`): version + 1, the previous version kept in the matter's
history, the flags (掌上办, 零材料, 刷脸办) derived from the materials, the catalogue cache moved on. The form
carries the version it was loaded at; the service's precondition (the API's If-Match) refuses a save over
someone else's newer version. The guide's preview is the API's own answer to `GET /api/v1/matters/{code}`
(`MatterGuideSchema`), laid out as the citizen reads it.
"""

from __future__ import annotations

import marshmallow as ma
from flask import redirect, render_template, request, url_for

from app.catalogue import services as catalogue
from app.catalogue.models import CATEGORIES, MATTER_TYPES
from app.catalogue.schemas import MatterGuideSchema, MatterQuerySchema
from app.console import admin_forms as forms
from app.console.admin.labels import LABELS
from app.console.connector_forms import message
from app.console.views import actor, bp, is_htmx, role
from app.errors import AppError

LIST_FILTERS = ("q", "category", "department", "page")


def form_page(status: int = 200, *, push: str | None = None, **context):
    context = {"notice": None, "errors": {}, "matter": None, "history": [], **context}
    headers = {"HX-Push-Url": push} if push and is_htmx() else {}
    return render_template("console/admin/matter.html", departments=catalogue.departments(),
                           matter_types=MATTER_TYPES,
                           **LABELS, **context), status, headers


# ------------------------------------------------------------------------------------------ the list


@bp.get("/admin/matters/")
@role("admin")
def admin_matters():
    """The catalogue's matters (the API's search, its query checked by the API's schema), ordered by code."""
    values = {name: request.args.get(name, "").strip() for name in LIST_FILTERS}
    try:
        query = MatterQuerySchema().load({name: value for name, value in values.items() if value})
        errors = {}
    except ma.ValidationError as error:
        query, errors = {}, {name: message(texts) for name, texts in error.messages.items()}
    found = catalogue.search_matters(**query)
    return render_template("console/admin/matters.html", title="事项目录", found=found, values=values, errors=errors,
                           departments=catalogue.departments(), categories=CATEGORIES), 422 if errors else 200


# ------------------------------------------------------------------------------------------ edit, create


# The catalogue services' refusals a form can show: an unknown department or a taken code (422, 409), a save
# over a newer version (412) or a concurrent one (409).
FORM_REFUSALS = (409, 412, 422)


@bp.route("/admin/matters/<code>", methods=["GET", "POST"])
@role("admin")
def admin_matter(code: str):
    """A matter's edit form and its version history; a valid form saves it as a new version."""
    matter = catalogue.get_matter(code)
    context = {"title": f"修改事项:{matter.name}", "matter": matter}
    if request.method == "GET":
        saved = request.args.get("saved", "")
        return form_page(**context, notice=f"已保存为第 {saved} 版。" if saved.isdigit() else None,
                         history=catalogue.matter_history(code),
                         values=forms.with_blank_rows(forms.values_of_matter(matter)))

    def refused(errors: dict, status: int):
        return form_page(status, **context, errors=errors, history=catalogue.matter_history(code),
                         values=forms.values_of(request.form))

    try:
        data, read = forms.matter_changes(request.form)
    except forms.FormInvalid as invalid:
        return refused(invalid.errors, 422)
    loaded_at = forms.expected_version(request.form)
    try:
        matter = catalogue.replace_matter(
            code, data, changed_by=actor(),
            precondition=(lambda current: current.version == loaded_at) if loaded_at is not None else None)
    except AppError as error:
        if error.status_code not in FORM_REFUSALS:
            raise
        context["matter"] = catalogue.get_matter(code)
        return refused(forms.service_errors(error, read), error.status_code)
    if not is_htmx():
        return redirect(url_for("console.admin_matter", code=code, saved=matter.version), 303)
    return form_page(title=f"修改事项:{matter.name}", matter=matter, notice=f"已保存为第 {matter.version} 版。",
                     history=catalogue.matter_history(code), push=url_for("console.admin_matter", code=code),
                     values=forms.with_blank_rows(forms.values_of_matter(matter)))


@bp.route("/admin/matters/new", methods=["GET", "POST"])
@role("admin")
def admin_matter_new():
    """The form for a new matter (version 1); a valid one creates it as POST /api/v1/matters does."""
    if request.method == "GET":
        return form_page(title="新建事项", values=forms.with_blank_rows(forms.values_of(request.form)))
    try:
        data, read = forms.new_matter(request.form)
    except forms.FormInvalid as invalid:
        return form_page(422, title="新建事项", errors=invalid.errors, values=forms.values_of(request.form))
    try:
        matter = catalogue.create_matter(data, changed_by=actor())
    except AppError as error:
        if error.status_code not in FORM_REFUSALS:
            raise
        return form_page(error.status_code, title="新建事项", errors=forms.service_errors(error, read),
                         values=forms.values_of(request.form))
    if not is_htmx():
        return redirect(url_for("console.admin_matter", code=matter.code, saved=matter.version), 303)
    return form_page(title=f"修改事项:{matter.name}", matter=matter, notice="已新建,当前为第 1 版。",
                     history=catalogue.matter_history(matter.code),
                     push=url_for("console.admin_matter", code=matter.code),
                     values=forms.with_blank_rows(forms.values_of_matter(matter)))


# ------------------------------------------------------------------------------------------ the guide


@bp.get("/admin/matters/<code>/guide")
@role("admin")
def admin_matter_guide(code: str):
    """The matter's 一次告知 guide as the citizen's API answers it (GET /api/v1/matters/{code})."""
    guide = MatterGuideSchema().dump(catalogue.get_matter(code))
    return render_template("console/admin/guide.html", title=f"办事指南预览:{guide['name']}", guide=guide, **LABELS)
