"""Liveness and readiness probes for the load balancer and the orchestrator.
"""

from collections.abc import Callable

import marshmallow as ma
from flask import Flask, current_app
from flask.views import MethodView
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.errors import AppError
from app.extensions import db
from app.web.blueprint import Blueprint


class HealthSchema(ma.Schema):
    status = ma.fields.String(required=True)
    checks = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())


blp = Blueprint("service", __name__, url_prefix="/", description="Service probes")


class NotReady(AppError):
    status_code, error, message = 503, "not_ready", "服务尚未就绪"


def add_readiness_check(app: Flask, name: str, check: Callable[[], bool]) -> None:
    """Have /readyz also ask `check` (true when ready), under `name`: for the domains' own conditions, which this
    module (below them all) cannot import."""
    app.extensions.setdefault("readiness_checks", {})[name] = check


@blp.route("/healthz")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    def get(self):
        """200 while the process runs."""
        return {"status": "ok"}


@blp.route("/readyz")
class Ready(MethodView):
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, description="The database or Redis does not answer, or a domain's own check fails "
                                       "(`audit_witness`: an audit log is behind its published checkpoint)")
    def get(self):
        """200 when the database (and Redis, if configured) answer and every domain's check holds; 503 otherwise."""
        checks = {}
        try:
            db.session.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except SQLAlchemyError:
            db.session.rollback()
            checks["database"] = "failed"
        checks["state"] = "ok" if current_app.extensions["state"].ping() else "failed"
        for name, check in current_app.extensions.get("readiness_checks", {}).items():
            try:
                checks[name] = "ok" if check() else "failed"
            except SQLAlchemyError:
                db.session.rollback()
                checks[name] = "failed"
        if "failed" in checks.values():
            raise NotReady(errors={"checks": checks})
        return {"status": "ok", "checks": checks}

