"""Balance alarms, reminders, cut-off / defer / restore, and postpaid due dates.

:func:`wallet_evaluate` runs in the transaction that changed a wallet (a recharge, deduction,
refund…) or from the periodic sweep. It asks the pure :func:`meterpay.core.balance_rules.decide`
what to do and writes the outcome in the same transaction: :class:`Notification` rows (the
outbox, sent after commit) and relay/valve commands through
:func:`meterpay.apps.control.services.meter_command_request` (the control app's outbox).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from meterpay.apps.audit.services import audit_record
from meterpay.apps.control import services as control
from meterpay.apps.control.models import MeterCommand
from meterpay.apps.customers.models import Account
from meterpay.apps.meters.models import Meter
from meterpay.apps.wallets.models import (
    BalancePolicy,
    JournalEntry,
    PostpaidBill,
    SupplyStatus,
    Wallet,
)
from meterpay.apps.wallets.notify import notification_create
from meterpay.core import balance_rules as rules
from meterpay.core.money import format_amount, from_minor

log = logging.getLogger(__name__)
ACTOR = "balance_rule"
#: A credit reminder is sent at most this often.
REMINDER_GAP = timedelta(days=1)


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


def _meters(account: Account) -> list[Meter]:
    return list(Meter.objects.filter(account=account, removed_on__isnull=True).order_by("pk"))


def _command(account: Account, *, cut: bool, reason: str) -> list[MeterCommand]:
    commands = []
    for meter in _meters(account):
        if meter.kind == Meter.Kind.WATER:
            kind = MeterCommand.Kind.VALVE_CLOSE if cut else MeterCommand.Kind.VALVE_OPEN
        else:
            kind = MeterCommand.Kind.RELAY_TRIP if cut else MeterCommand.Kind.RELAY_CLOSE
        try:
            commands.append(
                control.meter_command_request(
                    actor=ACTOR,
                    meter=meter,
                    kind=kind,
                    reason=reason,
                    requested_by=MeterCommand.Requester.BALANCE_RULE,
                )
            )
        except ValidationError as exc:
            log.warning("no %s for meter %s: %s", kind, meter.pk, "; ".join(exc.messages))
    return commands


def _set_supply(wallet: Wallet, status: str, now: datetime) -> None:
    before = {"supply": wallet.supply}
    wallet.supply = status
    wallet.supply_changed_at = now
    wallet.cut_deferred = False
    wallet.cut_deferred_until = None
    audit_record(
        actor=ACTOR,
        action=f"wallet.supply_{status}",
        obj=wallet,
        before=before,
        after={"supply": status, "balance": wallet.balance_minor},
    )


def _postpaid(wallet: Wallet, row: BalancePolicy, now: datetime) -> rules.Decision:
    account = wallet.account
    today = timezone.localtime(now).date()
    open_bills = PostpaidBill.objects.filter(account=account, status=PostpaidBill.Status.OPEN)
    if wallet.balance_minor >= 0 and open_bills.exists():
        open_bills.update(status=PostpaidBill.Status.PAID, paid_at=now)
        open_bills = PostpaidBill.objects.none()
    overdue = open_bills.filter(due_on__lt=today - timedelta(days=row.postpaid_grace_days))
    supply = rules.SupplyState(wallet.supply)
    if overdue.exists() and supply is rules.SupplyState.ON:
        guard = protection(wallet, row, now)
        if guard.protected:
            return rules.Decision(
                rules.SupplyAction.DEFER_CUT_OFF, guard.until, reason=guard.reason
            )
        return rules.Decision(rules.SupplyAction.CUT_OFF, reason="bill overdue")
    if not overdue.exists() and supply is rules.SupplyState.CUT_FOR_BALANCE:
        return rules.Decision(rules.SupplyAction.RESTORE, reason="bill paid")
    return rules.Decision(rules.SupplyAction.NOTHING)


def prepaid_decision(
    wallet: Wallet, row: BalancePolicy, now: datetime, *, policy: rules.BalancePolicy | None = None
) -> rules.Decision:
    """What the balance rules decide for a prepaid wallet as it stands."""
    return rules.decide(
        balance=_money(wallet.balance_minor, wallet.currency),
        policy=policy or account_policy(wallet, row),
        supply=rules.SupplyState(wallet.supply),
        alarm_history=alarm_records(wallet),
        protection=protection(wallet, row, now),
        now=now,
        quiet_hours=daily_window(row.quiet_start, row.quiet_end),
        tz=timezone.get_current_timezone(),
    )


def wallet_evaluate(*, wallet: Wallet, now: datetime) -> rules.Decision:
    """Decide alarms and supply for one (locked) wallet and write them to the outboxes."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("wallet_evaluate runs inside the transaction that changed the wallet")
    wallet = (
        Wallet.objects.select_for_update(of=("self",))
        .select_related("account__customer")
        .get(pk=wallet.pk)
    )
    account = wallet.account
    if account.status not in (Account.Status.OPEN,):
        return rules.Decision(rules.SupplyAction.NOTHING, reason=f"account {account.status}")
    if account.billing_side == Account.BillingSide.METER:
        # the meter deducts and trips itself at zero; the wallet only passes money on to it
        return rules.Decision(rules.SupplyAction.NOTHING, reason="meter-side account")
    row = policy_row(wallet.organisation_id)
    balance = _money(wallet.balance_minor, wallet.currency)
    amount = format_amount(balance, wallet.currency)
    if account.billing_mode == Account.BillingMode.POSTPAID:
        decision = _postpaid(wallet, row, now)
    else:
        policy = account_policy(wallet, row)
        decision = prepaid_decision(wallet, row, now, policy=policy)
        history = dict(wallet.alarm_history or {})
        for level in decision.rearmed:
            history.pop(str(level), None)
        if decision.alarms:
            most_severe = decision.alarms[-1]
            threshold = policy.alarm_thresholds[most_severe - 1]
            notification_create(
                account=account,
                kind="alarm",
                level=most_severe,
                subject=f"Balance alarm level {most_severe}: {amount}",
                body=(
                    f"Account {account.number}: the balance is {amount} {wallet.currency}, "
                    f"at or below {format_amount(threshold, wallet.currency)}. Please recharge."
                ),
            )
            for level in decision.alarms:
                record = history.get(str(level), {})
                history[str(level)] = {
                    "sent_count": int(record.get("sent_count", 0)) + 1,
                    "last_sent_at": now.isoformat(),
                }
        wallet.alarm_history = history
        _reminder(wallet, row, now, amount)
    action = decision.action
    if action is rules.SupplyAction.CUT_OFF:
        _set_supply(wallet, SupplyStatus.CUT_FOR_BALANCE, now)
        _command(account, cut=True, reason=f"balance {amount}: {decision.reason}")
        notification_create(
            account=account,
            kind="cut_off",
            subject=f"Supply cut off: balance {amount}",
            body=f"Account {account.number}: supply was cut off ({decision.reason}). "
            "It is restored automatically after a recharge.",
        )
    elif action is rules.SupplyAction.RESTORE:
        _set_supply(wallet, SupplyStatus.ON, now)
        _command(account, cut=False, reason=f"balance {amount}: {decision.reason}")
        notification_create(
            account=account,
            kind="restore",
            subject=f"Supply restored: balance {amount}",
            body=f"Account {account.number}: supply is restored ({decision.reason}).",
        )
    elif action is rules.SupplyAction.DEFER_CUT_OFF:
        if not wallet.cut_deferred or wallet.cut_deferred_until != decision.defer_until:
            until = (
                timezone.localtime(decision.defer_until).strftime("%Y-%m-%d %H:%M")
                if decision.defer_until
                else "further notice"
            )
            notification_create(
                account=account,
                kind="cut_deferred",
                subject=f"Credit used up: balance {amount}",
                body=f"Account {account.number}: the credit is used up. Supply stays on until "
                f"{until} ({decision.reason}); recharge before then.",
            )
            audit_record(
                actor=ACTOR,
                action="wallet.cut_deferred",
                obj=wallet,
                after={"until": str(decision.defer_until), "reason": decision.reason},
            )
        wallet.cut_deferred = True
        wallet.cut_deferred_until = decision.defer_until
    elif wallet.supply == SupplyStatus.ON:
        wallet.cut_deferred = False
        wallet.cut_deferred_until = None
    wallet.save(
        update_fields=[
            "alarm_history",
            "supply",
            "supply_changed_at",
            "cut_deferred",
            "cut_deferred_until",
            "reminder_sent_at",
        ]
    )
    return decision


