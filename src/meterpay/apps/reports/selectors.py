"""Reads of the reports: the monthly comprehensive report and the energy per meter, from the
roll-ups (never from raw intervals), with the month-end bills for charges and shares.

Every function takes the organisation first and returns plain dataclasses (quantities as
``Decimal`` kWh or m³, money as integer minor units), so a console view or an API operation
is one call. What the numbers mean: docs/reports.md.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
from django.db import connection
from django.utils import timezone

from meterpay.apps.billing.models import Bill, BillLine
from meterpay.apps.customers.models import Account
from meterpay.apps.meters.models import Meter
from meterpay.apps.organisations.models import Organisation
from meterpay.apps.reports.contexts import clock
from meterpay.apps.reports.models import CostDay, CostMonth, MeterDay, MeterMonth
from meterpay.apps.sites.models import Room
from meterpay.core.reports.compare import (
    Change,
    QuantityChange,
    previous_span,
    shift_months,
    split_span,
    year_before,
)
from meterpay.core.reports.rollup import (
    ELECTRICITY,
    FIGURES,
    NOT_METERED,
    WATER,
    LocalClock,
    from_units,
)
from meterpay.core.reports.tou import TOU_SLOTS

#: Bill sections a report shows from the bills (the consumption lines come from the ledger).
BILL_SECTIONS: dict[str, str] = {
    BillLine.Section.CHARGES: "charges_minor",
    BillLine.Section.PUBLIC_SHARE: "public_share_minor",
    BillLine.Section.LINE_LOSS: "line_loss_minor",
    BillLine.Section.ADJUSTMENT: "adjustments_minor",
}
#: Bills that count: issued ones (also those paid or credited since: their credit note,
#: negative, cancels a credited one).
BILLED_STATUSES = (Bill.Status.ISSUED, Bill.Status.PAID, Bill.Status.CREDITED)
_PERCENT = Decimal("0.1")
_DAY_SECONDS = 86_400


# ---------------------------------------------------------------------------- figures


#: The integer sums behind :class:`Figures`, in order.
_SUMS = (
    "kwh", "sharp", "peak", "flat", "valley", "other", "m3", "intervals", "estimated",
    "flagged", "seconds", "electricity_minor", "water_minor", "other_deductions_minor",
    "charges_minor", "public_share_minor", "line_loss_minor", "adjustments_minor",
)  # fmt: skip
_AT = {name: index for index, name in enumerate(_SUMS)}
# bucket figures that add to a row, per utility
_ELECTRIC = [(FIGURES.index(n), _AT[n]) for n in ("sharp", "peak", "flat", "valley", "other")]
_COST_TARGET = {
    ELECTRICITY: "electricity_minor",
    WATER: "water_minor",
    NOT_METERED: "other_deductions_minor",
}
_QUALITY = [(FIGURES.index(n), _AT[n]) for n in ("intervals", "estimated", "flagged", "seconds")]


@dataclass(frozen=True, slots=True)
class Figures:
    """A row's (or subtotal's) figures for a span, worked out from its exact integer sums
    when read (a page shows a few rows of thousands; an export reads them all).

    ``kwh_by_period``: sharp, peak, flat, valley, other and untimed kWh (they add up to
    ``kwh``). Money: electricity and water are what the ledger's deductions took (rating
    credits negative), ``other_deductions_minor`` deductions that name no meter; charges,
    public-area share, line loss and adjustments are the booked lines of the span's bills.
    ``coverage``: the percentage of the meters' time in the span that booked readings cover
    (below 100: data missing); ``estimated`` intervals were booked over missed reads.
    """

    sums: tuple[int, ...]
    meters: int
    expected_seconds: int

    @property
    def kwh(self) -> Decimal:
        return from_units(self.sums[_AT["kwh"]])

    @property
    def kwh_by_period(self) -> dict[str, Decimal]:
        found = {name: from_units(self.sums[_AT[name]]) for name in TOU_SLOTS}
        untimed = self.sums[_AT["kwh"]] - sum(self.sums[_AT[name]] for name in TOU_SLOTS)
        return {**found, "untimed": from_units(untimed)}

    @property
    def m3(self) -> Decimal:
        return from_units(self.sums[_AT["m3"]])

    @property
    def electricity_minor(self) -> int:
        return self.sums[_AT["electricity_minor"]]

    @property
    def water_minor(self) -> int:
        return self.sums[_AT["water_minor"]]

    @property
    def other_deductions_minor(self) -> int:
        return self.sums[_AT["other_deductions_minor"]]

    @property
    def charges_minor(self) -> int:
        return self.sums[_AT["charges_minor"]]

    @property
    def public_share_minor(self) -> int:
        return self.sums[_AT["public_share_minor"]]

    @property
    def line_loss_minor(self) -> int:
        return self.sums[_AT["line_loss_minor"]]

    @property
    def adjustments_minor(self) -> int:
        return self.sums[_AT["adjustments_minor"]]

    @property
    def intervals(self) -> int:
        return self.sums[_AT["intervals"]]

    @property
    def estimated(self) -> int:
        return self.sums[_AT["estimated"]]

    @property
    def flagged(self) -> int:
        return self.sums[_AT["flagged"]]

    @property
    def coverage(self) -> Decimal | None:
        if not self.meters or self.expected_seconds <= 0:
            return None
        share = Decimal(self.sums[_AT["seconds"]]) * 100 / (self.meters * self.expected_seconds)
        return min(Decimal(100), share.quantize(_PERCENT, rounding=ROUND_HALF_UP))

    @property
    def deductions_minor(self) -> int:
        """What the ledger's deductions took (electricity, water and the rest)."""
        return self.electricity_minor + self.water_minor + self.other_deductions_minor

    @property
    def bills_minor(self) -> int:
        """The booked lines of the bills: charges, shares, line loss, adjustments."""
        return (
            self.charges_minor
            + self.public_share_minor
            + self.line_loss_minor
            + self.adjustments_minor
        )

    @property
    def total_minor(self) -> int:
        return _money(self.sums)


