"""One call for a room's whole state (what the room page shows), for mobile apps and
dashboards: its account's money and fee status, its meters with link, supply and latest
reading, the commands in flight, and today's and this month's use and cost."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.http import HttpRequest
from ninja import Field, Router, Schema

from meterpay.api.billing import allowed
from meterpay.api.schemas import RoomOut
from meterpay.apps.control.models import MeterCommand
from meterpay.apps.customers.selectors import rooms_with_status
from meterpay.apps.monitoring import room as monitoring
from meterpay.apps.monitoring.labels import FEE_LABELS
from meterpay.apps.organisations.access import access_object
from meterpay.core.money import from_minor
from meterpay.core.roles import Permission

router = Router(tags=["room monitoring"])


class TariffRefOut(Schema):
    utility: str
    tariff_id: int
    name: str
    default: bool = Field(description="the organisation's default (no assignment of its own)")


class AccountStateOut(Schema):
    id: int
    number: str
    customer: str
    status: str
    billing_mode: str
    billing_side: str
    currency: str
    balance: str = Field(description="the wallet balance, a decimal string; negative below zero")
    owed: str = Field(
        description="what is owed now: a postpaid account's running debt (its issued, unpaid "
        "bills and what it used since) plus unpaid payment requests; 0.00 when nothing"
    )
    billed_unpaid: str = Field(description="of a postpaid debt, what issued bills ask for")
    payment_requests_unpaid: str
    overdue: bool = Field(description="an issued bill is unpaid past its due date")
    fee_status: str = Field(
        description="normal, alarm_1, alarm_2, alarm_3, overdrawn, cut_off, arrears, meter_low"
    )
    fee_status_label: str
    alarm_levels: list[str] = Field(description="most lenient first, decimal strings")
    alarm_levels_own: bool = Field(description="the account's own (else the organisation's)")
    days_of_credit_left: str | None
    supply: str = Field(description="on, cut_for_balance or cut_manual (the wallet's decision)")
    cut_deferred_until: datetime | None
    meter_money: str | None = Field(
        description="meter-side accounts: the money the meter last reported holding"
    )
    tariffs: list[TariffRefOut]


class AccountBriefOut(Schema):
    id: int
    number: str
    customer: str
    status: str
    move_in_on: date | None
    move_out_on: date | None


class ReadingOut(Schema):
    read_at: datetime
    unit: str
    total: str
    sharp: str | None
    peak: str | None
    flat: str | None
    valley: str | None


class CommandBriefOut(Schema):
    id: UUID
    meter_id: int
    kind: str
    status: str
    attempts: int
    created_at: datetime
    finished_at: datetime | None
    outcome: str


class RoomMeterOut(Schema):
    id: int
    address: str
    kind: str
    utility: str
    protocol: str
    gateway_id: int | None
    online: bool | None = Field(description="None: not polled yet")
    last_seen_at: datetime | None
    offline_since: datetime | None
    supply: str = Field(description="on, off, pending (a command in flight) or unknown")
    supply_desired: str
    supply_reported: str
    supply_reported_at: datetime | None
    latest_reading: ReadingOut | None
    pending_commands: list[CommandBriefOut]


class UsageLineOut(Schema):
    label: str
    quantity: str | None
    unit: str
    amount: str


class UsageOut(Schema):
    start: date
    end: date = Field(description="exclusive")
    electricity_kwh: str
    water_m3: str
    cost: str | None = Field(description="what the deductions took; None without an account")
    lines: list[UsageLineOut] = Field(description="by time-of-use period and tier")


class RoomStateOut(Schema):
    at: datetime
    room: RoomOut
    fee_status: str | None = Field(description="the active account's; None for a vacant room")
    fee_status_label: str | None
    link: str = Field(description="online, offline (a meter is), unknown or none (no meter)")
    supply: str = Field(description="off (a meter is), pending, on or unknown")
    account: AccountStateOut | None = Field(description="the pre-set, open or suspended one")
    accounts: list[AccountBriefOut] = Field(description="every account of the room, newest first")
    meters: list[RoomMeterOut]
    pending_commands: list[CommandBriefOut]
    today: UsageOut
    month: UsageOut


def _money(minor: int | None, currency: str) -> str | None:
    return None if minor is None else str(from_minor(int(minor), currency))


def _command(command: MeterCommand) -> dict[str, Any]:
    return {
        "id": command.command_id,
        "meter_id": command.meter_id,
        "kind": command.kind,
        "status": command.status,
        "attempts": command.attempts,
        "created_at": command.created_at,
        "finished_at": command.finished_at,
        "outcome": command.outcome,
    }


def _decimal(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _account(state: monitoring.AccountState) -> dict[str, Any]:
    account, currency = state.account, state.currency
    return {
        "id": account.pk,
        "number": account.number,
        "customer": account.customer.name,
        "status": account.status,
        "billing_mode": account.billing_mode,
        "billing_side": account.billing_side,
        "currency": currency,
        "balance": _money(state.balance_minor, currency),
        "owed": _money(state.owed_minor, currency),
        "billed_unpaid": _money(state.billed_unpaid_minor, currency),
        "payment_requests_unpaid": _money(state.receivable_unpaid_minor, currency),
        "overdue": state.overdue,
        "fee_status": state.fee.value,
        "fee_status_label": str(FEE_LABELS[state.fee]),
        "alarm_levels": [_money(m, currency) for m in state.thresholds_minor],
        "alarm_levels_own": state.thresholds_own,
        "days_of_credit_left": _decimal(state.days_left),
        "supply": state.supply,
        "cut_deferred_until": state.cut_deferred_until,
        "meter_money": _money(state.meter_remaining_minor, currency),
        "tariffs": [
            {
                "utility": t.utility,
                "tariff_id": t.tariff.pk,
                "name": t.tariff.name,
                "default": t.default,
            }
            for t in state.tariffs
        ],
    }


def _meter(item: monitoring.MeterState) -> dict[str, Any]:
    link, supply, read = item.link, item.supply_row, item.latest
    return {
        "id": item.meter.pk,
        "address": item.meter.address,
        "kind": item.meter.kind,
        "utility": item.utility,
        "protocol": item.meter.protocol,
        "gateway_id": item.meter.gateway_id,
        "online": item.online,
        "last_seen_at": link.last_seen_at if link else None,
        "offline_since": link.offline_since if link else None,
        "supply": item.supply,
        "supply_desired": supply.desired if supply else "unknown",
        "supply_reported": supply.reported if supply else "unknown",
        "supply_reported_at": supply.reported_at if supply else None,
        "latest_reading": None
        if read is None
        else {
            "read_at": read.read_at,
            "unit": item.unit,
            "total": str(read.total),
            "sharp": _decimal(read.sharp),
            "peak": _decimal(read.peak),
            "flat": _decimal(read.flat),
            "valley": _decimal(read.valley),
        },
        "pending_commands": [_command(c) for c in item.open_commands],
    }


def _usage(usage: monitoring.Usage, currency: str) -> dict[str, Any]:
    return {
        "start": usage.start,
        "end": usage.end,
        "electricity_kwh": str(usage.kwh),
        "water_m3": str(usage.m3),
        "cost": _money(usage.cost_minor, currency),
        "lines": [
            {
                "label": line.label,
                "quantity": _decimal(line.quantity),
                "unit": line.unit,
                "amount": _money(line.amount_minor, currency),
            }
            for line in usage.lines
        ],
    }


@router.get("/rooms/{room_id}/state", response=RoomStateOut, auth=allowed(Permission.VIEW))
def room_state(request: HttpRequest, room_id: int) -> Any:
    """A room's whole state in one call: money and fee status, meters with link, supply and
    latest reading, commands in flight, today's and this month's use and cost.

    The role is checked with the token, before the path is read."""
    room = access_object(request.user, rooms_with_status(request.user), room_id)
    state = monitoring.room_state(room)
    account = state.account.account if state.account is not None else None
    currency = state.account.currency if state.account is not None else "CNY"
    today, month = monitoring.today_and_month(room, account, now=state.now)
    return {
        "at": state.now,
        "room": room,
        "fee_status": state.fee.value if state.fee is not None else None,
        "fee_status_label": str(FEE_LABELS[state.fee]) if state.fee is not None else None,
        "link": state.link,
        "supply": state.supply,
        "account": None if state.account is None else _account(state.account),
        "accounts": [
            {
                "id": a.pk,
                "number": a.number,
                "customer": a.customer.name,
                "status": a.status,
                "move_in_on": a.move_in_on,
                "move_out_on": a.move_out_on,
            }
            for a in room.accounts.select_related("customer").order_by("-id")
        ],
        "meters": [_meter(m) for m in state.meters],
        "pending_commands": [_command(c) for c in state.pending],
        "today": _usage(today, currency),
        "month": _usage(month, currency),
    }
