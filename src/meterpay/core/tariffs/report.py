"""What ``meterpay rate`` computes and prints, as pure functions on file contents.

The command reads the files; everything else (detection, parsing, checks, rating,
formatting) is here so it can be tested without Django. Every input problem is an
:class:`InputError` whose message is one line naming the file, the row or field, and the
problem.

Before rating, the inputs are checked against each other: the readings' unit against the
tariff's commodity, the account terms the tariff needs, and readings too coarse for the
tariff (a reading longer than an hour that spans several TOU periods without per-period
columns, or one without a ``kw`` column when the tariff charges maximum demand).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from meterpay.core.tariffs.engine import Bill, incremental_charge, rate
from meterpay.core.tariffs.errors import (
    AccountTermsError,
    RatingError,
    ReadingsError,
    TariffError,
)
from meterpay.core.tariffs.loading import LoadedTariff, load_tariff_text
from meterpay.core.tariffs.model import (
    MINUTES_PER_DAY,
    AccountTerms,
    DayType,
    Interval,
    Schedule,
    Tariff,
    TariffVersion,
)
from meterpay.core.tariffs.readings import Readings, parse_readings_csv
from meterpay.core.tariffs.terms import parse_account_terms_json, terms_problems

_HOUR = timedelta(hours=1)
_ZERO = Decimal(0)
_UNIT_NAMES = {"kWh": "kWh", "m3": "m³"}


class InputError(ValueError):
    """Bad input, with a one-line message naming the file, the row or field, and the problem."""


@dataclass(frozen=True, slots=True)
class RateInput:
    """The parsed and cross-checked inputs of one run."""

    loaded: LoadedTariff
    readings: Readings
    account: AccountTerms


@dataclass(frozen=True, slots=True)
class RateReport:
    loaded: LoadedTariff
    bill: Bill
    readings: Readings | None = None


@dataclass(frozen=True, slots=True)
class DeductionRow:
    """One reading's prepaid deduction: the CSV ``row``, its span and quantity."""

    row: int
    start: datetime
    end: datetime
    quantity: Decimal
    amount: Decimal
    running_total: Decimal


@dataclass(frozen=True, slots=True)
class IncrementalReport:
    """Deductions reading by reading, and the full rating of the same readings."""

    loaded: LoadedTariff
    readings: Readings
    deductions: tuple[DeductionRow, ...]
    bill: Bill

    @property
    def total(self) -> Decimal:
        return sum((row.amount for row in self.deductions), _ZERO)

    @property
    def equal(self) -> bool:
        return self.total == self.bill.total


# ---------------------------------------------------------------------- loading and checks


def load_inputs(
    *,
    tariff_text: str,
    tariff_name: str,
    readings_text: str,
    readings_name: str,
    account_text: str | None = None,
    account_name: str = "account",
    account: AccountTerms | None = None,
) -> RateInput:
    """Parse the tariff, the account terms (JSON text or given) and the readings; check them."""
    try:
        loaded = load_tariff_text(tariff_text)
    except TariffError as error:
        where = error.path or "document"
        raise InputError(f"{tariff_name}: {where}: {error.problem}") from None
    tariff = loaded.tariff
    if account_text is not None:
        try:
            account = parse_account_terms_json(account_text)
        except AccountTermsError as error:
            where = error.field or "document"
            raise InputError(f"{account_name}: {where}: {error.problem}") from None
    try:
        readings = parse_readings_csv(readings_text, periods=_energy_periods(tariff))
    except ReadingsError as error:
        raise InputError(f"{readings_name}: row {error.row}: {error.problem}") from None
    _check_unit(tariff, readings, readings_name)
    terms = account if account is not None else AccountTerms()
    for problem in terms_problems(tariff, terms):
        if account_text is not None:
            raise InputError(
                f"{account_name}: {problem.field}: {problem.problem} "
                f"({tariff_name}: {problem.tariff_path})"
            )
        raise InputError(
            f"{tariff_name}: {problem.tariff_path}: needs the account's {problem.field}; "
            "give it in an account terms file (--account)"
        )
    coarse = coarse_readings_problem(tariff, readings, terms)
    if coarse is not None:
        row, text = coarse
        raise InputError(f"{readings_name}: row {row}: {text}")
    return RateInput(loaded, readings, terms)


