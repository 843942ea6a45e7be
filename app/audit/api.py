"""Auditors: query, search and export the logs, face-verification pass rates, verifying the hash chains.

Every call here is itself logged (in the auditor-access log) before it answers.
"""

import marshmallow as ma
from flask import Response, stream_with_context
from flask.views import MethodView
from flask_jwt_extended import get_jwt_identity
from marshmallow import RAISE

from app.accounts.guard import CITIZEN, caller, current_citizen, require
from app.audit import services as audit
from app.audit import transparency
from app.audit.schemas import (
    ConsistencyProofSchema,
    ConsistencyQuerySchema,
    DataAccessPageSchema,
    DataAccessQuerySchema,
    DataAccessSearchSchema,
    ExportQuerySchema,
    FaceLogQuerySchema,
    FaceLogSearchSchema,
    FacePageSchema,
    InclusionProofSchema,
    InclusionQuerySchema,
    PublicKeysSchema,
    VerifyBodySchema,
    VerifyResultSchema,
)
from app.web.blueprint import Blueprint
from app.web.requestid import request_id

blp = Blueprint("audit", __name__, url_prefix="/api/v1", description="Audit: the logs, their chains and pass rates")

EXPORT_QUERY = ExportQuerySchema()
EXPORT_DESCRIPTION = ("streamed, per `format`: CSV with a header row (lists joined by `;`; cells that would start "
                      "a spreadsheet formula are prefixed with `'`) or JSON Lines (one record per line)")
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8",
               "bundle": "application/json; charset=utf-8"}
EXTENSIONS = {"csv": "csv", "jsonl": "jsonl", "bundle": "bundle.json"}


UNAUTHORIZED = blp.error(401, "`unauthorized`: no valid access token")
FORBIDDEN = blp.error(403, "`forbidden`: not an auditor token")
# Auditor reads are logged before they are served: when that log cannot be written, nothing is served.
LOG_UNAVAILABLE = blp.error(503, "`audit_log_unavailable`: the auditor-access log cannot be written (see POST "
                             "/api/v1/audit/verify); nothing was served")


BAD_FILTER = blp.error(422, "`validation_failed`: a bad filter or cursor")
PERSON_SEARCH_DOC = """

        The same filters as the GET, and `id_number`, in the body: a person's ID number never travels in a URL
        (where access logs and proxies would keep it). It is matched through its keyed hash; the search is
        logged with the hash only.
        """


def log_views(log: str, query: ma.Schema, search: ma.Schema, page: type[ma.Schema], *, what: str,
              note: str = "") -> None:
    """Register the two ways to read `log`: GET /audit/{log} (filters in the query string) and
    POST /audit/{log}/search (the same filters and a person, in the body). Both are logged before they answer."""

    class Query(MethodView):
        @require("auditor")
        @blp.arguments(query, location="query", unknown=RAISE)
        @blp.response(200, page)
        @UNAUTHORIZED
        @FORBIDDEN
        @LOG_UNAVAILABLE
        @BAD_FILTER
        def get(self, args):
            return audit.query(log, args, actor=get_jwt_identity(), request_id=request_id())

    class Search(MethodView):
        @require("auditor")
        @blp.arguments(search, unknown=RAISE, required=False)  # every filter is optional
        @blp.response(200, page)
        @UNAUTHORIZED
        @FORBIDDEN
        @LOG_UNAVAILABLE
        @BAD_FILTER
        def post(self, body):
            return audit.query(log, body, actor=get_jwt_identity(), request_id=request_id())

    # flask-smorest reads the summary and description from the docstrings when the route is registered.
    Query.get.__doc__ = f"Query the {what} log in record order, with filters and a cursor; the query is logged.{note}"
    Search.post.__doc__ = f"Search the {what} log, for a person among other filters.{PERSON_SEARCH_DOC}"
    name = "".join(part.title() for part in log.split("-"))
    blp.route(f"/audit/{log}", endpoint=f"{name}Log")(Query)
    blp.route(f"/audit/{log}/search", endpoint=f"{name}Search")(Search)


log_views("data-access", DataAccessQuerySchema(), DataAccessSearchSchema(), DataAccessPageSchema, what="data-access")
log_views("face-verifications", FaceLogQuerySchema(), FaceLogSearchSchema(), FacePageSchema,
          what="face-verification", note="\n\n        Records hold no name, ID number, image or encoding; to find "
                                         "a person's, POST …/search.\n        ")