def _money(sums: Sequence[int]) -> int:
    return int(sum(sums[_AT["electricity_minor"] : _AT["adjustments_minor"] + 1]))


@dataclass(frozen=True, slots=True)
class Comparison:
    """A row's figures against another span (the month before, the year before): kWh, m³,
    electricity, water and total, each a change worked out when read. ``before`` None: no
    data in that span."""

    start: date
    end: date
    now: tuple[int, ...]
    before: tuple[int, ...] | None

    def _units(self, name: str) -> QuantityChange:
        at = _AT[name]
        return QuantityChange(self.now[at], None if self.before is None else self.before[at])

    def _minor(self, name: str) -> Change:
        at = _AT[name]
        return Change(self.now[at], None if self.before is None else self.before[at])

    @property
    def kwh(self) -> QuantityChange:
        return self._units("kwh")

    @property
    def m3(self) -> QuantityChange:
        return self._units("m3")

    @property
    def electricity_minor(self) -> Change:
        return self._minor("electricity_minor")

    @property
    def water_minor(self) -> Change:
        return self._minor("water_minor")

    @property
    def total_minor(self) -> Change:
        return Change(_money(self.now), None if self.before is None else _money(self.before))


# ---------------------------------------------------------------------------- the catalogue


@dataclass(frozen=True, slots=True)
class Place:
    """Where a row is: its room, floor, building and site (ids and names)."""

    room_id: int | None = None
    room: str = ""
    area_m2: Decimal = Decimal(0)
    floor_id: int | None = None
    floor: str = ""
    level: int = 0
    building_id: int | None = None
    building: str = ""
    site_id: int | None = None
    site: str = ""

    def order(self) -> tuple[str, str, int, str]:
        return (self.site, self.building, self.level, self.room)


_METER_CODES = 10**15


