"""Schemas of the auditor endpoints: log queries, exports and chain verification."""

from __future__ import annotations

import base64

import marshmallow as ma
from marshmallow import fields
from marshmallow.validate import Length, OneOf, Range

from app.audit.cursor import CURSOR_PATTERN, decode_cursor
from app.face.models import DECISIONS, EVENTS
from app.face.schemas import PROVIDER_PATTERN, matter_code
from app.web.jsontypes import WholeNumber
from app.web.schemas import PRINTABLE_PATTERN, FullMatch, RequestSchema, UtcDateTime, opaque_id

VERIFIABLE_LOGS = ("data-access", "face-verifications", "auditor-access", "all")
EXPORT_FORMATS = ("csv", "jsonl", "bundle")
MAX_LIMIT = 500


class TimeRangeSchema(ma.Schema):
    from_ = UtcDateTime(data_key="from", attribute="from",
                        metadata={"description": "records at or after this time (UTC when no offset)"})
    to = UtcDateTime(metadata={"description": "records before this time"})


def issued_cursor(value: str) -> None:
    try:
        decode_cursor(value)
    except ValueError:
        raise ma.ValidationError("分页游标无效") from None


class LogQuerySchema(TimeRangeSchema):
    """The filters and paging every log query shares (each log adds its own filters).

    No person filter here: an ID number never travels in a URL (POST …/search takes it in the body).
    """

    cursor = fields.String(validate=issued_cursor,
                           metadata={"description": "`next_cursor` of the previous page", "pattern": CURSOR_PATTERN})
    limit = WholeNumber(load_default=50, validate=Range(min=1, max=MAX_LIMIT))


# Who acted, as the logs name them.
ACTOR_PATTERN = r"^(staff|citizen):[A-Za-z0-9_-]{1,56}$"


class DataAccessQuerySchema(LogQuerySchema):
    connector = opaque_id("connector id")
    application_id = opaque_id("application id")
    actor = fields.String(validate=FullMatch(ACTOR_PATTERN, error="操作人格式无效,应为 citizen:<编号> 或 staff:<编号>"),
                          metadata={"description": "who the data was fetched for: `citizen:<id>` or `staff:<id>`"})


def person_filter() -> fields.String:
    """The `id_number` of a search body: matched through its keyed hash, never logged or echoed."""
    return fields.String(
        validate=[Length(min=1, max=32), FullMatch(PRINTABLE_PATTERN, error="不能包含控制字符")],
        metadata={"description": "a person's ID number, matched through its keyed hash (records hold no "
                                 "plaintext identity; the auditor-access log keeps only the hash)"},
    )


class DataAccessSearchSchema(DataAccessQuerySchema):
    """POST /audit/data-access/search: the GET filters and a person, in the body."""

    id_number = person_filter()


class ExportQuerySchema(TimeRangeSchema):
    format = fields.String(load_default="csv", validate=OneOf(EXPORT_FORMATS), metadata={
        "description": "csv (with a header row), jsonl (one JSON object per line), or bundle: an evidence "
                       "bundle (JSON) with each record's salt, hashed payload and inclusion proof in a checkpoint "
                       "signed for it, which `zsb-verify` checks offline"})
    consistency_from = WholeNumber(validate=Range(min=0, max=2**31 - 1), metadata={
        "description": "bundle only: also include the consistency proof from this older tree size (that of "
                       "a checkpoint the auditor kept) to the bundle's checkpoint"})

    @ma.validates_schema
    def consistency_only_in_bundles(self, data, **kwargs):
        if data.get("consistency_from") is not None and data.get("format") != "bundle":
            raise ma.ValidationError("只有 format=bundle 时才能要求一致性证明", "consistency_from")


class ChainRecordSchema(ma.Schema):
    """The fields every chained log record has: its place in the chain, its time and its hashes."""

    seq = fields.Integer(required=True)
    id = fields.String(required=True)
    recorded_at = fields.AwareDateTime(required=True)
    request_id = fields.String(required=True)
    prev_hash = fields.String(required=True)
    record_hash = fields.String(required=True)


