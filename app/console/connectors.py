"""The bureaus' pages: their own connectors — register, edit, rotate the secret, health check, usage per day."""

from __future__ import annotations

from flask import render_template

from app.console.views import bp, role


@bp.get("/connectors/")
@role("bureau")
def connectors_index():
    return render_template("console/connectors/index.html", title="数据接口")