@dataclass(slots=True)
class _Catalogue:
    """An organisation's meters, rooms and accounts, loaded once per report."""

    meters: dict[int, tuple[int | None, int | None, str, str, date | None]]
    places: dict[int, Place]
    accounts: dict[int, tuple[str, str, str]]  # number, customer, status
    account_rooms: dict[int, list[int]]
    _found: dict[str, Place] = field(default_factory=dict)
    _meter_rooms: dict[int, int] = field(default_factory=dict)

    @classmethod
    def load(cls, organisation_id: int) -> _Catalogue:
        places = {
            pk: Place(
                pk, number, area, floor_id, floor, level, building_id, building, site_id, site
            )
            for pk, number, area, floor_id, floor, level, building_id, building, site_id, site in (
                Room.objects.filter(organisation_id=organisation_id).values_list(
                    "pk",
                    "number",
                    "area_m2",
                    "floor_id",
                    "floor__name",
                    "floor__level",
                    "floor__building_id",
                    "floor__building__name",
                    "floor__building__site_id",
                    "floor__building__site__name",
                )
            )
        }
        meters: dict[int, tuple[int | None, int | None, str, str, date | None]] = {
            pk: (account_id, room_id, kind, address, installed_on)
            for pk, account_id, room_id, kind, address, installed_on in Meter.objects.filter(
                organisation_id=organisation_id
            ).values_list("pk", "account_id", "room_id", "kind", "address", "installed_on")
        }
        accounts = {
            pk: (number, customer, status)
            for pk, number, customer, status in Account.objects.filter(
                organisation_id=organisation_id
            ).values_list("pk", "number", "customer__name", "status")
        }
        account_rooms: dict[int, list[int]] = {}
        for account_id, room_id in Account.rooms.through.objects.filter(
            account__organisation_id=organisation_id
        ).values_list("account_id", "room_id"):
            account_rooms.setdefault(account_id, []).append(room_id)
        for rooms in account_rooms.values():
            rooms.sort(key=lambda pk: places[pk].order())
        return cls(meters, places, accounts, account_rooms)

    def account_number(self, key: str) -> str:
        kind, _, raw = key.partition(":")
        return self.accounts.get(int(raw), ("",))[0] if kind == "account" else ""

    def code(self, meter_id: int, account_id: int) -> int:
        """:meth:`key` as an integer: the account id, minus the room id, or a meter's code."""
        if account_id:
            return account_id
        meter = self.meters.get(meter_id)
        if meter is not None and meter[1] is not None:
            return -meter[1]
        return -(_METER_CODES + meter_id)

    def key_of(self, code: int) -> str:
        if code > 0:
            return f"account:{code}"
        if code > -_METER_CODES:
            return f"room:{-code}"
        return f"meter:{-code - _METER_CODES}"

    def key(self, meter_id: int, account_id: int) -> str:
        """The row a meter's bucket belongs to: its account's, else its room's, else its own."""
        if account_id:
            return f"account:{account_id}"
        meter = self.meters.get(meter_id)
        if meter is not None and meter[1] is not None:
            return f"room:{meter[1]}"
        return f"meter:{meter_id}"

    def place(self, key: str) -> Place:
        """A row's place: an account's first room (else its first meter's), a room, a
        meter's room."""
        found = self._found.get(key)
        if found is None:
            found = self._found[key] = self._place(key)
        return found

    def _place(self, key: str) -> Place:
        kind, _, raw = key.partition(":")
        pk = int(raw)
        if kind == "account":
            rooms = self.account_rooms.get(pk)
            if rooms:
                return self.places[rooms[0]]
            if not self._meter_rooms:
                for account_id, room_id, *_rest in self.meters.values():
                    if account_id is not None and room_id is not None:
                        self._meter_rooms.setdefault(account_id, room_id)
                self._meter_rooms[0] = 0  # loaded
            room = self._meter_rooms.get(pk)
            return self.places[room] if room else Place()
        if kind == "room":
            return self.places.get(pk, Place())
        meter = self.meters.get(pk)
        if meter is not None and meter[1] is not None:
            return self.places[meter[1]]
        return Place()


# ---------------------------------------------------------------------------- sums of a span

