"""The roll-ups on the database: advanced from what was stored, exactly once, whatever the
batch size and the order rows became visible in; rebuilt to the same numbers."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db.models import Sum

from meterpay.apps.billing.deductions import deductions_run
from meterpay.apps.payments.services import recharge_record
from meterpay.apps.readings.models import Interval
from meterpay.apps.reports.models import (
    CostDay,
    CostMonth,
    MeterDay,
    MeterHour,
    MeterMonth,
    RollupCursor,
)
from meterpay.apps.reports.services import rollups_advance, rollups_catch_up, rollups_rebuild
from meterpay.apps.tariffs.services import default_tariffs_create
from meterpay.core.reports.rollup import FIGURES
from meterpay.core.reports.tou import TouClassifier
from meterpay.core.tariffs import parse_tariff
from tests.reports.helpers import TOU_TARIFF, booked, deducted, local, read_series

pytestmark = pytest.mark.django_db

MAR = date(2026, 3, 1)
APR = date(2026, 4, 1)


@pytest.fixture
def month(org: Any) -> Any:
    """A meter read every 15 minutes through March (one read missed: a gap), on a TOU tariff,
    deducted as the deductions path does."""
    default_tariffs_create(actor="t", organisation=org.org, electricity=TOU_TARIFF)
    type(org.account).objects.filter(pk=org.account.pk).update(opened_at=local(date(2026, 2, 1)))
    recharge_record(
        actor="t", account=org.account, amount="5000.00", channel="cash", idempotency_key="r1"
    )
    read_series(
        org.meter,
        start=local(MAR),
        end=local(APR, 1),
        skip=[local(date(2026, 3, 10), 3, 15), local(date(2026, 3, 10), 3, 30)],
    )
    deductions_run()
    return org


def sums(model: Any, **where: Any) -> dict[str, int]:
    found = model.objects.filter(**where).aggregate(**{f: Sum(f) for f in FIGURES})
    return {f: int(v or 0) for f, v in found.items()}


def cost(model: Any, **where: Any) -> int:
    return int(model.objects.filter(**where).aggregate(s=Sum("amount_minor"))["s"] or 0)


def test_buckets_hold_every_interval_once_with_the_engine_periods(month: Any) -> None:
    done = rollups_advance()
    intervals = Interval.objects.filter(meter=month.meter)
    assert done.intervals == intervals.count() and done.caught_up
    hours = sums(MeterHour, meter_id=month.meter.pk)
    assert sums(MeterDay, meter_id=month.meter.pk) == hours
    assert sums(MeterMonth, meter_id=month.meter.pk) == hours
    since, until = local(date(2026, 2, 1)), local(date(2026, 5, 1))
    assert Decimal(hours["quantity"]) / 10000 == booked([month.meter.pk], since, until)
    assert hours["intervals"] == intervals.count()
    assert hours["estimated"] == intervals.filter(status="gap").count() == 1
    # every kWh in a period, by its local start, as the engine classifies it
    classifier = TouClassifier(parse_tariff(TOU_TARIFF))
    expected = dict.fromkeys(("sharp", "peak", "flat", "valley"), Decimal(0))
    for interval in intervals.filter(booked=True):
        start = interval.start_at.astimezone(local(MAR).tzinfo).replace(tzinfo=None)
        expected[classifier.period(start)] += interval.consumption
    assert {k: Decimal(hours[k]) / 10000 for k in expected} == expected
    assert hours["other"] == 0
    # the interval ending at midnight on 1 April counts in March, as on the bill
    march = MeterMonth.objects.get(meter_id=month.meter.pk, month=MAR)
    assert Decimal(march.quantity) / 10000 == booked([month.meter.pk], local(MAR), local(APR))
    assert MeterMonth.objects.get(meter_id=month.meter.pk, month=APR).intervals == 4
    # cost: what the ledger's deductions took, per day and month, by the (start, end] rule
    assert cost(CostMonth, account_id=month.account.pk) == deducted(month.account.pk, since, until)
    assert cost(CostMonth, account_id=month.account.pk, month=MAR) == deducted(
        month.account.pk, local(MAR), local(APR)
    )
    assert cost(CostDay, account_id=month.account.pk) == cost(
        CostMonth, account_id=month.account.pk
    )
    assert set(CostDay.objects.values_list("meter_id", "utility")) == {(month.meter.pk, "e")}
    # nothing new: nothing changes
    assert rollups_advance().intervals == 0
    assert sums(MeterHour, meter_id=month.meter.pk) == hours


def test_small_batches_give_the_same_buckets(month: Any) -> None:
    while not rollups_advance(batch=97).caught_up:
        pass
    small = {
        model: sorted(model.objects.values_list(*[f.attname for f in model._meta.concrete_fields]))
        for model in (MeterHour, MeterDay, MeterMonth, CostDay, CostMonth)
    }
    for model in small:
        model.objects.all().delete()
    RollupCursor.objects.all().delete()
    rollups_catch_up()
    for model, rows in small.items():
        assert (
            sorted(model.objects.values_list(*[f.attname for f in model._meta.concrete_fields]))
            == rows
        )


def test_rows_that_become_visible_late_are_taken_once(month: Any) -> None:
    ids = list(
        Interval.objects.filter(meter=month.meter).order_by("pk").values_list("pk", flat=True)
    )
    late = Interval.objects.filter(pk__in=ids[100:150])
    hidden = list(late)
    late.delete()  # as if their transaction had not committed yet
    rollups_advance()
    gaps = [g[:2] for g in RollupCursor.objects.get(name="intervals").gaps]
    assert [ids[100], ids[149]] in gaps
    Interval.objects.bulk_create(hidden)  # it commits
    assert rollups_advance().intervals == 50
    gaps = [g[:2] for g in RollupCursor.objects.get(name="intervals").gaps]
    assert all(high < ids[0] for _, high in gaps)  # only the ids before the first row
    total = sums(MeterHour, meter_id=month.meter.pk)
    assert total["intervals"] == len(ids)
    assert rollups_advance().intervals == 0


def test_a_gap_that_never_fills_is_given_up(month: Any) -> None:
    ids = list(Interval.objects.order_by("pk").values_list("pk", flat=True))
    Interval.objects.filter(pk=ids[5]).delete()  # rolled back: the id never turns up
    rollups_advance()
    assert [ids[5], ids[5]] in [g[:2] for g in RollupCursor.objects.get(name="intervals").gaps]
    with time_machine.travel(local(date(2030, 1, 1))):
        rollups_advance()
    assert RollupCursor.objects.get(name="intervals").gaps == []


def test_rebuild_gives_what_the_advance_gave(month: Any) -> None:
    rollups_catch_up()
    before = {
        model: sorted(model.objects.values_list(*[f.attname for f in model._meta.concrete_fields]))
        for model in (MeterHour, MeterDay, MeterMonth, CostDay, CostMonth)
    }
    done = rollups_rebuild(account=month.account, start=date(2026, 3, 5), end=date(2026, 3, 20))
    assert done.meters == 1 and done.intervals == 15 * 96 - 2  # two reads missed: one gap
    rollups_rebuild(meter=month.meter, start=MAR, end=APR + timedelta(days=1))
    after = {
        model: sorted(model.objects.values_list(*[f.attname for f in model._meta.concrete_fields]))
        for model in before
    }
    assert after == before


@pytest.mark.django_db(transaction=True)
def test_a_second_run_skips_while_one_holds_the_cursors() -> None:
    import threading

    from django.db import connection, connections, transaction

    if connection.vendor != "postgresql":
        pytest.skip("SQLite has one writer: a second run waits for the first")
    rollups_advance()  # the cursors exist
    locked, done = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                list(RollupCursor.objects.select_for_update())
                locked.set()
                done.wait(10)
        finally:
            connections.close_all()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert locked.wait(10)
        assert rollups_advance().skipped
    finally:
        done.set()
        thread.join()
    assert not rollups_advance().skipped
