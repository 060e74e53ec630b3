"""Meter-side accounts: recharges move on to the meter, failures come back, energy refunds."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meterpay.apps.control import credit
from meterpay.apps.control.models import BalanceDiscrepancy, MeterBalance, MeterCommand
from meterpay.apps.control.services import meter_command_claim
from meterpay.apps.customers.models import Account
from meterpay.apps.ledger.models import JournalEntry, Posting, Wallet
from meterpay.apps.ledger.services import wallet_for
from meterpay.apps.payments.meter_credit import (
    energy_refund_request,
    meter_side_view,
    on_meter_minor,
    wallet_download,
)
from meterpay.apps.payments.refunds import refund_payout
from meterpay.apps.payments.services import recharge_confirm, recharge_record
from meterpay.apps.supply.services import wallet_evaluate
from tests.factories import build_org

pytestmark = pytest.mark.django_db


def meter_side_org(slug: str = "msw", base: int = 620) -> Any:
    org = build_org(slug, base)
    Account.objects.filter(pk=org.account.pk).update(billing_side=Account.BillingSide.METER)
    org.account.refresh_from_db()
    return org


@pytest.fixture
def org() -> Any:
    return meter_side_org()


def cash(org: Any, amount: str = "50.00", key: str = "r-1") -> Any:
    return recharge_record(
        actor=org.users["finance"],
        account=org.account,
        amount=amount,
        channel="cash",
        idempotency_key=key,
    )[0]


def wallet_minor(org: Any) -> int:
    return Wallet.objects.get(account=org.account).balance_minor


def run(
    command: MeterCommand, *, before: int, after: int | None, remaining: int = 0, left: int = 0
) -> None:
    """What the gateway does: claim, read, send, read; ``after`` None: the meter refused."""
    meter_command_claim(command_id=command.command_id, worker="t")
    number = credit.meter_credit_checked(
        command_id=command.command_id, at=timezone.now(), sent=False, purchase_count=before
    )
    assert number == before + 1
    credit.meter_credit_checked(
        command_id=command.command_id,
        at=timezone.now(),
        sent=True,
        purchase_count=before if after is None else after,
        remaining_before_minor=remaining,
        remaining_after_minor=left,
        refused=after is None,
    )


def test_a_recharge_is_downloaded_in_the_same_transaction_and_once(org: Any) -> None:
    cash(org)
    cash(org)  # a replay
    command = MeterCommand.objects.get(kind="credit_download")
    assert (command.meter_id, command.amount_minor, command.requested_by) == (
        org.meter.pk,
        5000,
        "recharge",
    )
    assert wallet_minor(org) == 0 and on_meter_minor(org.account) == 5000
    moved = JournalEntry.objects.get(kind="meter_credit")
    assert moved.reference == f"command:{command.command_id}" and moved.wallet_amount == -5000


def test_platform_side_recharges_stay_in_the_wallet() -> None:
    org = build_org("psw", 630)
    cash(org)
    assert not MeterCommand.objects.filter(kind="credit_download").exists()
    assert wallet_minor(org) == 5000


def test_a_confirmed_bank_transfer_is_downloaded_then(org: Any) -> None:
    recharge, _ = recharge_record(
        actor=org.users["finance"],
        account=org.account,
        amount="30.00",
        channel="bank_transfer",
        idempotency_key="b-1",
    )
    assert not MeterCommand.objects.exists()
    recharge_confirm(actor=org.users["finance"], recharge=recharge)
    assert MeterCommand.objects.get().amount_minor == 3000


def test_a_failed_download_comes_back_to_the_wallet_and_can_be_sent_again(org: Any) -> None:
    cash(org)
    command = MeterCommand.objects.get()
    run(command, before=3, after=None)
    assert MeterCommand.objects.get(pk=command.pk).status == "failed"
    assert wallet_minor(org) == 5000 and on_meter_minor(org.account) == 0
    again = wallet_download(
        actor=org.users["finance"], account=org.account, idempotency_key="again"
    )
    assert again.amount_minor == 5000 and wallet_minor(org) == 0
    with pytest.raises(ValidationError):
        wallet_download(actor=org.users["finance"], account=org.account, idempotency_key="empty")


def test_energy_refund_credits_what_the_meter_confirmed_as_a_refund_owed(org: Any) -> None:
    cash(org)
    run(MeterCommand.objects.get(), before=3, after=4)
    refund = energy_refund_request(
        actor=org.users["finance"], account=org.account, idempotency_key="out"
    )
    assert wallet_minor(org) == 0  # nothing moves before the meter confirms
    run(refund, before=4, after=5, remaining=3210)  # 17.90 were used on the meter
    assert MeterCommand.objects.get(pk=refund.pk).confirmed_amount_minor == 3210
    owed = JournalEntry.objects.get(kind="refund")
    assert owed.wallet_amount == -3210
    assert owed.postings.get(amount__lt=0).ledger_account.code == "refunds_payable"
    assert wallet_minor(org) == 0
    assert on_meter_minor(org.account) == 5000 - 3210  # used energy on the meter
    paid = refund_payout(actor=org.users["finance"], entry=owed, channel="cash")
    assert paid.kind == "refund_payout"


def test_energy_refund_is_for_meter_side_accounts_only() -> None:
    org = build_org("pse", 640)
    with pytest.raises(ValidationError):
        energy_refund_request(actor=org.users["finance"], account=org.account, idempotency_key="x")


def test_no_platform_cut_off_for_meter_side_accounts(org: Any) -> None:
    with transaction.atomic():
        decision = wallet_evaluate(wallet=wallet_for(org.account), now=timezone.now())
    assert decision.action.value == "nothing"
    assert not MeterCommand.objects.filter(kind="relay_trip").exists()


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(
        st.tuples(st.integers(min_value=1, max_value=99_999), st.booleans()),
        min_size=1,
        max_size=4,
    )
)
def test_downloads_that_fail_or_land_keep_the_ledger_balanced(
    org: Any, steps: list[tuple[int, bool]]
) -> None:
    """Wallet + on the meter = what was paid in; the wallet holds exactly the failed ones."""
    run_id = uuid.uuid4().hex[:8]  # examples share the database
    wallet_before = wallet_minor(org) if Wallet.objects.filter(account=org.account).exists() else 0
    on_meter_before = on_meter_minor(org.account)
    for index, (cents, applied) in enumerate(steps):
        cash(org, str(Decimal(cents).scaleb(-2)), f"{run_id}-{index}")
        command = MeterCommand.objects.filter(kind="credit_download").order_by("-id").first()
        assert command is not None and command.amount_minor == cents
        count = MeterBalance.objects.get(meter=org.meter).confirmed_count or 3
        run(command, before=count, after=count + 1 if applied else None)
    failed = sum(cents for cents, applied in steps if not applied)
    landed = sum(cents for cents, applied in steps if applied)
    assert wallet_minor(org) == wallet_before + failed
    assert on_meter_minor(org.account) == on_meter_before + landed
    sums = Posting.objects.values("entry").annotate(total=Sum("amount"))
    assert all(row["total"] == 0 for row in sums)


def test_a_timed_out_download_the_meter_did_apply_is_confirmed_by_a_later_read(org: Any) -> None:
    credit.meter_balances_reported(
        reports=[credit.BalanceReport(org.meter.pk, 0, 3, timezone.now())]
    )
    cash(org, "10.00", "first")
    run(MeterCommand.objects.get(), before=3, after=4, left=1000)  # confirmed count 4
    cash(org, "50.00", "second")
    command = MeterCommand.objects.filter(kind="credit_download").latest("id")
    meter_command_claim(command_id=command.command_id, worker="t")
    assert (
        credit.meter_credit_checked(
            command_id=command.command_id, at=timezone.now(), sent=False, purchase_count=4
        )
        == 5
    )
    MeterCommand.objects.filter(pk=command.pk).update(attempts=4)  # the last attempt
    credit.meter_credit_checked(
        command_id=command.command_id, at=timezone.now(), sent=True, purchase_count=None
    )
    assert MeterCommand.objects.get(pk=command.pk).status == "timed_out"
    assert wallet_minor(org) == 5000  # the money came back
    credit.meter_balances_reported(
        reports=[credit.BalanceReport(org.meter.pk, 6000, 5, timezone.now())]
    )
    command.refresh_from_db()
    assert command.status == "confirmed" and "a later read" in command.outcome
    assert wallet_minor(org) == 0 and on_meter_minor(org.account) == 6000
    assert not BalanceDiscrepancy.objects.exists()


def test_without_a_meter_to_download_to_the_recharge_stays_in_the_wallet(org: Any) -> None:
    from meterpay.apps.meters import services as meters
    from meterpay.apps.meters.models import Meter

    mqtt = meters.gateway_create(
        actor="t", site=org.site, identifier="MQ-msw", kind="mqtt", protocol="dlt645"
    )
    Meter.objects.filter(pk=org.meter.pk).update(gateway=mqtt)
    recharge = cash(org)
    assert recharge.status == "paid"
    assert wallet_minor(org) == 5000
    assert not MeterCommand.objects.exists()
    view = meter_side_view(org.account)
    assert view is not None and view.meter is None
