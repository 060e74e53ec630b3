"""Batch ingestion: the same intervals as recording the reads one by one, in one transaction."""

from __future__ import annotations

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meterpay.apps.audit.models import AuditEvent
from meterpay.apps.meters.models import Meter
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


def forget(*meters: Any) -> None:
    """No reads, intervals or links: each example starts afresh."""
    Interval.objects.filter(meter__in=meters).delete()
    RegisterRead.objects.filter(meter__in=meters).delete()
    MeterLink.objects.filter(meter__in=meters).delete()


def plan_of(steps: list[tuple[int, int, bool]]) -> list[tuple[Any, Decimal]]:
    """(moment, register) of each drawn step: up, down, a jump, or near the top (rollover)."""
    total = Decimal("500.00")
    plan: list[tuple[Any, Decimal]] = []
    for quarter, step, high in steps:
        total = (Decimal("999990.00") if high else total) + Decimal(step) / 100
        total = total % Decimal(1_000_000) if total >= 0 else Decimal(0)
        plan.append((T0 + quarter * Q, total))
    return plan


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
    forget(single, batched)
    for meter in (single, batched):
        meter.multiplier = multiplier
        meter.save(update_fields=["multiplier"])
    plan = plan_of(steps)
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


def test_duplicates_in_one_batch_and_across_batches_are_stored_once(org: Any) -> None:
    a, b = org.meter, org.free_meter
    first = register_reads_record_batch(
        reads=[
            ReadInput(a.pk, T0, Decimal("10")),
            ReadInput(a.pk, T0, Decimal("99")),  # the same moment again: the first one stands
            ReadInput(b.pk, T0, Decimal("20")),
            ReadInput(a.pk, T0 + Q, Decimal("11")),
        ]
    )
    assert (first.stored, first.duplicates, first.intervals) == (3, 1, 1)
    assert first.deductible_meters == (a.pk,)  # b has no account
    second = register_reads_record_batch(
        reads=[
            ReadInput(a.pk, T0 + Q, Decimal("11")),
            ReadInput(b.pk, T0, Decimal("20")),
            ReadInput(b.pk, T0 + Q, Decimal("21")),
            ReadInput(b.pk, T0 + Q, Decimal("21")),
        ]
    )
    assert (second.stored, second.duplicates, second.intervals) == (1, 3, 1)
    assert second.deductible_meters == ()
    assert RegisterRead.objects.get(meter=a, read_at=T0).total == Decimal("10")
    assert RegisterRead.objects.filter(meter__in=[a, b]).count() == 4
    assert [i[4] for i in intervals_of(a)] == [Decimal("1")]


def test_a_late_read_older_than_the_stored_newest_is_stored_but_derives_nothing(org: Any) -> None:
    register_reads_record_batch(
        reads=[ReadInput(org.meter.pk, T0 + i * Q, Decimal(10 + i)) for i in (0, 2)]
    )
    late = register_reads_record_batch(reads=[ReadInput(org.meter.pk, T0 + Q, Decimal("10.5"))])
    assert (late.stored, late.duplicates, late.intervals) == (1, 0, 0)
    link = MeterLink.objects.get(meter=org.meter)
    assert link.last_read_at == T0 + 2 * Q and link.last_total == Decimal("12")


def test_a_batch_of_many_meters_locks_creates_and_updates_every_link(org: Any) -> None:
    extra = [
        Meter.objects.create(
            organisation=org.org,
            kind="water",
            protocol="cjt188",
            address=f"{70_000 + n:014d}",
            gateway=org.gateway,
            multiplier=1 + n % 3,
        )
        for n in range(40)
    ]
    reads = [
        ReadInput(m.pk, T0 + r * Q, Decimal(100 + n) + Decimal(r) / 10)
        for r in range(3)
        for n, m in enumerate(extra)
    ]
    outcome = register_reads_record_batch(reads=reads)
    assert (outcome.stored, outcome.intervals, outcome.booked) == (120, 80, 80)
    assert outcome.deductible_meters == ()  # meters without accounts
    links = {link.meter_id: link for link in MeterLink.objects.filter(meter__in=extra)}
    assert len(links) == 40 and all(link.online for link in links.values())
    assert links[extra[7].pk].last_total == Decimal("107.2")
    # consumption = register delta x multiplier
    assert {i[4] for i in intervals_of(extra[2])} == {Decimal("0.3")}


