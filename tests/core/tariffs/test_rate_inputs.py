"""``meterpay rate`` inputs without Django: account terms, coarse readings, water, and the
reading-by-reading (incremental) deductions."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meterpay.core.tariffs.report import (
    InputError,
    incremental_texts,
    incremental_to_json,
    incremental_to_text,
    rate_texts,
    report_to_json,
    report_to_text,
)

from .helpers import fixture_text, simple_document

CONTRACT = "cn_two_part_contract_demand.json"
ACCOUNT = '{"contract_demand_kw": "500"}'
MONTH_BY_PERIOD = (
    "start,end,sharp,peak,flat,valley,kw\n2024-07-01,2024-08-01,1000,20000,30000,25000,540\n"
)
DAILY_BY_PERIOD = (
    "timestamp,sharp,peak,flat,valley,kw\n"
    "2024-07-01,10,200,300,250,480\n"
    "2024-07-02,10,200,300,250,520\n"
    "2024-07-03,0,100,100,100,540\n"
    "2024-08-01,5,5,5,5,100\n"
)


def _texts(
    tariff: str, readings: str, account: str | None = None, *, tariff_text: str | None = None
) -> dict[str, Any]:
    return {
        "tariff_text": tariff_text if tariff_text is not None else fixture_text(tariff),
        "tariff_name": tariff,
        "readings_text": readings,
        "readings_name": "r.csv",
        "account_text": account,
        "account_name": "a.json",
    }


def _document_text(**version: Any) -> str:
    return json.dumps(simple_document(**version))


def test_a_monthly_bill_by_period_with_contract_demand() -> None:
    report = rate_texts(**_texts(CONTRACT, MONTH_BY_PERIOD, ACCOUNT))
    out = report_to_json(report)
    # flat 30,000 x 0.6270 = 18,810.00; sharp 1,000 x 1.1286 = 1,128.60;
    # peak 20,000 x 0.9405 = 18,810.00; valley 25,000 x 0.3135 = 7,837.50;
    # basic: 525 x 38 = 19,950.00 and 15 x 76 = 1,140.00
    assert [(line["label"], line["amount"]) for line in out["lines"]] == [
        ("flat", "18810.00"),
        ("sharp", "1128.60"),
        ("peak", "18810.00"),
        ("valley", "7837.50"),
        ("max demand up to 105% of contract", "19950.00"),
        ("max demand overrun", "1140.00"),
    ]
    assert out["total"] == "67676.10"
    assert out["readings"] == {"layout": "spans", "step": "as given", "unit": "kWh", "rows": 1}
    assert "Readings: 1 row, as given, kWh" in report_to_text(report)


def test_carried_in_tier_usage_from_the_account_with_monthly_period_readings() -> None:
    readings = "timestamp,peak,valley\n2024-03-01,100,50\n"
    report = rate_texts(
        **_texts("cn_residential_annual_tou.json", readings, '{"tier_usage_carried_in": 2700}')
    )
    # 2,700 already used of the 2,760 kWh first step; the row's columns in order:
    # peak 60 x 0.5683 = 34.10, peak 40 x 0.6183 = 24.73, valley 50 x 0.3383 = 16.92
    assert [(line.label, str(line.amount)) for line in report.bill.lines] == [
        ("peak tier 1", "34.10"),
        ("peak tier 2", "24.73"),
        ("valley tier 2", "16.92"),
    ]


def test_holidays_from_the_account_choose_the_holiday_period() -> None:
    tariff = _document_text(
        energy={
            "periods": [{"name": "flat", "price": "0.6"}, {"name": "holiday", "price": "0.2"}],
            "schedule": [{"months": "1-12", "day_types": ["holiday"], "windows": [],
                          "default_period": "holiday"}],
        }
    )  # fmt: skip
    readings = "timestamp,kwh\n2024-10-01T10:00,100\n2024-10-01T11:00,100\n"
    plain = rate_texts(**_texts("t.json", readings, None, tariff_text=tariff))
    holiday = rate_texts(
        **_texts("t.json", readings, '{"holidays": ["2024-10-01"]}', tariff_text=tariff)
    )
    assert plain.bill.total == Decimal("120.00")  # 200 x 0.6
    assert holiday.bill.total == Decimal("40.00")  # 200 x 0.2
    # daily readings: each day lies in one period, so no per-period columns are needed
    daily = "timestamp,kwh\n2024-10-01,100\n2024-10-02,100\n"
    assert rate_texts(**_texts("t.json", daily, None, tariff_text=tariff)).bill.total == Decimal(
        "120.00"
    )
    both = '{"holidays": ["2024-10-01", "2024-10-02"]}'
    assert rate_texts(**_texts("t.json", daily, both, tariff_text=tariff)).bill.total == Decimal(
        "40.00"
    )


def test_water_in_cubic_metres_daily() -> None:
    readings = "timestamp,m3\n2024-01-01,0.5\n2024-01-02,0.75\n"
    report = rate_texts(**_texts("water_stepped.json", readings))
    # 1.25 m³ x 3.64 = 4.55; sewage 1.25 x 1.36 = 1.70; meter rent 2.00
    assert report.bill.total == Decimal("8.25")
    assert report.readings is not None and report.readings.unit == "m3"
    assert "Readings: 2 rows, 1 day, m³" in report_to_text(report)


@pytest.mark.parametrize(
    ("tariff", "readings", "account", "message"),
    [
        ("water_stepped.json", "timestamp,kwh\n2024-01-01,1\n", None,
         "r.csv: row 1: the tariff water-residential-stepped is for water: give m³ readings (column 'm3' or 'volume_m3'), not 'kwh'"),
        ("cn_commercial_tou_cpp.json", "timestamp,volume_m3\n2024-07-01T00:00,1\n", None,
         "r.csv: row 1: the tariff cn-commercial-tou-cpp is for electricity: give kWh readings (column 'kwh'), not 'volume_m3'"),
        (CONTRACT, MONTH_BY_PERIOD, '{"contract_demand_kw": "abc"}',
         "a.json: contract_demand_kw: 'abc' is not a number"),
        (CONTRACT, MONTH_BY_PERIOD, "{", "a.json: document: not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        (CONTRACT, MONTH_BY_PERIOD, '{"capacity_kva": "630"}',
         "a.json: contract_demand_kw: missing: the tariff's contract rule cn_two_part needs it (cn_two_part_contract_demand.json: versions[0].basic)"),
        (CONTRACT, MONTH_BY_PERIOD, None,
         "cn_two_part_contract_demand.json: versions[0].basic: needs the account's contract_demand_kw; give it in an account terms file (--account)"),
        ("cn_residential_annual_tou.json", "timestamp,kwh\n2024-03-01,1\n", '{"tier_thresholds": ["100"]}',
         "a.json: tier_thresholds: 1 given, the tariff has 2 tier thresholds (cn_residential_annual_tou.json: versions[0].energy.tiers)"),
        # daily totals cannot be split into TOU periods
        ("cn_residential_annual_tou.json", "timestamp,kwh\n2024-03-01,1\n2024-03-02,1\n", None,
         "r.csv: row 2: the reading 2024-03-01 00:00 to 2024-03-02 00:00 spans the tariff's TOU periods peak, valley: give per-period columns (peak, valley) or readings of an hour or less"),
        # maximum demand from daily readings needs the meter's kW
        (CONTRACT, "timestamp,sharp,peak,flat,valley\n2024-07-01,10,200,300,250\n", ACCOUNT,
         "r.csv: row 2: the tariff charges maximum demand: readings longer than an hour or split by period need a 'kw' column (the reading's maximum demand)"),
        (CONTRACT, "timestamp,kwh,kw\n2024-07-01T00:00,1,4\n2024-07-01T01:00,1,\n2024-07-01T03:00,1,\n", ACCOUNT, None),
        (CONTRACT, "timestamp,peak\n2024-07-01T09:00,1\n", ACCOUNT,
         "r.csv: row 2: the tariff charges maximum demand: readings longer than an hour or split by period need a 'kw' column (the reading's maximum demand)"),
        ("cn_commercial_tou_cpp.json", "timestamp,kwh\n2024-07-01T00:00,1\n2024-07-01T02:00,1\n", None,
         "r.csv: row 3: interval length 120 min is not 15, 30 or 60 min, a day or a month"),
    ],
)  # fmt: skip
def test_input_problems_are_one_line_naming_the_file(
    tariff: str, readings: str, account: str | None, message: str | None
) -> None:
    if message is None:
        rate_texts(**_texts(tariff, readings, account))  # hourly data: kWh/h is the demand
        return
    with pytest.raises(InputError) as caught:
        rate_texts(**_texts(tariff, readings, account))
    assert str(caught.value) == message


def test_a_tou_demand_charge_needs_readings_of_an_hour_or_less() -> None:
    tariff = _document_text(
        energy={"periods": [{"name": "flat", "price": "0.5"}]},
        demand={
            "periods": [{"name": "on", "tiers": [{"up_to": None, "price": "8.75"}]},
                        {"name": "off", "tiers": [{"up_to": None, "price": "1"}]}],
            "schedule": [{"months": "1-12", "windows": [{"start": "12:00", "end": "18:00", "period": "on"}],
                          "default_period": "off"}],
        },
    )  # fmt: skip
    with pytest.raises(InputError, match="TOU demand charge needs readings of an hour or less"):
        rate_texts(**_texts("t.json", "timestamp,kwh,kw\n2024-07-01,10,5\n2024-07-02,10,5\n", None, tariff_text=tariff))  # fmt: skip


def test_single_price_tariffs_take_daily_and_monthly_totals() -> None:
    tariff = _document_text(energy={"periods": [{"name": "flat", "price": "0.5"}]})
    for readings in ("timestamp,kwh\n2024-07-01,10\n2024-07-02,20\n",
                     "timestamp,kwh\n2024-07-01,10\n2024-08-01,20\n",
                     "timestamp,register_kwh\n2024-07-01T07:13,100\n2024-07-20T18:02,130\n"):  # fmt: skip
        report = rate_texts(**_texts("t.json", readings, None, tariff_text=tariff))
        assert report.bill.total in {Decimal("15.00")}


# ---------------------------------------------------------------------- incremental


def test_incremental_deductions_hand_checked() -> None:
    report = incremental_texts(**_texts(CONTRACT, DAILY_BY_PERIOD, ACCOUNT))
    # 1 July: contract 500 x 38 = 19,000 (max 480) + energy 11.29 + 188.10 + 188.10 + 78.38
    # 2 July: max 520 is within 105 %: energy only, 11.28 + 188.10 + 188.10 + 78.37
    # 3 July: max 540: basic 19,000 → 21,090 (+2,090) + energy 94.05 + 62.70 + 31.35
    # 1 August: the new month's contract demand 19,000 + 5.64 + 4.70 + 3.14 + 1.57
    assert [(row.row, str(row.quantity), str(row.amount), str(row.running_total))
            for row in report.deductions] == [
        (2, "760", "19465.87", "19465.87"),
        (3, "760", "465.85", "19931.72"),
        (4, "300", "2278.10", "22209.82"),
        (5, "20", "19015.05", "41224.87"),
    ]  # fmt: skip
    assert report.total == report.bill.total == Decimal("41224.87") and report.equal
    text = incremental_to_text(report)
    assert "Sum of deductions 41224.87 CNY equals the full rating's total 41224.87 CNY" in text
    assert "2024-07-04T00:00:00" in text
    out = incremental_to_json(report)
    assert out["deductions"][2] == {
        "row": 4,
        "start": "2024-07-03T00:00:00",
        "end": "2024-07-04T00:00:00",
        "quantity": "300",
        "amount": "2278.10",
        "running_total": "22209.82",
    }
    assert (out["total"], out["bill_total"], out["equal"]) == ("41224.87", "41224.87", True)
    assert json.loads(json.dumps(out)) == out


PROPERTY_TARIFFS = {
    "tiers": _document_text(
        energy={
            "periods": [{"name": "flat", "price": "0.5683"}],
            "tiers": {"cumulation": "month", "steps": [
                {"up_to": "40", "increment": "0"}, {"up_to": "90", "increment": "0.05"},
                {"up_to": None, "increment": "0.3"}]},
        },
        fixed_charges=[{"name": "meter", "amount": "10"}],
        minimum_charge="25",
    ),
    "contract": fixture_text(CONTRACT),
    "water": fixture_text("water_stepped.json"),
    "rent": fixture_text("apartment_rent.json"),
}  # fmt: skip
PERIODS = ("sharp", "peak", "flat", "valley")
values = st.decimals(min_value=0, max_value=Decimal("40"), places=2)


@st.composite
def daily_csv(draw: st.DrawFn, tariff: str) -> str:
    first = date(2024, draw(st.integers(1, 11)), draw(st.integers(1, 28)))
    # two consecutive days make the step a day; later days may leave gaps
    days = sorted({0, 1, *draw(st.lists(st.integers(2, 70), max_size=23))})
    if tariff == "contract":
        rows = ["timestamp,sharp,peak,flat,valley,kw"] + [
            ",".join([(first + timedelta(days=d)).isoformat(),
                      *(str(draw(values)) for _ in PERIODS), str(draw(values) * 20)])
            for d in days
        ]  # fmt: skip
    else:
        column = "m3" if tariff == "water" else "kwh"
        rows = [f"timestamp,{column}"] + [
            f"{(first + timedelta(days=d)).isoformat()},{draw(values)}" for d in days
        ]
    return "\n".join(rows) + "\n"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), tariff=st.sampled_from(sorted(PROPERTY_TARIFFS)))
def test_incremental_sum_equals_the_full_rating_for_daily_data(
    data: st.DataObject, tariff: str
) -> None:
    readings = data.draw(daily_csv(tariff))
    account = json.dumps(
        {"contract_demand_kw": str(data.draw(st.integers(1, 900))), "room_area_m2": "42.5",
         "move_in": "2024-01-10", "holidays": ["2024-05-01"]}
    )  # fmt: skip
    texts = _texts(tariff, readings, account, tariff_text=PROPERTY_TARIFFS[tariff])
    report = incremental_texts(**texts)
    assert report.total == report.bill.total
    assert report.bill.total == rate_texts(**texts).bill.total
    assert len(report.deductions) == readings.count("\n") - 1
    assert report.deductions[-1].running_total == report.total
