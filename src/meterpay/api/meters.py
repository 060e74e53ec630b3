from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Status
from ninja.pagination import paginate

from meterpay.api.pagination import LimitOffset
from meterpay.api.schemas import GatewayIn, GatewayOut, MeterIn, MeterOut, MeterReplaceIn
from meterpay.apps.meters import services
from meterpay.apps.meters.models import Gateway, Meter
from meterpay.apps.organisations.access import access_object, org_objects, require
from meterpay.apps.sites.models import Room, Site
from meterpay.core.roles import Permission

router = Router(tags=["meters and gateways"])


@router.get("/meters", response=list[MeterOut])
@paginate(LimitOffset)
def meter_list(
    request: HttpRequest,
    kind: str | None = None,
    installed: bool | None = None,
    account: int | None = None,
) -> Any:
    qs = org_objects(request.user, Meter)
    if kind:
        qs = qs.filter(kind=kind)
    if installed is not None:
        qs = qs.filter(removed_on__isnull=installed)
    if account:
        qs = qs.filter(account_id=account)
    return qs


@router.get("/meters/{meter_id}", response=MeterOut)
def meter_detail(request: HttpRequest, meter_id: int) -> Any:
    return access_object(request.user, Meter, meter_id)


@router.post("/meters", response={201: MeterOut})
def meter_create(request: HttpRequest, payload: MeterIn) -> Any:
    require(request.user, Permission.MANAGE_METERS)
    data = payload.dict()
    gateway = (
        access_object(request.user, Gateway, data.pop("gateway_id")) if payload.gateway_id else None
    )
    room = access_object(request.user, Room, data.pop("room_id")) if payload.room_id else None
    data.pop("gateway_id", None)
    data.pop("room_id", None)
    meter = services.meter_create(
        actor=request.user,
        organisation=request.user.organisation,
        gateway=gateway,
        room=room,
        **data,
    )
    return Status(201, meter)


@router.post("/meters/{meter_id}/replace", response={201: MeterOut})
def meter_replace(request: HttpRequest, meter_id: int, payload: MeterReplaceIn) -> Any:
    require(request.user, Permission.MANAGE_METERS)
    old = access_object(request.user, Meter, meter_id)
    return Status(201, services.meter_replace(actor=request.user, old=old, **payload.dict()))


@router.get("/gateways", response=list[GatewayOut])
@paginate(LimitOffset)
def gateway_list(request: HttpRequest) -> Any:
    return org_objects(request.user, Gateway)


@router.get("/gateways/{gateway_id}", response=GatewayOut)
def gateway_detail(request: HttpRequest, gateway_id: int) -> Any:
    return access_object(request.user, Gateway, gateway_id)


@router.post("/gateways", response={201: GatewayOut})
def gateway_create(request: HttpRequest, payload: GatewayIn) -> Any:
    require(request.user, Permission.MANAGE_METERS)
    data = payload.dict()
    site = access_object(request.user, Site, data.pop("site_id"))
    return Status(201, services.gateway_create(actor=request.user, site=site, **data))
