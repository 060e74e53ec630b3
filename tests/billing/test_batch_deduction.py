"""The batch deduction path posts exactly what the per-meter path posts.

The same random readings (tariff changes, TOU boundaries, yearly tiers, a month boundary,
several meters on one account, suspended and meter-side accounts) are deducted once meter by
meter with ``meter_deduct`` and once with ``meters_deduct_batch``, each in a transaction that
is rolled back afterwards, and everything they wrote is compared.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from meterpay.apps.audit.models import AuditEvent
from meterpay.apps.billing import deductions
from meterpay.apps.billing.deductions import meters_deduct, meters_deduct_batch
from meterpay.apps.billing.demo import DEMO_ELECTRICITY_TARIFF, DEMO_WATER_TARIFF
from meterpay.apps.billing.models import DeductionState
from meterpay.apps.control.models import MeterCommand
from meterpay.apps.customers import services as customers
from meterpay.apps.customers.models import Account
from meterpay.apps.ledger.models import JournalEntry, Posting, Wallet
from meterpay.apps.ledger.selectors import ledger_mismatches
from meterpay.apps.meters import services as meters
from meterpay.apps.meters.models import Meter
from meterpay.apps.notifications.models import Notification
from meterpay.apps.payments.services import recharge_record
from meterpay.apps.readings import services as readings
from meterpay.apps.readings.models import RegisterRead
from meterpay.apps.sites import services as sites
from meterpay.apps.supply.models import BalancePolicy
from meterpay.apps.tariffs import services as tariffs
from meterpay.apps.tariffs.services import default_tariffs_create

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent.parent / "core" / "tariffs" / "fixtures"
SHANGHAI = ZoneInfo("Asia/Shanghai")
#: Local 20:00 on the last day of January: the readings cross the TOU windows, midnight and
#: the month boundary, where an assignment changes tariff.
START = datetime(2026, 1, 31, 20, 0, tzinfo=SHANGHAI)
MONTH = datetime(2026, 2, 1, 0, 0, tzinfo=SHANGHAI)


class _Rollback(Exception):
    pass


def _document(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def _account(org: Any, number: str, kinds: list[str], **options: Any) -> tuple[Account, list]:
    room = sites.room_create(
        actor="t", floor=org.floor, number=number, kind="shop", area_m2=Decimal("42.50")
    )
    created = [
        meters.meter_create(
            actor="t",
            organisation=org.org,
            kind=kind,
            protocol="cjt188" if kind == "water" else "dlt645",
            address=f"{int(number) * 10 + index:012d}"
            if kind != "water"
            else f"{int(number) * 10 + index:014d}",
            gateway=org.gateway,
            room=room,
        )
        for index, kind in enumerate(kinds)
    ]
    account = customers.account_open_new(
        actor="t", customer=org.customer, rooms=[room], meters=created, **options
    )
    return account, created


def _recharge(account: Account, amount: str) -> None:
    recharge_record(
        actor="t", account=account, amount=amount, channel="cash", idempotency_key=f"o{account.pk}"
    )


@pytest.fixture
def world(org: Any) -> dict[str, Any]:
    """Accounts of every kind the deduction meets; returns their meters' ids."""
    BalancePolicy.objects.create(
        organisation=org.org,
        alarm_thresholds_minor=[5000, 2000, 500],
        night_start=None,
        night_end=None,
        protect_weekends=False,
        protect_holidays=False,
    )
    default_tariffs_create(
        actor="t",
        organisation=org.org,
        electricity=DEMO_ELECTRICITY_TARIFF,
        water=DEMO_WATER_TARIFF,
    )
    tou = tariffs.tariff_create(
        actor="t", organisation=org.org, document=_document("cn_residential_annual_tou.json")
    )
    flat = tariffs.tariff_create(
        actor="t",
        organisation=org.org,
        document={**DEMO_ELECTRICITY_TARIFF, "id": "flat-080", "name": "Flat 0.80"}
        | {
            "versions": [
                {
                    "effective_from": "2024-01-01T00:00:00",
                    "energy": {"periods": [{"name": "flat", "price": "0.8000"}]},
                },
                {  # a new version of the same tariff from the month boundary
                    "effective_from": "2026-02-01T00:00:00",
                    "energy": {"periods": [{"name": "flat", "price": "0.9000"}]},
                },
            ]
        },
    )
    water = tariffs.tariff_create(
        actor="t", organisation=org.org, document=_document("water_stepped.json")
    )
    sites.holidays_add(actor="t", site=org.site, days=[(MONTH.date(), "a holiday")])
    opened = START - timedelta(days=2)
    _recharge(org.account, "20.00")  # default tariff, crosses the alarms and is cut off
    tou_account, tou_meters = _account(org, "201", ["electricity_1p"])
    tariffs.account_tariff_assign(
        actor="t",
        account=tou_account,
        tariff=tou,
        effective_from=opened,
        tier_thresholds=["3", "6"],
    )
    _recharge(tou_account, "30.00")
    change, change_meters = _account(org, "202", ["electricity_1p"])
    tariffs.account_tariff_assign(actor="t", account=change, tariff=flat, effective_from=opened)
    _recharge(change, "15.00")
    # another tariff from the month boundary: the new tariff accumulates afresh from there
    moved, moved_meters = _account(org, "206", ["electricity_1p"])
    tariffs.account_tariff_assign(actor="t", account=moved, tariff=flat, effective_from=opened)
    tariffs.account_tariff_assign(
        actor="t", account=moved, tariff=tou, effective_from=MONTH, tier_threshold_scale="0.01"
    )
    _recharge(moved, "15.00")
    several, several_meters = _account(org, "203", ["electricity_1p", "water", "electricity_3p"])
    tariffs.account_tariff_assign(actor="t", account=several, tariff=water, effective_from=opened)
    _recharge(several, "5000.00")  # several meters: well above every alarm
    suspended, suspended_meters = _account(org, "204", ["electricity_1p"])
    _recharge(suspended, "10.00")
    customers.account_suspend(actor="t", account=suspended)
    _, meter_side_meters = _account(
        org, "205", ["electricity_1p"], billing_side=Account.BillingSide.METER
    )
    Account.objects.filter(organisation=org.org).update(opened_at=opened)
    return {
        "meters": [
            org.meter.pk,
            *(m.pk for m in tou_meters + change_meters + several_meters + moved_meters),
            *(m.pk for m in suspended_meters + meter_side_meters),
        ],
        "skipped": [m.pk for m in suspended_meters + meter_side_meters],
        "accounts": [org.account.pk, tou_account.pk, change.pk, several.pk, moved.pk],
        "moved": moved_meters[0].pk,
    }


