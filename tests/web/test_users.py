from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from meterpay.apps.audit.models import AuditEvent
from meterpay.apps.users.models import User
from tests.factories import build_org

pytestmark = pytest.mark.django_db


def test_owner_creates_staff_and_tenant_logins(client: Any) -> None:
    org = build_org("usr", 900)
    client.force_login(org.users["owner"])
    url = reverse("console:user_list")
    response = client.post(
        url,
        {
            "form": "staff",
            "staff-username": "clerk",
            "staff-email": "",
            "staff-role": "finance",
            "staff-password": "short",
        },
    )
    assert response.status_code == 200 and not User.objects.filter(username="clerk").exists()
    client.post(
        url,
        {
            "form": "staff",
            "staff-username": "clerk",
            "staff-email": "c@x.cn",
            "staff-role": "finance",
            "staff-password": "a-Long-enough-pass-42",
        },
    )
    clerk = User.objects.get(username="clerk")
    assert clerk.organisation == org.org and clerk.role == "finance"
    client.post(
        url,
        {
            "form": "tenant",
            "tenant-customer": org.customer.pk,
            "tenant-username": "shopkeeper",
            "tenant-email": "",
            "tenant-password": "a-Long-enough-pass-42",
        },
    )
    tenant = User.objects.get(username="shopkeeper")
    assert tenant.role == "tenant" and tenant.customer == org.customer
    assert AuditEvent.objects.filter(action="user.create", object_id=str(tenant.pk)).exists()


def test_role_change_deactivation_and_the_last_owner(client: Any) -> None:
    org = build_org("usr2", 910)
    owner, viewer = org.users["owner"], org.users["viewer"]
    client.force_login(owner)
    client.post(reverse("console:user_change", args=[viewer.pk]), {"role": "operator"})
    viewer.refresh_from_db()
    assert viewer.role == "operator"
    client.post(reverse("console:user_change", args=[viewer.pk]), {"active": "0"})
    viewer.refresh_from_db()
    assert not viewer.is_active
    response = client.post(
        reverse("console:user_change", args=[owner.pk]), {"role": "viewer"}, follow=True
    )
    assert "at least one active owner" in response.content.decode()
    owner.refresh_from_db()
    assert owner.role == "owner"
    client.post(reverse("console:user_change", args=[owner.pk]), {"active": "0"})
    owner.refresh_from_db()
    assert owner.is_active
