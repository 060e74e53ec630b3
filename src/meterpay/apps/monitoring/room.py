"""One room's whole state: its active account's money and fee status, its meters with their
link, supply and latest reading, the commands in flight, today's and this month's use and cost,
the alarms sent and the commands' results. The room page and the room state API read it here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from meterpay.apps.billing.consumption import accounts_consumption, meter_usage
from meterpay.apps.billing.models import Bill
from meterpay.apps.control.models import MeterBalance, MeterCommand, MeterSupplyState
from meterpay.apps.customers.models import Account
from meterpay.apps.customers.selectors import ACTIVE
from meterpay.apps.ledger.models import Wallet
from meterpay.apps.meters.models import Meter
from meterpay.apps.monitoring.grid import meter_supply, utility_of
from meterpay.apps.notifications.models import Notification
from meterpay.apps.readings.models import MeterLink, RegisterRead
from meterpay.apps.readings.selectors import consumption_by_bucket
from meterpay.apps.sites.models import Room
from meterpay.apps.supply.selectors import credit_estimate, policy_row
from meterpay.apps.tariffs.models import AccountTariff, Tariff
from meterpay.apps.tariffs.selectors import default_tariffs
from meterpay.core.fee_status import FeeFacts, FeeStatus, fee_status, owed_minor

UNITS = {"electricity": "kWh", "water": "m³"}


@dataclass(slots=True)
class MeterState:
    meter: Meter
    utility: str
    unit: str
    link: MeterLink | None
    supply_row: MeterSupplyState | None
    supply: str  # on | off | pending | unknown
    latest: RegisterRead | None
    open_commands: list[MeterCommand]
    balance: MeterBalance | None

    @property
    def online(self) -> bool | None:
        return None if self.link is None else self.link.online

    @property
    def link_state(self) -> str:
        if self.online is None:
            return "unknown"
        return "online" if self.online else "offline"

    @property
    def commandable(self) -> bool:
        """Whether relay or valve commands can reach it (in place, behind a gateway)."""
        return self.meter.removed_on is None and self.meter.gateway_id is not None


@dataclass(slots=True)
class TariffInForce:
    utility: str
    tariff: Tariff
    default: bool  # the organisation's default tariff (no assignment of the account)


@dataclass(slots=True)
class AccountState:
    account: Account
    wallet: Wallet | None
    currency: str
    balance_minor: int
    owed_minor: int
    #: The unpaid part of issued bills owed to the wallet (a postpaid account's billed debt).
    billed_unpaid_minor: int
    #: Payment requests unpaid (owed outside the wallet).
    receivable_unpaid_minor: int
    overdue: bool
    fee: FeeStatus
    thresholds_minor: list[int]
    thresholds_own: bool
    days_left: Decimal | None
    meter_remaining_minor: int | None
    tariffs: list[TariffInForce]

    @property
    def prepaid(self) -> bool:
        return self.account.billing_mode == Account.BillingMode.PREPAID

    @property
    def meter_side(self) -> bool:
        return self.account.billing_side == Account.BillingSide.METER

    @property
    def supply(self) -> str:
        return self.wallet.supply if self.wallet is not None else "on"

    @property
    def cut_deferred_until(self) -> datetime | None:
        return self.wallet.cut_deferred_until if self.wallet is not None else None


@dataclass(slots=True)
class UsageLine:
    label: str
    quantity: Decimal | None
    unit: str
    amount_minor: int


@dataclass(slots=True)
class Usage:
    """Use and cost over ``[start, end)`` (local days)."""

    start: date
    end: date
    kwh: Decimal = Decimal(0)
    m3: Decimal = Decimal(0)
    #: None: no account to charge (a vacant room's meters).
    cost_minor: int | None = None
    lines: list[UsageLine] = field(default_factory=list)


@dataclass(slots=True)
class RoomState:
    room: Room
    account: AccountState | None
    meters: list[MeterState]
    now: datetime

    @property
    def fee(self) -> FeeStatus | None:
        return None if self.account is None else self.account.fee

    @property
    def pending(self) -> list[MeterCommand]:
        return sorted(
            (c for m in self.meters for c in m.open_commands), key=lambda c: (c.created_at, c.pk)
        )

    @property
    def link(self) -> str:
        states = {m.link_state for m in self.meters}
        if not states:
            return "none"
        for state in ("offline", "online"):
            if state in states:
                return state
        return "unknown"

    @property
    def supply(self) -> str:
        states = {m.supply for m in self.meters}
        for state in ("off", "pending", "on"):
            if state in states:
                return state
        return "unknown"

    def utility(self, name: str) -> list[MeterState]:
        return [m for m in self.meters if m.utility == name]


def active_account(room: Room) -> Account | None:
    """The room's pre-set, open or suspended account (a room has at most one)."""
    return (
        Account.objects.filter(rooms=room, status__in=ACTIVE)
        .select_related("customer")
        .order_by("-id")
        .first()
    )