#: The columns of a span's sums: :data:`_SUMS`, then how many meters.
_METERS = len(_SUMS)
_COLUMNS = _METERS + 1
#: kwh … seconds (the first eleven sums), then the meters
_CONSUMPTION_SQL = """
    {spans}
    SELECT s.span, t.account_id, CASE WHEN t.account_id = 0 THEN t.meter_id ELSE 0 END,
        CAST(SUM(CASE WHEN t.utility = 'e' THEN t.quantity ELSE 0 END) AS BIGINT),
        CAST(SUM(t.sharp) AS BIGINT), CAST(SUM(t.peak) AS BIGINT), CAST(SUM(t.flat) AS BIGINT),
        CAST(SUM(t.valley) AS BIGINT), CAST(SUM(t.other) AS BIGINT),
        CAST(SUM(CASE WHEN t.utility = 'w' THEN t.quantity ELSE 0 END) AS BIGINT),
        CAST(SUM(t.intervals) AS BIGINT), CAST(SUM(t.estimated) AS BIGINT),
        CAST(SUM(t.flagged) AS BIGINT), CAST(SUM(t.seconds) AS BIGINT), {meters}
    FROM {table} t JOIN s ON {join} WHERE {where} GROUP BY 1, 2, 3
"""
#: electricity, water, other deductions
_COST_SQL = """
    {spans}
    SELECT s.span, t.account_id,
        CAST(SUM(CASE WHEN t.utility = 'e' THEN t.amount_minor ELSE 0 END) AS BIGINT),
        CAST(SUM(CASE WHEN t.utility = 'w' THEN t.amount_minor ELSE 0 END) AS BIGINT),
        CAST(SUM(CASE WHEN t.utility = '' THEN t.amount_minor ELSE 0 END) AS BIGINT)
    FROM {table} t JOIN s ON {join} WHERE {where} GROUP BY 1, 2
"""
#: Per account and section, the booked lines of the bills of periods within the span:
#: issued (paid, credited) bills' posted lines, and their credit notes' lines (negative).
_BILLS_SQL = """
    {spans}
    SELECT s.span, b.account_id, l.section, CAST(SUM(l.amount_minor) AS BIGINT)
    FROM {lines} l JOIN {bills} b ON b.id = l.bill_id
    JOIN s ON b.period_start >= s.first AND b.period_end <= s.last
    WHERE b.organisation_id = %s AND {sections}
      AND ((b.kind = 'credit_note' AND b.status = 'issued')
           OR (b.kind <> 'credit_note' AND {statuses} AND l.posted))
    GROUP BY 1, 2, 3
"""
_COST_AT = _AT["electricity_minor"]
_SECTION_AT = {section: _AT[name] for section, name in BILL_SECTIONS.items()}


def _span_seconds(start: date, end: date, now: date) -> int:
    """Seconds of ``[start, end)`` up to today (a report of the current month is not 'missing'
    the days still to come)."""
    last = min(end, now + timedelta(days=1))
    return max(0, (last - start).days) * _DAY_SECONDS


