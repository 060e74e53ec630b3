from __future__ import annotations

import json
from decimal import Decimal

import pytest

from meterpay.core.tariffs.report import InputError, rate_texts, report_to_json, report_to_text

from .helpers import fixture_text

READINGS = "timestamp,kwh,kvarh,kw\n2024-07-01T07:00,100,,\n2024-07-01T08:00,100,10,\n2024-07-01T09:00,50.5,5,60\n"


def _report(tariff: str = "cn_commercial_tou_cpp.json", readings: str = READINGS):  # type: ignore[no-untyped-def]
    return rate_texts(
        tariff_text=fixture_text(tariff),
        tariff_name=tariff,
        readings_text=readings,
        readings_name="r.csv",
    )


def test_json_report_has_months_lines_and_decimal_strings() -> None:
    out = report_to_json(_report())
    assert out["currency"] == "CNY"
    # valley 100 x 0.2603 = 26.03; peak 150.5 x 1.0846 = 163.2323 → 163.23; fixed 10.00
    assert out["total"] == "199.26"
    assert out["months"] == [
        {"month": "2024-07", "energy": "189.26", "demand": "0.00", "fixed": "10.00",
         "minimum": "0.00", "adjustments": "0.00", "total": "199.26"}
    ]  # fmt: skip
    assert [line["amount"] for line in out["lines"]] == ["163.23", "26.03", "10.00"]
    assert json.loads(json.dumps(out)) == out


def test_text_report_lists_lines_and_totals() -> None:
    text = report_to_text(_report())
    assert "Tariff cn-commercial-tou-cpp" in text
    assert "2024-07" in text and "Total 199.26 CNY" in text
    assert "meter service" in text


def test_urdb_report_carries_warnings() -> None:
    readings = "timestamp,kwh\n2018-01-01T00:00,1\n2018-01-01T01:00,2\n"
    report = _report("urdb_api_response_tou_tiered.json", readings)
    out = report_to_json(report)
    assert out["currency"] == "USD"
    assert any("fueladjustmentsmonthly" in warning for warning in out["warnings"])
    assert "warning: " in report_to_text(report)
    assert Decimal(out["total"]) > 0


@pytest.mark.parametrize(
    ("tariff", "readings", "message"),
    [
        ("cn_commercial_tou_cpp.json", "timestamp,kwh\n2024-07-01T00:00,abc\n", "r.csv: row 2: kwh: 'abc' is not a decimal number"),
        ("cn_commercial_tou_cpp.json", "time,kwh\n", "r.csv: row 1: header must contain 'timestamp' (or 'start' and 'end')"),
        ("cn_commercial_tou_cpp.json", "timestamp,kwh\n2023-07-01T00:00,1\n", "r.csv: interval at 2023-07-01 00:00:00 is before the tariff's first version"),
        ("cn_two_part_demand_pf.json", "timestamp,kwh\n2024-07-01T00:00,1\n", "cn_two_part_demand_pf.json: versions[0].basic: needs the account's contract_demand_kw; give it in an account terms file (--account)"),
    ],
)  # fmt: skip
def test_bad_input_gives_one_line_naming_file_and_row(
    tariff: str, readings: str, message: str
) -> None:
    with pytest.raises(InputError) as caught:
        _report(tariff, readings)
    assert str(caught.value) == message


def test_bad_tariff_names_the_file_and_field() -> None:
    with pytest.raises(InputError) as caught:
        rate_texts(
            tariff_text='{"format": "meterpay-tariff/1"}',
            tariff_name="t.json",
            readings_text=READINGS,
            readings_name="r.csv",
        )
    assert str(caught.value) == "t.json: id: is required"
    with pytest.raises(InputError) as caught:
        rate_texts(
            tariff_text="{", tariff_name="t.json", readings_text=READINGS, readings_name="r.csv"
        )
    assert str(caught.value).startswith("t.json: document: not valid JSON")
