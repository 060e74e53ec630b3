"""Readings and remote control of one meter: history, command log, new commands."""

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.pagination import LimitOffsetPagination, paginate

from meterpay.apps.control import selectors as control_selectors
from meterpay.apps.control.models import MeterCommand
from meterpay.apps.control.services import meter_command_request
from meterpay.apps.meters.models import Meter
from meterpay.apps.organisations.access import access_object, require
from meterpay.apps.readings import selectors as reading_selectors
from meterpay.core.roles import Permission

router = Router(tags=["readings and remote control"])


class RegisterReadOut(Schema):
    read_at: datetime
    source: str
    total: Decimal
    sharp: Decimal | None
    peak: Decimal | None
    flat: Decimal | None
    valley: Decimal | None


class MeterCommandOut(Schema):
    id: UUID = Field(..., alias="command_id")
    meter_id: int
    kind: str
    status: str
    requested_by: str
    requested_by_user: str | None = Field(None, alias="requested_by_user.username")
    reason: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    acknowledged_at: datetime | None
    finished_at: datetime | None
    outcome: str


class MeterCommandIn(Schema):
    kind: Literal["relay_trip", "relay_close", "valve_open", "valve_close"]
    reason: str = ""


@router.get("/meters/{meter_id}/readings", response=list[RegisterReadOut])
@paginate(LimitOffsetPagination)
def meter_readings(request: HttpRequest, meter_id: int, since: datetime | None = None) -> Any:
    """Register reads, newest first (kWh for electricity, m³ for water; decimals as strings)."""
    meter = access_object(request.user, Meter, meter_id)
    return reading_selectors.register_reads(meter, since=since)


@router.get("/meters/{meter_id}/commands", response=list[MeterCommandOut])
@paginate(LimitOffsetPagination)
def meter_commands(request: HttpRequest, meter_id: int) -> Any:
    meter = access_object(request.user, Meter, meter_id)
    return control_selectors.command_log(meter, limit=None)


@router.post("/meters/{meter_id}/commands", response={201: MeterCommandOut, 200: MeterCommandOut})
def meter_command_create(request: HttpRequest, meter_id: int, payload: MeterCommandIn) -> Any:
    """Trip/close a relay or open/close a valve. Sent by the gateway, confirmed by a status read.

    With an ``Idempotency-Key`` header, a replay returns the command of the first request (200).
    """
    meter = access_object(request.user, Meter, meter_id)
    require(request.user, Permission.MANAGE_METERS)
    key = request.headers.get("Idempotency-Key") or None
    replay = MeterCommand.objects.filter(organisation_id=meter.organisation_id, idempotency_key=key)
    before = key is not None and replay.exists()
    command = meter_command_request(
        actor=request.user,
        meter=meter,
        kind=payload.kind,
        reason=payload.reason,
        requested_by=MeterCommand.Requester.API,
        idempotency_key=key,
    )
    return Status(200 if before else 201, command)