def _any(column: str, values: Collection[Any]) -> tuple[str, list[Any]]:
    """``column`` is one of ``values``: one array parameter on PostgreSQL."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s)", [list(values)]
    if not values:
        return "1 = 0", []
    return f"{column} IN ({', '.join(['%s'] * len(values))})", list(values)


@dataclass(slots=True)
class _Fetched:
    """What the database says of the spans, a row per span (its index first) and account
    (meter for account 0)."""

    consumption: list[tuple[Any, ...]] = field(default_factory=list)
    cost: list[tuple[Any, ...]] = field(default_factory=list)
    bills: list[tuple[Any, ...]] = field(default_factory=list)


def _spans_cte(columns: str, rows: Sequence[tuple[Any, ...]]) -> tuple[str, list[Any]]:
    """``WITH s(columns) AS (VALUES …)``: the spans a query sums for, joined to its rows."""
    postgres = connection.vendor == "postgresql"
    params: list[Any] = []
    values = []
    for row in rows:
        marks = []
        for value in row:
            if isinstance(value, date):
                marks.append("%s::date" if postgres else "%s")
                params.append(value if postgres else connection.ops.adapt_datefield_value(value))
            else:
                marks.append("%s::int" if postgres else "%s")
                params.append(value)
        values.append(f"({', '.join(marks)})")
    return f"WITH s({columns}) AS (VALUES {', '.join(values)})", params


def _fetch(
    catalogue: _Catalogue, organisation_id: int, spans: Mapping[str, tuple[date, date]]
) -> _Fetched:
    """Every span's sums in a few statements: whole months from the monthly buckets (one
    statement for all the spans), the days around them from the daily ones, the bills of
    periods within each span. Grouped in SQL: a row per span and account (per meter for
    account 0)."""
    names = list(spans)
    found = _Fetched()
    months: list[tuple[int, date]] = []
    loose: list[tuple[int, date, date]] = []
    several: set[int] = set()
    for index, name in enumerate(names):
        whole, days = split_span(*spans[name])
        months.extend((index, month) for month in whole)
        loose.extend((index, first, last) for first, last in days)
        if len(whole) + len(days) > 1:
            several.add(index)
    # a month's bucket is unique per (meter, account): its rows count the meters, unless a
    # span reads several buckets of a meter
    meters = "COUNT(DISTINCT t.meter_id)" if several else "COUNT(*)"
    with connection.cursor() as cursor:

        def run(sql: str, params: list[Any], into: str) -> None:
            cursor.execute(sql, params)
            getattr(found, into).extend(cursor.fetchall())

        if months:
            cte, params = _spans_cte("span, month", months)
            join = "s.month = t.month"
            where = "t.organisation_id = %s"
            run(
                _CONSUMPTION_SQL.format(
                    spans=cte,
                    table=MeterMonth._meta.db_table,
                    meters=meters,
                    join=join,
                    where=where,
                ),
                [*params, organisation_id],
                "consumption",
            )
            run(
                _COST_SQL.format(spans=cte, table=CostMonth._meta.db_table, join=join, where=where),
                [*params, organisation_id],
                "cost",
            )
        if loose:
            cte, params = _spans_cte("span, first, last", loose)
            join = "t.day >= s.first AND t.day < s.last"
            in_meters, meter_params = _any("t.meter_id", list(catalogue.meters))
            in_accounts, account_params = _any("t.account_id", list(catalogue.accounts))
            run(
                _CONSUMPTION_SQL.format(
                    spans=cte, table=MeterDay._meta.db_table, meters="COUNT(DISTINCT t.meter_id)",
                    join=join, where=in_meters,
                ),
                [*params, *meter_params],
                "consumption",
            )  # fmt: skip
            run(
                _COST_SQL.format(
                    spans=cte, table=CostDay._meta.db_table, join=join, where=in_accounts
                ),
                [*params, *account_params],
                "cost",
            )
        cte, params = _spans_cte(
            "span, first, last", [(i, *spans[name]) for i, name in enumerate(names)]
        )
        sections, section_params = _any("l.section", list(BILL_SECTIONS))
        statuses, status_params = _any("b.status", list(BILLED_STATUSES))
        run(
            _BILLS_SQL.format(
                spans=cte, lines=BillLine._meta.db_table, bills=Bill._meta.db_table,
                sections=sections, statuses=statuses,
            ),
            [*params, organisation_id, *section_params, *status_params],
            "bills",
        )  # fmt: skip
    return found


class _Sums:
    """Every span's sums as one integer matrix per span (a row per report row), so rows,
    subtotals and totals are added up by numpy, not by Python loops."""

    def __init__(self, catalogue: _Catalogue, names: Sequence[str], found: _Fetched) -> None:
        self.index: dict[int, int] = {}
        consumption = self._keys(r[1] or catalogue.code(r[2], 0) for r in found.consumption)
        cost = self._keys(r[1] for r in found.cost)
        bills = self._keys(r[1] for r in found.bills)
        size = len(self.index)
        self.matrices: dict[str, np.ndarray[Any, np.dtype[np.int64]]] = {}
        self.present: dict[str, np.ndarray[Any, np.dtype[np.bool_]]] = {}
        empty = np.zeros((0, 16), dtype=np.int64)
        usage = np.array(found.consumption, dtype=np.int64) if found.consumption else empty
        money = np.array(found.cost, dtype=np.int64) if found.cost else empty[:, :5]
        billed = np.array(
            [(r[0], _SECTION_AT[r[2]], r[3]) for r in found.bills], dtype=np.int64
        ).reshape(-1, 3)
        for span, name in enumerate(names):
            matrix = np.zeros((size, _COLUMNS), dtype=np.int64)
            present = np.zeros(size, dtype=bool)
            rows = usage[:, 0] == span
            at = consumption[rows]
            np.add.at(matrix[:, :11], at, usage[rows, 3:14])
            np.maximum.at(matrix[:, _METERS], at, usage[rows, 14])
            present[at] = True
            rows = money[:, 0] == span
            np.add.at(matrix[:, _COST_AT : _COST_AT + 3], cost[rows], money[rows, 2:5])
            present[cost[rows]] = True
            rows = billed[:, 0] == span
            np.add.at(matrix, (bills[rows], billed[rows, 1]), billed[rows, 2])
            present[bills[rows]] = True
            self.matrices[name] = matrix
            self.present[name] = present

    def _keys(self, codes: Iterable[int]) -> np.ndarray[Any, np.dtype[np.int64]]:
        index = self.index
        found = [index.setdefault(code, len(index)) for code in codes]
        return np.array(found, dtype=np.int64).reshape(-1)

    def key(self, code: int) -> int:
        return self.index.setdefault(code, len(self.index))


# ---------------------------------------------------------------------------- the report


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One account (or, for meters without an account, their room): its place, figures and
    comparisons."""

    key: str
    account_id: int | None
    account_number: str
    customer: str
    rooms: str
    place: Place
    figures: Figures
    month_on_month: Comparison
    year_on_year: Comparison


