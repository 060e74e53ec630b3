"""Credit commands: purchase numbers, never applied twice, lost acks, mirror and discrepancy rules."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from meterpay.apps.audit.models import AuditEvent
from meterpay.apps.control import credit, selectors
from meterpay.apps.control.models import BalanceDiscrepancy, MeterBalance, MeterCommand
from meterpay.apps.control.services import meter_command_claim, meter_command_request
from meterpay.apps.meters import services as meters
from tests.factories import build_org

pytestmark = pytest.mark.django_db


@pytest.fixture
def org() -> Any:
    return build_org("cr", 610)


def download(org: Any, amount: int = 5000, key: str = "d-1", **kwargs: Any) -> MeterCommand:
    options: dict[str, Any] = {
        "actor": org.users["finance"],
        "meter": org.meter,
        "kind": "credit_download",
        "amount_minor": amount,
        "requested_by": "recharge",
        "idempotency_key": key,
    }
    return credit.meter_credit_request(**{**options, **kwargs})


def check(command: MeterCommand, count: int | None, *, sent: bool, **state: Any) -> int | None:
    return credit.meter_credit_checked(
        command_id=command.command_id, at=timezone.now(), sent=sent, purchase_count=count, **state
    )


def claim(command: MeterCommand) -> MeterCommand | None:
    return meter_command_claim(command_id=command.command_id, worker="t")


def fresh(command: MeterCommand) -> MeterCommand:
    return MeterCommand.objects.get(pk=command.pk)


def test_requests_are_validated_and_replayed_by_key(org: Any) -> None:
    first = download(org)
    assert download(org) == first
    assert MeterBalance.objects.get(meter=org.meter).managed
    with pytest.raises(ValidationError):
        download(org, amount=4000)  # the same key for another amount
    with pytest.raises(ValidationError):
        download(org, amount=0, key="zero")
    with pytest.raises(ValidationError):
        download(org, key="float", amount=12.5)
    mqtt = meters.gateway_create(
        actor="t", site=org.site, identifier="MQ-cr", kind="mqtt", protocol="dlt645"
    )
    over_mqtt = meters.meter_create(
        actor="t",
        organisation=org.org,
        kind="electricity_1p",
        protocol="dlt645",
        address="000000000699",
        gateway=mqtt,
    )
    with pytest.raises(ValidationError):
        download(org, key="mqtt", meter=over_mqtt)
    with pytest.raises(ValidationError):
        meter_command_request(
            actor="t", meter=org.meter, kind="credit_download", requested_by="operator"
        )


def test_downloads_are_never_superseded_and_go_one_after_another(org: Any) -> None:
    first, second = download(org, key="a"), download(org, key="b")
    meter_command_request(actor="t", meter=org.meter, kind="relay_trip", requested_by="operator")
    assert fresh(first).status == fresh(second).status == "pending"
    due = selectors.commands_due(
        gateway_identifiers=[org.gateway.identifier], now=timezone.now() + timedelta(seconds=1)
    )
    assert first in due and second not in due  # the second waits for the first


def test_purchase_number_is_fixed_on_first_send_and_confirmed_by_the_count(org: Any) -> None:
    command = download(org)
    assert claim(command) is not None
    assert check(command, 7, sent=False, remaining_minor=100) == 8
    assert check(command, 8, sent=True, remaining_minor=5100, remaining_after_minor=5100) is None
    command = fresh(command)
    assert (command.status, command.purchase_number, command.confirmed_amount_minor) == (
        "confirmed",
        8,
        5000,
    )
    balance = MeterBalance.objects.get(meter=org.meter)
    assert (balance.confirmed_count, balance.purchase_count, balance.remaining_minor) == (
        8,
        8,
        5100,
    )
    assert balance.credited_minor == 5100


def test_a_lost_ack_is_recognised_by_the_count_and_never_sent_twice(org: Any) -> None:
    command = download(org)
    claim(command)
    assert check(command, 3, sent=False) == 4
    # the reply and the read after it were lost: unknown, retry later
    assert check(command, None, sent=True, error="timeout") is None
    assert fresh(command).status == "pending"
    MeterCommand.objects.filter(pk=command.pk).update(next_attempt_at=timezone.now())
    claim(command)
    # the retry's read finds the count moved: it was applied; nothing is sent again
    assert check(command, 4, sent=False, remaining_after_minor=5000) is None
    assert fresh(command).status == "confirmed"


def test_not_applied_is_retried_under_the_same_number(org: Any) -> None:
    command = download(org)
    claim(command)
    assert check(command, 3, sent=False) == 4
    assert check(command, 3, sent=True, error="timeout") is None
    assert fresh(command).status == "pending" and fresh(command).purchase_number == 4
    MeterCommand.objects.filter(pk=command.pk).update(next_attempt_at=timezone.now())
    claim(command)
    assert check(command, 3, sent=False) == 4


def test_a_refused_purchase_fails_at_once(org: Any) -> None:
    command = download(org)
    claim(command)
    check(command, 3, sent=False)
    check(command, 3, sent=True, error="error reply", refused=True)
    assert fresh(command).status == "failed"


def test_a_count_the_platform_does_not_know_is_not_sent_to_and_is_flagged(org: Any) -> None:
    first = download(org, key="a")
    claim(first)
    check(first, 3, sent=False)
    check(first, 4, sent=True, remaining_after_minor=5000)
    second = download(org, key="b")
    claim(second)
    assert check(second, 6, sent=False) is None  # someone else bought twice at the meter
    assert fresh(second).status == "failed"
    flag = BalanceDiscrepancy.objects.get(meter=org.meter)
    assert flag.kind == "purchase_count" and "6" in flag.detail


def report(org: Any, remaining: int | None, count: int | None, minutes: int = 0) -> None:
    at = timezone.now() + timedelta(minutes=minutes)
    credit.meter_balances_reported(
        reports=[credit.BalanceReport(org.meter.pk, remaining, count, at)]
    )


def kinds(org: Any) -> set[str]:
    return set(
        BalanceDiscrepancy.objects.filter(meter=org.meter, cleared_at__isnull=True).values_list(
            "kind", flat=True
        )
    )


def test_reports_are_mirrored_but_unmanaged_meters_are_not_judged(org: Any) -> None:
    report(org, 1000, 3, 1)
    report(org, 9000, 9, 2)
    report(org, 500, 2, 0)  # older than the mirror: ignored
    balance = MeterBalance.objects.get(meter=org.meter)
    assert (balance.remaining_minor, balance.purchase_count) == (9000, 9)
    assert kinds(org) == set()


def confirmed_download(org: Any, before: int = 0, count: int = 3) -> None:
    command = download(org)
    report(org, before, count, -1)
    claim(command)
    check(command, count, sent=False, remaining_minor=before)
    check(command, count + 1, sent=True, remaining_minor=before + 5000)


def test_consumption_raises_no_flag(org: Any) -> None:
    confirmed_download(org)
    for minute, remaining in enumerate((4990, 4900, 4000, 0), start=1):
        report(org, remaining, 4, minute)
    assert kinds(org) == set()


def test_a_rise_without_a_purchase_is_flagged(org: Any) -> None:
    confirmed_download(org)
    report(org, 4000, 4, 1)
    report(org, 4500, 4, 2)
    assert kinds(org) == {"rise"}


def test_a_creeping_rise_within_tolerance_is_caught_by_the_ceiling(org: Any) -> None:
    confirmed_download(org)
    report(org, 3000, 4, 1)
    for minute, remaining in enumerate((3008, 3016, 3024), start=2):
        report(org, remaining, 4, minute)
    assert kinds(org) == {"above_credited"}


def test_a_purchase_at_the_meter_is_flagged_and_clearing_is_audited(org: Any) -> None:
    confirmed_download(org)
    report(org, 9000, 5, 1)
    assert kinds(org) == {"purchase_count", "above_credited"}
    flag = BalanceDiscrepancy.objects.get(meter=org.meter, kind="purchase_count")
    with pytest.raises(ValidationError):
        credit.discrepancy_clear(actor=org.users["operator"], discrepancy=flag, note=" ")
    credit.discrepancy_clear(
        actor=org.users["operator"], discrepancy=flag, note="card purchase at the meter"
    )
    assert MeterBalance.objects.get(meter=org.meter).confirmed_count == 5  # the new baseline
    event = AuditEvent.objects.get(action="balance_discrepancy.clear")
    assert event.after["note"] == "card purchase at the meter"
    report(org, 8900, 5, 2)
    assert kinds(org) == {"above_credited"}  # the count agrees now


def test_no_judgement_while_a_credit_command_is_in_flight(org: Any) -> None:
    confirmed_download(org)
    command = download(org, key="second")
    claim(command)
    check(command, 4, sent=False)
    report(org, 10000, 5, 1)  # the second purchase applied, its check not in yet
    assert kinds(org) == set()
