"""Double-entry ledger rules: accounts, entries, postings and the standard movements.

Sign convention (also in docs/money.md):

- A :class:`Posting` amount is an ``int`` count of the currency's minor unit (fen for CNY).
- **Debit is positive, credit is negative.** Every entry's postings sum to zero.
- An account's *signed sum* is the plain sum of its postings (debit positive).
- An account's *balance* is its signed sum read on its normal side: as is for debit-normal
  accounts (cash, bank, clearing, receivable), negated for credit-normal accounts (wallet,
  revenue, refunds payable). A normal balance is therefore positive.
- A customer wallet is a liability of the platform (credit-normal), so **the wallet balance
  (what the tenant has) is the negative of the sum of its postings**: a recharge of 100.00 CNY
  posts ``-10000`` to the wallet and the wallet balance becomes ``10000``. A wallet in
  overdraft has a negative balance.

Entries are never edited: a correction is a :func:`build_reversal` of the wrong entry followed
by a new, right entry. Every builder derives the entry's idempotency key from the identity of
the business event (never from its amount), so a retried movement produces the same key and
the store can refuse the duplicate; :func:`check_replay` tells a harmless retry from a conflict.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from urllib.parse import quote

from meterpay.core.money import MINOR_UNITS_PER_MAJOR, from_minor, round_money, to_minor
from meterpay.core.payments.types import PaymentNotification, PaymentStatus


class LedgerError(ValueError):
    """Base class of every ledger rule violation."""


class InvalidPosting(LedgerError):
    """A posting that is not an int, is zero, names an unknown account or currency."""


class UnbalancedEntry(LedgerError):
    """An entry whose postings do not sum to zero, mix currencies or are fewer than two."""


class InvalidAmount(LedgerError):
    """An amount a movement cannot take: negative, zero where it must not be, a float."""


class InsufficientBalance(LedgerError):
    """A refund larger than what the wallet holds."""


class NothingToPost(LedgerError):
    """A movement whose every line rounds to zero: there is no entry to make."""


class IdempotencyConflict(LedgerError):
    """The same idempotency key was offered with different postings."""


class Side(StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"


class AccountKind(StrEnum):
    WALLET = "wallet"  # per customer account: prepaid money the platform owes the tenant
    CASH = "cash"  # cash on hand at the service counter
    BANK = "bank"  # the organisation's bank account
    CLEARING = "clearing"  # per payment provider: paid by the tenant, not yet settled to bank
    REVENUE = "revenue"  # per charge type
    REFUNDS_PAYABLE = "refunds_payable"  # refunds decided but not yet paid out
    RECEIVABLE = "receivable"  # per customer account: arrears left at account closure
    ON_METER = "on_meter"  # per customer account: the tenant's money downloaded to the meter


NORMAL_SIDE: dict[AccountKind, Side] = {
    AccountKind.WALLET: Side.CREDIT,
    AccountKind.CASH: Side.DEBIT,
    AccountKind.BANK: Side.DEBIT,
    AccountKind.CLEARING: Side.DEBIT,
    AccountKind.REVENUE: Side.CREDIT,
    AccountKind.REFUNDS_PAYABLE: Side.CREDIT,
    AccountKind.RECEIVABLE: Side.DEBIT,
    AccountKind.ON_METER: Side.CREDIT,
}

# Kinds that exist once per customer account, provider or charge type.
_QUALIFIED = frozenset(
    {
        AccountKind.WALLET,
        AccountKind.CLEARING,
        AccountKind.REVENUE,
        AccountKind.RECEIVABLE,
        AccountKind.ON_METER,
    }
)
# No ':' in a qualifier, so an account code parses back unambiguously.
_QUALIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")


class ChargeType(StrEnum):
    ENERGY = "energy"
    WATER = "water"
    BASIC_CHARGE = "basic_charge"
    DEMAND = "demand"
    SURCHARGE = "surcharge"
    FEES = "fees"
    RENT = "rent"
    PROPERTY_FEE = "property_fee"
    SERVICE_FEE = "service_fee"
    OTHER_CHARGES = "other_charges"
    PUBLIC_SHARE = "public_share"
    LINE_LOSS = "line_loss"
    ADJUSTMENT = "adjustment"


class Channel(StrEnum):
    """How money enters or leaves a wallet."""

    CASH = "cash"
    BANK_TRANSFER = "bank_transfer"
    WECHAT = "wechat"
    ALIPAY = "alipay"
    FORWARDING = "forwarding"  # the customer's own local payment system, via the forwarding API


FORWARDING_PREFIX = "forward."


@dataclass(frozen=True, slots=True)
class LedgerAccount:
    """One account of the chart; ``code`` is how postings name it (``wallet:A-1001``)."""

    kind: AccountKind
    qualifier: str = ""

    def __post_init__(self) -> None:
        if self.kind in _QUALIFIED:
            if not _QUALIFIER.fullmatch(self.qualifier):
                raise InvalidPosting(
                    f"{self.kind} needs a qualifier like 'A-1001', got {self.qualifier!r}"
                )
        elif self.qualifier:
            raise InvalidPosting(f"{self.kind} takes no qualifier")

    @property
    def code(self) -> str:
        return f"{self.kind}:{self.qualifier}" if self.qualifier else str(self.kind)

    @property
    def normal_side(self) -> Side:
        return NORMAL_SIDE[self.kind]


def parse_account(code: str) -> LedgerAccount:
    """``"wallet:A-1001"`` -> ``LedgerAccount(WALLET, "A-1001")``; raise InvalidPosting."""
    kind_text, _, qualifier = code.partition(":")
    try:
        kind = AccountKind(kind_text)
    except ValueError:
        raise InvalidPosting(f"unknown ledger account {code!r}") from None
    return LedgerAccount(kind, qualifier)


CASH = LedgerAccount(AccountKind.CASH)
BANK = LedgerAccount(AccountKind.BANK)
REFUNDS_PAYABLE = LedgerAccount(AccountKind.REFUNDS_PAYABLE)


def wallet_account(account_id: str) -> LedgerAccount:
    return LedgerAccount(AccountKind.WALLET, account_id)


def receivable_account(account_id: str) -> LedgerAccount:
    return LedgerAccount(AccountKind.RECEIVABLE, account_id)


def on_meter_account(account_id: str) -> LedgerAccount:
    return LedgerAccount(AccountKind.ON_METER, account_id)


def revenue_account(charge_type: ChargeType) -> LedgerAccount:
    return LedgerAccount(AccountKind.REVENUE, str(ChargeType(charge_type)))


def clearing_account(provider: str) -> LedgerAccount:
    """Clearing account of a provider: ``wechat``, ``alipay`` or ``forward.<name>``."""
    return LedgerAccount(AccountKind.CLEARING, provider)


def channel_account(*, channel: Channel, forwarding_provider: str | None = None) -> LedgerAccount:
    """The asset account a channel's money sits in."""
    if channel is Channel.FORWARDING:
        if not forwarding_provider:
            raise LedgerError("the forwarding channel needs the forwarding provider's name")
        return clearing_account(FORWARDING_PREFIX + forwarding_provider)
    if forwarding_provider is not None:
        raise LedgerError("only the forwarding channel takes a forwarding provider")
    match channel:
        case Channel.CASH:
            return CASH
        case Channel.BANK_TRANSFER:
            return BANK
        case Channel.WECHAT | Channel.ALIPAY:
            return clearing_account(str(channel))
    raise LedgerError(f"unknown channel {channel!r}")  # pragma: no cover - exhaustive above


