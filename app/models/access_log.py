"""The chained access logs: every connector call (data access) and every auditor query or export.

Both are hash chains (app/audit/chain.py): written only through `append`/`append_many`/`appending`, never
updated or deleted by the application. Neither holds a name or an ID number: the citizen appears as the keyed
pseudonym of their ID number (`PiiVault.pseudonym`, the same value as `citizens.id_number_hash`), and an
auditor's `id_number` filter is recorded as that pseudonym too.
"""

from __future__ import annotations

from sqlalchemy import JSON, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.audit import ChainColumns, ChainedRecord
from app.models.base import IdMixin


class DataAccessRecord(IdMixin, ChainColumns, ChainedRecord, db.Model):
    """One call to a connector: who asked which bureau for which elements about whom, why, and the outcome."""

    __tablename__ = "data_access_records"
    CHAIN = "data-access"
    HASHED_FIELDS = (
        "id",
        "connector_id",
        "bureau",
        "bureau_name",
        "citizen_pseudonym",
        "application_id",
        "purpose",
        "actor",
        "elements_requested",
        "elements_returned",
        "outcome",
        "latency_ms",
        "error",
        "http_status",
        "request_id",
    )

    connector_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    bureau: Mapped[str] = mapped_column(String(64), nullable=False)  # the bureau's code
    bureau_name: Mapped[str] = mapped_column(String(100), nullable=False)  # as shown to the citizen then
    citizen_pseudonym: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    # None for calls outside an application (the real-name check).
    application_id: Mapped[str | None] = mapped_column(String(32), index=True)
    purpose: Mapped[str] = mapped_column(Text, nullable=False)
    actor: Mapped[str] = mapped_column(String(64), nullable=False)  # `citizen:<id>` or `staff:<id>`
    elements_requested: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    elements_returned: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)  # ok, not_found, failed, timeout
    latency_ms: Mapped[int] = mapped_column(Integer, nullable=False)
    error: Mapped[str | None] = mapped_column(String(64))
    http_status: Mapped[int | None] = mapped_column(Integer)
    request_id: Mapped[str] = mapped_column(String(128), nullable=False)


class AuditorAccessRecord(IdMixin, ChainColumns, ChainedRecord, db.Model):
    """One auditor query, export or verification: who looked at which log with which filters."""

    __tablename__ = "auditor_access_records"
    CHAIN = "auditor-access"
    HASHED_FIELDS = ("id", "actor", "action", "log", "filters", "result_count", "request_id")

    actor: Mapped[str] = mapped_column(String(64), nullable=False, index=True)  # `staff:<id>`
    action: Mapped[str] = mapped_column(String(16), nullable=False)  # query, export, verify
    log: Mapped[str] = mapped_column(String(40), nullable=False)
    # The filters as given, except `id_number`, which is recorded as `id_number_pseudonym`.
    filters: Mapped[dict] = mapped_column(JSON, nullable=False)
    result_count: Mapped[int | None] = mapped_column(Integer)  # None for a streamed export
    request_id: Mapped[str] = mapped_column(String(128), nullable=False)
