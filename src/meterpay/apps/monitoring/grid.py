"""The room grid: every room's occupancy, balance or amount owed, fee status, meter link and
supply, filtered and counted by each of them.

A constant number of queries whatever the number of rooms: the rooms (with their active
account), the active accounts with their wallets, the unpaid bills summed per account, the
installed meters with their link, supply and reported money, the meters with a command in
flight, and the organisation's balance policy. The statuses are worked out here, so filters
and counts by status cost no further query (docs/rooms.md has the figures for 5,000 rooms).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.utils import timezone

from meterpay.apps.billing.models import Bill
from meterpay.apps.control.models import MeterCommand
from meterpay.apps.customers.models import Account
from meterpay.apps.customers.selectors import ACTIVE, ROOM_STATUSES
from meterpay.apps.meters.models import Meter
from meterpay.apps.organisations.access import org_objects
from meterpay.apps.sites.models import Room
from meterpay.apps.supply.selectors import policy_row
from meterpay.core.fee_status import FEE_STATUS_ORDER, FeeFacts, FeeStatus, fee_status, owed_minor

LINK_STATES = ("online", "offline", "unknown", "none")
SUPPLY_STATES = ("on", "off", "pending", "unknown")
UTILITIES = ("electricity", "water")
#: Filter name → the values it takes (``status`` is the occupancy, as before).
DIMENSIONS: dict[str, tuple[str, ...]] = {
    "status": ROOM_STATUSES,
    "fee": tuple(s.value for s in FEE_STATUS_ORDER),
    "link": LINK_STATES,
    "supply": SUPPLY_STATES,
}
_CUT = ("cut_for_balance", "cut_manual")


def utility_of(kind: str) -> str:
    return "water" if kind == Meter.Kind.WATER else "electricity"


def meter_supply(*, reported: str | None, in_flight: bool) -> str:
    """One meter's supply as the grid shows it: a command in flight, else what it reported."""
    if in_flight:
        return "pending"
    return reported if reported in ("on", "off") else "unknown"


@dataclass(slots=True)
class UtilityState:
    """A room's meters of one utility: how many, whether they answer, and their supply."""

    utility: str
    meters: int = 0
    online: int = 0
    offline: int = 0
    offline_moments: list[datetime] = field(default_factory=list)
    seen_moments: list[datetime] = field(default_factory=list)
    supplies: list[str] = field(default_factory=list)

    @property
    def link(self) -> str:
        if self.offline:
            return "offline"
        return "online" if self.online else "unknown"

    @property
    def since(self) -> datetime | None:
        """Offline: since when (the earliest meter to go); online: when last seen."""
        if self.offline:
            return min(self.offline_moments, default=None)
        return max(self.seen_moments, default=None)

    @property
    def supply(self) -> str:
        for state in ("off", "pending", "on"):
            if state in self.supplies:
                return state
        return "unknown"

    def add(
        self,
        *,
        online: bool | None,
        last_seen_at: datetime | None,
        offline_since: datetime | None,
        supply: str,
    ) -> None:
        self.meters += 1
        self.supplies.append(supply)
        if online is False:
            self.offline += 1
            moment = offline_since or last_seen_at
            if moment is not None:
                self.offline_moments.append(moment)
        elif online:
            self.online += 1
            if last_seen_at is not None:
                self.seen_moments.append(last_seen_at)


@dataclass(slots=True)
class RoomTile:
    """One room of the grid."""

    pk: int
    number: str
    kind: str
    floor: str
    building: str
    occupancy: str
    account_id: int | None = None
    account_number: str | None = None
    customer_name: str | None = None
    currency: str = "CNY"
    prepaid: bool = True
    meter_side: bool = False
    balance_minor: int | None = None
    owed_minor: int = 0
    meter_remaining_minor: int | None = None
    fee: FeeStatus | None = None
    electricity: UtilityState | None = None
    water: UtilityState | None = None

    @property
    def utilities(self) -> list[UtilityState]:
        return [u for u in (self.electricity, self.water) if u is not None]

    @property
    def link(self) -> str:
        states = [u.link for u in self.utilities]
        if not states:
            return "none"
        for state in ("offline", "online"):
            if state in states:
                return state
        return "unknown"

    @property
    def supply(self) -> str:
        states = [u.supply for u in self.utilities]
        for state in ("off", "pending", "on"):
            if state in states:
                return state
        return "unknown"

    @property
    def kind_label(self) -> str:
        return str(dict(Room.Kind.choices).get(self.kind, self.kind))