@dataclass(frozen=True, slots=True)
class Posting:
    """One line of an entry: ``amount`` minor units, debit positive, credit negative."""

    account: str
    amount: int
    currency: str = "CNY"

    def __post_init__(self) -> None:
        # bool is an int subclass; a True posting is a bug, not one fen.
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise InvalidPosting(f"posting amount must be int minor units, got {self.amount!r}")
        if self.amount == 0:
            raise InvalidPosting(f"zero posting to {self.account}")
        if self.currency not in MINOR_UNITS_PER_MAJOR:
            raise InvalidPosting(f"unknown currency {self.currency!r}")
        parse_account(self.account)

    @property
    def side(self) -> Side:
        return Side.DEBIT if self.amount > 0 else Side.CREDIT


def validate_postings(postings: Sequence[Posting]) -> None:
    """At least two postings, each a :class:`Posting`, one currency, summing to zero."""
    if len(postings) < 2:
        raise UnbalancedEntry("an entry needs at least two postings")
    for posting in postings:
        if not isinstance(posting, Posting):
            raise InvalidPosting(f"not a Posting: {posting!r}")
    currencies = {p.currency for p in postings}
    if len(currencies) != 1:
        raise UnbalancedEntry(f"an entry mixes currencies {sorted(currencies)}")
    total = sum(p.amount for p in postings)
    if total != 0:
        raise UnbalancedEntry(f"postings sum to {total}, not zero")


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """A balanced, immutable set of postings; stored once per ``idempotency_key``."""

    idempotency_key: str
    occurred_at: datetime
    memo: str
    postings: tuple[Posting, ...]

    def __post_init__(self) -> None:
        if not self.idempotency_key:
            raise LedgerError("an entry needs an idempotency key")
        if self.occurred_at.tzinfo is None or self.occurred_at.utcoffset() is None:
            raise LedgerError("occurred_at must be timezone-aware")
        if not isinstance(self.postings, tuple):
            raise LedgerError("postings must be a tuple")
        validate_postings(self.postings)

    @property
    def currency(self) -> str:
        return self.postings[0].currency


