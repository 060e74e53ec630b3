"""Property tests: random movement sequences keep the books balanced and wallets exact."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from meterpay.core.ledger import (
    Channel,
    ChargeType,
    InsufficientBalance,
    JournalEntry,
    NothingToPost,
    build_deduction,
    build_fee,
    build_recharge,
    build_refund,
    build_reversal,
    build_settlement,
    make_idempotency_key,
    posting_sums,
    postings_of,
    validate_postings,
    wallet_account,
    wallet_balance,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)
WALLETS = ["A-1", "A-2", "A-3"]

cents = st.integers(min_value=1, max_value=500_000)
# Sub-fen amounts exercise the per-line half-up rounding.
line_amounts = st.decimals(min_value=0, max_value=2000, places=4, allow_nan=False)
wallet_ids = st.sampled_from(WALLETS)
channels = st.sampled_from([Channel.CASH, Channel.BANK_TRANSFER, Channel.WECHAT, Channel.ALIPAY])

operations = st.one_of(
    st.tuples(st.just("recharge"), wallet_ids, cents, channels),
    st.tuples(
        st.just("deduct"),
        wallet_ids,
        st.lists(st.tuples(st.sampled_from(list(ChargeType)), line_amounts), max_size=4),
    ),
    st.tuples(st.just("fee"), wallet_ids, cents),
    st.tuples(st.just("refund"), wallet_ids, st.one_of(st.none(), cents), channels),
    st.tuples(st.just("reverse"), st.integers(min_value=0, max_value=10_000)),
    st.tuples(
        st.just("settle"),
        wallet_ids,
        st.lists(st.tuples(st.sampled_from(list(ChargeType)), line_amounts), max_size=2),
        channels,
    ),
)


@dataclass
class Books:
    entries: list[JournalEntry] = field(default_factory=list)
    model: dict[str, int] = field(default_factory=lambda: dict.fromkeys(WALLETS, 0))
    reversed_keys: set[str] = field(default_factory=set)

    def post(self, entry: JournalEntry) -> None:
        self.entries.append(entry)
        for posting in entry.postings:
            if posting.account.startswith("wallet:"):
                self.model[posting.account.removeprefix("wallet:")] -= posting.amount

    def balance(self, wallet: str) -> int:
        return wallet_balance(postings=postings_of(self.entries), account_id=wallet)


def apply(books: Books, step: int, op: tuple[object, ...]) -> None:
    at = T0 + timedelta(minutes=step)
    ref = f"op-{step}"
    kind = op[0]
    if kind == "recharge":
        _, wallet, amount, channel = op
        books.post(
            build_recharge(
                account_id=str(wallet),
                amount=Decimal(int(amount)) / 100,
                channel=channel,
                reference=ref,
                occurred_at=at,
            )
        )
    elif kind == "deduct":
        _, wallet, lines = op
        # A sequence of lines that all round to zero makes no entry at all.
        with contextlib.suppress(NothingToPost):
            books.post(
                build_deduction(account_id=str(wallet), lines=lines, reference=ref, occurred_at=at)
            )
    elif kind == "fee":
        _, wallet, amount = op
        books.post(
            build_fee(
                account_id=str(wallet),
                amount=Decimal(int(amount)) / 100,
                fee_code="late",
                reference=ref,
                occurred_at=at,
            )
        )
    elif kind == "refund":
        _, wallet, amount, channel = op
        available = books.balance(str(wallet))
        wants = available if amount is None else int(amount)
        try:
            entry = build_refund(
                account_id=str(wallet),
                available_minor=available,
                amount=None if amount is None else Decimal(int(amount)) / 100,
                channel=channel,
                reference=ref,
                occurred_at=at,
            )
        except InsufficientBalance:
            assert wants > available or available <= 0
            return
        assert 0 < wants <= available
        books.post(entry)
    elif kind == "reverse":
        candidates = [e for e in books.entries if e.idempotency_key not in books.reversed_keys]
        if not candidates:
            return
        original = candidates[int(op[1]) % len(candidates)]
        books.reversed_keys.add(original.idempotency_key)
        books.post(build_reversal(original=original, occurred_at=at, reason="test"))
    elif kind == "settle":
        _, wallet, charges, channel = op
        result = build_settlement(
            account_id=str(wallet),
            available_minor=books.balance(str(wallet)),
            final_charges=charges,
            reference=ref,
            occurred_at=at,
            refund_channel=channel,
        )
        for entry in result.entries:
            books.post(entry)
        assert books.balance(str(wallet)) == 0
        assert result.refund_minor >= 0 and result.arrears_minor >= 0
        assert not (result.refund_minor and result.arrears_minor)


@settings(max_examples=150, deadline=None)
@given(st.lists(operations, max_size=40))
def test_random_movements_keep_books_balanced(ops: list[tuple[object, ...]]) -> None:
    books = Books()
    for step, op in enumerate(ops):
        apply(books, step, op)
        for wallet in WALLETS:
            # The wallet balance is what the model says, and is minus its posting sum.
            code = wallet_account(wallet).code
            signed = sum(
                v
                for (acct, _), v in posting_sums(postings=postings_of(books.entries)).items()
                if acct == code
            )
            assert books.balance(wallet) == books.model[wallet] == -signed
    for entry in books.entries:
        validate_postings(entry.postings)
        assert all(isinstance(p.amount, int) and p.amount != 0 for p in entry.postings)
    assert sum(posting_sums(postings=postings_of(books.entries)).values()) == 0
    keys = [entry.idempotency_key for entry in books.entries]
    assert len(keys) == len(set(keys)), "one key per movement"


parts = st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=3)
movements = st.sampled_from(["recharge", "deduction", "fee", "refund", "reversal"])


@given(movements, parts, movements, parts)
def test_keys_are_equal_exactly_when_inputs_are(
    m1: str, p1: list[str], m2: str, p2: list[str]
) -> None:
    k1 = make_idempotency_key(movement=m1, parts=p1)
    k2 = make_idempotency_key(movement=m2, parts=p2)
    assert (k1 == k2) == ((m1, p1) == (m2, p2))


@given(wallet_ids, cents, channels, st.text(min_size=1, max_size=10))
def test_recharge_key_depends_on_channel_and_reference_only(
    wallet: str, amount: int, channel: Channel, reference: str
) -> None:
    def build(wallet: str, amount: int) -> JournalEntry:
        return build_recharge(
            account_id=wallet,
            amount=Decimal(amount) / 100,
            channel=channel,
            reference=reference,
            occurred_at=T0,
        )

    assert build(wallet, amount).idempotency_key == build("A-9", amount + 1).idempotency_key


@given(st.integers(min_value=-(10**9), max_value=10**9), cents)
def test_refund_never_exceeds_the_balance(available: int, amount: int) -> None:
    try:
        entry = build_refund(
            account_id="A-1",
            available_minor=available,
            amount=Decimal(amount) / 100,
            channel=Channel.CASH,
            reference="r",
            occurred_at=T0,
        )
    except InsufficientBalance:
        assert amount > available
    else:
        assert amount <= available
        assert available - wallet_balance(postings=[], account_id="A-1") - amount >= 0
        assert -wallet_balance(postings=entry.postings, account_id="A-1") == amount
