"""The staff console: auditors, bureaus, reviewers and admins in a browser (docs/architecture.md, "The staff
console"). Server-rendered pages over the same services as the API; nothing of its own but sessions and forms."""

from flask import Flask

from app.web.guards import FORM_BLUEPRINTS


def init_app(app: Flask) -> None:
    """Register the console's blueprint (pages and static files under /console/) and let it take HTML forms."""
    # Each role's pages add their routes to the one blueprint of views.py.
    from app.console import admin, audit, connectors, review  # noqa: F401
    from app.console.views import bp

    app.register_blueprint(bp)
    app.extensions.setdefault(FORM_BLUEPRINTS, set()).add(bp.name)
