"""The reviewers' inbox, an application's detail and every review action on it.

Each view calls the service the matching `/api/v1/review/applications…` endpoint calls, with the same actor —
`Actor.of(staff, "reviewer")`, recorded as `reviewer:<id>` — so an action lands on the timeline, in the
citizen's notifications and under the same one-winner transition as through the API; another department's
application is the same 404 (`lifecycle.reviewer_application`), a wrong state the same 409 with its message.
Forms are loaded by the API's schemas (review_forms.py). An action posts (with htmx, or as a plain form) and
on success the detail page is loaded afresh (`?done=<action>` names the notice), so a reload posts nothing
again; a form with errors comes back next to its fields (422), a wrong state as an alert above the actions.
"""

from __future__ import annotations

from datetime import date, datetime

from flask import Response, g, redirect, render_template, request, url_for

from app.applications.api.applications import file_response
from app.applications.models import STATUS_LABELS, Application
from app.applications.services import drafting, lifecycle, review
from app.applications.services.lifecycle import Actor
from app.applications.workdays import work_calendar
from app.catalogue import services as catalogue
from app.console import review_forms as forms
from app.console.forms import BEIJING, FormInvalid
from app.console.review.labels import DONE_NOTICES, LABELS
from app.console.views import bp, is_htmx, role
from app.errors import Conflict, NotFound, ValidationFailed
from shared_data.elements import ELEMENTS

# The review actions, in the order the detail page offers them, and the forms each has.
ACTIONS = ("accept", "request_supplement", "approve", "reject", "deliver")
OVERDUE_CHOICES = (("", "全部"), ("true", "已超期"), ("false", "未超期"))
SIZE_OPTIONS = [(str(size), f"{size} 件") for size in forms.PAGE_SIZES]


def reviewer() -> Actor:
    """The logged-in reviewer, as the API's review endpoints make them (`api/review.py::reviewer`)."""
    return Actor.of(g.console.staff, "reviewer")


def department_application(application_id: str) -> Application:
    """One submitted application of the reviewer's department; anything else is the API's 404."""
    return lifecycle.reviewer_application(application_id, reviewer())


