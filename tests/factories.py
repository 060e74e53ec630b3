"""Small, explicit builders for tests (through the real services, so rules are enforced)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from meterpay.apps.customers import services as customers
from meterpay.apps.customers.models import Account, Customer
from meterpay.apps.imports.models import ImportBatch
from meterpay.apps.meters import services as meters
from meterpay.apps.meters.models import Gateway, Meter
from meterpay.apps.organisations.models import Organisation
from meterpay.apps.sites import services as sites
from meterpay.apps.sites.models import Building, Floor, Room, Site
from meterpay.apps.users.models import ApiToken, User
from meterpay.apps.users.services import api_token_create, staff_user_create, tenant_user_create
from meterpay.core.roles import STAFF_ROLES

PASSWORD = "correct-horse-battery"


@dataclass
class Org:
    org: Organisation
    site: Site
    building: Building
    floor: Floor
    room: Room
    vacant_room: Room
    gateway: Gateway
    meter: Meter
    free_meter: Meter
    customer: Customer
    account: Account
    users: dict[str, User]
    tenant: User
    token: ApiToken
    raw_token: str
    batch: ImportBatch


def build_org(slug: str, number_base: int = 1) -> Org:
    actor = "test"
    org = Organisation.objects.create(name=f"Org {slug}", slug=slug)
    users = {
        role.value: staff_user_create(
            actor=actor,
            organisation=org,
            username=f"{slug}-{role.value}",
            password=PASSWORD,
            role=role,
        )
        for role in STAFF_ROLES
    }
    site = sites.site_create(actor=actor, organisation=org, name=f"Site {slug}", kind="mall")
    building = sites.building_create(actor=actor, site=site, name="B1")
    floor = sites.floor_create(actor=actor, building=building, name="1F", level=1)
    room = sites.room_create(
        actor=actor, floor=floor, number="101", kind="shop", area_m2=Decimal("50.00")
    )
    vacant = sites.room_create(
        actor=actor, floor=floor, number="102", kind="shop", area_m2=Decimal("30.00")
    )
    gateway = meters.gateway_create(
        actor=actor, site=site, identifier=f"DTU-{slug}", kind="dtu_4g", protocol="dlt645"
    )
    meter = meters.meter_create(
        actor=actor,
        organisation=org,
        kind="electricity_1p",
        protocol="dlt645",
        address=f"{number_base:012d}",
        gateway=gateway,
        room=room,
    )
    free_meter = meters.meter_create(
        actor=actor,
        organisation=org,
        kind="electricity_1p",
        protocol="dlt645",
        address=f"{number_base + 1:012d}",
        gateway=gateway,
        room=vacant,
    )
    customer = customers.customer_create(
        actor=actor, organisation=org, name=f"Customer {slug}", phone="13800000000"
    )
    account = customers.account_open_new(
        actor=actor, customer=customer, rooms=[room], meters=[meter]
    )
    tenant = tenant_user_create(
        actor=actor, customer=customer, username=f"{slug}-tenant", password=PASSWORD
    )
    token, raw = api_token_create(actor=actor, user=users["owner"], name="test")
    batch = ImportBatch.objects.create(
        organisation=org,
        kind="customers",
        filename="c.csv",
        content=b"name\nX\n",
        uploaded_by=users["owner"],
        row_count=1,
    )
    return Org(
        org=org,
        site=site,
        building=building,
        floor=floor,
        room=room,
        vacant_room=vacant,
        gateway=gateway,
        meter=meter,
        free_meter=free_meter,
        customer=customer,
        account=account,
        users=users,
        tenant=tenant,
        token=token,
        raw_token=raw,
        batch=batch,
    )