def room_meters(room: Room) -> list[MeterState]:
    """The room's installed meters, electricity first, each with link, supply, latest read."""
    meters = list(
        Meter.objects.filter(room=room, removed_on__isnull=True)
        .select_related("gateway", "link", "supply", "balance")
        .order_by("kind", "address")
    )
    links = {m.pk: getattr(m, "link", None) for m in meters if hasattr(m, "link")}
    read_ids = [link.last_read_id for link in links.values() if link and link.last_read_id]
    reads = {r.meter_id: r for r in RegisterRead.objects.filter(pk__in=read_ids)}
    missing = [m.pk for m in meters if m.pk not in reads]
    for meter_id in missing:  # no link kept yet (a manual read only): the newest read itself
        newest = RegisterRead.objects.filter(meter_id=meter_id).order_by("-read_at").first()
        if newest is not None:
            reads[meter_id] = newest
    open_commands: dict[int, list[MeterCommand]] = {}
    for command in (
        MeterCommand.objects.filter(meter__in=meters, status__in=MeterCommand.OPEN_STATUSES)
        .select_related("meter")
        .order_by("created_at", "id")
    ):
        open_commands.setdefault(command.meter_id, []).append(command)
    states = []
    for meter in meters:
        utility = utility_of(meter.kind)
        supply_row = getattr(meter, "supply", None) if hasattr(meter, "supply") else None
        switching = any(not c.is_credit for c in open_commands.get(meter.pk, []))
        states.append(
            MeterState(
                meter=meter,
                utility=utility,
                unit=UNITS[utility],
                link=links.get(meter.pk),
                supply_row=supply_row,
                supply=meter_supply(
                    reported=supply_row.reported if supply_row else None, in_flight=switching
                ),
                latest=reads.get(meter.pk),
                open_commands=open_commands.get(meter.pk, []),
                balance=getattr(meter, "balance", None) if hasattr(meter, "balance") else None,
            )
        )
    states.sort(key=lambda s: (s.utility != "electricity", s.meter.address))
    return states


def account_state(
    account: Account, meters: list[MeterState], *, now: datetime | None = None
) -> AccountState:
    now = now or timezone.now()
    wallet = Wallet.objects.filter(account=account).first()
    currency = wallet.currency if wallet is not None else "CNY"
    balance = wallet.balance_minor if wallet is not None else 0
    today = timezone.localdate(now)
    sums = Bill.objects.filter(
        account=account, status=Bill.Status.ISSUED, unpaid_minor__gt=0
    ).aggregate(
        receivable=Sum("unpaid_minor", filter=Q(settles=Bill.Settles.RECEIVABLE)),
        billed=Sum("unpaid_minor", filter=Q(settles=Bill.Settles.WALLET)),
        overdue=Count("pk", filter=Q(due_on__lt=today)),
    )
    receivable = int(sums["receivable"] or 0)
    own = bool(wallet is not None and wallet.alarm_thresholds_minor)
    thresholds = [
        int(t)
        for t in (
            wallet.alarm_thresholds_minor
            if wallet is not None and wallet.alarm_thresholds_minor
            else policy_row(account.organisation_id).alarm_thresholds_minor or []
        )
    ]
    prepaid = account.billing_mode == Account.BillingMode.PREPAID
    meter_side = account.billing_side == Account.BillingSide.METER
    remaining = None
    if meter_side:
        for state in meters:
            if (
                state.meter.account_id == account.pk
                and state.balance is not None
                and state.balance.remaining_minor is not None
            ):
                remaining = state.balance.remaining_minor
                break
    fee = fee_status(
        FeeFacts(
            prepaid=prepaid,
            meter_side=meter_side,
            balance_minor=balance,
            thresholds_minor=thresholds,
            supply_cut=wallet is not None and wallet.supply != "on",
            overdue=bool(sums["overdue"]),
            meter_remaining_minor=remaining,
            preset=account.status == Account.Status.PRESET,
        )
    )
    days = None
    if wallet is not None and prepaid and not meter_side and account.status != "pre-set":
        days = credit_estimate(wallet, now=now).days
    return AccountState(
        account=account,
        wallet=wallet,
        currency=currency,
        balance_minor=balance,
        owed_minor=owed_minor(
            prepaid=prepaid, balance_minor=balance, receivable_unpaid_minor=receivable
        ),
        billed_unpaid_minor=int(sums["billed"] or 0),
        receivable_unpaid_minor=receivable,
        overdue=bool(sums["overdue"]),
        fee=fee,
        thresholds_minor=thresholds,
        thresholds_own=own,
        days_left=days,
        meter_remaining_minor=remaining,
        tariffs=tariffs_in_force(account, now=now),
    )


