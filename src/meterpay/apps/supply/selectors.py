"""Reads of the supply rules: the policy for a wallet, protected periods, days of credit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from meterpay.apps.customers.models import Account
from meterpay.apps.ledger.models import JournalEntry, Wallet
from meterpay.apps.ledger.selectors import wallet_of
from meterpay.apps.supply.models import BalancePolicy
from meterpay.core import balance_rules as rules
from meterpay.core.money import from_minor


def policy_row(organisation_id: int) -> BalancePolicy:
    """The organisation's policy; the defaults (unsaved) when it has none, so reads never write."""
    policy = BalancePolicy.objects.filter(organisation_id=organisation_id).first()
    if policy is None:
        policy = BalancePolicy(
            organisation_id=organisation_id, alarm_thresholds_minor=[5000, 2000, 500]
        )
    return policy


def _money(minor: int, currency: str) -> Decimal:
    return from_minor(int(minor), currency)


def account_policy(wallet: Wallet, row: BalancePolicy) -> rules.BalancePolicy:
    """The organisation policy with the account's overrides."""
    currency = wallet.currency
    base = rules.BalancePolicy(
        alarm_thresholds=tuple(_money(m, currency) for m in row.alarm_thresholds_minor)
        or rules.DEFAULT_ALARM_THRESHOLDS,
        overdraft=_money(row.overdraft_minor, currency),
        restore_threshold=_money(row.restore_threshold_minor, currency),
        repeat_count=max(row.repeat_count, 1),
        repeat_interval=timedelta(minutes=max(row.repeat_interval_minutes, 1)),
    )
    return rules.with_overrides(
        policy=base,
        alarm_thresholds=None
        if wallet.alarm_thresholds_minor is None
        else [_money(m, currency) for m in wallet.alarm_thresholds_minor],
        overdraft=None
        if wallet.overdraft_minor is None
        else _money(wallet.overdraft_minor, currency),
        restore_threshold=None
        if wallet.restore_threshold_minor is None
        else _money(wallet.restore_threshold_minor, currency),
    )


def daily_window(start: time | None, end: time | None) -> rules.DailyWindow | None:
    if start is None or end is None or start == end:
        return None
    return rules.DailyWindow(start, end)


def _dates(values: list[Any]) -> list[date]:
    return [date.fromisoformat(str(v)) for v in values or []]


def protection(wallet: Wallet, row: BalancePolicy, now: datetime) -> rules.Protection:
    schedule = rules.ProtectionSchedule(
        night=daily_window(row.night_start, row.night_end),
        weekend_days=frozenset({5, 6}) if row.protect_weekends else frozenset(),
        protect_holidays=row.protect_holidays,
        tz=timezone.get_current_timezone(),
    )
    return rules.evaluate_protection(
        at=now,
        schedule=schedule,
        holidays=_dates(row.holidays),
        working_days=_dates(row.working_days),
        keep_supply=wallet.keep_supply,
    )


def daily_costs(account: Account, *, today: date, days: int = 7) -> list[Decimal]:
    """The account's deducted cost per local day for the ``days`` days before ``today``."""
    start = today - timedelta(days=days)
    tz = timezone.get_current_timezone()
    rows = JournalEntry.objects.filter(
        account=account,
        kind=JournalEntry.Kind.DEDUCTION,
        occurred_at__gte=datetime.combine(start, time(0), tz),
        occurred_at__lt=datetime.combine(today, time(0), tz),
    ).values_list("occurred_at", "wallet_amount", "currency")
    totals: dict[date, int] = {}
    currency = "CNY"
    for at, amount, row_currency in rows:
        currency = row_currency
        day = timezone.localtime(at, tz).date()
        totals[day] = totals.get(day, 0) - int(amount)
    return [from_minor(totals.get(start + timedelta(days=i), 0), currency) for i in range(days)]


def credit_estimate(wallet: Wallet, *, now: datetime | None = None) -> rules.CreditEstimate:
    now = now or timezone.now()
    row = policy_row(wallet.organisation_id)
    policy = account_policy(wallet, row)
    costs = daily_costs(wallet.account, today=timezone.localtime(now).date())
    return rules.days_of_credit_left(
        balance=_money(wallet.balance_minor, wallet.currency),
        daily_costs=costs,
        overdraft=policy.overdraft,
    )


def alarm_records(wallet: Wallet) -> dict[int, rules.AlarmRecord]:
    history = {}
    for level, record in (wallet.alarm_history or {}).items():
        sent = record.get("last_sent_at")
        history[int(level)] = rules.AlarmRecord(
            sent_count=int(record.get("sent_count", 0)),
            last_sent_at=datetime.fromisoformat(sent) if sent else None,
        )
    return history


@dataclass(frozen=True, slots=True)
class WalletView:
    balance: Decimal
    currency: str
    supply: str  # "on" | "off"
    supply_detail: str
    days_of_credit_left: Decimal | None
    keep_supply: bool
    cut_deferred_until: datetime | None


def wallet_view(account: Account, *, with_estimate: bool = True) -> WalletView:
    wallet = wallet_of(account)
    currency = wallet.currency if wallet else "CNY"
    if wallet is None:
        return WalletView(Decimal("0.00"), currency, "on", "on", None, False, None)
    days = credit_estimate(wallet).days if with_estimate else None
    return WalletView(
        balance=from_minor(wallet.balance_minor, currency),
        currency=currency,
        supply="on" if wallet.supply == "on" else "off",
        supply_detail=wallet.supply,
        days_of_credit_left=days,
        keep_supply=wallet.keep_supply,
        cut_deferred_until=wallet.cut_deferred_until,
    )
