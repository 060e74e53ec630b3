"""Billing: the rating state of each account's meter, and postpaid bills."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from meterpay.apps.organisations.models import OrgOwned


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
