from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction

from meterpay.apps.audit.services import audit_record, snapshot
from meterpay.apps.organisations.models import Organisation
from meterpay.apps.sites.models import Building, Floor, Holiday, Room, Site


def _saved(obj, *, actor: object, action: str):  # type: ignore[no-untyped-def]
    obj.full_clean()
    obj.save()
    audit_record(actor=actor, action=action, obj=obj, after=snapshot(obj))
    return obj


@transaction.atomic
def site_create(
    *, actor: object, organisation: Organisation, name: str, kind: str, address: str = ""
) -> Site:
    return _saved(
        Site(organisation=organisation, name=name, kind=kind, address=address),
        actor=actor,
        action="site.create",
    )


@transaction.atomic
def building_create(*, actor: object, site: Site, name: str) -> Building:
    return _saved(
        Building(organisation_id=site.organisation_id, site=site, name=name),
        actor=actor,
        action="building.create",
    )


@transaction.atomic
def floor_create(*, actor: object, building: Building, name: str, level: int) -> Floor:
    floor = Floor(
        organisation_id=building.organisation_id, building=building, name=name, level=level
    )
    return _saved(floor, actor=actor, action="floor.create")


@transaction.atomic
def room_create(*, actor: object, floor: Floor, number: str, kind: str, area_m2: Decimal) -> Room:
    room = Room(
        organisation_id=floor.organisation_id,
        floor=floor,
        number=number,
        kind=kind,
        area_m2=area_m2,
    )
    return _saved(room, actor=actor, action="room.create")


@transaction.atomic
def room_update(
    *, actor: object, room: Room, kind: str | None = None, area_m2: Decimal | None = None
) -> Room:
    before = snapshot(room)
    if kind is not None:
        room.kind = kind
    if area_m2 is not None:
        room.area_m2 = area_m2
    room.full_clean()
    room.save()
    audit_record(actor=actor, action="room.update", obj=room, before=before, after=snapshot(room))
    return room


def floor_get_or_create(
    *,
    actor: object,
    organisation: Organisation,
    site_name: str,
    building_name: str,
    floor_name: str,
    level: int | None = None,
) -> Floor:
    """Find the floor by names, creating site/building/floor as needed (used by imports)."""
    site = Site.objects.filter(organisation=organisation, name=site_name).first()
    if site is None:
        raise ValidationError({"site": f"no site named {site_name!r}"})
    building = Building.objects.filter(site=site, name=building_name).first() or building_create(
        actor=actor, site=site, name=building_name
    )
    floor = Floor.objects.filter(building=building, name=floor_name).first()
    if floor is None:
        floor = floor_create(
            actor=actor, building=building, name=floor_name, level=level if level is not None else 0
        )
    return floor


@transaction.atomic
def holidays_add(*, actor: object, site: Site, days: list[tuple[date, str]]) -> list[Holiday]:
    """Add holidays to a site's calendar; a date already there keeps its entry."""
    added = []
    for day, name in days:
        holiday, created = Holiday.objects.get_or_create(
            site=site,
            date=day,
            defaults={"organisation_id": site.organisation_id, "name": name[:80]},
        )
        if created:
            audit_record(actor=actor, action="holiday.add", obj=holiday, after=snapshot(holiday))
            added.append(holiday)
    return added


@transaction.atomic
def holiday_remove(*, actor: object, holiday: Holiday) -> None:
    before = snapshot(holiday)
    audit_record(actor=actor, action="holiday.remove", obj=holiday, before=before)
    holiday.delete()
