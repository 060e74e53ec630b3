from __future__ import annotations

import re
from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction

from meterpay.apps.audit.services import audit_record, snapshot
from meterpay.apps.meters.models import Gateway, Meter
from meterpay.apps.organisations.models import Organisation
from meterpay.apps.sites.models import Room, Site


def meter_address_error(protocol: str, address: str) -> str | None:
    """Why ``address`` is not a valid bus address for ``protocol``, or None."""
    if protocol == "dlt645":
        return (
            None
            if re.fullmatch(r"\d{12}", address)
            else f"{address!r} is not a DL/T 645 address (12 digits)"
        )
    if protocol == "cjt188":
        return (
            None
            if re.fullmatch(r"\d{14}", address)
            else f"{address!r} is not a CJ/T 188 address (14 digits)"
        )
    if protocol == "modbus":
        if re.fullmatch(r"\d{1,3}", address) and 1 <= int(address) <= 247:
            return None
        return f"{address!r} is not a Modbus unit id (1 to 247)"
    return f"unknown protocol {protocol!r}"


@transaction.atomic
def gateway_create(
    *,
    actor: object,
    site: Site,
    identifier: str,
    kind: str,
    protocol: str,
    name: str = "",
    host: str = "",
    port: int | None = None,
) -> Gateway:
    """Register a gateway; ``host``/``port`` for a serial server the platform dials."""
    gateway = Gateway(
        organisation_id=site.organisation_id,
        site=site,
        identifier=identifier.strip(),
        kind=kind,
        protocol=protocol,
        name=name,
        host=host.strip(),
        port=port,
    )
    gateway.full_clean()
    gateway.save()
    audit_record(actor=actor, action="gateway.create", obj=gateway, after=snapshot(gateway))
    return gateway


@transaction.atomic
def meter_create(
    *,
    actor: object,
    organisation: Organisation,
    kind: str,
    protocol: str,
    address: str,
    model: str = "",
    serial_number: str = "",
    gateway: Gateway | None = None,
    room: Room | None = None,
    multiplier: int = 1,
    installed_on: date | None = None,
) -> Meter:
    address = address.strip()
    problem = meter_address_error(protocol, address)
    if problem:
        raise ValidationError({"address": problem})
    if kind == Meter.Kind.WATER and protocol != "cjt188":
        raise ValidationError({"protocol": "water meters speak CJ/T 188"})
    if kind != Meter.Kind.WATER and protocol == "cjt188":
        raise ValidationError({"protocol": "CJ/T 188 is a water-meter protocol"})
    for related, name in ((gateway, "gateway"), (room, "room")):
        if related is not None and related.organisation_id != organisation.pk:
            raise ValidationError({name: f"{name} belongs to another organisation"})
    same_address = Meter.objects.filter(
        organisation=organisation, protocol=protocol, address=address, removed_on__isnull=True
    )
    if protocol == "modbus":  # unit ids are unique on one bus only
        same_address = same_address.filter(gateway=gateway)
    if same_address.exists():
        raise ValidationError(
            {"address": f"an installed {protocol} meter with address {address} exists"}
        )
    meter = Meter(
        organisation=organisation,
        kind=kind,
        protocol=protocol,
        address=address,
        model=model,
        serial_number=serial_number,
        gateway=gateway,
        room=room,
        multiplier=multiplier,
        installed_on=installed_on,
    )
    meter.full_clean()
    meter.save()
    audit_record(actor=actor, action="meter.create", obj=meter, after=snapshot(meter))
    return meter


@transaction.atomic
def meter_replace(
    *,
    actor: object,
    old: Meter,
    address: str,
    on: date,
    model: str = "",
    serial_number: str = "",
    multiplier: int | None = None,
) -> Meter:
    """Swap a faulty meter: the old one keeps its history; room, account and gateway carry on."""
    old = Meter.objects.select_for_update().get(pk=old.pk)
    if old.removed_on is not None:
        raise ValidationError({"meter": "this meter was removed already"})
    before = snapshot(old)
    old.removed_on = on
    old.save(update_fields=["removed_on"])
    new = meter_create(
        actor=actor,
        organisation=old.organisation,
        kind=old.kind,
        protocol=old.protocol,
        address=address,
        model=model or old.model,
        serial_number=serial_number,
        gateway=old.gateway,
        room=old.room,
        multiplier=multiplier or old.multiplier,
        installed_on=on,
    )
    if old.account_id is not None:
        new.account_id = old.account_id
        new.save(update_fields=["account"])
    old.replaced_by = new
    old.save(update_fields=["replaced_by"])
    audit_record(actor=actor, action="meter.replace", obj=old, before=before, after=snapshot(old))
    return new
