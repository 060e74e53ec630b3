"""What an account consumed in a bill's period, as bill lines.

The amounts of metered consumption are in the ledger already: real-time deductions post them
as readings arrive (postpaid accounts too: their wallet runs below zero). A bill therefore
*shows* consumption, it does not book it again:

* the detail (TOU and tier lines, basic charge, power-factor adjustment, water and its
  surcharges) comes from the rating accumulator the deductions kept (``DeductionState``) when
  the period is whole months and the tariff is the one the state was built with, so the lines
  are exactly what was deducted; otherwise the period's booked intervals are rated afresh;
* the consumption total is the sum of the deduction entries the ledger holds for the period
  (entries whose rated end falls in ``(start, end]``); when the detail and the ledger differ
  (a reading that straddles the period's edge, a tariff changed mid-month, a late reading
  rated into the next month), a "difference to real-time deductions" line shows it, so the
  bill's total is always what the ledger took.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, NamedTuple, Protocol
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import BooleanField, F, Func, Max, Min, Q, Sum
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.translation import gettext as _

from meterpay.apps.billing.lines import LineDraft, Section, price_micro
from meterpay.apps.billing.models import DeductionState
from meterpay.apps.customers.models import Account
from meterpay.apps.ledger.models import JournalEntry
from meterpay.apps.meters.models import Meter
from meterpay.apps.readings.models import Interval
from meterpay.apps.tariffs.selectors import TariffBook
from meterpay.core import tariffs
from meterpay.core.ledger import ChargeType
from meterpay.core.money import to_minor
from meterpay.core.tariffs.engine import RatingAccumulator

WALLET = "wallet"
FOUR_PLACES = Decimal("0.0001")

#: Engine component → bill section and ledger charge type.
_COMPONENTS: dict[str, tuple[str, ChargeType]] = {
    "energy": (Section.ENERGY, ChargeType.ENERGY),
    "basic": (Section.BASIC, ChargeType.BASIC_CHARGE),
    "demand": (Section.BASIC, ChargeType.DEMAND),
    "power_factor": (Section.POWER_FACTOR, ChargeType.SURCHARGE),
    "water": (Section.WATER, ChargeType.WATER),
    "surcharge": (Section.WATER, ChargeType.SURCHARGE),
    "fixed": (Section.CHARGES, ChargeType.FEES),
    "custom": (Section.CHARGES, ChargeType.FEES),
    "minimum": (Section.ENERGY, ChargeType.ENERGY),
    "rerate": (Section.ADJUSTMENT, ChargeType.ENERGY),
}


def moment(day: date, zone: ZoneInfo) -> datetime:
    """The start of ``day`` in the organisation's time zone (period edges are local days)."""
    return datetime.combine(day, time(), tzinfo=zone)


def months_of(start: date, end: date) -> list[str] | None:
    """The months ``[start, end)`` covers if it is whole months, else None."""
    if start.day != 1 or end.day != 1:
        return None
    months = []
    year, month = start.year, start.month
    while (year, month) < (end.year, end.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


@dataclass(slots=True)
class MeterUsage:
    meter_id: int
    address: str
    kind: str
    utility: str
    multiplier: int
    consumption: Decimal = Decimal(0)
    first_reading: Decimal | None = None
    last_reading: Decimal | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "meter_id": self.meter_id,
            "address": self.address,
            "kind": self.kind,
            "utility": self.utility,
            "multiplier": self.multiplier,
            "consumption": str(self.consumption),
            "first_reading": None if self.first_reading is None else str(self.first_reading),
            "last_reading": None if self.last_reading is None else str(self.last_reading),
        }


@dataclass(slots=True)
class AccountConsumption:
    lines: list[LineDraft] = field(default_factory=list)
    meters: list[MeterUsage] = field(default_factory=list)
    deducted_minor: int = 0  # what the ledger's deductions of the period took

    @property
    def kwh(self) -> Decimal:
        return sum((m.consumption for m in self.meters if m.utility == "electricity"), Decimal(0))

    @property
    def m3(self) -> Decimal:
        return sum((m.consumption for m in self.meters if m.utility == "water"), Decimal(0))

    def usage(self, utility: str) -> Decimal:
        return self.kwh if utility == "electricity" else self.m3


