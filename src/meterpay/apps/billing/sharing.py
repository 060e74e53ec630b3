"""Shared consumption at month end: the public-area share (公摊) and the line loss (线损).

* A public-area group rates its master meter's consumption in the period (with the group's
  tariff, else the organisation's default tariff) and shares the money and the quantity among
  its members by ratio, room area, usage or equally; the parts sum exactly to the whole
  (largest remainder to the fen, ``meterpay.core.billing.allocation``).
* A line-loss group takes the grid meter's consumption from the two readings entered by hand
  on the period's first day and on the day after it, subtracts every meter under it (tenants'
  and public-area meters) and shares the loss, priced at the group's price, by usage (or
  another rule). A negative loss is flagged on the run and never billed.

Each share is charged once per account and period (the line's ``key``); the run's findings
keep the whole computation (every member's weight, ratio, quantity and amount), which is the
"loss bill" finance prints and checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from meterpay.apps.audit.services import audit_record, snapshot
from meterpay.apps.billing.consumption import (
    AccountConsumption,
    ids_match,
    meter_rows,
    meter_usage,
    moment,
)
from meterpay.apps.billing.lines import LineDraft, Section, micro_price, price_micro
from meterpay.apps.billing.models import (
    AllocationGroup,
    AllocationMember,
    Bill,
    BillLine,
    GridReading,
    LossGroup,
    Settlement,
)
from meterpay.apps.customers.models import Account
from meterpay.apps.meters.models import Meter
from meterpay.apps.readings.models import Interval
from meterpay.apps.sites.models import Room
from meterpay.apps.tariffs.models import DefaultTariff
from meterpay.apps.tariffs.selectors import engine_tariff
from meterpay.core import tariffs
from meterpay.core.billing.allocation import AllocationError, Member, Rule, allocate
from meterpay.core.billing.line_loss import LineLossError, grid_consumption, line_loss, loss_bill
from meterpay.core.ledger import BillTarget, ChargeType
from meterpay.core.money import to_minor

type Actor = Any

#: Largest photo of a grid reading we keep.
PHOTO_LIMIT = 5 * 1024 * 1024


class SharingError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


# ------------------------------------------------------------------ set-up services


@transaction.atomic
def allocation_group_save(
    *,
    actor: Actor,
    organisation_id: int,
    values: Mapping[str, Any],
    group: AllocationGroup | None = None,
) -> AllocationGroup:
    before = snapshot(group) if group is not None else None
    row = group or AllocationGroup(organisation_id=organisation_id)
    for name in ("name", "site", "master_meter", "rule", "tariff", "settlement", "active"):
        if name in values:
            setattr(row, name, values[name])
    for name in ("site", "master_meter", "tariff"):
        related = getattr(row, name, None)
        if related is not None and related.organisation_id != organisation_id:
            raise SharingError(name, _("not found"))
    if not (row.name or "").strip():
        raise SharingError("name", _("a group needs a name"))
    row.save()
    audit_record(
        actor=actor, action="allocation_group.save", obj=row, before=before, after=snapshot(row)
    )
    return row


@transaction.atomic
def allocation_members_set(
    *,
    actor: Actor,
    group: AllocationGroup,
    members: Sequence[tuple[Account, Decimal | None]],
) -> int:
    """Replace the group's members: (account, ratio) pairs; the ratio counts under the ratio
    rule only. An account of another organisation is refused."""
    for account, ratio in members:
        if account.organisation_id != group.organisation_id:
            raise SharingError("members", _("not found"))
        if ratio is not None and ratio < 0:
            raise SharingError(
                "members",
                _("account %(account)s: a ratio cannot be negative") % {"account": account.number},
            )
    before = list(group.members.values_list("account_id", "ratio"))
    group.members.all().delete()
    AllocationMember.objects.bulk_create(
        [
            AllocationMember(
                organisation_id=group.organisation_id, group=group, account=account, ratio=ratio
            )
            for account, ratio in members
        ]
    )
    audit_record(
        actor=actor,
        action="allocation_group.members",
        obj=group,
        before={"members": [[a, str(r)] for a, r in before]},
        after={"members": [[a.pk, str(r)] for a, r in members]},
    )
    return len(members)


@transaction.atomic
def loss_group_save(
    *,
    actor: Actor,
    organisation_id: int,
    values: Mapping[str, Any],
    meters: Sequence[Meter] | None = None,
    group: LossGroup | None = None,
) -> LossGroup:
    before = snapshot(group) if group is not None else None
    row = group or LossGroup(organisation_id=organisation_id)
    for name in (
        "name",
        "site",
        "utility",
        "grid_meter_number",
        "multiplier",
        "rule",
        "settlement",
        "active",
    ):
        if name in values:
            setattr(row, name, values[name])
    if "unit_price" in values:
        try:
            price = Decimal(str(values["unit_price"]).strip())
        except (InvalidOperation, ValueError):
            raise SharingError("unit_price", _("not a price")) from None
        if not price.is_finite() or price < 0:
            raise SharingError("unit_price", _("a price is a number of 0 or more"))
        row.unit_price_micro = price_micro(price)
    if row.site is not None and row.site.organisation_id != organisation_id:
        raise SharingError("site", _("not found"))
    if not (row.name or "").strip():
        raise SharingError("name", _("a group needs a name"))
    row.save()
    if meters is not None:
        if any(m.organisation_id != organisation_id for m in meters):
            raise SharingError("meters", _("not found"))
        row.meters.set(meters)
    audit_record(actor=actor, action="loss_group.save", obj=row, before=before, after=snapshot(row))
    return row


@transaction.atomic
def grid_reading_enter(
    *,
    actor: Actor,
    group: LossGroup,
    read_on: date,
    reading: Decimal | str,
    notes: str = "",
    photo: bytes | None = None,
    photo_type: str = "",
) -> GridReading:
    """Enter the grid meter's register at the start of ``read_on``; it may not go below the
    reading before it nor above the one after it (a clear message, nothing written)."""
    try:
        value = Decimal(str(reading).strip())
    except (InvalidOperation, ValueError):
        raise SharingError("reading", _("%(value)r is not a number") % {"value": reading}) from None
    if not value.is_finite() or value < 0:
        raise SharingError("reading", _("a register reading is a number of 0 or more"))
    if photo is not None:
        if len(photo) > PHOTO_LIMIT:
            raise SharingError("photo", _("the photo is larger than 5 MB"))
        if not photo_type.startswith("image/"):
            raise SharingError("photo", _("the photo must be an image"))
    readings = GridReading.objects.filter(group=group).exclude(read_on=read_on)
    previous = readings.filter(read_on__lt=read_on).order_by("-read_on").first()
    following = readings.filter(read_on__gt=read_on).order_by("read_on").first()
    try:
        if previous is not None:
            grid_consumption(previous_reading=previous.reading, reading=value)
        if following is not None:
            grid_consumption(previous_reading=value, reading=following.reading)
    except LineLossError as exc:
        other = previous if previous is not None and value < previous.reading else following
        when = other.read_on if other is not None else read_on
        raise SharingError("reading", f"{exc} ({when})") from None
    existing = GridReading.objects.filter(group=group, read_on=read_on).first()
    before = snapshot(existing) if existing is not None else None
    row = existing or GridReading(
        organisation_id=group.organisation_id, group=group, read_on=read_on
    )
    row.reading = value
    row.notes = notes.strip()
    if photo is not None:
        row.photo, row.photo_type = photo, photo_type
    row.entered_by = actor if hasattr(actor, "pk") else None
    row.save()
    after = {
        "group": group.pk,
        "read_on": str(read_on),
        "reading": str(value),
        "notes": row.notes[:200],
        "photo": bool(row.photo),
    }
    if before is not None:
        before.pop("photo", None)
    audit_record(actor=actor, action="grid_reading.enter", obj=row, before=before, after=after)
    return row


# --------------------------------------------------------------------- month end


#: What a bill shows of each group of a run's findings (not every member's share).
TOTAL_KEYS = ("kind", "group_id", "group", "quantity", "loss", "rule")


def share_totals(groups: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The groups of a run's findings without their members: kept beside them as
    ``findings["totals"]``, so that printing a bill does not read every member's share."""
    return [{key: group[key] for key in TOTAL_KEYS if key in group} for group in groups]


