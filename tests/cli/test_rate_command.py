"""``meterpay rate`` through Django's call_command (needs the project settings)."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

FIXTURES = Path(__file__).parent.parent / "core" / "tariffs" / "fixtures"


def _readings(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "readings.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_rate_prints_json_totals(tmp_path: Path) -> None:
    readings = _readings(tmp_path, "timestamp,kwh\n2024-07-01T07:00,100\n2024-07-01T08:00,100\n")
    out = StringIO()
    call_command(
        "rate",
        "--tariff",
        str(FIXTURES / "cn_commercial_tou_cpp.json"),
        "--readings",
        str(readings),
        "--json",
        stdout=out,
    )
    result = json.loads(out.getvalue())
    # valley 100 x 0.2603 = 26.03, peak 100 x 1.0846 = 108.46, fixed 10.00
    assert result["total"] == "144.49"
    assert result["months"][0]["month"] == "2024-07"


def test_rate_prints_text_for_a_urdb_rate(tmp_path: Path) -> None:
    readings = _readings(tmp_path, "timestamp,kwh\n2018-01-01T00:00,600\n")
    out = StringIO()
    call_command(
        "rate",
        "--tariff",
        str(FIXTURES / "urdb_residential_tiered.json"),
        "--readings",
        str(readings),
        stdout=out,
    )
    # 500 x 0.0912 = 45.60; 100 x (0.1034 + 0.0041) = 10.75; fixed 12.50
    assert "Total 68.85 USD" in out.getvalue()


def test_bad_readings_exit_2_with_one_line(tmp_path: Path) -> None:
    readings = _readings(tmp_path, "timestamp,kwh\n2024-07-01T07:00,-1\n")
    err = StringIO()
    with pytest.raises(SystemExit) as caught:
        call_command(
            "rate",
            "--tariff",
            str(FIXTURES / "cn_commercial_tou_cpp.json"),
            "--readings",
            str(readings),
            stderr=err,
        )
    assert caught.value.code == 2
    assert err.getvalue().strip() == f"{readings}: row 2: kwh: must not be negative"


def test_missing_file_exit_2(tmp_path: Path) -> None:
    err = StringIO()
    with pytest.raises(SystemExit) as caught:
        call_command(
            "rate",
            "--tariff",
            str(tmp_path / "nope.json"),
            "--readings",
            str(tmp_path / "r.csv"),
            stderr=err,
        )
    assert caught.value.code == 2
    assert err.getvalue().startswith(f"{tmp_path / 'nope.json'}: cannot read")
