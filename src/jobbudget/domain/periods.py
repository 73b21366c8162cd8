"""Budget periods: calendar days, weeks, months, quarters and years in a timezone.

A period covers whole local days: from ``start_date`` 00:00 to the midnight after
``end_date`` (the end date is inclusive, as in the design document's
``EndDate: 2024-01-31 23:59:59``).  Recurring periods step from their first start
date by their length: calendar months, not 30-day windows (a month starting on the
31st continues on the last day of shorter months).  ``custom`` periods do not recur.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ValidationError

__all__ = [
    "PERIOD_SYNTAX",
    "PERIOD_TYPES",
    "BudgetPeriod",
    "PeriodWindow",
    "current_window",
    "first_window",
    "previous_window",
    "parse_period",
    "resolve_period",
    "window_at",
    "zone",
]

#: Periods live between these dates (far from the calendar's ends, where date
#: arithmetic would overflow).
MIN_DATE = date(1970, 1, 1)
MAX_DATE = date(9000, 12, 31)
PERIOD_TYPES = ("daily", "weekly", "monthly", "quarterly", "yearly", "custom")
_MONTHS = {"monthly": 1, "quarterly": 3, "yearly": 12}


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory, a too-long name
        raise ValidationError("period.timezone", name, "unknown IANA timezone") from None


@dataclass(frozen=True, slots=True)
class BudgetPeriod:
    """What a budget covers.  ``start_date``/``end_date`` left as None mean the
    current calendar period of that type (filled in when the budget is created).
    ``recurring`` defaults to True for every type but ``custom``."""

    type: str = "monthly"
    start_date: date | None = None
    end_date: date | None = None
    timezone: str = "UTC"
    recurring: bool | None = None

    def __post_init__(self) -> None:
        if self.type not in PERIOD_TYPES:
            raise ValidationError("period.type", self.type, f"must be one of {', '.join(PERIOD_TYPES)}")
        for name in ("start_date", "end_date"):
            value = getattr(self, name)
            if isinstance(value, datetime):
                object.__setattr__(self, name, value.date())
            elif value is not None and not isinstance(value, date):
                raise ValidationError(f"period.{name}", value, "must be a date")
        for name in ("start_date", "end_date"):
            value = getattr(self, name)
            if value is not None and not MIN_DATE <= value <= MAX_DATE:
                raise ValidationError(f"period.{name}", value, f"must be between {MIN_DATE} and {MAX_DATE}")
        if not isinstance(self.timezone, str):
            raise ValidationError("period.timezone", self.timezone, "must be a timezone name")
        zone(self.timezone)
        if self.recurring is None:
            object.__setattr__(self, "recurring", self.type != "custom")
        elif self.recurring and self.type == "custom":
            raise ValidationError("period.recurring", True, "a custom period cannot recur")
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValidationError("period.end_date", self.end_date, f"must not be before start_date {self.start_date}")
        if self.type == "custom" and (self.start_date is None or self.end_date is None):
            raise ValidationError("period.start_date", self.start_date, "a custom period needs start_date and end_date")
        if self.type != "custom" and self.start_date is not None and self.end_date is not None:
            natural = _natural_end(self.type, self.start_date)
            if self.end_date != natural:
                raise ValidationError(
                    "period.end_date",
                    self.end_date,
                    f"a {self.type} period starting {self.start_date} ends on {natural}",
                )

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.timezone)


@dataclass(frozen=True, slots=True)
class PeriodWindow:
    """One concrete period: local dates (end inclusive) and the UTC instants
    ``[start, end)`` they cover."""

    index: int
    start_date: date
    end_date: date
    start: datetime
    end: datetime

    def contains(self, instant: datetime) -> bool:
        return self.start <= instant < self.end


def _add_months(anchor: date, months: int) -> date:
    total = anchor.month - 1 + months
    year, month = anchor.year + total // 12, total % 12 + 1
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return date(year, month, day)


def _start_of(type_: str, anchor: date, index: int) -> date:
    if type_ == "daily":
        return anchor + timedelta(days=index)
    if type_ == "weekly":
        return anchor + timedelta(days=7 * index)
    return _add_months(anchor, _MONTHS[type_] * index)


def _natural_end(type_: str, start: date) -> date:
    return _start_of(type_, start, 1) - timedelta(days=1)


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def calendar_start(type_: str, today: date) -> date:
    """The first day of the calendar period of ``type_`` containing ``today``
    (weeks start on Monday)."""
    if type_ == "daily":
        return today
    if type_ == "weekly":
        return today - timedelta(days=today.weekday())
    if type_ == "monthly":
        return today.replace(day=1)
    if type_ == "quarterly":
        return date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    if type_ == "yearly":
        return date(today.year, 1, 1)
    raise ValidationError("period.type", type_, "a custom period has no calendar default")


def resolve_period(period: BudgetPeriod, now: datetime) -> BudgetPeriod:
    """Fill in missing dates: the calendar period containing ``now`` in the period's
    timezone, or the natural end of a given start."""
    if period.start_date is not None and period.end_date is not None:
        return period
    today = now.astimezone(period.tz).date()
    start = period.start_date or calendar_start(period.type, today)
    return replace(period, start_date=start, end_date=_natural_end(period.type, start))


@lru_cache(maxsize=65536)
def _window(type_: str, anchor: date, end_date: date, tz_name: str, index: int) -> PeriodWindow:
    tz = zone(tz_name)
    if type_ == "custom":
        start, last = anchor, end_date
    else:
        start = _start_of(type_, anchor, index)
        last = _start_of(type_, anchor, index + 1) - timedelta(days=1)
    return PeriodWindow(index, start, last, _midnight(start, tz), _midnight(last + timedelta(days=1), tz))


def first_window(period: BudgetPeriod) -> PeriodWindow:
    assert period.start_date is not None and period.end_date is not None, "resolve_period first"
    return _window(period.type, period.start_date, period.end_date, period.timezone, 0)


def window_at(period: BudgetPeriod, instant: datetime) -> PeriodWindow | None:
    """The window of ``period`` that contains ``instant``; None before the first
    window, and after the end of a non-recurring one."""
    first = first_window(period)
    if instant < first.start:
        return None
    if not period.recurring:
        return first if instant < first.end else None
    assert period.start_date is not None
    local = instant.astimezone(period.tz).date()
    anchor = period.start_date
    if period.type == "daily":
        guess = (local - anchor).days
    elif period.type == "weekly":
        guess = (local - anchor).days // 7
    else:
        months = (local.year - anchor.year) * 12 + local.month - anchor.month
        guess = months // _MONTHS[period.type]
    for index in (guess, guess - 1, guess + 1):
        if index < 0:
            continue
        window = _window(period.type, anchor, period.end_date or anchor, period.timezone, index)
        if window.contains(instant):
            return window
    return None  # unreachable for valid periods; kept defensive


def previous_window(period: BudgetPeriod, window: PeriodWindow) -> PeriodWindow | None:
    """The window of a recurring ``period`` just before ``window`` (None: the first)."""
    if not period.recurring:
        return None
    return window_at(period, window.start - timedelta(microseconds=1))


def current_window(period: BudgetPeriod, now: datetime) -> PeriodWindow | None:
    return window_at(period, now)


_YEAR = re.compile(r"(\d{4})")
_QUARTER = re.compile(r"(\d{4})-Q([1-4])", re.IGNORECASE)
_MONTH = re.compile(r"(\d{4})-(\d{2})")
_WEEK = re.compile(r"(\d{4})-W(\d{2})", re.IGNORECASE)
#: The calendar periods :func:`parse_period` reads, as help texts name them.
PERIOD_SYNTAX = "YYYY-MM (month), YYYY-Qn (quarter), YYYY-Www (ISO week), YYYY (year) or YYYY-MM-DD (day)"


def parse_period(text: str, *, field: str = "period") -> BudgetPeriod:
    """``2026-11``, ``2026-Q4``, ``2026-W45``, ``2026`` or ``2026-11-05`` as a UTC period
    (a report's period: the CLI's ``--period``, the API's ``period``).  Anything else
    raises :class:`ValidationError` naming ``field``."""
    value = text.strip()
    try:
        if m := _YEAR.fullmatch(value):
            return BudgetPeriod("yearly", start_date=date(int(m[1]), 1, 1))
        if m := _QUARTER.fullmatch(value):
            return BudgetPeriod("quarterly", start_date=date(int(m[1]), 3 * int(m[2]) - 2, 1))
        if m := _MONTH.fullmatch(value):
            return BudgetPeriod("monthly", start_date=date(int(m[1]), int(m[2]), 1))
        if m := _WEEK.fullmatch(value):
            return BudgetPeriod("weekly", start_date=date.fromisocalendar(int(m[1]), int(m[2]), 1))
        return BudgetPeriod("daily", start_date=date.fromisoformat(value))
    except ValueError:
        raise ValidationError(field, text, f"must be {PERIOD_SYNTAX}, e.g. 2026-11") from None