@dataclass(slots=True)
class SharingOutcome:
    lines: dict[int, list[LineDraft]] = field(default_factory=dict)
    findings: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, account_id: int, line: LineDraft) -> None:
        self.lines.setdefault(account_id, []).append(line)


def _target(settlement: str) -> str:
    return BillTarget.WALLET if settlement == Settlement.DEDUCT else BillTarget.RECEIVABLE


def _master_amount(
    group: AllocationGroup, start: date, end: date, zone: ZoneInfo
) -> tuple[Decimal, int, str] | str:
    """(quantity, amount in minor units, unit) of the master meter in the period, or a problem."""
    meter = group.master_meter
    utility = "water" if meter.kind == Meter.Kind.WATER else "electricity"
    tariff_row = group.tariff
    if tariff_row is None:
        default = (
            DefaultTariff.objects.filter(organisation_id=group.organisation_id, utility=utility)
            .select_related("tariff")
            .first()
        )
        tariff_row = default.tariff if default is not None else None
    if tariff_row is None:
        return _("public-area group %(group)s: no tariff (set one, or a default tariff)") % {
            "group": group.name
        }
    tariff = engine_tariff(tariff_row)
    start_at, end_at = moment(start, zone), moment(end, zone)
    intervals = [
        tariffs.Interval(
            start=s.astimezone(zone).replace(tzinfo=None),
            end=e.astimezone(zone).replace(tzinfo=None),
            quantity=Decimal(q),
        )
        for s, e, q in Interval.objects.filter(
            meter=meter, booked=True, end_at__gt=start_at, end_at__lte=end_at
        )
        .order_by("end_at")
        .values_list("start_at", "end_at", "consumption")
    ]
    quantity = sum((i.quantity for i in intervals), Decimal(0))
    try:
        bill = tariffs.rate(tariff=tariff, intervals=intervals)
    except tariffs.RatingError as exc:
        return f"{group.name}: {exc}"
    return quantity, to_minor(bill.total, tariff.currency), "m3" if utility == "water" else "kWh"


