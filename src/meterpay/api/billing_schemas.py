"""Input and output schemas of the month-end API (``meterpay.api.billing``).

Money, prices, quantities, ratios and readings travel as decimal strings, never as JSON
numbers: money with the currency's decimals (``"1234.50"``), unit prices with 6 decimals. The
patterns below bound what a client may send, so that a value the database cannot hold is a
422 for the client rather than an error of the server.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from django.utils import timezone
from ninja import Field, Schema
from pydantic import BeforeValidator, StrictBool, StrictInt

from meterpay.apps.billing.lines import micro_price
from meterpay.apps.billing.models import Bill, BillLine, BillRun
from meterpay.core.billing.lifecycle import days_overdue
from meterpay.core.money import format_amount, from_minor


def _day(value: Any) -> Any:
    """Only ``YYYY-MM-DD`` is a date (not a number, nor a timestamp)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return date.fromisoformat(value)
    raise ValueError("a date as YYYY-MM-DD")


#: Types of the bodies: strict, so that a value of the wrong type is refused, not converted.
Day = Annotated[date, BeforeValidator(_day)]
Flag = StrictBool
#: Ids in bodies and filters: a database integer (a larger one names nothing).
Id = Annotated[StrictInt, Field(ge=1, le=2**63 - 1)]
FilterId = Annotated[int, Field(ge=1, le=2**63 - 1)]
#: A unit price ≥ 0 with at most 6 decimals, e.g. "60", "0.680000".
PRICE = r"^\d{1,9}(\.\d{1,6})?$"
#: An amount of money > 0 with at most 2 decimals, e.g. "1000.00".
AMOUNT = r"^\d{1,12}(\.\d{1,2})?$"
#: An amount of money that may be negative (in the customer's favour), e.g. "-500.00".
SIGNED_AMOUNT = r"^-?\d{1,12}(\.\d{1,2})?$"
#: A register reading ≥ 0 with at most 4 decimals, e.g. "10600.5".
READING = r"^\d{1,12}(\.\d{1,4})?$"
#: A sharing ratio ≥ 0 with at most 4 decimals.
RATIO = r"^\d{1,8}(\.\d{1,4})?$"
#: A month, e.g. "2026-11".
MONTH = r"^[1-9]\d{3}-(0[1-9]|1[0-2])$"

Basis = Literal["fixed", "per_area", "per_unit"]
Frequency = Literal["monthly", "quarterly", "yearly", "one_time"]
UtilityName = Literal["electricity", "water"]
SettlementName = Literal["deduct", "bill"]
Revenue = Literal["rent", "property_fee", "service_fee", "other_charges"]
Rule = Literal["ratio", "area", "usage", "equal"]
RunStatus = Literal["draft", "confirmed", "issued", "void"]
BillStatus = Literal["draft", "confirmed", "issued", "paid", "credited", "void"]
BillKind = Literal["statement", "request", "final", "credit_note"]
Language = Literal["zh-hans", "en"]


def money(minor: int | None, currency: str) -> str | None:
    """Integer minor units as a decimal string with the currency's decimals."""
    return None if minor is None else format_amount(from_minor(int(minor), currency), currency)


def price(micro: int | None) -> str | None:
    """Integer millionths as a unit price with 6 decimals."""
    return None if micro is None else str(micro_price(micro))


def number(value: Decimal | str | None) -> str | None:
    return None if value is None else str(value)


# --- charge items ----------------------------------------------------------------------------


class ChargeItemIn(Schema):
    code: str = Field(..., pattern=r"^[-a-zA-Z0-9_]{1,40}$", description="unique in the org")
    name: str = Field(..., min_length=1, max_length=100)
    basis: Basis
    unit_price: str = Field(
        ..., pattern=PRICE, description="per cycle, per m² per cycle, or per kWh / m³"
    )
    frequency: Frequency = "monthly"
    day_of_month: StrictInt = Field(1, ge=1, le=28, description="the day each cycle starts on")
    utility: UtilityName | None = Field(None, description="per_unit: whose meters it is on")
    settlement: SettlementName = Field("bill", description="deducted from the wallet, or billed")
    revenue: Revenue = "other_charges"
    prorate: Flag = True
    valid_from: Day | None = None
    valid_to: Day | None = Field(None, description="inclusive")
    active: Flag = True


