"""Working days in China: weekends, public holidays and adjusted working days (调休), dated in Beijing time.

The deadline rule (承诺时限 and 法定时限 of "N个工作日"): periods of administrative licensing are counted in
working days, holidays excluded (行政许可法 art. 82), and the day a period starts is not counted (民法典 art.
201). So for something submitted on day S:

- working day 1 is the first working day after S's local date, whatever S is (a working day, a weekend or a
  holiday; the hour of submission does not matter);
- the deadline of N working days is the Nth such day, and it lasts until its end (24:00 Beijing time): the case
  is overdue from the next day on (`is_overdue`, `deadline_end`);
- N = 0 gives S's own date (a matter decided on the spot, 即办件).

`working_days_between(start, end)` counts the same way (working days after start's date up to and including
end's date), so `working_days_between(s, add_working_days(s, n)) == n`: the figure statistics compare with the
promised limit.

"Which day is it" is decided in Asia/Shanghai: timestamps come in as UTC (the database stores UTC; a naive
datetime is taken as UTC) and are converted before their date is taken.

The calendar is the built-in one (app/applications/data/holidays.json: the published years) extended by the HOLIDAYS and
ADJUSTED_WORKDAYS settings. The core is plain Python; only `init_app` and `work_calendar` touch Flask.
"""

from __future__ import annotations

import json
import logging
import re
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.config import ConfigError

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger(__name__)

EXTENSION = "workdays"
DATA_FILE = Path(__file__).resolve().parent / "data" / "holidays.json"
DATE_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}")
# A range longer than a year is a typo (2026-10-01..2062-10-08), not a holiday.
MAX_RANGE_DAYS = 366


def _shanghai() -> tzinfo:
    try:
        return ZoneInfo("Asia/Shanghai")
    except ZoneInfoNotFoundError:
        # A slim container without a tz database: China has kept UTC+8 without daylight saving since 1991, so a
        # fixed offset gives the same local dates for every date this service deals with.
        return timezone(timedelta(hours=8), "Asia/Shanghai")


TIMEZONE = _shanghai()


def parse_dates(raw: str | Iterable[str | date] | None, *, name: str) -> frozenset[date]:
    """Dates from comma-separated ISO dates and ranges (`2026-10-01..2026-10-08`); ConfigError names `name`."""
    if raw is None:
        return frozenset()
    items = raw.split(",") if isinstance(raw, str) else raw
    dates: set[date] = set()
    for item in items:
        if isinstance(item, date) and not isinstance(item, datetime):
            dates.add(item)
            continue
        text = str(item).strip()
        if not text:
            continue
        first, separator, last = (part.strip() for part in text.partition(".."))
        try:
            start = _iso_date(first)
            end = _iso_date(last) if separator else start
        except ValueError:
            raise ConfigError(
                f"{name}: {text!r} is not a date (YYYY-MM-DD) or a range of dates (YYYY-MM-DD..YYYY-MM-DD)"
            ) from None
        if end < start:
            raise ConfigError(f"{name}: the range {text!r} ends before it starts")
        if (end - start).days >= MAX_RANGE_DAYS:
            raise ConfigError(f"{name}: the range {text!r} is longer than a year")
        dates.update(start + timedelta(days=n) for n in range((end - start).days + 1))
    return frozenset(dates)


def _iso_date(text: str) -> date:
    # Strictly YYYY-MM-DD: date.fromisoformat (3.11) would also take 20261001 or 2026-W40-4.
    if not DATE_PATTERN.fullmatch(text):
        raise ValueError(text)
    return date.fromisoformat(text)


def _weekdays_through(day: date) -> int:
    """Monday-to-Friday dates from 0001-01-01 (a Monday, ordinal 1) up to and including `day`."""
    weeks, rest = divmod(day.toordinal(), 7)
    return weeks * 5 + min(rest, 5)