def account_areas(account_ids: set[int]) -> dict[int, Decimal]:
    """The area of each account's rooms (m²)."""
    areas: dict[int, Decimal] = {}
    if account_ids:
        for account_id, area in Room.objects.filter(ids_match("accounts", account_ids)).values_list(
            "accounts", "area_m2"
        ):
            areas[account_id] = areas.get(account_id, Decimal(0)) + area
    return areas


class _Member(NamedTuple):
    """A group member with what sharing reads of its account (no model instances each)."""

    account_id: int
    ratio: Decimal | None
    number: str
    status: str
    move_in_on: date | None
    opened_at: datetime | None
    move_out_on: date | None
    closed_at: datetime | None


def _members(group: AllocationGroup) -> list[_Member]:
    return [
        _Member(*row)
        for row in group.members.order_by("account__number").values_list(
            "account_id",
            "ratio",
            "account__number",
            "account__status",
            "account__move_in_on",
            "account__opened_at",
            "account__move_out_on",
            "account__closed_at",
        )
    ]


def _open_in(account: Account | _Member, start: date, end: date) -> bool:
    """Was the account supplied during ``[start, end)``?"""
    if account.status == Account.Status.PRESET:
        return False
    opened = account.move_in_on or (account.opened_at and timezone.localdate(account.opened_at))
    closed = account.move_out_on or (account.closed_at and timezone.localdate(account.closed_at))
    return (opened is None or opened < end) and (closed is None or closed >= start)