@dataclass(slots=True)
class RoomGrid:
    tiles: list[RoomTile]
    #: dimension → value → rooms with it among those the other filters keep (and "total").
    counts: dict[str, dict[str, int]]
    filters: dict[str, str]


def clean_params(params: Mapping[str, str]) -> dict[str, str]:
    """The filters that make sense; ids must be numbers, statuses known values."""
    clean: dict[str, str] = {}
    for name in ("site", "building", "floor"):
        value = (params.get(name) or "").strip()
        if value.isdigit() and len(value) < 19:
            clean[name] = value
    kind = params.get("kind") or ""
    if kind in Room.Kind.values:
        clean["kind"] = kind
    q = (params.get("q") or "").replace("\x00", "").strip()  # PostgreSQL text never holds NUL
    if q:
        clean["q"] = q[:100]
    for name, values in DIMENSIONS.items():
        value = params.get(name) or ""
        if value in values:
            clean[name] = value
    if params.get("order") == "urgent":
        clean["order"] = "urgent"
    return clean


def _rooms(user: Any, params: Mapping[str, str]) -> Any:
    """The rooms the location filters keep, in the rooms' order (site, building, floor)."""
    rooms = org_objects(user, Room)
    if "site" in params:
        rooms = rooms.filter(floor__building__site_id=params["site"])
    if "building" in params:
        rooms = rooms.filter(floor__building_id=params["building"])
    if "floor" in params:
        rooms = rooms.filter(floor_id=params["floor"])
    if "kind" in params:
        rooms = rooms.filter(kind=params["kind"])
    if "q" in params:
        customer = Account.objects.filter(
            rooms=OuterRef("pk"), status__in=ACTIVE, customer__name__icontains=params["q"]
        )
        rooms = rooms.filter(Q(number__icontains=params["q"]) | Exists(customer))
    return rooms


def _meters(organisation_id: int, params: Mapping[str, str]) -> Any:
    meters = Meter.objects.filter(
        organisation_id=organisation_id, removed_on__isnull=True, room__isnull=False
    )
    if "site" in params:
        meters = meters.filter(room__floor__building__site_id=params["site"])
    if "building" in params:
        meters = meters.filter(room__floor__building_id=params["building"])
    if "floor" in params:
        meters = meters.filter(room__floor_id=params["floor"])
    return meters


def room_tiles(
    user: Any, params: Mapping[str, str], *, now: datetime | None = None
) -> list[RoomTile]:
    """Every room the location filters (site, building, floor, type, search) keep, as tiles."""
    organisation_id = getattr(user, "organisation_id", None)
    rows = list(
        _rooms(user, params).values_list(
            "pk", "number", "kind", "floor__name", "floor__building__name"
        )
    )
    if organisation_id is None or not rows:
        return []
    today = timezone.localdate(now)
    # A room has at most one active account (the services see to it); the newest wins here.
    accounts: dict[int, tuple[Any, ...]] = {}
    for row in (
        Account.rooms.through.objects.filter(
            account__organisation_id=organisation_id, account__status__in=ACTIVE
        )
        .order_by("account_id")
        .values_list(
            "room_id",
            "account_id",
            "account__number",
            "account__status",
            "account__customer__name",
            "account__billing_mode",
            "account__billing_side",
            "account__wallet__balance_minor",
            "account__wallet__supply",
            "account__wallet__alarm_thresholds_minor",
            "account__wallet__currency",
        )
    ):
        accounts[row[0]] = row[1:]
    bills = {
        row["account_id"]: (int(row["receivable"] or 0), bool(row["overdue"]))
        for row in Bill.objects.filter(
            organisation_id=organisation_id,
            account__status__in=ACTIVE,
            status=Bill.Status.ISSUED,
            unpaid_minor__gt=0,
        )
        .values("account_id")
        .annotate(
            receivable=Sum("unpaid_minor", filter=Q(settles=Bill.Settles.RECEIVABLE)),
            overdue=Count("pk", filter=Q(due_on__lt=today)),
        )
        .order_by()
    }
    in_flight = set(
        MeterCommand.objects.filter(
            organisation_id=organisation_id, status__in=MeterCommand.OPEN_STATUSES
        )
        .exclude(kind__in=MeterCommand.CREDIT_KINDS)
        .order_by()
        .values_list("meter_id", flat=True)
        .distinct()
    )
    by_room: dict[int, list[tuple[Any, ...]]] = {}
    for row in (
        _meters(organisation_id, params)
        .order_by("pk")
        .values_list(
            "pk",
            "room_id",
            "account_id",
            "kind",
            "link__online",
            "link__last_seen_at",
            "link__offline_since",
            "supply__reported",
            "balance__remaining_minor",
        )
    ):
        by_room.setdefault(row[1], []).append(row)
    default_thresholds = list(policy_row(organisation_id).alarm_thresholds_minor or [])
    return [
        _tile(
            row, accounts.get(row[0]), bills, by_room.get(row[0], ()), in_flight, default_thresholds
        )
        for row in rows
    ]


