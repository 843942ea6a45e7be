"""Applications (申请), their timeline and materials, and the records around them.

An application goes draft → submitted → accepted → (supplement_requested ⇄ resubmitted) → approved | rejected
→ delivered, or is withdrawn by the citizen before acceptance (app/applications/services/lifecycle.py holds the rules).
Around it: consent receipts for the prefill, the materials the citizen provided (uploads, written promises,
deferrals), idempotency records of submissions, recorded false promises, agents' authorisations (帮办代办),
一件事 bundle applications, evaluations (好差评) and the rectifications poor grades open.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.accounts.models import Citizen
from app.applications.workdays import work_calendar
from app.catalogue.models import Matter
from app.extensions import db
from app.modelbase import IdMixin, TimestampMixin, UTCDateTime, utcnow

APPLICATION_STATUSES = (
    "draft",
    "submitted",
    "accepted",
    "supplement_requested",
    "resubmitted",
    "approved",
    "rejected",
    "delivered",
    "withdrawn",
)
# Decided: no further review action (withdrawn included).
DECIDED_STATUSES = frozenset({"approved", "rejected", "delivered", "withdrawn"})
# What the citizen reads for each status: on the timeline, in lists and in WeChat messages (whose `phrase`
# type allows at most 5 Chinese characters).
STATUS_LABELS: dict[str, str] = {
    "draft": "草稿",
    "submitted": "已提交",
    "accepted": "已受理",
    "supplement_requested": "待补正",
    "resubmitted": "已补正",
    "approved": "已办结",
    "rejected": "未通过",
    "delivered": "已送达",
    "withdrawn": "已撤回",
}

# A form's shape (checked by the drafting service, stated in the OpenAPI document): field names are lowercase
# dotted words (element names or the matter's own fields); values are text, a number, a boolean, null, or a
# list of those.
FORM_FIELD_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$"
MAX_FORM_FIELD_NAME = 100
MAX_FORM_TEXT = 2000
MAX_FORM_LIST = 100


class Application(IdMixin, TimestampMixin, db.Model):
    """A citizen's application for one matter, with the prefilled fields and their provenance."""

    __tablename__ = "applications"
    __table_args__ = (
        Index("ix_applications_citizen_id_created_at", "citizen_id", "created_at"),
        # The reviewers' inbox: one department's applications in one status, oldest first.
        Index("ix_applications_department_code_status_submitted_at", "department_code", "status", "submitted_at"),
    )

    citizen_id: Mapped[str] = mapped_column(ForeignKey("citizens.id"), nullable=False)
    # By code (and the version applied for): matters are replaced, never deleted, and keep their history.
    matter_code: Mapped[str] = mapped_column(String(64), nullable=False)
    matter_version: Mapped[int] = mapped_column(Integer, nullable=False)
    # The department that decides it (the matter's, copied so a reviewer's inbox needs no join).
    department_code: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32), nullable=False, default="draft")
    # Bumped by every status change: a transition is `UPDATE … WHERE status = :from AND revision = :seen`,
    # so of two concurrent transitions only one can win (app/applications/services/lifecycle.py).
    revision: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    # Who created it: `citizen:<id>`, or `staff:<id>` of an agent applying on the citizen's behalf.
    acting_user: Mapped[str] = mapped_column(String(64), nullable=False)
    agent_id: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"))
    bundle_application_id: Mapped[str | None] = mapped_column(ForeignKey("bundle_applications.id"), index=True)
    # Fields filled in by the applicant (PUT …/form); personal data, so encrypted like the prefill values.
    form: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    form_values_encrypted: Mapped[str | None] = mapped_column(Text)
    # The last prefill, per element: {status, locked, source, error}; the values themselves are personal data
    # and are kept encrypted in `prefill_values_encrypted` (a JSON object element → value).
    prefill: Mapped[dict | None] = mapped_column(JSON)
    prefill_values_encrypted: Mapped[str | None] = mapped_column(Text)
    prefilled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Frozen at submission: provenance and material statuses in clear, every value encrypted, so later
    # registry changes or re-prefills never alter what was submitted.
    submission: Mapped[dict | None] = mapped_column(JSON)
    submission_values_encrypted: Mapped[str | None] = mapped_column(Text)
    zero_material: Mapped[bool | None] = mapped_column(Boolean)
    # The pre-check (智能预审) frozen at submission: eligible, unknown (conditions left to the reviewer) — never
    # not_eligible, which cannot be submitted. In clear for the statistics; the checks themselves are in the
    # submission snapshot (values encrypted with the others).
    eligibility_result: Mapped[str | None] = mapped_column(String(16))
    # A reviewer's decisions on conditions the data could not decide: {"<index>": {met, by, at}}; their notes
    # may name people, so they are encrypted (a JSON object index → note).
    condition_decisions: Mapped[dict | None] = mapped_column(JSON)
    condition_notes_encrypted: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Deadlines in working days from submission (app/applications/workdays.py): the promised limit and the legal one.
    promised_due_on: Mapped[date | None] = mapped_column(Date)
    legal_due_on: Mapped[date | None] = mapped_column(Date)
    # The open supplement request (补正): everything to fix, listed at once.
    supplement_items: Mapped[list | None] = mapped_column(JSON)
    # The decision: {name, number?, note?} of an approval, or the reason of a rejection.
    result: Mapped[dict | None] = mapped_column(JSON)
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    # How the result reached the citizen: {method, certificate_number?, carrier?, tracking_number?}; the
    # mailing address is personal data and kept encrypted.
    delivery: Mapped[dict | None] = mapped_column(JSON)
    delivery_address_encrypted: Mapped[str | None] = mapped_column(Text)

    events: Mapped[list[ApplicationEvent]] = relationship(
        order_by="ApplicationEvent.at", cascade="all, delete-orphan", back_populates="application"
    )
    # For what lists show about an application (load them with the list: joinedload).
    matter: Mapped[Matter | None] = relationship(
        primaryjoin="foreign(Application.matter_code) == Matter.code", viewonly=True)
    citizen: Mapped[Citizen] = relationship(viewonly=True)

    @property
    def conditions_to_decide(self) -> list[int]:
        """Indices of conditions submitted as `unknown` for the reviewer to decide, not yet decided."""
        checks = ((self.submission or {}).get("eligibility") or {}).get("conditions") or []
        decided = self.condition_decisions or {}
        return [c["index"] for c in checks if c.get("result") == "unknown" and str(c["index"]) not in decided]

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)

    @property
    def overdue(self) -> bool:
        """Past its promised deadline and not yet decided."""
        if self.promised_due_on is None or self.status in DECIDED_STATUSES:
            return False
        return work_calendar().today() > self.promised_due_on

    @property
    def matter_name(self) -> str:
        return self.matter.name if self.matter is not None else self.matter_code

    @property
    def applicant_id_number_masked(self) -> str | None:
        return self.citizen.id_number_masked

    @property
    def acting_user_kind(self) -> str:
        """`citizen` or `agent`: who created it (the agent's staff id stays out of the citizen's view)."""
        return "citizen" if self.acting_user.partition(":")[0] == "citizen" else "agent"