interleaved = st.lists(
    st.tuples(
        st.integers(0, 2),  # which meter
        st.integers(0, 24 * 4),  # quarter hours after T0
        st.one_of(st.integers(0, 300), st.integers(-200, -1), st.integers(5_000, 99_999_999)),
        st.booleans(),
    ),
    min_size=1,
    max_size=30,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(interleaved, st.lists(st.integers(1, 12), min_size=1, max_size=4))
def test_batches_of_several_meters_give_the_intervals_of_one_by_one(
    org: Any, steps: list[tuple[int, int, int, bool]], cuts: list[int]
) -> None:
    pairs = []
    for n in range(3):
        pair = []
        for side in ("single", "batched"):
            meter, _ = Meter.objects.get_or_create(
                organisation=org.org,
                address=f"{80_000 + n * 10 + (side == 'batched'):012d}",
                defaults={
                    "kind": "electricity_1p",
                    "protocol": "dlt645",
                    "gateway": org.gateway,
                    "multiplier": 1 + n * 19,
                },
            )
            pair.append(meter)
        pairs.append(pair)
    every = [m for pair in pairs for m in pair]
    Interval.objects.filter(meter__in=every).delete()
    RegisterRead.objects.filter(meter__in=every).delete()
    MeterLink.objects.filter(meter__in=every).delete()
    totals = [Decimal("500.00")] * 3
    plan: list[tuple[int, Any, Decimal]] = []
    for which, quarter, step, high in steps:
        total = (Decimal("999990.00") if high else totals[which]) + Decimal(step) / 100
        totals[which] = total % Decimal(1_000_000) if total >= 0 else Decimal(0)
        plan.append((which, T0 + quarter * Q, totals[which]))
    for which, at, value in plan:
        register_read_record(meter=pairs[which][0], read_at=at, source="poll", total=value)
    inputs = [ReadInput(pairs[which][1].pk, at, value) for which, at, value in plan]
    position, index = 0, 0
    while position < len(inputs):
        size = cuts[index % len(cuts)]
        register_reads_record_batch(reads=inputs[position : position + size])
        position, index = position + size, index + 1
    for single, batched in pairs:
        assert intervals_of(batched) == intervals_of(single)
        reads = ["read_at", "total", "source"]
        assert list(
            RegisterRead.objects.filter(meter=batched).order_by("read_at").values_list(*reads)
        ) == list(RegisterRead.objects.filter(meter=single).order_by("read_at").values_list(*reads))
        a = MeterLink.objects.filter(meter=single).first()
        b = MeterLink.objects.filter(meter=batched).first()
        assert (a is None) == (b is None)
        if a is not None and b is not None:
            assert (a.last_read_at, a.last_total, a.online) == (
                b.last_read_at,
                b.last_total,
                b.online,
            )


def test_array_literals_reach_postgresql_unchanged() -> None:
    from django.db import connection

    from meterpay.apps.readings.services import _array_literal

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL array literals")
    texts = ["", "plain", 'a "quoted" {brace}, comma', "back\\slash", "NULL", None, "中文"]
    shanghai = dt_timezone(timedelta(hours=8))
    moments = [T0, None, T0 + Q, datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=shanghai)]
    amounts = [Decimal("1.2345"), None, Decimal("999999.9999"), Decimal("1E+2"), Decimal(0)]
    counts = [0, None, 3, 2**40]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT %s::varchar[], %s::timestamptz[], %s::numeric[], %s::boolean[], %s::int8[]",
            [
                _array_literal(texts),
                _array_literal(moments),
                _array_literal(amounts),
                _array_literal([True, None, False]),
                _array_literal(counts),
            ],
        )
        row = cursor.fetchone()
    assert row == (texts, moments, amounts, [True, None, False], counts)


