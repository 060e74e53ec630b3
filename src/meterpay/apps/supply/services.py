"""Balance alarms, reminders, cut-off / defer / restore, and the balance policy's settings.

:func:`wallet_evaluate` runs in the transaction that changed a wallet (a recharge, deduction,
refund…) or from the periodic sweep. It asks the pure :func:`meterpay.core.balance_rules.decide`
what to do and writes the outcome in the same transaction: :class:`Notification` rows (the
outbox, sent after commit) and relay/valve commands through
:func:`meterpay.apps.control.services.meter_command_request` (the control app's outbox).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from meterpay.apps.audit.services import audit_record, snapshot
from meterpay.apps.control import services as control
from meterpay.apps.control.models import MeterCommand
from meterpay.apps.customers.models import Account
from meterpay.apps.ledger.models import JournalEntry, SupplyStatus, Wallet
from meterpay.apps.ledger.services import Posted, entry_post
from meterpay.apps.meters.models import Meter
from meterpay.apps.notifications.services import notification_create
from meterpay.apps.supply.models import BalancePolicy
from meterpay.apps.supply.selectors import (
    _money,
    account_policy,
    alarm_records,
    credit_estimate,
    daily_window,
    policy_row,
    protection,
)
from meterpay.core import balance_rules as rules
from meterpay.core import ledger
from meterpay.core.money import format_amount, from_minor

log = logging.getLogger(__name__)
ACTOR = "balance_rule"
#: A credit reminder is sent at most this often.
REMINDER_GAP = timedelta(days=1)


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


#: ``source(wallet=…, now=…, grace_days=…) -> bool``: does the account have a bill overdue past
#: the grace days? Called for postpaid wallets in :func:`wallet_evaluate`; the billing app
#: registers its postpaid bills here (a source may mark bills paid that the balance covers).
ARREARS_SOURCES: list[Callable[..., bool]] = []


def _postpaid(wallet: Wallet, row: BalancePolicy, now: datetime) -> rules.Decision:
    overdue = False
    for source in ARREARS_SOURCES:
        overdue = source(wallet=wallet, now=now, grace_days=row.postpaid_grace_days) or overdue
    supply = rules.SupplyState(wallet.supply)
    if overdue and supply is rules.SupplyState.ON:
        guard = protection(wallet, row, now)
        if guard.protected:
            return rules.Decision(
                rules.SupplyAction.DEFER_CUT_OFF, guard.until, reason=guard.reason
            )
        return rules.Decision(rules.SupplyAction.CUT_OFF, reason="bill overdue")
    if not overdue and supply is rules.SupplyState.CUT_FOR_BALANCE:
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
    if not _reminder_due(wallet, row, now):
        return
    estimate = credit_estimate(wallet, now=now)
    if estimate.days is None or row.reminder_days is None or estimate.days >= row.reminder_days:
        return
    wallet.reminder_sent_at = now
    notification_create(
        account=wallet.account,
        kind="reminder",
        subject=f"About {estimate.days} days of credit left",
        body=f"Account {wallet.account.number}: the balance {amount} lasts about "
        f"{estimate.days} days at the recent use. Please recharge in time.",
    )


def _reminder_due(wallet: Wallet, row: BalancePolicy, now: datetime) -> bool:
    """May a reminder go out now? (Whether it does depends on the recent daily costs.)"""
    return (
        row.reminder_days is not None
        and wallet.balance_minor > 0
        and (wallet.reminder_sent_at is None or now - wallet.reminder_sent_at >= REMINDER_GAP)
    )


def evaluation_needed(wallet: Wallet, row: BalancePolicy, now: datetime) -> bool:
    """Would :func:`wallet_evaluate` write anything? Answered in memory for prepaid wallets by
    the same decision and reminder rules, so the wallets a deduction leaves well above every
    threshold cost no statement. ``wallet.account`` must be loaded."""
    if wallet.account.billing_mode != Account.BillingMode.PREPAID:
        return True
    decision = prepaid_decision(wallet, row, now)
    if decision.alarms or decision.action is not rules.SupplyAction.NOTHING:
        return True
    if any(str(level) in (wallet.alarm_history or {}) for level in decision.rearmed):
        return True
    if wallet.supply == SupplyStatus.ON and (wallet.cut_deferred or wallet.cut_deferred_until):
        return True  # a deferral to clear
    return _reminder_due(wallet, row, now)


def movement_post(
    *,
    actor: Any,
    account: Account | None,
    entry: ledger.JournalEntry,
    kind: str,
    organisation_id: int | None = None,
    channel: str = "",
    reference: str = "",
    reverses: JournalEntry | None = None,
    evaluate: bool = True,
) -> Posted:
    """:func:`~meterpay.apps.ledger.services.entry_post`, then the account's wallet evaluated
    in the same transaction (alarms, cut-off, restore). A replay changed nothing: no evaluation.
    Every money movement of an account goes through here; ``organisation_id`` defaults to the
    account's."""
    if organisation_id is None:
        assert account is not None, "an entry of no account names its organisation"
        organisation_id = account.organisation_id
    posted = entry_post(
        actor=actor,
        organisation_id=organisation_id,
        entry=entry,
        kind=kind,
        account=account,
        channel=channel,
        reference=reference,
        reverses=reverses,
    )
    if evaluate and posted.created and account is not None:
        wallet = Wallet.objects.select_for_update().get(account_id=account.pk)
        wallet_evaluate(wallet=wallet, now=timezone.now())
    return posted


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