def _energy_periods(tariff: Tariff) -> list[str]:
    names: dict[str, None] = {}
    for version in tariff.versions:
        if version.energy is not None:
            names.update(dict.fromkeys(period.name for period in version.energy.periods))
    return list(names)


def _check_unit(tariff: Tariff, readings: Readings, readings_name: str) -> None:
    column = readings.quantity_column or "kwh"
    if tariff.commodity == "water" and readings.unit != "m3":
        raise InputError(
            f"{readings_name}: row 1: the tariff {tariff.id} is for water: give m³ readings "
            f"(column 'm3' or 'volume_m3'), not {column!r}"
        )
    if tariff.commodity == "electricity" and readings.unit != "kWh":
        raise InputError(
            f"{readings_name}: row 1: the tariff {tariff.id} is for electricity: give kWh "
            f"readings (column 'kwh'), not {column!r}"
        )


def _reading_groups(readings: Readings) -> list[tuple[int, list[Interval]]]:
    """The intervals of each CSV row (a row with period columns gives several)."""
    return [
        (row, [interval for _, interval in group])
        for row, group in itertools.groupby(
            zip(readings.rows, readings.intervals, strict=True), key=lambda pair: pair[0]
        )
    ]


def _charges_demand(version: TariffVersion) -> bool:
    basic = version.basic
    return (basic is not None and basic.method == "max_demand") or version.demand is not None


def coarse_readings_problem(
    tariff: Tariff, readings: Readings, account: AccountTerms
) -> tuple[int, str] | None:
    """The first reading the tariff cannot price correctly: ``(row, problem)``, or ``None``.

    * A reading longer than an hour, not split by period, that spans more than one of the
      tariff's TOU periods (the engine would price it all in the period of its start).
    * When the version charges maximum demand (basic ``max_demand`` or ``demand``): a
      reading longer than an hour, or split by period, without a ``kw`` value (kWh / hours
      would be an average, not the maximum demand); a TOU demand charge with readings
      longer than an hour.
    """
    starts = [version.effective_from for version in tariff.versions]
    cache: dict[tuple[int, int, DayType, int, int], frozenset[str]] = {}
    for row, intervals in _reading_groups(readings):
        start, end = intervals[0].start, intervals[0].end
        index = bisect.bisect_right(starts, start) - 1
        if index < 0:
            continue  # the engine names it: before the tariff's first version
        version = tariff.versions[index]
        long = end - start > _HOUR
        energy = version.energy
        if (
            long
            and energy is not None
            and len(energy.periods) > 1
            and any(iv.period is None and iv.quantity > 0 for iv in intervals)
        ):
            found = _periods_over(energy.schedule, start, end, account.holidays, index, cache)
            if len(found) > 1:
                names = ", ".join(period.name for period in energy.periods)
                return row, (
                    f"the reading {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} spans the "
                    f"tariff's TOU periods {', '.join(sorted(found))}: give per-period "
                    f"columns ({names}) or readings of an hour or less"
                )
        if not _charges_demand(version):
            continue
        if long and version.demand is not None and version.demand.periods:
            return row, "the tariff's TOU demand charge needs readings of an hour or less"
        if any(iv.kw is not None for iv in intervals):
            continue
        if long or any(iv.period is not None for iv in intervals):
            return row, (
                "the tariff charges maximum demand: readings longer than an hour or split "
                "by period need a 'kw' column (the reading's maximum demand)"
            )
    return None