def _tile(
    row: tuple[Any, ...],
    active: tuple[Any, ...] | None,
    bills: Mapping[int, tuple[int, bool]],
    meters: Iterable[tuple[Any, ...]],
    in_flight: set[int],
    default_thresholds: list[int],
) -> RoomTile:
    pk, number, kind, floor, building = row
    tile = RoomTile(
        pk=pk, number=number, kind=kind, floor=floor, building=building, occupancy="vacant"
    )
    account_id = None
    if active is not None:
        account_id, tile.account_number, tile.occupancy, tile.customer_name = active[:4]
        tile.account_id = account_id
    remaining: int | None = None
    for meter_id, _room, meter_account, meter_kind, online, seen, since, reported, money in meters:
        utility = utility_of(meter_kind)
        state = getattr(tile, utility) or UtilityState(utility)
        setattr(tile, utility, state)
        state.add(
            online=online,
            last_seen_at=seen,
            offline_since=since,
            supply=meter_supply(reported=reported, in_flight=meter_id in in_flight),
        )
        if (
            remaining is None
            and money is not None
            and account_id is not None
            and meter_account == account_id
        ):
            remaining = int(money)
    if active is not None:
        mode, side, balance, supply, thresholds, currency = active[4:]
        receivable, overdue = bills.get(account_id, (0, False))  # type: ignore[arg-type]
        tile.prepaid = mode == Account.BillingMode.PREPAID
        tile.meter_side = side == Account.BillingSide.METER
        tile.currency = currency or "CNY"
        tile.balance_minor = int(balance or 0)
        tile.owed_minor = owed_minor(
            prepaid=tile.prepaid,
            balance_minor=tile.balance_minor,
            receivable_unpaid_minor=receivable,
        )
        tile.meter_remaining_minor = remaining if tile.meter_side else None
        tile.fee = fee_status(
            FeeFacts(
                prepaid=tile.prepaid,
                meter_side=tile.meter_side,
                balance_minor=tile.balance_minor,
                thresholds_minor=[int(t) for t in thresholds] if thresholds else default_thresholds,
                supply_cut=supply in _CUT,
                overdue=overdue,
                meter_remaining_minor=tile.meter_remaining_minor,
                preset=tile.occupancy == Account.Status.PRESET,
            )
        )
    return tile


def room_grid(user: Any, params: Mapping[str, str], *, now: datetime | None = None) -> RoomGrid:
    """The rooms ``params`` keep, in site/building/floor/number order (``order=urgent``: the
    most urgent fee status first), with faceted counts: for each of occupancy, fee status,
    link and supply, how many rooms have each value among those the other filters keep."""
    filters = clean_params(params)
    tiles = room_tiles(user, filters, now=now)
    names = list(DIMENSIONS)
    chosen = [(i, filters[name]) for i, name in enumerate(names) if name in filters]
    counts: dict[str, dict[str, int]] = {
        name: dict.fromkeys((*values, "total"), 0) for name, values in DIMENSIONS.items()
    }
    buckets = [counts[name] for name in names]
    kept: list[RoomTile] = []
    for tile in tiles:
        values = (tile.occupancy, tile.fee.value if tile.fee else "", tile.link, tile.supply)
        misses = [i for i, value in chosen if values[i] != value]
        if not misses:
            kept.append(tile)
        elif len(misses) > 1:
            continue
        for i, value in enumerate(values):
            if not misses or misses[0] == i:
                bucket = buckets[i]
                bucket["total"] += 1
                if value in bucket:
                    bucket[value] += 1
    if filters.get("order") == "urgent":
        rank = {status: n for n, status in enumerate(FEE_STATUS_ORDER)}
        kept.sort(key=lambda t: rank.get(t.fee, len(rank)) if t.fee is not None else len(rank))
    return RoomGrid(tiles=kept, counts=counts, filters=filters)
