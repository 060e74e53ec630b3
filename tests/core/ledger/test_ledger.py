"""Ledger rules: postings, entries, account chart and the standard movements as T-accounts."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from meterpay.core.ledger import (
    BANK,
    CASH,
    REFUNDS_PAYABLE,
    AccountKind,
    Channel,
    ChargeType,
    IdempotencyConflict,
    InsufficientBalance,
    InvalidAmount,
    InvalidPosting,
    JournalEntry,
    LedgerAccount,
    LedgerError,
    NothingToPost,
    Posting,
    Side,
    UnbalancedEntry,
    balances,
    build_deduction,
    build_fee,
    build_recharge,
    build_recharge_from_notification,
    build_refund,
    build_refund_payout,
    build_reversal,
    build_settlement,
    channel_account,
    check_replay,
    clearing_account,
    make_idempotency_key,
    parse_account,
    payment_idempotency_key,
    postings_of,
    receivable_account,
    revenue_account,
    wallet_account,
    wallet_balance,
)
from meterpay.core.payments import PaymentNotification, PaymentStatus

T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
WALLET = "wallet:A-1"


def t_account(entry: JournalEntry) -> dict[str, int]:
    return {p.account: p.amount for p in entry.postings}


def recharge(amount: str = "100.00", reference: str = "R1") -> JournalEntry:
    return build_recharge(
        account_id="A-1",
        amount=Decimal(amount),
        channel=Channel.CASH,
        reference=reference,
        occurred_at=T0,
    )


# --- postings and entries ----------------------------------------------------------------


@pytest.mark.parametrize("amount", [1.5, True, Decimal("1"), "100", 0])
def test_posting_rejects_non_int_or_zero(amount: object) -> None:
    with pytest.raises(InvalidPosting):
        Posting("cash", amount)  # type: ignore[arg-type]


def test_posting_rejects_unknown_account_and_currency() -> None:
    with pytest.raises(InvalidPosting):
        Posting("petty_cash", 100)
    with pytest.raises(InvalidPosting):
        Posting("wallet", 100)  # a wallet needs its customer account
    with pytest.raises(InvalidPosting):
        Posting("cash:drawer", 100)  # cash takes no qualifier
    with pytest.raises(InvalidPosting):
        Posting("cash", 100, "XBT")


def test_posting_side_follows_the_sign() -> None:
    assert Posting("cash", 5).side is Side.DEBIT
    assert Posting("cash", -5).side is Side.CREDIT


@pytest.mark.parametrize(
    "postings",
    [
        (Posting("cash", 100),),
        (Posting("cash", 100), Posting(WALLET, -99)),
        (Posting("cash", 100, "CNY"), Posting(WALLET, -100, "USD")),
        (),
    ],
)
def test_entry_must_balance_in_one_currency(postings: tuple[Posting, ...]) -> None:
    with pytest.raises(UnbalancedEntry):
        JournalEntry(idempotency_key="k", occurred_at=T0, memo="", postings=postings)


def test_entry_needs_aware_time_key_and_tuple() -> None:
    postings = (Posting("cash", 100), Posting(WALLET, -100))
    with pytest.raises(LedgerError):
        JournalEntry(
            idempotency_key="k", occurred_at=datetime(2025, 1, 1), memo="", postings=postings
        )
    with pytest.raises(LedgerError):
        JournalEntry(idempotency_key="", occurred_at=T0, memo="", postings=postings)
    with pytest.raises(LedgerError):
        JournalEntry(idempotency_key="k", occurred_at=T0, memo="", postings=list(postings))  # type: ignore[arg-type]


def test_more_than_two_postings_balance() -> None:
    entry = JournalEntry(
        idempotency_key="k",
        occurred_at=T0,
        memo="",
        postings=(
            Posting(WALLET, 300),
            Posting("revenue:energy", -200),
            Posting("revenue:water", -100),
        ),
    )
    assert entry.currency == "CNY"


# --- chart of accounts -------------------------------------------------------------------


def test_account_codes_round_trip() -> None:
    for account in [
        wallet_account("A-1001"),
        receivable_account("A-1001"),
        revenue_account(ChargeType.BASIC_CHARGE),
        clearing_account("wechat"),
        clearing_account("forward.acme"),
        CASH,
        BANK,
        REFUNDS_PAYABLE,
    ]:
        assert parse_account(account.code) == account


def test_normal_sides() -> None:
    assert wallet_account("A").normal_side is Side.CREDIT
    assert revenue_account(ChargeType.ENERGY).normal_side is Side.CREDIT
    assert REFUNDS_PAYABLE.normal_side is Side.CREDIT
    assert CASH.normal_side is Side.DEBIT
    assert clearing_account("alipay").normal_side is Side.DEBIT
    assert receivable_account("A").normal_side is Side.DEBIT


def test_qualifier_cannot_smuggle_a_separator() -> None:
    with pytest.raises(InvalidPosting):
        LedgerAccount(AccountKind.WALLET, "A:1")


def test_channel_accounts() -> None:
    assert channel_account(channel=Channel.CASH).code == "cash"
    assert channel_account(channel=Channel.BANK_TRANSFER).code == "bank"
    assert channel_account(channel=Channel.WECHAT).code == "clearing:wechat"
    assert channel_account(channel=Channel.ALIPAY).code == "clearing:alipay"
    forwarding = channel_account(channel=Channel.FORWARDING, forwarding_provider="acme")
    assert forwarding.code == "clearing:forward.acme"
    with pytest.raises(LedgerError):
        channel_account(channel=Channel.FORWARDING)
    with pytest.raises(LedgerError):
        channel_account(channel=Channel.CASH, forwarding_provider="acme")


# --- standard movements ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "source"),
    [
        (Channel.CASH, "cash"),
        (Channel.BANK_TRANSFER, "bank"),
        (Channel.WECHAT, "clearing:wechat"),
        (Channel.ALIPAY, "clearing:alipay"),
    ],
)
def test_recharge_debits_channel_credits_wallet(channel: Channel, source: str) -> None:
    entry = build_recharge(
        account_id="A-1", amount=Decimal("100.00"), channel=channel, reference="X", occurred_at=T0
    )
    assert t_account(entry) == {source: 10000, WALLET: -10000}
    assert wallet_balance(postings=entry.postings, account_id="A-1") == 10000
    assert entry.idempotency_key == f"recharge/{source}/X"


def test_recharge_by_forwarding_provider() -> None:
    entry = build_recharge(
        account_id="A-1",
        amount=Decimal("12.34"),
        channel=Channel.FORWARDING,
        forwarding_provider="acme",
        reference="tx/1",
        occurred_at=T0,
        currency="USD",
    )
    assert t_account(entry) == {"clearing:forward.acme": 1234, WALLET: -1234}
    assert entry.currency == "USD"
    assert entry.idempotency_key == "recharge/clearing:forward.acme/tx%2F1"


@pytest.mark.parametrize("amount", ["0", "-1.00", "0.004"])
def test_recharge_must_be_positive(amount: str) -> None:
    with pytest.raises(InvalidAmount):
        recharge(amount)


def test_recharge_refuses_float() -> None:
    with pytest.raises(InvalidAmount):
        build_recharge(
            account_id="A-1",
            amount=1.5,
            channel=Channel.CASH,
            reference="X",
            occurred_at=T0,  # type: ignore[arg-type]
        )


def test_recharge_from_notification_is_keyed_by_provider_transaction() -> None:
    paid_at = datetime(2025, 3, 1, 18, 0, tzinfo=UTC)
    note = PaymentNotification(
        provider="wechat",
        merchant_order_no="MP-1",
        provider_transaction_id="4200001",
        amount_minor=5000,
        currency="CNY",
        paid_at=paid_at,
        status=PaymentStatus.PAID,
        provider_status="SUCCESS",
    )
    entry = build_recharge_from_notification(account_id="A-1", notification=note)
    assert t_account(entry) == {"clearing:wechat": 5000, WALLET: -5000}
    assert entry.occurred_at == paid_at
    assert entry.idempotency_key == payment_idempotency_key(
        provider="wechat", provider_transaction_id="4200001"
    )
    # The same payment notified for another wallet collides on purpose.
    other = build_recharge_from_notification(account_id="A-2", notification=note)
    assert other.idempotency_key == entry.idempotency_key
    with pytest.raises(IdempotencyConflict):
        check_replay(stored=entry, proposed=other)
    # A cash recharge keyed by the same reference is a different event.
    cash = build_recharge(
        account_id="A-1",
        amount=Decimal(50),
        channel=Channel.CASH,
        reference="4200001",
        occurred_at=T0,
    )
    assert cash.idempotency_key != entry.idempotency_key


def test_recharge_from_unpaid_notification_is_refused() -> None:
    note = PaymentNotification(
        provider="alipay",
        merchant_order_no="MP-1",
        provider_transaction_id="2025",
        amount_minor=5000,
        currency="CNY",
        paid_at=None,
        status=PaymentStatus.REFUNDED,
        provider_status="TRADE_SUCCESS",
    )
    with pytest.raises(LedgerError):
        build_recharge_from_notification(account_id="A-1", notification=note)


def test_deduction_rounds_each_line_half_up() -> None:
    entry = build_deduction(
        account_id="A-1",
        lines=[
            (ChargeType.ENERGY, Decimal("1.005")),  # 1.01
            (ChargeType.ENERGY, Decimal("1.004")),  # 1.00
            (ChargeType.WATER, Decimal("0.004")),  # 0.00: dropped
            (ChargeType.BASIC_CHARGE, Decimal("2.50")),
        ],
        reference="meter-17/2025-03-01T10:00",
        occurred_at=T0,
    )
    assert [(p.account, p.amount) for p in entry.postings] == [
        (WALLET, 451),
        ("revenue:energy", -101),
        ("revenue:energy", -100),
        ("revenue:basic_charge", -250),
    ]


def test_deduction_may_overdraw_but_not_be_negative_or_empty() -> None:
    entry = build_deduction(
        account_id="A-1", lines=[(ChargeType.ENERGY, Decimal(500))], reference="p", occurred_at=T0
    )
    postings = [*recharge("10.00").postings, *entry.postings]
    assert wallet_balance(postings=postings, account_id="A-1") == -49000
    with pytest.raises(InvalidAmount):
        build_deduction(
            account_id="A-1",
            lines=[(ChargeType.ENERGY, Decimal(-1))],
            reference="p",
            occurred_at=T0,
        )
    with pytest.raises(NothingToPost):
        build_deduction(
            account_id="A-1",
            lines=[(ChargeType.ENERGY, Decimal("0.001"))],
            reference="p",
            occurred_at=T0,
        )


def test_fee() -> None:
    entry = build_fee(
        account_id="A-1", amount=Decimal("20"), fee_code="card", reference="1", occurred_at=T0
    )
    assert t_account(entry) == {WALLET: 2000, "revenue:fees": -2000}
    assert entry.idempotency_key == "fee/wallet:A-1/card/1"


def test_refund_part_all_and_too_much() -> None:
    part = build_refund(
        account_id="A-1",
        available_minor=10000,
        amount=Decimal("30.00"),
        channel=Channel.WECHAT,
        reference="RF1",
        occurred_at=T0,
    )
    assert t_account(part) == {WALLET: 3000, "clearing:wechat": -3000}
    everything = build_refund(
        account_id="A-1",
        available_minor=7000,
        channel=Channel.CASH,
        reference="RF2",
        occurred_at=T0,
    )
    assert t_account(everything) == {WALLET: 7000, "cash": -7000}
    with pytest.raises(InsufficientBalance):
        build_refund(
            account_id="A-1",
            available_minor=2999,
            amount=Decimal("30.00"),
            channel=Channel.CASH,
            reference="RF3",
            occurred_at=T0,
        )
    with pytest.raises(InsufficientBalance):
        build_refund(
            account_id="A-1",
            available_minor=-5,
            channel=Channel.CASH,
            reference="RF4",
            occurred_at=T0,
        )


def test_refund_payable_then_payout() -> None:
    owed = build_refund(
        account_id="A-1",
        available_minor=10000,
        amount=Decimal("100"),
        channel=Channel.ALIPAY,
        paid_out=False,
        reference="RF1",
        occurred_at=T0,
    )
    assert t_account(owed) == {WALLET: 10000, "refunds_payable": -10000}
    paid = build_refund_payout(
        amount_minor=10000, channel=Channel.ALIPAY, reference="RF1", occurred_at=T0
    )
    assert t_account(paid) == {"refunds_payable": 10000, "clearing:alipay": -10000}
    all_postings = [*recharge().postings, *owed.postings, *paid.postings]
    assert balances(postings=all_postings).get(("refunds_payable", "CNY")) == 0


def test_reversal_mirrors_and_cancels() -> None:
    original = recharge()
    reversal = build_reversal(original=original, occurred_at=T0, reason="wrong wallet")
    assert reversal.idempotency_key == "reversal/recharge%2Fcash%2FR1"
    assert t_account(reversal) == {"cash": -10000, WALLET: 10000}
    sums = balances(postings=postings_of([original, reversal]))
    assert set(sums.values()) == {0}
    with pytest.raises(LedgerError):
        build_reversal(original=original, occurred_at=T0, reason="")


def test_settlement_refunds_the_remainder() -> None:
    result = build_settlement(
        account_id="A-1",
        available_minor=10000,
        final_charges=[
            (ChargeType.ENERGY, Decimal("12.345")),
            (ChargeType.BASIC_CHARGE, Decimal(5)),
        ],
        reference="close-1",
        occurred_at=T0,
        refund_channel=Channel.BANK_TRANSFER,
    )
    assert result.refund_minor == 10000 - 1235 - 500
    assert result.arrears_minor == 0
    charges, refund = result.entries
    assert [(p.account, p.amount) for p in charges.postings] == [
        (WALLET, 1735),
        ("revenue:energy", -1235),
        ("revenue:basic_charge", -500),
    ]
    assert t_account(refund) == {WALLET: 8265, "bank": -8265}
    postings = [*recharge().postings, *postings_of(result.entries)]
    assert wallet_balance(postings=postings, account_id="A-1") == 0


def test_settlement_moves_arrears_to_receivable() -> None:
    result = build_settlement(
        account_id="A-1",
        available_minor=-1000,
        final_charges=[(ChargeType.WATER, Decimal("3"))],
        reference="close-1",
        occurred_at=T0,
    )
    assert result.arrears_minor == 1300
    assert result.refund_minor == 0
    assert t_account(result.entries[-1]) == {"receivable:A-1": 1300, WALLET: -1300}


def test_settlement_at_exactly_zero_posts_nothing_more() -> None:
    result = build_settlement(
        account_id="A-1", available_minor=0, final_charges=[], reference="c", occurred_at=T0
    )
    assert result.entries == ()


def test_check_replay_accepts_a_retry() -> None:
    first = recharge()
    again = build_recharge(
        account_id="A-1",
        amount=Decimal("100"),
        channel=Channel.CASH,
        reference="R1",
        occurred_at=T0,
    )
    check_replay(stored=first, proposed=again)
    with pytest.raises(IdempotencyConflict):
        check_replay(stored=first, proposed=recharge("99.00"))


def test_idempotency_key_parts_are_escaped() -> None:
    a = make_idempotency_key(movement="m", parts=["a/b", "c"])
    b = make_idempotency_key(movement="m", parts=["a", "b/c"])
    assert a != b
    with pytest.raises(LedgerError):
        make_idempotency_key(movement="m", parts=[""])


def test_balances_read_normal_side() -> None:
    entries = [
        recharge(),
        build_deduction(
            account_id="A-1",
            lines=[(ChargeType.ENERGY, Decimal(30))],
            reference="p",
            occurred_at=T0,
        ),
    ]
    got = balances(postings=postings_of(entries))
    assert got[("cash", "CNY")] == 10000
    assert got[(WALLET, "CNY")] == 7000
    assert got[("revenue:energy", "CNY")] == 3000


def test_a_rating_credit_gives_back_to_the_wallet_from_revenue() -> None:
    from meterpay.core.ledger import ChargeType, build_rating_credit

    entry = build_rating_credit(
        account_id="7",
        charge_type=ChargeType.ENERGY,
        amount=Decimal("1.235"),
        reference="meter-3/2026-01-31T00:00:00",
        occurred_at=datetime(2026, 1, 31, tzinfo=UTC),
    )
    assert entry.idempotency_key.startswith("deduction-credit/")
    assert [(p.account, p.amount) for p in entry.postings] == [
        ("revenue:energy", 124),
        ("wallet:7", -124),
    ]
    with pytest.raises(InvalidAmount):
        build_rating_credit(
            account_id="7",
            charge_type=ChargeType.ENERGY,
            amount=Decimal("0.001"),
            reference="r",
            occurred_at=datetime(2026, 1, 31, tzinfo=UTC),
        )