def _member_usage(
    group: AllocationGroup, utility: str, start: date, end: date, zone: ZoneInfo
) -> dict[int, Decimal]:
    """Each member account's consumption of the utility in the period."""
    meters = Meter.objects.filter(
        account__in=AllocationMember.objects.filter(group=group).values("account_id")
    ).filter(Q(removed_on__isnull=True) | Q(removed_on__gte=start))
    if utility == "water":
        meters = meters.filter(kind=Meter.Kind.WATER)
    else:
        meters = meters.exclude(kind=Meter.Kind.WATER)
    rows = meter_rows(meters)
    usage = meter_usage(
        rows, moment(start, zone), moment(end, zone), readings=False, meter_ids=meters.values("pk")
    )
    by_account: dict[int, Decimal] = {}
    for meter in rows:
        assert meter.account_id is not None
        by_account[meter.account_id] = (
            by_account.get(meter.account_id, Decimal(0)) + usage[meter.pk].consumption
        )
    return by_account


@dataclass(slots=True)
class Settled:
    accounts: set[int] = field(default_factory=set)
    quantity: Decimal = Decimal(0)
    amount_minor: int = 0


def settled_at_move_out(section: str, group_id: int, start: date, end: date) -> Settled:
    """What final bills within ``[start, end)`` charged of a group already."""
    settled = Settled()
    for account_id, quantity, amount in BillLine.objects.filter(
        bill__kind=Bill.Kind.FINAL,
        bill__status__in=("confirmed", "issued", "paid"),
        bill__period_start__gte=start,
        bill__period_end__lte=end,
        section=section,
        detail__group=group_id,
    ).values_list("bill__account_id", "quantity", "amount_minor"):
        settled.accounts.add(account_id)
        settled.quantity += quantity or Decimal(0)
        settled.amount_minor += amount
    return settled


def _public(
    group: AllocationGroup,
    run_accounts: set[int],
    start: date,
    end: date,
    areas: Mapping[int, Decimal],
    outcome: SharingOutcome,
    zone: ZoneInfo,
) -> None:
    members = [m for m in _members(group) if _open_in(m, start, end)]
    if not members:
        outcome.problems.append(
            _("public-area group %(group)s has no members to share among") % {"group": group.name}
        )
        return
    master = _master_amount(group, start, end, zone)
    if isinstance(master, str):
        outcome.problems.append(master)
        return
    quantity, amount_minor, unit = master
    settled = settled_at_move_out(BillLine.Section.PUBLIC_SHARE, group.pk, start, end)
    if settled.accounts:
        # members who moved out this period paid their part on their final bill
        members = [m for m in members if m.account_id not in settled.accounts]
        quantity -= settled.quantity
        amount_minor -= settled.amount_minor
        if not members:
            return
    utility = "water" if unit == "m3" else "electricity"
    usage = _member_usage(group, utility, start, end, zone) if group.rule == Rule.USAGE else {}
    try:
        shares = allocate(
            rule=Rule(group.rule),
            members=[
                Member(
                    key=m.number,
                    ratio=m.ratio,
                    area_m2=areas.get(m.account_id, Decimal(0)),
                    usage=usage.get(m.account_id, Decimal(0)),
                )
                for m in members
            ],
            total_minor=amount_minor,
            total_quantity=quantity,
        )
    except AllocationError as exc:
        outcome.problems.append(
            _("public-area group %(group)s: %(problem)s") % {"group": group.name, "problem": exc}
        )
        return
    price = (Decimal(amount_minor) / 100 / quantity) if quantity else Decimal(0)
    # what every member's line shares, made once (a group of a large site has 100,000)
    label = _("%(group)s: %(percent)s%% of %(quantity)s %(unit)s")
    whole = f"{quantity:,.2f}"
    unit_price = price_micro(price) if quantity else None
    settles = _target(group.settlement)
    key = f"public/{group.pk}/{start.isoformat()}"
    hundred, cents = Decimal(100), Decimal("0.01")
    rows = []
    for member, share in zip(members, shares, strict=True):
        rows.append(
            {
                "account": member.number,
                "weight": str(share.weight),
                "ratio": str(share.ratio),
                "quantity": str(share.quantity),
                "amount_minor": share.amount_minor,
                "billed": member.account_id in run_accounts,
            }
        )
        if member.account_id not in run_accounts or not share.amount_minor:
            continue
        percent = (share.ratio * hundred).quantize(cents)
        outcome.add(
            member.account_id,
            LineDraft(
                section=Section.PUBLIC_SHARE,
                label=label
                % {"group": group.name, "percent": percent, "quantity": whole, "unit": unit},
                amount_minor=share.amount_minor,
                charge_type=ChargeType.PUBLIC_SHARE,
                settles=settles,
                posted=True,
                quantity=share.quantity,
                unit=unit,
                unit_price_micro=unit_price,
                detail={
                    "key": key,
                    "group": group.pk,
                    "rule": group.rule,
                    "ratio": str(share.ratio),
                },
            ),
        )
    outcome.findings.append(
        {
            "kind": "public",
            "group": group.name,
            "group_id": group.pk,
            "meter": group.master_meter.address,
            "rule": group.rule,
            "quantity": str(quantity),
            "unit": unit,
            "amount_minor": amount_minor,
            "members": rows,
        }
    )


