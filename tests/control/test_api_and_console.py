"""The API and console pages for readings and remote control."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from meterpay.apps.control.models import MeterCommand
from meterpay.apps.readings.services import meter_link_poll_failed, register_read_record
from tests.factories import PASSWORD, build_org

pytestmark = pytest.mark.django_db


@pytest.fixture
def org() -> Any:
    org = build_org("ac", 300)
    start = timezone.now() - timedelta(hours=2)
    for n, total in enumerate(("10.00", "10.50", "11.25")):
        register_read_record(
            meter=org.meter,
            read_at=start + n * timedelta(minutes=15),
            source="poll",
            total=Decimal(total),
        )
    return org


def api(client: Any, org: Any, method: str, path: str, **kwargs: Any) -> Any:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {org.raw_token}", **kwargs.pop("headers", {})}
    return client.generic(
        method, "/api/v1" + path, content_type="application/json", **headers, **kwargs
    )


def test_api_readings_and_commands_with_idempotency_key(client: Any, org: Any) -> None:
    reads = api(client, org, "GET", f"/meters/{org.meter.pk}/readings").json()
    assert [r["total"] for r in reads["items"]] == ["11.2500", "10.5000", "10.0000"]
    body = '{"kind": "relay_trip", "reason": "arrears"}'
    first = api(
        client,
        org,
        "POST",
        f"/meters/{org.meter.pk}/commands",
        data=body,
        headers={"HTTP_IDEMPOTENCY_KEY": "abc"},
    )
    assert first.status_code == 201 and first.json()["status"] == "pending"
    again = api(
        client,
        org,
        "POST",
        f"/meters/{org.meter.pk}/commands",
        data=body,
        headers={"HTTP_IDEMPOTENCY_KEY": "abc"},
    )
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert MeterCommand.objects.count() == 1
    log = api(client, org, "GET", f"/meters/{org.meter.pk}/commands").json()
    assert (
        log["items"][0]["requested_by"] == "api"
        and log["items"][0]["requested_by_user"] == "ac-owner"
    )
    wrong = api(
        client, org, "POST", f"/meters/{org.meter.pk}/commands", data='{"kind": "valve_open"}'
    )
    assert wrong.status_code == 400


def test_console_meter_pages_show_link_state_chart_and_controls(client: Any, org: Any) -> None:
    for n in range(3):
        meter_link_poll_failed(meter=org.free_meter, at=timezone.now(), error="timeout")
    client.login(username="ac-operator", password=PASSWORD)
    detail = client.get(reverse("console:meter_detail", args=[org.meter.pk])).content.decode()
    assert 'id="reading-chart-data"' in detail and 'data-command="relay_trip"' in detail
    assert 'data-link="online"' in detail
    listing = client.get(reverse("console:meter_list")).content.decode()
    assert 'data-link="offline"' in listing and "11.2500" in listing
    grid = client.get(reverse("console:room_grid")).content.decode()
    assert 'data-link="offline"' in grid  # the vacant room's meter is offline
    response = client.post(
        reverse("console:meter_commands", args=[org.meter.pk]),
        {"kind": "relay_trip", "reason": "arrears"},
    )
    assert response.status_code == 302
    command = MeterCommand.objects.get()
    assert (
        command.requested_by == "operator" and command.requested_by_user.username == "ac-operator"
    )
    log = client.get(reverse("console:meter_commands", args=[org.meter.pk])).content.decode()
    assert 'data-status="pending"' in log and "arrears" in log
    gateways = client.get(reverse("console:gateway_list")).content.decode()
    assert 'data-link="unknown"' in gateways


def test_viewers_cannot_send_commands(client: Any, org: Any) -> None:
    client.login(username="ac-viewer", password=PASSWORD)
    detail = client.get(reverse("console:meter_detail", args=[org.meter.pk])).content.decode()
    assert 'data-command="relay_trip"' not in detail
    response = client.post(
        reverse("console:meter_commands", args=[org.meter.pk]), {"kind": "relay_trip"}
    )
    assert response.status_code == 403
    assert not MeterCommand.objects.exists()
