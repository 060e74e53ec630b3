"""The double-entry ledger, wallets, payment orders, supply control state and the outbox.

Money is stored as BigInteger minor units (fen for CNY); see docs/money.md. Journal entries and
postings are immutable: there is no update or delete path (corrections are reversals), and on
PostgreSQL a deferred constraint trigger checks that every entry's postings sum to zero.
"""

from __future__ import annotations

from datetime import time
from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

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


class BalancePolicy(OrgOwned):
    """The organisation's alarm / cut-off / restore policy and protected periods."""

    alarm_thresholds_minor = models.JSONField(_("alarm thresholds"), default=list)
    overdraft_minor = models.BigIntegerField(_("overdraft"), default=0)
    restore_threshold_minor = models.BigIntegerField(_("restore threshold"), default=0)
    repeat_count = models.PositiveIntegerField(_("repeat count"), default=1)
    repeat_interval_minutes = models.PositiveIntegerField(_("repeat interval"), default=24 * 60)
    quiet_start = models.TimeField(_("quiet hours from"), null=True, blank=True)
    quiet_end = models.TimeField(_("quiet hours until"), null=True, blank=True)
    #: No cut-off at night (local time); empty: nights are not protected.
    night_start = models.TimeField(_("no cut-off from"), null=True, blank=True, default=time(18))
    night_end = models.TimeField(_("no cut-off until"), null=True, blank=True, default=time(8))
    protect_weekends = models.BooleanField(_("no cut-off at weekends"), default=True)
    protect_holidays = models.BooleanField(_("no cut-off on holidays"), default=True)
    holidays = models.JSONField(_("holidays"), default=list, blank=True)
    working_days = models.JSONField(_("weekend working days"), default=list, blank=True)
    reminder_days = models.DecimalField(
        _("remind when days of credit left fall below"),
        max_digits=5,
        decimal_places=1,
        null=True,
        blank=True,
    )
    postpaid_due_days = models.PositiveIntegerField(_("postpaid bill due after (days)"), default=15)
    postpaid_grace_days = models.PositiveIntegerField(_("postpaid grace days"), default=7)
    #: A meterpay tariff document used when no tariff is assigned to the account.
    default_tariff = models.JSONField(_("default tariff"), null=True, blank=True)
    default_water_tariff = models.JSONField(_("default water tariff"), null=True, blank=True)

    class Meta:
        verbose_name = _("balance policy")
        verbose_name_plural = _("balance policies")
        constraints = [
            models.UniqueConstraint(fields=["organisation"], name="one_balance_policy_per_org")
        ]

    def __str__(self) -> str:
        return f"balance policy of organisation {self.organisation_id}"


