"""Shared builders for tariff tests."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from meterpay.core.tariffs import Interval, Tariff, parse_tariff
from meterpay.core.tariffs.loading import load_tariff_text

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def fixture_json(name: str) -> Any:
    return json.loads(fixture_text(name))


def fixture_tariff(name: str) -> Tariff:
    return load_tariff_text(fixture_text(name)).tariff


def hourly(
    start: datetime,
    quantities: Sequence[Decimal | str | int],
    *,
    minutes: int = 60,
    kvarh: Sequence[Decimal | str | int] | None = None,
) -> list[Interval]:
    step = timedelta(minutes=minutes)
    return [
        Interval(
            start=start + index * step,
            end=start + (index + 1) * step,
            quantity=Decimal(str(quantity)),
            kvarh=None if kvarh is None else Decimal(str(kvarh[index])),
        )
        for index, quantity in enumerate(quantities)
    ]


def simple_document(**version: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"effective_from": "2024-01-01T00:00:00"}
    base.update(version)
    return {
        "format": "meterpay-tariff/1",
        "id": "test",
        "name": "Test tariff",
        "currency": "CNY",
        "commodity": "water" if "water" in version else "electricity",
        "versions": [base],
    }


def single_price(price: str = "0.5", **extra: Any) -> Tariff:
    return parse_tariff(
        simple_document(energy={"periods": [{"name": "flat", "price": price}]}, **extra)
    )
