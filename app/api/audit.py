"""Auditors: query and export the data-access log, verify the hash chains. Every call here is itself logged."""

from flask import Response, stream_with_context
from flask.views import MethodView
from flask_jwt_extended import get_jwt_identity
from marshmallow import RAISE

from app.api.blueprint import Blueprint
from app.auth import require
from app.requestid import request_id
from app.schemas.audit import (
    DataAccessPageSchema,
    DataAccessQuerySchema,
    DataAccessSearchSchema,
    ExportQuerySchema,
    VerifyBodySchema,
    VerifyResultSchema,
)
from app.services import audit

blp = Blueprint("audit", __name__, url_prefix="/api/v1", description="Audit: the access logs and their chains")

DATA_ACCESS_QUERY = DataAccessQuerySchema()
DATA_ACCESS_SEARCH = DataAccessSearchSchema()
EXPORT_QUERY = ExportQuerySchema()
EXPORT_DESCRIPTION = ("streamed, per `format`: CSV with a header row (lists joined by `;`; cells that would start "
                      "a spreadsheet formula are prefixed with `'`) or JSON Lines (one record per line)")
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}



UNAUTHORIZED = blp.error(401, "`unauthorized`: no valid access token")
FORBIDDEN = blp.error(403, "`forbidden`: not an auditor token")
# Auditor reads are logged before they are served: when that log cannot be written, nothing is served.
LOG_UNAVAILABLE = blp.error(503, "`audit_log_unavailable`: the auditor-access log cannot be written (see POST "
                             "/api/v1/audit/verify); nothing was served")


@blp.route("/audit/data-access")
class DataAccessLog(MethodView):
    @require("auditor")
    @blp.arguments(DATA_ACCESS_QUERY, location="query", unknown=RAISE)
    @blp.response(200, DataAccessPageSchema)
    @UNAUTHORIZED
    @FORBIDDEN
    @LOG_UNAVAILABLE
    def get(self, args):
        """Query the data-access log in record order, with filters and a cursor; the query itself is logged."""
        return audit.query("data-access", args, actor=get_jwt_identity(), request_id=request_id())


@blp.route("/audit/data-access/search")
class DataAccessSearch(MethodView):
    @require("auditor")
    @blp.arguments(DATA_ACCESS_SEARCH, unknown=RAISE, required=False)  # every filter is optional
    @blp.response(200, DataAccessPageSchema)
    @UNAUTHORIZED
    @FORBIDDEN
    @LOG_UNAVAILABLE
    @blp.error(422, "`validation_failed`: a bad filter or cursor")
    def post(self, body):
        """Search the data-access log, for a person among other filters.

        The same filters as the GET, and `id_number`, in the body: a person's ID number never travels in a URL
        (where access logs and proxies would keep it). It is matched through its keyed hash; the search is
        logged with the hash only.
        """
        return audit.query("data-access", body, actor=get_jwt_identity(), request_id=request_id())


# The converter states the logs an export exists for (the document shows them as an enum); others: 404.
@blp.route("/audit/<any('data-access', 'face-verifications'):log>/export")
class Export(MethodView):
    @require("auditor")
    @blp.arguments(EXPORT_QUERY, location="query", unknown=RAISE)
    @blp.response(200, {"type": "string"}, content_type="text/csv", description=EXPORT_DESCRIPTION)
    @blp.alt_response(200, schema={"type": "string"}, content_type="application/x-ndjson", success=True,
                      description=EXPORT_DESCRIPTION)
    @UNAUTHORIZED
    @FORBIDDEN
    @LOG_UNAVAILABLE
    @blp.error(404, "`not_found`: no such log (exportable: `data-access`, `face-verifications`)")
    def get(self, args, log):
        """Stream a log (`data-access` or `face-verifications`) as CSV or JSON Lines, oldest first; the export
        itself is logged first."""
        fmt = args["format"]
        lines = audit.export(log, fmt, args, actor=get_jwt_identity(), request_id=request_id())
        response = Response(stream_with_context(lines), mimetype=MEDIA_TYPES[fmt].split(";")[0])
        response.headers["Content-Type"] = MEDIA_TYPES[fmt]
        response.headers["Content-Disposition"] = f'attachment; filename="{log}.{fmt}"'
        return response


@blp.route("/audit/verify")
class Verify(MethodView):
    @require("auditor")
    @blp.arguments(VerifyBodySchema)
    @blp.response(200, VerifyResultSchema)
    @UNAUTHORIZED
    @FORBIDDEN
    @blp.error(422, "`validation_failed`: unknown log name")
    def post(self, body):
        """Recompute a hash chain (or `all`) and report the first broken link: {ok, checked, first_broken,
        head_hash}; the check itself is logged."""
        return audit.verify(body["log"], actor=get_jwt_identity(), request_id=request_id())
