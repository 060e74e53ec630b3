"""Remote control of relays and valves.

``MeterCommand`` rows are the outbox: services write them in the caller's transaction and the
gateway process sends them after commit. ``MeterSupplyState`` holds what the platform wants
(desired) and what the meter last reported.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from meterpay.apps.organisations.models import OrgOwned


class Supply(models.TextChoices):
    ON = "on", _("On")  # relay closed / valve open
    OFF = "off", _("Off")  # relay tripped / valve closed
    UNKNOWN = "unknown", _("Unknown")


class MeterCommand(OrgOwned):
    class Kind(models.TextChoices):
        RELAY_TRIP = "relay_trip", _("Trip relay")
        RELAY_CLOSE = "relay_close", _("Close relay")
        VALVE_OPEN = "valve_open", _("Open valve")
        VALVE_CLOSE = "valve_close", _("Close valve")
        CREDIT_DOWNLOAD = "credit_download", _("Credit download")
        CREDIT_REFUND = "credit_refund", _("Energy refund")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        ACKNOWLEDGED = "acknowledged", _("Acknowledged")
        CONFIRMED = "confirmed", _("Confirmed")
        FAILED = "failed", _("Failed")
        SUPERSEDED = "superseded", _("Superseded")
        TIMED_OUT = "timed_out", _("Timed out")

    class Requester(models.TextChoices):
        OPERATOR = "operator", _("Operator")
        BALANCE_RULE = "balance_rule", _("Balance rule")
        BATCH_TASK = "batch_task", _("Batch task")
        API = "api", _("API")
        RECHARGE = "recharge", _("Recharge")

    #: Not sent yet, or sent with its outcome still open.
    OPEN_STATUSES = (Status.PENDING, Status.SENT, Status.ACKNOWLEDGED)
    FINAL_STATUSES = (Status.CONFIRMED, Status.FAILED, Status.SUPERSEDED, Status.TIMED_OUT)

    command_id = models.UUIDField(_("command id"), default=uuid.uuid4, unique=True, editable=False)
    meter = models.ForeignKey(
        "meters.Meter", on_delete=models.PROTECT, related_name="commands", verbose_name=_("meter")
    )
    #: Money commands of a meter-side account; never superseded, each with its purchase number.
    CREDIT_KINDS = (Kind.CREDIT_DOWNLOAD, Kind.CREDIT_REFUND)

    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    requested_by = models.CharField(_("requested by"), max_length=16, choices=Requester.choices)
    requested_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("requested by user"),
    )
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    # NULL means "no key"; an empty string would collide in the unique constraint.
    idempotency_key = models.CharField(  # noqa: DJ001
        _("idempotency key"), max_length=100, null=True, blank=True
    )
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    acknowledged_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    claimed_by = models.CharField(_("claimed by"), max_length=64, blank=True)
    superseded_by = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("superseded by"),
    )
    outcome = models.CharField(_("outcome"), max_length=300, blank=True)
    #: Credit download: the money to add; energy refund: the money to leave on the meter.
    amount_minor = models.BigIntegerField(_("amount (minor units)"), null=True, blank=True)
    #: The meter's purchase count this command makes; fixed when it is first sent.
    purchase_number = models.PositiveIntegerField(_("purchase number"), null=True, blank=True)
    #: What the meter confirmed: money added (download) or taken back (energy refund).
    confirmed_amount_minor = models.BigIntegerField(
        _("confirmed amount (minor units)"), null=True, blank=True
    )

    class Meta:
        verbose_name = _("meter command")
        verbose_name_plural = _("meter commands")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="meter_command_idempotency_key_once",
            ),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="meter_command_due")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.command_id} ({self.status})"

    @property
    def target(self) -> str:
        return (
            Supply.ON if self.kind in (self.Kind.RELAY_CLOSE, self.Kind.VALVE_OPEN) else Supply.OFF
        )

    @property
    def is_credit(self) -> bool:
        return self.kind in self.CREDIT_KINDS

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL_STATUSES


class MeterSupplyState(OrgOwned):
    meter = models.OneToOneField(
        "meters.Meter", on_delete=models.CASCADE, related_name="supply", verbose_name=_("meter")
    )
    desired = models.CharField(
        _("desired"), max_length=8, choices=Supply.choices, default=Supply.UNKNOWN
    )
    desired_at = models.DateTimeField(_("desired since"), null=True, blank=True)
    reported = models.CharField(
        _("reported"), max_length=8, choices=Supply.choices, default=Supply.UNKNOWN
    )
    reported_at = models.DateTimeField(_("reported at"), null=True, blank=True)

    class Meta:
        verbose_name = _("supply state")
        verbose_name_plural = _("supply states")

    def __str__(self) -> str:
        return f"meter {self.meter_id}: desired {self.desired}, reported {self.reported}"


class MeterBalance(OrgOwned):
    """The money a prepaid meter reports (its mirror), and what the platform confirmed on it.

    ``managed``: the platform downloads credit to this meter (a meter-side account), so its
    reports are compared with the platform's and differences are flagged.
    """

    meter = models.OneToOneField(
        "meters.Meter", on_delete=models.CASCADE, related_name="balance", verbose_name=_("meter")
    )
    remaining_minor = models.BigIntegerField(_("remaining money"), null=True, blank=True)
    purchase_count = models.PositiveIntegerField(_("purchase count"), null=True, blank=True)
    reported_at = models.DateTimeField(_("reported at"), null=True, blank=True)
    managed = models.BooleanField(_("credit managed by the platform"), default=False)
    #: The purchase count after the platform's last confirmed download or refund.
    confirmed_count = models.PositiveIntegerField(
        _("confirmed purchase count"), null=True, blank=True
    )
    #: The most the meter can hold: what it held when first managed, plus confirmed downloads,
    #: reset by each confirmed refund.
    credited_minor = models.BigIntegerField(_("credited"), null=True, blank=True)

    class Meta:
        verbose_name = _("meter balance")
        verbose_name_plural = _("meter balances")

    def __str__(self) -> str:
        return f"meter {self.meter_id}: {self.remaining_minor} after purchase {self.purchase_count}"


class BalanceDiscrepancy(OrgOwned):
    """A meter's reported money or purchase count that the platform's records do not explain."""

    class Kind(models.TextChoices):
        PURCHASE_COUNT = "purchase_count", _("Purchase count differs")
        UNEXPLAINED_RISE = "rise", _("Remaining money rose without a download")
        ABOVE_CREDITED = "above_credited", _("Remaining money above what was downloaded")

    meter = models.ForeignKey(
        "meters.Meter",
        on_delete=models.PROTECT,
        related_name="balance_discrepancies",
        verbose_name=_("meter"),
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    detail = models.CharField(_("detail"), max_length=300)
    detected_at = models.DateTimeField(_("detected at"))
    cleared_at = models.DateTimeField(_("cleared at"), null=True, blank=True)
    cleared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("cleared by"),
    )
    clear_note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("balance discrepancy")
        verbose_name_plural = _("balance discrepancies")
        ordering = ["-detected_at", "-id"]

    def __str__(self) -> str:
        return f"meter {self.meter_id}: {self.get_kind_display()}"
