"""Payments: recharge orders, online payment providers, notifications received, statements."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from meterpay.apps.ledger.models import CHANNEL_CHOICES, JournalEntry
from meterpay.apps.organisations.models import OrgOwned


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
