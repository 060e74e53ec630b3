from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from meterpay.apps.audit.models import AuditEvent
from meterpay.apps.customers import services
from meterpay.apps.customers.models import Account
from meterpay.apps.customers.selectors import room_status_counts, rooms_with_status
from meterpay.apps.meters.models import Meter
from meterpay.apps.meters.services import meter_create, meter_replace
from meterpay.apps.sites.services import room_create
from tests.factories import build_org

pytestmark = pytest.mark.django_db


@pytest.fixture
def org() -> Any:
    return build_org("svc", 10)


def test_account_lifecycle_records_dates_and_audit(org: Any) -> None:
    customer = org.customer
    account = services.account_preset(
        actor="t", customer=customer, rooms=[org.vacant_room], meters=[org.free_meter]
    )
    assert account.status == Account.Status.PRESET and account.opened_at is None
    account = services.account_open(actor="t", account=account, move_in_on=date(2026, 5, 1))
    assert (
        account.status == "open"
        and account.opened_at is not None
        and account.move_in_on == date(2026, 5, 1)
    )
    account = services.account_suspend(actor="t", account=account)
    assert account.status == "suspended" and account.suspended_at is not None
    account = services.account_resume(actor="t", account=account)
    assert account.status == "open" and account.suspended_at is None
    account = services.account_close(actor="t", account=account, move_out_on=date(2026, 8, 31))
    assert account.status == "closed" and account.move_out_on == date(2026, 8, 31)
    org.free_meter.refresh_from_db()
    assert org.free_meter.account_id is None  # the meter is free for the next tenant
    actions = list(
        AuditEvent.objects.filter(object_type="customers.account", object_id=str(account.pk))
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == [
        "account.preset",
        "account.open",
        "account.suspend",
        "account.resume",
        "account.close",
    ]
    close = AuditEvent.objects.get(action="account.close", object_id=str(account.pk))
    assert close.before["status"] == "open" and close.after["status"] == "closed"
    assert close.actor_label == "t"


@pytest.mark.parametrize("transition", ["account_suspend", "account_resume", "account_open"])
def test_illegal_transitions_are_refused(org: Any, transition: str) -> None:
    account = org.account  # open
    if transition == "account_suspend":
        account = services.account_close(actor="t", account=account)
    with pytest.raises(ValidationError):
        getattr(services, transition)(actor="t", account=account)


def test_a_room_holds_one_active_account_at_a_time(org: Any) -> None:
    with pytest.raises(ValidationError, match="already has account"):
        services.account_preset(actor="t", customer=org.customer, rooms=[org.room])
    services.account_close(actor="t", account=org.account)
    again = services.account_open_new(
        actor="t", customer=org.customer, rooms=[org.room], meters=[org.meter]
    )
    assert again.number != org.account.number
    assert set(Meter.objects.filter(account=again)) == {org.meter}


def test_a_meter_cannot_serve_two_accounts(org: Any) -> None:
    with pytest.raises(ValidationError, match="belongs to another account"):
        services.account_preset(
            actor="t", customer=org.customer, rooms=[org.vacant_room], meters=[org.meter]
        )
    assert Account.objects.filter(organisation=org.org).count() == 1  # nothing half-made


def test_objects_of_another_org_are_refused_by_services(org: Any) -> None:
    other = build_org("svc2", 20)
    with pytest.raises(ValidationError):
        services.account_preset(actor="t", customer=org.customer, rooms=[other.vacant_room])
    with pytest.raises(ValidationError):
        services.account_preset(
            actor="t", customer=org.customer, rooms=[org.vacant_room], meters=[other.free_meter]
        )


def test_account_numbers_count_up_per_organisation(org: Any) -> None:
    first = org.account.number
    second = services.account_preset(actor="t", customer=org.customer, rooms=[org.vacant_room])
    assert first == "A000001" and second.number == "A000002"
    other = build_org("svc3", 30)
    assert other.account.number == "A000001"


def test_bulk_one_click_opening(org: Any) -> None:
    rooms = [
        room_create(
            actor="t", floor=org.floor, number=f"2{i:02d}", kind="office", area_m2=Decimal("10")
        )
        for i in range(3)
    ]
    preset = [services.account_preset(actor="t", customer=org.customer, rooms=[r]) for r in rooms]
    opened = services.accounts_open_bulk(actor="t", accounts=preset)
    assert [a.status for a in opened] == ["open"] * 3


def test_meter_replacement_keeps_history_and_the_account_carries_on(org: Any) -> None:
    new = meter_replace(actor="t", old=org.meter, address="000000009999", on=date(2026, 6, 1))
    old = Meter.objects.get(pk=org.meter.pk)
    assert old.removed_on == date(2026, 6, 1) and old.replaced_by == new
    assert (
        old.account_id == org.account.pk
    )  # history: the old meter still names the account it served
    assert (
        new.account_id == org.account.pk
        and new.room_id == org.room.pk
        and new.gateway_id == org.gateway.pk
    )
    assert new.installed_on == date(2026, 6, 1)
    with pytest.raises(ValidationError):
        meter_replace(actor="t", old=old, address="000000008888", on=date(2026, 6, 2))
    # the old address may be reused by a new meter now that the old one is removed
    meter_create(
        actor="t",
        organisation=org.org,
        kind="electricity_1p",
        protocol="dlt645",
        address=old.address,
        gateway=org.gateway,
    )


@pytest.mark.parametrize(
    "protocol,kind,address,ok",
    [
        ("dlt645", "electricity_1p", "000000000001", True),
        ("dlt645", "electricity_1p", "12345", False),
        ("cjt188", "water", "00000000000001", True),
        ("cjt188", "electricity_1p", "00000000000001", False),
        ("dlt645", "water", "000000000002", False),
        ("modbus", "electricity_3p", "247", True),
        ("modbus", "electricity_3p", "248", False),
        ("modbus", "electricity_3p", "0", False),
    ],
)
def test_meter_address_rules(org: Any, protocol: str, kind: str, address: str, ok: bool) -> None:
    def create() -> Meter:
        return meter_create(
            actor="t", organisation=org.org, kind=kind, protocol=protocol, address=address
        )

    if ok:
        assert create().address == address
    else:
        with pytest.raises(ValidationError):
            create()


def test_modbus_unit_ids_repeat_across_buses_but_not_on_one(org: Any) -> None:
    from meterpay.apps.meters.services import gateway_create

    other_bus = gateway_create(
        actor="t", site=org.site, identifier="DTU-2", kind="dtu_4g", protocol="modbus"
    )
    meter_create(
        actor="t",
        organisation=org.org,
        kind="electricity_3p",
        protocol="modbus",
        address="1",
        gateway=org.gateway,
    )
    meter_create(
        actor="t",
        organisation=org.org,
        kind="electricity_3p",
        protocol="modbus",
        address="1",
        gateway=other_bus,
    )
    with pytest.raises(ValidationError):
        meter_create(
            actor="t",
            organisation=org.org,
            kind="electricity_3p",
            protocol="modbus",
            address="1",
            gateway=other_bus,
        )


def test_room_status_counts(org: Any) -> None:
    counts = room_status_counts(rooms_with_status(org.users["viewer"]))
    assert counts == {"vacant": 1, "pre-set": 0, "open": 1, "suspended": 0, "total": 2}
    services.account_suspend(actor="t", account=org.account)
    counts = room_status_counts(rooms_with_status(org.users["viewer"]))
    assert counts["suspended"] == 1 and counts["open"] == 0
