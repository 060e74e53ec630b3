from __future__ import annotations

from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from meterpay.apps.customers.models import Account
from meterpay.apps.organisations.access import org_objects
from meterpay.apps.sites.models import Room

ACTIVE = ("pre-set", "open", "suspended")
ROOM_STATUSES = ("vacant", "pre-set", "open", "suspended")


def rooms_with_status(user: Any) -> QuerySet[Room]:
    """The user's rooms, annotated with ``occupancy``: vacant, or the active account's status."""
    from django.db.models import Case, CharField, Subquery, Value, When

    active_account = Account.objects.filter(rooms=OuterRef("pk"), status__in=ACTIVE).order_by("-id")
    return (
        org_objects(user, Room)
        .select_related("floor__building__site")
        .annotate(
            account_status=Subquery(active_account.values("status")[:1]),
            account_id_active=Subquery(active_account.values("id")[:1]),
            account_number=Subquery(active_account.values("number")[:1]),
            customer_name=Subquery(active_account.values("customer__name")[:1]),
            has_account=Exists(active_account),
        )
        .annotate(
            occupancy=Case(
                When(has_account=False, then=Value("vacant")),
                default="account_status",
                output_field=CharField(),
            )
        )
    )


def rooms_filtered(user: Any, params: dict[str, str]) -> QuerySet[Room]:
    rooms = rooms_with_status(user)
    if params.get("site"):
        rooms = rooms.filter(floor__building__site_id=params["site"])
    if params.get("building"):
        rooms = rooms.filter(floor__building_id=params["building"])
    if params.get("floor"):
        rooms = rooms.filter(floor_id=params["floor"])
    if params.get("kind"):
        rooms = rooms.filter(kind=params["kind"])
    if params.get("status") in ROOM_STATUSES:
        rooms = rooms.filter(occupancy=params["status"])
    if params.get("q"):
        q = params["q"].replace("\x00", "")  # PostgreSQL text never holds NUL: not a match
        rooms = rooms.filter(Q(number__icontains=q) | Q(customer_name__icontains=q))
    return rooms


def room_status_counts(rooms: QuerySet[Room]) -> dict[str, int]:
    counts = dict.fromkeys(ROOM_STATUSES, 0)
    for row in rooms.order_by().values("occupancy").annotate(n=Count("id")):
        counts[row["occupancy"]] = row["n"]
    counts["total"] = sum(counts[s] for s in ROOM_STATUSES)
    return counts
