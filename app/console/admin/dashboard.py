"""The statistics dashboard: applications per matter and status, the zero-upload share, processing time against
the promised limit, overdue counts, face pass rates, evaluations — over a date range.

The figures are the stats services of the API's `GET /api/v1/stats/applications`, `/face` and `/evaluations`,
called with the same period (loaded by their `StatsQuerySchema`) and, for the face figures, the same actor:
the face query is written to the auditor-access log as the API's is. Each chart (`charts.bar_chart`, SVG
drawn on the server) has its figures in a table beside it, readable without colour or script.
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app, render_template, request

from app.console import admin_forms as forms
from app.console.admin.labels import LABELS
from app.console.charts import Series, bar_chart
from app.console.forms import BEIJING, FormInvalid
from app.console.views import actor, bp, role
from app.errors import ValidationFailed
from app.stats import services as stats
from app.web.requestid import request_id


def _percent(share: float | None) -> float | None:
    return None if share is None else round(share * 100, 1)


def charts(applications: dict, face: dict, evaluations: dict) -> dict:
    """The dashboard's charts, from the three services' answers."""
    items = applications["items"]
    names = [item["matter_name"] for item in items]
    statuses = [label for _, label in LABELS["application_statuses"]]
    by_status = applications["totals"]["by_status"]
    grades = sorted(LABELS["grades"], reverse=True)
    providers = face["providers"]
    return {
        "by_matter": bar_chart("chart-applications", "各事项办件量", names, [
            Series("办件", [item["total"] for item in items]),
            Series("已提交", [item["submitted"] for item in items]),
            Series("已办结", [item["decided"] for item in items]),
        ]),
        "by_status": bar_chart("chart-statuses", "各状态办件数(全部事项)", statuses,
                               [Series("办件", [by_status.get(status, 0)
                                              for status, _ in LABELS["application_statuses"]])]),
        "zero_material": bar_chart("chart-zero-material", "零材料提交占比(已提交办件中无需上传的)", names,
                                   [Series("零材料占比", [_percent(item["zero_material_share"]) for item in items])],
                                   unit="%"),
        "processing": bar_chart("chart-processing", "平均办理用时与承诺时限(工作日)", names, [
            Series("平均办理", [item["average_processing_working_days"] for item in items]),
            Series("承诺时限", [item["promised_time_limit_days"] for item in items]),
        ], unit=" 日"),
        "overdue": bar_chart("chart-overdue", "超期办件", names, [
            Series("超期办结", [item["decided_late"] for item in items]),
            Series("超期未办结", [item["overdue_undecided"] for item in items]),
        ]),
        "face": bar_chart("chart-face", "刷脸核验通过率", ["全部", *[one["provider"] for one in providers]],
                          [Series("通过率", [_percent(face["pass_rate"]),
                                          *[_percent(one["pass_rate"]) for one in providers]])], unit="%"),
        "grades": bar_chart("chart-grades", "好差评各等级数量", [LABELS["grades"][grade] for grade in grades],
                            [Series("评价", [evaluations["totals"]["grades"][str(grade)] for grade in grades])]),
    }


@bp.get("/admin/stats")
@role("admin")
def admin_dashboard():
    """The figures of a date range (Beijing time, both days included; default the last 30 days)."""
    values = forms.period_values(request.args, datetime.now(BEIJING).date())
    context: dict = {"errors": {}, "applications": None}
    try:
        period = forms.period(values)
        since, until = period.get("from"), period.get("to")
        applications = stats.application_stats(since=since, until=until,
                                               target=current_app.config["FIRST_TIME_PASS_TARGET"])
        evaluations = stats.evaluation_stats(since=since, until=until)
        face = stats.face_stats(period, actor=actor(), request_id=request_id())
    except FormInvalid as invalid:
        context["errors"] = invalid.errors
    except ValidationFailed as refused:  # ends before it starts, or longer than the face figures allow
        context["errors"] = forms.period_errors(refused)
    else:
        context.update(applications=applications, evaluations=evaluations, face=face,
                       charts=charts(applications, face, evaluations))
    status = 422 if context["errors"] else 200
    return render_template("console/admin/dashboard.html", title="统计", values=values, **context, **LABELS), status
