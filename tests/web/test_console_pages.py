"""Every console page renders for every staff role that may see it, with a bounded number of
queries, and the forms do what they say."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.urls import reverse

from meterpay.apps.customers.models import Account, Customer
from meterpay.apps.sites.models import Building, Room
from meterpay.cli.demo_data import seed_demo
from tests.factories import PASSWORD, build_org

pytestmark = pytest.mark.django_db

PAGES = [
    "home",
    "site_tree",
    "room_grid",
    "customer_list",
    "account_list",
    "meter_list",
    "gateway_list",
]


@pytest.fixture(scope="module")
def demo(django_db_setup: Any, django_db_blocker: Any) -> Any:
    """The demo organisation, built once for this module (it is read-only here)."""
    with django_db_blocker.unblock():
        summary = seed_demo()
    yield summary
    with django_db_blocker.unblock():
        from django.core.management import call_command

        call_command("flush", interactive=False, verbosity=0)


@pytest.mark.parametrize("name", PAGES)
def test_list_pages_render_with_bounded_queries(
    client: Any, demo: Any, name: str, django_assert_max_num_queries: Any
) -> None:
    from meterpay.apps.users.models import User

    client.force_login(User.objects.get(username="viewer"))
    with django_assert_max_num_queries(15):
        response = client.get(reverse(f"console:{name}"))
    assert response.status_code == 200


def test_demo_has_the_promised_shape(demo: Any) -> None:
    org = demo.organisation
    rooms = Room.objects.filter(organisation=org)
    assert rooms.filter(kind="shop").count() == 60
    assert rooms.filter(kind="dormitory").count() == 160
    assert Building.objects.filter(site__kind="campus", organisation=org).count() == 4
    assert rooms.filter(kind="office").count() >= 20
    assert rooms.filter(kind="public_area").count() >= 3
    statuses = set(Account.objects.filter(organisation=org).values_list("status", flat=True))
    assert statuses == {"pre-set", "open", "suspended", "closed"}
    kinds = set(
        org
        and Room.objects.filter(organisation=org, meters__isnull=False).values_list(
            "meters__kind", flat=True
        )
    )
    assert kinds == {"electricity_1p", "electricity_3p", "water"}


def test_room_grid_filters_and_htmx_partial(client: Any, demo: Any) -> None:
    from meterpay.apps.users.models import User

    client.force_login(User.objects.get(username="operator"))
    full = client.get(reverse("console:room_grid"), {"status": "vacant"})
    body = full.content.decode()
    assert "<html" in body and 'id="room-summary"' in body
    partial = client.get(
        reverse("console:room_grid"), {"status": "vacant", "kind": "shop"}, HTTP_HX_REQUEST="true"
    )
    text = partial.content.decode()
    assert "<html" not in text and 'id="room-summary"' in text
    vacant_shops = [r for r in partial.context["rooms"]]
    assert vacant_shops and all(r.occupancy == "vacant" and r.kind == "shop" for r in vacant_shops)


def test_wizard_opens_an_account_end_to_end(client: Any) -> None:
    org = build_org("wiz", 80)
    client.force_login(org.users["operator"])
    url = reverse("console:account_wizard")
    assert client.get(url + "?restart=1").status_code == 200
    assert client.post(url + "?step=room", {"room": org.vacant_room.pk}).status_code == 302
    response = client.post(
        url + "?step=customer",
        {
            "mode": "new",
            "kind": "person",
            "name": "New Tenant",
            "phone": "139",
            "email": "",
            "notes": "",
        },
    )
    assert response.status_code == 302
    client.post(url + "?step=meters", {"meters": [org.free_meter.pk]})
    client.post(
        url + "?step=billing",
        {"billing_mode": "prepaid", "billing_side": "meter", "move_in_on": "2026-09-01"},
    )
    confirm = client.get(url + "?step=confirm")
    assert "New Tenant" in confirm.content.decode()
    response = client.post(url + "?step=confirm")
    account = Account.objects.get(customer__name="New Tenant")
    assert response.status_code == 302 and response["Location"] == reverse(
        "console:account_detail", args=[account.pk]
    )
    assert account.status == "open" and account.billing_side == "meter"
    assert list(account.rooms.all()) == [org.vacant_room]
    assert list(account.meters.all()) == [org.free_meter]
    assert str(account.move_in_on) == "2026-09-01"


def test_wizard_refuses_an_occupied_room(client: Any) -> None:
    org = build_org("wiz2", 90)
    client.force_login(org.users["operator"])
    response = client.post(
        reverse("console:account_wizard") + "?step=room", {"room": org.room.pk}, follow=True
    )
    assert "already has an account" in response.content.decode()


def test_account_detail_actions(client: Any) -> None:
    org = build_org("act", 95)
    client.force_login(org.users["operator"])
    url = reverse("console:account_detail", args=[org.account.pk])
    client.post(url, {"action": "suspend"})
    assert Account.objects.get(pk=org.account.pk).status == "suspended"
    response = client.post(url, {"action": "suspend"}, follow=True)
    assert "only an open account" in response.content.decode()
    client.force_login(org.users["viewer"])
    assert client.post(url, {"action": "resume"}).status_code == 403


def test_customer_create_and_edit(client: Any) -> None:
    org = build_org("cust", 97)
    client.force_login(org.users["operator"])
    response = client.post(
        reverse("console:customer_create"),
        {"kind": "company", "name": "ACME", "phone": "1", "email": "bad", "notes": ""},
    )
    assert response.status_code == 200 and "email" in response.context["form"].errors
    response = client.post(
        reverse("console:customer_create"),
        {"kind": "company", "name": "ACME", "phone": "1", "email": "a@b.cn", "notes": ""},
    )
    customer = Customer.objects.get(name="ACME")
    assert response.status_code == 302
    client.post(
        reverse("console:customer_detail", args=[customer.pk]),
        {"kind": "company", "name": "ACME Ltd", "phone": "2", "email": "a@b.cn", "notes": "vip"},
    )
    customer.refresh_from_db()
    assert customer.name == "ACME Ltd" and customer.notes == "vip"


def test_import_upload_preview_and_commit_through_the_console(client: Any) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    org = build_org("upl", 98)
    client.force_login(org.users["operator"])
    bad = SimpleUploadedFile("c.csv", b"name,email\nGood,\n,x@y.cn\n")
    response = client.post(
        reverse("console:import_list"), {"kind": "customers", "file": bad}, follow=True
    )
    body = response.content.decode()
    assert "Row 3" in body and "name" in body
    assert 'name="csrfmiddlewaretoken"' in body and "Commit the import" not in body
    good = SimpleUploadedFile("c.csv", b"name\nGood\nBetter\n")
    response = client.post(
        reverse("console:import_list"), {"kind": "customers", "file": good}, follow=True
    )
    assert "Commit the import" in response.content.decode()
    response = client.post(response.request["PATH_INFO"], follow=True)
    assert "Imported 2 rows" in response.content.decode()
    assert Customer.objects.filter(organisation=org.org, name__in=["Good", "Better"]).count() == 2
    template = client.get(reverse("console:import_template", args=["rooms", "xlsx"]))
    assert template.status_code == 200 and template["Content-Type"].startswith(
        "application/vnd.openxml"
    )


def test_login_logout_password_change_and_reset(client: Any) -> None:
    org = build_org("auth", 99)
    user = org.users["viewer"]
    user.email = "viewer@example.com"
    user.save()
    assert client.get(reverse("console:home")).status_code == 302  # to the login page
    response = client.post(reverse("login"), {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    response = client.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "n3w-Passw0rd!x",
            "new_password2": "n3w-Passw0rd!x",
        },
    )
    assert response.status_code == 302
    client.post(reverse("logout"))
    assert client.login(username=user.username, password="n3w-Passw0rd!x")
    client.logout()
    client.post(reverse("password_reset"), {"email": "viewer@example.com"})
    assert len(mail.outbox) == 1
    link = next(line for line in mail.outbox[0].body.splitlines() if "/password/reset/" in line)
    path = link.split("testserver", 1)[1]
    response = client.get(path, follow=True)
    set_url = response.request["PATH_INFO"]
    response = client.post(
        set_url, {"new_password1": "an0ther-Passw0rd!", "new_password2": "an0ther-Passw0rd!"}
    )
    assert response.status_code == 302
    assert client.login(username=user.username, password="an0ther-Passw0rd!")
    from meterpay.apps.audit.models import AuditEvent

    actions = set(
        AuditEvent.objects.filter(object_id=str(user.pk)).values_list("action", flat=True)
    )
    assert {"user.password_change", "user.password_reset"} <= actions


def test_language_switch_to_chinese(client: Any) -> None:
    org = build_org("lang", 101)
    client.force_login(org.users["viewer"])
    client.post(reverse("set_language"), {"language": "zh-hans", "next": "/"})
    body = client.get(reverse("console:room_grid")).content.decode()
    assert "房间监控" in body
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    assert "Room monitoring" in client.get(reverse("console:room_grid")).content.decode()