class ChargeItemPatch(Schema):
    """Only the fields sent change; ``null`` clears ``utility``, ``valid_from``, ``valid_to``."""

    code: str | None = Field(None, pattern=r"^[-a-zA-Z0-9_]{1,40}$")
    name: str | None = Field(None, min_length=1, max_length=100)
    basis: Basis | None = None
    unit_price: str | None = Field(None, pattern=PRICE)
    frequency: Frequency | None = None
    day_of_month: StrictInt | None = Field(None, ge=1, le=28)
    utility: UtilityName | None = None
    settlement: SettlementName | None = None
    revenue: Revenue | None = None
    prorate: Flag | None = None
    valid_from: Day | None = None
    valid_to: Day | None = None
    active: Flag | None = None


class ChargeItemOut(Schema):
    id: int
    code: str
    name: str
    basis: str
    unit_price: str
    frequency: str
    day_of_month: int
    utility: str | None
    settlement: str
    revenue: str
    prorate: bool
    valid_from: date | None
    valid_to: date | None
    active: bool
    subscriptions: int = Field(description="accounts it applies to")
    created_at: datetime

    @staticmethod
    def resolve_unit_price(obj: Any) -> str | None:
        return price(obj.unit_price_micro)

    @staticmethod
    def resolve_utility(obj: Any) -> str | None:
        return obj.utility or None

    @staticmethod
    def resolve_subscriptions(obj: Any) -> int:
        counted = getattr(obj, "subscription_count", None)
        return int(counted) if counted is not None else int(obj.subscriptions.count())


class SubscribeIn(Schema):
    account_ids: list[Id] = Field(..., min_length=1, max_length=5000)
    start_on: Day | None = None
    end_on: Day | None = Field(None, description="inclusive")
    unit_price: str | None = Field(None, pattern=PRICE, description="own price; null: the item's")


class SubscribeOut(Schema):
    added: int = Field(description="accounts newly subscribed (one that had the item keeps it)")
    subscriptions: int = Field(description="accounts the item applies to now")


class SubscriptionOut(Schema):
    id: int
    item_id: int
    account_id: int
    account_number: str
    customer: str
    start_on: date | None
    end_on: date | None
    unit_price: str | None = Field(description="the account's own price; null: the item's")
    created_at: datetime

    @staticmethod
    def resolve_account_number(obj: Any) -> str:
        return str(obj.account.number)

    @staticmethod
    def resolve_customer(obj: Any) -> str:
        return str(obj.account.customer.name)

    @staticmethod
    def resolve_unit_price(obj: Any) -> str | None:
        return price(obj.unit_price_micro)


# --- public-area (allocation) groups ----------------------------------------------------------


class AllocationGroupIn(Schema):
    name: str = Field(..., min_length=1, max_length=100)
    site_id: Id
    master_meter_id: Id = Field(..., description="the public-area meter")
    rule: Rule = "area"
    tariff_id: Id | None = Field(None, description="null: the organisation's default tariff")
    settlement: SettlementName = "bill"
    active: Flag = True


class AllocationGroupPatch(Schema):
    """Only the fields sent change; ``tariff_id: null`` goes back to the default tariff."""

    name: str | None = Field(None, min_length=1, max_length=100)
    site_id: Id | None = None
    master_meter_id: Id | None = None
    rule: Rule | None = None
    tariff_id: Id | None = None
    settlement: SettlementName | None = None
    active: Flag | None = None


class MemberIn(Schema):
    account_id: Id
    ratio: str | None = Field(None, pattern=RATIO, description="counts under the ratio rule")