# --- idempotency keys ------------------------------------------------------------------


def make_idempotency_key(*, movement: str, parts: Sequence[str]) -> str:
    """``movement/part/part``, each part percent-encoded so that distinct inputs never collide.

    ``/`` and ``%`` inside a part are encoded; ``:`` stays readable for account codes.
    """
    if not movement or "/" in movement:
        raise LedgerError(f"bad movement name {movement!r}")
    for part in parts:
        if not part:
            raise LedgerError(f"empty idempotency key part for {movement}")
    return "/".join([movement, *(quote(part, safe=":-_.@") for part in parts)])


def payment_idempotency_key(*, provider: str, provider_transaction_id: str) -> str:
    """Key of a recharge from an online payment: one per provider transaction, whatever wallet."""
    return make_idempotency_key(
        movement="recharge", parts=[clearing_account(provider).code, provider_transaction_id]
    )


def check_replay(*, stored: JournalEntry, proposed: JournalEntry) -> None:
    """Accept a retry of a stored entry; raise IdempotencyConflict if its postings differ."""
    if stored.idempotency_key != proposed.idempotency_key:
        raise LedgerError("check_replay compares entries with the same idempotency key")
    if sorted(stored.postings, key=_posting_order) != sorted(proposed.postings, key=_posting_order):
        raise IdempotencyConflict(
            f"{stored.idempotency_key} already posted with different postings"
        )


def _posting_order(p: Posting) -> tuple[str, str, int]:
    return (p.account, p.currency, p.amount)


# --- balances --------------------------------------------------------------------------


def postings_of(entries: Iterable[JournalEntry]) -> Iterable[Posting]:
    for entry in entries:
        yield from entry.postings


def posting_sums(*, postings: Iterable[Posting]) -> dict[tuple[str, str], int]:
    """Signed sum (debit positive) per ``(account code, currency)``."""
    sums: dict[tuple[str, str], int] = defaultdict(int)
    for posting in postings:
        sums[(posting.account, posting.currency)] += posting.amount
    return dict(sums)


def normal_balance(*, account: str, signed_sum: int) -> int:
    """A signed sum read on the account's normal side (positive when normal)."""
    side = parse_account(account).normal_side
    return signed_sum if side is Side.DEBIT else -signed_sum


