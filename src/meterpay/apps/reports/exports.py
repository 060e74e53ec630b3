"""Every report as an XLSX workbook.

Numbers are written as numbers with a number format: quantities (kWh, m³) from their exact
four-place Decimals, money from integer minor units divided by the currency's minor units
(a fen-exact value in a double) with a two-decimal format, percentages with one decimal.
Text cells go through ``billing.exports.safe_text``: a customer's or a room's name that
starts with ``=``, ``+``, ``-`` or ``@`` is written with a leading apostrophe, never as a
formula.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import xlsxwriter
from django.utils.translation import gettext as _

from meterpay.apps.billing.exports import safe_text
from meterpay.apps.reports.efficiency import EfficiencyView
from meterpay.apps.reports.selectors import (
    ComprehensiveReport,
    Figures,
    MeterEnergy,
    organisation_clock,
)
from meterpay.core.money import MINOR_UNITS_PER_MAJOR
from meterpay.core.reports.compare import Change, QuantityChange
from meterpay.core.reports.tou import SLOTS


class Money:
    """An amount in minor units, written as a money cell."""

    __slots__ = ("minor",)

    def __init__(self, minor: int) -> None:
        self.minor = int(minor)


class Quantity:
    """kWh or m³ (four places), written as a number."""

    __slots__ = ("value",)

    def __init__(self, value: Decimal) -> None:
        self.value = value


class Percent:
    """A percentage (one decimal), written as a number."""

    __slots__ = ("value",)

    def __init__(self, value: Decimal) -> None:
        self.value = value


class _Book:
    def __init__(self, currency: str) -> None:
        self.buffer = io.BytesIO()
        self.book = xlsxwriter.Workbook(
            self.buffer,
            {"in_memory": True, "remove_timezone": True, "strings_to_formulas": False},
        )
        self.per_major = MINOR_UNITS_PER_MAJOR.get(currency, 100)
        digits = len(str(self.per_major)) - 1
        money = "#,##0" + ("." + "0" * digits if digits else "")
        add = self.book.add_format
        self.formats = {
            "header": add({"bold": True, "bg_color": "#E8EEF7", "border": 1, "text_wrap": True}),
            "money": add({"num_format": money}),
            "quantity": add({"num_format": "#,##0.0000"}),
            "percent": add({"num_format": "0.0"}),
            "day": add({"num_format": "yyyy-mm-dd"}),
            "moment": add({"num_format": "yyyy-mm-dd hh:mm"}),
            "bold": add({"bold": True}),
            "bold_money": add({"bold": True, "num_format": money}),
            "bold_quantity": add({"bold": True, "num_format": "#,##0.0000"}),
        }

    def sheet(
        self,
        title: str,
        header: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        bold: set[int] | None = None,
    ) -> None:
        sheet = self.book.add_worksheet(safe_text(title)[:31].replace("'", ""))
        for column, name in enumerate(header):
            sheet.write_string(0, column, safe_text(name), self.formats["header"])
            sheet.set_column(column, column, max(10, min(len(name) + 2, 28)))
        for r, row in enumerate(rows, 1):
            strong = bold is not None and r - 1 in bold
            for c, value in enumerate(row):
                self._write(sheet, r, c, value, strong)
        sheet.freeze_panes(1, 0)
        if rows:
            sheet.autofilter(0, 0, len(rows), len(header) - 1)

    def _write(self, sheet: Any, r: int, c: int, value: Any, strong: bool) -> None:
        f = self.formats
        if value is None:
            sheet.write_blank(r, c, None)
        elif isinstance(value, Money):
            sheet.write_number(
                r, c, value.minor / self.per_major, f["bold_money" if strong else "money"]
            )
        elif isinstance(value, Quantity):
            sheet.write_number(
                r, c, float(value.value), f["bold_quantity" if strong else "quantity"]
            )
        elif isinstance(value, Percent):
            sheet.write_number(r, c, float(value.value), f["percent"])
        elif isinstance(value, datetime):
            sheet.write_datetime(r, c, value.replace(tzinfo=None), f["moment"])
        elif isinstance(value, date):
            sheet.write_datetime(r, c, datetime.combine(value, time()), f["day"])
        elif isinstance(value, bool):
            sheet.write_string(r, c, _("yes") if value else "")
        elif isinstance(value, int):
            sheet.write_number(r, c, value)
        else:
            sheet.write_string(r, c, safe_text(value), f["bold"] if strong else None)

    def close(self) -> bytes:
        self.book.close()
        return self.buffer.getvalue()


def _percent(value: Decimal | None) -> Percent | None:
    return None if value is None else Percent(value)


def _difference(item: Change | QuantityChange) -> Money | Quantity | None:
    if isinstance(item, QuantityChange):
        return None if item.difference is None else Quantity(item.difference)
    return None if item.difference is None else Money(item.difference)


def _figures_header() -> list[str]:
    return [
        _("kWh"),
        *[_("kWh %(period)s") % {"period": name} for name in SLOTS],
        _("m³"),
        _("Electricity"),
        _("Water"),
        _("Other deductions"),
        _("Charges"),
        _("Public-area share"),
        _("Line loss"),
        _("Adjustments"),
        _("Total"),
        _("Data coverage %"),
        _("Estimated intervals"),
        _("Flagged intervals"),
        _("kWh month on month"),
        _("kWh month on month %"),
        _("Total month on month"),
        _("Total month on month %"),
        _("kWh year on year"),
        _("kWh year on year %"),
        _("Total year on year"),
        _("Total year on year %"),
    ]


def _figures_cells(figures: Figures, mom: Any, yoy: Any) -> list[Any]:
    return [
        Quantity(figures.kwh),
        *[Quantity(figures.kwh_by_period[name]) for name in SLOTS],
        Quantity(figures.m3),
        Money(figures.electricity_minor),
        Money(figures.water_minor),
        Money(figures.other_deductions_minor),
        Money(figures.charges_minor),
        Money(figures.public_share_minor),
        Money(figures.line_loss_minor),
        Money(figures.adjustments_minor),
        Money(figures.total_minor),
        _percent(figures.coverage),
        figures.estimated,
        figures.flagged,
        _difference(mom.kwh),
        _percent(mom.kwh.percent),
        _difference(mom.total_minor),
        _percent(mom.total_minor.percent),
        _difference(yoy.kwh),
        _percent(yoy.kwh.percent),
        _difference(yoy.total_minor),
        _percent(yoy.total_minor.percent),
    ]


def comprehensive_xlsx(report: ComprehensiveReport) -> bytes:
    """The comprehensive report: its rows, then the subtotals and the total."""
    book = _Book(report.currency)
    place_header = [_("Site"), _("Building"), _("Floor"), _("Rooms"), _("Account"), _("Customer")]
    rows = [
        [
            row.place.site,
            row.place.building,
            row.place.floor,
            row.rooms,
            row.account_number,
            row.customer,
            *_figures_cells(row.figures, row.month_on_month, row.year_on_year),
        ]
        for row in report.rows
    ]
    book.sheet(
        _("Report %(start)s to %(end)s") % {"start": report.start, "end": report.end},
        place_header + _figures_header(),
        rows,
    )
    levels = {"site": _("Site"), "building": _("Building"), "floor": _("Floor")}
    subtotals = [
        [
            levels[s.level],
            s.place.site,
            s.place.building if s.level != "site" else "",
            s.name if s.level == "floor" else "",
            *_figures_cells(s.figures, s.month_on_month, s.year_on_year),
        ]
        for s in report.subtotals
    ]
    subtotals.append(
        [
            _("Total"),
            "",
            "",
            "",
            *_figures_cells(report.total, report.month_on_month, report.year_on_year),
        ]
    )
    book.sheet(
        _("Subtotals"),
        [_("Level"), _("Site"), _("Building"), _("Floor"), *_figures_header()],
        subtotals,
        bold={len(subtotals) - 1},
    )
    return book.close()


def meter_energy_xlsx(energy: MeterEnergy, *, currency: str = "CNY") -> bytes:
    """A meter's energy per day, month or year; missing and estimated buckets marked."""
    book = _Book(currency)
    header = [
        _("From"),
        energy.unit,
        *[_("%(unit)s %(period)s") % {"unit": energy.unit, "period": n} for n in SLOTS],
        _("Intervals"), _("Estimated intervals"), _("Flagged intervals"), _("Data coverage %"),
        _("Missing data"), _("No data"),
    ]  # fmt: skip
    rows: list[list[Any]] = [
        [
            p.start,
            None if p.quantity is None else Quantity(p.quantity),
            *[Quantity(p.by_period[n]) if n in p.by_period else None for n in SLOTS],
            p.intervals,
            p.estimated,
            p.flagged,
            Percent(p.coverage),
            p.missing,
            p.quantity is None,
        ]
        for p in energy.points
    ]
    rows.append([_("Total"), Quantity(energy.total), *[None] * (len(header) - 2)])
    book.sheet(f"{energy.address}", header, rows, bold={len(rows) - 1})
    return book.close()