def _reminder(wallet: Wallet, row: BalancePolicy, now: datetime, amount: str) -> None:
    """An early reminder when the days of credit left drop below the policy's number."""
    if row.reminder_days is None or wallet.balance_minor <= 0:
        return
    if wallet.reminder_sent_at is not None and now - wallet.reminder_sent_at < REMINDER_GAP:
        return
    estimate = credit_estimate(wallet, now=now)
    if estimate.days is None or estimate.days >= row.reminder_days:
        return
    wallet.reminder_sent_at = now
    notification_create(
        account=wallet.account,
        kind="reminder",
        subject=f"About {estimate.days} days of credit left",
        body=f"Account {wallet.account.number}: the balance {amount} lasts about "
        f"{estimate.days} days at the recent use. Please recharge in time.",
    )


@transaction.atomic
def wallet_set_controls(
    *,
    actor: Any,
    wallet: Wallet,
    keep_supply: bool | None = None,
    alarm_thresholds_minor: list[int] | None = None,
    overdraft_minor: int | None = None,
    restore_threshold_minor: int | None = None,
) -> Wallet:
    """Per-account overrides; validated by building the account's policy."""
    wallet = Wallet.objects.select_for_update().get(pk=wallet.pk)
    before = {"keep_supply": wallet.keep_supply, "thresholds": wallet.alarm_thresholds_minor}
    if keep_supply is not None:
        wallet.keep_supply = keep_supply
    if alarm_thresholds_minor is not None:
        wallet.alarm_thresholds_minor = alarm_thresholds_minor or None
    if overdraft_minor is not None:
        wallet.overdraft_minor = overdraft_minor
    if restore_threshold_minor is not None:
        wallet.restore_threshold_minor = restore_threshold_minor
    try:
        account_policy(wallet, policy_row(wallet.organisation_id))
    except rules.BalanceRuleError as exc:
        raise ValidationError({"policy": str(exc)}) from None
    wallet.save()
    audit_record(
        actor=actor,
        action="wallet.controls",
        obj=wallet,
        before=before,
        after={"keep_supply": wallet.keep_supply, "thresholds": wallet.alarm_thresholds_minor},
    )
    wallet_evaluate(wallet=wallet, now=timezone.now())
    return wallet