class MembersIn(Schema):
    members: list[MemberIn] = Field(..., max_length=5000)


class MemberOut(Schema):
    account_id: int
    account_number: str
    ratio: str | None

    @staticmethod
    def resolve_account_number(obj: Any) -> str:
        return str(obj.account.number)

    @staticmethod
    def resolve_ratio(obj: Any) -> str | None:
        return number(obj.ratio)


class AllocationGroupOut(Schema):
    id: int
    name: str
    site_id: int
    master_meter_id: int
    rule: str
    tariff_id: int | None
    settlement: str
    active: bool
    members: list[MemberOut]
    created_at: datetime

    @staticmethod
    def resolve_members(obj: Any) -> list[Any]:
        return list(obj.members.all())


# --- line-loss groups and grid readings -------------------------------------------------------


class LossGroupIn(Schema):
    name: str = Field(..., min_length=1, max_length=100)
    site_id: Id
    utility: UtilityName = "electricity"
    grid_meter_number: str = Field("", max_length=40)
    multiplier: StrictInt = Field(1, ge=1, le=1_000_000, description="CT ratio")
    meter_ids: list[Id] = Field(
        default_factory=list,
        max_length=5000,
        description="meters under the grid meter; empty: every meter of the utility at the site",
    )
    rule: Rule = "usage"
    unit_price: str = Field(..., pattern=PRICE, description="price of a lost kWh or m³")
    settlement: SettlementName = "bill"
    active: Flag = True


class LossGroupPatch(Schema):
    """Only the fields sent change."""

    name: str | None = Field(None, min_length=1, max_length=100)
    site_id: Id | None = None
    utility: UtilityName | None = None
    grid_meter_number: str | None = Field(None, max_length=40)
    multiplier: StrictInt | None = Field(None, ge=1, le=1_000_000)
    meter_ids: list[Id] | None = Field(None, max_length=5000)
    rule: Rule | None = None
    unit_price: str | None = Field(None, pattern=PRICE)
    settlement: SettlementName | None = None
    active: Flag | None = None


class LossGroupOut(Schema):
    id: int
    name: str
    site_id: int
    utility: str
    grid_meter_number: str
    multiplier: int
    meter_ids: list[int]
    rule: str
    unit_price: str
    settlement: str
    active: bool
    created_at: datetime

    @staticmethod
    def resolve_meter_ids(obj: Any) -> list[int]:
        return sorted(m.pk for m in obj.meters.all())

    @staticmethod
    def resolve_unit_price(obj: Any) -> str | None:
        return price(obj.unit_price_micro)


class GridReadingIn(Schema):
    read_on: Day = Field(..., description="the register at the start of this day")
    reading: str = Field(..., pattern=READING, description="a decimal string")
    notes: str = Field("", max_length=2000)


class GridReadingOut(Schema):
    id: int
    group_id: int
    read_on: date
    reading: str
    notes: str
    photo: bool
    entered_by: str | None
    entered_at: datetime

    @staticmethod
    def resolve_reading(obj: Any) -> str | None:
        return number(obj.reading)

    @staticmethod
    def resolve_photo(obj: Any) -> bool:
        return bool(obj.photo)

    @staticmethod
    def resolve_entered_by(obj: Any) -> str | None:
        return None if obj.entered_by is None else str(obj.entered_by.username)


# --- bill runs ---------------------------------------------------------------------------------


class RunIn(Schema):
    site_id: Id | None = Field(None, description="every account of the site, unless account_ids")
    account_ids: list[Id] = Field(default_factory=list, max_length=5000)
    period_start: Day
    period_end: Day = Field(..., description="exclusive: 2026-12-01 ends November")
    due_on: Day | None = Field(None, description="default: the policy's days after the period")


class RunFilter(Schema):
    status: RunStatus | None = None
    site: FilterId | None = None
    period: str | None = Field(None, pattern=MONTH, description="runs starting in this month")


