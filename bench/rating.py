"""Rating throughput: a year of hourly and of 15-minute data for many accounts.

Tariff: TOU energy + annual tiers (increments) + max-demand basic charge + power factor.
Per scenario it prints readings/s of

* batch rating: the Decimal engine (``rate``), the vectorised fast path from columnar arrays
  (``rate_arrays``) and from ``Interval`` objects (``rate_fast``, conversion included), and
  NREL PySAM's Utilityrate5 on the same loads when it is installed;
* real-time deduction, one reading at a time: the Decimal ``RatingAccumulator``, the
  ``FastAccumulator`` kept in memory, and ``fast_incremental_charge`` with the state
  persisted as JSON text between readings;

with the best and the median of ``--repeat`` runs, and the peak traced memory per account.
Slow paths run on a subset of the accounts (the count of readings is printed). It checks
that the fast bills and deductions equal the Decimal ones. It prints figures; it is not a
test. Run it on one core:

    taskset -c 0 uv run python bench/rating.py [--accounts 20] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from meterpay.core.tariffs import AccountTerms, Interval, RatingAccumulator, parse_tariff_json, rate
from meterpay.core.tariffs.fast import HAVE_NUMPY, IntervalArrays, rate_arrays, rate_fast
from meterpay.core.tariffs.streaming import FastAccumulator, fast_incremental_charge

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
    label: str,
    readings: int,
    work: Callable[[], object],
    memory_probe: Callable[[], object],
    repeat: int,
) -> None:
    """Time ``work`` untraced (tracemalloc slows Python several times), then trace a probe."""
    rates = []
    for _ in range(repeat):
        began = time.perf_counter()
        work()
        rates.append(readings / (time.perf_counter() - began))
    tracemalloc.start()
    memory_probe()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"{label:<46}{readings:>9} readings  best {max(rates):>11,.0f}/s"
        f"  median {statistics.median(rates):>11,.0f}/s  peak {peak / 2**20:>6.1f} MiB/account"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
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
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    print(
        f"Python {sys.version.split()[0]}, NumPy {'yes' if HAVE_NUMPY else 'no'}, "
        f"CPUs allowed {sorted(affinity) if affinity else '?'}, "
        f"load average {os.getloadavg()[0]:.2f}, {args.repeat} runs each"
    )
    for steps_per_hour, name in ((1, "hourly"), (4, "15-minute")):
        _bench(
            tariff, account, args.accounts, steps_per_hour, name, monthly_bills, urdb_equivalent,
            args.repeat,
        )  # fmt: skip


def _deduct_decimal(tariff: Any, account: AccountTerms, load: list[Interval]) -> list[Decimal]:
    accumulator = RatingAccumulator(tariff=tariff, account=account)
    amounts = []
    for interval in load:
        month = interval.start.strftime("%Y-%m")
        before = accumulator.month_total(month)
        accumulator.add([interval])
        amounts.append(accumulator.month_total(month) - before)
    return amounts


def _deduct_fast(tariff: Any, account: AccountTerms, load: list[Interval]) -> list[Decimal]:
    accumulator = FastAccumulator(tariff=tariff, account=account)
    return [accumulator.deduct(interval) for interval in load]


def _deduct_fast_persist(tariff: Any, account: AccountTerms, load: list[Interval]) -> str:
    accumulator = FastAccumulator(tariff=tariff, account=account)
    state = ""
    for interval in load:
        accumulator.deduct(interval)
        state = json.dumps(accumulator.to_state())
    return state


def _deduct_fast_json(tariff: Any, account: AccountTerms, load: list[Interval]) -> Decimal:
    state: str | None = None
    total = Decimal(0)
    for interval in load:
        deduction = fast_incremental_charge(
            tariff=tariff,
            new_intervals=[interval],
            state=None if state is None else json.loads(state),
            account=account,
        )
        state = json.dumps(deduction.state)
        total += deduction.amount
    return total


def _bench(
    tariff: Any,
    account: AccountTerms,
    accounts: int,
    steps_per_hour: int,
    name: str,
    monthly_bills: Any,
    urdb_equivalent: dict[str, Any],
    repeat: int,
) -> None:
    loads = [_load(seed, steps_per_hour) for seed in range(accounts)]
    readings = sum(len(load) for load in loads)
    few = loads[: max(1, len(loads) // 10)]
    few_readings = sum(len(load) for load in few)
    print(f"\n{accounts} accounts x a year of {name} data ({readings} readings)")
    _measure(
        "batch: Decimal engine rate()",
        few_readings,
        lambda: [rate(tariff=tariff, intervals=load, account=account) for load in few],
        lambda: rate(tariff=tariff, intervals=loads[0], account=account),
        repeat,
    )
    if HAVE_NUMPY:
        arrays = [IntervalArrays.from_intervals(load) for load in loads]
        expected = rate(tariff=tariff, intervals=loads[0], account=account)
        fast_bill = rate_arrays(tariff=tariff, arrays=arrays[0], account=account)  # type: ignore[arg-type]
        assert fast_bill is not None and fast_bill.lines == expected.lines
        _measure(
            "batch: fast rate_arrays() (columnar int64)",
            readings,
            lambda: [rate_arrays(tariff=tariff, arrays=a, account=account) for a in arrays],  # type: ignore[arg-type]
            lambda: rate_arrays(tariff=tariff, arrays=arrays[0], account=account),  # type: ignore[arg-type]
            repeat,
        )
        _measure(
            "batch: fast rate_fast() (Interval objects)",
            readings,
            lambda: [rate_fast(tariff=tariff, intervals=load, account=account) for load in loads],
            lambda: rate_fast(tariff=tariff, intervals=loads[0], account=account),
            repeat,
        )
    if monthly_bills is not None:
        # SAM rates a 365-day year: drop 31 December.
        kw_loads = [
            [float(iv.quantity) * steps_per_hour for iv in load[: 8760 * steps_per_hour]]
            for load in loads
        ]
        _measure(
            "batch: NREL PySAM Utilityrate5",
            8760 * steps_per_hour * len(loads),
            lambda: [monthly_bills(urdb_equivalent, kw, include_minimum=False) for kw in kw_loads],
            lambda: monthly_bills(urdb_equivalent, kw_loads[0], include_minimum=False),
            repeat,
        )
    assert _deduct_fast(tariff, account, loads[0]) == _deduct_decimal(tariff, account, loads[0])
    _measure(
        "deduction: Decimal RatingAccumulator",
        few_readings,
        lambda: [_deduct_decimal(tariff, account, load) for load in few],
        lambda: _deduct_decimal(tariff, account, loads[0]),
        repeat,
    )
    _measure(
        "deduction: FastAccumulator (in memory)",
        readings,
        lambda: [_deduct_fast(tariff, account, load) for load in loads],
        lambda: _deduct_fast(tariff, account, loads[0]),
        repeat,
    )
    _measure(
        "deduction: fast, in memory + JSON state saved",
        len(loads[0]),
        lambda: _deduct_fast_persist(tariff, account, loads[0]),
        lambda: _deduct_fast_persist(tariff, account, loads[0][:1000]),
        repeat,
    )
    month = loads[0][: 31 * 24 * steps_per_hour]  # January: loading the state is slower
    _measure(
        "deduction: fast, JSON state loaded+saved",
        len(month),
        lambda: _deduct_fast_json(tariff, account, month),
        lambda: _deduct_fast_json(tariff, account, month[:100]),
        repeat,
    )


if __name__ == "__main__":
    main()
