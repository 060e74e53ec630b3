"""PostgreSQL: batch deductions running beside recharges and other batches (each thread with its
own connection) lose nothing, post each period once and do not deadlock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from meterpay.apps.billing.deductions import meter_deduct, meters_deduct_batch
from meterpay.apps.billing.demo import DEMO_ELECTRICITY_TARIFF
from meterpay.apps.customers import services as customers
from meterpay.apps.customers.models import Account
from meterpay.apps.ledger.models import JournalEntry, Wallet
from meterpay.apps.ledger.selectors import ledger_mismatches, unbalanced_entries
from meterpay.apps.meters import services as meters
from meterpay.apps.meters.models import Meter
from meterpay.apps.payments.services import recharge_record
from meterpay.apps.readings import services as readings
from meterpay.apps.sites import services as sites
from meterpay.apps.supply.models import BalancePolicy
from meterpay.apps.tariffs.services import default_tariffs_create
from tests.factories import build_org
from tests.ledger.test_concurrency import run_threads

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks"),
]


def test_batches_recharges_and_single_meters_at_once_lose_nothing() -> None:
    org = build_org("batch-conc", 930)
    BalancePolicy.objects.create(organisation=org.org)
    default_tariffs_create(actor="t", organisation=org.org, electricity=DEMO_ELECTRICITY_TARIFF)
    accounts: list[Account] = []
    for n in range(6):
        room = sites.room_create(
            actor="t", floor=org.floor, number=f"9{n}", kind="shop", area_m2=Decimal(10)
        )
        meter = meters.meter_create(
            actor="t",
            organisation=org.org,
            kind="electricity_1p",
            protocol="dlt645",
            address=f"{9300 + n:012d}",
            gateway=org.gateway,
            room=room,
        )
        accounts.append(
            customers.account_open_new(
                actor="t", customer=org.customer, rooms=[room], meters=[meter]
            )
        )
    start = timezone.now().replace(microsecond=0) - timedelta(hours=6)
    Account.objects.filter(organisation=org.org).update(opened_at=start - timedelta(hours=1))
    ids = list(
        Meter.objects.filter(account__in=accounts).order_by("pk").values_list("pk", flat=True)
    )
    for hour in range(5):
        for meter in Meter.objects.filter(pk__in=ids):
            readings.register_read_record(
                meter=meter,
                read_at=start + timedelta(hours=hour),
                source="poll",
                total=Decimal(100 + 10 * hour),
                expected_interval=timedelta(hours=1),
            )
    jobs: list[Callable[[], Any]] = []
    for i in range(4):  # overlapping batches, in both orders
        jobs.append(lambda i=i: meters_deduct_batch(meter_ids=ids if i % 2 else ids[::-1]))
        jobs.append(lambda i=i: meter_deduct(meter=Meter(pk=ids[i])))
    for i, account in enumerate(accounts):
        jobs.append(
            lambda i=i, account=account: recharge_record(
                actor="t", account=account, amount="50.00", channel="cash", idempotency_key=f"c{i}"
            )
        )
    results = run_threads(jobs)
    assert not [r for r in results if isinstance(r, Exception)], results
    # 4 intervals of 10 kWh x 0.68 per meter, posted once whoever got there first
    assert JournalEntry.objects.filter(kind="deduction").count() == len(ids)
    for account in accounts:
        assert Wallet.objects.get(account=account).balance_minor == 5000 - 4 * 680
    assert ledger_mismatches() == [] and unbalanced_entries() == []
