"""The department's rectifications (整改) of poor evaluations: the list, and closing one as the API allows.

The list is the API's (`evaluations.list_rectifications`, filtered by `RectificationQuerySchema`); closing is
`evaluations.resolve` (整改完成, saying what changed) or `evaluations.mark_unfixable` (无法整改, with the reason),
as the reviewer (`reviewer:<id>`), so each lands on the application's timeline as through the API. A close
form posts with the list's own query string, so a form with errors comes back on the page it was sent from;
one already closed is the API's 409, shown as an alert.
"""

from __future__ import annotations

from flask import render_template, request, url_for

from app.applications.models import RECTIFICATION_LABELS
from app.applications.services import evaluations, lifecycle
from app.console import review_forms as forms
from app.console.forms import FormInvalid
from app.console.review.applications import OVERDUE_CHOICES, SIZE_OPTIONS, done, reviewer
from app.console.review.labels import DONE_NOTICES, LABELS
from app.console.views import bp, role
from app.errors import ValidationFailed


def rectifications_page(status: int = 200, *, target: str | None = None, form: str | None = None,
                        errors: dict | None = None, conflict: str | None = None):
    """The list (the request's filters), with `target`'s `form` shown again with its errors."""
    query, filter_errors = forms.rectifications(request.args)
    listing = evaluations.list_rectifications(reviewer(), **query)
    values = forms.values(request.args, forms.RECTIFICATION_FILTERS)
    filters = {name: value for name, value in values.items() if value and name not in filter_errors}
    if filter_errors and status == 200:
        status = 422
    return render_template(
        "console/review/rectifications.html", title="整改", listing=listing, values=values, errors=filter_errors,
        filters=filters, page=query["page"],
        status_options=[(status, RECTIFICATION_LABELS[status]) for status in forms.RECTIFICATION_STATUSES],
        overdue_choices=OVERDUE_CHOICES, size_options=SIZE_OPTIONS, target=target, current_form=form,
        form_errors=errors or {}, form_values=request.form if form else {}, conflict=conflict,
        notice=DONE_NOTICES.get(request.args.get("done", "")) if request.method == "GET" else None, **LABELS,
    ), status


@bp.get("/review/rectifications")
@role("reviewer")
def review_rectifications():
    """The department's rectifications, the most urgent first; filter by status or overdue."""
    return rectifications_page()


def close(rectification_id: str, outcome: str, perform):
    back = {name: value for name, value in request.args.items() if name != "done"}
    try:
        perform()
    except FormInvalid as invalid:
        return rectifications_page(422, target=rectification_id, form=outcome, errors=invalid.errors)
    except ValidationFailed as error:
        return rectifications_page(422, target=rectification_id, form=outcome, errors=forms.service_errors(error))
    except lifecycle.InvalidTransition as error:  # closed already (by another reviewer, or a page left open)
        return rectifications_page(409, conflict=error.message)
    return done(url_for("console.review_rectifications", **back, done=outcome))


@bp.post("/review/rectifications/<rectification_id>/resolve")
@role("reviewer")
def review_resolve(rectification_id: str):
    """整改完成: what the department changed."""
    return close(rectification_id, "resolved", lambda: evaluations.resolve(
        rectification_id, reviewer(), forms.resolve(request.form)))


@bp.post("/review/rectifications/<rectification_id>/unfixable")
@role("reviewer")
def review_unfixable(rectification_id: str):
    """无法整改, with the reason."""
    return close(rectification_id, "unfixable", lambda: evaluations.mark_unfixable(
        rectification_id, reviewer(), forms.unfixable(request.form)))
