"""Notification channels and the outbox of notifications, with each delivery's result."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from meterpay.apps.organisations.models import OrgOwned


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
        BILL_ISSUED = "bill_issued", _("Bill issued")
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
