"""Working-day deadlines: weekends, the built-in 2026 holidays, 调休, year ends, Beijing time, configuration."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from flask import Flask

from app import config as config_module
from app.applications.workdays import (
    DATA_FILE,
    WorkCalendar,
    builtin_calendar,
    calendar_from_config,
    init_app,
    work_calendar,
)
from app.config import ConfigError

D = date.fromisoformat


@pytest.fixture(scope="module")
def cal() -> WorkCalendar:
    """The calendar of an app configured with nothing but the defaults."""
    return calendar_from_config(config_module.load("testing", {}))


def test_weekends_are_skipped(cal):
    friday = D("2026-11-20")
    assert cal.is_working_day(friday)
    assert not cal.is_working_day(D("2026-11-21"))
    assert not cal.is_working_day(D("2026-11-22"))
    assert cal.add_working_days(friday, 1) == D("2026-11-23")
    assert cal.add_working_days(friday, 5) == D("2026-11-27")


def test_counting_starts_the_day_after_submission_whatever_that_day_is(cal):
    # Submitted on Saturday or on Monday: either way Monday is not counted when submitted that Monday, and is
    # day 1 when submitted on the weekend before.
    assert cal.add_working_days(D("2026-11-21"), 1) == D("2026-11-23")
    assert cal.add_working_days(D("2026-11-23"), 1) == D("2026-11-24")
    # 即办件: zero days is the day of submission itself, even a day off.
    assert cal.add_working_days(D("2026-10-03"), 0) == D("2026-10-03")
    with pytest.raises(ValueError):
        cal.add_working_days(D("2026-11-23"), -1)


def test_national_day_week_is_skipped_and_its_saturday_counts(cal):
    # 2026 国庆: 1-7 October off; Sunday 20 September and Saturday 10 October are working days.
    assert not any(cal.is_working_day(D("2026-10-01") + timedelta(days=n)) for n in range(7))
    assert cal.is_working_day(D("2026-09-20"))
    assert cal.is_working_day(D("2026-10-10"))
    assert cal.add_working_days(D("2026-09-30"), 1) == D("2026-10-08")
    assert cal.add_working_days(D("2026-09-30"), 3) == D("2026-10-10")  # Thursday, Friday, the 调休 Saturday
    assert cal.add_working_days(D("2026-09-19"), 1) == D("2026-09-20")  # submitted Saturday: Sunday counts


def test_spring_festival_with_both_adjusted_saturdays(cal):
    # 2026 春节: 15-23 February off; Saturdays 14 and 28 February worked.
    assert cal.add_working_days(D("2026-02-13"), 1) == D("2026-02-14")
    assert cal.add_working_days(D("2026-02-13"), 2) == D("2026-02-24")
    assert cal.add_working_days(D("2026-02-27"), 1) == D("2026-02-28")
    # A promised 20-working-day limit over the festival lasts well over a month.
    assert cal.add_working_days(D("2026-02-09"), 20) == D("2026-03-13")


def test_crossing_year_end(cal):
    # Into 2026: New Year's 1-3 January off, Sunday 4 January worked.
    assert cal.add_working_days(D("2025-12-31"), 1) == D("2026-01-04")
    # Into 2027: 1 January (a Friday) is a statutory holiday even before the 2027 notice is published.
    assert cal.add_working_days(D("2026-12-30"), 1) == D("2026-12-31")
    assert cal.add_working_days(D("2026-12-30"), 2) == D("2027-01-04")
    assert cal.working_days_between(D("2026-12-30"), D("2027-01-05")) == 3


def test_the_day_is_decided_in_beijing_time(cal):
    # 17:00 UTC on Thursday 26 November is 01:00 on Friday 27 November in Shanghai.
    submitted = datetime(2026, 11, 26, 17, 0, tzinfo=UTC)
    assert cal.local_date(submitted) == D("2026-11-27")
    assert cal.add_working_days(submitted, 1) == D("2026-11-30")
    # A minute earlier it is still Thursday there: the deadline is Friday.
    assert cal.add_working_days(submitted - timedelta(hours=1, minutes=1), 1) == D("2026-11-27")
    # The database hands back UTC; a naive datetime is read as UTC too.
    assert cal.local_date(datetime(2026, 11, 26, 17, 0)) == D("2026-11-27")
    # 16:30 UTC on Friday 25 September is 00:30 on Saturday 26 September, inside the 中秋 holiday.
    assert not cal.is_working_day(datetime(2026, 9, 24, 16, 30, tzinfo=UTC))


def test_deadline_ends_at_beijing_midnight(cal):
    deadline = cal.add_working_days(datetime(2026, 9, 29, 2, 0, tzinfo=UTC), 4)
    assert deadline == D("2026-10-10")
    end = cal.deadline_end(deadline)
    assert end == datetime(2026, 10, 10, 16, 0, tzinfo=UTC)
    assert not cal.is_overdue(deadline, end - timedelta(seconds=1))
    assert cal.is_overdue(deadline, end)


def test_working_days_between_counts_what_add_working_days_adds(cal):
    start = D("2025-12-01")
    days = [start + timedelta(days=n) for n in range(800)]
    for first in days[::37]:
        counted = 0
        for day in days:
            if day > first and cal.is_working_day(day):
                counted += 1
            assert cal.working_days_between(first, day) == (counted if day > first else 0)
    for n in (0, 1, 5, 15, 20, 60):
        assert cal.working_days_between(D("2026-09-18"), cal.add_working_days(D("2026-09-18"), n)) == n
    # Time of day does not matter, only the local dates.
    assert cal.working_days_between(
        datetime(2026, 11, 26, 17, 0, tzinfo=UTC), datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
    ) == 1


def test_builtin_calendar_matches_the_2026_notice():
    builtin = builtin_calendar()
    holidays_2026 = sorted(d for d in builtin.holidays if d.year == 2026)
    assert len(holidays_2026) == 3 + 9 + 3 + 5 + 3 + 3 + 7
    assert sorted(d for d in builtin.adjusted_workdays if d.year == 2026) == [
        D("2026-01-04"), D("2026-02-14"), D("2026-02-28"), D("2026-05-09"), D("2026-09-20"), D("2026-10-10")
    ]
    assert all(d.weekday() >= 5 for d in builtin.adjusted_workdays)
    assert builtin.complete_years == {2026}
    note = json.loads(DATA_FILE.read_text(encoding="utf-8"))["note"]
    assert "HOLIDAYS" in note and "ADJUSTED_WORKDAYS" in note


def test_configured_dates_extend_the_builtin_calendar():
    cal = calendar_from_config(config_module.load("testing", {
        # A hypothetical 2027 notice, loaded by the operator in December 2026.
        "HOLIDAYS": " 2027-02-05..2027-02-11, 2027-04-05 ",
        "ADJUSTED_WORKDAYS": "2027-02-20",
    }))
    assert not cal.is_working_day(D("2027-02-08"))
    assert not cal.is_working_day(D("2027-04-05"))
    assert cal.is_working_day(D("2027-02-20"))
    assert not cal.is_working_day(D("2026-10-05"))  # the built-in holidays still apply
    assert cal.add_working_days(D("2027-02-04"), 1) == D("2027-02-12")
    assert cal.complete_years == {2026, 2027}


def test_configured_dates_override_the_builtin_verdict():
    cal = calendar_from_config({"HOLIDAYS": "2026-10-10", "ADJUSTED_WORKDAYS": "2026-10-07"})
    assert not cal.is_working_day(D("2026-10-10"))
    assert cal.is_working_day(D("2026-10-07"))


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        ("HOLIDAYS", "2026-13-01", "'2026-13-01' is not a date"),
        ("HOLIDAYS", "2026/10/01", "is not a date"),
        ("HOLIDAYS", "20261001", "is not a date"),
        ("HOLIDAYS", "2026-10-01..", "is not a date"),
        ("HOLIDAYS", "2026-10-08..2026-10-01", "ends before it starts"),
        ("HOLIDAYS", "2026-10-01..2062-10-08", "longer than a year"),
        ("ADJUSTED_WORKDAYS", "2026-11-03", "weekday and no holiday"),
        ("ADJUSTED_WORKDAYS", "next saturday", "is not a date"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(variable, value, complaint):
    with pytest.raises(ConfigError, match=variable) as refused:
        calendar_from_config(config_module.load("testing", {variable: value}))
    assert complaint in str(refused.value)


def test_a_date_both_off_and_on_is_refused():
    with pytest.raises(ConfigError, match="HOLIDAYS and ADJUSTED_WORKDAYS both list 2027-01-02"):
        calendar_from_config({"HOLIDAYS": "2027-01-01..2027-01-03", "ADJUSTED_WORKDAYS": "2027-01-02"})


def test_app_calendar_is_built_at_startup_and_cached():
    app = Flask(__name__)
    app.config.update(HOLIDAYS="2027-04-05", ADJUSTED_WORKDAYS="")
    init_app(app)
    with app.app_context():
        assert work_calendar() is work_calendar()
        assert not work_calendar().is_working_day(D("2027-04-05"))

    broken = Flask(__name__)
    broken.config.update(HOLIDAYS="2027-04-31")
    with pytest.raises(ConfigError, match="HOLIDAYS"):
        init_app(broken)


def test_app_calendar_is_built_on_first_use_without_init_app():
    app = Flask(__name__)
    with app.app_context():
        assert work_calendar().add_working_days(D("2026-09-30"), 1) == D("2026-10-08")
        assert work_calendar() is work_calendar()
