"""Import OpenEI Utility Rate Database (URDB, API v7) rates into a meterpay :class:`Tariff`.

Accepted input: a bare rate object, or an API response ``{"items": [rate, ...]}`` (the first
rate is imported; more are reported). Decode the JSON with ``parse_float=Decimal`` so no rate
passes through a float (:func:`meterpay.core.tariffs.loading.load_tariff_text` does).

Mapping:
* ``energyratestructure[period][tier]`` ``{max, rate, adj, unit}`` → energy periods ``p0``,
  ``p1``…; unit price = rate + adj. Tier ``max`` values are cumulative monthly kWh and become
  tier steps with per-period absolute prices. meterpay allocates tiers chronologically.
* ``energyweekdayschedule`` / ``energyweekendschedule`` (12 months x 24 hours of 0-based period
  indexes) → schedule rules; holidays are rated like weekends.
* ``demandratestructure`` + ``demandweekdayschedule`` / ``demandweekendschedule`` → TOU demand
  (period peak kW x tiered price); ``flatdemandstructure`` + ``flatdemandmonths`` → monthly
  demand by season.
* ``fixedchargefirstmeter`` (or the older ``fixedmonthlycharge``) with ``fixedchargeunits``
  ``$/month`` → a fixed monthly charge; ``mincharge`` with ``minchargeunits`` ``$/month`` →
  a minimum monthly charge.
Anything else that carries a value, and any unit other than those above, is returned as a
warning and not imported; descriptive metadata (name, utility, dates, comments…) is not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from meterpay.core.tariffs.errors import TariffError
from meterpay.core.tariffs.model import (
    DayType,
    DemandCharge,
    DemandPeriod,
    DemandTier,
    EnergyCharge,
    FixedCharge,
    FlatDemandSeason,
    PricePeriod,
    Schedule,
    ScheduleRule,
    Tariff,
    TariffVersion,
    Tiers,
    TierStep,
    TimeWindow,
)

URDB_EFFECTIVE_FROM = datetime(1970, 1, 1)
_METADATA = frozenset(
    {
        "label", "uri", "name", "utility", "utility_name", "eiaid", "sector", "servicetype",
        "description", "source", "sourceparent", "startdate", "enddate", "approved",
        "is_default", "country", "supersedes", "revisions", "voltagecategory", "phasewiring",
        "energycomments", "demandcomments", "basicinformationcomments", "peakkwcapacitymin",
        "peakkwcapacitymax", "peakkwcapacityhistory", "peakkwhusagemin", "peakkwhusagemax",
        "peakkwhusagehistory", "voltageminimum", "voltagemaximum", "ratedvoltage", "lat",
        "long", "latitude", "longitude", "address", "zip", "state", "county", "id",
        "demandunits", "fixedkeyvals", "energykeyvals",
    }
)  # fmt: skip
_HANDLED = frozenset(
    {
        "energyratestructure", "energyweekdayschedule", "energyweekendschedule",
        "demandratestructure", "demandweekdayschedule", "demandweekendschedule",
        "demandrateunit", "flatdemandstructure", "flatdemandmonths", "flatdemandunit",
        "fixedchargefirstmeter", "fixedmonthlycharge", "fixedchargeunits", "mincharge",
        "minchargeunits", "demandwindow",
    }
)  # fmt: skip


def _decimal(value: object, path: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, float, str)):
        raise TariffError(path, "must be a number")
    try:
        # A float given programmatically is taken by its shortest repr, i.e. as written.
        number = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except ArithmeticError:
        raise TariffError(path, "must be a number") from None
    if not number.is_finite():
        raise TariffError(path, "must be a number")
    return number


def _has_value(value: object) -> bool:
    if value is None or value == "" or value == [] or value == {}:
        return False
    return not (
        isinstance(value, (int, float, Decimal)) and not isinstance(value, bool) and value == 0
    )


def _tier_table(
    raw: object, path: str, warnings: list[str], *, unit_field: str | None
) -> list[list[tuple[Decimal | None, Decimal]]]:
    """[period][tier] → (max or None, rate + adj)."""
    if not isinstance(raw, list) or not raw:
        raise TariffError(path, "must be a non-empty list of periods")
    periods: list[list[tuple[Decimal | None, Decimal]]] = []
    for p_index, raw_period in enumerate(raw):
        period_path = f"{path}[{p_index}]"
        if not isinstance(raw_period, list) or not raw_period:
            raise TariffError(period_path, "must be a non-empty list of tiers")
        tiers: list[tuple[Decimal | None, Decimal]] = []
        for t_index, raw_tier in enumerate(raw_period):
            tier_path = f"{period_path}[{t_index}]"
            if not isinstance(raw_tier, dict):
                raise TariffError(tier_path, "must be an object")
            for key in raw_tier:
                if key not in {"max", "rate", "adj", "unit", "sell"}:
                    warnings.append(f"{tier_path}.{key}: not supported; ignored")
            rate = _decimal(raw_tier.get("rate", 0), f"{tier_path}.rate")
            rate += _decimal(raw_tier.get("adj", 0), f"{tier_path}.adj")
            if _has_value(raw_tier.get("sell")):
                warnings.append(
                    f"{tier_path}.sell: sell rates (net metering) not supported; ignored"
                )
            limit = None
            if raw_tier.get("max") is not None:
                limit = _decimal(raw_tier["max"], f"{tier_path}.max")
            if unit_field is not None and raw_tier.get("unit", "kWh") != "kWh":
                warnings.append(
                    f"{tier_path}.unit: {raw_tier['unit']!r} is not supported; "
                    "tier limits of this rate are ignored"
                )
                limit = None
                tiers = tiers[:1] or [(None, rate)]
                break
            tiers.append((limit, rate))
        periods.append(tiers)
    return periods


def _schedule_matrix(raw: object, path: str, period_count: int) -> list[list[int]]:
    if not isinstance(raw, list) or len(raw) != 12:
        raise TariffError(path, "must be 12 rows (months) of 24 period indexes")
    matrix: list[list[int]] = []
    for month, row in enumerate(raw):
        if not isinstance(row, list) or len(row) != 24:
            raise TariffError(f"{path}[{month}]", "must be 24 period indexes")
        for hour, value in enumerate(row):
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or not 0 <= value < period_count
            ):
                raise TariffError(
                    f"{path}[{month}][{hour}]", f"must be a period index 0-{period_count - 1}"
                )
        matrix.append(list(row))
    return matrix


def _rules(
    weekday: list[list[int]], weekend: list[list[int]], names: Sequence[str]
) -> tuple[ScheduleRule, ...]:
    rules: list[ScheduleRule] = []
    day_groups: list[tuple[list[list[int]], frozenset[DayType]]] = [
        (weekday, frozenset({"weekday"})),
        (weekend, frozenset({"weekend", "holiday"})),
    ]
    for matrix, day_types in day_groups:
        by_row: dict[tuple[int, ...], set[int]] = {}
        for month, row in enumerate(matrix, start=1):
            by_row.setdefault(tuple(row), set()).add(month)
        for hours, months in by_row.items():
            windows: list[TimeWindow] = []
            start = 0
            for hour in range(1, 25):
                if hour == 24 or hours[hour] != hours[start]:
                    windows.append(TimeWindow(start * 60, hour * 60, names[hours[start]]))
                    start = hour
            rules.append(ScheduleRule(frozenset(months), day_types, tuple(windows)))
    return tuple(rules)


def _demand_tiers(tiers: list[tuple[Decimal | None, Decimal]]) -> tuple[DemandTier, ...]:
    result = [DemandTier(limit, price) for limit, price in tiers[:-1]]
    result.append(DemandTier(None, tiers[-1][1]))
    return tuple(result)


def _monthly_money(
    rate: Mapping[str, Any], field: str, units_field: str, warnings: list[str]
) -> Decimal | None:
    if not _has_value(rate.get(field)):
        return None
    amount = _decimal(rate[field], field)
    units = rate.get(units_field) or "$/month"
    if units != "$/month":
        warnings.append(f"{field}: units {units!r} not supported (only $/month); ignored")
        return None
    return amount


def tariff_from_urdb(data: object) -> tuple[Tariff, list[str]]:
    """Convert a URDB rate (or an API response with ``items``) to a tariff and warnings."""
    warnings: list[str] = []
    rate: object = data
    if isinstance(data, dict) and "items" in data:
        items = data["items"]
        if not isinstance(items, list) or not items:
            raise TariffError("items", "must be a non-empty list of rates")
        if len(items) > 1:
            warnings.append(f"items: {len(items)} rates given; only the first is imported")
        rate = items[0]
    if not isinstance(rate, dict):
        raise TariffError("", "a URDB rate must be an object")
    for key, value in rate.items():
        if key not in _METADATA and key not in _HANDLED and _has_value(value):
            warnings.append(f"{key}: not supported; ignored")

    energy = None
    if _has_value(rate.get("energyratestructure")):
        table = _tier_table(
            rate["energyratestructure"], "energyratestructure", warnings, unit_field="unit"
        )
        names = [f"p{index}" for index in range(len(table))]
        periods = tuple(
            PricePeriod(name, tiers[0][1]) for name, tiers in zip(names, table, strict=True)
        )
        schedule = Schedule(names[0])
        if len(table) > 1:
            weekday = _schedule_matrix(
                rate.get("energyweekdayschedule"), "energyweekdayschedule", len(table)
            )
            weekend = _schedule_matrix(
                rate.get("energyweekendschedule"), "energyweekendschedule", len(table)
            )
            schedule = Schedule(names[0], _rules(weekday, weekend, names))
        tiers = None
        widest = max(range(len(table)), key=lambda index: len(table[index]))
        if len(table[widest]) > 1:
            limits = [limit for limit, _ in table[widest][:-1]]
            if any(limit is None for limit in limits):
                raise TariffError(
                    f"energyratestructure[{widest}]", "every tier but the last needs max"
                )
            for index, period_tiers in enumerate(table):
                own = [limit for limit, _ in period_tiers[:-1]]
                if len(period_tiers) > 1 and own != limits[: len(own)]:
                    warnings.append(
                        f"energyratestructure[{index}]: tier limits differ from period {widest}'s; "
                        f"period {widest}'s limits are used for all periods"
                    )
            steps = []
            for tier_index in range(len(table[widest])):
                prices = {
                    name: period_tiers[min(tier_index, len(period_tiers) - 1)][1]
                    for name, period_tiers in zip(names, table, strict=True)
                }
                up_to = limits[tier_index] if tier_index < len(limits) else None
                steps.append(TierStep(up_to, period_prices=prices))
            tiers = Tiers("month", tuple(steps))
        energy = EnergyCharge(periods, schedule, tiers)

    demand_periods: tuple[DemandPeriod, ...] = ()
    demand_schedule = None
    if _has_value(rate.get("demandratestructure")):
        table = _tier_table(
            rate["demandratestructure"], "demandratestructure", warnings, unit_field=None
        )
        names = [f"d{index}" for index in range(len(table))]
        demand_periods = tuple(
            DemandPeriod(name, _demand_tiers(tiers))
            for name, tiers in zip(names, table, strict=True)
        )
        demand_schedule = Schedule(names[0])
        if len(table) > 1:
            weekday = _schedule_matrix(
                rate.get("demandweekdayschedule"), "demandweekdayschedule", len(table)
            )
            weekend = _schedule_matrix(
                rate.get("demandweekendschedule"), "demandweekendschedule", len(table)
            )
            demand_schedule = Schedule(names[0], _rules(weekday, weekend, names))
        if (rate.get("demandrateunit") or "kW") != "kW":
            warnings.append(f"demandrateunit: {rate['demandrateunit']!r} treated as kW")
    flat: list[FlatDemandSeason] = []
    if _has_value(rate.get("flatdemandstructure")):
        table = _tier_table(
            rate["flatdemandstructure"], "flatdemandstructure", warnings, unit_field=None
        )
        months_raw = rate.get("flatdemandmonths")
        if not isinstance(months_raw, list) or len(months_raw) != 12:
            if len(table) != 1:
                raise TariffError("flatdemandmonths", "must be 12 period indexes")
            months_raw = [0] * 12
        by_period: dict[int, set[int]] = {}
        for month, value in enumerate(months_raw, start=1):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(table):
                raise TariffError(
                    f"flatdemandmonths[{month - 1}]", f"must be a period index 0-{len(table) - 1}"
                )
            by_period.setdefault(value, set()).add(month)
        for period_index, months in sorted(by_period.items()):
            flat.append(FlatDemandSeason(frozenset(months), _demand_tiers(table[period_index])))
        if (rate.get("flatdemandunit") or "kW") != "kW":
            warnings.append(f"flatdemandunit: {rate['flatdemandunit']!r} treated as kW")
    demand = None
    if demand_periods or flat:
        demand = DemandCharge(demand_periods, demand_schedule, tuple(flat))
    window = rate.get("demandwindow")
    if demand is not None and _has_value(window) and window != 15:
        warnings.append(f"demandwindow: {window} min not supported; demand is the interval average")

    fixed_amount = _monthly_money(rate, "fixedchargefirstmeter", "fixedchargeunits", warnings)
    if fixed_amount is None and "fixedchargefirstmeter" not in rate:
        fixed_amount = _monthly_money(rate, "fixedmonthlycharge", "fixedchargeunits", warnings)
    elif _has_value(rate.get("fixedmonthlycharge")):
        warnings.append("fixedmonthlycharge: superseded by fixedchargefirstmeter; ignored")
    fixed = (FixedCharge("fixed monthly charge", fixed_amount),) if fixed_amount else ()
    minimum = _monthly_money(rate, "mincharge", "minchargeunits", warnings)

    version = TariffVersion(
        effective_from=URDB_EFFECTIVE_FROM,
        energy=energy,
        demand=demand,
        fixed_charges=fixed,
        minimum_charge=minimum,
    )
    label = rate.get("label") or "urdb-rate"
    name = rate.get("name") or str(label)
    utility = rate.get("utility")
    tariff = Tariff(
        id=f"urdb-{label}",
        name=str(name),
        currency="USD",
        commodity="electricity",
        versions=(version,),
        description=f"Imported from URDB{f' ({utility})' if utility else ''}",
    )
    return tariff, warnings