def efficiency_xlsx(view: EfficiencyView, *, currency: str = "CNY") -> bytes:
    """The efficiency view: load curve, heat map, composition, ranking, anomalies, suggestions."""
    book = _Book(currency)
    local: Callable[[datetime], datetime] = organisation_clock(view.organisation_id).local
    book.sheet(
        _("Load curve"),
        [_("Hour"), _("kWh")],
        [[local(at), None if kwh is None else Quantity(kwh)] for at, kwh in view.load_curve],
    )
    book.sheet(
        _("Heat map"),
        [_("Day"), *[f"{hour:02d}:00" for hour in range(24)]],
        [
            [day, *[None if v is None else Quantity(v) for v in values]]
            for day, values in view.heat_map
        ],
    )
    book.sheet(
        _("Composition"),
        [_("Period"), _("kWh"), _("Share %")],
        [
            [
                name,
                Quantity(kwh),
                _percent((kwh * 100 / view.kwh).quantize(Decimal("0.1")) if view.kwh else None),
            ]
            for name, kwh in view.composition.items()
        ],
    )
    book.sheet(
        _("Ranking"),
        [
            _("Site"),
            _("Building"),
            _("Floor"),
            _("Room"),
            _("kWh"),
            _("kWh/m²"),
            _("Peak and sharp %"),
            _("Sharp %"),
            _("Night base load kW"),
            _("Weekend base load kW"),
        ],
        [
            [
                r.place.site,
                r.place.building,
                r.place.floor,
                r.place.room or r.key,
                Quantity(r.kwh),
                None if r.kwh_per_m2 is None else Quantity(r.kwh_per_m2),
                _percent(r.peak_share),
                _percent(r.sharp_share),
                None if r.night_base_kw is None else Quantity(r.night_base_kw),
                None if r.weekend_base_kw is None else Quantity(r.weekend_base_kw),
            ]
            for r in view.ranking
        ],
    )
    kinds = {
        "night_base_jump": _("Night base load jumped (kW)"),
        "peak_share_jump": _("Peak share jumped (%)"),
        "zero_consumption": _("No consumption (days)"),
    }
    book.sheet(
        _("Anomalies"),
        [
            _("Room"),
            _("Meter"),
            _("Anomaly"),
            _("From"),
            _("To"),
            _("Now"),
            _("Before"),
            _("Days without data"),
        ],
        [
            [
                a.place.room or a.key,
                a.meter_id or "",
                kinds[a.anomaly.kind],
                a.anomaly.first,
                a.anomaly.last,
                Quantity(a.anomaly.current),
                None if a.anomaly.baseline is None else Quantity(a.anomaly.baseline),
                a.anomaly.missing_days,
            ]
            for a in view.anomalies
        ],
    )
    book.sheet(
        _("Peak shaving"),
        [
            _("Room"),
            _("Tariff"),
            _("Moved %"),
            _("kWh moved"),
            _("Cost now"),
            _("Cost after"),
            _("Saved"),
            _("Suggestion"),
        ],
        [
            [
                s.place.room or s.key,
                s.tariff,
                Percent(s.percent),
                Quantity(s.moved_kwh),
                Money(s.before_minor),
                Money(s.after_minor),
                Money(s.saved_minor),
                s.text,
            ]
            for s in view.suggestions
        ],
    )
    return book.close()