class RunOut(Schema):
    id: int
    number: str
    status: str
    site_id: int | None
    account_ids: list[int] = Field(description="the selection; empty: every account of the site")
    period_start: date
    period_end: date = Field(description="exclusive")
    due_on: date
    currency: str
    bills: int = Field(description="bills of the run not discarded")
    total: str
    due: str
    unpaid: str
    created_by: str | None
    created_at: datetime
    confirmed_at: datetime | None
    issued_at: datetime | None

    @staticmethod
    def resolve_account_ids(obj: Any) -> list[int]:
        return sorted(a.pk for a in obj.accounts.all())

    @staticmethod
    def resolve_currency(obj: Any) -> str:
        return str(obj.organisation.currency)

    @staticmethod
    def resolve_bills(obj: Any) -> int:
        return int(getattr(obj, "bill_count", 0) or 0)

    @staticmethod
    def resolve_total(obj: Any) -> str | None:
        return money(getattr(obj, "sum_total", 0) or 0, obj.organisation.currency)

    @staticmethod
    def resolve_due(obj: Any) -> str | None:
        return money(getattr(obj, "sum_due", 0) or 0, obj.organisation.currency)

    @staticmethod
    def resolve_unpaid(obj: Any) -> str | None:
        return money(getattr(obj, "sum_unpaid", 0) or 0, obj.organisation.currency)

    @staticmethod
    def resolve_created_by(obj: Any) -> str | None:
        return None if obj.created_by is None else str(obj.created_by.username)


class ShareMemberOut(Schema):
    account: str = Field(description="the account number")
    weight: str | None
    ratio: str | None
    quantity: str | None
    amount: str | None
    billed: bool = Field(description="billed by this run (a member outside it is shared with)")


class PublicShareOut(Schema):
    group_id: int | None
    group: str
    meter: str | None = Field(description="the public-area meter's address")
    rule: str | None
    quantity: str | None
    unit: str | None
    amount: str | None
    members: list[ShareMemberOut]


class LossLineOut(Schema):
    account: str
    usage: str | None
    ratio: str | None
    loss: str | None
    amount: str | None
    billed: bool


class LineLossOut(Schema):
    """The line-loss bill of a group: grid, metered, loss and each account's share; when it is
    not billed (a reading missing, a negative loss) ``reason`` says why."""

    group_id: int | None
    group: str
    readings: list[str] = Field(description="the grid register at the period's start and end")
    grid: str | None
    metered: str | None
    loss: str | None
    loss_rate: str | None = Field(description="a fraction: 0.0500 is 5 %")
    negative: bool
    unit: str | None
    amount: str | None
    reason: str
    lines: list[LossLineOut]


class RunDetailOut(RunOut):
    computed_at: str | None = Field(description="when the drafts were last made")
    public_shares: list[PublicShareOut]
    line_losses: list[LineLossOut]

    @staticmethod
    def resolve_computed_at(obj: Any) -> str | None:
        value = (obj.findings or {}).get("computed_at")
        return None if value is None else str(value)

    @staticmethod
    def resolve_public_shares(obj: Any) -> list[dict[str, Any]]:
        currency = obj.organisation.currency
        return [
            {
                "group_id": f.get("group_id"),
                "group": str(f.get("group", "")),
                "meter": f.get("meter"),
                "rule": f.get("rule"),
                "quantity": number(f.get("quantity")),
                "unit": f.get("unit"),
                "amount": money(f.get("amount_minor"), currency),
                "members": [
                    {
                        "account": str(m.get("account", "")),
                        "weight": number(m.get("weight")),
                        "ratio": number(m.get("ratio")),
                        "quantity": number(m.get("quantity")),
                        "amount": money(m.get("amount_minor"), currency),
                        "billed": bool(m.get("billed")),
                    }
                    for m in f.get("members", [])
                ],
            }
            for f in _findings(obj, "public")
        ]

    @staticmethod
    def resolve_line_losses(obj: Any) -> list[dict[str, Any]]:
        currency = obj.organisation.currency
        return [
            {
                "group_id": f.get("group_id"),
                "group": str(f.get("group", "")),
                "readings": [str(r) for r in f.get("readings") or []],
                "grid": number(f.get("grid")),
                "metered": number(f.get("metered")),
                "loss": number(f.get("loss")),
                "loss_rate": number(f.get("loss_rate")),
                "negative": bool(f.get("negative")),
                "unit": f.get("unit"),
                "amount": money(f.get("amount_minor"), currency),
                "reason": str(f.get("reason") or ""),
                "lines": [
                    {
                        "account": str(line.get("account", "")),
                        "usage": number(line.get("usage")),
                        "ratio": number(line.get("ratio")),
                        "loss": number(line.get("loss")),
                        "amount": money(line.get("amount_minor"), currency),
                        "billed": bool(line.get("billed")),
                    }
                    for line in f.get("lines", [])
                ],
            }
            for f in _findings(obj, "loss")
        ]


