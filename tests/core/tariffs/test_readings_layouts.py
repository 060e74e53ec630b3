"""Readings CSV layouts: daily and monthly steps, explicit spans, registers, per-period
columns, water volumes."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from meterpay.core.tariffs import Interval, ReadingsError, parse_readings_csv
from meterpay.core.tariffs.readings import parse_interval_csv

TOU = ("flat", "sharp", "peak", "valley")


def _spans(text: str, periods: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    return [
        (iv.start.isoformat(), iv.end.isoformat())
        for iv in parse_readings_csv(text, periods=periods).intervals
    ]


def test_daily_readings_with_a_missing_day() -> None:
    readings = parse_readings_csv(
        "timestamp,kwh,kw\n2024-03-01,120.5,30\n2024-03-02T00:00,100,\n2024-03-04,90,28\n"
    )
    assert readings.step == "1 day" and readings.unit == "kWh" and readings.layout == "intervals"
    assert [(iv.start, iv.end - iv.start) for iv in readings.intervals] == [
        (datetime(2024, 3, 1), timedelta(days=1)),
        (datetime(2024, 3, 2), timedelta(days=1)),
        (datetime(2024, 3, 4), timedelta(days=1)),
    ]
    assert readings.intervals[0].kw == Decimal(30) and readings.intervals[1].kw is None
    assert readings.rows == (2, 3, 4)


def test_daily_readings_taken_in_the_morning() -> None:
    assert _spans("timestamp,kwh\n2024-03-01T08:00,1\n2024-03-02T08:00,2\n") == [
        ("2024-03-01T08:00:00", "2024-03-02T08:00:00"),
        ("2024-03-02T08:00:00", "2024-03-03T08:00:00"),
    ]


def test_monthly_readings_end_at_the_next_month_across_the_year_end() -> None:
    readings = parse_readings_csv(
        "timestamp,kwh\n2023-11-01,300\n2023-12-01,320\n2024-01-01,310\n2024-02-01,280\n2024-04-01,250\n"
    )
    assert readings.step == "1 month"
    assert [(iv.start.date().isoformat(), iv.end.date().isoformat()) for iv in readings.intervals] == [
        ("2023-11-01", "2023-12-01"),
        ("2023-12-01", "2024-01-01"),
        ("2024-01-01", "2024-02-01"),
        ("2024-02-01", "2024-03-01"),  # 29 days
        ("2024-04-01", "2024-05-01"),  # March missing
    ]  # fmt: skip


def test_explicit_spans_may_be_irregular_with_gaps() -> None:
    readings = parse_readings_csv(
        "start,end,kwh\n2024-03-01T00:00,2024-03-01T07:30,10\n"
        "2024-03-01T07:30,2024-03-03T00:00,40\n2024-03-05,2024-04-01,400\n"
    )
    assert readings.layout == "spans" and readings.step == "as given"
    assert [iv.end - iv.start for iv in readings.intervals] == [
        timedelta(hours=7, minutes=30),
        timedelta(days=1, hours=16, minutes=30),
        timedelta(days=27),
    ]


def test_per_period_columns_become_forced_intervals_with_kw_on_the_first() -> None:
    readings = parse_readings_csv(
        "start,end,Sharp,peak,flat,valley,kw,kvarh\n"
        "2024-07-01,2024-08-01,1000,20000,30000,25000,540,9000\n"
        "2024-08-01,2024-09-01,,100,,50,,\n",
        periods=TOU,
    )
    assert readings.period_columns == ("sharp", "peak", "flat", "valley")
    first = [iv for iv in readings.intervals if iv.start == datetime(2024, 7, 1)]
    assert [(iv.period, iv.quantity, iv.kw, iv.kvarh) for iv in first] == [
        ("sharp", Decimal(1000), Decimal(540), Decimal(9000)),
        ("peak", Decimal(20000), None, None),
        ("flat", Decimal(30000), None, None),
        ("valley", Decimal(25000), None, None),
    ]
    second = [(iv.period, iv.quantity) for iv in readings.intervals[4:]]
    assert second == [("peak", Decimal(100)), ("valley", Decimal(50))]
    assert readings.rows == (2, 2, 2, 2, 3, 3)


def test_a_total_column_with_period_columns_leaves_an_unforced_remainder() -> None:
    readings = parse_readings_csv(
        "timestamp,kwh,peak,valley\n2024-07-01,100,30,50\n2024-07-02,80,30,50\n2024-07-03,,1,2\n",
        periods=TOU,
    )
    assert [(iv.period, iv.quantity) for iv in readings.intervals] == [
        ("peak", 30), ("valley", 50), (None, 20),
        ("peak", 30), ("valley", 50),
        ("peak", 1), ("valley", 2),
    ]  # fmt: skip


def test_water_volumes() -> None:
    for column in ("m3", "volume_m3", "M3"):
        readings = parse_readings_csv(f"timestamp,{column}\n2024-01-01,10.5\n2024-02-01,12\n")
        assert readings.unit == "m3" and readings.step == "1 month"
        assert readings.quantity_column == column.lower()
        assert [iv.quantity for iv in readings.intervals] == [Decimal("10.5"), Decimal(12)]


def test_irregular_register_readings_with_tou_registers() -> None:
    readings = parse_readings_csv(
        "timestamp,register_kwh,register_kvarh,register_peak,register_valley\n"
        "2024-03-01T00:00,1000,100,600,400\n"
        "2024-03-03T09:17,1030,110,620,408\n"
        "2024-03-10T00:00,1040,112,,\n",
        periods=TOU,
    )
    assert readings.layout == "registers" and readings.step == "between readings"
    assert [(iv.period, iv.quantity, iv.kvarh) for iv in readings.intervals] == [
        ("peak", 20, 10), ("valley", 8, None), (None, 2, None), (None, 10, 2),
    ]  # fmt: skip
    assert readings.rows == (3, 3, 3, 4)
    assert readings.intervals[3].end == datetime(2024, 3, 10)
    water = parse_readings_csv("timestamp,register_m3\n2024-01-01,100\n2024-01-17,112.5\n")
    assert water.unit == "m3" and water.intervals == (
        Interval(datetime(2024, 1, 1), datetime(2024, 1, 17), Decimal("12.5")),
    )


def test_parse_interval_csv_keeps_its_list_form() -> None:
    assert parse_interval_csv("timestamp,kwh\n2024-01-01,1\n2024-01-02,2\n")[1].end == datetime(
        2024, 1, 3
    )


@pytest.mark.parametrize(
    ("text", "row", "problem"),
    [
        ("timestamp,kwh\n2024-01-15,1\n2024-02-15,1\n", 2, "timestamp: monthly readings must start on the 1st at 00:00"),
        ("timestamp,kwh\n2024-01-01,1\n2024-02-01,1\n2024-03-01T08:00,1\n", 4, "timestamp: monthly readings must start on the 1st at 00:00"),
        ("timestamp,kwh\n2024-01-01,1\n2024-01-02,1\n2024-01-03T12:00,1\n", 4, "timestamp: not on the daily grid"),
        ("timestamp,kwh\n2024-01-01,1\n2024-01-04,1\n", 3, "interval length 3 days is not 15, 30 or 60 min, a day or a month"),
        ("timestamp,kwh\n2024-01-01T00:00,1\n2024-01-01T02:00,1\n", 3, "interval length 120 min is not 15, 30 or 60 min, a day or a month"),
        ("timestamp,start,end,kwh\n", 1, "give 'timestamp' or 'start' and 'end', not both"),
        ("start,kwh\n", 1, "header must contain 'end'"),
        ("when,kwh\n", 1, "header must contain 'timestamp' (or 'start' and 'end')"),
        ("start,end,kwh\n2024-01-02,2024-01-01,1\n", 2, "end: not after start"),
        ("start,end,kwh\n2024-01-01,2024-01-03,1\n2024-01-02,2024-01-04,1\n", 3, "start: before the end of the previous row"),
        ("timestamp,kwh,m3\n", 1, "give only one of 'kwh', 'm3', 'volume_m3'"),
        ("timestamp,m3,kvarh\n", 1, "column 'kvarh' is for electricity, not with 'm3'"),
        ("timestamp,volume_m3,kw\n", 1, "column 'kw' is for electricity, not with 'volume_m3'"),
        ("timestamp,kwh,shoulder\n", 1, "unknown column 'shoulder' (the tariff's periods: flat, sharp, peak, valley)"),
        ("timestamp,kwh,peak\n2024-07-01,10,30\n", 2, "kwh: 10 is less than the sum of the period columns (30)"),
        ("timestamp,peak,valley\n2024-07-01,,\n", 2, "no quantity: give 'kwh' or a period"),
        ("timestamp,register_kwh\n2024-01-01,5\n", 2, "register readings need at least two rows"),
        ("timestamp,register_kwh\n2024-01-01,5\n2024-01-03,4\n", 3, "kWh register went backwards at 2024-01-03 00:00:00"),
        ("timestamp,register_kwh\n2024-01-03,5\n2024-01-01,6\n", 3, "timestamp: not later than the previous row"),
        ("timestamp,register_kwh,kwh\n", 1, "column 'kwh' cannot be combined with register columns"),
        ("timestamp,register_kwh,register_m3\n", 1, "register readings need one of 'register_kwh' (electricity) or 'register_m3'"),
        ("timestamp,register_m3,register_kvarh\n", 1, "column 'register_kvarh' is for electricity, not with 'register_m3'"),
        ("timestamp,register_kwh,register_peak\n2024-01-01,1,\n2024-01-02,2,1\n", 3, "TOU register 'peak' missing at 2024-01-01 00:00:00"),
    ],
)  # fmt: skip
def test_errors_name_the_row(text: str, row: int, problem: str) -> None:
    with pytest.raises(ReadingsError) as caught:
        parse_readings_csv(text, periods=TOU)
    assert (caught.value.row, caught.value.problem) == (row, problem)