def _loss(
    group: LossGroup,
    run_accounts: set[int],
    start: date,
    end: date,
    areas: Mapping[int, Decimal],
    outcome: SharingOutcome,
    zone: ZoneInfo,
) -> None:
    readings = {
        r.read_on: r for r in GridReading.objects.filter(group=group, read_on__in=[start, end])
    }
    missing = [day for day in (start, end) if day not in readings]
    finding: dict[str, Any] = {"kind": "loss", "group": group.name, "group_id": group.pk}
    if missing:
        finding["reason"] = _("no grid reading on %(days)s: the line loss is not billed") % {
            "days": ", ".join(str(d) for d in missing)
        }
        outcome.findings.append(finding)
        return
    try:
        grid = grid_consumption(
            previous_reading=readings[start].reading,
            reading=readings[end].reading,
            multiplier=Decimal(group.multiplier),
        )
    except LineLossError as exc:
        outcome.problems.append(f"{group.name}: {exc}")
        return
    chosen = Meter.objects.filter(pk__in=group.meters.values("pk"))
    meters = meter_rows(chosen)
    if not meters:
        under = Meter.objects.filter(room__floor__building__site_id=group.site_id).filter(
            Q(removed_on__isnull=True) | Q(removed_on__gte=start)
        )
        water = Q(kind=Meter.Kind.WATER)
        chosen = under.filter(water) if group.utility == "water" else under.exclude(water)
        meters = meter_rows(chosen)
    usage = meter_usage(
        meters,
        moment(start, zone),
        moment(end, zone),
        readings=False,
        meter_ids=chosen.values("pk"),
    )
    metered = sum((u.consumption for u in usage.values()), Decimal(0))
    # the loss that final bills of the period charged already is not shared again
    settled = settled_at_move_out(BillLine.Section.LINE_LOSS, group.pk, start, end)
    loss = line_loss(grid_kwh=grid, metered_kwh=metered + settled.quantity)
    per_account: dict[int, Decimal] = {}
    for meter in meters:
        if meter.account_id is not None and meter.account_id not in settled.accounts:
            per_account[meter.account_id] = (
                per_account.get(meter.account_id, Decimal(0)) + usage[meter.pk].consumption
            )
    numbers = dict(
        Account.objects.filter(pk__in=chosen.values("account_id")).values_list("pk", "number")
    )
    areas = {**account_areas(set(per_account) - set(areas)), **areas}
    order = sorted(per_account, key=lambda pk: numbers[pk])
    unit = "m3" if group.utility == "water" else "kWh"
    finding.update(
        {
            "grid": str(grid),
            "metered": str(metered),
            "loss": str(loss.loss_kwh),
            "loss_rate": None if loss.loss_rate is None else str(loss.loss_rate),
            "negative": loss.negative,
            "unit": unit,
            "readings": [str(readings[start].reading), str(readings[end].reading)],
        }
    )
    if not order:
        finding["reason"] = _("no account's meter is under this grid meter")
        outcome.findings.append(finding)
        return
    try:
        priced = loss_bill(
            loss=loss,
            members=[
                Member(
                    key=numbers[pk],
                    usage=per_account[pk],
                    area_m2=areas.get(pk, Decimal(0)),
                    ratio=Decimal(1),
                )
                for pk in order
            ],
            rule=Rule(group.rule),
            unit_price=micro_price(group.unit_price_micro),
        )
    except (AllocationError, LineLossError) as exc:
        outcome.problems.append(f"{group.name}: {exc}")
        return
    finding["amount_minor"] = priced.amount_minor
    finding["reason"] = priced.reason
    finding["lines"] = []
    rate = "" if loss.loss_rate is None else f"{(loss.loss_rate * 100).quantize(Decimal('0.01'))}%"
    # what every line shares, made once (a group of a large site has 100,000 accounts)
    label = _("%(group)s: line loss %(rate)s, your share %(ratio)s")
    settles = _target(group.settlement)
    key = f"loss/{group.pk}/{start.isoformat()}"
    hundred, cents = Decimal(100), Decimal("0.01")
    for pk, line in zip(order, priced.lines, strict=True):
        finding["lines"].append(
            {
                "account": numbers[pk],
                "usage": str(per_account[pk]),
                "ratio": str(line.ratio),
                "loss": str(line.loss_kwh),
                "amount_minor": line.amount_minor,
                "billed": pk in run_accounts,
            }
        )
        if pk not in run_accounts or not line.amount_minor:
            continue
        outcome.add(
            pk,
            LineDraft(
                section=Section.LINE_LOSS,
                label=label
                % {
                    "group": group.name,
                    "rate": rate,
                    "ratio": f"{(line.ratio * hundred).quantize(cents)}%",
                },
                amount_minor=line.amount_minor,
                charge_type=ChargeType.LINE_LOSS,
                settles=settles,
                posted=True,
                quantity=line.loss_kwh,
                unit=unit,
                unit_price_micro=group.unit_price_micro,
                detail={
                    "key": key,
                    "group": group.pk,
                    "ratio": str(line.ratio),
                },
            ),
        )
    outcome.findings.append(finding)


