"""Auditors' access to the chained logs: queries, streamed exports, chain verification — each itself logged.

Logs plug in by name. `CHAINED_LOGS` maps a log's API name to its model for verification; `LOG_VIEWS` maps
the logs that can be queried and exported to how (columns and filters): `data-access` and
`face-verifications` (the face-verification log, app/face/models.py) are in both, `auditor-access` too, though
only the staff console queries it (the API exports neither it nor has a query endpoint for it). A name in
neither answers 422 `log_unavailable` (verify) or 404 (export).

Every auditor query, export and verification appends an `AuditorAccessRecord` to the `auditor-access`
chain: who, what, which filters — an `id_number` filter only as its keyed pseudonym. A query's record is
written before its results are returned, an export's before its first byte: if the record cannot be
written, the auditor gets an error and no data.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import current_app

from app.audit.cursor import decode_cursor, encode_cursor
from app.connectors.models import AuditorAccessRecord, DataAccessRecord
from app.errors import NotFound, ValidationFailed
from app.extensions import db
from app.face.models import FaceVerificationRecord
from app.ledger import chain, checkpoints
from app.ledger.verify import VerifyResult, verify_chain
from app.pii import vault
from app.web.paging import CursorPage

# Log name (as in the API) → model, for verification.
CHAINED_LOGS: dict[str, type] = {
    "data-access": DataAccessRecord,
    "face-verifications": FaceVerificationRecord,
    "auditor-access": AuditorAccessRecord,
}
KNOWN_LOGS = ("data-access", "face-verifications", "auditor-access")


class LogUnavailable(ValidationFailed):
    error, message = "log_unavailable", "该日志尚未启用"


@dataclass(frozen=True)
class LogView:
    """How auditors query and export one log: its model, its columns, and its filters as SQL conditions."""

    model: type
    columns: tuple[str, ...]
    conditions: Callable[[Mapping], list]


def _common_conditions(model: type, filters: Mapping) -> list:
    """The filters every log has: time range (`from`, `to`) and citizen (`id_number`, as its pseudonym)."""
    conditions = _time_conditions(model, filters)
    if filters.get("id_number"):
        conditions.append(model.citizen_pseudonym == pseudonym_of(filters["id_number"]))
    return conditions


def _time_conditions(model: type, filters: Mapping) -> list:
    conditions = []
    if filters.get("from") is not None:
        conditions.append(model.recorded_at >= filters["from"])
    if filters.get("to") is not None:
        conditions.append(model.recorded_at < filters["to"])
    return conditions


def _data_access_conditions(filters: Mapping) -> list:
    model = DataAccessRecord
    conditions = _common_conditions(model, filters)
    if filters.get("connector"):
        conditions.append(model.connector_id == filters["connector"])
    if filters.get("application_id"):
        conditions.append(model.application_id == filters["application_id"])
    if filters.get("actor"):
        conditions.append(model.actor == filters["actor"])
    return conditions


def _face_conditions(filters: Mapping) -> list:
    model = FaceVerificationRecord
    conditions = _common_conditions(model, filters)
    for name in ("decision", "provider", "matter_code", "event", "session_id"):
        if filters.get(name):
            conditions.append(getattr(model, name) == filters[name])
    return conditions


def _auditor_access_conditions(filters: Mapping) -> list:
    model = AuditorAccessRecord
    conditions = _time_conditions(model, filters)
    for name in ("actor", "action", "log"):
        if filters.get(name):
            conditions.append(getattr(model, name) == filters[name])
    if filters.get("id_number"):
        # Which auditor looked for this person: their searches keep the ID number only as its pseudonym.
        conditions.append(model.filters["id_number_pseudonym"].as_string() == pseudonym_of(filters["id_number"]))
    return conditions


LOG_VIEWS: dict[str, LogView] = {
    "data-access": LogView(
        model=DataAccessRecord,
        columns=(
            "seq", "id", "recorded_at", "connector_id", "bureau", "bureau_name", "citizen_pseudonym",
            "application_id", "purpose", "actor", "elements_requested", "elements_returned", "outcome",
            "latency_ms", "error", "http_status", "request_id", "prev_hash", "record_hash",
        ),
        conditions=_data_access_conditions,
    ),
    "face-verifications": LogView(
        model=FaceVerificationRecord,
        columns=(
            "seq", "id", "recorded_at", "event", "session_id", "citizen_pseudonym", "actor", "purpose",
            "matter_code", "application_id", "provider", "adapter_version", "provider_session_id",
            "provider_request_id", "provider_code", "outcome", "decision", "reason", "liveness", "similarity",
            "threshold", "attempt", "failures", "failure_limit", "verified_until", "request_id", "prev_hash",
            "record_hash",
        ),
        conditions=_face_conditions,
    ),
    "auditor-access": LogView(
        model=AuditorAccessRecord,
        columns=("seq", "id", "recorded_at", "actor", "action", "log", "filters", "result_count", "request_id",
                 "prev_hash", "record_hash"),
        conditions=_auditor_access_conditions,
    ),
}


def pseudonym_of(raw_id_number: str) -> str:
    """The keyed pseudonym records hold for an ID number (trimmed, a final x upper-cased, as when bound)."""
    number = raw_id_number.strip()
    if number.endswith("x"):
        number = number[:-1] + "X"
    return vault().pseudonym(number)


def logged_filters(filters: Mapping) -> dict:
    """The filters as the auditor-access log keeps them: JSON values, the ID number only as its pseudonym."""
    kept = {}
    for name, value in filters.items():
        if value is None:
            continue
        if name == "id_number":
            kept["id_number_pseudonym"] = pseudonym_of(value)
        elif isinstance(value, datetime):
            kept[name] = chain.iso_utc(value)
        else:
            kept[name] = value
    return kept


def record_access(actor: str, action: str, log: str, filters: Mapping, result_count: int | None,
                  request_id: str) -> AuditorAccessRecord:
    """Append one auditor-access record (committed before this returns)."""
    return chain.append(
        AuditorAccessRecord,
        actor=actor,
        action=action,
        log=log,
        filters=logged_filters(filters),
        result_count=result_count,
        request_id=request_id,
    )


# ------------------------------------------------------------------------------------------------ query


def query(log: str, filters: Mapping, *, actor: str, request_id: str) -> CursorPage:
    """One page of a log in seq order; the query is logged before it is answered."""
    view = LOG_VIEWS[log]
    limit = filters.get("limit") or 50
    conditions = view.conditions(filters)
    if filters.get("cursor"):
        conditions.append(view.model.seq > decode_cursor(filters["cursor"]))
    rows = db.session.scalars(
        sa.select(view.model).where(*conditions).order_by(view.model.seq).limit(limit + 1)
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    record_access(actor, "query", log, filters, len(rows), request_id)
    return CursorPage(rows, encode_cursor(rows[-1].seq) if more else None)


def record(log: str, seq: int, *, actor: str, request_id: str, reason: str | None = None):
    """One record of a log, by its seq (404 when there is none); the view is logged before it is answered."""
    view = LOG_VIEWS.get(log)
    if view is None:
        raise NotFound("该日志不存在或尚未启用")
    row = db.session.scalar(sa.select(view.model).where(view.model.seq == seq))
    if row is None:
        raise NotFound("该记录不存在")
    record_access(actor, "view", log, {"seq": seq, "reason": reason}, 1, request_id)
    return row


# ------------------------------------------------------------------------------------------------ export

CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def export(log: str, fmt: str, filters: Mapping, *, actor: str, request_id: str) -> Iterator[str]:
    """The export of a log as CSV or JSON Lines, produced batch by batch; logged before the first byte."""
    view = LOG_VIEWS.get(log)
    if view is None:
        raise NotFound("该日志不存在或尚未启用")
    record_access(actor, "export", log, {**filters, "format": fmt}, None, request_id)
    batch_size = int(current_app.config["AUDIT_EXPORT_BATCH_SIZE"])
    conditions = view.conditions(filters)
    return _export_lines(view, fmt, conditions, batch_size)


def _export_lines(view: LogView, fmt: str, conditions: list, batch_size: int) -> Iterator[str]:
    if fmt == "csv":
        yield _csv_line(view.columns)
    last_seq = 0
    while True:
        rows = db.session.scalars(
            sa.select(view.model)
            .where(*conditions, view.model.seq > last_seq)
            .order_by(view.model.seq)
            .limit(batch_size)
        ).all()
        if not rows:
            return
        chunk = []
        for row in rows:
            values = {column: _plain(getattr(row, column)) for column in view.columns}
            if fmt == "csv":
                chunk.append(_csv_line([_csv_cell(values[column]) for column in view.columns]))
            else:
                chunk.append(json.dumps(values, ensure_ascii=False, separators=(",", ":")) + "\n")
        last_seq = rows[-1].seq
        db.session.expunge_all()  # memory stays flat however long the export
        yield "".join(chunk)


def _plain(value):
    if isinstance(value, datetime):
        return chain.iso_utc(value)
    return value


def _csv_cell(value) -> str:
    """One CSV cell: lists joined by `;`, and any text a spreadsheet would run as a formula defused."""
    if value is None:
        return ""
    text = ";".join(str(item) for item in value) if isinstance(value, list) else str(value)
    # Spreadsheets run a cell starting like a formula; auditors open these files in one (CSV injection). The
    # joined text is what the cell starts with, so a list's first item is guarded too.
    return "'" + text if text.startswith(CSV_FORMULA_START) else text


def _csv_line(cells) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------------ verify


def witness_findings() -> list[checkpoints.WitnessFinding]:
    """For each log, what its witness shows that the database no longer does (nothing when all is well)."""
    found = (checkpoints.check_against_witness(model.CHAIN) for model in CHAINED_LOGS.values())
    return [finding for finding in found if finding is not None]


@dataclass
class Verification:
    """What POST /audit/verify answers: each chain's result, the first break of all, and the witness's word."""

    ok: bool
    checked: int
    first_broken: dict | None
    head_hash: str | None  # one chain's head; `all` spans several, whose heads are under `logs`
    logs: dict[str, VerifyResult]
    witness: list[dict]
    verified_at: datetime
    access_logged: bool = False


def verify(log: str, *, actor: str, request_id: str, incremental: bool = False,
           reason: str | None = None) -> Verification:
    """Verify one chain or all (`all`) — its hash chain, its Merkle tree and checkpoints, and that it still holds
    the checkpoint its witness published — and report the first break; logged afterwards. `incremental`: from
    each chain's newest checkpoint that holds (app/ledger/verify.py says what that leaves unchecked)."""
    if log == "all":
        names = list(CHAINED_LOGS)
    elif log in CHAINED_LOGS:
        names = [log]
    else:
        raise LogUnavailable(f"日志“{log}”尚未启用,无法校验", errors={"json": {"log": ["log_unavailable"]}})
    results = {name: verify_chain(CHAINED_LOGS[name], since_checkpoint=incremental) for name in names}
    chains = {CHAINED_LOGS[name].CHAIN: name for name in names}
    witness = [finding.as_dict() for finding in witness_findings() if finding.chain in chains]
    broken = next(((name, result) for name, result in results.items() if not result.ok), None)
    first_broken = {"log": broken[0], **broken[1].first_broken} if broken else None
    if first_broken is None and witness:
        finding = witness[0]
        first_broken = {"log": finding["log"], "seq": finding["checkpoint_size"], "id": None,
                        "reason": finding["reason"]}
    answer = Verification(
        ok=first_broken is None,
        checked=sum(result.checked for result in results.values()),
        first_broken=first_broken,
        head_hash=results[names[0]].head_hash if len(names) == 1 else None,
        logs=results,
        witness=witness,
        verified_at=datetime.now(UTC),
    )
    try:
        # The console asks each verification's reason; it is logged with it (the API's carry none).
        record_access(actor, "verify", log, {"reason": reason}, answer.checked, request_id)
        answer.access_logged = True
    except chain.ChainUnavailable:
        # The one auditor call that must answer when the log cannot be written: it is how the break is found.
        answer.access_logged = False
    return answer
