"""Run NREL PySAM's Utilityrate5 (SAM's utility bill calculator) on a URDB rate.

An independent calculator for differential tests: it takes the URDB JSON directly (converted
to SAM's matrices here) and a load profile in kW, and returns SAM's monthly charges.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

NO_LIMIT = 1e38


def _tiers(period: list[dict[str, Any]]) -> list[tuple[float, float]]:
    return [
        (float(tier.get("max", NO_LIMIT)), float(tier.get("rate", 0)) + float(tier.get("adj", 0)))
        for tier in period
    ]


def _plus_one(matrix: list[list[int]]) -> list[list[int]]:
    return [[value + 1 for value in row] for row in matrix]


def monthly_bills(
    rate: dict[str, Any], load_kw: list[float], *, include_minimum: bool
) -> list[dict[str, float]]:
    import PySAM.Utilityrate5 as utilityrate5

    model = utilityrate5.new()
    model.Lifetime.analysis_period = 1
    model.Lifetime.system_use_lifetime_output = 0
    model.Lifetime.inflation_rate = 0
    model.SystemOutput.gen = [0.0] * len(load_kw)
    model.SystemOutput.degradation = [0]
    model.Load.load = load_kw
    model.Load.load_escalation = [0]
    rates = model.ElectricityRates
    rates.rate_escalation = [0]
    rates.ur_metering_option = 0
    rates.en_electricity_rates = 1
    rates.ur_en_ts_buy_rate = 0
    rates.ur_en_ts_sell_rate = 0
    rates.ur_sell_eq_buy = 0
    rates.ur_nm_yearend_sell_rate = 0
    rates.ur_nm_credit_month = 0
    rates.ur_nm_credit_rollover = 0
    rates.ur_nb_credit_expire = 0
    rates.ur_nb_apply_credit_current_month = 0
    rates.TOU_demand_single_peak = 0
    rates.ur_enable_billing_demand = 0
    rates.ur_yearzero_usage_peaks = [0] * 12
    rates.ur_billing_demand_minimum = 0
    rates.ur_billing_demand_lookback_period = 0
    rates.ur_billing_demand_lookback_percentages = [[0, 0]] * 12
    rates.ur_dc_billing_demand_periods = [[1, 1]]
    rates.ur_annual_min_charge = 0
    fixed = rate.get("fixedchargefirstmeter", rate.get("fixedmonthlycharge", 0))
    rates.ur_monthly_fixed_charge = float(fixed)
    minimum = rate.get("mincharge", 0) if rate.get("minchargeunits", "$/month") == "$/month" else 0
    rates.ur_monthly_min_charge = float(minimum) if include_minimum else 0.0

    energy = [_tiers(period) for period in rate["energyratestructure"]]
    widest = max(len(tiers) for tiers in energy)
    rows = []
    for p_index, tiers in enumerate(energy, start=1):
        padded = tiers + [tiers[-1]] * (widest - len(tiers))
        for t_index, (limit, price) in enumerate(padded, start=1):
            rows.append([p_index, t_index, limit if t_index < widest else NO_LIMIT, 0, price, 0])
    rates.ur_ec_tou_mat = rows
    flat_schedule = [[0] * 24 for _ in range(12)]
    rates.ur_ec_sched_weekday = _plus_one(rate.get("energyweekdayschedule", flat_schedule))
    rates.ur_ec_sched_weekend = _plus_one(rate.get("energyweekendschedule", flat_schedule))

    has_tou_demand = bool(rate.get("demandratestructure"))
    has_flat_demand = bool(rate.get("flatdemandstructure"))
    rates.ur_dc_enable = 1 if (has_tou_demand or has_flat_demand) else 0
    demand_rows: list[list[float]] = []
    if has_tou_demand:
        for p_index, period in enumerate(rate["demandratestructure"], start=1):
            for t_index, (limit, price) in enumerate(_tiers(period), start=1):
                demand_rows.append([p_index, t_index, limit, price])
        rates.ur_dc_sched_weekday = _plus_one(rate["demandweekdayschedule"])
        rates.ur_dc_sched_weekend = _plus_one(rate["demandweekendschedule"])
    else:
        demand_rows = [[1, 1, NO_LIMIT, 0]]
        rates.ur_dc_sched_weekday = _plus_one(flat_schedule)
        rates.ur_dc_sched_weekend = _plus_one(flat_schedule)
    rates.ur_dc_tou_mat = demand_rows
    flat_rows: list[list[float]] = []
    for month in range(12):
        if has_flat_demand:
            period = rate["flatdemandstructure"][rate["flatdemandmonths"][month]]
            for t_index, (limit, price) in enumerate(_tiers(period), start=1):
                flat_rows.append([month, t_index, limit, price])
        else:
            flat_rows.append([month, 1, NO_LIMIT, 0])
    rates.ur_dc_flat_mat = flat_rows

    model.execute(0)
    out = model.Outputs
    bills = []
    for month in range(12):
        bills.append(
            {
                "energy": out.charge_w_sys_ec_ym[1][month],
                "demand": out.charge_w_sys_dc_tou_ym[1][month]
                + out.charge_w_sys_dc_fixed_ym[1][month],
                "fixed": out.charge_w_sys_fixed_ym[1][month],
                "minimum": out.charge_w_sys_minimum_ym[1][month],
                "total": out.utility_bill_w_sys_ym[1][month],
            }
        )
    return bills


def as_decimal(value: float) -> Decimal:
    return Decimal(repr(value))