def _findings(run: BillRun, kind: str) -> list[dict[str, Any]]:
    groups = (run.findings or {}).get("groups", [])
    return [f for f in groups if isinstance(f, dict) and f.get("kind") == kind]


# --- bills -------------------------------------------------------------------------------------


class BillFilter(Schema):
    status: BillStatus | None = None
    kind: BillKind | None = None
    account: FilterId | None = None
    run: FilterId | None = None
    overdue: bool | None = Field(None, description="true: issued, unpaid and past the due date")


class AccountRefOut(Schema):
    id: int
    number: str
    customer: str


class ReviewOut(Schema):
    """The bill against the account's previous one (what finance checks before confirming)."""

    previous_total: str | None
    change: str | None
    change_percent: str | None
    flags: list[str]
    kwh: str | None
    m3: str | None


class BillOut(Schema):
    id: int
    number: str
    run_id: int | None
    account: AccountRefOut
    kind: str
    status: str
    settles: str = Field(description="owed to the wallet, or the receivable (payment request)")
    period_start: date | None
    period_end: date = Field(description="exclusive")
    currency: str
    total: str = Field(description="Σ of the lines")
    due: str = Field(description="what the bill asks to be paid")
    unpaid: str = Field(description="what of it is still unpaid")
    due_on: date
    overdue: bool
    overdue_since: date | None
    reminders_sent: int
    confirmed_at: datetime | None
    issued_at: datetime | None
    paid_at: datetime | None
    replaces_id: int | None
    credits_id: int | None = Field(description="a credit note: the bill it cancels")
    review: ReviewOut | None

    @staticmethod
    def resolve_account(obj: Bill) -> dict[str, Any]:
        account = obj.account
        return {"id": account.pk, "number": account.number, "customer": account.customer.name}

    @staticmethod
    def resolve_total(obj: Bill) -> str | None:
        return money(obj.total_minor, obj.currency)

    @staticmethod
    def resolve_due(obj: Bill) -> str | None:
        return money(obj.due_minor, obj.currency)

    @staticmethod
    def resolve_unpaid(obj: Bill) -> str | None:
        return money(obj.unpaid_minor, obj.currency)

    @staticmethod
    def resolve_overdue(obj: Bill) -> bool:
        return (
            obj.status == Bill.Status.ISSUED
            and obj.unpaid_minor > 0
            and obj.due_on < timezone.localdate()
        )

    @staticmethod
    def resolve_review(obj: Bill) -> dict[str, Any] | None:
        review = obj.review or {}
        if not review:
            return None
        return {
            "previous_total": money(review.get("previous_total_minor"), obj.currency),
            "change": money(review.get("change_minor"), obj.currency),
            "change_percent": number(review.get("change_percent")),
            "flags": [str(f) for f in review.get("flags", [])],
            "kwh": number(review.get("kwh")),
            "m3": number(review.get("m3")),
        }


