"""The admins' pages: the connector approval queue, the catalogue, staff accounts, the statistics dashboard.

`connectors.py` holds the approval queue (approve, disable, a connector's history), `catalogue.py` the matters
(list, edit and create through the API's schemas and versioning, the guide's preview), `staff.py` the staff
accounts, `dashboard.py` the statistics; `labels.py` the Chinese words for the API's codes. Forms are read by
`app/console/admin_forms.py`. Every view calls the service the matching API endpoint calls, as the logged-in
admin (`staff:<id>`), so each approval, matter version and statistics query is recorded as the API's are.
Importing the package adds the routes to the console's blueprint.
"""

from flask import g, render_template

from app.connectors.services import registry
from app.console.admin import catalogue, connectors, dashboard, staff  # noqa: F401
from app.console.views import bp, role


@bp.get("/admin/")
@role("admin")
def admin_index():
    """The admins' sections, with how many connectors wait for approval."""
    pending = registry.list_connectors(g.console.staff, status="pending", per_page=1).total
    return render_template("console/admin/index.html", title="系统管理", pending=pending)
