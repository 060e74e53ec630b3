from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from meterpay.apps.organisations.models import OrgOwned


class Customer(OrgOwned):
    """A customer archive: a person or a company that rents rooms and pays for energy."""

    class Kind(models.TextChoices):
        PERSON = "person", _("Person")
        COMPANY = "company", _("Company")

    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.PERSON)
    name = models.CharField(_("name"), max_length=200)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    notes = models.TextField(_("notes"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["organisation", "name"])]

    def __str__(self) -> str:
        return self.name


class Account(OrgOwned):
    """What a customer pays through: rooms, meters, billing mode and (later) a wallet.

    Lifecycle: pre-set → open → suspended ⇄ open → closed. A closed account stays readable.
    """

    class BillingMode(models.TextChoices):
        PREPAID = "prepaid", _("Prepaid")
        POSTPAID = "postpaid", _("Postpaid")

    class BillingSide(models.TextChoices):
        PLATFORM = "platform", _("Platform-side")
        METER = "meter", _("Meter-side")

    class Status(models.TextChoices):
        PRESET = "pre-set", _("Pre-set")
        OPEN = "open", _("Open")
        SUSPENDED = "suspended", _("Suspended")
        CLOSED = "closed", _("Closed")

    number = models.CharField(_("account number"), max_length=20)
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="accounts", verbose_name=_("customer")
    )
    rooms = models.ManyToManyField("sites.Room", related_name="accounts", verbose_name=_("rooms"))
    billing_mode = models.CharField(
        _("billing mode"), max_length=8, choices=BillingMode.choices, default=BillingMode.PREPAID
    )
    billing_side = models.CharField(
        _("billing side"), max_length=8, choices=BillingSide.choices, default=BillingSide.PLATFORM
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PRESET
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    opened_at = models.DateTimeField(_("opened at"), null=True, blank=True)
    suspended_at = models.DateTimeField(_("suspended at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    move_in_on = models.DateField(_("move-in date"), null=True, blank=True)
    move_out_on = models.DateField(_("move-out date"), null=True, blank=True)

    class Meta:
        verbose_name = _("account")
        verbose_name_plural = _("accounts")
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "number"], name="account_number_unique"
            ),
            models.CheckConstraint(
                condition=~models.Q(status="open") | models.Q(opened_at__isnull=False),
                name="open_account_has_opened_at",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="closed") | models.Q(closed_at__isnull=False),
                name="closed_account_has_closed_at",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.customer.name}"
