"""The double-entry ledger and the wallets it keeps: ledger accounts, journal entries, postings.

Money is stored as BigInteger minor units (fen for CNY); see docs/money.md. Journal entries and
postings are immutable: there is no update or delete path (corrections are reversals), and on
PostgreSQL a deferred constraint trigger checks that every entry's postings sum to zero.

A :class:`Wallet` row also carries the account's supply control state (written only by the
supply app): every balance change locks this one row, so the decision rides on the same lock.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from meterpay.apps.organisations.models import OrgOwned
from meterpay.core.ledger import AccountKind, Channel


class ImmutableError(RuntimeError):
    """A journal entry or posting was about to be changed or deleted."""


class _ImmutableQuerySet(models.QuerySet[Any]):
    def update(self, **kwargs: Any) -> int:
        raise ImmutableError("ledger rows are immutable; post a reversal instead")

    def delete(self) -> Any:
        raise ImmutableError("ledger rows are immutable; post a reversal instead")


class _Immutable(models.Model):
    objects: ClassVar[Any] = _ImmutableQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ImmutableError(f"{self._meta.label} rows are immutable")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ImmutableError(f"{self._meta.label} rows are immutable")


CHANNEL_CHOICES = [
    (Channel.CASH.value, _("Cash")),
    (Channel.BANK_TRANSFER.value, _("Bank transfer")),
    (Channel.WECHAT.value, _("WeChat Pay")),
    (Channel.ALIPAY.value, _("Alipay")),
    (Channel.FORWARDING.value, _("Forwarding provider")),
]


class LedgerAccount(OrgOwned):
    """One account of the chart, e.g. ``wallet:17``, ``cash``, ``revenue:energy``."""

    code = models.CharField(_("code"), max_length=80)
    kind = models.CharField(
        _("kind"), max_length=20, choices=[(k.value, k.value) for k in AccountKind]
    )

    class Meta:
        verbose_name = _("ledger account")
        verbose_name_plural = _("ledger accounts")
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "code"], name="ledger_account_code")
        ]

    def __str__(self) -> str:
        return self.code


class JournalEntry(_Immutable, OrgOwned):
    """A balanced set of postings, stored once per idempotency key and organisation."""

    class Kind(models.TextChoices):
        RECHARGE = "recharge", _("Recharge")
        DEDUCTION = "deduction", _("Deduction")
        FEE = "fee", _("Fee")
        REFUND = "refund", _("Refund")
        REFUND_PAYOUT = "refund_payout", _("Refund paid out")
        REVERSAL = "reversal", _("Reversal")
        ARREARS = "arrears", _("Arrears at closure")
        METER_CREDIT = "meter_credit", _("Credit on the meter")
        BILL = "bill", _("Bill")
        BILL_PAYMENT = "bill_payment", _("Bill payment")

    idempotency_key = models.CharField(_("idempotency key"), max_length=255)
    occurred_at = models.DateTimeField(_("occurred at"))
    memo = models.CharField(_("memo"), max_length=255, blank=True)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    channel = models.CharField(_("channel"), max_length=16, choices=CHANNEL_CHOICES, blank=True)
    reference = models.CharField(_("reference"), max_length=120, blank=True)
    account = models.ForeignKey(
        "customers.Account",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="journal_entries",
        verbose_name=_("account"),
    )
    #: What the entry moved in or out of the wallet, in minor units (+ in, - out); 0 if none.
    wallet_amount = models.BigIntegerField(_("wallet amount"), default=0)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    actor_label = models.CharField(_("actor"), max_length=150, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    reverses = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reversed_by",
        verbose_name=_("reverses"),
    )

    class Meta:
        verbose_name = _("journal entry")
        verbose_name_plural = _("journal entries")
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "idempotency_key"], name="journal_entry_key_once"
            )
        ]
        indexes = [
            models.Index(fields=["organisation", "kind", "occurred_at"], name="entry_kind_time"),
            models.Index(fields=["account", "occurred_at"], name="entry_account_time"),
        ]

    def __str__(self) -> str:
        return self.idempotency_key


class Posting(_Immutable, OrgOwned):
    """One line of an entry: debit positive, credit negative, in minor units."""

    entry = models.ForeignKey(
        JournalEntry, on_delete=models.PROTECT, related_name="postings", verbose_name=_("entry")
    )
    ledger_account = models.ForeignKey(
        LedgerAccount,
        on_delete=models.PROTECT,
        related_name="postings",
        verbose_name=_("ledger account"),
    )
    amount = models.BigIntegerField(_("amount (minor units)"))

    class Meta:
        verbose_name = _("posting")
        verbose_name_plural = _("postings")
        ordering = ["entry", "id"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(amount=0), name="posting_not_zero")
        ]

    def __str__(self) -> str:
        return f"{self.ledger_account_id} {self.amount}"


class SupplyStatus(models.TextChoices):
    ON = "on", _("On")
    CUT_FOR_BALANCE = "cut_for_balance", _("Cut for balance")
    CUT_MANUAL = "cut_manual", _("Cut by an operator")


class Wallet(OrgOwned):
    """An account's wallet: the cached balance (= -sum of its postings) and supply control state.

    The cache is changed only by the posting service, in the same transaction and under
    ``select_for_update``; ``meterpay ledger check`` proves it equals the postings.
    """

    account = models.OneToOneField(
        "customers.Account", on_delete=models.PROTECT, related_name="wallet"
    )
    ledger_account = models.OneToOneField(
        LedgerAccount, on_delete=models.PROTECT, related_name="wallet"
    )
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    balance_minor = models.BigIntegerField(_("balance (minor units)"), default=0)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    supply = models.CharField(
        _("supply"), max_length=16, choices=SupplyStatus.choices, default=SupplyStatus.ON
    )
    supply_changed_at = models.DateTimeField(_("supply changed at"), null=True, blank=True)
    cut_deferred_until = models.DateTimeField(_("cut-off deferred until"), null=True, blank=True)
    cut_deferred = models.BooleanField(_("cut-off deferred"), default=False)
    #: {"1": {"sent_count": 1, "last_sent_at": "…"}, …} since the level was last re-armed
    alarm_history = models.JSONField(_("alarm history"), default=dict, blank=True)
    reminder_sent_at = models.DateTimeField(_("credit reminder sent at"), null=True, blank=True)
    # Per-account overrides of the organisation policy (None: the organisation's value).
    keep_supply = models.BooleanField(_("keep supply (never cut for balance)"), default=False)
    alarm_thresholds_minor = models.JSONField(_("alarm thresholds"), null=True, blank=True)
    overdraft_minor = models.BigIntegerField(_("overdraft"), null=True, blank=True)
    restore_threshold_minor = models.BigIntegerField(_("restore threshold"), null=True, blank=True)

    class Meta:
        verbose_name = _("wallet")
        verbose_name_plural = _("wallets")

    def __str__(self) -> str:
        return f"wallet of account {self.account_id}"