@dataclass(frozen=True, slots=True)
class Subtotal:
    """A site's, building's or floor's rows added up (``level``: site, building, floor)."""

    level: str
    id: int | None
    name: str
    place: Place
    figures: Figures
    month_on_month: Comparison
    year_on_year: Comparison


@dataclass(frozen=True, slots=True)
class ComprehensiveReport:
    organisation_id: int
    currency: str
    start: date
    end: date
    rows: tuple[ReportRow, ...]
    subtotals: tuple[Subtotal, ...]
    total: Figures
    month_on_month: Comparison
    year_on_year: Comparison
    previous: tuple[date, date] = field(default=(date.min, date.min))
    year_before: tuple[date, date] = field(default=(date.min, date.min))


def _subtotal_order(subtotal: Subtotal) -> tuple[str, int, str, int, int, str]:
    """Each site, then its buildings, each followed by its floors."""
    place = subtotal.place
    if subtotal.level == "site":
        return (place.site, 0, "", 0, 0, "")
    if subtotal.level == "building":
        return (place.site, 1, place.building, 0, 0, "")
    return (place.site, 1, place.building, 1, place.level, place.floor)


def _add(target: list[int], source: Sequence[int]) -> None:
    for index, value in enumerate(source):
        target[index] += value


_LEVELS: dict[str, Callable[[Place], tuple[int | None, str]]] = {
    "site": lambda p: (p.site_id, p.site),
    "building": lambda p: (p.building_id, p.building),
    "floor": lambda p: (p.floor_id, p.floor),
}