# The converter states the logs an export exists for (the document shows them as an enum); others: 404.
@blp.route("/audit/<any('data-access', 'face-verifications'):log>/export")
class Export(MethodView):
    @require("auditor")
    @blp.arguments(EXPORT_QUERY, location="query", unknown=RAISE)
    @blp.response(200, {"type": "string"}, content_type="text/csv", description=EXPORT_DESCRIPTION)
    @blp.alt_response(200, schema={"type": "string"}, content_type="application/x-ndjson", success=True,
                      description=EXPORT_DESCRIPTION)
    @blp.alt_response(200, schema={"type": "object"}, content_type="application/json", success=True,
                      description="format=bundle: the evidence bundle (docs/operations.md, `zsb-verify`)")
    @UNAUTHORIZED
    @FORBIDDEN
    @LOG_UNAVAILABLE
    @blp.error(404, "`not_found`: no such log (exportable: `data-access`, `face-verifications`)")
    def get(self, args, log):
        """Stream a log (`data-access` or `face-verifications`) as CSV or JSON Lines, oldest first; the export
        itself is logged first."""
        fmt = args["format"]
        if fmt == "bundle":
            lines = transparency.evidence_bundle(log, args, actor=get_jwt_identity(), request_id=request_id(),
                                                 consistency_from=args.get("consistency_from"))
        else:
            lines = audit.export(log, fmt, args, actor=get_jwt_identity(), request_id=request_id())
        response = Response(stream_with_context(lines), mimetype=MEDIA_TYPES[fmt].split(";")[0])
        response.headers["Content-Type"] = MEDIA_TYPES[fmt]
        response.headers["Content-Disposition"] = f'attachment; filename="{log}.{EXTENSIONS[fmt]}"'
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


# ------------------------------------------------------------------------------ checkpoints and proofs

CHAINED = "<any('face-verifications', 'data-access', 'auditor-access'):log>"
NOTE_TYPE = "text/plain; charset=utf-8"
NOTE_DESCRIPTION = ("a C2SP tlog-checkpoint (origin, tree size, base64 root hash) in a C2SP signed note "
                    "signed with the log's Ed25519 key (GET /api/v1/audit/public-keys)")


def note_response(signed, status: int = 200) -> Response:
    response = Response(signed.note, status=status, mimetype="text/plain")
    response.headers["Content-Type"] = NOTE_TYPE
    return response


@blp.route(f"/audit/{CHAINED}/checkpoint")
class LogCheckpoint(MethodView):
    @require("auditor")
    @blp.response(200, {"type": "string"}, content_type="text/plain", description=NOTE_DESCRIPTION)
    @UNAUTHORIZED
    @FORBIDDEN
    def get(self, log):
        """The latest signed checkpoint of a log (the first is cut when there is none yet)."""
        return note_response(transparency.current_checkpoint(log))

    @require("auditor")
    @blp.response(201, {"type": "string"}, content_type="text/plain", description=NOTE_DESCRIPTION)
    @UNAUTHORIZED
    @FORBIDDEN
    @LOG_UNAVAILABLE
    def post(self, log):
        """Cut and sign a checkpoint of the log as it is now (published to the witness first); logged."""
        signed = transparency.cut_checkpoint(log, actor=get_jwt_identity(), request_id=request_id())
        return note_response(signed, 201)


@blp.route(f"/audit/{CHAINED}/proof/inclusion")
class InclusionProof(MethodView):
    @require("auditor", "citizen")
    @blp.arguments(InclusionQuerySchema, location="query", unknown=RAISE)
    @blp.response(200, InclusionProofSchema)
    @UNAUTHORIZED
    @FORBIDDEN
    @LOG_UNAVAILABLE
    @blp.error(404, "`not_found`: no such record (to a citizen also: a record that is not about them)")
    @blp.error(422, "`validation_failed`: `seq` beyond `size`, or `size` beyond the log")
    def get(self, args, log):
        """The RFC 9162 inclusion proof of record `seq` in the tree of `size` records.

        Auditors may ask for any record (logged); a face-bound citizen for a face-verification or data-access
        record about themselves.
        """
        viewer = current_citizen() if caller().kind == CITIZEN else None
        return transparency.inclusion(log, args["seq"], args.get("size"), viewer=viewer,
                                      actor=get_jwt_identity(), request_id=request_id())


@blp.route(f"/audit/{CHAINED}/proof/consistency")
class ConsistencyProof(MethodView):
    @require("auditor")
    @blp.arguments(ConsistencyQuerySchema, location="query", unknown=RAISE)
    @blp.response(200, ConsistencyProofSchema)
    @UNAUTHORIZED
    @FORBIDDEN
    @LOG_UNAVAILABLE
    @blp.error(422, "`validation_failed`: `from` beyond `to`, or `to` beyond the log")
    def get(self, args, log):
        """The RFC 9162 consistency proof between the trees of `from` and `to` records: the log only grew."""
        return transparency.consistency(log, args["from"], args["to"], actor=get_jwt_identity(),
                                        request_id=request_id())


@blp.route("/audit/public-keys")
class PublicKeys(MethodView):
    @blp.response(200, PublicKeysSchema)
    def get(self):
        """The signed-note verifier keys of the logs' checkpoints (anyone may fetch them)."""
        return {"keys": transparency.public_keys()}