@bp.app_template_filter("when")
def when(value) -> str:
    """A time (a datetime, or an ISO string as provenance keeps it) as Beijing time, to the minute."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if isinstance(value, datetime):
        return value.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M") if value.tzinfo else f"{value:%Y-%m-%d %H:%M}"
    return "" if value is None else str(value)


# ------------------------------------------------------------------------------------------ the inbox


@bp.get("/review/")
@role("reviewer")
def review_index():
    """The department's submitted applications, oldest first (the API's inbox), filtered by status, overdue and
    matter as `GET /api/v1/review/applications` is, a page at a time."""
    query, errors = forms.inbox(request.args)
    listing = review.inbox(reviewer(), **query)
    department = g.console.staff.department_code
    matters = catalogue.search_matters(department=department, per_page=100)["items"] if department else []
    values = forms.values(request.args, forms.INBOX_FILTERS)
    filters = {name: value for name, value in values.items() if value and name not in errors}
    return render_template(
        "console/review/index.html", title="办件审核", listing=listing, values=values, errors=errors, filters=filters,
        status_options=[(status, STATUS_LABELS[status]) for status in forms.INBOX_STATUSES],
        matter_options=[(matter.code, f"{matter.name}({matter.code})") for matter in matters],
        overdue_choices=OVERDUE_CHOICES, size_options=SIZE_OPTIONS, **LABELS,
    ), 422 if errors else 200


# ------------------------------------------------------------------------------------------ one application


def deadline(due: date | None, decided: bool) -> dict | None:
    """A deadline with the working days left (or by which it is past), while the application is undecided."""
    if due is None:
        return None
    if decided:
        return {"on": due}
    calendar, today = work_calendar(), work_calendar().today()
    if due >= today:
        return {"on": due, "left": calendar.working_days_between(today, due)}
    return {"on": due, "late": calendar.working_days_between(due, today)}


def detail_page(application: Application, status: int = 200, *, form: str | None = None,
                errors: dict | None = None, conflict: str | None = None, notice: str | None = None):
    """The application as its department sees it (the API's `detail_view`), with the forms of the actions its
    status allows; `form`: the one whose inputs and errors are shown again."""
    read = drafting.detail_view(application)
    matter = catalogue.get_matter(application.matter_code)
    decided = read.status in lifecycle.DECIDED
    submitted = read.submission or {}
    fields = submitted.get("fields") or (read.prefill or {}).get("fields") or {}
    promised = [material for material in read.materials if material.get("status") == "promised"]
    allowed = [action for action in ACTIONS if read.status in lifecycle.TRANSITIONS[action][0]]
    return render_template(
        "console/review/detail.html", title=f"{read.matter_name} · 办件详情", read=read, matter=matter,
        fields=[(name, ELEMENTS[name].label if name in ELEMENTS else name, meta) for name, meta in fields.items()],
        form_fields=submitted.get("form") or read.form or {},
        promised=promised, promised_options=[(material["code"], material["name"]) for material in promised],
        promised_deadline=deadline(read.promised_due_on, decided), legal_deadline=deadline(read.legal_due_on, decided),
        eligibility=submitted.get("eligibility"), to_decide=submitted.get("conditions_to_decide") or [],
        allowed=allowed, current_form=form, errors=errors or {}, values=request.form if form else {},
        conflict=conflict, notice=notice, **LABELS,
    ), status


@bp.get("/review/applications/<application_id>")
@role("reviewer")
def review_detail(application_id: str):
    """One application: its fields with provenance and trust level, materials, deadlines, timeline, actions."""
    return detail_page(department_application(application_id), notice=DONE_NOTICES.get(request.args.get("done", "")))


@bp.get("/review/applications/<application_id>/materials/<material_code>")
@role("reviewer")
def review_material(application_id: str, material_code: str):
    """A material the applicant uploaded, as the API serves it to the department (attachment, no-store)."""
    return file_response(department_application(application_id), material_code)


# ------------------------------------------------------------------------------------------ the actions


def act(application_id: str, action: str, perform):
    """Run `perform(application)` (a review service, with its form loaded): on success back to the detail page
    with the action's notice; a form's errors (422) or a wrong state (409) on the detail page."""
    application = department_application(application_id)
    try:
        perform(application)
    except FormInvalid as invalid:
        return detail_page(application, 422, form=action, errors=invalid.errors)
    except ValidationFailed as error:  # the service's own check (mail without a recipient, a material not promised)
        return detail_page(application, 422, form=action, errors=forms.service_errors(error))
    except Conflict as error:  # the API's 409 (a wrong state, a condition undecided), its message saying why
        return detail_page(application, 409, conflict=error.message)
    return done(url_for("console.review_detail", application_id=application.id, done=action))


def done(location: str):
    """After a successful action: the page again, loaded afresh (a 303 for a plain form; for htmx a full load
    by `HX-Redirect`, so no input of the old page lends its attributes to the new one while htmx settles)."""
    if is_htmx():
        return Response(status=204, headers={"HX-Redirect": location})
    return redirect(location, 303)


@bp.post("/review/applications/<application_id>/accept")
@role("reviewer")
def review_accept(application_id: str):
    """受理."""
    return act(application_id, "accept", lambda application: review.accept(application, reviewer()))


@bp.post("/review/applications/<application_id>/request-supplement")
@role("reviewer")
def review_request_supplement(application_id: str):
    """补正: everything the applicant must fix, one item a line, told at once."""
    return act(application_id, "request_supplement", lambda application: review.request_supplement(
        application, reviewer(), forms.supplement(request.form)))


@bp.post("/review/applications/<application_id>/approve")
@role("reviewer")
def review_approve(application_id: str):
    """办结 with the result (name and number default from the matter)."""
    return act(application_id, "approve", lambda application: review.approve(
        application, reviewer(), forms.approve(request.form)))


@bp.post("/review/applications/<application_id>/reject")
@role("reviewer")
def review_reject(application_id: str):
    """不予受理 / 不予许可, with the reason."""
    return act(application_id, "reject", lambda application: review.reject(
        application, reviewer(), forms.reject(request.form)))


@bp.post("/review/applications/<application_id>/deliver")
@role("reviewer")
def review_deliver(application_id: str):
    """送达: an e-certificate, or free mail with the recipient and tracking number."""
    return act(application_id, "deliver", lambda application: review.deliver(
        application, reviewer(), forms.deliver(request.form)))


@bp.post("/review/applications/<application_id>/promise-breach")
@role("reviewer")
def review_promise_breach(application_id: str):
    """Record that a written promise (告知承诺) was found untrue."""
    return act(application_id, "promise_breach", lambda application: review.record_promise_breach(
        application, reviewer(), *forms.promise_breach(request.form)))


@bp.post("/review/applications/<application_id>/conditions/<int:index>/decide")
@role("reviewer")
def review_decide_condition(application_id: str, index: int):
    """Decide by hand a condition the shared data left unknown (智能预审), as the API's decide does."""
    def perform(application):
        met, note = forms.condition_decision(request.form)
        try:
            review.decide_condition(application, reviewer(), index, met, note)
        except NotFound as missing:
            raise FormInvalid({"form": missing.message}) from None
    return act(application_id, "decide_condition", perform)