def share_lines(
    *,
    organisation_id: int,
    site_ids: set[int],
    accounts: Sequence[Account],
    start: date,
    end: date,
    consumption: Mapping[int, AccountConsumption],
    areas: Mapping[int, Decimal],
) -> SharingOutcome:
    """Public-area shares and line-loss fees of the sites' active groups for the accounts of
    a run; members outside the run are shared with (so the parts still sum to the whole) but
    not billed here."""
    del consumption  # usage is summed per group over all its members, not only the run's
    zone = ZoneInfo(timezone.get_current_timezone_name())
    outcome = SharingOutcome()
    run_accounts = {a.pk for a in accounts}
    all_areas = dict(areas)
    groups = AllocationGroup.objects.filter(
        organisation_id=organisation_id, site_id__in=site_ids, active=True
    ).select_related("master_meter", "tariff")
    member_ids = set(
        AllocationMember.objects.filter(group__in=groups).values_list("account_id", flat=True)
    )
    loss_groups = LossGroup.objects.filter(
        organisation_id=organisation_id, site_id__in=site_ids, active=True
    )
    all_areas.update(account_areas(member_ids - set(all_areas)))
    for group in groups.order_by("name", "pk"):
        _public(group, run_accounts, start, end, all_areas, outcome, zone)
    for loss_group in loss_groups.order_by("name", "pk"):
        _loss(loss_group, run_accounts, start, end, all_areas, outcome, zone)
    return outcome