class Recharge(OrgOwned):
    """A recharge order: cash at the counter, a bank transfer, or an online payment.

    It is the idempotency record of the request (``idempotency_key``) and, for online
    payments, the merchant order (``number`` is the ``out_trade_no``). Money moves only
    through ``entry``.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        PAID = "paid", _("Paid")
        CLOSED = "closed", pgettext_lazy("payment order status", "Closed")
        FAILED = "failed", _("Failed")

    number = models.CharField(_("order number"), max_length=40, unique=True)
    account = models.ForeignKey(
        "customers.Account", on_delete=models.PROTECT, related_name="recharges"
    )
    channel = models.CharField(_("channel"), max_length=16, choices=CHANNEL_CHOICES)
    provider = models.CharField(_("provider"), max_length=70, blank=True)
    amount_minor = models.BigIntegerField(_("amount (minor units)"))
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    status = models.CharField(_("status"), max_length=8, choices=Status.choices)
    idempotency_key = models.CharField(_("idempotency key"), max_length=255)
    reference = models.CharField(_("reference"), max_length=120, blank=True)
    provider_transaction_id = models.CharField(_("provider transaction"), max_length=80, blank=True)
    provider_status = models.CharField(_("provider status"), max_length=40, blank=True)
    entry = models.OneToOneField(
        JournalEntry, on_delete=models.PROTECT, null=True, blank=True, related_name="recharge"
    )
    balance_after_minor = models.BigIntegerField(_("balance after"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(_("actor"), max_length=150, blank=True)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)

    class Meta:
        verbose_name = _("recharge")
        verbose_name_plural = _("recharges")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "idempotency_key"], name="recharge_key_once"
            ),
            models.CheckConstraint(
                condition=models.Q(amount_minor__gt=0), name="recharge_positive"
            ),
            models.CheckConstraint(
                condition=~models.Q(status="paid") | models.Q(entry__isnull=False),
                name="paid_recharge_has_entry",
            ),
        ]

    def __str__(self) -> str:
        return self.number


class PaymentProviderConfig(OrgOwned):
    """Credentials of an online payment provider for one organisation (keys as PEM text).

    WeChat Pay: ``merchant_id`` (mchid), ``app_id``, ``key_serial`` + ``public_key_pem`` (the
    platform certificate or WeChat Pay public key), ``secret`` (the 32-byte APIv3 key).
    Alipay: ``app_id``, ``merchant_id`` (seller id), ``public_key_pem`` (Alipay's public key).
    Forwarding: ``name`` (the provider id is ``forward.<name>``), ``secret`` (HMAC; several
    separated by newlines during rotation). ``simulator_private_key_pem`` is only for the demo's
    payment simulator; it stays empty in production.
    """

    class Kind(models.TextChoices):
        WECHAT = "wechat", _("WeChat Pay")
        ALIPAY = "alipay", _("Alipay")
        FORWARDING = "forwarding", _("Forwarding provider")

    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    name = models.CharField(_("name"), max_length=60, blank=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    merchant_id = models.CharField(_("merchant id"), max_length=64, blank=True)
    app_id = models.CharField(_("app id"), max_length=64, blank=True)
    key_serial = models.CharField(_("key serial"), max_length=80, blank=True)
    public_key_pem = models.TextField(_("provider public key (PEM)"), blank=True)
    secret = models.TextField(_("secret"), blank=True)
    simulator_private_key_pem = models.TextField(_("simulator private key (demo)"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("payment provider")
        verbose_name_plural = _("payment providers")
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "name"],
                condition=models.Q(kind="forwarding"),
                name="forwarding_provider_name_unique",
            ),
            models.UniqueConstraint(
                fields=["organisation", "kind"],
                condition=~models.Q(kind="forwarding"),
                name="one_wallet_provider_per_org",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.name}".strip()

    @property
    def provider(self) -> str:
        return f"forward.{self.name}" if self.kind == self.Kind.FORWARDING else self.kind


class PaymentNotificationLog(models.Model):
    """Every payment notification received, genuine or not, with what was done about it."""

    class Outcome(models.TextChoices):
        CREDITED = "credited", _("Credited")
        REPLAY = "replay", _("Replay (already credited)")
        IGNORED = "ignored", _("Not a payment")
        REJECTED = "rejected", _("Rejected")

    organisation = models.ForeignKey(
        "organisations.Organisation", on_delete=models.PROTECT, null=True, blank=True
    )
    provider = models.CharField(_("provider"), max_length=70)
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices)
    detail = models.CharField(_("detail"), max_length=300, blank=True)
    merchant_order_no = models.CharField(_("order"), max_length=64, blank=True)
    provider_transaction_id = models.CharField(_("transaction"), max_length=80, blank=True)
    remote_addr = models.CharField(_("remote address"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("payment notification")
        verbose_name_plural = _("payment notifications")
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.provider} {self.outcome} {self.merchant_order_no}"


class DeductionState(OrgOwned):
    """The rating accumulator of one account's meter, persisted between deductions."""

    account = models.ForeignKey("customers.Account", on_delete=models.PROTECT, related_name="+")
    meter = models.ForeignKey("meters.Meter", on_delete=models.PROTECT, related_name="+")
    state = models.JSONField(_("state"), default=dict, blank=True)
    rated_until = models.DateTimeField(_("rated until"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("deduction state")
        verbose_name_plural = _("deduction states")
        constraints = [
            models.UniqueConstraint(fields=["account", "meter"], name="deduction_state_once")
        ]


def notification_events_all() -> list[str]:
    """Every event a channel can take: new channels (and those from before the choice) take all."""
    return [value for value, _label in NOTIFICATION_EVENTS]


class NotificationChannel(OrgOwned):
    """Where notifications go: an Apprise URL, e-mail, or a webhook.

    ``target`` may contain ``{phone}`` and ``{email}``, replaced by the customer's. ``events``
    lists the notification kinds the channel takes.
    """

    class Kind(models.TextChoices):
        APPRISE = "apprise", _("Apprise URL (SMS, WeCom, DingTalk, push…)")
        EMAIL = "email", _("E-mail")
        WEBHOOK = "webhook", _("Webhook")

    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    name = models.CharField(_("name"), max_length=80)
    target = models.CharField(_("target"), max_length=500, blank=True)
    secret = models.CharField(_("webhook secret"), max_length=200, blank=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    events = models.JSONField(_("events"), default=notification_events_all, blank=True)

    class Meta:
        verbose_name = _("notification channel")
        verbose_name_plural = _("notification channels")

    def __str__(self) -> str:
        return self.name


class Notification(OrgOwned):
    """The outbox: written in the transaction that decided it, sent after commit."""

    class Kind(models.TextChoices):
        ALARM = "alarm", _("Balance alarm")
        REMINDER = "reminder", _("Days of credit reminder")
        CUT_OFF = "cut_off", _("Supply cut off")
        CUT_DEFERRED = "cut_deferred", _("Cut-off deferred")
        RESTORE = "restore", _("Supply restored")
        BILL_DUE = "bill_due", _("Bill overdue")
        TEST = "test", _("Test message")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    #: None only for a channel's test message.
    account = models.ForeignKey(
        "customers.Account",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="notifications",
    )
    channel = models.ForeignKey(
        NotificationChannel, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    level = models.PositiveSmallIntegerField(_("alarm level"), null=True, blank=True)
    subject = models.CharField(_("subject"), max_length=200)
    body = models.TextField(_("message"))
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    result = models.CharField(_("delivery result"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "created_at"], name="notification_pending")]

    def __str__(self) -> str:
        return self.subject


#: The notification kinds a channel can subscribe to (every kind but the channel test).
NOTIFICATION_EVENTS = [
    (value, label) for value, label in Notification.Kind.choices if value != Notification.Kind.TEST
]


class PostpaidBill(OrgOwned):
    """A postpaid statement: what the wallet owed at the end of a period, due on a date."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        PAID = "paid", _("Paid")

    account = models.ForeignKey("customers.Account", on_delete=models.PROTECT, related_name="bills")
    period_end = models.DateField(_("period end"))
    amount_minor = models.BigIntegerField(_("amount (minor units)"))
    due_on = models.DateField(_("due on"))
    status = models.CharField(_("status"), max_length=6, choices=Status.choices)
    issued_at = models.DateTimeField(_("issued at"), auto_now_add=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)

    class Meta:
        verbose_name = _("postpaid bill")
        verbose_name_plural = _("postpaid bills")
        ordering = ["-period_end"]
        constraints = [
            models.UniqueConstraint(fields=["account", "period_end"], name="one_bill_per_period")
        ]


class StatementImport(OrgOwned):
    """A provider statement (CSV) for one channel and day, matched against the ledger."""

    channel = models.CharField(_("channel"), max_length=16, choices=CHANNEL_CHOICES)
    provider = models.CharField(_("provider"), max_length=70)
    day = models.DateField(_("day"))
    filename = models.CharField(_("file"), max_length=200)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    uploaded_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)
    row_count = models.PositiveIntegerField(_("rows"), default=0)
    matched = models.PositiveIntegerField(_("matched"), default=0)
    statement_total_minor = models.BigIntegerField(_("statement total"), default=0)
    ledger_total_minor = models.BigIntegerField(_("ledger total"), default=0)

    class Meta:
        verbose_name = _("statement import")
        verbose_name_plural = _("statement imports")
        ordering = ["-day", "-id"]


class StatementLine(OrgOwned):
    class Match(models.TextChoices):
        MATCHED = "matched", _("Matched")
        AMOUNT_DIFFERS = "amount", _("Amount differs")
        NOT_IN_LEDGER = "missing", _("Not in the ledger")
        NOT_IN_STATEMENT = "extra", _("Not in the statement")

    statement = models.ForeignKey(StatementImport, on_delete=models.CASCADE, related_name="lines")
    transaction_id = models.CharField(_("transaction"), max_length=80)
    amount_minor = models.BigIntegerField(_("amount (minor units)"))
    ledger_amount_minor = models.BigIntegerField(_("ledger amount"), null=True, blank=True)
    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, null=True, related_name="+")
    match = models.CharField(_("match"), max_length=8, choices=Match.choices)

    class Meta:
        ordering = ["match", "transaction_id"]

    def __str__(self) -> str:
        return f"{self.transaction_id} {self.match}"