def _play(meter_ids: list[int], seed: int, deduct: Any) -> None:
    """Rounds of random readings, each followed by a deduction of every meter."""
    rng = random.Random(seed)
    totals = dict.fromkeys(meter_ids, Decimal(100))
    clocks = dict.fromkeys(meter_ids, START - timedelta(hours=1))
    rows = list(Meter.objects.filter(pk__in=meter_ids).order_by("pk"))
    for meter in rows:  # the baseline reads
        readings.register_read_record(
            meter=meter, read_at=clocks[meter.pk], source="poll", total=totals[meter.pk]
        )
    for _ in range(6):
        for meter in rows:
            if rng.random() < 0.25:
                continue
            for _ in range(rng.randint(1, 3)):
                clocks[meter.pk] += timedelta(minutes=rng.choice([15, 30, 60, 90]))
                totals[meter.pk] += Decimal(rng.randint(0, 400)) / 100
                readings.register_read_record(
                    meter=meter,
                    read_at=clocks[meter.pk],
                    source="poll",
                    total=totals[meter.pk],
                    expected_interval=timedelta(hours=2),
                )
        deduct(meter_ids)


def _snapshot(accounts: list[int]) -> dict[str, Any]:
    entries = JournalEntry.objects.filter(account_id__in=accounts, kind="deduction")
    return {
        "entries": sorted(
            (
                e.idempotency_key,
                e.occurred_at,
                e.memo,
                e.reference,
                e.account_id,
                e.wallet_amount,
                e.currency,
                e.actor_label,
                tuple(
                    Posting.objects.filter(entry=e)
                    .order_by("ledger_account__code")
                    .values_list("ledger_account__code", "amount")
                ),
            )
            for e in entries
        ),
        "wallets": sorted(
            (
                w.account_id,
                w.balance_minor,
                w.supply,
                {k: v["sent_count"] for k, v in w.alarm_history.items()},
                w.cut_deferred,
            )
            for w in Wallet.objects.filter(account_id__in=accounts)
        ),
        "states": sorted(
            DeductionState.objects.values_list("account_id", "meter_id", "state", "rated_until"),
            key=repr,
        ),
        "notifications": sorted(
            Notification.objects.filter(account_id__in=accounts).values_list(
                "account_id", "kind", "level", "subject"
            ),
            key=repr,
        ),
        "commands": sorted(
            MeterCommand.objects.values_list("meter_id", "kind", "reason"), key=repr
        ),
        "audit": Counter(
            AuditEvent.objects.filter(action__startswith="ledger.deduction").values_list(
                "action", "actor_label"
            )
        ),
        "mismatches": ledger_mismatches(),
    }


def _run(world: dict[str, Any], seed: int, deduct: Any) -> dict[str, Any]:
    try:
        with transaction.atomic():
            _play(world["meters"], seed, deduct)
            snapshot = _snapshot(world["accounts"])
            raise _Rollback
    except _Rollback:
        pass
    return snapshot


def _each_meter(meter_ids: list[int]) -> None:
    deductions._each_meter(sorted(meter_ids))  # meter_deduct, each meter on its own


def _batch(meter_ids: list[int]) -> None:
    meters_deduct_batch(meter_ids=meter_ids)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_batch_path_posts_what_the_per_meter_path_posts(world: Any, seed: int) -> None:
    one_by_one = _run(world, seed, _each_meter)
    batched = _run(world, seed, _batch)
    assert len(one_by_one["entries"]) > 10  # the scenario really deducts
    assert one_by_one["mismatches"] == [] and batched["mismatches"] == []
    for part in one_by_one:
        assert batched[part] == one_by_one[part], part
    skipped = set(world["skipped"])
    assert not any(meter in skipped for _, meter, _, _ in batched["states"])