def comprehensive_report(
    *,
    organisation_id: int,
    start: date,
    end: date,
    site_id: int | None = None,
    building_id: int | None = None,
    floor_id: int | None = None,
    account_ids: Collection[int] | None = None,
    today: date | None = None,
) -> ComprehensiveReport:
    """The monthly (or any span's) comprehensive report: per account (and room without an
    account) the kWh in all and by period, electricity cost, m³ and water cost, the bills'
    charges and shares, with site, building and floor subtotals and month-on-month and
    year-on-year changes. ``[start, end)`` are local days; whole months read monthly buckets.

    A row for every account that is not closed (and every room whose meters have no
    account) in scope, with data or not; a closed account's row while it has data.
    """
    if end <= start:
        raise ValueError("the span ends before it starts")
    organisation = Organisation.objects.only("currency").get(pk=organisation_id)
    catalogue = _Catalogue.load(organisation_id)
    today = today or timezone.localdate()
    spans = {
        "now": (start, end),
        "previous": previous_span(start, end),
        "year_before": year_before(start, end),
    }
    sums = _Sums(catalogue, list(spans), _fetch(catalogue, organisation_id, spans))
    # the rows: what has data now, and every account (room) in the catalogue not closed
    attached: dict[int, int] = {}
    for meter_id, (account_id, *_rest) in catalogue.meters.items():
        if account_id and catalogue.accounts[account_id][2] == Account.Status.CLOSED:
            continue
        at = sums.key(catalogue.code(meter_id, account_id or 0))
        attached[at] = attached.get(at, 0) + 1
    codes = list(sums.index)
    keys = [catalogue.key_of(code) for code in codes]
    size = len(keys)
    for name in spans:  # keys added for the catalogue's rows
        matrix = sums.matrices[name]
        if len(matrix) < size:
            grown = np.zeros((size, _COLUMNS), dtype=np.int64)
            grown[: len(matrix)] = matrix
            sums.matrices[name] = grown
            flags = np.zeros(size, dtype=bool)
            flags[: len(sums.present[name])] = sums.present[name]
            sums.present[name] = flags
    places = [catalogue.place(key) for key in keys]
    wanted = set(account_ids) if account_ids is not None else None
    in_scope = np.array(
        [
            (wanted is None or code in wanted)
            and (site_id is None or place.site_id == site_id)
            and (building_id is None or place.building_id == building_id)
            and (floor_id is None or place.floor_id == floor_id)
            for code, place in zip(codes, places, strict=True)
        ],
        dtype=bool,
    ).reshape(size)
    now = sums.matrices["now"]
    for at, count in attached.items():
        now[at, _METERS] = max(int(now[at, _METERS]), count)
    shown = in_scope & (sums.present["now"] | np.isin(np.arange(size), list(attached)))
    expected = {name: _span_seconds(*span, today) for name, span in spans.items()}

    def figures(values: tuple[int, ...], name: str) -> Figures:
        return Figures(values[:_METERS], values[_METERS], expected[name])

    tuples = {
        name: [tuple(row) for row in matrix.tolist()] for name, matrix in sums.matrices.items()
    }
    present = {name: flags.tolist() for name, flags in sums.present.items()}
    order = sorted(
        np.flatnonzero(shown).tolist(),
        key=lambda at: (*places[at].order(), catalogue.account_number(keys[at]), keys[at]),
    )
    rows = []
    for at in order:
        key = keys[at]
        values = tuples["now"][at]
        account_id = codes[at] if codes[at] > 0 else None
        number, customer, rooms = "", "", places[at].room
        if account_id is not None:
            number, customer, _status = catalogue.accounts.get(account_id, ("", "", ""))
            rooms = ", ".join(
                catalogue.places[r].room for r in catalogue.account_rooms.get(account_id, [])
            )
        rows.append(
            ReportRow(
                key,
                account_id,
                number,
                customer,
                rooms,
                places[at],
                figures(values, "now"),
                Comparison(
                    *spans["previous"],
                    values,
                    tuples["previous"][at] if present["previous"][at] else None,
                ),
                Comparison(
                    *spans["year_before"],
                    values,
                    tuples["year_before"][at] if present["year_before"][at] else None,
                ),
            )
        )

    scoped = np.flatnonzero(in_scope)
    subtotals = []
    for level, of in _LEVELS.items():
        labels = [of(places[at]) for at in scoped.tolist()]
        groups = {label: n for n, label in enumerate(dict.fromkeys(labels))}
        index_of = np.array([groups[label] for label in labels], dtype=np.int64).reshape(-1)
        first_place: dict[int, Place] = {}
        for at, label in zip(scoped.tolist(), labels, strict=True):
            first_place.setdefault(groups[label], places[at])
        added, has = {}, {}
        for name, matrix in sums.matrices.items():
            target = np.zeros((len(groups), _COLUMNS), dtype=np.int64)
            np.add.at(target, index_of, matrix[scoped])
            added[name] = [tuple(row) for row in target.tolist()]
            flags = np.zeros(len(groups), dtype=bool)
            flags[index_of[sums.present[name][scoped]]] = True
            has[name] = flags.tolist()
        visible = set(index_of[shown[scoped]].tolist())
        for (group_id, group_name), group in groups.items():
            if group not in visible:
                continue
            values = added["now"][group]
            subtotals.append(
                Subtotal(
                    level,
                    group_id,
                    group_name,
                    first_place[group],
                    figures(values, "now"),
                    Comparison(
                        *spans["previous"],
                        values,
                        added["previous"][group] if has["previous"][group] else None,
                    ),
                    Comparison(
                        *spans["year_before"],
                        values,
                        added["year_before"][group] if has["year_before"][group] else None,
                    ),
                )
            )
    subtotals.sort(key=_subtotal_order)
    totals = {
        name: tuple(matrix[scoped].sum(axis=0).tolist()) for name, matrix in sums.matrices.items()
    }
    any_data = {name: bool(sums.present[name][scoped].any()) for name in spans}
    grand = totals["now"]
    return ComprehensiveReport(
        organisation_id=organisation_id,
        currency=organisation.currency,
        start=start,
        end=end,
        rows=tuple(rows),
        subtotals=tuple(subtotals),
        total=figures(grand, "now"),
        month_on_month=Comparison(
            *spans["previous"], grand, totals["previous"] if any_data["previous"] else None
        ),
        year_on_year=Comparison(
            *spans["year_before"], grand, totals["year_before"] if any_data["year_before"] else None
        ),
        previous=spans["previous"],
        year_before=spans["year_before"],
    )


# ---------------------------------------------------------------------------- energy per meter