def balances(*, postings: Iterable[Posting]) -> dict[tuple[str, str], int]:
    """Normal-side balance per ``(account code, currency)``, in minor units."""
    return {
        key: normal_balance(account=key[0], signed_sum=total)
        for key, total in posting_sums(postings=postings).items()
    }


def wallet_balance(*, postings: Iterable[Posting], account_id: str, currency: str = "CNY") -> int:
    """What the tenant has, in minor units: the negative of the wallet's posting sum."""
    code = wallet_account(account_id).code
    return -sum(p.amount for p in postings if p.account == code and p.currency == currency)


# --- builders --------------------------------------------------------------------------


def _minor(amount: Decimal, currency: str, *, what: str) -> int:
    """Round one line half-up to the minor unit, once, and convert it to an int."""
    if not isinstance(amount, Decimal):
        raise InvalidAmount(f"{what} must be a Decimal, got {type(amount).__name__}")
    if not amount.is_finite():
        raise InvalidAmount(f"{what} is not a finite amount")
    return to_minor(round_money(amount, currency), currency)


def _positive_minor(amount: Decimal, currency: str, *, what: str) -> int:
    minor = _minor(amount, currency, what=what)
    if minor <= 0:
        raise InvalidAmount(f"{what} must be positive, got {amount}")
    return minor


def _entry(
    key: str,
    occurred_at: datetime,
    memo: str,
    lines: Sequence[tuple[LedgerAccount, int]],
    currency: str,
) -> JournalEntry:
    return JournalEntry(
        idempotency_key=key,
        occurred_at=occurred_at,
        memo=memo,
        postings=tuple(
            Posting(account.code, amount, currency) for account, amount in lines if amount
        ),
    )


def build_recharge(
    *,
    account_id: str,
    amount: Decimal,
    channel: Channel,
    reference: str,
    occurred_at: datetime,
    currency: str = "CNY",
    forwarding_provider: str | None = None,
    memo: str = "",
) -> JournalEntry:
    """Money in: Dr channel account, Cr wallet.

    ``reference`` identifies the payment within its channel (receipt number, bank reference,
    provider transaction id); the key is ``recharge/<channel account>/<reference>``, so the
    same payment can never credit two wallets.
    """
    minor = _positive_minor(amount, currency, what="recharge amount")
    source = channel_account(channel=channel, forwarding_provider=forwarding_provider)
    key = make_idempotency_key(movement="recharge", parts=[source.code, reference])
    return _entry(
        key,
        occurred_at,
        memo or f"recharge by {channel}",
        [(source, minor), (wallet_account(account_id), -minor)],
        currency,
    )


def build_recharge_from_notification(
    *, account_id: str, notification: PaymentNotification, memo: str = ""
) -> JournalEntry:
    """Recharge from a verified online payment; key from provider + provider transaction id."""
    if notification.status is not PaymentStatus.PAID:
        raise LedgerError(
            f"payment {notification.provider_transaction_id} is {notification.status}"
        )
    if notification.paid_at is None:
        raise LedgerError("a paid notification needs paid_at")
    if notification.amount_minor <= 0:
        raise InvalidAmount("a recharge must be positive")
    source = clearing_account(notification.provider)
    key = payment_idempotency_key(
        provider=notification.provider,
        provider_transaction_id=notification.provider_transaction_id,
    )
    minor = notification.amount_minor
    return _entry(
        key,
        notification.paid_at,
        memo or f"recharge by {notification.provider} order {notification.merchant_order_no}",
        [(source, minor), (wallet_account(account_id), -minor)],
        notification.currency,
    )


