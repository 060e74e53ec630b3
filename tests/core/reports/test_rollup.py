"""Roll-up buckets: the (start, end] rule in local time, exact sums, any split into batches."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterpay.core.reports.rollup import (
    FIGURES,
    ConsumptionRollup,
    CostRollup,
    LocalClock,
    MeterContext,
    from_units,
    meter_of_reference,
    to_units,
)
from meterpay.core.reports.tou import TouClassifier
from meterpay.core.tariffs import parse_tariff

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
KOLKATA = ZoneInfo("Asia/Kolkata")
TARIFF = parse_tariff(
    {
        "format": "meterpay-tariff/1",
        "id": "t",
        "name": "t",
        "currency": "CNY",
        "commodity": "electricity",
        "versions": [
            {
                "effective_from": "2020-01-01T00:00:00",
                "energy": {
                    "periods": [{"name": "peak", "price": "1"}, {"name": "valley", "price": "0.3"}],
                    "schedule": [
                        {
                            "months": "1-12",
                            "windows": [{"start": "08:00", "end": "22:00", "period": "peak"}],
                            "default_period": "valley",
                        }
                    ],
                },
            }
        ],
    }
)


def test_an_end_on_the_hour_belongs_to_the_hour_before() -> None:
    clock = LocalClock(SHANGHAI)
    midnight = datetime(2026, 4, 1, tzinfo=SHANGHAI)
    bucket = clock.bucket(midnight)
    assert bucket.hour == datetime(2026, 3, 31, 23, tzinfo=SHANGHAI)
    assert (bucket.day, bucket.month, bucket.local_hour) == (
        date(2026, 3, 31),
        date(2026, 3, 1),
        23,
    )
    after = clock.bucket(midnight + timedelta(microseconds=1))
    assert (after.day, after.local_hour) == (date(2026, 4, 1), 0)
    assert clock.bucket(midnight + timedelta(minutes=15)).hour == midnight


@pytest.mark.parametrize("zone", [SHANGHAI, BERLIN, KOLKATA, ZoneInfo("America/St_Johns")])
def test_buckets_follow_the_local_clock_across_daylight_saving(zone: ZoneInfo) -> None:
    clock = LocalClock(zone)
    moment = datetime(2026, 3, 1, tzinfo=UTC)
    while moment < datetime(2026, 11, 15, tzinfo=UTC):
        bucket = clock.bucket(moment)
        local = (moment - timedelta(microseconds=1)).astimezone(zone)
        assert bucket.day == local.date() and bucket.local_hour == local.hour
        assert bucket.hour <= moment - timedelta(microseconds=1) < bucket.hour + timedelta(hours=1)
        assert bucket.hour.astimezone(zone).minute == 0
        moment += timedelta(minutes=15 if moment.day in (1, 29, 30, 31, 25) else 360)


def test_units_are_exact() -> None:
    assert to_units(Decimal("1.2345")) == 12345 and from_units(12345) == Decimal("1.2345")
    with pytest.raises(ValueError, match="four"):
        to_units(Decimal("0.00001"))
    assert [
        meter_of_reference(r)
        for r in ("meter-12/2026-01-01", "meter-12%2Fx", "meter-3", "fee-1/x", "meter-x/1")
    ] == [12, 12, 3, None, None]


def rows_for(
    seed: list[tuple[int, int, int, int, bool]],
) -> list[tuple[int, datetime, datetime, int, str, bool]]:
    origin = datetime(2026, 1, 31, 12, tzinfo=UTC)
    found = []
    for meter, start, length, units, booked in seed:
        begin = origin + timedelta(minutes=15 * start)
        status = "gap" if length > 2 else ("ok" if booked else "spike")
        found.append((meter, begin, begin + timedelta(minutes=15 * length), units, status, booked))
    return found


def contexts() -> dict[int, MeterContext]:
    clock = LocalClock(SHANGHAI)
    tou = TouClassifier(TARIFF)
    plain = TouClassifier(None)
    return {
        1: MeterContext(1, 10, "e", clock, tou),
        2: MeterContext(1, 0, "e", clock, plain),
        3: MeterContext(1, 11, "w", LocalClock(BERLIN), plain),
    }


SEEDS = st.lists(
    st.tuples(
        st.integers(1, 3),
        st.integers(0, 4 * 24 * 40),
        st.integers(1, 40),
        st.integers(0, 10**8),
        st.booleans(),
    ),
    max_size=80,
)


@settings(max_examples=200, deadline=None)
@given(seed=SEEDS, cuts=st.lists(st.integers(0, 80), max_size=4))
def test_any_split_into_batches_sums_to_the_same_buckets(
    seed: list[tuple[int, int, int, int, bool]], cuts: list[int]
) -> None:
    rows = rows_for(seed)
    whole = ConsumptionRollup()
    whole.add(rows, contexts())
    totals: dict[tuple[str, object], list[int]] = {}
    edges = [0, *sorted(cuts), len(rows)]
    for first, last in itertools.pairwise(edges):
        part = ConsumptionRollup()
        part.add(rows[first:last], contexts())
        for grain in ("hour", "day", "month"):
            for row in part.rows(grain):
                key = (grain, row[:5])
                found = totals.setdefault(key, [0] * len(FIGURES))
                for index, value in enumerate(row[5:]):
                    found[index] += int(value)  # type: ignore[call-overload]
    expected = {
        (g, row[:5]): list(row[5:]) for g in ("hour", "day", "month") for row in whole.rows(g)
    }
    assert totals == expected
    # every grain holds everything once; the periods and the night are parts of the whole
    booked = sum(units for _, _, _, units, _, ok in rows if ok)
    for grain in ("hour", "day", "month"):
        buckets = list(whole.rows(grain))
        assert sum(int(r[5]) for r in buckets) == booked  # type: ignore[call-overload]
        assert sum(int(r[5 + FIGURES.index("intervals")]) for r in buckets) == len(rows)  # type: ignore[call-overload]
        for r in buckets:
            figures = dict(zip(FIGURES, r[5:], strict=True))
            parts = sum(figures[n] for n in ("sharp", "peak", "flat", "valley", "other"))  # type: ignore[misc]
            assert 0 <= parts <= figures["quantity"] and figures["night"] <= figures["quantity"]  # type: ignore[operator]
            if r[1] == 1:  # on the TOU tariff every kWh is in a period
                assert parts == figures["quantity"]


def test_an_interval_is_classified_by_its_start_and_counted_by_its_end() -> None:
    clock = LocalClock(SHANGHAI)
    start = datetime(2026, 3, 31, 21, 45, tzinfo=SHANGHAI)
    rollup = ConsumptionRollup()
    rollup.add(
        [
            (1, start, start + timedelta(minutes=15), 5000, "ok", True),  # peak, hour 21
            (
                1,
                start + timedelta(minutes=15),
                datetime(2026, 4, 1, 0, 0, tzinfo=SHANGHAI),
                70000,
                "gap",
                True,
            ),
            (1, start, start + timedelta(minutes=15), 999, "negative", False),
        ],
        {1: MeterContext(1, 10, "e", clock, TouClassifier(TARIFF))},
    )
    hours = {row[4]: dict(zip(FIGURES, row[5:], strict=True)) for row in rollup.rows("hour")}
    assert hours[start.replace(minute=0)]["peak"] == 5000
    late = hours[datetime(2026, 3, 31, 23, tzinfo=SHANGHAI)]
    assert late["valley"] == 70000 and late["estimated"] == 1 and late["estimated_seconds"] == 7200
    (month,) = rollup.rows("month")
    assert month[4] == date(2026, 3, 1)
    figures = dict(zip(FIGURES, month[5:], strict=True))
    assert (figures["quantity"], figures["intervals"], figures["flagged"], figures["night"]) == (
        75000,
        3,
        1,
        0,
    )


def test_a_new_tariff_from_a_moment() -> None:
    clock = LocalClock(SHANGHAI)
    later = MeterContext(1, 10, "e", clock, TouClassifier(None))
    context = MeterContext(
        1, 10, "e", clock, TouClassifier(TARIFF), ((datetime(2026, 3, 2, tzinfo=SHANGHAI), later),)
    )
    rollup = ConsumptionRollup()
    noon = datetime(2026, 3, 1, 12, tzinfo=SHANGHAI)
    rollup.add(
        [(1, noon, noon + timedelta(hours=1), 10, "ok", True),
         (1, noon + timedelta(days=1), noon + timedelta(days=1, hours=1), 10, "ok", True)],
        {1: context},
    )  # fmt: skip
    (month,) = rollup.rows("month")
    assert dict(zip(FIGURES, month[5:], strict=True))["peak"] == 10


def test_costs_by_the_day_their_entries_end() -> None:
    clock = LocalClock(SHANGHAI)
    rollup = CostRollup()
    midnight = datetime(2026, 4, 1, tzinfo=SHANGHAI)
    rollup.add(
        [
            (1, 7, 3, "e", midnight, 120),
            (1, 7, 3, "e", midnight + timedelta(seconds=1), 80),
            (1, 7, 0, "", midnight - timedelta(hours=5), -30),
        ],
        {1: clock},
    )
    assert sorted(rollup.rows("day")) == [
        (1, 7, 0, "", date(2026, 3, 31), -30, 1),
        (1, 7, 3, "e", date(2026, 3, 31), 120, 1),
        (1, 7, 3, "e", date(2026, 4, 1), 80, 1),
    ]
    assert sorted(rollup.rows("month")) == [
        (1, 7, 0, "", date(2026, 3, 1), -30, 1),
        (1, 7, 3, "e", date(2026, 3, 1), 120, 1),
        (1, 7, 3, "e", date(2026, 4, 1), 80, 1),
    ]