#: Above this many ids, PostgreSQL gets them as one array parameter (see :func:`ids_match`).
MANY_IDS = 1000


class _AnyOf(Func):
    """``column = ANY(array)`` (PostgreSQL)."""

    template = "(%(expressions)s))"
    arg_joiner = " = ANY("
    output_field = BooleanField()


def ids_match(field: str, ids: Iterable[int]) -> Any:
    """A filter: ``field`` is one of ``ids``. A run of a large site selects 100,000 accounts:
    on PostgreSQL many ids go as one array (``= ANY(%s)``) rather than an ``IN`` of one
    parameter each, which costs building, sending and parsing a statement of 100,000
    placeholders every time (and plans no better)."""
    ids = list(ids)
    if len(ids) > MANY_IDS and connection.vendor == "postgresql":
        return _AnyOf(F(field), RawSQL("%s::bigint[]", [ids]))
    return Q(**{f"{field}__in": ids})


class MeterLike(Protocol):
    """What the month end reads of a meter: a :class:`Meter` or a :class:`MeterRow`."""

    @property
    def pk(self) -> Any: ...
    @property
    def account_id(self) -> int | None: ...
    @property
    def address(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def multiplier(self) -> int: ...


class MeterRow(NamedTuple):
    """A meter as the month end reads it for many accounts (no model instance each)."""

    pk: int
    account_id: int | None
    address: str
    kind: str
    multiplier: int


METER_FIELDS = ("pk", "account_id", "address", "kind", "multiplier")


def meter_rows(meters: Any) -> list[MeterRow]:
    """The meters of a queryset as :class:`MeterRow` tuples, in its order."""
    return [MeterRow(*row) for row in meters.values_list(*METER_FIELDS)]


def _utility(meter: MeterLike) -> str:
    return "water" if meter.kind == Meter.Kind.WATER else "electricity"


def _meters(account_ids: Sequence[int], start: date) -> list[MeterRow]:
    return meter_rows(
        Meter.objects.filter(ids_match("account_id", account_ids))
        .filter(Q(removed_on__isnull=True) | Q(removed_on__gte=start))
        .order_by("account_id", "kind", "pk")
    )


def meter_usage(
    meters: Iterable[MeterLike],
    start_at: datetime,
    end_at: datetime,
    *,
    readings: bool = True,
    meter_ids: Any = None,
) -> dict[int, MeterUsage]:
    """Booked consumption per meter in ``[start_at, end_at)`` (one aggregate query), with the
    first and last register unless ``readings`` is False (the sum alone reads no register).

    ``meter_ids`` (a queryset of the same meters' ids) selects them in the database instead of
    by a list of every id.
    """
    found = {m.pk: MeterUsage(m.pk, m.address, m.kind, _utility(m), m.multiplier) for m in meters}
    if not found:
        return found
    rows: Any = Interval.objects.filter(
        ids_match("meter_id", found) if meter_ids is None else Q(meter_id__in=meter_ids),
        booked=True,
        end_at__gt=start_at,
        end_at__lte=end_at,
    ).values("meter_id")
    if readings:
        rows = rows.annotate(
            total=Sum("consumption"), first=Min("start_read__total"), last=Max("end_read__total")
        )
    else:
        rows = rows.annotate(total=Sum("consumption"))
    for row in rows.order_by():
        usage = found.get(row["meter_id"])
        if usage is None:
            continue
        # quantized: SQLite sums the column as floating point
        usage.consumption = Decimal(row["total"] or 0).quantize(FOUR_PLACES)
        if readings:
            usage.first_reading = (
                None if row["first"] is None else Decimal(row["first"]).quantize(FOUR_PLACES)
            )
            usage.last_reading = (
                None if row["last"] is None else Decimal(row["last"]).quantize(FOUR_PLACES)
            )
    return found


def _deducted(account_ids: Sequence[int], start_at: datetime, end_at: datetime) -> dict[int, int]:
    """What the ledger's real-time deductions took per account in ``(start_at, end_at]``."""
    rows = (
        JournalEntry.objects.filter(
            ids_match("account_id", account_ids),
            kind=JournalEntry.Kind.DEDUCTION,
            reference__startswith="meter-",
            occurred_at__gt=start_at,
            occurred_at__lte=end_at,
        )
        .values("account_id")
        .annotate(taken=Sum("wallet_amount"))
    )
    return {row["account_id"]: -int(row["taken"] or 0) for row in rows}


_TIER = re.compile(r"^(?P<name>.*?) tier (?P<tier>\d+)$")
_POWER_FACTOR = re.compile(r"^power factor (?P<pf>\S+) against (?P<standard>\S+)$")
_UP_TO = re.compile(r"^max demand up to (?P<percent>\S+) of contract$")


def _period_name(name: str) -> str:
    names = {
        "sharp": _("sharp"),
        "peak": _("peak"),
        "flat": _("flat"),
        "shoulder": _("shoulder"),
        "valley": _("valley"),
        "off_peak": _("off-peak"),
        "deep_valley": _("deep valley"),
    }
    return names.get(name, name)


def line_label(line: tariffs.Line) -> str:
    """The engine's label of a line in the reader's language (names from the tariff stay)."""
    label, tier = line.label, ""
    found = _TIER.match(label)
    if found:
        label, tier = found["name"], " " + _("tier %(n)s") % {"n": found["tier"]}
    if line.component == "energy":
        return _("Electricity, %(period)s") % {"period": _period_name(label)} + tier
    if line.component == "water" and label == "water":
        return _("Water") + tier
    if line.component == "basic":
        if label == "capacity":
            return _("Basic charge by capacity")
        if label == "contract demand":
            return _("Basic charge by contract demand")
        if label == "max demand":
            return _("Basic charge by maximum demand")
        if label == "max demand overrun":
            return _("Basic charge, demand above the contract")
        up_to = _UP_TO.match(label)
        if up_to:
            return _("Basic charge, maximum demand up to %(percent)s of the contract") % {
                "percent": up_to["percent"]
            }
    if line.component == "demand" and label.endswith(" demand"):
        return _("Demand charge, %(period)s") % {"period": _period_name(label[:-7])} + tier
    if line.component == "power_factor":
        factor = _POWER_FACTOR.match(label)
        if factor:
            return _("Power-factor adjustment (%(pf)s against %(standard)s)") % {
                "pf": factor["pf"],
                "standard": factor["standard"],
            }
    if line.component == "minimum":
        return _("Minimum charge shortfall")
    return line.label


def _draft(
    line: tariffs.Line,
    meter: MeterLike,
    currency: str,
    labels: dict[tuple[str, str], str] | None = None,
) -> LineDraft:
    """``labels``: the labels of one call's lines so far (the same few for every meter)."""
    section, charge_type = _COMPONENTS.get(line.component, (Section.ENERGY, ChargeType.ENERGY))
    if meter.kind == Meter.Kind.WATER and section == Section.ENERGY:
        section, charge_type = Section.WATER, ChargeType.WATER
    if labels is None:
        label = line_label(line)
    else:
        key = (line.component, line.label)
        label = labels.get(key) or labels.setdefault(key, line_label(line))
    return LineDraft(
        section=section,
        label=label,
        amount_minor=to_minor(line.amount, currency),
        charge_type=charge_type,
        settles=WALLET,
        posted=False,
        quantity=line.quantity,
        unit=line.unit,
        unit_price_micro=price_micro(line.unit_price),
        meter_id=meter.pk,
        detail={"month": line.month, "component": line.component, "meter": meter.address},
    )


def _local(moment_: datetime, zone: ZoneInfo) -> datetime:
    return moment_.astimezone(zone).replace(tzinfo=None)


def accounts_consumption(
    *,
    accounts: Sequence[Account],
    start: date,
    end: date,
    currency: str = "CNY",
    until: datetime | None = None,
) -> dict[int, AccountConsumption]:
    """Consumption lines, meter usage and the period's deductions of many accounts at once.

    ``until`` (a final bill) takes consumption up to that moment instead of the period's end.
    """
    zone = ZoneInfo(timezone.get_current_timezone_name())
    start_at, end_at = moment(start, zone), moment(end, zone)
    if until is not None and until > end_at:
        end_at = until
    ids = [a.pk for a in accounts]
    result = {a.pk: AccountConsumption() for a in accounts}
    if not ids:
        return result
    meters = _meters(ids, start)
    usage = meter_usage(meters, start_at, end_at)
    for account_id, taken in _deducted(ids, start_at, end_at).items():
        result[account_id].deducted_minor = taken
    states = {
        (account_id, meter_id): state
        for account_id, meter_id, state in DeductionState.objects.filter(
            ids_match("account_id", ids)
        ).values_list("account_id", "meter_id", "state")
    }
    book = TariffBook(accounts)
    by_id = {a.pk: a for a in accounts}
    months = months_of(start, end) if until is None else None
    fresh: list[tuple[MeterLike, tariffs.Tariff, tariffs.AccountTerms]] = []
    labels: dict[tuple[str, str], str] = {}
    for meter in meters:
        assert meter.account_id is not None
        account = by_id[meter.account_id]
        consumption = result[account.pk]
        consumption.meters.append(usage[meter.pk])
        if account.billing_side == Account.BillingSide.METER:
            continue  # the meter deducts its own credit: the readings table shows the usage
        found = book.in_force(account, _utility(meter), start_at)
        if found is None:
            continue
        tariff, terms = found
        state = states.get((account.pk, meter.pk))
        if months is not None and state and state.get("tariff_id") == tariff.id:
            accumulator = RatingAccumulator.from_state(tariff=tariff, account=terms, state=state)
            for month in months:
                if month in accumulator.months:
                    consumption.lines.extend(
                        _draft(line, meter, currency, labels)
                        for line in accumulator.month_lines(month)
                        if line.amount or line.quantity
                    )
        elif usage[meter.pk].consumption:
            fresh.append((meter, tariff, terms))
    if fresh:
        _rate_afresh(fresh, result, start_at, end_at, zone, currency, labels)
    for consumption in result.values():
        shown = sum(line.amount_minor for line in consumption.lines)
        difference = consumption.deducted_minor - shown
        if difference:
            consumption.lines.append(
                LineDraft(
                    section=Section.ADJUSTMENT,
                    label=_("Difference to real-time deductions"),
                    amount_minor=difference,
                    charge_type=ChargeType.ENERGY,
                    settles=WALLET,
                    posted=False,
                    detail={"reason": "deductions_differ"},
                )
            )
    return result


def _rate_afresh(
    fresh: list[tuple[MeterLike, tariffs.Tariff, tariffs.AccountTerms]],
    result: dict[int, AccountConsumption],
    start_at: datetime,
    end_at: datetime,
    zone: ZoneInfo,
    currency: str,
    labels: dict[tuple[str, str], str],
) -> None:
    intervals: dict[int, list[tariffs.Interval]] = {}
    for meter_id, start, end, quantity in (
        Interval.objects.filter(
            ids_match("meter_id", (item[0].pk for item in fresh)),
            booked=True,
            end_at__gt=start_at,
            end_at__lte=end_at,
        )
        .order_by("meter_id", "end_at")
        .values_list("meter_id", "start_at", "end_at", "consumption")
    ):
        intervals.setdefault(meter_id, []).append(
            tariffs.Interval(
                start=_local(start, zone), end=_local(end, zone), quantity=Decimal(quantity)
            )
        )
    for meter, tariff, terms in fresh:
        rated = tariffs.rate(tariff=tariff, intervals=intervals.get(meter.pk, []), account=terms)
        assert meter.account_id is not None
        result[meter.account_id].lines.extend(
            _draft(line, meter, currency, labels)
            for line in rated.lines
            if line.amount or line.quantity
        )