def _periods_over(
    schedule: Schedule,
    start: datetime,
    end: datetime,
    holidays: frozenset[date],
    version: int,
    cache: dict[tuple[int, int, DayType, int, int], frozenset[str]],
) -> set[str]:
    """Every period ``schedule`` gives in ``[start, end)`` (stops once there are two)."""
    boundaries = sorted(
        {0}
        | {
            minute % MINUTES_PER_DAY
            for rule in (*schedule.rules, *schedule.critical_peak)
            for window in rule.windows
            for minute in (window.start_minute, window.end_minute)
        }
    )
    found: set[str] = set()
    day = start.date()
    last = (end - timedelta(microseconds=1)).date()
    while day <= last:
        first_minute = start.hour * 60 + start.minute if day == start.date() else 0
        end_minute = MINUTES_PER_DAY
        if day == end.date():
            end_minute = end.hour * 60 + end.minute + (1 if end.second or end.microsecond else 0)
        day_type: DayType = (
            "holiday" if day in holidays else "weekend" if day.weekday() >= 5 else "weekday"
        )
        key = (version, day.month, day_type, first_minute, end_minute)
        periods = cache.get(key)
        if periods is None:
            samples = [first_minute] + [
                minute for minute in boundaries if first_minute < minute < end_minute
            ]
            periods = cache[key] = frozenset(
                schedule.period_at(day.month, day_type, minute) for minute in samples
            )
        found |= periods
        if len(found) > 1:
            break
        day += timedelta(days=1)
    return found


# ---------------------------------------------------------------------- rating


def _rate(inputs: RateInput, readings_name: str) -> Bill:
    try:
        return rate(
            tariff=inputs.loaded.tariff, intervals=inputs.readings.intervals, account=inputs.account
        )
    except RatingError as error:
        raise InputError(f"{readings_name}: {error}") from None


def rate_texts(
    *,
    tariff_text: str,
    tariff_name: str,
    readings_text: str,
    readings_name: str,
    account: AccountTerms | None = None,
    account_text: str | None = None,
    account_name: str = "account",
) -> RateReport:
    """Rate the readings with the tariff (and the account terms, as text or given)."""
    inputs = load_inputs(
        tariff_text=tariff_text,
        tariff_name=tariff_name,
        readings_text=readings_text,
        readings_name=readings_name,
        account_text=account_text,
        account_name=account_name,
        account=account,
    )
    return RateReport(inputs.loaded, _rate(inputs, readings_name), inputs.readings)


def _latest_month_only(state: Mapping[str, Any]) -> Mapping[str, Any]:
    """The state without settled months: readings arrive in time order, so only the latest
    month can still change (the engine reads such a state; the fast accumulator writes it)."""
    months = state["months"]
    if len(months) <= 1:
        return state
    latest = max(months)
    return {**state, "months": {latest: months[latest]}}


def incremental_texts(
    *,
    tariff_text: str,
    tariff_name: str,
    readings_text: str,
    readings_name: str,
    account: AccountTerms | None = None,
    account_text: str | None = None,
    account_name: str = "account",
) -> IncrementalReport:
    """Prepaid deductions reading by reading, as real-time deduction computes them.

    Each CSV row's intervals go through :func:`incremental_charge` with the state carried
    from the previous row; the full rating of all readings is returned alongside, and the
    deductions add up to its total (``IncrementalReport.equal``).
    """
    inputs = load_inputs(
        tariff_text=tariff_text,
        tariff_name=tariff_name,
        readings_text=readings_text,
        readings_name=readings_name,
        account_text=account_text,
        account_name=account_name,
        account=account,
    )
    tariff = inputs.loaded.tariff
    rows: list[DeductionRow] = []
    state: Mapping[str, Any] | None = None
    running = _ZERO
    try:
        for row, intervals in _reading_groups(inputs.readings):
            deduction = incremental_charge(
                tariff=tariff, new_intervals=intervals, state=state, account=inputs.account
            )
            state = _latest_month_only(deduction.state)
            running += deduction.amount
            rows.append(
                DeductionRow(
                    row=row,
                    start=intervals[0].start,
                    end=intervals[0].end,
                    quantity=sum((interval.quantity for interval in intervals), _ZERO),
                    amount=deduction.amount,
                    running_total=running,
                )
            )
    except RatingError as error:
        raise InputError(f"{readings_name}: {error}") from None
    return IncrementalReport(
        inputs.loaded, inputs.readings, tuple(rows), _rate(inputs, readings_name)
    )


# ---------------------------------------------------------------------- output


def _readings_json(readings: Readings) -> dict[str, Any]:
    return {
        "layout": readings.layout,
        "step": readings.step,
        "unit": readings.unit,
        "rows": len(set(readings.rows)),
    }