def build_deduction(
    *,
    account_id: str,
    lines: Sequence[tuple[ChargeType, Decimal]],
    reference: str,
    occurred_at: datetime,
    currency: str = "CNY",
    memo: str = "",
) -> JournalEntry:
    """Platform-side deduction of metered cost: Dr wallet (total), Cr revenue per line.

    Each line is rounded half-up on its own, then the wallet is debited with the sum of the
    rounded lines, so revenue and wallet agree to the fen. Lines rounding to zero are dropped.
    The wallet may go below zero (overdraft); whether supply stays on is balance_rules' call.
    ``reference`` names the rated period (e.g. ``meter-17/2025-03-01T10:00``).
    """
    credits: list[tuple[LedgerAccount, int]] = []
    for charge_type, amount in lines:
        minor = _minor(amount, currency, what=f"{charge_type} line")
        if minor < 0:
            raise InvalidAmount("deduction lines must not be negative; correct with a reversal")
        credits.append((revenue_account(charge_type), -minor))
    total = -sum(amount for _, amount in credits)
    if total == 0:
        raise NothingToPost("every deduction line rounds to zero")
    wallet = wallet_account(account_id)
    key = make_idempotency_key(movement="deduction", parts=[wallet.code, reference])
    return _entry(
        key, occurred_at, memo or "metered charges", [(wallet, total), *credits], currency
    )


def build_rating_credit(
    *,
    account_id: str,
    charge_type: ChargeType,
    amount: Decimal,
    reference: str,
    occurred_at: datetime,
    currency: str = "CNY",
    memo: str = "",
) -> JournalEntry:
    """A negative rated amount given back (e.g. a better monthly power factor): Dr revenue,
    Cr wallet. ``reference`` names the rated period, as for :func:`build_deduction`."""
    minor = _positive_minor(amount, currency, what="rating credit")
    wallet = wallet_account(account_id)
    key = make_idempotency_key(movement="deduction-credit", parts=[wallet.code, reference])
    return _entry(
        key,
        occurred_at,
        memo or "rating credit",
        [(revenue_account(charge_type), minor), (wallet, -minor)],
        currency,
    )


def build_fee(
    *,
    account_id: str,
    amount: Decimal,
    fee_code: str,
    reference: str,
    occurred_at: datetime,
    currency: str = "CNY",
    memo: str = "",
) -> JournalEntry:
    """A fee (card replacement, late payment...): Dr wallet, Cr revenue:fees."""
    minor = _positive_minor(amount, currency, what="fee")
    wallet = wallet_account(account_id)
    key = make_idempotency_key(movement="fee", parts=[wallet.code, fee_code, reference])
    return _entry(
        key,
        occurred_at,
        memo or f"fee {fee_code}",
        [(wallet, minor), (revenue_account(ChargeType.FEES), -minor)],
        currency,
    )


def build_refund(
    *,
    account_id: str,
    available_minor: int,
    channel: Channel,
    reference: str,
    occurred_at: datetime,
    amount: Decimal | None = None,
    paid_out: bool = True,
    currency: str = "CNY",
    forwarding_provider: str | None = None,
    memo: str = "",
) -> JournalEntry:
    """Money out of a wallet: Dr wallet, Cr channel (paid now) or Cr refunds payable.

    ``available_minor`` is the wallet balance now (see :func:`wallet_balance`); ``amount=None``
    refunds all of it. A refund above the balance is refused, so a refund can never create
    arrears. ``paid_out=False`` records the obligation (an online refund still in flight);
    :func:`build_refund_payout` clears it once the provider confirms.
    """
    if amount is None:
        minor = available_minor
        if minor <= 0:
            raise InsufficientBalance(f"nothing to refund: the wallet holds {available_minor}")
    else:
        minor = _positive_minor(amount, currency, what="refund amount")
    if minor > available_minor:
        raise InsufficientBalance(
            f"refund {from_minor(minor, currency)} exceeds the balance "
            f"{from_minor(available_minor, currency)}"
        )
    wallet = wallet_account(account_id)
    target = (
        channel_account(channel=channel, forwarding_provider=forwarding_provider)
        if paid_out
        else REFUNDS_PAYABLE
    )
    key = make_idempotency_key(movement="refund", parts=[wallet.code, reference])
    return _entry(
        key,
        occurred_at,
        memo or f"refund to {channel}",
        [(wallet, minor), (target, -minor)],
        currency,
    )


