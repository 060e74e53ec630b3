"""Demo month end: two months of a mall's and an office tower's metering, billed.

Built on the demo organisation (``meterpay.cli.demo_data``) through the real services, so every
rule of the readings, the ledger and the bills holds:

* register reads (total and time-of-use registers; every two hours and at each change of
  tariff period) of the open shops and offices and of the public-area meters, from the first
  day of the month before last until the last full hour, ending where the simulated meters
  carry on, stored through the readings pipeline and deducted weekly, then daily over the
  last week, as the gateway and the deduction sweep would;
* rent per m² (a payment request, dearer on the ground floor), a property fee per m²
  (deducted from the prepaid wallets; on the bill for the tower's postpaid tenants, and for
  shops whose money lives on their meter), a quarterly marketing fee;
* each mall floor's public-area meter shared by room area among the floor's shops, and the
  mall's grid meter with its readings entered by hand (a loss of 3 to 6 %) shared by usage;
* a bill branding (address, bank, logo and seal) and the mall's bill schedule (day 3, drafts).

Then the months end:

* the month before last: the mall's and the tower's runs issued; most bills paid, one paid in
  part, one credited and re-issued with an adjustment, a few left unpaid (now overdue);
* last month: a shop moved out (final bill); the tower's run issued, its bills paid, partly
  paid or unpaid (overdue once the 5th has passed); the mall's ground floor in a confirmed run
  and the other shops in the draft run the schedule made, waiting for finance;
* the overdue sweep: reminders, and supply cut for arrears where the policy allows it now.

Deterministic given the seed and today's date.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from meterpay.apps.billing import documents
from meterpay.apps.billing.bills import (
    bill_confirm,
    bill_issue,
    bill_pay,
    bill_reissue,
    bills_overdue_run,
)
from meterpay.apps.billing.charges import charge_item_save, charge_subscribe
from meterpay.apps.billing.deductions import meters_deduct_batch
from meterpay.apps.billing.models import Bill, BillRun, BillSchedule, LossGroup
from meterpay.apps.billing.runs import (
    bill_run_confirm,
    bill_run_create,
    bill_run_issue,
    bill_schedule_save,
)
from meterpay.apps.billing.settlement import account_move_out
from meterpay.apps.billing.sharing import (
    allocation_group_save,
    allocation_members_set,
    grid_reading_enter,
    loss_group_save,
)
from meterpay.apps.customers.models import Account
from meterpay.apps.ledger.models import Wallet
from meterpay.apps.meters.models import Meter
from meterpay.apps.organisations.models import Organisation
from meterpay.apps.payments import services as payments
from meterpay.apps.readings.services import (
    MAX_DEMAND_BY_KIND,
    ReadInput,
    register_reads_record_batch,
)
from meterpay.apps.sites.models import Room, Site
from meterpay.apps.tariffs.demo import MALL_COMMERCIAL_TOU, OFFICE_CAPACITY

type Actor = Any

HOUR = timedelta(hours=1)
#: The registers a read carries, in ReadInput's order after the total.
PERIODS = ("sharp", "peak", "flat", "valley")
#: How a meter's starting register is split over its time-of-use registers (sharp, peak,
#: flat, valley), in percent.
START_SPLIT = (5, 30, 35, 30)
#: National Day golden week and New Year's Day: the offices are shut, the mall is busy.
HOLIDAYS = frozenset({*((10, day) for day in range(1, 8)), (1, 1)})
#: Target balances (CNY) of the shops whose tenants let their credit run low.
LOW_BALANCE = (18, 26, 35, 44)
GRID_METER = "3301-0088-2219"
GRID_MULTIPLIER = 200


@dataclass
class MonthEndSummary:
    reads: int = 0
    deductions: int = 0
    runs: list[str] = field(default_factory=list)
    bills: int = 0


# --------------------------------------------------------------------- consumption profiles


def shop_profile(hour: int, weekend: bool, holiday: bool) -> float:
    if 10 <= hour < 22:
        factor = 1.0 if hour in (12, 13, 18, 19, 20) else 0.8
        return factor * (1.35 if holiday else 1.2 if weekend else 1.0)
    return 0.35 if hour in (9, 22) else 0.06  # staff before opening; fridges and signs at night


def office_profile(hour: int, weekend: bool, holiday: bool) -> float:
    if weekend or holiday:
        return 0.1
    if 8 <= hour < 18:
        return 0.6 if hour == 12 else 0.9
    return 0.45 if hour in (7, 18, 19) else 0.1


def public_profile(hour: int, weekend: bool, holiday: bool) -> float:
    if 10 <= hour < 22:
        return 1.1 if weekend or holiday else 1.0
    return 0.5 if hour in (7, 8, 9, 22) else 0.25


def _months(spec: str) -> set[int]:
    """``"1-12"``, ``"7-8"`` or ``"12-1"`` (wrapping) → the months."""
    first, _sep, last = spec.partition("-")
    start, end = int(first), int(last or first)
    if start <= end:
        return set(range(start, end + 1))
    return set(range(start, 13)) | set(range(1, end + 1))


def _hours(window: Mapping[str, str]) -> range:
    start, end = int(window["start"][:2]), int(window["end"][:2])
    return range(start, end if end > start else 24)


def period_table(document: Mapping[str, Any]) -> dict[tuple[int, int], str]:
    """(month, hour) → the time-of-use period of a tariff document's energy schedule (its
    newest version; the demo tariffs keep one schedule), critical peaks as ``sharp``."""
    energy = document["versions"][-1]["energy"]
    table: dict[tuple[int, int], str] = {}
    for season in energy.get("schedule", []):
        for month in _months(season["months"]):
            for hour in range(24):
                table[(month, hour)] = season.get("default_period", "flat")
            for window in season["windows"]:
                for hour in _hours(window):
                    table[(month, hour)] = window["period"]
    for peak in energy.get("critical_peak", []):
        for month in _months(peak["months"]):
            for window in peak["windows"]:
                for hour in _hours(window):
                    table[(month, hour)] = window["period"]
    return table


def price_at(document: Mapping[str, Any], moment: datetime, period: str) -> Decimal:
    """The energy price of a period in the version in force at ``moment`` (local, naive)."""
    price = Decimal(0)
    for version in document["versions"]:
        if datetime.fromisoformat(version["effective_from"]) <= moment:
            prices = {p["name"]: Decimal(p["price"]) for p in version["energy"]["periods"]}
            price = prices.get(period, prices.get("flat", Decimal(0)))
    return price


# ------------------------------------------------------------------------------ the history


@dataclass(slots=True)
class Moment:
    """An hour of the history: when it starts, what shapes it, whether meters are read then."""

    at: datetime  # aware
    local: datetime  # naive, the organisation's wall clock
    weekend: bool
    holiday: bool
    read: bool = True


def read_cadence(*tables: Mapping[tuple[int, int], str]) -> Callable[[datetime], bool]:
    """Read every two hours and at every change of time-of-use period, so that no interval
    spans two periods and every interval is rated at its own price (hourly reads would rate
    the same and take twice as long to store)."""

    def read(local: datetime) -> bool:
        month, hour = local.month, local.hour
        return hour % 2 == 0 or any(
            table.get((month, hour)) != table.get((month, hour - 1)) for table in tables
        )

    return read


def hourly_moments(
    first: datetime,
    last: datetime,
    zone: Any,
    read: Callable[[datetime], bool] | None = None,
) -> list[Moment]:
    """The hours from ``first`` to ``last`` (both read); ``read`` says which others are."""
    moments = []
    at = first.astimezone(UTC)
    while at <= last:
        local = at.astimezone(zone).replace(tzinfo=None)
        moments.append(
            Moment(
                at,
                local,
                local.weekday() >= 5,
                (local.month, local.day) in HOLIDAYS,
                read is None or at in (first, last) or read(local),
            )
        )
        at += HOUR
    return moments


@dataclass(slots=True)
class History:
    """A meter's hourly consumption in hundredths of its register (step ``n``: the hour from
    moment ``n`` to moment ``n + 1``) and its reads (``read_index``: at which moments)."""

    meter: Meter
    start_centi: int
    steps: list[int]
    periods: list[int]  # index into PERIODS of each step
    reads: list[ReadInput] = field(default_factory=list)
    read_index: list[int] = field(default_factory=list)

    def kwh(self, first: int, last: int) -> Decimal:
        """The consumption from moment ``first`` to moment ``last`` (kWh, after the CT)."""
        return Decimal(sum(self.steps[first:last]) * (self.meter.multiplier or 1)).scaleb(-2)

    def reads_between(self, after: int, until: int) -> list[ReadInput]:
        """The reads at moments ``after`` (exclusive) … ``until`` (inclusive)."""
        return self.reads[
            bisect_right(self.read_index, after) : bisect_right(self.read_index, until)
        ]


def meter_history(
    meter: Meter,
    moments: Sequence[Moment],
    steps: int,
    *,
    peak_kw: float,
    profile: Callable[[int, bool, bool], float],
    periods: Mapping[tuple[int, int], str],
    end_register: Decimal | None,
    rng: random.Random,
) -> History:
    """``steps`` hours of consumption and the reads at the read moments among them (and at the
    end). The register ends at ``end_register`` (where the simulated meter carries on) when
    given; a history that would not fit under it is scaled down (a quieter tenant)."""
    multiplier = meter.multiplier or 1
    # the spike check's ceiling is per hour on the register (before the multiplier)
    ceiling = float(MAX_DEMAND_BY_KIND.get(meter.kind, Decimal(25))) * 0.8
    index = {name: n for n, name in enumerate(PERIODS)}
    values: list[int] = []
    kinds: list[int] = []
    for moment in moments[:steps]:
        hour = moment.local.hour
        kwh = peak_kw * profile(hour, moment.weekend, moment.holiday) * (0.85 + 0.3 * rng.random())
        values.append(round(min(kwh / multiplier, ceiling) * 100))
        kinds.append(index[periods.get((moment.local.month, hour), "flat")])
    total = sum(values)
    if end_register is None:
        end = total + rng.randrange(200_000, 2_000_000)
    else:
        end = int(end_register * 100)
        if total > end * 0.9:
            scale = end * 0.9 / total
            values = [int(v * scale) for v in values]
            total = sum(values)
    history = History(meter, end - total, values, kinds)
    registers = [history.start_centi * share // 100 for share in START_SPLIT]
    registers[2] += history.start_centi - sum(registers)  # what the split leaves, on flat
    running = history.start_centi
    for n in range(steps + 1):
        if n:
            running += values[n - 1]
            registers[kinds[n - 1]] += values[n - 1]
        if not (moments[n].read or n == steps):
            continue
        history.read_index.append(n)
        history.reads.append(
            ReadInput(
                meter.pk,
                moments[n].at,
                Decimal(running).scaleb(-2),
                Decimal(registers[0]).scaleb(-2),
                Decimal(registers[1]).scaleb(-2),
                Decimal(registers[2]).scaleb(-2),
                Decimal(registers[3]).scaleb(-2),
                "poll",
                2 * HOUR,
            )
        )
    return history


class Ingest:
    """Feeds the histories to the readings pipeline and deducts what they used, a week at a
    time (each deduction rates every interval since the meter's last one), and over the last
    week a day at a time for the prepaid meters (``daily``), whose days of credit left are
    estimated from the last days' deductions."""

    def __init__(
        self, histories: Sequence[History], moments: Sequence[Moment], daily: set[int]
    ) -> None:
        self.histories = histories
        self.moments = moments
        self.daily = daily
        self.daily_from = moments[-1].at - timedelta(days=8)
        self.done = -1  # the last moment stored
        self.pending: set[int] = set()  # meters with intervals not deducted yet
        self.reads = 0
        self.deductions = 0

    def _chunk_end(self, last: int) -> tuple[int, bool]:
        """Up to the midnight that ends this week (or, in the last week, this day), at most
        ``last``; and whether a week (or ``last``) ends there."""
        end, days = self.done + 1, 0
        while end < last:
            end += 1
            if self.moments[end].local.hour == 0:
                days += 1
                if days == 7:
                    return end, True
                if self.moments[end].at > self.daily_from:
                    return end, False
        return end, True

    def until(self, last: int) -> None:
        """Store and deduct every read up to moment index ``last`` (inclusive)."""
        while self.done < last:
            end, whole = self._chunk_end(last)
            reads = [r for h in self.histories for r in h.reads_between(self.done, end)]
            self.done = end
            if reads:
                outcome = register_reads_record_batch(reads=reads, actor="gateway")
                if outcome.refused:
                    read, why = outcome.refused[0]
                    raise ValueError(f"demo read of meter {read.meter_id} refused: {why}")
                self.reads += outcome.stored
                self.pending.update(outcome.deductible_meters)
            due = self.pending if whole else self.pending & self.daily
            if due:
                entries = meters_deduct_batch(meter_ids=sorted(due), actor="rating")
                self.deductions += len(entries)
                self.pending -= due


# ------------------------------------------------------------------------- the set-up


LOGO_SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="240" height="64">
<rect x="2" y="2" width="60" height="60" rx="12" fill="#0f5c8c"/>
<path d="M12 44 C22 30 32 50 42 36 S 56 30 56 30" stroke="#ffffff" stroke-width="5"
 fill="none" stroke-linecap="round"/>
<path d="M12 26 L32 12 L52 26" stroke="#9fd3f5" stroke-width="5" fill="none"
 stroke-linejoin="round"/>
<text x="74" y="30" font-family="Noto Sans CJK SC, sans-serif" font-size="20"
 font-weight="700" fill="#0f5c8c">江畔物业</text>
<text x="74" y="52" font-family="sans-serif" font-size="13" fill="#3d6f8f">Riverside Property</text>
</svg>
""".encode()
SEAL_SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="160" height="160">
<circle cx="80" cy="80" r="72" fill="none" stroke="#c8102e" stroke-width="6"/>
<polygon points="80,52 87,72 108,72 91,85 97,105 80,93 63,105 69,85 52,72 73,72"
 fill="#c8102e"/>
<text x="80" y="40" text-anchor="middle" font-family="Noto Sans CJK SC, sans-serif"
 font-size="17" fill="#c8102e">江畔物业管理</text>
<text x="80" y="130" text-anchor="middle" font-family="Noto Sans CJK SC, sans-serif"
 font-size="15" fill="#c8102e">财务专用章</text>
</svg>
""".encode()


def _item(actor: Actor, organisation: Organisation, **values: Any) -> Any:
    return charge_item_save(
        actor=actor, organisation_id=organisation.pk, values={"frequency": "monthly", **values}
    )


def _area(account: Account) -> Decimal:
    return sum((room.area_m2 for room in account.rooms.all()), Decimal(0))


def _level(account: Account) -> int:
    rooms = list(account.rooms.all())
    return rooms[0].floor.level if rooms else 0


def _charges_set_up(
    actor: Actor, organisation: Organisation, shops: Sequence[Account], offices: Sequence[Account]
) -> None:
    """Rent, property and marketing fees for the shops; the property fee for the offices."""
    rent = _item(
        actor,
        organisation,
        code="rent",
        name="租金 Rent",
        basis="per_area",
        unit_price="160",
        settlement="bill",
        revenue="rent",
    )
    ground = [a for a in shops if _level(a) == 1]
    charge_subscribe(actor=actor, item=rent, accounts=ground, unit_price="260")
    charge_subscribe(actor=actor, item=rent, accounts=[a for a in shops if _level(a) != 1])
    deducted = _item(
        actor,
        organisation,
        code="property-fee",
        name="物业管理费 Property management fee",
        basis="per_area",
        unit_price="22",
        settlement="deduct",
        revenue="property_fee",
    )
    invoiced = _item(
        actor,
        organisation,
        code="property-fee-invoiced",
        name="物业管理费(缴费单) Property management fee, invoiced",
        basis="per_area",
        unit_price="22",
        settlement="bill",
        revenue="property_fee",
    )
    # a shop whose money lives on its meter pays the fee on its bill, not from the wallet
    meter_side = [a for a in shops if a.billing_side == Account.BillingSide.METER]
    charge_subscribe(actor=actor, item=invoiced, accounts=meter_side)
    charge_subscribe(actor=actor, item=deducted, accounts=[a for a in shops if a not in meter_side])
    marketing = _item(
        actor,
        organisation,
        code="marketing-fee",
        name="推广服务费 Marketing service fee",
        basis="fixed",
        unit_price="1500",
        frequency="quarterly",
        settlement="bill",
        revenue="service_fee",
    )
    charge_subscribe(actor=actor, item=marketing, accounts=shops)
    office_fee = _item(
        actor,
        organisation,
        code="office-property-fee",
        name="写字楼物业费 Office property fee",
        basis="per_area",
        unit_price="18",
        settlement="deduct",
        revenue="property_fee",
    )
    charge_subscribe(actor=actor, item=office_fee, accounts=offices)


def _sharing_set_up(
    actor: Actor, organisation: Organisation, mall: Site, shops: Sequence[Account]
) -> LossGroup:
    """Each floor's public-area meter shared by area among its shops; the grid meter's loss."""
    publics = Meter.objects.filter(
        room__floor__building__site=mall, room__kind=Room.Kind.PUBLIC_AREA
    ).select_related("room__floor")
    for meter in publics.order_by("room__floor__level", "pk"):
        assert meter.room is not None
        level = meter.room.floor.level
        group = allocation_group_save(
            actor=actor,
            organisation_id=organisation.pk,
            values={
                "name": f"{level}F 公共区域 Public areas {level}F",
                "site": mall,
                "master_meter": meter,
                "rule": "area",
            },
        )
        allocation_members_set(
            actor=actor, group=group, members=[(a, None) for a in shops if _level(a) == level]
        )
    return loss_group_save(
        actor=actor,
        organisation_id=organisation.pk,
        values={
            "name": "10 kV 总表 Mall grid meter",
            "site": mall,
            "grid_meter_number": GRID_METER,
            "multiplier": GRID_MULTIPLIER,
            "unit_price": "0.78",
            "rule": "usage",
        },
    )


def _branding_set_up(actor: Actor, organisation: Organisation) -> None:
    documents.bill_branding_save(
        actor=actor,
        organisation_id=organisation.pk,
        values={
            "address": "江城市江畔路 88 号 物业服务中心 · "
            "88 Riverside Road, Property Service Centre",
            "phone": "0571-8866 2200",
            "bank_account": "中国工商银行江城江畔支行 ICBC Jiangcheng Riverside Branch "
            "1202 0212 0900 0088 661",
            "payment_instructions": "请于到期日前转账至上述账户(注明账单号)或到物业服务中心"
            "现金缴费。Please pay by the due date: transfer to the account above quoting the "
            "bill number, or pay at the Property Service Centre.",
        },
        logo=LOGO_SVG,
        logo_type="image/svg+xml",
        seal=SEAL_SVG,
        seal_type="image/svg+xml",
    )


# ------------------------------------------------------------------------- the month end


def _pay(actor: Actor, bill: Bill, *, share: Decimal = Decimal(1), channel: str = "") -> Bill:
    """Pay a share of what the bill still asks (a part rounded down to 100 CNY)."""
    bill.refresh_from_db()
    minor = bill.unpaid_minor
    if share < 1:
        minor = int(minor * share) // 10000 * 10000 or minor // 2
    if minor <= 0:
        return bill
    return bill_pay(
        actor=actor,
        bill=bill,
        amount=Decimal(minor).scaleb(-2),
        channel=channel or ("bank_transfer" if bill.pk % 3 else "cash"),
        idempotency_key=f"demo-pay-{bill.number}-{minor}",
        reference=bill.number,
    )


def _rent_relief(bill: Bill, days: int) -> Decimal:
    """``days`` of the bill's rent, in the customer's favour."""
    rent = sum(line.amount_minor for line in bill.lines.all() if line.charge_type == "rent")
    assert bill.period_start is not None
    month_days = (bill.period_end - bill.period_start).days
    return -(Decimal(rent * days) / month_days).quantize(Decimal(1)).scaleb(-2)


def _statements(run: BillRun) -> list[Bill]:
    return list(run.bills.filter(kind=Bill.Kind.STATEMENT, due_minor__gt=0).order_by("number"))


@transaction.atomic
def demo_month_end_seed(
    *,
    actor: Actor,
    organisation: Organisation,
    end_registers: Mapping[int, Decimal] | None = None,
    seed: int = 2611,
) -> MonthEndSummary:
    """Seed the demo organisation's last two months (see the module doc). ``end_registers``:
    each meter's register now (where a simulated meter carries on from)."""
    rng = random.Random(seed)
    registers = end_registers or {}
    summary = MonthEndSummary()
    zone = timezone.get_current_timezone()
    now = timezone.localtime()
    this_month = now.date().replace(day=1)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    before_last = (last_month - timedelta(days=1)).replace(day=1)
    move_out_on = last_month.replace(day=20)
    mall_periods, office_periods = period_table(MALL_COMMERCIAL_TOU), period_table(OFFICE_CAPACITY)
    moments = hourly_moments(
        datetime.combine(before_last, time(), zone),
        now.replace(minute=0, second=0, microsecond=0),
        zone,
        read_cadence(mall_periods, office_periods),
    )
    at = {m.local: n for n, m in enumerate(moments)}

    def index(day: date) -> int:
        return at[datetime.combine(day, time())]

    mall = Site.objects.get(organisation=organisation, kind=Site.Kind.MALL)
    office = Site.objects.get(organisation=organisation, kind=Site.Kind.OFFICE)

    def accounts(site: Site) -> list[Account]:
        return list(
            Account.objects.filter(organisation=organisation, rooms__floor__building__site=site)
            .exclude(status__in=(Account.Status.PRESET, Account.Status.CLOSED))
            .prefetch_related("rooms__floor")
            .distinct()
            .order_by("number")
        )

    shops, offices = accounts(mall), accounts(office)
    prepaid = [
        a
        for a in shops
        if a.status == Account.Status.OPEN and a.billing_side == Account.BillingSide.PLATFORM
    ]
    leaver = [a for a in prepaid if _level(a) == 3][2]

    # --- the meters' history: open tenants and public areas, from the month before last
    open_ids = {a.pk for a in (*shops, *offices) if a.status == Account.Status.OPEN}
    areas = {a.pk: float(_area(a)) for a in (*shops, *offices)}
    metered = (
        Meter.objects.filter(room__floor__building__site__in=[mall, office], removed_on=None)
        .exclude(kind=Meter.Kind.WATER)
        .select_related("room__floor__building")
        .order_by("pk")
    )
    histories: list[History] = []
    for meter in metered:
        assert meter.room is not None
        # one generator per meter: its past hours are the same whatever hour it is seeded at
        meter_rng = random.Random(seed * 100_003 + meter.pk)
        in_mall = meter.room.floor.building.site_id == mall.pk
        if meter.room.kind == Room.Kind.PUBLIC_AREA:
            peak = meter_rng.uniform(40, 60) if in_mall else meter_rng.uniform(30, 45)
            profile = public_profile
        elif meter.account_id in open_ids:
            per_m2 = meter_rng.uniform(0.09, 0.15) if in_mall else meter_rng.uniform(0.06, 0.09)
            peak = areas[meter.account_id] * per_m2
            profile = shop_profile if in_mall else office_profile
        else:
            continue  # vacant, not open yet or suspended: the meter stands still
        steps = len(moments) - 1
        if meter.account_id == leaver.pk:
            steps = index(move_out_on + timedelta(days=1))
        histories.append(
            meter_history(
                meter,
                moments,
                steps,
                peak_kw=peak,
                profile=profile,
                periods=mall_periods if in_mall else office_periods,
                end_register=registers.get(meter.pk),
                rng=meter_rng,
            )
        )
    mall_meters = set(metered.filter(room__floor__building__site=mall).values_list("pk", flat=True))
    mall_histories = [h for h in histories if h.meter.pk in mall_meters]

    # --- charges, sharing, branding, the schedule
    _charges_set_up(actor, organisation, shops, offices)
    loss = _sharing_set_up(actor, organisation, mall, shops)
    _branding_set_up(actor, organisation)
    schedule = bill_schedule_save(actor=actor, site=mall, day_of_month=3, issue=False)

    # --- the prepaid shops paid in enough for the months (a few let it run low)
    by_account = {h.meter.account_id: h for h in mall_histories if h.meter.account_id}
    prices = [
        float(
            price_at(
                MALL_COMMERCIAL_TOU,
                m.local,
                mall_periods.get((m.local.month, m.local.hour), "flat"),
            )
        )
        for m in moments[:-1]
    ]
    for n, account in enumerate(prepaid):
        history = by_account.get(account.pk)
        cost = Decimal(0)
        if history is not None:
            energy = sum(c * p for c, p in zip(history.steps, prices, strict=False))
            cost = Decimal(round(energy * (history.meter.multiplier or 1) / 100, 2))
        cost += 5 * 3 + _area(account) * 22  # meter service fees; one month's property fee
        balance = Decimal(Wallet.objects.get(account=account).balance_minor).scaleb(-2)
        if n % 9 == 4:
            amount = (cost + LOW_BALANCE[n % 4] - balance).quantize(Decimal(1))
        else:
            margin = _area(account) * 22 + rng.choice((300, 500, 800, 1200))
            amount = ((cost + margin - balance) / 100).quantize(Decimal(1)) * 100
        if amount > 0:
            recharge, _created = payments.recharge_record(
                actor=actor,
                account=account,
                amount=amount,
                channel="bank_transfer" if n % 2 else "cash",
                idempotency_key=f"demo-topup-{account.pk}",
                reference=f"top-up {account.number}",
            )
            if recharge.status == recharge.Status.PENDING:
                payments.recharge_confirm(actor=actor, recharge=recharge)

    # --- the grid meter, read by hand at each month's start (and at the move-out): the
    # registers the sub-meters' consumption and a loss of 3.2 to 5.8 % give
    feed = Ingest(histories, moments, {h.meter.pk for h in by_account.values()})
    notes = {
        before_last: "月初抄表 封印完好 Month-start reading by 王工 (Wang); seal intact",
        last_month: "月初抄表 Month-start reading by 王工 (Wang); photo in the site log",
        move_out_on + timedelta(days=1): "商户退租抄表 Read for a 3F shop's move-out",
        this_month: "月初抄表 Month-start reading by 李工 (Li) with the supply company's inspector",
    }
    grid: dict[date, Decimal] = {}
    register, previous = Decimal(41236) + Decimal(rng.randrange(100)).scaleb(-2), 0
    for day in sorted(notes):
        used = sum((h.kwh(previous, index(day)) for h in mall_histories), Decimal(0))
        rate = Decimal(rng.randrange(32, 58)).scaleb(-3)
        register += (used / (1 - rate) / GRID_MULTIPLIER).quantize(Decimal("0.01"))
        grid[day], previous = register, index(day)

    def grid_read(day: date) -> None:
        grid_reading_enter(
            actor=actor, group=loss, read_on=day, reading=grid[day], notes=notes[day]
        )

    grid_read(before_last)

    # --- the month before last
    feed.until(index(last_month))
    grid_read(last_month)
    runs = []
    for site in (mall, office):
        run = bill_run_create(
            actor=actor,
            organisation_id=organisation.pk,
            period_start=before_last,
            period_end=last_month,
            site=site,
        )
        bill_run_confirm(actor=actor, run=run)
        runs.append(bill_run_issue(actor=actor, run=run))
    mall_run, office_run = runs
    for n, bill in enumerate(_statements(mall_run)):
        if n == 2:  # the air conditioning failed: rent relief on a corrected bill
            corrected = bill_reissue(
                actor=actor,
                bill=bill,
                reason="空调检修停用 3 天 Air conditioning out of service for 3 days",
                adjustments=[("租金减免 3 天 Rent relief, 3 days", _rent_relief(bill, 3))],
            )
            bill_confirm(actor=actor, bill=corrected)
            _pay(actor, bill_issue(actor=actor, bill=corrected))
        elif n == 5:
            _pay(actor, bill, share=Decimal("0.5"))
        elif n not in (9, 23):  # those two are still unpaid
            _pay(actor, bill)
    # the tower: all paid but one tenant's, who pays nothing (overdue, reminded, and cut for
    # arrears when the policy allows it now); a payment settles a wallet's oldest bill first
    tower_bills = _statements(office_run)
    in_arrears = tower_bills[len(tower_bills) // 3].account_id
    for bill in tower_bills:
        if bill.account_id != in_arrears:
            _pay(actor, bill)
    summary.runs += [r.number for r in runs]

    # --- last month: a shop moves out on the 20th
    feed.until(index(move_out_on + timedelta(days=1)))
    grid_read(move_out_on + timedelta(days=1))
    moved = account_move_out(actor=actor, account=leaver, move_out_on=move_out_on)
    if moved.bill.unpaid_minor:
        _pay(actor, moved.bill, channel="bank_transfer")

    feed.until(index(this_month))
    grid_read(this_month)
    # the tower: issued; paid, partly paid, unpaid (due on the 5th)
    run = bill_run_create(
        actor=actor,
        organisation_id=organisation.pk,
        period_start=last_month,
        period_end=this_month,
        site=office,
        due_on=this_month + timedelta(days=4),
    )
    bill_run_confirm(actor=actor, run=run)
    bill_run_issue(actor=actor, run=run)
    summary.runs.append(run.number)
    for n, bill in enumerate(b for b in _statements(run) if b.account_id != in_arrears):
        if n % 6 == 2:
            _pay(actor, bill, share=Decimal("0.5"))
        elif n % 6 != 4:  # those not paid yet: overdue once the due day has passed
            _pay(actor, bill)
    # the mall: the ground floor checked and confirmed, the rest a draft made by the schedule
    ground = [a for a in shops if _level(a) == 1]
    run = bill_run_create(
        actor=actor,
        organisation_id=organisation.pk,
        period_start=last_month,
        period_end=this_month,
        accounts=ground,
    )
    bill_run_confirm(actor=actor, run=run)
    summary.runs.append(run.number)
    run = bill_run_create(
        actor=actor,
        organisation_id=organisation.pk,
        period_start=last_month,
        period_end=this_month,
        site=mall,
        schedule=schedule,
    )
    BillSchedule.objects.filter(pk=schedule.pk).update(last_period_start=last_month)
    summary.runs.append(run.number)

    # --- this month so far, and this morning's overdue sweep
    feed.until(len(moments) - 1)
    bills_overdue_run()
    summary.reads, summary.deductions = feed.reads, feed.deductions
    summary.bills = Bill.objects.filter(organisation=organisation).count()
    return summary
