"""PostgreSQL: concurrent recharges, deductions and notification replays from several threads
(each with its own connection) lose nothing and never credit twice."""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, connections
from django.utils import timezone

from meterpay.apps.billing.services import deduction_post
from meterpay.apps.ledger.models import JournalEntry, Wallet
from meterpay.apps.ledger.selectors import ledger_mismatches, unbalanced_entries
from meterpay.apps.payments.models import Recharge
from meterpay.apps.payments.online import (
    demo_providers_create,
    online_order_create,
    payment_notification_receive,
    simulate_payment,
)
from meterpay.apps.payments.services import recharge_record
from meterpay.core.ledger import ChargeType, IdempotencyConflict
from tests.factories import build_org

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks"),
]


def run_threads(jobs: list[Callable[[], Any]]) -> list[Any]:
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)

    def work(index: int) -> None:
        try:
            barrier.wait()
            results[index] = jobs[index]()
        except Exception as exc:
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_concurrent_recharges_and_deductions_lose_nothing() -> None:
    org = build_org("conc", 900)
    account = org.account
    jobs: list[Callable[[], Any]] = []
    for i in range(12):
        jobs.append(
            lambda i=i: recharge_record(
                actor="t",
                account=account,
                amount=Decimal("10.00"),
                channel="cash",
                idempotency_key=f"r{i}",
            )
        )
        jobs.append(
            lambda i=i: deduction_post(
                actor="t",
                account=account,
                lines=[(ChargeType.ENERGY, Decimal("1.25"))],
                reference=f"d{i}",
                occurred_at=timezone.now(),
            )
        )
    results = run_threads(jobs)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert Wallet.objects.get(account=account).balance_minor == 12 * 1000 - 12 * 125
    assert ledger_mismatches() == [] and unbalanced_entries() == []


def test_concurrent_replays_of_one_key_credit_once() -> None:
    org = build_org("replay", 910)
    account = org.account
    jobs: list[Callable[[], Any]] = [
        lambda: recharge_record(
            actor="t", account=account, amount="25.00", channel="cash", idempotency_key="same"
        )
        for _ in range(10)
    ]
    jobs.append(
        lambda: recharge_record(
            actor="t", account=account, amount="26.00", channel="cash", idempotency_key="same"
        )
    )
    results = run_threads(jobs)
    errors = [r for r in results if isinstance(r, Exception)]
    assert all(isinstance(e, IdempotencyConflict) for e in errors)
    assert Recharge.objects.count() == 1
    assert Wallet.objects.get(account=account).balance_minor in (2500, 2600)
    assert JournalEntry.objects.filter(kind="recharge").count() == 1


def test_concurrent_notification_replays_credit_once() -> None:
    org = build_org("notify", 920)
    demo_providers_create(actor="t", organisation=org.org)
    order = online_order_create(actor="t", account=org.account, amount="40.00", provider="wechat")
    sim = simulate_payment(order=order)
    jobs: list[Callable[[], Any]] = [
        lambda: payment_notification_receive(kind="wechat", headers=sim.headers, body=sim.body)
        for _ in range(16)
    ]
    results = run_threads(jobs)
    outcomes = sorted(r.outcome for r in results)
    assert outcomes.count("credited") == 1 and outcomes.count("replay") == 15, outcomes
    assert Wallet.objects.get(account=org.account).balance_minor == 4000