# --- balance policy ---------------------------------------------------------------------------

POLICY_FIELDS = (
    "alarm_thresholds_minor",
    "overdraft_minor",
    "restore_threshold_minor",
    "repeat_count",
    "repeat_interval_minutes",
    "quiet_start",
    "quiet_end",
    "night_start",
    "night_end",
    "protect_weekends",
    "protect_holidays",
    "holidays",
    "working_days",
    "reminder_days",
    "postpaid_due_days",
    "postpaid_grace_days",
)


def policy_errors(values: Mapping[str, Any], currency: str = "CNY") -> dict[str, str]:
    """What is wrong with a policy, by field (empty: it is usable)."""
    errors: dict[str, str] = {}
    thresholds = list(values.get("alarm_thresholds_minor") or [])
    if not thresholds:
        errors["alarm_thresholds_minor"] = _("Set at least the first alarm level.")
    elif any(a <= b for a, b in pairwise(thresholds)):
        errors["alarm_thresholds_minor"] = _(
            "Each alarm level is lower than the one before: level 1 is the first warning."
        )
    overdraft = int(values.get("overdraft_minor") or 0)
    if overdraft < 0:
        errors["overdraft_minor"] = _("The overdraft is an allowance: zero or more.")
    elif int(values.get("restore_threshold_minor") or 0) < -overdraft:
        errors["restore_threshold_minor"] = _(
            "Restore at or above the cut-off point (minus the overdraft), or supply would flap."
        )
    if int(values.get("repeat_count") or 0) < 1:
        errors["repeat_count"] = _("Send each alarm at least once.")
    if int(values.get("repeat_interval_minutes") or 0) < 1:
        errors["repeat_interval_minutes"] = _("The repeat interval is at least one minute.")
    for start, end in (("quiet_start", "quiet_end"), ("night_start", "night_end")):
        a, b = values.get(start), values.get(end)
        if (a is None) != (b is None):
            errors[end if a is not None else start] = _("Give both times, or neither.")
        elif a is not None and a == b:
            errors[end] = _("A period cannot start and end at the same time.")
    reminder = values.get("reminder_days")
    if reminder is not None and not Decimal(0) < Decimal(reminder) <= Decimal(365):
        errors["reminder_days"] = _("Between 0.1 and 365 days, or empty for no reminder.")
    if not errors:
        try:
            rules.BalancePolicy(
                alarm_thresholds=tuple(from_minor(int(m), currency) for m in thresholds),
                overdraft=from_minor(overdraft, currency),
                restore_threshold=from_minor(
                    int(values.get("restore_threshold_minor") or 0), currency
                ),
                repeat_count=int(values["repeat_count"]),
                repeat_interval=timedelta(minutes=int(values["repeat_interval_minutes"])),
            )
        except rules.BalanceRuleError as exc:
            errors["__all__"] = str(exc)
    return errors


def _policy_json(values: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in values.items():
        if isinstance(value, time | date):
            value = value.isoformat()
        elif isinstance(value, Decimal):
            value = str(value)
        out[key] = value
    return out


@transaction.atomic
def balance_policy_save(
    *, actor: Any, organisation_id: int, values: Mapping[str, Any]
) -> BalancePolicy:
    """Replace the organisation's policy settings (default tariffs are kept)."""
    unknown = set(values) - set(POLICY_FIELDS)
    if unknown:
        raise ValidationError({"__all__": f"unknown policy fields {sorted(unknown)}"})
    errors = policy_errors(values)
    if errors:
        raise ValidationError(errors)
    policy = (
        BalancePolicy.objects.select_for_update().filter(organisation_id=organisation_id).first()
    )
    before = None
    if policy is None:
        policy = BalancePolicy(organisation_id=organisation_id)
    else:
        before = {k: v for k, v in snapshot(policy).items() if k in POLICY_FIELDS}
    for key, value in values.items():
        setattr(policy, key, value)
    policy.holidays = [str(d) for d in policy.holidays]
    policy.working_days = [str(d) for d in policy.working_days]
    policy.save()
    audit_record(
        actor=actor,
        action="balance_policy.change",
        obj=policy,
        before=before,
        after=_policy_json({k: getattr(policy, k) for k in POLICY_FIELDS}),
    )
    return policy
