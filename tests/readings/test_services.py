"""The readings pipeline: register reads in, validated interval consumption out."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from meterpay.apps.audit.models import AuditEvent
from meterpay.apps.meters import services as meters
from meterpay.apps.readings import selectors
from meterpay.apps.readings.models import Interval, MeterLink, RegisterRead
from meterpay.apps.readings.services import (
    meter_link_poll_failed,
    meter_link_set_max_demand,
    register_read_record,
)
from tests.factories import build_org

pytestmark = pytest.mark.django_db

T0 = timezone.now().replace(microsecond=0) - timedelta(days=2)
Q = timedelta(minutes=15)


@pytest.fixture
def org() -> Any:
    return build_org("rd", 500)


def read(meter: Any, at: datetime, total: str, **kwargs: Any) -> Any:
    return register_read_record(
        meter=meter, read_at=at, source=kwargs.pop("source", "poll"), total=Decimal(total), **kwargs
    )


def test_first_read_is_the_baseline_and_the_next_one_books_an_interval(org: Any) -> None:
    first = read(org.meter, T0, "100.00", sharp=Decimal("1"), peak=Decimal("2"))
    assert first.created and first.interval is None
    second = read(org.meter, T0 + Q, "101.25")
    interval = second.interval
    assert interval is not None and interval.booked and interval.status == "ok"
    assert interval.consumption == Decimal("1.25")
    assert interval.start_read == first.read
    link = MeterLink.objects.get(meter=org.meter)
    assert (
        link.online is True and link.last_total == Decimal("101.25") and link.last_read_at == T0 + Q
    )


def test_the_same_reading_twice_is_stored_once(org: Any) -> None:
    read(org.meter, T0, "100.00")
    read(org.meter, T0 + Q, "101.00")
    again = read(org.meter, T0 + Q, "101.00", source="push")
    assert not again.created and again.interval is None
    assert RegisterRead.objects.filter(meter=org.meter).count() == 2
    assert Interval.objects.filter(meter=org.meter).count() == 1


def test_multiplier_is_applied_to_the_register_delta(org: Any) -> None:
    org.meter.multiplier = 40
    org.meter.save(update_fields=["multiplier"])
    read(org.meter, T0, "10.00")
    interval = read(org.meter, T0 + Q, "10.50").interval
    assert interval.register_delta == Decimal("0.50")
    assert interval.multiplier == 40
    assert interval.consumption == Decimal("20.00")


def test_counter_rollover_is_booked(org: Any) -> None:
    read(org.meter, T0, "999999.50")
    interval = read(org.meter, T0 + Q, "0.70").interval
    assert interval.status == "rollover" and interval.booked
    assert interval.consumption == Decimal("1.20")


def test_negative_delta_is_flagged_not_booked_and_the_baseline_survives(org: Any) -> None:
    read(org.meter, T0, "500.00")
    glitch = read(org.meter, T0 + Q, "499.00").interval
    assert glitch.status == "negative" and not glitch.booked
    # the next good read counts from the last good read, so nothing is lost
    after = read(org.meter, T0 + 2 * Q, "501.00").interval
    assert after.booked and after.consumption == Decimal("1.00")
    assert after.status == "gap"  # the flagged read left a hole of one poll
    assert after.start_read.total == Decimal("500.00")


def test_spike_is_flagged_and_a_glitch_read_does_not_poison_the_next_interval(org: Any) -> None:
    read(org.meter, T0, "500.00")
    spike = read(org.meter, T0 + Q, "900.00").interval  # 1600 kW on a single-phase meter
    assert spike.status == "spike" and not spike.booked
    after = read(org.meter, T0 + 2 * Q, "501.00").interval
    assert after.booked and after.consumption == Decimal("1.00")


def test_a_real_register_reset_is_accepted_once_reads_agree_with_it(org: Any) -> None:
    read(org.meter, T0, "500.00")
    reset = read(org.meter, T0 + Q, "0.50").interval
    assert reset.status == "negative"
    follow = read(org.meter, T0 + 2 * Q, "1.00").interval
    assert (
        follow.booked
        and follow.consumption == Decimal("0.50")
        and follow.note == "follows an accepted jump"
    )


def test_per_meter_maximum_demand_overrides_the_default(org: Any) -> None:
    meter_link_set_max_demand(actor="test", meter=org.meter, max_demand=Decimal("2"))
    read(org.meter, T0, "0")
    assert read(org.meter, T0 + Q, "1.00").interval.status == "spike"  # 4 kW > 2 kW
    assert AuditEvent.objects.filter(action="meter.max_demand").exists()


def test_gap_is_booked_flagged_and_spread_evenly(org: Any) -> None:
    read(org.meter, T0, "100.00")
    interval = read(org.meter, T0 + timedelta(hours=4), "104.00").interval
    assert interval.status == "gap" and interval.booked
    series = selectors.consumption_by_bucket(org.meter, since=T0, until=T0 + timedelta(hours=4))
    assert [value for _, value in series[:4]] == [Decimal("1.0000")] * 4
    assert sum(v for _, v in series) == Decimal("4.00")


def test_replacement_meter_starts_from_its_own_first_read(org: Any) -> None:
    read(org.meter, T0, "5000.00")
    read(org.meter, T0 + Q, "5001.00")
    new = meters.meter_replace(
        actor="test", old=org.meter, address="000000009999", on=timezone.localdate(T0 + Q)
    )
    first_new = read(new, T0 + 2 * Q, "0.10")
    assert first_new.interval is None  # never a delta across meters
    assert read(new, T0 + 3 * Q, "0.60").interval.consumption == Decimal("0.50")
    assert not Interval.objects.filter(meter=new, register_delta__lt=0).exists()


def test_reads_after_removal_are_refused(org: Any) -> None:
    new = meters.meter_replace(
        actor="test", old=org.meter, address="000000009998", on=timezone.localdate(T0)
    )
    assert new.pk
    org.meter.refresh_from_db()
    with pytest.raises(ValidationError):
        read(org.meter, T0 + timedelta(days=1, hours=1), "1.00")


def test_late_read_is_stored_without_an_interval(org: Any) -> None:
    read(org.meter, T0, "100.00")
    read(org.meter, T0 + 2 * Q, "102.00")
    late = read(org.meter, T0 + Q, "101.00")
    assert late.created and late.interval is None
    assert MeterLink.objects.get(meter=org.meter).last_total == Decimal("102.00")


def test_invalid_values_are_refused(org: Any) -> None:
    with pytest.raises(ValidationError):
        read(org.meter, T0, "-1")
    with pytest.raises(ValidationError):
        register_read_record(
            meter=org.meter, read_at=T0.replace(tzinfo=None), source="poll", total=Decimal(1)
        )
    with pytest.raises(ValidationError):
        read(org.meter, T0, "1", source="carrier-pigeon")


def test_water_meter_in_cubic_metres(org: Any) -> None:
    water = meters.meter_create(
        actor="test",
        organisation=org.org,
        kind="water",
        protocol="cjt188",
        address="00000000000501",
        gateway=org.gateway,
        room=org.room,
    )
    read(water, T0, "12.34")
    interval = read(water, T0 + timedelta(hours=1), "12.84").interval
    assert interval.status == "ok" and interval.consumption == Decimal("0.50")
    assert read(water, T0 + timedelta(hours=2), "40.00").interval.status == "spike"  # 27 m³/h


def test_manual_read_is_audited(org: Any) -> None:
    read(org.meter, T0, "7.00", source="manual", actor=org.users["owner"])
    assert AuditEvent.objects.filter(
        action="meter.read_manual", object_id=str(org.meter.pk)
    ).exists()


def test_offline_after_three_missed_polls_since_last_contact(org: Any) -> None:
    read(org.meter, T0, "1.00")
    for n in range(1, 3):
        link = meter_link_poll_failed(meter=org.meter, at=T0 + n * Q, error="timeout")
        assert link.online is True
    link = meter_link_poll_failed(meter=org.meter, at=T0 + 3 * Q, error="timeout")
    assert link.online is False and link.offline_since == T0 and link.missed_polls == 3
    assert AuditEvent.objects.filter(action="meter.offline").count() == 1
    meter_link_poll_failed(meter=org.meter, at=T0 + 4 * Q, error="timeout")
    assert AuditEvent.objects.filter(action="meter.offline").count() == 1  # once per transition
    read(org.meter, T0 + 5 * Q, "1.50")
    link.refresh_from_db()
    assert link.online is True and link.offline_since is None and link.missed_polls == 0
    assert AuditEvent.objects.filter(action="meter.online").count() == 1


def test_room_annotation_shows_offline_meters(org: Any) -> None:
    from meterpay.apps.sites.models import Room

    for n in range(3):
        meter_link_poll_failed(meter=org.meter, at=T0 + n * Q, error="x")
    rooms = {r.pk: r for r in selectors.rooms_with_link_state(Room.objects.all())}
    assert rooms[org.room.pk].meters_offline is True
    assert rooms[org.vacant_room.pk].meters_offline is False


def test_without_database_foreign_keys_the_orm_still_protects_and_cascades(org: Any) -> None:
    """docs/decisions/readings-foreign-keys.md: the rules live in the ORM, not the database."""
    from django.db.models import ProtectedError

    read(org.meter, T0, "100.00")
    second = read(org.meter, T0 + Q, "101.00")
    assert second.interval is not None
    with pytest.raises(ProtectedError):
        org.meter.delete()
    second.read.delete()
    assert not Interval.objects.filter(meter=org.meter).exists()
    assert RegisterRead.objects.filter(meter=org.meter).count() == 1
