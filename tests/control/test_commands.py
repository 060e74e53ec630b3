"""The remote-control state machine: supersede, never twice, lost acks, timeouts that did act."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from meterpay.apps.audit.models import AuditEvent
from meterpay.apps.control import selectors
from meterpay.apps.control.models import MeterCommand, MeterSupplyState
from meterpay.apps.control.services import (
    backoff,
    meter_command_acknowledged,
    meter_command_claim,
    meter_command_not_done,
    meter_command_request,
    meter_commands_expire,
    supply_state_reported,
)
from meterpay.apps.meters import services as meters
from tests.factories import build_org

pytestmark = pytest.mark.django_db
NOW = timezone.now


@pytest.fixture
def org() -> Any:
    return build_org("ct", 600)


def request(org: Any, kind: str = "relay_trip", **kwargs: Any) -> MeterCommand:
    options = {
        "actor": org.users["operator"],
        "meter": org.meter,
        "kind": kind,
        "reason": "test",
        "requested_by": "operator",
        **kwargs,
    }
    return meter_command_request(**options)


def test_request_writes_a_pending_command_desired_state_and_audit(org: Any) -> None:
    command = request(org)
    assert command.status == "pending" and command.attempts == 0 and command.command_id
    assert command.requested_by_user == org.users["operator"]
    assert MeterSupplyState.objects.get(meter=org.meter).desired == "off"
    assert AuditEvent.objects.filter(
        action="meter_command.request", object_id=str(command.pk)
    ).exists()


def test_request_is_validated(org: Any) -> None:
    with pytest.raises(ValidationError):
        request(org, kind="valve_open")  # electricity meter
    with pytest.raises(ValidationError):
        request(org, requested_by="somebody")
    water = meters.meter_create(
        actor="t",
        organisation=org.org,
        kind="water",
        protocol="cjt188",
        address="00000000000601",
        gateway=org.gateway,
    )
    assert request(org, kind="valve_close", meter=water).target == "off"
    loose = meters.meter_create(
        actor="t",
        organisation=org.org,
        kind="electricity_1p",
        protocol="dlt645",
        address="000000000699",
    )
    with pytest.raises(ValidationError):
        request(org, meter=loose)


def test_a_contradicting_request_supersedes_the_pending_one(org: Any) -> None:
    trip = request(org, "relay_trip")
    close = request(org, "relay_close", requested_by="balance_rule")
    trip.refresh_from_db()
    assert trip.status == "superseded" and trip.superseded_by == close
    assert MeterSupplyState.objects.get(meter=org.meter).desired == "on"
    assert MeterCommand.objects.filter(meter=org.meter, status="pending").count() == 1


def test_the_same_request_does_not_pile_up(org: Any) -> None:
    first = request(org)
    assert request(org, requested_by="batch_task") == first
    assert MeterCommand.objects.filter(meter=org.meter).count() == 1


def test_idempotency_key_replays_return_the_same_command(org: Any) -> None:
    first = request(org, idempotency_key="k-1")
    claimed = meter_command_claim(command_id=first.command_id, worker="gw")
    assert claimed is not None
    assert request(org, idempotency_key="k-1") == first
    with pytest.raises(ValidationError):
        request(org, kind="relay_close", idempotency_key="k-1")


def test_a_command_is_claimed_once(org: Any) -> None:
    command = request(org)
    assert meter_command_claim(command_id=command.command_id, worker="a") is not None
    assert meter_command_claim(command_id=command.command_id, worker="b") is None
    command.refresh_from_db()
    assert command.status == "sent" and command.attempts == 1 and command.claimed_by == "a"


def test_an_in_flight_command_holds_back_the_next_one_for_the_meter(org: Any) -> None:
    trip = request(org)
    meter_command_claim(command_id=trip.command_id, worker="gw")
    close = request(org, "relay_close")
    trip.refresh_from_db()
    assert trip.status == "sent"  # in flight: cannot be superseded, must finish first
    assert selectors.commands_due(gateway_identifiers=[org.gateway.identifier], now=NOW()) == []
    supply_state_reported(meter=org.meter, reported="off", at=NOW())
    assert [
        c.pk
        for c in selectors.commands_due(gateway_identifiers=[org.gateway.identifier], now=NOW())
    ] == [close.pk]


def test_ack_then_status_read_confirms(org: Any) -> None:
    command = request(org)
    meter_command_claim(command_id=command.command_id, worker="gw")
    meter_command_acknowledged(command_id=command.command_id, at=NOW(), state="open")
    command.refresh_from_db()
    assert command.status == "acknowledged"
    confirmed = supply_state_reported(meter=org.meter, reported="off", at=NOW())
    assert confirmed == command
    command.refresh_from_db()
    assert command.status == "confirmed" and command.finished_at
    assert MeterSupplyState.objects.get(meter=org.meter).reported == "off"
    assert AuditEvent.objects.filter(action="meter_command.confirmed").exists()


def test_ack_but_status_says_otherwise_retries_then_fails(org: Any) -> None:
    command = request(org)
    for attempt in range(1, 5):
        claimed = meter_command_claim(
            command_id=command.command_id, worker="gw", now=NOW() + timedelta(hours=attempt)
        )
        assert claimed is not None and claimed.attempts == attempt
        meter_command_acknowledged(command_id=command.command_id, at=NOW())
        assert (
            supply_state_reported(
                meter=org.meter, reported="on", at=NOW() + timedelta(hours=attempt)
            )
            is None
        )
        meter_command_not_done(
            command_id=command.command_id,
            at=NOW(),
            error="relay still closed",
            backoff_base=timedelta(0),
        )
    command.refresh_from_db()
    assert command.status == "failed" and "4 attempts" in command.outcome


def test_lost_ack_is_confirmed_by_the_status_read(org: Any) -> None:
    command = request(org)
    meter_command_claim(command_id=command.command_id, worker="gw")
    # no ack: the gateway reads the status before deciding anything
    assert supply_state_reported(meter=org.meter, reported="off", at=NOW()) == command
    command.refresh_from_db()
    assert command.status == "confirmed" and command.attempts == 1


def test_retry_waits_an_exponential_backoff(org: Any) -> None:
    command = request(org)
    meter_command_claim(command_id=command.command_id, worker="gw")
    at = NOW()
    meter_command_not_done(command_id=command.command_id, at=at, error="timeout")
    command.refresh_from_db()
    assert command.status == "pending" and command.next_attempt_at == at + backoff(1)
    assert (
        meter_command_claim(command_id=command.command_id, worker="gw", now=at) is None
    )  # not yet due
    assert backoff(1) < backoff(2) < backoff(3) and backoff(30) == timedelta(minutes=10)


def test_timed_out_command_that_did_act_is_recognised_later(org: Any) -> None:
    command = request(org)
    for attempt in range(4):
        meter_command_claim(
            command_id=command.command_id, worker="gw", now=NOW() + timedelta(hours=attempt + 1)
        )
        meter_command_not_done(command_id=command.command_id, at=NOW(), error="timeout: no reply")
    command.refresh_from_db()
    assert command.status == "timed_out"
    # the next poll shows the relay open: the meter did carry it out
    assert (
        supply_state_reported(meter=org.meter, reported="off", at=NOW() + timedelta(hours=6))
        == command
    )
    command.refresh_from_db()
    assert command.status == "confirmed" and "after a timeout" in command.outcome


def test_results_for_a_finished_command_are_no_ops(org: Any) -> None:
    command = request(org)
    meter_command_claim(command_id=command.command_id, worker="gw")
    supply_state_reported(meter=org.meter, reported="off", at=NOW())
    answered = NOW()
    assert meter_command_acknowledged(command_id=command.command_id, at=answered) is None
    command.refresh_from_db()
    assert command.status == "confirmed" and command.acknowledged_at == answered  # time noted
    assert meter_command_acknowledged(command_id=command.command_id, at=NOW()) is None
    assert (
        meter_command_not_done(command_id=command.command_id, at=NOW(), error="late timeout")
        is None
    )
    assert meter_command_claim(command_id=command.command_id, worker="gw") is None
    command.refresh_from_db()
    assert command.status == "confirmed"


def test_refusal_fails_at_once(org: Any) -> None:
    command = request(org)
    meter_command_claim(command_id=command.command_id, worker="gw")
    meter_command_not_done(
        command_id=command.command_id, at=NOW(), error="unauthorised", refused=True
    )
    command.refresh_from_db()
    assert command.status == "failed" and "refused" in command.outcome


def test_a_status_read_from_before_sending_proves_nothing(org: Any) -> None:
    before = NOW() - timedelta(minutes=1)
    command = request(org)
    meter_command_claim(command_id=command.command_id, worker="gw")
    assert supply_state_reported(meter=org.meter, reported="off", at=before) is None


def test_outbox_row_disappears_with_the_callers_rollback(org: Any) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        request(org)
        raise RuntimeError("the caller's transaction fails")
    assert not MeterCommand.objects.exists()


def test_undeliverable_commands_time_out(org: Any) -> None:
    command = request(org)
    assert meter_commands_expire(now=NOW() + timedelta(days=2)) == 1
    command.refresh_from_db()
    assert command.status == "timed_out"
