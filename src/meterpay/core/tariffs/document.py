"""Parse, validate and serialize meterpay tariff documents (JSON; schema in docs/tariffs.md).

Every validation error is a :class:`TariffError` whose path names the field, e.g.
``versions[1].energy.periods[2].price: must be a decimal string``. Money and quantities are
decimal strings in the document, never JSON numbers, so no float ever touches them.
``tariff_to_dict(parse_tariff(doc)) == doc`` for a document in canonical form (the form
``tariff_to_dict`` writes: months as ranges such as ``"6-8"``, optional fields omitted when
they hold their default).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, cast

from meterpay.core.money import MINOR_UNITS_PER_MAJOR
from meterpay.core.tariffs.errors import TariffError
from meterpay.core.tariffs.model import (
    CN_TWO_PART_OVERRUN_THRESHOLD,
    CONTRACT_RULES,
    DAY_TYPES,
    MINUTES_PER_DAY,
    BasicCharge,
    Commodity,
    ContractRule,
    Cumulation,
    CustomItem,
    DayType,
    DemandCharge,
    DemandPeriod,
    DemandTier,
    EnergyCharge,
    FixedCharge,
    FlatDemandSeason,
    Frequency,
    PowerFactorAdjustment,
    PricePeriod,
    Schedule,
    ScheduleRule,
    Surcharge,
    Tariff,
    TariffVersion,
    Tiers,
    TierStep,
    TimeWindow,
    WaterCharge,
)

FORMAT = "meterpay-tariff/1"
PF_STANDARDS = (Decimal("0.90"), Decimal("0.85"), Decimal("0.80"))
_BASES: tuple[Literal["fixed", "per_area"], ...] = ("fixed", "per_area")
_PF_COMPONENTS = frozenset({"energy", "basic", "demand"})

Json = dict[str, Any]


# --------------------------------------------------------------------------- readers


def _object(value: object, path: str, allowed: Iterable[str]) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise TariffError(path, "must be an object")
    allowed_set = set(allowed)
    for key in value:
        if key not in allowed_set:
            raise TariffError(_join(path, str(key)), "unknown field")
    return cast(Mapping[str, Any], value)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _required(obj: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in obj:
        raise TariffError(_join(path, key), "is required")
    return obj[key]


def _list(value: object, path: str, *, non_empty: bool = False) -> list[Any]:
    if not isinstance(value, list):
        raise TariffError(path, "must be a list")
    if non_empty and not value:
        raise TariffError(path, "must not be empty")
    return value


def _text(value: object, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TariffError(path, "must be a non-empty string")
    return value


def _choice[T: str](value: object, path: str, choices: tuple[T, ...]) -> T:
    for choice in choices:
        if value == choice:
            return choice
    raise TariffError(path, f"must be one of {', '.join(choices)}")


def _decimal(value: object, path: str, *, positive: bool = False) -> Decimal:
    """Decimal strings only: a JSON number would have passed through a float."""
    if not isinstance(value, str):
        raise TariffError(path, "must be a decimal string")
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        raise TariffError(path, "must be a decimal string") from None
    if not number.is_finite():
        raise TariffError(path, "must be a decimal string")
    if number < 0 or (positive and number == 0):
        raise TariffError(path, "must be positive" if positive else "must not be negative")
    return number


def _bool(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise TariffError(path, "must be true or false")
    return value


def _datetime(value: object, path: str) -> datetime:
    if not isinstance(value, str):
        raise TariffError(path, "must be an ISO date-time string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise TariffError(path, "must be an ISO date-time string") from None
    if moment.tzinfo is not None:
        raise TariffError(path, "must be local time without a UTC offset")
    return moment


def parse_months(value: object, path: str) -> frozenset[int]:
    """``"6-8,12"``, ``"11-2"`` (wraps the year end) or a list of month numbers."""
    months: set[int] = set()
    if isinstance(value, list):
        for index, item in enumerate(value):
            if not isinstance(item, int) or isinstance(item, bool) or not 1 <= item <= 12:
                raise TariffError(f"{path}[{index}]", "must be a month number 1-12")
            months.add(item)
    elif isinstance(value, str):
        for part in value.split(","):
            bounds = part.strip().split("-")
            try:
                numbers = [int(bound) for bound in bounds]
            except ValueError:
                raise TariffError(path, f"bad month range {part.strip()!r}") from None
            if len(numbers) not in (1, 2) or not all(1 <= n <= 12 for n in numbers):
                raise TariffError(path, f"bad month range {part.strip()!r}")
            first, last = numbers[0], numbers[-1]
            month = first
            months.add(month)
            while month != last:
                month = month % 12 + 1
                months.add(month)
    else:
        raise TariffError(path, 'must be a month range string such as "6-8" or a list')
    if not months:
        raise TariffError(path, "must name at least one month")
    return frozenset(months)


def format_months(months: frozenset[int]) -> str:
    runs: list[str] = []
    ordered = sorted(months)
    start = previous = ordered[0]
    for month in [*ordered[1:], 0]:
        if month == previous + 1:
            previous = month
            continue
        runs.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = month
    return ",".join(runs)


def _minute(value: object, path: str, *, allow_24: bool) -> int:
    if not isinstance(value, str) or len(value) != 5 or value[2] != ":":
        raise TariffError(path, 'must be a time "HH:MM"')
    try:
        hours, minutes = int(value[:2]), int(value[3:])
    except ValueError:
        raise TariffError(path, 'must be a time "HH:MM"') from None
    total = hours * 60 + minutes
    if minutes >= 60 or total > MINUTES_PER_DAY or (total == MINUTES_PER_DAY and not allow_24):
        raise TariffError(path, 'must be a time "HH:MM" between 00:00 and 24:00')
    return total


def _format_minute(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


# --------------------------------------------------------------------------- components


def _schedule_rules(
    value: object, path: str, periods: set[str], *, critical: bool
) -> tuple[ScheduleRule, ...]:
    rules: list[ScheduleRule] = []
    for index, raw in enumerate(_list(value, path)):
        rule_path = f"{path}[{index}]"
        allowed = ["months", "day_types", "windows"] + ([] if critical else ["default_period"])
        obj = _object(raw, rule_path, allowed)
        months = parse_months(_required(obj, "months", rule_path), _join(rule_path, "months"))
        day_types: frozenset[DayType] = frozenset(DAY_TYPES)
        if "day_types" in obj:
            types_path = _join(rule_path, "day_types")
            day_types = frozenset(
                _choice(item, f"{types_path}[{i}]", DAY_TYPES)
                for i, item in enumerate(_list(obj["day_types"], types_path, non_empty=True))
            )
        windows: list[TimeWindow] = []
        windows_path = _join(rule_path, "windows")
        for w_index, raw_window in enumerate(_list(obj.get("windows", []), windows_path)):
            window_path = f"{windows_path}[{w_index}]"
            window = _object(raw_window, window_path, ["start", "end", "period"])
            start = _minute(
                _required(window, "start", window_path),
                _join(window_path, "start"),
                allow_24=False,
            )
            end = _minute(
                _required(window, "end", window_path), _join(window_path, "end"), allow_24=True
            )
            if start == end % MINUTES_PER_DAY:
                raise TariffError(_join(window_path, "end"), "must differ from start")
            period = _text(_required(window, "period", window_path), _join(window_path, "period"))
            if period not in periods:
                raise TariffError(_join(window_path, "period"), f"unknown period {period!r}")
            windows.append(TimeWindow(start, end, period))
        default_period = None
        if "default_period" in obj:
            default_period = _text(obj["default_period"], _join(rule_path, "default_period"))
            if default_period not in periods:
                raise TariffError(
                    _join(rule_path, "default_period"), f"unknown period {default_period!r}"
                )
        if critical and not windows:
            raise TariffError(windows_path, "must not be empty")
        rules.append(ScheduleRule(months, day_types, tuple(windows), default_period))
    return tuple(rules)


def _schedule(obj: Mapping[str, Any], path: str, periods: list[str]) -> Schedule:
    known = set(periods)
    default_period = periods[0]
    if "default_period" in obj:
        default_period = _text(obj["default_period"], _join(path, "default_period"))
        if default_period not in known:
            raise TariffError(_join(path, "default_period"), f"unknown period {default_period!r}")
    rules = _schedule_rules(obj.get("schedule", []), _join(path, "schedule"), known, critical=False)
    critical = _schedule_rules(
        obj.get("critical_peak", []), _join(path, "critical_peak"), known, critical=True
    )
    return Schedule(default_period, rules, critical)


def _unique_name(name: str, seen: set[str], path: str) -> None:
    if name in seen:
        raise TariffError(path, f"duplicate name {name!r}")
    seen.add(name)


def _tiers(value: object, path: str, periods: list[str]) -> Tiers:
    obj = _object(value, path, ["cumulation", "year_start_month", "steps"])
    cumulation: Cumulation = _choice(
        _required(obj, "cumulation", path), _join(path, "cumulation"), ("month", "year")
    )
    year_start_month = 1
    if "year_start_month" in obj:
        raw_month = obj["year_start_month"]
        if (
            not isinstance(raw_month, int)
            or isinstance(raw_month, bool)
            or not 1 <= raw_month <= 12
        ):
            raise TariffError(_join(path, "year_start_month"), "must be a month number 1-12")
        year_start_month = raw_month
    steps_path = _join(path, "steps")
    raw_steps = _list(_required(obj, "steps", path), steps_path, non_empty=True)
    steps: list[TierStep] = []
    previous: Decimal | None = None
    for index, raw in enumerate(raw_steps):
        step_path = f"{steps_path}[{index}]"
        step = _object(raw, step_path, ["up_to", "increment", "price", "period_prices"])
        last = index == len(raw_steps) - 1
        raw_up_to = _required(step, "up_to", step_path)
        up_to: Decimal | None
        if last:
            if raw_up_to is not None:
                raise TariffError(_join(step_path, "up_to"), "must be null on the last step")
            up_to = None
        else:
            up_to = _decimal(raw_up_to, _join(step_path, "up_to"), positive=True)
            if previous is not None and up_to <= previous:
                raise TariffError(_join(step_path, "up_to"), "must increase from step to step")
            previous = up_to
        given = [key for key in ("increment", "price", "period_prices") if key in step]
        if len(given) > 1:
            raise TariffError(step_path, "give only one of increment, price, period_prices")
        increment = Decimal(0)
        price = None
        period_prices: dict[str, Decimal] = {}
        if "increment" in step:
            increment = _decimal(step["increment"], _join(step_path, "increment"))
        if "price" in step:
            if len(periods) != 1:
                raise TariffError(
                    _join(step_path, "price"),
                    "an absolute step price needs a single period; use increment or period_prices",
                )
            price = _decimal(step["price"], _join(step_path, "price"))
        if "period_prices" in step:
            prices_path = _join(step_path, "period_prices")
            prices = _object(step["period_prices"], prices_path, periods)
            for name in periods:
                period_prices[name] = _decimal(
                    _required(prices, name, prices_path), _join(prices_path, name)
                )
        steps.append(TierStep(up_to, increment, price, period_prices))
    return Tiers(cumulation, tuple(steps), year_start_month)


def _energy(value: object, path: str) -> EnergyCharge:
    obj = _object(value, path, ["periods", "schedule", "critical_peak", "default_period", "tiers"])
    periods_path = _join(path, "periods")
    periods: list[PricePeriod] = []
    seen: set[str] = set()
    for index, raw in enumerate(
        _list(_required(obj, "periods", path), periods_path, non_empty=True)
    ):
        period_path = f"{periods_path}[{index}]"
        period = _object(raw, period_path, ["name", "price"])
        name = _text(_required(period, "name", period_path), _join(period_path, "name"))
        _unique_name(name, seen, _join(period_path, "name"))
        price = _decimal(_required(period, "price", period_path), _join(period_path, "price"))
        periods.append(PricePeriod(name, price))
    names = [period.name for period in periods]
    schedule = _schedule(obj, path, names)
    tiers = _tiers(obj["tiers"], _join(path, "tiers"), names) if "tiers" in obj else None
    return EnergyCharge(tuple(periods), schedule, tiers)


def _basic(value: object, path: str) -> BasicCharge:
    obj = _object(
        value,
        path,
        [
            "method",
            "price",
            "contract_rule",
            "overrun_threshold",
            "overrun_multiplier",
            "minimum_fraction",
        ],
    )
    methods: tuple[Literal["capacity", "max_demand"], ...] = ("capacity", "max_demand")
    method = _choice(_required(obj, "method", path), _join(path, "method"), methods)
    price = _decimal(_required(obj, "price", path), _join(path, "price"))
    threshold = multiplier = minimum = None
    demand_only = ("contract_rule", "overrun_threshold", "overrun_multiplier", "minimum_fraction")
    if method != "max_demand" and "contract_rule" in obj:
        raise TariffError(_join(path, "contract_rule"), "applies to method max_demand only")
    if method != "max_demand" and any(key in obj for key in demand_only):
        raise TariffError(path, "overrun and minimum apply to method max_demand only")
    rule: ContractRule | None = None
    if "contract_rule" in obj:
        rule = _choice(obj["contract_rule"], _join(path, "contract_rule"), CONTRACT_RULES)
    if "overrun_threshold" in obj:
        threshold = _decimal(
            obj["overrun_threshold"], _join(path, "overrun_threshold"), positive=True
        )
        if rule is not None and threshold < 1:
            raise TariffError(
                _join(path, "overrun_threshold"), f"must be at least 1 with contract_rule {rule}"
            )
    elif rule == "cn_two_part":
        threshold = CN_TWO_PART_OVERRUN_THRESHOLD
    if "overrun_multiplier" in obj:
        multiplier = _decimal(obj["overrun_multiplier"], _join(path, "overrun_multiplier"))
    if "minimum_fraction" in obj:
        if rule is not None:
            raise TariffError(
                _join(path, "minimum_fraction"),
                f"not allowed with contract_rule {rule} (the contract demand is the minimum)",
            )
        minimum = _decimal(obj["minimum_fraction"], _join(path, "minimum_fraction"))
    return BasicCharge(
        method,
        price,
        threshold,
        multiplier if multiplier is not None else Decimal(2),
        minimum,
        rule,
    )


def _demand_tiers(value: object, path: str) -> tuple[DemandTier, ...]:
    raw_tiers = _list(value, path, non_empty=True)
    tiers: list[DemandTier] = []
    previous: Decimal | None = None
    for index, raw in enumerate(raw_tiers):
        tier_path = f"{path}[{index}]"
        tier = _object(raw, tier_path, ["up_to", "price"])
        raw_up_to = _required(tier, "up_to", tier_path)
        up_to: Decimal | None = None
        if index == len(raw_tiers) - 1:
            if raw_up_to is not None:
                raise TariffError(_join(tier_path, "up_to"), "must be null on the last tier")
        else:
            up_to = _decimal(raw_up_to, _join(tier_path, "up_to"), positive=True)
            if previous is not None and up_to <= previous:
                raise TariffError(_join(tier_path, "up_to"), "must increase from tier to tier")
            previous = up_to
        price = _decimal(_required(tier, "price", tier_path), _join(tier_path, "price"))
        tiers.append(DemandTier(up_to, price))
    return tuple(tiers)


def _demand(value: object, path: str) -> DemandCharge:
    obj = _object(value, path, ["periods", "schedule", "critical_peak", "default_period", "flat"])
    periods: list[DemandPeriod] = []
    schedule = None
    if "periods" in obj:
        periods_path = _join(path, "periods")
        seen: set[str] = set()
        for index, raw in enumerate(_list(obj["periods"], periods_path, non_empty=True)):
            period_path = f"{periods_path}[{index}]"
            period = _object(raw, period_path, ["name", "tiers"])
            name = _text(_required(period, "name", period_path), _join(period_path, "name"))
            _unique_name(name, seen, _join(period_path, "name"))
            tiers = _demand_tiers(
                _required(period, "tiers", period_path), _join(period_path, "tiers")
            )
            periods.append(DemandPeriod(name, tiers))
        schedule = _schedule(obj, path, [period.name for period in periods])
    elif any(key in obj for key in ("schedule", "critical_peak", "default_period")):
        raise TariffError(_join(path, "periods"), "is required with a schedule")
    flat: list[FlatDemandSeason] = []
    flat_path = _join(path, "flat")
    covered: set[int] = set()
    for index, raw in enumerate(_list(obj.get("flat", []), flat_path)):
        season_path = f"{flat_path}[{index}]"
        season = _object(raw, season_path, ["months", "tiers"])
        months = parse_months(
            _required(season, "months", season_path), _join(season_path, "months")
        )
        if months & covered:
            raise TariffError(_join(season_path, "months"), "overlaps an earlier season")
        covered |= months
        tiers = _demand_tiers(_required(season, "tiers", season_path), _join(season_path, "tiers"))
        flat.append(FlatDemandSeason(months, tiers))
    if not periods and not flat:
        raise TariffError(path, "needs periods or flat")
    return DemandCharge(tuple(periods), schedule, tuple(flat))


def _power_factor(value: object, path: str) -> PowerFactorAdjustment:
    obj = _object(value, path, ["standard", "applies_to"])
    standard = _decimal(_required(obj, "standard", path), _join(path, "standard"))
    if standard not in PF_STANDARDS:
        raise TariffError(_join(path, "standard"), 'must be "0.90", "0.85" or "0.80"')
    applies_to = _PF_COMPONENTS
    if "applies_to" in obj:
        applies_path = _join(path, "applies_to")
        applies_to = frozenset(
            _choice(item, f"{applies_path}[{i}]", ("energy", "basic", "demand"))
            for i, item in enumerate(_list(obj["applies_to"], applies_path, non_empty=True))
        )
    return PowerFactorAdjustment(standard.quantize(Decimal("0.01")), applies_to)


def _water(value: object, path: str) -> WaterCharge:
    obj = _object(value, path, ["price", "tiers", "surcharges"])
    price = _decimal(_required(obj, "price", path), _join(path, "price"))
    tiers = _tiers(obj["tiers"], _join(path, "tiers"), ["water"]) if "tiers" in obj else None
    surcharges: list[Surcharge] = []
    surcharges_path = _join(path, "surcharges")
    seen: set[str] = set()
    for index, raw in enumerate(_list(obj.get("surcharges", []), surcharges_path)):
        item_path = f"{surcharges_path}[{index}]"
        item = _object(raw, item_path, ["name", "price"])
        name = _text(_required(item, "name", item_path), _join(item_path, "name"))
        _unique_name(name, seen, _join(item_path, "name"))
        surcharges.append(
            Surcharge(
                name, _decimal(_required(item, "price", item_path), _join(item_path, "price"))
            )
        )
    return WaterCharge(price, tiers, tuple(surcharges))


def _fixed_charges(value: object, path: str) -> tuple[FixedCharge, ...]:
    charges: list[FixedCharge] = []
    seen: set[str] = set()
    for index, raw in enumerate(_list(value, path)):
        item_path = f"{path}[{index}]"
        item = _object(raw, item_path, ["name", "amount"])
        name = _text(_required(item, "name", item_path), _join(item_path, "name"))
        _unique_name(name, seen, _join(item_path, "name"))
        amount = _decimal(_required(item, "amount", item_path), _join(item_path, "amount"))
        charges.append(FixedCharge(name, amount))
    return tuple(charges)


def _custom_items(value: object, path: str) -> tuple[CustomItem, ...]:
    items: list[CustomItem] = []
    seen: set[str] = set()
    for index, raw in enumerate(_list(value, path)):
        item_path = f"{path}[{index}]"
        item = _object(raw, item_path, ["name", "amount", "basis", "frequency", "prorate"])
        name = _text(_required(item, "name", item_path), _join(item_path, "name"))
        _unique_name(name, seen, _join(item_path, "name"))
        amount = _decimal(_required(item, "amount", item_path), _join(item_path, "amount"))
        basis = _choice(item.get("basis", "fixed"), _join(item_path, "basis"), _BASES)
        frequencies: tuple[Frequency, ...] = ("monthly", "quarterly", "yearly", "one_time")
        frequency = _choice(
            item.get("frequency", "monthly"), _join(item_path, "frequency"), frequencies
        )
        prorate = _bool(item.get("prorate", True), _join(item_path, "prorate"))
        items.append(CustomItem(name, amount, basis, frequency, prorate))
    return tuple(items)


_VERSION_FIELDS = [
    "effective_from",
    "energy",
    "basic",
    "demand",
    "power_factor",
    "water",
    "fixed_charges",
    "minimum_charge",
    "custom_items",
]


def _version(value: object, path: str, commodity: Commodity) -> TariffVersion:
    obj = _object(value, path, _VERSION_FIELDS)
    effective_from = _datetime(
        _required(obj, "effective_from", path), _join(path, "effective_from")
    )
    electric_only = ("energy", "basic", "demand", "power_factor")
    for key in electric_only if commodity == "water" else ("water",):
        if key in obj:
            raise TariffError(_join(path, key), f"not allowed in a {commodity} tariff")
    energy = _energy(obj["energy"], _join(path, "energy")) if "energy" in obj else None
    basic = _basic(obj["basic"], _join(path, "basic")) if "basic" in obj else None
    demand = _demand(obj["demand"], _join(path, "demand")) if "demand" in obj else None
    power_factor = None
    if "power_factor" in obj:
        power_factor = _power_factor(obj["power_factor"], _join(path, "power_factor"))
    water = _water(obj["water"], _join(path, "water")) if "water" in obj else None
    minimum = None
    if "minimum_charge" in obj:
        minimum = _decimal(obj["minimum_charge"], _join(path, "minimum_charge"))
    return TariffVersion(
        effective_from=effective_from,
        energy=energy,
        basic=basic,
        demand=demand,
        power_factor=power_factor,
        water=water,
        fixed_charges=_fixed_charges(obj.get("fixed_charges", []), _join(path, "fixed_charges")),
        minimum_charge=minimum,
        custom_items=_custom_items(obj.get("custom_items", []), _join(path, "custom_items")),
    )


def parse_tariff(document: object) -> Tariff:
    """Validate a tariff document (already decoded from JSON) into a :class:`Tariff`."""
    obj = _object(
        document, "", ["format", "id", "name", "description", "currency", "commodity", "versions"]
    )
    if _required(obj, "format", "") != FORMAT:
        raise TariffError("format", f"must be {FORMAT!r}")
    tariff_id = _text(_required(obj, "id", ""), "id")
    name = _text(_required(obj, "name", ""), "name")
    description = obj.get("description", "")
    if not isinstance(description, str):
        raise TariffError("description", "must be a string")
    currency = _required(obj, "currency", "")
    if currency not in MINOR_UNITS_PER_MAJOR:
        raise TariffError("currency", f"must be one of {', '.join(MINOR_UNITS_PER_MAJOR)}")
    commodity: Commodity = _choice(
        obj.get("commodity", "electricity"), "commodity", ("electricity", "water")
    )
    raw_versions = _list(_required(obj, "versions", ""), "versions", non_empty=True)
    versions = [_version(raw, f"versions[{i}]", commodity) for i, raw in enumerate(raw_versions)]
    for index in range(1, len(versions)):
        if versions[index].effective_from <= versions[index - 1].effective_from:
            raise TariffError(
                f"versions[{index}].effective_from", "must be later than the previous version's"
            )
    return Tariff(tariff_id, name, currency, commodity, tuple(versions), description)


def parse_tariff_json(text: str) -> Tariff:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise TariffError("", f"not valid JSON: {error}") from None
    return parse_tariff(document)


# --------------------------------------------------------------------------- writers


def _rules_to_list(rules: tuple[ScheduleRule, ...], *, critical: bool) -> list[Json]:
    result: list[Json] = []
    for rule in rules:
        item: Json = {"months": format_months(rule.months)}
        if rule.day_types != frozenset(DAY_TYPES):
            item["day_types"] = [day for day in DAY_TYPES if day in rule.day_types]
        if rule.windows or critical:
            item["windows"] = [
                {
                    "start": _format_minute(window.start_minute),
                    "end": _format_minute(window.end_minute),
                    "period": window.period,
                }
                for window in rule.windows
            ]
        if rule.default_period is not None:
            item["default_period"] = rule.default_period
        result.append(item)
    return result


def _schedule_to_dict(schedule: Schedule, first_period: str, out: Json) -> None:
    if schedule.rules:
        out["schedule"] = _rules_to_list(schedule.rules, critical=False)
    if schedule.critical_peak:
        out["critical_peak"] = _rules_to_list(schedule.critical_peak, critical=True)
    if schedule.default_period != first_period:
        out["default_period"] = schedule.default_period


def _tiers_to_dict(tiers: Tiers) -> Json:
    steps: list[Json] = []
    for step in tiers.steps:
        item: Json = {"up_to": None if step.up_to is None else str(step.up_to)}
        if step.period_prices:
            item["period_prices"] = {name: str(price) for name, price in step.period_prices.items()}
        elif step.price is not None:
            item["price"] = str(step.price)
        else:
            item["increment"] = str(step.increment)
        steps.append(item)
    out: Json = {"cumulation": tiers.cumulation}
    if tiers.year_start_month != 1:
        out["year_start_month"] = tiers.year_start_month
    out["steps"] = steps
    return out


def _demand_tiers_to_list(tiers: tuple[DemandTier, ...]) -> list[Json]:
    return [
        {"up_to": None if tier.up_to is None else str(tier.up_to), "price": str(tier.price)}
        for tier in tiers
    ]


def _version_to_dict(version: TariffVersion) -> Json:
    out: Json = {"effective_from": version.effective_from.isoformat()}
    if version.energy is not None:
        energy: Json = {
            "periods": [{"name": p.name, "price": str(p.price)} for p in version.energy.periods]
        }
        _schedule_to_dict(version.energy.schedule, version.energy.periods[0].name, energy)
        if version.energy.tiers is not None:
            energy["tiers"] = _tiers_to_dict(version.energy.tiers)
        out["energy"] = energy
    if version.basic is not None:
        basic = version.basic
        basic_out: Json = {"method": basic.method, "price": str(basic.price)}
        if basic.contract_rule is not None:
            basic_out["contract_rule"] = basic.contract_rule
        if basic.overrun_threshold is not None:
            basic_out["overrun_threshold"] = str(basic.overrun_threshold)
        if basic.overrun_multiplier != 2:
            basic_out["overrun_multiplier"] = str(basic.overrun_multiplier)
        if basic.minimum_fraction is not None:
            basic_out["minimum_fraction"] = str(basic.minimum_fraction)
        out["basic"] = basic_out
    if version.demand is not None:
        demand: Json = {}
        if version.demand.periods:
            demand["periods"] = [
                {"name": p.name, "tiers": _demand_tiers_to_list(p.tiers)}
                for p in version.demand.periods
            ]
            assert version.demand.schedule is not None
            _schedule_to_dict(version.demand.schedule, version.demand.periods[0].name, demand)
        if version.demand.flat:
            demand["flat"] = [
                {"months": format_months(s.months), "tiers": _demand_tiers_to_list(s.tiers)}
                for s in version.demand.flat
            ]
        out["demand"] = demand
    if version.power_factor is not None:
        pf: Json = {"standard": str(version.power_factor.standard)}
        if version.power_factor.applies_to != _PF_COMPONENTS:
            pf["applies_to"] = sorted(version.power_factor.applies_to)
        out["power_factor"] = pf
    if version.water is not None:
        water: Json = {"price": str(version.water.price)}
        if version.water.tiers is not None:
            water["tiers"] = _tiers_to_dict(version.water.tiers)
        if version.water.surcharges:
            water["surcharges"] = [
                {"name": s.name, "price": str(s.price)} for s in version.water.surcharges
            ]
        out["water"] = water
    if version.fixed_charges:
        out["fixed_charges"] = [
            {"name": c.name, "amount": str(c.amount)} for c in version.fixed_charges
        ]
    if version.minimum_charge is not None:
        out["minimum_charge"] = str(version.minimum_charge)
    if version.custom_items:
        items: list[Json] = []
        for item in version.custom_items:
            item_out: Json = {"name": item.name, "amount": str(item.amount)}
            if item.basis != "fixed":
                item_out["basis"] = item.basis
            if item.frequency != "monthly":
                item_out["frequency"] = item.frequency
            if not item.prorate:
                item_out["prorate"] = False
            items.append(item_out)
        out["custom_items"] = items
    return out


def tariff_to_dict(tariff: Tariff) -> Json:
    """The canonical JSON-able document for ``tariff`` (inverse of :func:`parse_tariff`)."""
    out: Json = {"format": FORMAT, "id": tariff.id, "name": tariff.name}
    if tariff.description:
        out["description"] = tariff.description
    out["currency"] = tariff.currency
    out["commodity"] = tariff.commodity
    out["versions"] = [_version_to_dict(version) for version in tariff.versions]
    return out


def tariff_to_json(tariff: Tariff) -> str:
    return json.dumps(tariff_to_dict(tariff), ensure_ascii=False, indent=2) + "\n"
