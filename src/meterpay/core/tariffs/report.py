"""What ``meterpay rate`` computes and prints, as pure functions on file contents.

The command reads the files; everything else (detection, parsing, rating, formatting) is
here so it can be tested without Django.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meterpay.core.tariffs.engine import Bill, rate
from meterpay.core.tariffs.errors import RatingError, ReadingsError, TariffError
from meterpay.core.tariffs.loading import LoadedTariff, load_tariff_text
from meterpay.core.tariffs.model import AccountTerms
from meterpay.core.tariffs.readings import parse_interval_csv


class InputError(ValueError):
    """Bad input, with a one-line message naming the file, the row or field, and the problem."""


@dataclass(frozen=True, slots=True)
class RateReport:
    loaded: LoadedTariff
    bill: Bill


def rate_texts(
    *,
    tariff_text: str,
    tariff_name: str,
    readings_text: str,
    readings_name: str,
    account: AccountTerms | None = None,
) -> RateReport:
    try:
        loaded = load_tariff_text(tariff_text)
    except TariffError as error:
        where = error.path or "document"
        raise InputError(f"{tariff_name}: {where}: {error.problem}") from None
    try:
        intervals = parse_interval_csv(readings_text)
    except ReadingsError as error:
        raise InputError(f"{readings_name}: row {error.row}: {error.problem}") from None
    try:
        bill = rate(tariff=loaded.tariff, intervals=intervals, account=account)
    except RatingError as error:
        raise InputError(f"{readings_name}: {error}") from None
    return RateReport(loaded, bill)


def report_to_json(report: RateReport) -> dict[str, Any]:
    """``{"currency", "total", "months": [...], "lines": [...], "warnings": [...]}``."""
    bill = report.bill
    return {
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


def report_to_text(report: RateReport) -> str:
    bill = report.bill
    tariff = report.loaded.tariff
    out = [f"Tariff {tariff.id} ({tariff.name}), {report.loaded.source_format}, {bill.currency}"]
    out.extend(f"warning: {warning}" for warning in report.loaded.warnings)
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