def _overrides(wallet: Wallet) -> dict[str, Any]:
    return {
        "keep_supply": wallet.keep_supply,
        "alarm_thresholds_minor": wallet.alarm_thresholds_minor,
        "overdraft_minor": wallet.overdraft_minor,
        "restore_threshold_minor": wallet.restore_threshold_minor,
    }


@transaction.atomic
def wallet_overrides_set(
    *,
    actor: Any,
    wallet: Wallet,
    keep_supply: bool,
    alarm_thresholds_minor: list[int] | None,
    overdraft_minor: int | None,
    restore_threshold_minor: int | None,
) -> Wallet:
    """Set all of an account's overrides at once; None takes the organisation's value."""
    wallet = Wallet.objects.select_for_update(of=("self",)).get(pk=wallet.pk)
    before = _overrides(wallet)
    wallet.keep_supply = keep_supply
    wallet.alarm_thresholds_minor = alarm_thresholds_minor or None
    wallet.overdraft_minor = overdraft_minor
    wallet.restore_threshold_minor = restore_threshold_minor
    try:
        account_policy(wallet, policy_row(wallet.organisation_id))
    except rules.BalanceRuleError as exc:
        raise ValidationError({"__all__": str(exc)}) from None
    wallet.save(update_fields=[*before])
    audit_record(
        actor=actor, action="wallet.overrides", obj=wallet, before=before, after=_overrides(wallet)
    )
    wallet_evaluate(wallet=wallet, now=timezone.now())
    return wallet


@transaction.atomic
def supply_cut_manual(*, actor: Any, wallet: Wallet, cut: bool) -> Wallet:
    """An operator cuts (never restored automatically) or releases supply by hand."""
    wallet = (
        Wallet.objects.select_for_update(of=("self",)).select_related("account").get(pk=wallet.pk)
    )
    now = timezone.now()
    _set_supply(wallet, SupplyStatus.CUT_MANUAL if cut else SupplyStatus.ON, now)
    wallet.save()
    _command(wallet.account, cut=cut, reason=f"by {getattr(actor, 'username', actor)}")
    if not cut:
        wallet_evaluate(wallet=wallet, now=now)
    return wallet


@transaction.atomic
def postpaid_bill_issue(
    *, actor: Any, account: Account, period_end: date, due_on: date | None = None
) -> PostpaidBill | None:
    """A postpaid statement of what the wallet owes at ``period_end``; None if nothing is owed.

    Without ``due_on`` the bill is due the policy's ``postpaid_due_days`` after the period end.
    """
    if account.billing_mode != Account.BillingMode.POSTPAID:
        raise ValidationError({"account": "only postpaid accounts get bills"})
    if due_on is None:
        due_on = period_end + timedelta(days=policy_row(account.organisation_id).postpaid_due_days)
    wallet = Wallet.objects.select_for_update().get(account=account)
    owed = -wallet.balance_minor - (
        PostpaidBill.objects.filter(account=account, status=PostpaidBill.Status.OPEN).aggregate(
            s=Sum("amount_minor")
        )["s"]
        or 0
    )
    if owed <= 0:
        return None
    bill, _ = PostpaidBill.objects.get_or_create(
        account=account,
        period_end=period_end,
        defaults={
            "organisation_id": account.organisation_id,
            "amount_minor": owed,
            "due_on": due_on,
            "status": PostpaidBill.Status.OPEN,
        },
    )
    audit_record(
        actor=actor, action="bill.issue", obj=bill, after={"amount": owed, "due_on": str(due_on)}
    )
    return bill


def wallets_sweep(*, now: datetime | None = None) -> int:
    """Re-evaluate wallets whose situation changes with time alone (deferrals, bills, alarms)."""
    now = now or timezone.now()
    candidates = Wallet.objects.filter(account__status=Account.Status.OPEN).filter(models_q_due())
    count = 0
    for pk in candidates.values_list("pk", flat=True):
        with transaction.atomic():
            wallet_evaluate(wallet=Wallet.objects.get(pk=pk), now=now)
        count += 1
    return count


def models_q_due() -> Any:
    from django.db.models import Q

    return (
        Q(cut_deferred=True)
        | Q(balance_minor__lte=5000)
        | Q(account__billing_mode=Account.BillingMode.POSTPAID)
    )