def test_tariff_change_tou_and_cut_off_really_happen(world: Any) -> None:
    """The scenario exercises what the comparison is about (else it could pass vacuously)."""
    result = _run(world, 1, _batch)
    assert any(kind == "cut_off" for _, kind, _, _ in result["notifications"])
    assert any(kind == "relay_trip" for _, kind, _ in result["commands"])
    memos = [entry[2] for entry in result["entries"]]
    assert any("interval(s)" in memo for memo in memos)
    states = {meter: state for _, meter, state, _ in result["states"]}
    assert len(states) == 7  # every platform meter of an open account, not the skipped ones


@pytest.mark.parametrize("deduct", [_each_meter, _batch], ids=["per-meter", "batch"])
def test_an_account_moved_to_another_tariff_goes_on_being_rated(world: Any, deduct: Any) -> None:
    meter = Meter.objects.get(pk=world["moved"])
    for hour, total in ((-2, "100"), (-1, "103")):  # before the move: the first tariff
        readings.register_read_record(
            meter=meter,
            read_at=MONTH + timedelta(hours=hour),
            source="poll",
            total=Decimal(total),
            expected_interval=timedelta(hours=1),
        )
    deduct([meter.pk])
    before = DeductionState.objects.get(meter=meter)
    for hour, total in ((1, "105"), (2, "109")):  # after the move: the second tariff
        readings.register_read_record(
            meter=meter,
            read_at=MONTH + timedelta(hours=hour),
            source="poll",
            total=Decimal(total),
            expected_interval=timedelta(hours=1),
        )
    deduct([meter.pk])
    after = DeductionState.objects.get(meter=meter)
    assert after.rated_until == MONTH + timedelta(hours=2)
    assert before.state["tariff_id"] != after.state["tariff_id"]  # the new tariff's state
    assert JournalEntry.objects.filter(
        kind="deduction", account_id=meter.account_id, occurred_at__gt=MONTH
    ).exists()
    assert ledger_mismatches() == []


def test_a_second_run_posts_nothing_and_a_replayed_period_posts_once(world: Any) -> None:
    _play(world["meters"], 4, _batch)
    assert meters_deduct_batch(meter_ids=world["meters"]) == []
    saved = list(DeductionState.objects.values_list("pk", "state", "rated_until"))
    meter = Meter.objects.get(pk=world["meters"][0])
    last = RegisterRead.objects.filter(meter=meter).latest("read_at")
    readings.register_read_record(
        meter=meter,
        read_at=last.read_at + timedelta(hours=1),
        source="poll",
        total=last.total + 2,
        expected_interval=timedelta(hours=2),
    )
    posted = meters_deduct_batch(meter_ids=world["meters"])
    assert len(posted) == 1
    balances = list(Wallet.objects.order_by("pk").values_list("balance_minor", flat=True))
    for pk, state, rated_until in saved:  # the states as before (e.g. an old copy restored)
        DeductionState.objects.filter(pk=pk).update(state=state, rated_until=rated_until)
    assert meters_deduct_batch(meter_ids=world["meters"]) == []  # the stored entry, once
    assert JournalEntry.objects.filter(idempotency_key=posted[0].idempotency_key).count() == 1
    assert list(Wallet.objects.order_by("pk").values_list("balance_minor", flat=True)) == balances
    assert ledger_mismatches() == []


def test_statements_do_not_grow_with_the_number_of_meters(org: Any) -> None:
    BalancePolicy.objects.create(organisation=org.org)
    default_tariffs_create(actor="t", organisation=org.org, electricity=DEMO_ELECTRICITY_TARIFF)
    ids = []
    for n in range(12):
        account, created = _account(org, str(300 + n), ["electricity_1p"])
        _recharge(account, "1000.00")
        ids.append(created[0].pk)
    Account.objects.filter(organisation=org.org).update(opened_at=START - timedelta(days=1))
    rows = list(Meter.objects.filter(pk__in=ids).order_by("pk"))
    for hour in range(3):
        for meter in rows:
            readings.register_read_record(
                meter=meter,
                read_at=START + timedelta(hours=hour),
                source="poll",
                total=Decimal(100 + hour),
                expected_interval=timedelta(hours=1),
            )

    def statements(meter_ids: list[int]) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert len(meters_deduct_batch(meter_ids=meter_ids)) == len(meter_ids)
        return len(queries)

    statements(ids[:1])  # the first deduction ever also creates the revenue ledger account
    few = statements(ids[1:4])
    many = statements(ids[4:])
    assert many == few
    assert few <= 25  # 21 today: states, intervals, terms, wallets, bulk writes


def test_meters_deduct_counts_posted_meters(world: Any) -> None:
    _play(world["meters"], 5, lambda ids: None)
    posted = meters_deduct(meter_ids=world["meters"] * 2)
    assert posted == JournalEntry.objects.filter(kind="deduction").count() > 0
