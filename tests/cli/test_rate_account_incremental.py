"""``meterpay rate --account`` and ``--incremental`` end to end (call_command, files on disk)."""

from __future__ import annotations

import json
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from meterpay.cli.management.commands.rate import Command

FIXTURES = Path(__file__).parent.parent / "core" / "tariffs" / "fixtures"
CONTRACT = str(FIXTURES / "cn_two_part_contract_demand.json")
DAILY = (
    "timestamp,sharp,peak,flat,valley,kw\n"
    "2024-07-01,10,200,300,250,480\n"
    "2024-07-02,10,200,300,250,520\n"
    "2024-07-03,0,100,100,100,540\n"
    "2024-08-01,5,5,5,5,100\n"
)


def _file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def _run(*args: str) -> tuple[str, str, int]:
    out, err = StringIO(), StringIO()
    try:
        call_command("rate", *args, stdout=out, stderr=err)
    except SystemExit as exit_:
        return out.getvalue(), err.getvalue(), int(exit_.code or 0)
    return out.getvalue(), err.getvalue(), 0


def test_account_terms_file_bills_the_contract_demand(tmp_path: Path) -> None:
    readings = _file(
        tmp_path,
        "month.csv",
        "start,end,sharp,peak,flat,valley,kw\n2024-07-01,2024-08-01,1000,20000,30000,25000,540\n",
    )
    account = _file(tmp_path, "account.json", '{"contract_demand_kw": 500}')
    out, err, code = _run(
        "--tariff", CONTRACT, "--readings", readings, "--account", account, "--json"
    )
    assert (code, err) == (0, "")
    result = json.loads(out)
    # energy 46,586.10 + basic 525 x 38 + 15 x 76 = 21,090.00
    assert result["total"] == "67676.10"
    assert result["months"][0]["demand"] == "21090.00"


def test_bad_account_file_exits_2_with_one_line(tmp_path: Path) -> None:
    readings = _file(tmp_path, "r.csv", DAILY)
    account = _file(tmp_path, "account.json", '{"contract_demand_kw": "abc"}')
    out, err, code = _run("--tariff", CONTRACT, "--readings", readings, "--account", account)
    assert code == 2 and out == ""
    assert err.strip() == f"{account}: contract_demand_kw: 'abc' is not a number"
    _, err, code = _run(
        "--tariff", CONTRACT, "--readings", readings, "--account", str(tmp_path / "none.json")
    )
    assert code == 2 and err.startswith(f"{tmp_path / 'none.json'}: cannot read")
    _, err, code = _run("--tariff", CONTRACT, "--readings", readings)
    assert code == 2
    assert "needs the account's contract_demand_kw" in err and err.count("\n") == 1


def test_incremental_prints_each_reading_and_the_equal_sum(tmp_path: Path) -> None:
    readings = _file(tmp_path, "r.csv", DAILY)
    account = _file(tmp_path, "account.json", '{"contract_demand_kw": "500"}')
    args = ("--tariff", CONTRACT, "--readings", readings, "--account", account)
    out, err, code = _run(*args, "--incremental")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert "Readings: 4 rows, 1 day, kWh" in lines
    assert lines[-1] == (
        "Sum of deductions 41224.87 CNY equals the full rating's total 41224.87 CNY"
    )
    assert [line.split() for line in lines if line.strip().startswith(("2 ", "5 "))] == [
        ["2", "2024-07-02T00:00:00", "760", "19465.87", "19465.87"],
        ["5", "2024-08-02T00:00:00", "20", "19015.05", "41224.87"],
    ]
    out, _, code = _run(*args, "--incremental", "--json")
    result = json.loads(out)
    assert code == 0 and result["equal"] is True
    assert [row["amount"] for row in result["deductions"]] == [
        "19465.87",
        "465.85",
        "2278.10",
        "19015.05",
    ]
    assert sum(Decimal(row["amount"]) for row in result["deductions"]) == Decimal(
        result["bill_total"]
    )
    full, _, _ = _run(*args, "--json")
    assert json.loads(full)["total"] == result["total"] == "41224.87"


def test_water_readings_in_cubic_metres(tmp_path: Path) -> None:
    water = str(FIXTURES / "water_stepped.json")
    readings = _file(tmp_path, "w.csv", "timestamp,volume_m3\n2024-01-01,10\n2024-02-01,12\n")
    out, _, code = _run("--tariff", water, "--readings", readings)
    # January 10 m³ x (3.64 + 1.36) + 2.00 = 52.00; February 12 m³: 60.00 + 2.00
    assert code == 0 and "Total 114.00 CNY" in out
    kwh = _file(tmp_path, "e.csv", "timestamp,kwh\n2024-01-01,10\n")
    _, err, code = _run("--tariff", water, "--readings", kwh)
    assert code == 2
    assert err.strip() == (
        f"{kwh}: row 1: the tariff water-residential-stepped is for water: give m³ readings "
        "(column 'm3' or 'volume_m3'), not 'kwh'"
    )
    _, err, code = _run(
        "--tariff", str(FIXTURES / "cn_commercial_tou_cpp.json"), "--readings", readings
    )
    assert code == 2 and "is for electricity: give kWh readings" in err


def test_help_documents_the_files() -> None:
    text = Command().create_parser("meterpay", "rate").format_help()
    for needle in (
        "--account",
        "--incremental",
        "start,end,sharp,peak,flat,valley",
        '"contract_demand_kw": "500"',
        "volume_m3",
    ):
        assert needle in text


@pytest.mark.parametrize("flag", [(), ("--incremental",)])
def test_daily_totals_on_a_tou_tariff_are_refused(tmp_path: Path, flag: tuple[str, ...]) -> None:
    readings = _file(tmp_path, "r.csv", "timestamp,kwh,kw\n2024-07-01,100,50\n2024-07-02,100,50\n")
    account = _file(tmp_path, "a.json", '{"contract_demand_kw": "500"}')
    _, err, code = _run("--tariff", CONTRACT, "--readings", readings, "--account", account, *flag)
    assert code == 2
    assert err.startswith(f"{readings}: row 2: the reading 2024-07-01 00:00 to 2024-07-02 00:00")