def build_meter_credit(
    *,
    account_id: str,
    amount_minor: int,
    to_meter: bool,
    reference: str,
    occurred_at: datetime,
    currency: str = "CNY",
    memo: str = "",
) -> JournalEntry:
    """A meter-side account's money moves between its wallet and its meter.

    ``to_meter``: a credit download, Dr wallet, Cr on the meter; otherwise money comes back
    (a failed download, an energy refund): Dr on the meter, Cr wallet. ``reference`` names the
    event (the download's command), so each move is posted once.
    """
    if not isinstance(amount_minor, int) or isinstance(amount_minor, bool) or amount_minor <= 0:
        raise InvalidAmount(f"a credit move is positive int minor units, got {amount_minor!r}")
    wallet, meter = wallet_account(account_id), on_meter_account(account_id)
    movement = "meter-credit" if to_meter else "meter-credit-back"
    key = make_idempotency_key(movement=movement, parts=[wallet.code, reference])
    source, target = (wallet, meter) if to_meter else (meter, wallet)
    return _entry(
        key,
        occurred_at,
        memo or ("credit download to the meter" if to_meter else "credit back from the meter"),
        [(source, amount_minor), (target, -amount_minor)],
        currency,
    )


def build_refund_payout(
    *,
    amount_minor: int,
    channel: Channel,
    reference: str,
    occurred_at: datetime,
    currency: str = "CNY",
    forwarding_provider: str | None = None,
    memo: str = "",
) -> JournalEntry:
    """A refund recorded as payable is paid: Dr refunds payable, Cr channel."""
    if not isinstance(amount_minor, int) or isinstance(amount_minor, bool) or amount_minor <= 0:
        raise InvalidAmount(f"payout must be positive int minor units, got {amount_minor!r}")
    target = channel_account(channel=channel, forwarding_provider=forwarding_provider)
    key = make_idempotency_key(movement="refund-payout", parts=[target.code, reference])
    return _entry(
        key,
        occurred_at,
        memo or f"refund paid by {channel}",
        [(REFUNDS_PAYABLE, amount_minor), (target, -amount_minor)],
        currency,
    )


class BillTarget(StrEnum):
    """Where a bill's charges are owed: the wallet (deducted, or a postpaid account's running
    account) or the account's receivable (a payment request apart from the prepaid wallet)."""

    WALLET = "wallet"
    RECEIVABLE = "receivable"


def _bill_target(target: BillTarget, account_id: str) -> LedgerAccount:
    if BillTarget(target) is BillTarget.WALLET:
        return wallet_account(account_id)
    return receivable_account(account_id)


def build_bill_charges(
    *,
    account_id: str,
    lines: Sequence[tuple[ChargeType, int]],
    target: BillTarget,
    reference: str,
    occurred_at: datetime,
    currency: str = "CNY",
    memo: str = "",
) -> JournalEntry:
    """What a bill books when it is issued: Dr target (the sum), Cr revenue per charge type.

    ``lines`` are minor units, rounded already (each bill line once); a negative line (a
    rating adjustment in the customer's favour, a credit) is a debit of its revenue account.
    Lines of one charge type are summed into one posting. The key names the bill, so issuing
    it twice books it once.
    """
    by_type: dict[ChargeType, int] = {}
    for charge_type, minor in lines:
        if not isinstance(minor, int) or isinstance(minor, bool):
            raise InvalidAmount(f"bill line amounts are int minor units, got {minor!r}")
        kind = ChargeType(charge_type)
        by_type[kind] = by_type.get(kind, 0) + minor
    total = sum(by_type.values())
    if not any(by_type.values()):
        raise NothingToPost("the bill books nothing")
    debit = _bill_target(target, account_id)
    key = make_idempotency_key(movement="bill", parts=[debit.code, reference])
    credits = [(revenue_account(kind), -minor) for kind, minor in sorted(by_type.items())]
    return _entry(
        key, occurred_at, memo or f"bill {reference}", [(debit, total), *credits], currency
    )