class WorkCalendar:
    """Which dates are working days: Monday to Friday except holidays, plus adjusted working days (调休)."""

    def __init__(
        self,
        holidays: Iterable[date] = (),
        adjusted_workdays: Iterable[date] = (),
        *,
        tz: tzinfo = TIMEZONE,
        complete_years: Iterable[int] = (),
    ):
        self.holidays = frozenset(holidays)
        self.adjusted_workdays = frozenset(adjusted_workdays)
        both = self.holidays & self.adjusted_workdays
        if both:
            raise ValueError(f"dates both holiday and working day: {', '.join(sorted(map(str, both)))}")
        self.tz = tz
        # Years whose whole arrangement is known (official built-in data or loaded by the operator).
        self.complete_years = frozenset(complete_years)
        # The exceptions to "Monday to Friday", sorted, so spans are counted without walking every day.
        self._weekdays_off = sorted(d for d in self.holidays if d.weekday() < 5)
        self._weekends_on = sorted(d for d in self.adjusted_workdays if d.weekday() >= 5)

    def local_date(self, moment: date | datetime) -> date:
        """The Beijing-time date of `moment` (a naive datetime is UTC; a date is taken as it is)."""
        if isinstance(moment, datetime):
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return moment.astimezone(self.tz).date()
        return moment

    def today(self) -> date:
        """Today's date in Beijing time: what "overdue" and "due in N working days" count from."""
        return self.local_date(datetime.now(UTC))

    def is_working_day(self, day: date | datetime) -> bool:
        """Whether the (local) date of `day` is a working day."""
        day = self.local_date(day)
        if day in self.adjusted_workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def add_working_days(self, start: date | datetime, days: int) -> date:
        """The date of the `days`-th working day after start's local date (0: that date itself)."""
        if days < 0:
            raise ValueError("days must not be negative")
        day = self.local_date(start)
        remaining = days
        while remaining:
            day += timedelta(days=1)
            if self.is_working_day(day):
                remaining -= 1
        return day

    def working_days_between(self, start: date | datetime, end: date | datetime) -> int:
        """Working days after start's local date up to and including end's (0 when end is not later)."""
        first, last = self.local_date(start), self.local_date(end)
        if last <= first:
            return 0
        return (
            _weekdays_through(last) - _weekdays_through(first)
            - (bisect_right(self._weekdays_off, last) - bisect_right(self._weekdays_off, first))
            + (bisect_right(self._weekends_on, last) - bisect_right(self._weekends_on, first))
        )

    def deadline_end(self, deadline: date) -> datetime:
        """The UTC instant the deadline date ends (the next local midnight), e.g. for a `due_at` column."""
        return datetime.combine(deadline + timedelta(days=1), time(0), tzinfo=self.tz).astimezone(UTC)

    def is_overdue(self, deadline: date, now: datetime) -> bool:
        """Whether `now` is past the end of the deadline date."""
        return self.local_date(now) > deadline


@dataclass(frozen=True)
class BuiltinCalendar:
    holidays: frozenset[date]
    adjusted_workdays: frozenset[date]
    complete_years: frozenset[int]


@lru_cache(maxsize=4)
def builtin_calendar(path: Path = DATA_FILE) -> BuiltinCalendar:
    """The calendar shipped in app/applications/data/holidays.json (read once per process)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    holidays: set[date] = set()
    adjusted: set[date] = set()
    complete: set[int] = set()
    for year, entry in data["years"].items():
        label = f"{Path(path).name} {year}"
        for dates in entry["holidays"].values():
            holidays |= parse_dates(dates, name=f"{label} holidays")
        for dates in entry["adjusted_workdays"].values():
            adjusted |= parse_dates(dates, name=f"{label} adjusted_workdays")
        if entry.get("status") == "official":
            complete.add(int(year))
    return BuiltinCalendar(frozenset(holidays), frozenset(adjusted), frozenset(complete))


def calendar_from_config(config: Mapping) -> WorkCalendar:
    """The built-in calendar extended by HOLIDAYS and ADJUSTED_WORKDAYS (a date set there overrides the built-in)."""
    builtin = builtin_calendar()
    days_off = parse_dates(config.get("HOLIDAYS"), name="HOLIDAYS")
    days_on = parse_dates(config.get("ADJUSTED_WORKDAYS"), name="ADJUSTED_WORKDAYS")
    both = days_off & days_on
    if both:
        raise ConfigError(
            "HOLIDAYS and ADJUSTED_WORKDAYS both list " + ", ".join(sorted(map(str, both)))
        )
    # A plain weekday is a working day already: listing one is a typo for a weekend date, unless it corrects a
    # built-in holiday.
    pointless = sorted(str(d) for d in days_on if d.weekday() < 5 and d not in builtin.holidays)
    if pointless:
        raise ConfigError(
            f"ADJUSTED_WORKDAYS: {', '.join(pointless)} is a weekday and no holiday, so it is a working day "
            "already (adjusted working days are Saturdays or Sundays)"
        )
    return WorkCalendar(
        holidays=(builtin.holidays - days_on) | days_off,
        adjusted_workdays=(builtin.adjusted_workdays - days_off) | days_on,
        # An operator who lists holidays of a year loads that year's whole calendar (the documented procedure).
        complete_years=builtin.complete_years | {d.year for d in days_off},
    )


def init_app(app: Flask) -> None:
    """Build the app's calendar at startup (a bad HOLIDAYS/ADJUSTED_WORKDAYS stops it) into app.extensions."""
    calendar = calendar_from_config(app.config)
    app.extensions[EXTENSION] = calendar
    today = calendar.local_date(datetime.now(UTC))
    # Deadlines silently miss the holidays of a year nobody loaded: say so while there is time to fix it.
    years = [today.year] + ([today.year + 1] if today.month == 12 else [])
    missing = [year for year in years if year not in calendar.complete_years]
    if missing:
        log.warning(
            "working-day calendar incomplete for %s: set HOLIDAYS and ADJUSTED_WORKDAYS from the State Council's "
            "holiday notice, or deadlines will count holidays as working days",
            ", ".join(map(str, missing)),
        )


def work_calendar() -> WorkCalendar:
    """The current app's calendar (built on first use when the factory did not call init_app)."""
    from flask import current_app

    calendar = current_app.extensions.get(EXTENSION)
    if calendar is None:
        calendar = current_app.extensions.setdefault(EXTENSION, calendar_from_config(current_app.config))
    return calendar