def history_of_link(meter: Any) -> Any:
    from meterpay.apps.readings.services import _history_of

    return _history_of(MeterLink.objects.get(meter=meter))


def history_of_reads(meter: Any) -> Any:
    from meterpay.apps.readings.services import _histories

    return _histories([meter.pk])[meter.pk]


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps, st.lists(st.integers(0, 8), min_size=1, max_size=6))
def test_mixing_both_paths_gives_the_intervals_of_one_by_one_and_the_links_history(
    org: Any, steps: list[tuple[int, int, bool]], cuts: list[int]
) -> None:
    """The batch path trusts the link's copy of the history; the single path keeps it too.

    A cut of 0 records one read by the single path; others, that many by a batch.
    """
    single, mixed = org.meter, org.free_meter
    forget(single, mixed)
    plan = plan_of(steps)
    for at, value in plan:
        register_read_record(meter=single, read_at=at, source="poll", total=value)
    position, index = 0, 0
    while position < len(plan):
        size = cuts[index % len(cuts)]
        if size == 0:
            at, value = plan[position]
            register_read_record(meter=mixed, read_at=at, source="poll", total=value)
            position += 1
        else:
            chunk = plan[position : position + size]
            register_reads_record_batch(reads=[ReadInput(mixed.pk, at, v) for at, v in chunk])
            position += size
        index += 1
        assert history_of_link(mixed) == history_of_reads(mixed)
    assert intervals_of(mixed) == intervals_of(single)
    assert history_of_link(single) == history_of_reads(single)


@pytest.mark.parametrize("path", ["single", "batch"])
def test_a_lost_link_is_made_again_with_the_history_of_the_reads(org: Any, path: str) -> None:
    meter = org.free_meter
    register_reads_record_batch(
        reads=[
            ReadInput(meter.pk, T0, Decimal("100")),
            ReadInput(meter.pk, T0 + Q, Decimal("101")),
            ReadInput(meter.pk, T0 + 2 * Q, Decimal("9000")),  # a spike: no good read
        ]
    )
    expected = history_of_reads(meter)
    assert history_of_link(meter) == expected
    assert expected.good is not None and expected.good.total == Decimal("101")
    MeterLink.objects.filter(meter=meter).delete()
    if path == "single":
        register_read_record(meter=meter, read_at=T0 + 3 * Q, source="poll", total=Decimal("102"))
    else:
        register_reads_record_batch(reads=[ReadInput(meter.pk, T0 + 3 * Q, Decimal("102"))])
    last = Interval.objects.filter(meter=meter).order_by("end_at").last()
    assert last is not None and (last.start_at, last.status) == (T0 + Q, "gap")
    assert history_of_link(meter) == history_of_reads(meter)


def test_the_migration_copies_every_links_history_from_its_reads(org: Any) -> None:
    from importlib import import_module

    from django.apps import apps

    migration = import_module("meterpay.apps.readings.migrations.0004_link_history")
    meter = org.free_meter
    register_reads_record_batch(
        reads=[ReadInput(meter.pk, T0 + i * Q, Decimal(100 + i)) for i in range(3)]
    )
    register_reads_record_batch(reads=[ReadInput(meter.pk, T0 + 3 * Q, Decimal("0"))])  # fell
    expected = history_of_reads(meter)
    MeterLink.objects.filter(meter=meter).update(
        last_read_id=None, good_read_id=None, good_read_at=None, good_total=None
    )
    migration.histories_from_reads(apps, None)
    assert history_of_link(meter) == expected
    assert expected.newest != expected.good  # the fallen read is the newest, not a good one
