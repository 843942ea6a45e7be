"""Operators' statistics: applications per matter and status, face pass rates, evaluations per department.

Every figure is counted over a period `[from, to)` of UTC times (both optional): applications by when they
were created (a draft counts under `draft`), evaluations and rectifications by when they were made. Counts
come from GROUP BY queries that read the same on SQLite and PostgreSQL; "overdue" is judged as of today in
Beijing time, whatever the period.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from app.applications.models import (
    GRADES,
    POOR_GRADES,
    RECTIFICATION_STATUSES,
    Application,
    ApplicationEvent,
    Evaluation,
    Rectification,
)
from app.applications.services import evaluations, lifecycle
from app.applications.workdays import work_calendar
from app.audit import services as audit
from app.catalogue.models import Department, Matter
from app.errors import ValidationFailed
from app.extensions import db
from app.face.models import FaceVerificationRecord
from app.modelbase import utcnow


def check_period(since: datetime | None, until: datetime | None) -> None:
    """422 when the period ends before it starts."""
    if since is not None and until is not None and since > until:
        raise ValidationFailed("起始时间晚于结束时间", errors={"query": {"from": ["起始时间晚于结束时间"]}})


def _in_period(column, since: datetime | None, until: datetime | None) -> list:
    conditions = []
    if since is not None:
        conditions.append(column >= since)
    if until is not None:
        conditions.append(column < until)
    return conditions


def _count_if(condition):
    return sa.func.sum(sa.case((condition, 1), else_=0))


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


# ------------------------------------------------------------------------------------------ applications


@dataclass
class _Figures:
    """The application figures of one matter, or of all of them."""

    total: int = 0
    by_status: dict[str, int] = field(default_factory=lambda: lifecycle.status_counts(()))
    submitted: int = 0
    zero_material: int = 0
    overdue_undecided: int = 0
    decided: int = 0
    decided_late: int = 0
    working_days: int = 0
    # 一次性通过率: decided without a supplement request (补正), the seed city's 95% target.
    decided_first_time: int = 0
    # 智能预审: submitted as eligible; refused at submission for conditions; rejected on a condition a
    # reviewer decided not met.
    prechecked_eligible: int = 0
    refused_for_conditions: int = 0
    rejected_for_conditions: int = 0
    target: float = 0.95

    def add_counts(self, status: str, total: int, submitted: int, zero_material: int, overdue: int) -> None:
        self.total += total
        self.by_status[status] += total
        self.submitted += submitted
        self.zero_material += zero_material
        self.overdue_undecided += overdue

    def add_decided(self, working_days: int, late: bool, first_time: bool, for_conditions: bool) -> None:
        self.decided += 1
        self.working_days += working_days
        self.decided_late += late
        self.decided_first_time += first_time
        self.rejected_for_conditions += for_conditions

    def view(self) -> dict:
        return {
            "total": self.total,
            "by_status": self.by_status,
            "submitted": self.submitted,
            "zero_material": self.zero_material,
            "zero_material_share": _share(self.zero_material, self.submitted),
            "decided": self.decided,
            "average_processing_working_days": round(self.working_days / self.decided, 2) if self.decided else None,
            "decided_late": self.decided_late,
            "overdue_undecided": self.overdue_undecided,
            "decided_first_time": self.decided_first_time,
            "first_time_pass_rate": (rate := _share(self.decided_first_time, self.decided)),
            "first_time_pass_target": self.target,
            "meets_target": None if rate is None else rate >= self.target,
            "prechecked_eligible": self.prechecked_eligible,
            "prechecked_eligible_share": _share(self.prechecked_eligible, self.submitted),
            "refused_for_conditions": self.refused_for_conditions,
            "rejected_for_conditions": self.rejected_for_conditions,
        }


def application_stats(*, since: datetime | None = None, until: datetime | None = None,
                      target: float = 0.95) -> dict:
    """Per matter, per department and overall: counts per status, zero-material share, processing time,
    overdue counts, and the pre-check's figures — the first-time pass rate (decided without a supplement
    request ÷ decided) against `target`, the share submitted as eligible, refusals and rejections for
    conditions."""
    check_period(since, until)
    calendar = work_calendar()
    as_of = calendar.today()
    period = _in_period(Application.created_at, since, until)
    submitted = Application.submitted_at.is_not(None)
    counts = db.session.execute(
        sa.select(Application.matter_code, Application.status, sa.func.count(Application.id), _count_if(submitted),
                  _count_if(sa.and_(submitted, Application.zero_material.is_(True))),
                  _count_if(sa.and_(Application.status.not_in(lifecycle.DECIDED),
                                    Application.promised_due_on < as_of)))
        .where(*period)
        .group_by(Application.matter_code, Application.status)
    ).all()
    # Processing time is counted in working days, which needs the holiday calendar SQL does not have: it is
    # computed here over the decided rows of the period (three small columns each; fine at a city's volumes —
    # a table of working-day ordinals would move it into SQL if that ever stops being so).
    supplemented = sa.exists().where(ApplicationEvent.application_id == Application.id,
                                     ApplicationEvent.kind == "supplement_requested")
    decided = db.session.execute(
        sa.select(Application.matter_code, Application.submitted_at, Application.decided_at,
                  Application.promised_due_on, supplemented, Application.status, Application.condition_decisions)
        .where(*period, Application.status.in_(lifecycle.COMPLETED), submitted, Application.decided_at.is_not(None))
    ).all()
    eligible = dict(db.session.execute(
        sa.select(Application.matter_code, sa.func.count(Application.id))
        .where(*period, submitted, Application.eligibility_result == "eligible")
        .group_by(Application.matter_code)).all())
    # Refusals are timeline events of drafts (nothing was submitted): counted by when they happened.
    refused = dict(db.session.execute(
        sa.select(Application.matter_code, sa.func.count(ApplicationEvent.id))
        .join(Application, Application.id == ApplicationEvent.application_id)
        .where(ApplicationEvent.kind == "conditions_refused", *_in_period(ApplicationEvent.at, since, until))
        .group_by(Application.matter_code)).all())
    per_matter: dict[str, _Figures] = {}
    totals = _Figures(target=target)
    for code, status, total, submitted_count, zero, overdue in counts:
        for figures in (per_matter.setdefault(code, _Figures(target=target)), totals):
            figures.add_counts(status, total, submitted_count or 0, zero or 0, overdue or 0)
    for code, submitted_at, decided_at, due_on, had_supplement, status, decisions in decided:
        days = calendar.working_days_between(submitted_at, decided_at)
        late = due_on is not None and calendar.local_date(decided_at) > due_on
        for_conditions = status == "rejected" and any(not d.get("met") for d in (decisions or {}).values())
        for figures in (per_matter.setdefault(code, _Figures(target=target)), totals):
            figures.add_decided(days, late, not had_supplement, for_conditions)
    for source, attribute in ((eligible, "prechecked_eligible"), (refused, "refused_for_conditions")):
        for code, count in source.items():
            for figures in (per_matter.setdefault(code, _Figures(target=target)), totals):
                setattr(figures, attribute, getattr(figures, attribute) + count)
    matters = {row.code: row for row in db.session.execute(
        sa.select(Matter.code, Matter.name, Matter.department_code, Matter.promised_time_limit_days)
        .where(Matter.code.in_(per_matter))
    )}
    items = []
    per_department: dict[str, _Figures] = {}
    for code in sorted(per_matter):
        matter = matters.get(code)
        items.append({
            "matter_code": code,
            "matter_name": matter.name if matter else code,
            "department_code": matter.department_code if matter else None,
            "promised_time_limit_days": matter.promised_time_limit_days if matter else None,
            **per_matter[code].view(),
        })
        if matter is not None:
            _merge(per_department.setdefault(matter.department_code, _Figures(target=target)), per_matter[code])
    names = dict(db.session.execute(sa.select(Department.code, Department.name)
                                    .where(Department.code.in_(per_department))).all())
    departments = [{"department_code": code, "department_name": names.get(code, code),
                    **per_department[code].view()} for code in sorted(per_department)]
    return {"from": since, "to": until, "as_of": as_of, "items": items, "departments": departments,
            "totals": totals.view()}


def _merge(into: _Figures, figures: _Figures) -> None:
    """Add one matter's figures to a department's."""
    for name in ("total", "submitted", "zero_material", "overdue_undecided", "decided", "decided_late",
                 "working_days", "decided_first_time", "prechecked_eligible", "refused_for_conditions",
                 "rejected_for_conditions"):
        setattr(into, name, getattr(into, name) + getattr(figures, name))
    for status, count in figures.by_status.items():
        into.by_status[status] += count


# -------------------------------------------------------------------------------------------------- face


def face_stats(filters: Mapping, *, actor: str, request_id: str) -> dict:
    """Face verification pass rates overall and per provider, from the auditors' per-provider-and-day figures.

    The period rules are theirs (default the 30 days before `to`, at most 366 days) and, as there, the query
    is written to the auditor-access log: pass rates are read from the face-verification log.
    """
    days = pass_rate_stats({key: filters[key] for key in ("from", "to") if filters.get(key)},
                           actor=actor, request_id=request_id)
    totals = _face_figures()
    providers: dict[str, dict] = {}
    for item in days["items"]:
        for figures in (totals, providers.setdefault(item["provider"], _face_figures())):
            figures["decisions"] += item["decisions"]
            figures["passed"] += item["passed"]
            figures["failed"] += item["failed"]
            for reason, count in item["failure_reasons"].items():
                figures["failure_reasons"][reason] = figures["failure_reasons"].get(reason, 0) + count
    for figures in (totals, *providers.values()):
        figures["pass_rate"] = _share(figures["passed"], figures["decisions"])
    return {
        "from": days["from"],
        "to": days["to"],
        **totals,
        "providers": [{"provider": name, **providers[name]} for name in sorted(providers)],
        "items": days["items"],
    }


def _face_figures() -> dict:
    return {"decisions": 0, "passed": 0, "failed": 0, "failure_reasons": {}}


# ------------------------------------------------------------------------------------------- evaluations


def evaluation_stats(*, since: datetime | None = None, until: datetime | None = None) -> dict:
    """Per department and overall: evaluations, average grade, grades, poor share, rectifications by status."""
    check_period(since, until)
    as_of = work_calendar().today()
    grades = db.session.execute(
        sa.select(Evaluation.department_code, Evaluation.grade, sa.func.count(Evaluation.id))
        .where(*_in_period(Evaluation.created_at, since, until))
        .group_by(Evaluation.department_code, Evaluation.grade)
    ).all()
    rectifications = db.session.execute(
        sa.select(Rectification.department_code, Rectification.status, sa.func.count(Rectification.id),
                  _count_if(evaluations.overdue_condition(as_of)))
        .where(*_in_period(Rectification.created_at, since, until))
        .group_by(Rectification.department_code, Rectification.status)
    ).all()
    per_department: dict[str, dict] = {}
    totals = _evaluation_figures()
    for code, grade, count in grades:
        for figures in (per_department.setdefault(code, _evaluation_figures()), totals):
            figures["grades"][str(grade)] = figures["grades"].get(str(grade), 0) + count
    for code, status, count, overdue in rectifications:
        for figures in (per_department.setdefault(code, _evaluation_figures()), totals):
            figures["rectifications"][status] = figures["rectifications"].get(status, 0) + count
            figures["rectifications"]["overdue"] += overdue or 0
    names = dict(db.session.execute(
        sa.select(Department.code, Department.name).where(Department.code.in_(per_department))
    ).all())
    items = [{"department_code": code, "department_name": names.get(code, code),
              **_evaluation_view(per_department[code])} for code in sorted(per_department)]
    return {"from": since, "to": until, "as_of": as_of, "items": items, "totals": _evaluation_view(totals)}


def _evaluation_figures() -> dict:
    return {"grades": {str(grade): 0 for grade in GRADES},
            "rectifications": {**dict.fromkeys(RECTIFICATION_STATUSES, 0), "overdue": 0}}


def _evaluation_view(figures: dict) -> dict:
    grades = figures["grades"]
    count = sum(grades.values())
    poor = sum(grades[str(grade)] for grade in POOR_GRADES)
    return {
        "evaluations": count,
        "average_grade": round(sum(int(g) * n for g, n in grades.items()) / count, 2) if count else None,
        "grades": grades,
        "poor": poor,
        "poor_share": _share(poor, count),
        "rectifications": figures["rectifications"],
    }


# ------------------------------------------------------------------------------- face verification pass rates


class china_date(FunctionElement):
    """The calendar date in China Standard Time (UTC+8 all year) of a UTC timestamp column."""

    type = sa.String()
    inherit_cache = True
    name = "china_date"


@compiles(china_date)
def _china_date_sqlite(element, compiler, **kw):
    return f"date({compiler.process(element.clauses, **kw)}, '+8 hours')"


@compiles(china_date, "postgresql")
def _china_date_postgresql(element, compiler, **kw):
    return f"to_char(timezone('Asia/Shanghai', {compiler.process(element.clauses, **kw)}), 'YYYY-MM-DD')"


MAX_STATS_DAYS = 366
DEFAULT_STATS_DAYS = 30


def pass_rate_stats(filters: Mapping, *, actor: str, request_id: str) -> dict:
    """Decisions, passes and failures (by reason) per provider and China calendar day; the query is logged."""
    to = filters.get("to") or utcnow()
    since = filters.get("from") or to - timedelta(days=DEFAULT_STATS_DAYS)
    if since > to:
        raise ValidationFailed("起始时间晚于结束时间", errors={"query": {"from": ["起始时间晚于结束时间"]}})
    if to - since > timedelta(days=MAX_STATS_DAYS):
        raise ValidationFailed(f"统计区间不能超过 {MAX_STATS_DAYS} 天",
                               errors={"query": {"from": [f"统计区间不能超过 {MAX_STATS_DAYS} 天"]}})
    model = FaceVerificationRecord
    day = china_date(model.recorded_at)
    conditions = [model.event == "decision", model.recorded_at >= since, model.recorded_at < to]
    if filters.get("provider"):
        conditions.append(model.provider == filters["provider"])
    rows = db.session.execute(
        sa.select(day.label("day"), model.provider, model.decision, model.reason, sa.func.count())
        .where(*conditions)
        .group_by(day, model.provider, model.decision, model.reason)
    ).all()
    groups: dict[tuple[str, str], dict] = {}
    for row_day, provider, decision, reason, count in rows:
        item = groups.setdefault((str(row_day)[:10], provider), {
            "day": str(row_day)[:10], "provider": provider, "decisions": 0, "passed": 0, "failed": 0,
            "failure_reasons": {},
        })
        item["decisions"] += count
        if decision == "pass":
            item["passed"] += count
        else:
            item["failed"] += count
            item["failure_reasons"][reason or "unknown"] = item["failure_reasons"].get(reason or "unknown", 0) + count
    items = [groups[key] for key in sorted(groups)]
    for item in items:
        item["pass_rate"] = round(item["passed"] / item["decisions"], 4) if item["decisions"] else None
    audit.record_access(actor, "stats", "face-verifications", {**filters, "from": since, "to": to}, len(items),
                        request_id)
    return {"from": since, "to": to, "items": items}
