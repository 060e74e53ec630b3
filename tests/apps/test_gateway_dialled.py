"""Gateways the platform dials: a serial server in TCP-server mode has a host and a port."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from meterpay.apps.audit.models import AuditEvent
from meterpay.apps.meters import services
from meterpay.apps.meters.models import Gateway
from tests.factories import build_org

pytestmark = pytest.mark.django_db


@pytest.fixture
def org() -> Any:
    return build_org("dialg", 730)


def create(org: Any, **fields: Any) -> Gateway:
    values = {"identifier": "SS-dialg", "kind": "serial_server", "protocol": "modbus"}
    return services.gateway_create(actor="t", site=org.site, **(values | fields))


def test_a_serial_server_with_host_and_port_is_dialled_and_audited(org: Any) -> None:
    gateway = create(org, host=" 10.0.0.5 ", port=8899)
    assert (gateway.host, gateway.port, gateway.dialled) == ("10.0.0.5", 8899, True)
    event = AuditEvent.objects.get(action="gateway.create", object_id=str(gateway.pk))
    assert (event.after["host"], event.after["port"]) == ("10.0.0.5", 8899)
    assert create(org, identifier="SS-dialg-2").dialled is False  # TCP-client mode


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"kind": "dtu_4g", "host": "10.0.0.5", "port": 8899}, "host"),
        ({"host": "10.0.0.5"}, "port"),
        ({"port": 8899}, "host"),
        ({"host": "10.0.0.5", "port": 70000}, "port"),
        ({"host": "10.0.0.5", "port": 0}, "port"),
    ],
)
def test_inconsistent_host_and_port_are_refused(org: Any, fields: Any, field: str) -> None:
    with pytest.raises(ValidationError) as error:
        create(org, **fields)
    assert field in error.value.message_dict
    assert not Gateway.objects.filter(identifier="SS-dialg").exists()


def test_console_form_takes_host_and_port_and_the_page_shows_them(client: Any, org: Any) -> None:
    client.force_login(org.users["operator"])
    form = {
        "site": org.site.pk,
        "identifier": "SS-dialg",
        "kind": "dtu_4g",
        "protocol": "dlt645",
        "host": "10.0.0.5",
        "port": "8899",
    }
    response = client.post(reverse("console:gateway_create"), form)
    assert response.status_code == 200 and "host" in response.context["form"].errors
    response = client.post(reverse("console:gateway_create"), form | {"kind": "serial_server"})
    gateway = Gateway.objects.get(identifier="SS-dialg")
    assert response.status_code == 302 and (gateway.host, gateway.port) == ("10.0.0.5", 8899)
    page = client.get(reverse("console:gateway_detail", args=[gateway.pk])).content.decode()
    assert "10.0.0.5:8899" in page


def test_api_creates_and_shows_a_dialled_gateway(client: Any, org: Any) -> None:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {org.raw_token}"}
    payload = {
        "site_id": org.site.pk,
        "identifier": "SS-dialg",
        "kind": "serial_server",
        "protocol": "modbus",
        "host": "10.0.0.5",
        "port": 8899,
    }
    refused = client.post(
        "/api/v1/gateways",
        json.dumps(payload | {"port": 0}),
        content_type="application/json",
        **headers,
    )
    assert refused.status_code == 422
    response = client.post(
        "/api/v1/gateways", json.dumps(payload), content_type="application/json", **headers
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["host"], body["port"]) == ("10.0.0.5", 8899)
    listed = client.get("/api/v1/gateways", **headers).json()["items"]
    assert {"SS-dialg": 8899, org.gateway.identifier: None} == {
        item["identifier"]: item["port"] for item in listed
    }
