"""Bill lines name the engine's components in the reader's language."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import translation

from meterpay.apps.billing.consumption import line_label
from meterpay.core.tariffs import Line


def line(component: str, label: str) -> Line:
    return Line(
        month="2026-11",
        component=component,
        label=label,
        quantity=Decimal(1),
        unit="kWh",
        unit_price=Decimal(1),
        amount=Decimal(1),
    )


@pytest.mark.parametrize(
    ("component", "label", "expected"),
    [
        ("energy", "peak", "Electricity, peak"),
        ("energy", "valley tier 2", "Electricity, valley tier 2"),
        ("energy", "峰", "Electricity, 峰"),
        ("water", "water tier 3", "Water tier 3"),
        ("basic", "contract demand", "Basic charge by contract demand"),
        (
            "basic",
            "max demand up to 105% of contract",
            "Basic charge, maximum demand up to 105% of the contract",
        ),
        (
            "power_factor",
            "power factor 0.85 against 0.90",
            "Power-factor adjustment (0.85 against 0.90)",
        ),
        ("demand", "peak demand", "Demand charge, peak"),
        ("surcharge", "sewage", "sewage"),
        ("custom", "Rent", "Rent"),
    ],
)
def test_engine_labels_in_english(component: str, label: str, expected: str) -> None:
    with translation.override("en"):
        assert line_label(line(component, label)) == expected
