from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from ninja.pagination import paginate

from meterpay.api.pagination import LimitOffset
from meterpay.api.schemas import BuildingOut, FloorOut, RoomIn, RoomOut, RoomPatch, SiteIn, SiteOut
from meterpay.apps.customers.selectors import rooms_filtered, rooms_with_status
from meterpay.apps.organisations.access import access_object, org_objects, require
from meterpay.apps.sites import services
from meterpay.apps.sites.models import Building, Floor, Room, Site
from meterpay.core.roles import Permission

router = Router(tags=["sites"])


class RoomFilter(Schema):
    site: int | None = None
    building: int | None = None
    floor: int | None = None
    kind: str | None = None
    status: str | None = None
    q: str | None = None


@router.get("/sites", response=list[SiteOut])
@paginate(LimitOffset)
def site_list(request: HttpRequest) -> Any:
    return org_objects(request.user, Site)


@router.post("/sites", response={201: SiteOut})
def site_create(request: HttpRequest, payload: SiteIn) -> Any:
    require(request.user, Permission.MANAGE_SITES)
    site = services.site_create(
        actor=request.user, organisation=request.user.organisation, **payload.dict()
    )
    return Status(201, site)


@router.get("/sites/{site_id}", response=SiteOut)
def site_detail(request: HttpRequest, site_id: int) -> Any:
    return access_object(request.user, Site, site_id)


@router.get("/buildings", response=list[BuildingOut])
@paginate(LimitOffset)
def building_list(request: HttpRequest, site: int | None = None) -> Any:
    qs = org_objects(request.user, Building)
    return qs.filter(site_id=site) if site else qs


@router.get("/floors", response=list[FloorOut])
@paginate(LimitOffset)
def floor_list(request: HttpRequest, building: int | None = None) -> Any:
    qs = org_objects(request.user, Floor)
    return qs.filter(building_id=building) if building else qs


@router.get("/rooms", response=list[RoomOut])
@paginate(LimitOffset)
def room_list(request: HttpRequest, filters: Query[RoomFilter]) -> Any:
    params = {k: str(v) for k, v in filters.dict().items() if v not in (None, "")}
    return rooms_filtered(request.user, params)


@router.get("/rooms/{room_id}", response=RoomOut)
def room_detail(request: HttpRequest, room_id: int) -> Any:
    return access_object(request.user, rooms_with_status(request.user), room_id)


@router.post("/rooms", response={201: RoomOut})
def room_create(request: HttpRequest, payload: RoomIn) -> Any:
    require(request.user, Permission.MANAGE_SITES)
    floor = access_object(request.user, Floor, payload.floor_id)
    room = services.room_create(
        actor=request.user,
        floor=floor,
        number=payload.number,
        kind=payload.kind,
        area_m2=payload.area_m2,
    )
    return Status(201, access_object(request.user, rooms_with_status(request.user), room.pk))


@router.patch("/rooms/{room_id}", response=RoomOut)
def room_update(request: HttpRequest, room_id: int, payload: RoomPatch) -> Any:
    require(request.user, Permission.MANAGE_SITES)
    room = access_object(request.user, Room, room_id)
    services.room_update(actor=request.user, room=room, kind=payload.kind, area_m2=payload.area_m2)
    return access_object(request.user, rooms_with_status(request.user), room.pk)