class CursorPageSchema(ma.Schema):
    """A page of log records; subclasses set `items`."""

    next_cursor = fields.String(required=True, allow_none=True,
                                metadata={"description": "pass as `cursor` for the next page; null at the end"})


class DataAccessRecordSchema(ChainRecordSchema):
    """A data-access log record as stored, chain fields included."""

    connector_id = fields.String(required=True)
    bureau = fields.String(required=True)
    bureau_name = fields.String(required=True)
    citizen_pseudonym = fields.String(required=True, metadata={"description": "keyed hash of the ID number"})
    application_id = fields.String(required=True, allow_none=True)
    purpose = fields.String(required=True)
    actor = fields.String(required=True, metadata={"description": "`citizen:<id>` or `staff:<id>`"})
    elements_requested = fields.List(fields.String(), required=True)
    elements_returned = fields.List(fields.String(), required=True)
    outcome = fields.String(required=True, validate=OneOf(("ok", "not_found", "failed", "timeout")))
    latency_ms = fields.Integer(required=True)
    error = fields.String(required=True, allow_none=True)
    http_status = fields.Integer(required=True, allow_none=True)


class DataAccessPageSchema(CursorPageSchema):
    items = fields.List(fields.Nested(DataAccessRecordSchema), required=True)


class VerifyBodySchema(RequestSchema):
    log = fields.String(
        required=True, validate=OneOf(VERIFIABLE_LOGS),
        metadata={"description": "one chain, or `all` (every chain)"},
    )


class ChainResultSchema(ma.Schema):
    ok = fields.Boolean(required=True)
    checked = fields.Integer(required=True, metadata={"description": "records verified"})
    first_broken = fields.Dict(required=True, allow_none=True,
                               metadata={"description": "{log, seq, id, reason} of the first broken link"})
    head_hash = fields.String(required=True, allow_none=True,
                              metadata={"description": "hash of the last verified record (null for `all`)"})


class WitnessFindingSchema(ma.Schema):
    log = fields.String(required=True)
    checkpoint_size = fields.Integer(required=True, metadata={"description": "the witnessed checkpoint's size"})
    reason = fields.String(required=True)


class VerifyResultSchema(ChainResultSchema):
    logs = fields.Dict(keys=fields.String(), values=fields.Nested(ChainResultSchema), required=True)
    witness = fields.List(fields.Nested(WitnessFindingSchema), required=True, metadata={
        "description": "where a log no longer holds the latest checkpoint its witness published (rolled back "
                       "below it, or its history rewritten); empty when all is well"})
    verified_at = fields.AwareDateTime(required=True)
    access_logged = fields.Boolean(
        required=True,
        metadata={"description": "whether this verification is in the auditor-access log; false when that "
                                 "log cannot be written (its break is then in the answer itself)"},
    )


# ------------------------------------------------------------------------------------ the face-verification log


class FaceLogQuerySchema(LogQuerySchema):
    decision = fields.String(validate=OneOf(DECISIONS),
                             metadata={"description": "only `decision` records with this decision"})
    provider = fields.String(validate=FullMatch(PROVIDER_PATTERN, error="提供方名称无效"))
    matter_code = matter_code()
    event = fields.String(validate=OneOf(EVENTS))
    session_id = opaque_id("a face session id")


class FaceLogSearchSchema(FaceLogQuerySchema):
    """POST /audit/face-verifications/search: the GET filters and a person, in the body."""

    id_number = person_filter()