def build_bill_payment(
    *,
    account_id: str,
    amount_minor: int,
    channel: Channel,
    reference: str,
    occurred_at: datetime,
    currency: str = "CNY",
    forwarding_provider: str | None = None,
    memo: str = "",
) -> JournalEntry:
    """A payment of requested charges: Dr channel, Cr the account's receivable.

    ``reference`` identifies the payment within its channel, as for a recharge, so the same
    payment can never settle two accounts' bills.
    """
    if not isinstance(amount_minor, int) or isinstance(amount_minor, bool) or amount_minor <= 0:
        raise InvalidAmount(f"a payment must be positive int minor units, got {amount_minor!r}")
    source = channel_account(channel=channel, forwarding_provider=forwarding_provider)
    key = make_idempotency_key(movement="bill-payment", parts=[source.code, reference])
    return _entry(
        key,
        occurred_at,
        memo or f"bill payment by {channel}",
        [(source, amount_minor), (receivable_account(account_id), -amount_minor)],
        currency,
    )


def build_reversal(*, original: JournalEntry, occurred_at: datetime, reason: str) -> JournalEntry:
    """Undo ``original`` with a mirror entry (every posting negated); key ``reversal/<key>``."""
    if not reason:
        raise LedgerError("a reversal needs a reason")
    return JournalEntry(
        idempotency_key=make_idempotency_key(movement="reversal", parts=[original.idempotency_key]),
        occurred_at=occurred_at,
        memo=f"reversal of {original.idempotency_key}: {reason}",
        postings=tuple(Posting(p.account, -p.amount, p.currency) for p in original.postings),
    )


@dataclass(frozen=True, slots=True)
class Settlement:
    """The entries that close a wallet, in posting order, and what is left to do in cash."""

    entries: tuple[JournalEntry, ...]
    refund_minor: int  # paid (or payable) to the tenant
    arrears_minor: int  # moved to receivable; to collect from the tenant


def build_settlement(
    *,
    account_id: str,
    available_minor: int,
    final_charges: Sequence[tuple[ChargeType, Decimal]],
    reference: str,
    occurred_at: datetime,
    refund_channel: Channel = Channel.CASH,
    refund_paid_out: bool = True,
    currency: str = "CNY",
    forwarding_provider: str | None = None,
) -> Settlement:
    """Account closure: final charges, then refund of the remainder or arrears to receivable.

    ``available_minor`` is the wallet balance before the final charges. Afterwards the wallet
    balance is exactly zero.
    """
    entries: list[JournalEntry] = []
    remaining = available_minor
    wallet = wallet_account(account_id)
    if any(round_money(amount, currency) for _, amount in final_charges):
        charges = build_deduction(
            account_id=account_id,
            lines=final_charges,
            reference=f"settlement:{reference}",
            occurred_at=occurred_at,
            currency=currency,
            memo="final charges at closure",
        )
        entries.append(charges)
        remaining -= sum(p.amount for p in charges.postings if p.account == wallet.code)
    refund = arrears = 0
    if remaining > 0:
        entries.append(
            build_refund(
                account_id=account_id,
                available_minor=remaining,
                channel=refund_channel,
                reference=f"settlement:{reference}",
                occurred_at=occurred_at,
                paid_out=refund_paid_out,
                currency=currency,
                forwarding_provider=forwarding_provider,
                memo="refund of the remainder at closure",
            )
        )
        refund = remaining
    elif remaining < 0:
        arrears = -remaining
        entries.append(
            _entry(
                make_idempotency_key(movement="arrears", parts=[wallet.code, reference]),
                occurred_at,
                "arrears at closure",
                [(receivable_account(account_id), arrears), (wallet, -arrears)],
                currency,
            )
        )
    return Settlement(entries=tuple(entries), refund_minor=refund, arrears_minor=arrears)
