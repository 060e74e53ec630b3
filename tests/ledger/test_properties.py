"""Property test: any sequence of recharges, deductions, fees, refunds, reversals and
settlement keeps every entry balanced and every wallet equal to minus its postings."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meterpay.apps.billing.services import deduction_post, entry_reverse, fee_charge
from meterpay.apps.billing.settlement import account_settle
from meterpay.apps.ledger.models import JournalEntry, Posting, Wallet
from meterpay.apps.ledger.selectors import ledger_mismatches, unbalanced_entries
from meterpay.apps.ledger.services import WalletError
from meterpay.apps.payments.refunds import refund_record
from meterpay.apps.payments.services import recharge_record
from meterpay.core.ledger import ChargeType

amounts = st.integers(min_value=1, max_value=50_000).map(lambda n: Decimal(n) / 100)
operation = st.one_of(
    st.tuples(st.just("recharge"), amounts, st.integers(0, 5)),
    st.tuples(st.just("deduct"), amounts, st.integers(0, 5)),
    st.tuples(st.just("fee"), amounts, st.integers(0, 5)),
    st.tuples(st.just("refund"), st.one_of(st.none(), amounts), st.integers(0, 5)),
    st.tuples(st.just("reverse"), st.none(), st.integers(0, 30)),
)


@pytest.mark.django_db
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(operation, min_size=1, max_size=25), close=st.booleans())
def test_random_sequences_keep_the_ledger_balanced(org: Any, ops: Any, close: bool) -> None:
    account = org.account
    expected = (
        Wallet.objects.filter(account=account).values_list("balance_minor", flat=True).first() or 0
    )
    run = uuid.uuid4().hex[:8]  # examples share the database: keys unique per example
    for step, (kind, amount, key) in enumerate(ops):
        ref = f"{run}-{step}-{key}"
        try:
            if kind == "recharge":
                recharge_record(
                    actor="p",
                    account=account,
                    amount=amount,
                    channel="cash",
                    idempotency_key=f"h{ref}",
                )
            elif kind == "deduct":
                deduction_post(
                    actor="p",
                    account=account,
                    lines=[(ChargeType.ENERGY, amount)],
                    reference=ref,
                    occurred_at=timezone.now(),
                )
            elif kind == "fee":
                fee_charge(actor="p", account=account, amount=amount, fee_code="f", reference=ref)
            elif kind == "refund":
                refund_record(
                    actor="p", account=account, amount=amount, channel="cash", idempotency_key=ref
                )
            else:
                entries = list(
                    JournalEntry.objects.filter(account=account).exclude(kind="reversal")
                )
                if entries:
                    entry_reverse(actor="p", entry=entries[key % len(entries)], reason="test")
        except WalletError:
            pass  # e.g. a refund above the balance: refused, nothing posted
        wallet = Wallet.objects.filter(account=account).first()
        if wallet is not None:
            postings = (
                Posting.objects.filter(ledger_account=wallet.ledger_account).aggregate(
                    s=Sum("amount")
                )["s"]
                or 0
            )
            assert wallet.balance_minor == -postings
            assert wallet.balance_minor >= min(expected, wallet.balance_minor)  # sanity, types
    if close and account.status == "open":
        account_settle(actor="p", account=account, reference=f"c{run}")
        assert Wallet.objects.get(account=account).balance_minor == 0
    assert ledger_mismatches() == []
    assert unbalanced_entries() == []
