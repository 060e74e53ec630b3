"""Demo data for wallets: provider keys (generated), a balance policy with default tariffs,
an e-mail channel, and recharges and daily deductions so that balances, alarms, days of
credit left and the finance pages have something to show (the dormitory's deductions are
made up; the mall's and the tower's come from their meters, ``demo_month_end``).
Deterministic given the seed.
"""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from meterpay.apps.billing import services as billing
from meterpay.apps.customers.models import Account
from meterpay.apps.notifications.models import NotificationChannel
from meterpay.apps.organisations.models import Organisation
from meterpay.apps.payments import services as payments
from meterpay.apps.payments.online import demo_providers_create
from meterpay.apps.supply.models import BalancePolicy
from meterpay.apps.tariffs.services import default_tariffs_create
from meterpay.core.ledger import ChargeType

DEMO_ELECTRICITY_TARIFF = {
    "format": "meterpay-tariff/1",
    "id": "demo-electricity",
    "name": "Demo electricity, single price",
    "currency": "CNY",
    "commodity": "electricity",
    "versions": [
        {
            "effective_from": "2024-01-01T00:00:00",
            "energy": {"periods": [{"name": "flat", "price": "0.6800"}]},
        }
    ],
}
DEMO_WATER_TARIFF = {
    "format": "meterpay-tariff/1",
    "id": "demo-water",
    "name": "Demo water",
    "currency": "CNY",
    "commodity": "water",
    "versions": [{"effective_from": "2024-01-01T00:00:00", "water": {"price": "3.64"}}],
}


@transaction.atomic
def demo_wallets_seed(*, actor: Any, organisation: Organisation, seed: int = 77) -> int:
    """Returns how many ledger entries were posted."""
    rng = random.Random(seed)
    demo_providers_create(actor=actor, organisation=organisation)
    BalancePolicy.objects.update_or_create(
        organisation=organisation,
        defaults={
            "alarm_thresholds_minor": [5000, 2000, 500],
            "restore_threshold_minor": 0,
            "reminder_days": Decimal("3.0"),
        },
    )
    default_tariffs_create(
        actor=actor,
        organisation=organisation,
        electricity=DEMO_ELECTRICITY_TARIFF,
        water=DEMO_WATER_TARIFF,
    )
    NotificationChannel.objects.create(
        organisation=organisation,
        kind=NotificationChannel.Kind.EMAIL,
        name="Front desk mailbox",
        target="frontdesk@riverside.example",
    )
    posted = 0
    today = timezone.localdate()
    tz = timezone.get_current_timezone()
    accounts = Account.objects.filter(
        organisation=organisation, status=Account.Status.OPEN
    ).order_by("pk")
    unmetered = set(
        accounts.filter(rooms__kind="dormitory").values_list("pk", flat=True).distinct()
    )
    faked = 0
    for index, account in enumerate(accounts):
        amount = Decimal(rng.choice([50, 100, 100, 200, 300, 500]))
        payments.recharge_record(
            actor=actor,
            account=account,
            amount=amount,
            channel="cash" if index % 3 else "bank_transfer",
            idempotency_key=f"demo-opening-{account.pk}",
            reference=f"demo opening {account.number}",
        )
        posted += 1
        if index % 3 == 0:  # bank transfers: most confirmed, a few left for finance to confirm
            recharge = account.recharges.get()
            if index % 9:
                payments.recharge_confirm(actor=actor, recharge=recharge)
        if account.pk not in unmetered or faked >= 60:
            continue  # the mall and the tower have metered history (demo_month_end)
        faked += 1
        for days_ago in range(7, 0, -1):
            day = today - timedelta(days=days_ago)
            cost = Decimal(rng.randint(150, 1400)) / 100
            billing.deduction_post(
                actor="rating",
                account=account,
                lines=[(ChargeType.ENERGY, cost)],
                reference=f"demo/{day.isoformat()}",
                occurred_at=datetime.combine(day, time(23, 30), tz),
            )
            posted += 1
    return posted
