"""Differential tests: meterpay's rating of URDB rates against NREL PySAM (Utilityrate5).

SAM rates a non-leap year starting on a Monday (2018 matches), with weekday/weekend
schedules and no holidays. Tiers combined with TOU: SAM splits the month's tiers over periods
in proportion, meterpay allocates chronologically; the two agree when tier prices are
additive (period price + tier increment), which the fixtures are.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from meterpay.core.tariffs import Interval, rate
from meterpay.core.tariffs.urdb import tariff_from_urdb

from .helpers import fixture_text

pytest.importorskip("PySAM.Utilityrate5")

from .pysam_adapter import monthly_bills

YEAR_START = datetime(2018, 1, 1)  # a Monday, like SAM's year


def _profile(seed: int, steps_per_hour: int, *, base: float, swing: float) -> list[Decimal]:
    """kWh per interval, 3 decimals: a daily shape, a summer bump and noise."""
    generator = random.Random(seed)
    values = []
    for step in range(8760 * steps_per_hour):
        moment = YEAR_START + timedelta(hours=step / steps_per_hour)
        daily = 1.0 + (0.8 if 11 <= moment.hour < 20 else 0.0)
        seasonal = 1.6 if 6 <= moment.month <= 9 else 1.0
        kw = base * daily * seasonal + swing * generator.random()
        values.append(Decimal(str(round(kw / steps_per_hour, 3))))
    return values


CASES = [
    ("urdb_residential_tiered.json", 1, 0.6, 1.2, 11),
    ("urdb_residential_tiered.json", 4, 0.2, 0.6, 12),
    ("urdb_residential_tiered.json", 1, 0.01, 0.02, 13),  # under the minimum charge
    ("urdb_commercial_tou_demand.json", 4, 22.0, 30.0, 21),
    ("urdb_commercial_tou_demand.json", 1, 10.0, 60.0, 22),
    ("urdb_api_response_tou_tiered.json", 1, 0.3, 0.9, 31),
    ("urdb_api_response_tou_tiered.json", 2, 0.1, 0.5, 32),
]


@pytest.mark.parametrize(("fixture", "steps_per_hour", "base", "swing", "seed"), CASES)
def test_monthly_bills_match_pysam(
    fixture: str, steps_per_hour: int, base: float, swing: float, seed: int
) -> None:
    document = json.loads(fixture_text(fixture))
    urdb_rate = document["items"][0] if "items" in document else document
    tariff, _warnings = tariff_from_urdb(json.loads(fixture_text(fixture), parse_float=Decimal))
    kwh = _profile(seed, steps_per_hour, base=base, swing=swing)
    step = timedelta(hours=1) / steps_per_hour
    intervals = [
        Interval(YEAR_START + i * step, YEAR_START + (i + 1) * step, q) for i, q in enumerate(kwh)
    ]
    load_kw = [float(q) * steps_per_hour for q in kwh]
    include_minimum = tariff.versions[0].minimum_charge is not None
    expected = monthly_bills(urdb_rate, load_kw, include_minimum=include_minimum)
    months = rate(tariff=tariff, intervals=intervals).months()
    assert len(months) == 12
    lines_per_month: dict[str, int] = {}
    bill = rate(tariff=tariff, intervals=intervals)
    for line in bill.lines:
        lines_per_month[line.month] = lines_per_month.get(line.month, 0) + 1
    for ours, theirs in zip(months, expected, strict=True):
        # Each of our lines is rounded to the cent; SAM does not round.
        tolerance = Decimal("0.005") * lines_per_month[ours.month] + Decimal("0.000001")
        for category in ("energy", "demand", "fixed", "minimum", "total"):
            sam = Decimal(repr(theirs[category]))
            assert abs(getattr(ours, category) - sam) <= tolerance, (
                ours.month,
                category,
                getattr(ours, category),
                sam,
            )
