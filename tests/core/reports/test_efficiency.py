"""Efficiency rules: base loads, the anomaly rules on worked examples, and the peak-shaving
arithmetic (exactly the kWh moved, nothing lost)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterpay.core.reports.efficiency import (
    HISTORY_DAYS,
    RECENT_DAYS,
    DayUsage,
    HourUsage,
    engine_intervals,
    night_base_jump,
    night_base_kw,
    peak_share,
    peak_share_jump,
    shift_to_valley,
    split_history,
    weekend_base_kw,
    zero_runs,
)
from meterpay.core.reports.rollup import to_units

D = Decimal
MONDAY = date(2026, 3, 2)


def days(
    count: int, *, night: str = "3", peak: str = "20", quantity: str = "60", first: date = MONDAY
) -> list[DayUsage]:
    """Days of ``quantity`` kWh, ``night`` of them at night and ``peak`` in peak hours."""
    return [
        DayUsage(
            first + timedelta(days=n), to_units(D(quantity)), to_units(D(night)), to_units(D(peak))
        )
        for n in range(count)
    ]


def test_base_loads_and_shares() -> None:
    week = days(7)
    assert night_base_kw(week) == D("0.500")  # 3 kWh over 6 night hours
    assert weekend_base_kw(week) == D("2.500")  # 60 kWh a day over 24 h
    assert peak_share(week) == D("33.3")
    assert night_base_kw([]) is None and weekend_base_kw(week[:5]) is None
    assert peak_share(days(3, quantity="0")) is None


def test_a_night_base_load_that_jumps_is_flagged() -> None:
    history = days(HISTORY_DAYS)
    recent = days(RECENT_DAYS, night="6", first=MONDAY + timedelta(days=HISTORY_DAYS))
    found = night_base_jump(history, recent)
    assert found is not None and (found.current, found.baseline) == (D("1.000"), D("0.500"))
    assert found.first == MONDAY + timedelta(days=HISTORY_DAYS)
    # 1.5 times but only 0.1 kW more: a standby, not an alarm
    assert night_base_jump(days(20, night="1.2"), days(7, night="1.8")) is None
    # too little history to judge
    assert night_base_jump(days(10), days(7, night="60")) is None


def test_a_peak_share_that_jumps_is_flagged() -> None:
    found = peak_share_jump(days(20, peak="15"), days(7, peak="24"))
    assert found is not None and (found.baseline, found.current) == (D("25.0"), D("40.0"))
    assert peak_share_jump(days(20, peak="15"), days(7, peak="20")) is None  # +8.3 points
    # too little used recently to judge a share
    assert peak_share_jump(days(20, peak="15"), days(7, peak="0.1", quantity="0.1")) is None


def test_history_and_recent_days() -> None:
    until = MONDAY + timedelta(days=40)
    history, recent = split_history(days(40), until=until)
    assert len(recent) == RECENT_DAYS and len(history) == HISTORY_DAYS  # the rest is older
    assert recent[-1].day == until - timedelta(days=1)


def test_zero_runs_count_days_without_data_as_zero() -> None:
    usage = {MONDAY + timedelta(days=n): 50000 for n in range(10)}
    for n in (2, 3, 4, 7, 8):
        usage[MONDAY + timedelta(days=n)] = 0
    del usage[MONDAY + timedelta(days=5)]
    runs = zero_runs(usage, first=MONDAY, last=MONDAY + timedelta(days=11))
    # the 4th-6th used nothing and the 7th sent nothing: one run of four days; the 9th-10th
    # and the 12th-13th (no data) are too short
    assert [(r.first, r.last, r.current, r.missing_days) for r in runs] == [
        (date(2026, 3, 4), date(2026, 3, 7), D(4), 1)
    ]
    assert runs[0].kind == "zero_consumption"
    assert zero_runs({}, first=MONDAY, last=MONDAY + timedelta(days=1)) == []
    assert len(zero_runs({}, first=MONDAY, last=MONDAY + timedelta(days=2))) == 1


def hours_of(day: date, values: dict[int, dict[str, str]]) -> list[HourUsage]:
    return [
        HourUsage(
            datetime(day.year, day.month, day.day, h), {k: to_units(D(v)) for k, v in p.items()}
        )
        for h, p in sorted(values.items())
    ]


def valley(start: datetime) -> bool:
    return start.hour < 8


def test_shifting_a_fifth_of_the_peak() -> None:
    hours = hours_of(MONDAY, {2: {"valley": "1"}, 9: {"peak": "10"}, 10: {"sharp": "3.3333"}})
    shift = shift_to_valley(hours, fraction=D("0.2"), is_valley=valley)
    by_hour = {h.start.hour: h.periods for h in shift.hours}
    assert shift.moved == 26667  # 2 + 0.66666 -> 0.6667 kWh
    assert by_hour[9]["peak"] == 80000 and by_hour[10]["sharp"] == 26666
    # 2.6667 over 8 valley hours: 0.3333 each, the odd 0.0003 to the first three
    assert [by_hour[h]["valley"] for h in range(8)] == [
        3334, 3334, 13334, 3333, 3333, 3333, 3333, 3333,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="between"):
        shift_to_valley(hours, fraction=D("1.5"), is_valley=valley)
    assert shift_to_valley(hours, fraction=D("0.2"), is_valley=lambda _s: False).moved == 0


@settings(max_examples=100, deadline=None)
@given(
    values=st.dictionaries(
        st.integers(0, 24 * 5 - 1),
        st.dictionaries(
            st.sampled_from(["sharp", "peak", "flat", "valley", "other", "untimed"]),
            st.integers(0, 10**7),
            max_size=4,
        ),
        max_size=60,
    ),
    percent=st.integers(0, 100),
)
def test_shifting_keeps_every_kwh(values: dict[int, dict[str, int]], percent: int) -> None:
    origin = datetime(2026, 3, 2)
    hours = [HourUsage(origin + timedelta(hours=h), p) for h, p in sorted(values.items())]
    shift = shift_to_valley(hours, fraction=D(percent) / 100, is_valley=valley)
    assert sum(h.total for h in shift.hours) == sum(h.total for h in hours)
    moved_from = sum(h.periods.get(n, 0) for h in hours for n in ("sharp", "peak"))
    left = sum(h.periods.get(n, 0) for h in shift.hours for n in ("sharp", "peak"))
    assert moved_from - left == shift.moved
    assert abs(shift.moved - D(moved_from) * percent / 100) <= len(hours)
    assert all(v >= 0 for h in shift.hours for v in h.periods.values())


def test_engine_intervals_name_the_periods_the_tariff_has() -> None:
    hours = hours_of(MONDAY, {9: {"peak": "2", "other": "1", "untimed": "0.5"}, 3: {"valley": "1"}})
    found = engine_intervals(hours, periods=frozenset({"peak", "valley"}))
    assert [(i.start.hour, i.quantity, i.period) for i in found] == [
        (3, D(1), "valley"), (9, D(2), "peak"), (9, D("1.5"), None),
    ]  # fmt: skip
    assert engine_intervals(hours, periods=frozenset(), since=datetime(2026, 3, 2, 5)) == [
        found[1].__class__(found[1].start, found[1].end, D("3.5"))
    ]