def tariffs_in_force(account: Account, *, now: datetime) -> list[TariffInForce]:
    """Per utility: the account's assignment in force, else the organisation's default."""
    found: dict[str, TariffInForce] = {}
    for assigned in (
        AccountTariff.objects.filter(account=account, effective_from__lte=now)
        .select_related("tariff")
        .order_by("utility", "-effective_from")
    ):
        found.setdefault(
            assigned.utility, TariffInForce(assigned.utility, assigned.tariff, default=False)
        )
    for utility, default in default_tariffs(account.organisation_id).items():
        found.setdefault(utility, TariffInForce(utility, default.tariff, default=True))
    return [found[u] for u in ("electricity", "water") if u in found]


def room_state(room: Room, *, now: datetime | None = None) -> RoomState:
    now = now or timezone.now()
    meters = room_meters(room)
    account = active_account(room)
    return RoomState(
        room=room,
        account=None if account is None else account_state(account, meters, now=now),
        meters=meters,
        now=now,
    )


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=timezone.get_current_timezone())


def usage(
    room: Room, account: Account | None, start: date, end: date, *, now: datetime | None = None
) -> Usage:
    """What the room used over ``[start, end)``; with an account, what it cost (what the
    ledger's real-time deductions took) and the lines by time-of-use period and tier."""
    now = now or timezone.now()
    result = Usage(start=start, end=end)
    if account is not None:
        consumption = accounts_consumption(
            accounts=[account], start=start, end=end, currency=_currency(account)
        )[account.pk]
        result.kwh, result.m3 = consumption.kwh, consumption.m3
        meter_side = account.billing_side == Account.BillingSide.METER
        merged: dict[tuple[str, str], UsageLine] = {}
        for line in consumption.lines:
            if meter_side and line.detail.get("reason") == "deductions_differ":
                continue  # the meter deducts a meter-side account's money, not the ledger
            key = (line.label, line.unit)
            item = merged.setdefault(key, UsageLine(line.label, None, line.unit, 0))
            item.amount_minor += line.amount_minor
            if line.quantity is not None:
                item.quantity = (item.quantity or Decimal(0)) + line.quantity
        result.lines = list(merged.values())
        result.cost_minor = (
            sum(line.amount_minor for line in result.lines)
            if meter_side
            else consumption.deducted_minor
        )
        return result
    meters = list(Meter.objects.filter(room=room, removed_on__isnull=True))
    used = meter_usage(meters, _day_start(start), _day_start(end), readings=False)
    for metered in used.values():
        if metered.utility == "water":
            result.m3 += metered.consumption
        else:
            result.kwh += metered.consumption
    return result


def _currency(account: Account) -> str:
    wallet = Wallet.objects.filter(account=account).values_list("currency", flat=True).first()
    return wallet or "CNY"


def today_and_month(
    room: Room, account: Account | None, *, now: datetime | None = None
) -> tuple[Usage, Usage]:
    now = now or timezone.now()
    today = timezone.localdate(now)
    month = today.replace(day=1)
    next_month = (month + timedelta(days=32)).replace(day=1)
    return (
        usage(room, account, today, today + timedelta(days=1), now=now),
        usage(room, account, month, next_month, now=now),
    )


def daily_chart(room: Room, *, now: datetime | None = None) -> dict[str, Any]:
    """This month's use per day and utility, for the room page's chart."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    month = today.replace(day=1)
    days = [month + timedelta(days=n) for n in range((today - month).days + 1)]
    totals = {u: [Decimal(0)] * len(days) for u in UNITS}
    for meter in Meter.objects.filter(room=room, removed_on__isnull=True):
        series = consumption_by_bucket(
            meter, since=_day_start(month), until=now, bucket=timedelta(days=1)
        )
        column = totals[utility_of(meter.kind)]
        for index, (_at, value) in enumerate(series[: len(days)]):
            column[index] += value
    return {
        "labels": [d.strftime("%m-%d") for d in days],
        "electricity": [str(v) for v in totals["electricity"]],
        "water": [str(v) for v in totals["water"]],
    }


def room_commands(room: Room, *, limit: int = 20) -> QuerySet[MeterCommand]:
    """The commands of every meter the room has had, newest first."""
    return (
        MeterCommand.objects.filter(meter__room=room)
        .select_related("meter", "requested_by_user")
        .order_by("-created_at", "-id")[:limit]
    )


def room_notifications(room: Room, *, limit: int = 20) -> QuerySet[Notification]:
    """The alarms and notices sent to the room's accounts, newest first."""
    return (
        Notification.objects.filter(account__rooms=room)
        .exclude(kind=Notification.Kind.TEST)
        .select_related("account")
        .order_by("-created_at", "-id")[:limit]
    )