@dataclass(frozen=True, slots=True)
class EnergyPoint:
    """A meter's consumption in a day, month or year (``start``: its first day).

    ``quantity`` None: no reading at all (missing, not zero). ``coverage``: the percentage of
    the bucket's time (up to now, from installation) that booked readings cover; ``missing``
    when it is below 100. ``estimated``: intervals booked over missed reads (a gap's
    consumption is real, its spread over the hours is not); ``flagged``: refused intervals.
    """

    start: date
    quantity: Decimal | None
    by_period: Mapping[str, Decimal]
    intervals: int
    estimated: int
    flagged: int
    coverage: Decimal
    missing: bool


@dataclass(frozen=True, slots=True)
class MeterEnergy:
    meter_id: int
    address: str
    kind: str
    unit: str
    grain: str
    start: date
    end: date
    points: tuple[EnergyPoint, ...]
    total: Decimal
    missing: int
    estimated: int


GRAINS = ("day", "month", "year")


def _bucket_ends(start: date, end: date, grain: str) -> list[tuple[date, date]]:
    buckets = []
    at = start if grain == "day" else start.replace(day=1)
    if grain == "year":
        at = at.replace(month=1)
    while at < end:
        if grain == "day":
            step = at + timedelta(days=1)
        else:
            step = shift_months(at, 1 if grain == "month" else 12)
        buckets.append((at, step))
        at = step
    return buckets


def meter_energy(
    *,
    organisation_id: int,
    meter_id: int,
    start: date,
    end: date,
    grain: str = "day",
    today: date | None = None,
) -> MeterEnergy:
    """A meter's kWh (m³) per day, month or year of ``[start, end)`` with missing and
    estimated data marked; months and years whole (the buckets that ``start`` and ``end``
    fall in)."""
    if grain not in GRAINS:
        raise ValueError(f"grain is one of {', '.join(GRAINS)}")
    meter = Meter.objects.get(organisation_id=organisation_id, pk=meter_id)
    today = today or timezone.localdate()
    buckets = _bucket_ends(start, end, grain)
    first, last = buckets[0][0], buckets[-1][1]
    found: dict[date, list[int]] = {}
    rows: Iterable[Any]
    if grain == "day":
        rows = MeterDay.objects.filter(meter_id=meter_id, day__gte=first, day__lt=last).values_list(
            "day", *FIGURES
        )
    else:
        rows = MeterMonth.objects.filter(
            meter_id=meter_id, month__gte=first, month__lt=last
        ).values_list("month", *FIGURES)
    for bucket, *values in rows:
        if grain == "year":
            bucket = bucket.replace(month=1, day=1)
        target = found.setdefault(bucket, [0] * len(FIGURES))
        _add(target, values)
    installed = meter.installed_on or date.min
    points = []
    for bucket, bucket_end in buckets:
        values = found.get(bucket)
        expected = (
            _span_seconds(max(bucket, installed), bucket_end, today)
            if bucket_end > installed
            else 0
        )
        covered = values[FIGURES.index("seconds")] if values else 0
        coverage = (
            Decimal(100)
            if expected == 0
            else min(
                Decimal(100),
                (Decimal(covered) * 100 / expected).quantize(_PERCENT, rounding=ROUND_HALF_UP),
            )
        )
        if values is None:
            points.append(EnergyPoint(bucket, None, {}, 0, 0, 0, coverage, expected > 0))
            continue
        quantity = from_units(values[0])
        by_period = {name: from_units(values[FIGURES.index(name)]) for name in TOU_SLOTS}
        by_period["untimed"] = quantity - sum(by_period.values(), Decimal(0))
        points.append(
            EnergyPoint(
                bucket,
                quantity,
                by_period,
                values[FIGURES.index("intervals")],
                values[FIGURES.index("estimated")],
                values[FIGURES.index("flagged")],
                coverage,
                coverage < 100,
            )
        )
    water = meter.kind == Meter.Kind.WATER
    return MeterEnergy(
        meter_id=meter.pk,
        address=meter.address,
        kind=meter.kind,
        unit="m³" if water else "kWh",
        grain=grain,
        start=first,
        end=last,
        points=tuple(points),
        total=sum((p.quantity for p in points if p.quantity is not None), Decimal(0)),
        missing=sum(1 for p in points if p.missing),
        estimated=sum(1 for p in points if p.estimated),
    )


def organisation_clock(organisation_id: int) -> LocalClock:
    return clock(Organisation.objects.values_list("timezone", flat=True).get(pk=organisation_id))


def local_day_start(organisation_id: int, day: date) -> datetime:
    return organisation_clock(organisation_id).day_start(day)
