"""The reviewers' pages: the department's inbox, an application's detail, every review action, rectifications."""

from __future__ import annotations

from flask import render_template

from app.console.views import bp, role


@bp.get("/review/")
@role("reviewer")
def review_index():
    return render_template("console/review/index.html", title="办件审核")