class FaceRecordSchema(ChainRecordSchema):
    """A face-verification log record as stored, chain fields included."""

    event = fields.String(required=True, validate=OneOf(EVENTS))
    session_id = fields.String(required=True, allow_none=True)
    citizen_pseudonym = fields.String(required=True, metadata={"description": "keyed hash of the ID number"})
    actor = fields.String(required=True, metadata={"description": "`citizen:<id>` of the caller"})
    purpose = fields.String(required=True, allow_none=True)
    matter_code = fields.String(required=True, allow_none=True)
    application_id = fields.String(required=True, allow_none=True)
    provider = fields.String(required=True)
    adapter_version = fields.String(required=True)
    provider_session_id = fields.String(required=True, allow_none=True)
    provider_request_id = fields.String(required=True, allow_none=True)
    provider_code = fields.String(required=True, allow_none=True)
    outcome = fields.String(required=True, allow_none=True)
    decision = fields.String(required=True, allow_none=True)
    reason = fields.String(required=True, allow_none=True)
    liveness = fields.Boolean(required=True, allow_none=True)
    similarity = fields.Float(required=True, allow_none=True)
    threshold = fields.Float(required=True, allow_none=True,
                             metadata={"description": "the similarity threshold the provider applied"})
    attempt = fields.Integer(required=True, allow_none=True)
    failures = fields.Integer(required=True, allow_none=True,
                              metadata={"description": "failures in the citizen's window after this decision"})
    failure_limit = fields.Integer(required=True, allow_none=True)
    verified_until = fields.AwareDateTime(required=True, allow_none=True)


class FacePageSchema(CursorPageSchema):
    items = fields.List(fields.Nested(FaceRecordSchema), required=True)


# ------------------------------------------------------------------------------ checkpoints and proofs


class Base64Bytes(fields.Field):
    """Bytes (a hash) as standard base64, as RFC 9162 tools and the signed checkpoints spell them."""

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else base64.b64encode(value).decode("ascii")


HASHES = fields.List(Base64Bytes(), required=True, metadata={"description": "the proof's hashes, base64"})
TREE_SIZE = Range(min=1, max=2**31 - 1)


class InclusionQuerySchema(ma.Schema):
    seq = WholeNumber(required=True, validate=TREE_SIZE, metadata={"description": "the record's seq"})
    size = WholeNumber(validate=TREE_SIZE, metadata={
        "description": "the tree size to prove inclusion in (a checkpoint's size); default: the latest "
                       "checkpoint's, a new one when the record is newer"})


class InclusionProofSchema(ma.Schema):
    leaf_index = fields.Integer(required=True, metadata={"description": "seq − 1"})
    tree_size = fields.Integer(required=True)
    leaf_hash = Base64Bytes(required=True, metadata={"description": "the record's leaf hash (RFC 9162), base64"})
    hashes = HASHES


class ConsistencyQuerySchema(ma.Schema):
    from_ = WholeNumber(required=True, data_key="from", attribute="from",
                        validate=Range(min=0, max=2**31 - 1), metadata={"description": "the older tree size"})
    to = WholeNumber(required=True, validate=Range(min=0, max=2**31 - 1),
                     metadata={"description": "the newer tree size (at most the log's)"})


class ConsistencyProofSchema(ma.Schema):
    from_ = fields.Integer(required=True, data_key="from", attribute="from_size")
    to = fields.Integer(required=True, attribute="to_size")
    hashes = HASHES


class PublicKeysSchema(ma.Schema):
    keys = fields.List(fields.String(), required=True, metadata={
        "description": "signed-note verifier keys `<name>+<hex key id>+<base64 key>` (Ed25519): the current "
                       "signing key first, then retired ones whose checkpoints still verify"})


# ------------------------------------------------------------------------------------ the auditor-access log

# What an auditor-access record says was done (app/audit/services.py, transparency.py, app/stats/services.py).
ACCESS_ACTIONS = ("query", "view", "export", "verify", "checkpoint", "proof", "stats")


class AuditorAccessQuerySchema(LogQuerySchema):
    """The filters of the auditor-access log (queried by the staff console): who did what to which log."""

    actor = fields.String(validate=FullMatch(ACTOR_PATTERN, error="操作人格式无效,应为 staff:<编号>"),
                          metadata={"description": "`staff:<id>` of the auditor"})
    action = fields.String(validate=OneOf(ACCESS_ACTIONS))
    log = fields.String(validate=OneOf(VERIFIABLE_LOGS), metadata={"description": "the log they looked at"})


class AuditorAccessSearchSchema(AuditorAccessQuerySchema):
    """The auditor-access filters and a person: whose ID number an auditor searched for (matched by its hash)."""

    id_number = person_filter()
