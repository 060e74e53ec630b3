"""Rating throughput: a year of hourly and of 15-minute data for many accounts.

Tariff: TOU energy + annual tiers (increments) + max-demand basic charge + power factor.
Prints readings/s for ``rate`` (batch), for real-time deduction (one reading at a time through
the accumulator), and for NREL PySAM's Utilityrate5 on the same loads when it is installed,
plus peak traced memory. It prints figures; it is not a test.

    uv run python bench/rating.py [--accounts 20]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from meterpay.core.tariffs import AccountTerms, Interval, RatingAccumulator, parse_tariff_json, rate

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # for tests.core.tariffs.pysam_adapter
TARIFF = (
    Path(__file__).resolve().parent.parent
    / "tests/core/tariffs/fixtures/cn_two_part_demand_pf.json"
)
YEAR_START = datetime(2024, 1, 1)  # the fixture starts in 2024


def _tariff_text() -> str:
    # The two-part fixture plus annual tiers on top of its TOU prices.
    text = TARIFF.read_text(encoding="utf-8")
    tiers = (
        '"tiers": {"cumulation": "year", "steps": [{"up_to": "200000", "increment": "0"}, '
        '{"up_to": "400000", "increment": "0.05"}, {"up_to": null, "increment": "0.3"}]},\n'
        '        "schedule"'
    )
    return text.replace('"schedule"', tiers, 1)


def _load(seed: int, steps_per_hour: int) -> list[Interval]:
    generator = random.Random(seed)
    step = timedelta(hours=1) / steps_per_hour
    intervals = []
    for index in range(8784 * steps_per_hour):  # 2024 is a leap year
        start = YEAR_START + index * step
        kw = 40 + 60 * (9 <= start.hour < 18) + 30 * generator.random()
        kwh = Decimal(round(kw / steps_per_hour, 3)).quantize(Decimal("0.001"))
        intervals.append(
            Interval(
                start, start + step, kwh, kvarh=(kwh * Decimal("0.4")).quantize(Decimal("0.001"))
            )
        )
    return intervals


def _measure(
    label: str, readings: int, work: Callable[[], object], memory_probe: Callable[[], object]
) -> None:
    """Time ``work`` untraced (tracemalloc slows Python several times), then trace a probe."""
    began = time.perf_counter()
    work()
    elapsed = time.perf_counter() - began
    tracemalloc.start()
    memory_probe()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"{label:<44}{readings:>10} readings {elapsed:>8.2f} s"
        f" {readings / elapsed:>10,.0f} readings/s  peak {peak / 2**20:>6.1f} MiB per account"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=20)
    args = parser.parse_args()
    tariff = parse_tariff_json(_tariff_text())
    account = AccountTerms(contract_demand_kw=Decimal(120))
    try:
        import PySAM.Utilityrate5  # noqa: F401
        from tests.core.tariffs.pysam_adapter import monthly_bills
    except ImportError:
        monthly_bills = None  # type: ignore[assignment]
    urdb_equivalent = {  # the same TOU prices and demand price, for PySAM
        "energyratestructure": [[{"rate": 0.6}], [{"rate": 0.9}], [{"rate": 0.3}]],
        "energyweekdayschedule": [[2] * 7 + [0] + [1] * 4 + [0] * 11 + [2] for _ in range(12)],
        "energyweekendschedule": [[2] * 7 + [0] + [1] * 4 + [0] * 11 + [2] for _ in range(12)],
        "flatdemandstructure": [[{"rate": 38}]],
        "flatdemandmonths": [0] * 12,
    }
    for steps_per_hour, name in ((1, "hourly"), (4, "15-minute")):
        _bench(tariff, account, args.accounts, steps_per_hour, name, monthly_bills, urdb_equivalent)


def _bench(
    tariff: Any,
    account: AccountTerms,
    accounts: int,
    steps_per_hour: int,
    name: str,
    monthly_bills: Any,
    urdb_equivalent: dict[str, Any],
) -> None:
    loads = [_load(seed, steps_per_hour) for seed in range(accounts)]
    readings = sum(len(load) for load in loads)
    print(f"\n{accounts} accounts x a year of {name} data")
    _measure(
        "meterpay rate (batch)",
        readings,
        lambda: [rate(tariff=tariff, intervals=load, account=account) for load in loads],
        lambda: rate(tariff=tariff, intervals=loads[0], account=account),
    )

    def streaming(subset: list[list[Interval]]) -> None:
        for load in subset:
            accumulator = RatingAccumulator(tariff=tariff, account=account)
            for interval in load:
                before = accumulator.month_total(interval.start.strftime("%Y-%m"))
                accumulator.add([interval])
                accumulator.month_total(interval.start.strftime("%Y-%m")) - before

    streamed = sum(len(load) for load in loads[: max(1, len(loads) // 10)])
    _measure(
        "meterpay real-time deduction (per reading)",
        streamed,
        lambda: streaming(loads[: max(1, len(loads) // 10)]),
        lambda: streaming(loads[:1]),
    )
    if monthly_bills is not None:
        # SAM rates a 365-day year: drop 31 December.
        kw_loads = [
            [float(iv.quantity) * steps_per_hour for iv in load[: 8760 * steps_per_hour]]
            for load in loads
        ]
        _measure(
            "NREL PySAM Utilityrate5",
            8760 * steps_per_hour * len(loads),
            lambda: [monthly_bills(urdb_equivalent, kw, include_minimum=False) for kw in kw_loads],
            lambda: monthly_bills(urdb_equivalent, kw_loads[0], include_minimum=False),
        )


if __name__ == "__main__":
    main()
