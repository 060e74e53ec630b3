"""The fleet of an organisation as stored in the database (for ``meterpay simulate``)."""

from __future__ import annotations

from meterpay.apps.meters.models import Gateway
from meterpay.simulate.fleet import GatewaySpec, MeterSpec


def fleet_specs(org_slug: str, gateways: list[str] | None = None) -> list[GatewaySpec]:
    """Every gateway of the organisation with its installed meters."""
    qs = Gateway.objects.filter(organisation__slug=org_slug).select_related("organisation")
    if gateways:
        qs = qs.filter(identifier__in=gateways)
    specs = []
    for gateway in qs.order_by("identifier"):
        meters = (
            gateway.meters.filter(removed_on__isnull=True)
            .select_related("room", "account")
            .order_by("pk")
        )
        specs.append(
            GatewaySpec(
                identifier=gateway.identifier,
                kind=gateway.kind,
                protocol=gateway.protocol,
                org=gateway.organisation.slug,
                listen=(gateway.host, gateway.port) if gateway.host and gateway.port else None,
                meters=tuple(
                    MeterSpec(
                        address=m.address,
                        protocol=m.protocol,
                        water=m.kind == "water",
                        model=m.model or "DDSY1352",
                        room_kind=m.room.kind if m.room else "public_area",
                        meter_side=m.account_id is not None and m.account.billing_side == "meter",
                    )
                    for m in meters
                ),
            )
        )
    return specs
