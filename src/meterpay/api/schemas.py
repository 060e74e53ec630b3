from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ninja import Field, Schema


class Ref(Schema):
    id: int
    name: str


class SiteOut(Schema):
    id: int
    name: str
    kind: str
    address: str


class SiteIn(Schema):
    name: str
    kind: str
    address: str = ""


class BuildingOut(Schema):
    id: int
    site_id: int
    name: str


class FloorOut(Schema):
    id: int
    building_id: int
    name: str
    level: int


class RoomOut(Schema):
    id: int
    site: str
    building: str
    floor: str
    floor_id: int
    number: str
    kind: str
    area_m2: str
    status: str

    @staticmethod
    def resolve_site(obj: Any) -> str:
        return str(obj.floor.building.site.name)

    @staticmethod
    def resolve_building(obj: Any) -> str:
        return str(obj.floor.building.name)

    @staticmethod
    def resolve_floor(obj: Any) -> str:
        return str(obj.floor.name)

    @staticmethod
    def resolve_area_m2(obj: Any) -> str:
        return str(obj.area_m2)

    @staticmethod
    def resolve_status(obj: Any) -> str:
        return str(getattr(obj, "occupancy", "vacant"))


class RoomIn(Schema):
    floor_id: int
    number: str
    kind: str
    area_m2: Decimal = Decimal("0")


class RoomPatch(Schema):
    kind: str | None = None
    area_m2: Decimal | None = None


class CustomerOut(Schema):
    id: int
    kind: str
    name: str
    phone: str
    email: str
    notes: str
    created_at: datetime


class CustomerIn(Schema):
    name: str
    kind: str = "person"
    phone: str = ""
    email: str = ""
    notes: str = ""


class CustomerPatch(Schema):
    name: str | None = None
    kind: str | None = None
    phone: str | None = None
    email: str | None = None
    notes: str | None = None


class MeterBalanceOut(Schema):
    """A meter-side account's money on its prepaid meter."""

    meter_id: int | None = Field(description="the prepaid meter the money is downloaded to")
    remaining: str | None = Field(
        description="remaining money the meter last reported (decimal string); null: not yet"
    )
    reported_at: datetime | None
    purchase_count: int | None = Field(description="the meter's purchase count as reported")
    confirmed_purchase_count: int | None = Field(
        description="the purchase count after the platform's last confirmed download or refund"
    )
    downloaded: str = Field(
        description="downloaded and not taken back, by the ledger (before the meter's own use)"
    )
    pending_commands: int = Field(description="credit downloads and energy refunds not finished")
    open_discrepancies: int = Field(description="balance discrepancies not cleared")


class AccountOut(Schema):
    id: int
    number: str
    customer: Ref
    billing_mode: str
    billing_side: str
    status: str
    room_ids: list[int]
    meter_ids: list[int]
    opened_at: datetime | None
    closed_at: datetime | None
    move_in_on: date | None
    move_out_on: date | None
    balance: str = Field(
        description=(
            "the platform wallet balance, a decimal string; negative in overdraft. For a "
            "meter-side account it is only money not yet downloaded to the meter (normally "
            "0.00): what the tenant has left is meter_balance.remaining"
        )
    )
    currency: str
    supply: str  # "on" | "off"
    days_of_credit_left: str | None  # at the recent pace, rounded down to 0.1 day; null: no use
    meter_balance: MeterBalanceOut | None = Field(
        description="meter-side accounts: the money on the prepaid meter; null: platform-side"
    )

    @staticmethod
    def resolve_meter_balance(obj: Any) -> dict[str, Any] | None:
        from meterpay.apps.payments.meter_credit import meter_side_view

        view = meter_side_view(obj)
        if view is None:
            return None
        balance = view.balance
        return {
            "meter_id": None if view.meter is None else view.meter.pk,
            "remaining": None if view.meter_balance is None else str(view.meter_balance),
            "reported_at": None if balance is None else balance.reported_at,
            "purchase_count": None if balance is None else balance.purchase_count,
            "confirmed_purchase_count": None if balance is None else balance.confirmed_count,
            "downloaded": str(view.on_meter),
            "pending_commands": len(view.open_commands),
            "open_discrepancies": len(view.discrepancies),
        }

    @staticmethod
    def resolve_balance(obj: Any) -> str:
        return str(_wallet_view(obj).balance)

    @staticmethod
    def resolve_currency(obj: Any) -> str:
        return _wallet_view(obj).currency

    @staticmethod
    def resolve_supply(obj: Any) -> str:
        return _wallet_view(obj).supply

    @staticmethod
    def resolve_days_of_credit_left(obj: Any) -> str | None:
        days = _wallet_view(obj).days_of_credit_left
        return None if days is None else str(days)

    @staticmethod
    def resolve_room_ids(obj: Any) -> list[int]:
        return sorted(r.pk for r in obj.rooms.all())

    @staticmethod
    def resolve_meter_ids(obj: Any) -> list[int]:
        return sorted(m.pk for m in obj.meters.all() if m.removed_on is None)


def _wallet_view(account: Any) -> Any:
    """The account's wallet figures, computed once per serialised account."""
    from meterpay.apps.supply.selectors import wallet_view

    cached = getattr(account, "_wallet_view_cache", None)
    if cached is None:
        cached = wallet_view(account)
        account._wallet_view_cache = cached
    return cached


class AccountIn(Schema):
    customer_id: int
    room_ids: list[int]
    meter_ids: list[int] = []
    billing_mode: str = "prepaid"
    billing_side: str = "platform"
    open: bool = True
    move_in_on: date | None = None


class GatewayOut(Schema):
    id: int
    site_id: int
    identifier: str
    kind: str
    protocol: str
    name: str
    host: str
    port: int | None
    last_seen_at: datetime | None


class GatewayIn(Schema):
    site_id: int
    identifier: str
    kind: str
    protocol: str
    name: str = ""
    #: A serial server in TCP-server mode: where the gateway process connects to.
    host: str = ""
    port: int | None = Field(default=None, ge=1, le=65535)


class MeterOut(Schema):
    id: int
    kind: str
    model: str
    address: str
    serial_number: str
    protocol: str
    gateway_id: int | None
    multiplier: int
    room_id: int | None
    account_id: int | None
    installed_on: date | None
    removed_on: date | None
    replaced_by_id: int | None


class MeterIn(Schema):
    kind: str
    protocol: str
    address: str
    model: str = ""
    serial_number: str = ""
    gateway_id: int | None = None
    room_id: int | None = None
    multiplier: int = 1
    installed_on: date | None = None


class MeterReplaceIn(Schema):
    address: str
    on: date
    model: str = ""
    serial_number: str = ""


class AuditEventOut(Schema):
    id: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    object_repr: str
    before: dict | None  # type: ignore[type-arg]
    after: dict | None  # type: ignore[type-arg]


class MeOut(Schema):
    username: str
    organisation: str | None
    role: str
    permissions: list[str]


class ErrorOut(Schema):
    detail: str
    errors: dict[str, list[str]] | None = None
