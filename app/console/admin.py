"""The admins' pages: the connector approval queue, the catalogue, staff accounts, the statistics dashboard."""

from __future__ import annotations

from flask import render_template

from app.console.views import bp, role


@bp.get("/admin/")
@role("admin")
def admin_index():
    return render_template("console/admin/index.html", title="系统管理")