class ApplicationEvent(IdMixin, db.Model):
    """One step of an application's timeline (created, consent granted, prefilled, submitted, …)."""

    __tablename__ = "application_events"

    application_id: Mapped[str] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), nullable=False, index=True
    )
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    actor: Mapped[str] = mapped_column(String(64), nullable=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    # Non-personal details only (counts, statuses, connector ids): the timeline is shown and kept long.
    detail: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)

    application: Mapped[Application] = relationship(back_populates="events")


class ApplicationMaterial(IdMixin, db.Model):
    """How the applicant provided one material: an upload, a signed written promise, or a deferral (容缺)."""

    __tablename__ = "application_materials"
    __table_args__ = (UniqueConstraint("application_id", "material_code"),)

    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"), nullable=False)
    material_code: Mapped[str] = mapped_column(String(64), nullable=False)
    # upload, promise or deferred
    via: Mapped[str] = mapped_column(String(16), nullable=False)
    # An upload: where the storage keeps it (content-addressed), its hash, size and sniffed type.
    storage_key: Mapped[str | None] = mapped_column(String(128))
    sha256: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(Integer)
    content_type: Mapped[str | None] = mapped_column(String(64))
    # A promise: the exact text signed (it is the catalogue's, not personal) and when.
    promise_text: Mapped[str | None] = mapped_column(Text)
    # A deferral: the date by which the material must follow.
    due_on: Mapped[date | None] = mapped_column(Date)
    acting_user: Mapped[str] = mapped_column(String(64), nullable=False)
    provided_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class IdempotencyRecord(IdMixin, db.Model):
    """The answer to a request made with an `Idempotency-Key`, replayed when the same key comes again."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("principal", "key"),)

    # Keys are the client's and only unique per caller.
    principal: Mapped[str] = mapped_column(String(64), nullable=False)
    key: Mapped[str] = mapped_column(String(128), nullable=False)
    # What the key was used for (`submit:<application id>`): the same key for anything else is refused.
    scope: Mapped[str] = mapped_column(String(128), nullable=False)
    status_code: Mapped[int] = mapped_column(Integer, nullable=False)
    response: Mapped[dict] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


