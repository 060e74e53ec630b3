"""Batch ingestion: the same intervals as recording the reads one by one, in one transaction."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meterpay.apps.audit.models import AuditEvent
from meterpay.apps.readings.models import Interval, MeterLink, RegisterRead
from meterpay.apps.readings.services import (
    ReadInput,
    meter_link_poll_failed,
    register_read_record,
    register_reads_record_batch,
)
from tests.factories import build_org

pytestmark = pytest.mark.django_db

T0 = timezone.now().replace(microsecond=0) - timedelta(days=3)
Q = timedelta(minutes=15)


@pytest.fixture
def org() -> Any:
    return build_org("bt", 600)


def intervals_of(meter: Any) -> list[tuple[Any, ...]]:
    return list(
        Interval.objects.filter(meter=meter)
        .order_by("end_at")
        .values_list(
            "start_at",
            "end_at",
            "register_delta",
            "multiplier",
            "consumption",
            "status",
            "booked",
            "note",
        )
    )


def test_a_batch_stores_reads_intervals_and_link_state(org: Any) -> None:
    reads = [
        ReadInput(org.meter.pk, T0 + i * Q, Decimal("100") + Decimal(i) / 4, sharp=Decimal("1"))
        for i in range(5)
    ]
    outcome = register_reads_record_batch(reads=reads)
    assert (outcome.stored, outcome.duplicates, outcome.intervals, outcome.booked) == (5, 0, 4, 4)
    assert RegisterRead.objects.filter(meter=org.meter).count() == 5
    first = Interval.objects.filter(meter=org.meter).order_by("end_at").first()
    assert first.consumption == Decimal("0.25") and first.start_read.read_at == T0
    link = MeterLink.objects.get(meter=org.meter)
    assert link.online and link.last_read_at == T0 + 4 * Q and link.last_total == Decimal("101")
    # the same reads again: nothing new
    again = register_reads_record_batch(reads=reads)
    assert (again.stored, again.duplicates, again.intervals) == (0, 5, 0)
    assert Interval.objects.filter(meter=org.meter).count() == 4


def test_refused_reads_are_reported_and_the_rest_stored(org: Any) -> None:
    outcome = register_reads_record_batch(
        reads=[
            ReadInput(org.meter.pk, T0, Decimal("1")),
            ReadInput(org.meter.pk, T0 + Q, Decimal("-1")),
            ReadInput(org.meter.pk, timezone.now() + timedelta(hours=1), Decimal("2")),
            ReadInput(org.meter.pk, (T0 + Q).replace(tzinfo=None), Decimal("2")),
            ReadInput(987654, T0, Decimal("1")),
            ReadInput(org.meter.pk, T0 + Q, Decimal("1.10"), source="telepathy"),
        ]
    )
    assert outcome.stored == 1
    reasons = [reason for _, reason in outcome.refused]
    assert len(reasons) == 5
    assert any("future" in r for r in reasons) and any("non-negative" in r for r in reasons)
    assert any("unknown meter" in r for r in reasons) and any("time zone" in r for r in reasons)


def test_coming_back_online_and_manual_reads_are_audited(org: Any) -> None:
    register_read_record(meter=org.meter, read_at=T0, source="poll", total=Decimal("1"))
    for _ in range(3):
        meter_link_poll_failed(meter=org.meter, at=T0 + Q, error="timeout")
    assert MeterLink.objects.get(meter=org.meter).online is False
    register_reads_record_batch(
        reads=[
            ReadInput(org.meter.pk, T0 + 2 * Q, Decimal("1.5")),
            ReadInput(org.meter.pk, T0 + 3 * Q, Decimal("1.6"), source="manual"),
        ],
        actor="gateway",
    )
    assert (
        AuditEvent.objects.filter(action="meter.online", object_id=str(org.meter.pk)).count() == 1
    )
    assert AuditEvent.objects.filter(action="meter.read_manual").count() == 1
    assert MeterLink.objects.get(meter=org.meter).online is True


steps = st.lists(
    st.tuples(
        st.integers(0, 48 * 4),  # quarter hours after T0 (repeats and late arrivals happen)
        st.one_of(st.integers(0, 300), st.integers(-200, -1), st.integers(5_000, 99_999_999)),
        st.booleans(),  # jump near the top of the register (rollover)
    ),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps, st.integers(1, 50), st.lists(st.integers(1, 8), min_size=1, max_size=6))
def test_batches_give_exactly_the_intervals_of_one_by_one(
    org: Any, steps: list[tuple[int, int, bool]], multiplier: int, cuts: list[int]
) -> None:
    single, batched = org.meter, org.free_meter
    Interval.objects.filter(meter__in=[single, batched]).delete()
    RegisterRead.objects.filter(meter__in=[single, batched]).delete()
    MeterLink.objects.filter(meter__in=[single, batched]).delete()
    for meter in (single, batched):
        meter.multiplier = multiplier
        meter.save(update_fields=["multiplier"])
    total = Decimal("500.00")
    plan: list[tuple[Any, Decimal]] = []
    for quarter, step, high in steps:
        total = (Decimal("999990.00") if high else total) + Decimal(step) / 100
        total = total % Decimal(1_000_000) if total >= 0 else Decimal(0)
        plan.append((T0 + quarter * Q, total))
    for at, value in plan:
        register_read_record(meter=single, read_at=at, source="poll", total=value)
    inputs = [ReadInput(batched.pk, at, value) for at, value in plan]
    position, index = 0, 0
    while position < len(inputs):  # split into batches of the drawn sizes
        size = cuts[index % len(cuts)]
        register_reads_record_batch(reads=inputs[position : position + size])
        position, index = position + size, index + 1
    assert intervals_of(batched) == intervals_of(single)
    a = MeterLink.objects.get(meter=single)
    b = MeterLink.objects.get(meter=batched)
    assert (a.last_read_at, a.last_total, a.online) == (b.last_read_at, b.last_total, b.online)
