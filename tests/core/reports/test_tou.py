"""Time-of-use classification of intervals: the engine's own rule, checked against the engine
(every kWh a report puts in a period is a kWh the engine priced in that period)."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from meterpay.core.reports.tou import SLOTS, UNTIMED, TouClassifier, day_type, slot_of
from meterpay.core.tariffs import AccountTerms, Interval, RatingAccumulator, parse_tariff

PERIOD_NAMES = ["sharp", "peak", "flat", "valley", "deep_valley"]


def document(versions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "format": "meterpay-tariff/1",
        "id": "t",
        "name": "t",
        "currency": "CNY",
        "commodity": "electricity",
        "versions": versions,
    }


def hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@st.composite
def windows(draw: Any, names: list[str]) -> list[dict[str, str]]:
    cuts = sorted(draw(st.sets(st.integers(0, 95), min_size=2, max_size=8)))
    found = []
    for start, end in itertools.pairwise(cuts):
        if draw(st.booleans()):
            found.append(
                {
                    "start": hhmm(start * 15),
                    "end": hhmm(end * 15),
                    "period": draw(st.sampled_from(names)),
                }
            )
    if draw(st.booleans()):  # one wrapping midnight
        found.append({"start": "23:00", "end": "02:30", "period": draw(st.sampled_from(names))})
    return found


@st.composite
def tou_versions(draw: Any) -> list[dict[str, Any]]:
    count = draw(st.integers(1, 3))
    versions = []
    for index in range(count):
        names = draw(st.lists(st.sampled_from(PERIOD_NAMES), min_size=1, max_size=5, unique=True))
        energy: dict[str, Any] = {
            "periods": [{"name": n, "price": f"0.{i + 1}"} for i, n in enumerate(names)]
        }
        if len(names) > 1:
            rules = []
            for _ in range(draw(st.integers(1, 3))):
                rule: dict[str, Any] = {
                    "months": draw(st.sampled_from(["1-12", "6-8", "11-2", "3-5,9"])),
                    "windows": draw(windows(names)),
                }
                if draw(st.booleans()):
                    rule["day_types"] = draw(
                        st.lists(
                            st.sampled_from(["weekday", "weekend", "holiday"]),
                            min_size=1,
                            max_size=3,
                            unique=True,
                        )
                    )
                if draw(st.booleans()):
                    rule["default_period"] = draw(st.sampled_from(names))
                rules.append(rule)
            energy["schedule"] = rules
            if draw(st.booleans()):
                energy["critical_peak"] = [
                    {
                        "months": "7-8",
                        "windows": [{"start": "19:00", "end": "21:00", "period": names[0]}],
                    }
                ]
            energy["default_period"] = draw(st.sampled_from(names))
        version: dict[str, Any] = {
            "effective_from": (datetime(2025, 1, 1) + timedelta(days=40 * index)).isoformat()
        }
        version["energy"] = energy
        versions.append(version)
    return versions


@settings(max_examples=150, deadline=None)
@given(
    versions=tou_versions(),
    starts=st.lists(st.integers(0, 4 * 24 * 150), min_size=1, max_size=120, unique=True),
    step=st.sampled_from([15, 30, 60]),
    holidays=st.sets(st.integers(0, 150), max_size=10),
)
def test_periods_are_the_engines(
    versions: list[dict[str, Any]], starts: list[int], step: int, holidays: set[int]
) -> None:
    tariff = parse_tariff(document(versions))
    days_off = frozenset(date(2025, 1, 1) + timedelta(days=d) for d in holidays)
    origin = datetime(2025, 1, 1)
    intervals = [
        Interval(
            origin + timedelta(minutes=15 * s),
            origin + timedelta(minutes=15 * s + step),
            Decimal(s % 7 + 1),
        )
        for s in sorted(starts)
        if s % (step // 15) == 0
    ]
    if not intervals:
        return
    engine = RatingAccumulator(tariff=tariff, account=AccountTerms(holidays=days_off))
    engine.add(intervals)
    priced: dict[str, Decimal] = {}
    for month in engine.to_state()["months"].values():
        for version, period, _tier, quantity in month["energy"]:
            if len(tariff.versions[version].energy.periods) > 1:  # type: ignore[union-attr]
                priced[period] = priced.get(period, Decimal(0)) + Decimal(quantity)
    classifier = TouClassifier(tariff, days_off)
    found: dict[str, Decimal] = {}
    untimed = Decimal(0)
    for interval in intervals:
        period = classifier.period(interval.start)
        if period is None:
            untimed += interval.quantity
        else:
            found[period] = found.get(period, Decimal(0)) + interval.quantity
    assert found == priced
    # a single-price version is untimed, whatever its period is called
    single = sum((i.quantity for i in intervals if classifier.period(i.start) is None), Decimal(0))
    assert single == untimed
    assert sum(found.values(), Decimal(0)) + untimed == sum(
        (i.quantity for i in intervals), Decimal(0)
    )


def test_a_worked_day() -> None:
    tariff = parse_tariff(
        document(
            [
                {
                    "effective_from": "2025-01-01T00:00:00",
                    "energy": {
                        "periods": [
                            {"name": "sharp", "price": "1.3"},
                            {"name": "peak", "price": "1.0"},
                            {"name": "flat", "price": "0.65"},
                            {"name": "valley", "price": "0.3"},
                            {"name": "deep_valley", "price": "0.2"},
                        ],
                        "schedule": [
                            {
                                "months": "1-12",
                                "day_types": ["holiday"],
                                "windows": [
                                    {"start": "00:00", "end": "08:00", "period": "deep_valley"}
                                ],
                            },
                            {
                                "months": "1-12",
                                "windows": [
                                    {"start": "00:00", "end": "08:00", "period": "valley"},
                                    {"start": "10:00", "end": "10:30", "period": "sharp"},
                                    {"start": "08:00", "end": "12:00", "period": "peak"},
                                ],
                                "default_period": "flat",
                            },
                        ],
                    },
                }
            ]
        )
    )
    holiday = date(2025, 5, 1)
    classify = TouClassifier(tariff, frozenset({holiday}))
    day = datetime(2025, 4, 30)
    assert [classify.period(day + timedelta(minutes=m)) for m in (0, 480, 600, 615, 630, 720)] == [
        "valley", "peak", "sharp", "sharp", "peak", "flat",
    ]  # fmt: skip
    assert classify.period(datetime(2025, 5, 1, 3)) == "deep_valley"
    assert classify.slot(datetime(2025, 5, 1, 3)) == SLOTS.index("other")
    assert classify.period(datetime(2024, 12, 31, 23)) is None  # before the first version
    assert classify.timed
    assert not TouClassifier(None).timed and TouClassifier(None).slot(day) == UNTIMED


def test_day_types_and_slots() -> None:
    assert day_type(date(2025, 5, 3), frozenset()) == "weekend"
    assert day_type(date(2025, 5, 5), frozenset({date(2025, 5, 5)})) == "holiday"
    assert day_type(date(2025, 5, 6), frozenset()) == "weekday"
    assert [slot_of(n) for n in ("sharp", "peak", "flat", "valley", "on", None)] == [
        0,
        1,
        2,
        3,
        4,
        5,
    ]
