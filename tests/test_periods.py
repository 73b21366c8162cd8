"""Budget periods: calendar arithmetic, timezones, DST and the window an instant falls in."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobbudget import ValidationError
from jobbudget.domain.periods import (
    PERIOD_TYPES,
    BudgetPeriod,
    PeriodWindow,
    current_window,
    first_window,
    parse_period,
    resolve_period,
    window_at,
)

US = timedelta(microseconds=1)
NY = "America/New_York"
BERLIN = "Europe/Berlin"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc,arg-type]


def local(tz: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(tz))  # type: ignore[misc,arg-type]


def period(type_: str, start: date, tz: str = "UTC", **kw: object) -> BudgetPeriod:
    return resolve_period(BudgetPeriod(type_, start, timezone=tz, **kw), utc(2000, 1, 1))  # type: ignore[arg-type]


def nth(p: BudgetPeriod, index: int) -> PeriodWindow:
    """The window with ``index``, found through window_at from its start."""
    w = first_window(p)
    for _ in range(index):
        nxt = window_at(p, w.end)
        assert nxt is not None
        w = nxt
    assert w.index == index
    return w


# --- construction and validation ---


def test_recurring_defaults() -> None:
    for type_ in PERIOD_TYPES:
        if type_ == "custom":
            p = BudgetPeriod("custom", date(2024, 1, 1), date(2024, 1, 10))
            assert p.recurring is False
        else:
            assert BudgetPeriod(type_).recurring is True
    assert BudgetPeriod("monthly", recurring=False).recurring is False


def test_defaults() -> None:
    p = BudgetPeriod()
    assert (p.type, p.start_date, p.end_date, p.timezone) == ("monthly", None, None, "UTC")


def test_datetime_dates_become_dates() -> None:
    p = BudgetPeriod("monthly", datetime(2024, 1, 1, 15, 30, tzinfo=UTC), date(2024, 1, 31))
    assert type(p.start_date) is date
    assert p.start_date == date(2024, 1, 1)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"type": "hourly"}, "period.type"),
        ({"type": "Monthly"}, "period.type"),
        ({"type": None}, "period.type"),
        ({"timezone": "Mars/Olympus_Mons"}, "period.timezone"),
        ({"timezone": ""}, "period.timezone"),
        ({"timezone": "../../etc/passwd"}, "period.timezone"),
        ({"timezone": "America"}, "period.timezone"),  # a directory of the tz database, not a zone
        ({"timezone": "Europe/" + "x" * 300}, "period.timezone"),
        ({"timezone": 5}, "period.timezone"),
        ({"start_date": "2024-01-01"}, "period.start_date"),
        ({"end_date": 20240131}, "period.end_date"),
        ({"start_date": date(2024, 2, 1), "end_date": date(2024, 1, 31)}, "period.end_date"),
        ({"type": "custom", "start_date": date(2024, 2, 1), "end_date": date(2024, 1, 31)}, "period.end_date"),
        ({"type": "custom"}, "period.start_date"),
        ({"type": "custom", "start_date": date(2024, 1, 1)}, "period.start_date"),
        (
            {"type": "custom", "start_date": date(2024, 1, 1), "end_date": date(2024, 1, 5), "recurring": True},
            "period.recurring",
        ),
        ({"type": "monthly", "start_date": date(2024, 1, 1), "end_date": date(2024, 1, 30)}, "period.end_date"),
        ({"type": "monthly", "start_date": date(2024, 1, 31), "end_date": date(2024, 2, 29)}, "period.end_date"),
        ({"type": "weekly", "start_date": date(2024, 1, 1), "end_date": date(2024, 1, 8)}, "period.end_date"),
        ({"type": "daily", "start_date": date(2024, 1, 1), "end_date": date(2024, 1, 2)}, "period.end_date"),
        ({"type": "yearly", "start_date": date(2024, 1, 1), "end_date": date(2024, 12, 30)}, "period.end_date"),
    ],
)
def test_invalid_periods_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        BudgetPeriod(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field
    assert str(info.value).startswith(field)


@pytest.mark.parametrize(
    ("type_", "start", "end"),
    [
        ("daily", date(2024, 2, 29), date(2024, 2, 29)),
        ("weekly", date(2024, 1, 1), date(2024, 1, 7)),
        ("monthly", date(2024, 1, 1), date(2024, 1, 31)),
        ("monthly", date(2024, 2, 1), date(2024, 2, 29)),
        ("monthly", date(2023, 2, 1), date(2023, 2, 28)),
        ("monthly", date(2024, 1, 31), date(2024, 2, 28)),  # next start Feb 29
        ("monthly", date(2024, 1, 15), date(2024, 2, 14)),
        ("quarterly", date(2024, 1, 1), date(2024, 3, 31)),
        ("quarterly", date(2024, 11, 30), date(2025, 2, 27)),  # next start Feb 28 2025
        ("yearly", date(2024, 1, 1), date(2024, 12, 31)),
        ("yearly", date(2024, 2, 29), date(2025, 2, 27)),  # next start Feb 28 2025
        ("custom", date(2024, 1, 10), date(2024, 1, 10)),
    ],
)
def test_natural_end_dates_are_accepted_and_filled_in(type_: str, start: date, end: date) -> None:
    assert BudgetPeriod(type_, start, end).end_date == end
    if type_ != "custom":
        assert resolve_period(BudgetPeriod(type_, start), utc(2030, 1, 1)).end_date == end


# --- resolve_period ---


@pytest.mark.parametrize(
    ("type_", "now", "start", "end"),
    [
        ("daily", utc(2024, 2, 29, 12), date(2024, 2, 29), date(2024, 2, 29)),
        ("weekly", utc(2024, 1, 17, 12), date(2024, 1, 15), date(2024, 1, 21)),  # Wednesday → Mon..Sun
        ("weekly", utc(2024, 1, 15, 0), date(2024, 1, 15), date(2024, 1, 21)),
        ("weekly", utc(2024, 1, 21, 23, 59), date(2024, 1, 15), date(2024, 1, 21)),
        ("monthly", utc(2024, 2, 15), date(2024, 2, 1), date(2024, 2, 29)),
        ("monthly", utc(2023, 2, 15), date(2023, 2, 1), date(2023, 2, 28)),
        ("monthly", utc(2024, 12, 31, 23), date(2024, 12, 1), date(2024, 12, 31)),
        ("quarterly", utc(2024, 5, 10), date(2024, 4, 1), date(2024, 6, 30)),
        ("quarterly", utc(2024, 12, 31), date(2024, 10, 1), date(2024, 12, 31)),
        ("yearly", utc(2024, 7, 4), date(2024, 1, 1), date(2024, 12, 31)),
    ],
)
def test_resolve_fills_the_calendar_period_containing_now(type_: str, now: datetime, start: date, end: date) -> None:
    p = resolve_period(BudgetPeriod(type_), now)
    assert (p.start_date, p.end_date) == (start, end)
    assert p.recurring is True


def test_resolve_uses_the_period_timezone() -> None:
    now = utc(2024, 3, 1, 3)  # 22:00 on 29 February in New York
    assert resolve_period(BudgetPeriod("monthly"), now).start_date == date(2024, 3, 1)
    p = resolve_period(BudgetPeriod("monthly", timezone=NY), now)
    assert (p.start_date, p.end_date) == (date(2024, 2, 1), date(2024, 2, 29))
    assert resolve_period(BudgetPeriod("daily", timezone="Pacific/Kiritimati"), utc(2024, 1, 1, 12)).start_date == (
        date(2024, 1, 2)
    )


def test_resolve_keeps_complete_periods() -> None:
    p = BudgetPeriod("custom", date(2024, 1, 1), date(2024, 3, 15), timezone=BERLIN)
    assert resolve_period(p, utc(2030, 1, 1)) is p


# --- calendar months and leap days ---


def test_month_anchored_on_the_31st_follows_the_calendar() -> None:
    p = period("monthly", date(2024, 1, 31))
    starts = [nth(p, i).start_date for i in range(14)]
    assert starts[:5] == [date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30), date(2024, 5, 31)]
    assert starts[12:] == [date(2025, 1, 31), date(2025, 2, 28)]
    w0 = first_window(p)
    assert (w0.start_date, w0.end_date) == (date(2024, 1, 31), date(2024, 2, 28))
    w1 = nth(p, 1)
    assert (w1.start_date, w1.end_date) == (date(2024, 2, 29), date(2024, 3, 30))
    assert window_at(p, utc(2024, 3, 30, 23, 59, 59, 999999)) == w1
    assert window_at(p, utc(2024, 3, 31)).start_date == date(2024, 3, 31)  # type: ignore[union-attr]


def test_month_anchored_on_29_february_returns_to_the_29th() -> None:
    p = period("monthly", date(2024, 2, 29))
    starts = [nth(p, i).start_date for i in range(13)]
    assert starts[:3] == [date(2024, 2, 29), date(2024, 3, 29), date(2024, 4, 29)]
    assert starts[12] == date(2025, 2, 28)
    assert window_at(p, utc(2025, 3, 29)).start_date == date(2025, 3, 29)  # type: ignore[union-attr]


def test_year_anchored_on_29_february() -> None:
    p = period("yearly", date(2024, 2, 29))
    windows = [nth(p, i) for i in range(5)]
    assert [w.start_date for w in windows] == [
        date(2024, 2, 29),
        date(2025, 2, 28),
        date(2026, 2, 28),
        date(2027, 2, 28),
        date(2028, 2, 29),
    ]
    assert windows[3].end_date == date(2028, 2, 28)
    leap_day = window_at(p, utc(2028, 2, 29, 12))
    assert leap_day is not None and leap_day.index == 4
    assert window_at(p, utc(2028, 2, 28, 23, 59, 59, 999999)).index == 3  # type: ignore[union-attr]


def test_daily_period_covers_29_february() -> None:
    p = period("daily", date(2024, 2, 28))
    w = window_at(p, utc(2024, 2, 29, 13))
    assert w is not None
    assert (w.index, w.start_date, w.end_date) == (1, date(2024, 2, 29), date(2024, 2, 29))
    assert window_at(p, utc(2024, 3, 1)).start_date == date(2024, 3, 1)  # type: ignore[union-attr]


def test_quarters_and_weeks() -> None:
    q = period("quarterly", date(2024, 1, 1))
    assert [nth(q, i).start_date for i in range(5)] == [
        date(2024, 1, 1),
        date(2024, 4, 1),
        date(2024, 7, 1),
        date(2024, 10, 1),
        date(2025, 1, 1),
    ]
    w = period("weekly", date(2024, 1, 3))  # a Wednesday anchor: weeks run Wednesday..Tuesday
    found = window_at(w, utc(2024, 2, 6, 23))
    assert found is not None
    assert (found.start_date, found.end_date) == (date(2024, 1, 31), date(2024, 2, 6))
    assert found.index == 4


# --- timezones, DST and the boundary instant ---


@pytest.mark.parametrize(
    ("tz", "day", "start", "end", "hours"),
    [
        (NY, date(2024, 3, 10), utc(2024, 3, 10, 5), utc(2024, 3, 11, 4), 23),  # spring forward
        (NY, date(2024, 11, 3), utc(2024, 11, 3, 4), utc(2024, 11, 4, 5), 25),  # fall back
        (NY, date(2024, 1, 15), utc(2024, 1, 15, 5), utc(2024, 1, 16, 5), 24),
        (BERLIN, date(2024, 3, 31), utc(2024, 3, 30, 23), utc(2024, 3, 31, 22), 23),
        (BERLIN, date(2024, 10, 27), utc(2024, 10, 26, 22), utc(2024, 10, 27, 23), 25),
        ("Australia/Lord_Howe", date(2024, 4, 7), utc(2024, 4, 6, 13), utc(2024, 4, 7, 13, 30), 24.5),
    ],
)
def test_daily_window_on_dst_days(tz: str, day: date, start: datetime, end: datetime, hours: float) -> None:
    p = period("daily", day, tz)
    w = first_window(p)
    assert (w.start, w.end) == (start, end)
    assert w.end - w.start == timedelta(hours=hours)
    assert w.start.tzinfo is not None and w.start.utcoffset() == timedelta(0)
    assert window_at(p, start) == w
    assert window_at(p, end - US) == w
    nxt = window_at(p, end)
    assert nxt is not None and nxt.start == end and nxt.index == 1


def test_monthly_window_utc_bounds_shift_with_dst() -> None:
    p = period("monthly", date(2024, 1, 1), BERLIN)
    jan, feb, mar, apr = (nth(p, i) for i in range(4))
    assert jan.start == utc(2023, 12, 31, 23)  # CET, UTC+1
    assert mar.start == utc(2024, 2, 29, 23)
    assert mar.end == utc(2024, 3, 31, 22)  # CEST, UTC+2
    assert apr.start == mar.end
    assert mar.end - mar.start == timedelta(days=31) - timedelta(hours=1)
    assert feb.end - feb.start == timedelta(days=29)


def test_rollover_happens_at_local_midnight() -> None:
    p = period("monthly", date(2024, 1, 1), NY)
    boundary = local(NY, 2024, 2, 1)
    assert boundary == utc(2024, 2, 1, 5)
    before = window_at(p, boundary - US)
    at = window_at(p, boundary)
    assert before is not None and at is not None
    assert before.start_date == date(2024, 1, 1)
    assert at.start_date == date(2024, 2, 1)
    assert before.end == at.start == boundary
    # Midnight UTC on 1 February is still January in New York.
    assert window_at(p, utc(2024, 2, 1)).start_date == date(2024, 1, 1)  # type: ignore[union-attr]
    # The instant's own timezone does not matter, only the period's.
    tokyo = boundary.astimezone(ZoneInfo("Asia/Tokyo"))
    assert window_at(p, tokyo) == at
    assert window_at(p, tokyo - US) == before


def test_rollover_in_utc_period() -> None:
    p = period("daily", date(2024, 1, 1))
    assert window_at(p, utc(2024, 1, 1, 23, 59, 59, 999999)).index == 0  # type: ignore[union-attr]
    assert window_at(p, utc(2024, 1, 2)).index == 1  # type: ignore[union-attr]


def test_dst_spring_forward_at_midnight() -> None:
    # Santiago springs forward at local midnight (00:00 does not exist); the day is 23 hours.
    p = period("daily", date(2024, 9, 6), "America/Santiago")
    w = window_at(p, utc(2024, 9, 8, 12))
    assert w is not None
    assert w.start_date == date(2024, 9, 8)
    assert w.end - w.start == timedelta(hours=23)
    prev = window_at(p, w.start - US)
    assert prev is not None and prev.end == w.start


# --- before, after and current ---


def test_window_at_before_the_first_window_is_none() -> None:
    p = period("monthly", date(2024, 1, 1), NY)
    assert window_at(p, local(NY, 2024, 1, 1) - US) is None
    assert window_at(p, local(NY, 2024, 1, 1)) == first_window(p)
    assert window_at(p, utc(1999, 1, 1)) is None


def test_custom_period_has_one_window_with_inclusive_end() -> None:
    p = BudgetPeriod("custom", date(2024, 1, 10), date(2024, 1, 20), timezone=BERLIN)
    w = first_window(p)
    assert (w.start_date, w.end_date) == (date(2024, 1, 10), date(2024, 1, 20))
    assert w.start == local(BERLIN, 2024, 1, 10)
    assert w.end == local(BERLIN, 2024, 1, 21)
    assert window_at(p, local(BERLIN, 2024, 1, 20, 23, 59, 59, 999999)) == w
    assert window_at(p, local(BERLIN, 2024, 1, 21)) is None
    assert window_at(p, utc(2030, 1, 1)) is None
    assert window_at(p, local(BERLIN, 2024, 1, 10) - US) is None


def test_non_recurring_monthly_ends_after_its_first_window() -> None:
    p = period("monthly", date(2024, 1, 1), recurring=False)
    assert window_at(p, utc(2024, 1, 31, 23, 59)) == first_window(p)
    assert window_at(p, utc(2024, 2, 1)) is None


def test_current_window_is_window_at() -> None:
    p = period("weekly", date(2024, 1, 1))
    now = utc(2024, 5, 5, 5)
    assert current_window(p, now) == window_at(p, now)


def test_window_contains_is_half_open() -> None:
    w = first_window(period("daily", date(2024, 1, 1)))
    assert w.contains(w.start)
    assert w.contains(w.end - US)
    assert not w.contains(w.end)
    assert not w.contains(w.start - US)


# --- property: windows contain the instant and tile time ---

ZONES = [
    "UTC",
    NY,
    BERLIN,
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "America/Santiago",
    "America/Havana",
    "Pacific/Apia",  # skipped 30 December 2011 entirely
    "Pacific/Chatham",
]


@settings(max_examples=150, deadline=None)
@given(
    type_=st.sampled_from(["daily", "weekly", "monthly", "quarterly", "yearly"]),
    anchor=st.dates(min_value=date(2000, 1, 1), max_value=date(2030, 12, 31)),
    tz=st.sampled_from(ZONES),
    offset=st.integers(min_value=0, max_value=4 * 366 * 86400 * 10**6),
)
def test_windows_contain_the_instant_and_tile_time(type_: str, anchor: date, tz: str, offset: int) -> None:
    p = period(type_, anchor, tz)
    first = first_window(p)
    assert first.start_date == anchor
    instant = first.start + timedelta(microseconds=offset)
    w = window_at(p, instant)
    assert w is not None
    assert w.contains(instant)
    assert w.start_date <= instant.astimezone(ZoneInfo(tz)).date() <= w.end_date or w.start == w.end
    # the next window begins exactly where this one ends, the next calendar day
    nxt = window_at(p, w.end)
    assert nxt is not None
    assert nxt.index == w.index + 1
    assert nxt.start == w.end
    assert nxt.start_date == w.end_date + timedelta(days=1)
    # the previous window ends exactly where this one starts
    if w.index == 0:
        assert w == first
        assert window_at(p, w.start - US) is None
    else:
        prev = window_at(p, w.start - US)
        assert prev is not None
        assert prev.index == w.index - 1
        assert prev.end == w.start
        assert prev.end_date + timedelta(days=1) == w.start_date
    # boundaries are local midnights
    for bound, day in ((w.start, w.start_date), (w.end, w.end_date + timedelta(days=1))):
        assert bound.utcoffset() == timedelta(0)
        # (a midnight in a DST gap means the first instant of that day, as fold=0 maps it)
        assert bound == datetime.combine(day, datetime.min.time(), tzinfo=ZoneInfo(tz)).astimezone(UTC)


@pytest.mark.parametrize("day", [date(1969, 12, 31), date(9999, 12, 1), date(1, 1, 1)])
def test_period_dates_far_from_the_calendar_ends_only(day: date) -> None:
    with pytest.raises(ValidationError) as bad:
        BudgetPeriod("monthly", start_date=day.replace(day=1))
    assert bad.value.field == "period.start_date"


@pytest.mark.parametrize(
    ("text", "type_", "start", "end"),
    [
        ("2026", "yearly", date(2026, 1, 1), date(2026, 12, 31)),
        ("2026-q4", "quarterly", date(2026, 10, 1), date(2026, 12, 31)),
        ("2026-11", "monthly", date(2026, 11, 1), date(2026, 11, 30)),
        ("2026-W45", "weekly", date(2026, 11, 2), date(2026, 11, 8)),
        (" 2026-11-05 ", "daily", date(2026, 11, 5), date(2026, 11, 5)),
    ],
)
def test_parse_period_reads_calendar_periods(text: str, type_: str, start: date, end: date) -> None:
    period = resolve_period(parse_period(text), utc(2030, 1, 1))
    assert (period.type, period.start_date, period.end_date, period.timezone) == (type_, start, end, "UTC")


@pytest.mark.parametrize("text", ["2026-13", "november", "2026-Q5", "2026-W54", ""])
def test_parse_period_names_the_field_it_was_given(text: str) -> None:
    with pytest.raises(ValidationError) as default:
        parse_period(text)
    with pytest.raises(ValidationError) as flag:
        parse_period(text, field="--period")
    assert default.value.field == "period" and flag.value.field == "--period" and "YYYY-Qn" in flag.value.reason
