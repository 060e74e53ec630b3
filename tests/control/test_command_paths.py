"""Relay and credit requests share one path: which check speaks first, replays, the audit record."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from meterpay.apps.audit.models import AuditEvent
from meterpay.apps.control import credit
from meterpay.apps.control.models import MeterCommand
from meterpay.apps.control.services import meter_command_request
from tests.factories import build_org

pytestmark = pytest.mark.django_db


@pytest.fixture
def org() -> Any:
    return build_org("cp", 620)


def relay(org: Any, **kwargs: Any) -> MeterCommand:
    options: dict[str, Any] = {
        "actor": org.users["operator"],
        "meter": org.meter,
        "kind": "relay_trip",
        "reason": "test",
        "requested_by": "operator",
    }
    return meter_command_request(**{**options, **kwargs})


def download(org: Any, **kwargs: Any) -> MeterCommand:
    options: dict[str, Any] = {
        "actor": org.users["finance"],
        "meter": org.meter,
        "kind": "credit_download",
        "amount_minor": 5000,
        "requested_by": "recharge",
        "idempotency_key": "k-1",
    }
    return credit.meter_credit_request(**{**options, **kwargs})


def error(call: Any, *args: Any, **kwargs: Any) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as raised:
        call(*args, **kwargs)
    return raised.value.message_dict


def test_the_first_failing_check_speaks(org: Any) -> None:
    # Relay: the requester before the kind; credit: the kind before the requester.
    assert error(relay, org, kind="nonsense", requested_by="somebody") == {
        "requested_by": ["unknown requester 'somebody'"]
    }
    assert error(download, org, kind="relay_trip", requested_by="somebody") == {
        "kind": ["not a credit command: 'relay_trip'"]
    }
    assert error(download, org, requested_by="somebody", amount_minor=-1) == {
        "requested_by": ["unknown requester 'somebody'"]
    }
    # The meter: removed before not behind a gateway, for both.
    org.meter.removed_on = datetime.date(2024, 1, 1)
    org.meter.gateway = None
    removed = {"meter": ["this meter was removed"]}
    assert error(relay, org) == removed
    assert error(download, org) == removed
    org.meter.removed_on = None
    away = {"meter": ["this meter is not behind a gateway"]}
    assert error(relay, org) == away
    assert error(download, org, idempotency_key=" ") == away  # the key is checked after


def test_a_key_replays_the_first_request_or_refuses_another(org: Any) -> None:
    conflict = {"idempotency_key": ["this key was used for another command"]}
    first = relay(org, idempotency_key="r-1")
    assert relay(org, idempotency_key=" r-1 ") == first
    assert error(relay, org, kind="relay_close", idempotency_key="r-1") == conflict
    assert error(download, org, idempotency_key="r-1") == conflict
    download_ = download(org)
    assert download(org) == download_
    assert error(download, org, amount_minor=4000) == conflict
    assert error(relay, org, idempotency_key="k-1") == conflict
    assert AuditEvent.objects.filter(action="meter_command.request").count() == 2


def test_the_request_audit_record(org: Any) -> None:
    command = relay(org)
    download_ = download(org)
    snapshot = {
        "meter": org.meter.pk,
        "status": "pending",
        "attempts": 0,
        "reason": "test",
        "outcome": "",
    }
    record = AuditEvent.objects.get(action="meter_command.request", object_id=str(command.pk))
    assert record.after == {
        **snapshot,
        "command_id": str(command.command_id),
        "kind": "relay_trip",
        "requested_by": "operator",
    }
    record = AuditEvent.objects.get(action="meter_command.request", object_id=str(download_.pk))
    assert record.after == {
        **snapshot,
        "command_id": str(download_.command_id),
        "kind": "credit_download",
        "requested_by": "recharge",
        "reason": "",
        "amount_minor": 5000,
    }