def _readings_text(readings: Readings) -> str:
    rows = len(set(readings.rows))
    noun = "row" if rows == 1 else "rows"
    return f"Readings: {rows} {noun}, {readings.step}, {_UNIT_NAMES[readings.unit]}"


def report_to_json(report: RateReport) -> dict[str, Any]:
    """``{"currency", "tariff", "total", "months": [...], "lines": [...], "warnings": [...]}``."""
    bill = report.bill
    out: dict[str, Any] = {
        "currency": bill.currency,
        "tariff": report.loaded.tariff.id,
        "total": str(bill.total),
        "months": [
            {
                "month": month.month,
                "energy": str(month.energy),
                "demand": str(month.demand),
                "fixed": str(month.fixed),
                "minimum": str(month.minimum),
                "adjustments": str(month.adjustments),
                "total": str(month.total),
            }
            for month in bill.months()
        ],
        "lines": [line.to_dict() for line in bill.lines],
        "warnings": list(report.loaded.warnings),
    }
    if report.readings is not None:
        out["readings"] = _readings_json(report.readings)
    return out


def _heading(loaded: LoadedTariff, currency: str) -> list[str]:
    tariff = loaded.tariff
    out = [f"Tariff {tariff.id} ({tariff.name}), {loaded.source_format}, {currency}"]
    out.extend(f"warning: {warning}" for warning in loaded.warnings)
    return out


def report_to_text(report: RateReport) -> str:
    bill = report.bill
    out = _heading(report.loaded, bill.currency)
    if report.readings is not None:
        out.append(_readings_text(report.readings))
    lines_by_month: dict[str, list[str]] = {}
    for line in bill.lines:
        lines_by_month.setdefault(line.month, []).append(
            f"  {line.component:<13}{line.label:<34}{line.quantity:>14} {line.unit:<6}"
            f"x {line.unit_price:>12}"
            + (f" x {line.proration:.6f}" if line.proration != 1 else "")
            + f" = {line.amount:>12}"
        )
    for month in bill.months():
        out.append("")
        out.append(f"{month.month}")
        out.extend(lines_by_month.get(month.month, []))
        out.append(
            f"  energy {month.energy}  demand {month.demand}  fixed {month.fixed}  "
            f"minimum {month.minimum}  adjustments {month.adjustments}  total {month.total}"
        )
    out.append("")
    out.append(f"Total {bill.total} {bill.currency}")
    return "\n".join(out) + "\n"


def incremental_to_json(report: IncrementalReport) -> dict[str, Any]:
    """``{"currency", "tariff", "unit", "deductions": [...], "total", "bill_total", "equal",
    "readings", "warnings"}``; amounts as decimal strings."""
    return {
        "currency": report.bill.currency,
        "tariff": report.loaded.tariff.id,
        "unit": report.readings.unit,
        "deductions": [
            {
                "row": row.row,
                "start": row.start.isoformat(),
                "end": row.end.isoformat(),
                "quantity": str(row.quantity),
                "amount": str(row.amount),
                "running_total": str(row.running_total),
            }
            for row in report.deductions
        ],
        "total": str(report.total),
        "bill_total": str(report.bill.total),
        "equal": report.equal,
        "readings": _readings_json(report.readings),
        "warnings": list(report.loaded.warnings),
    }


def incremental_to_text(report: IncrementalReport) -> str:
    currency = report.bill.currency
    unit = _UNIT_NAMES[report.readings.unit]
    out = _heading(report.loaded, currency)
    out.append(_readings_text(report.readings))
    out.append("")
    out.append("Prepaid deductions, one reading at a time (with the state carried over)")
    out.append(f"{'row':>5}  {'end':<19}  {unit:>14}  {'deduction':>12}  {'running total':>14}")
    for row in report.deductions:
        out.append(
            f"{row.row:>5}  {row.end:%Y-%m-%dT%H:%M:%S}  {row.quantity:>14}  "
            f"{row.amount:>12}  {row.running_total:>14}"
        )
    out.append("")
    relation = "equals" if report.equal else "DIFFERS FROM"
    out.append(
        f"Sum of deductions {report.total} {currency} {relation} the full rating's total "
        f"{report.bill.total} {currency}"
    )
    return "\n".join(out) + "\n"