class BillLineOut(Schema):
    position: int
    section: str
    label: str
    quantity: str | None
    unit: str
    unit_price: str | None = Field(description="6 decimals")
    amount: str
    charge_type: str
    settles: str
    posted: bool = Field(description="booked by the bill (else booked before, e.g. deductions)")
    meter_id: int | None


class MeterReadingOut(Schema):
    meter_id: int | None
    address: str
    utility: str
    multiplier: int | None
    first_reading: str | None
    last_reading: str | None
    consumption: str | None


class BillDetailOut(BillOut):
    lines: list[BillLineOut]
    readings: list[MeterReadingOut]
    notes: str
    replaced_by_ids: list[int]
    credit_note_ids: list[int]

    @staticmethod
    def resolve_lines(obj: Bill) -> list[dict[str, Any]]:
        return [_line(line, obj.currency) for line in obj.lines.order_by("position")]

    @staticmethod
    def resolve_readings(obj: Bill) -> list[dict[str, Any]]:
        return [
            {
                "meter_id": m.get("meter_id"),
                "address": str(m.get("address", "")),
                "utility": str(m.get("utility", "")),
                "multiplier": m.get("multiplier"),
                "first_reading": number(m.get("first_reading")),
                "last_reading": number(m.get("last_reading")),
                "consumption": number(m.get("consumption")),
            }
            for m in obj.readings or []
            if isinstance(m, dict)
        ]

    @staticmethod
    def resolve_replaced_by_ids(obj: Bill) -> list[int]:
        return sorted(obj.replaced_by.values_list("pk", flat=True))

    @staticmethod
    def resolve_credit_note_ids(obj: Bill) -> list[int]:
        return sorted(obj.credit_notes.values_list("pk", flat=True))


def _line(line: BillLine, currency: str) -> dict[str, Any]:
    return {
        "position": line.position,
        "section": line.section,
        "label": line.label,
        "quantity": number(line.quantity),
        "unit": line.unit,
        "unit_price": price(line.unit_price_micro),
        "amount": money(line.amount_minor, currency),
        "charge_type": line.charge_type,
        "settles": line.settles,
        "posted": line.posted,
        "meter_id": line.meter_id,
    }


class ArrearsOut(Schema):
    bill_id: int
    number: str
    account: AccountRefOut
    currency: str
    due_on: date
    days_overdue: int = Field(description="days since the due date")
    unpaid: str
    overdue_since: date | None
    reminders_sent: int
    last_reminder_on: date | None

    @staticmethod
    def resolve_bill_id(obj: Bill) -> int:
        return int(obj.pk)

    @staticmethod
    def resolve_account(obj: Bill) -> dict[str, Any]:
        return BillOut.resolve_account(obj)

    @staticmethod
    def resolve_days_overdue(obj: Bill) -> int:
        return days_overdue(due_on=obj.due_on, today=timezone.localdate(), grace_days=0)

    @staticmethod
    def resolve_unpaid(obj: Bill) -> str | None:
        return money(obj.unpaid_minor, obj.currency)


class PayIn(Schema):
    amount: str = Field(..., pattern=AMOUNT, description='a decimal string, e.g. "1000.00"')
    channel: Literal["cash", "bank_transfer"] = "cash"
    reference: str = Field("", max_length=120, description="e.g. the transfer's reference")


class CreditIn(Schema):
    reason: str = Field(..., min_length=1, max_length=500)


class AdjustmentIn(Schema):
    label: str = Field(..., min_length=1, max_length=200)
    amount: str = Field(
        ..., pattern=SIGNED_AMOUNT, description="negative: in the customer's favour"
    )


class ReissueIn(Schema):
    reason: str = Field(..., min_length=1, max_length=500)
    adjustments: list[AdjustmentIn] = Field(default_factory=list, max_length=50)
