"""The organisation's balance policy: alarm levels, cut-off and restore, protected periods."""

from __future__ import annotations

from datetime import time

from django.db import models
from django.utils.translation import gettext_lazy as _

from meterpay.apps.organisations.models import OrgOwned


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

    class Meta:
        verbose_name = _("balance policy")
        verbose_name_plural = _("balance policies")
        constraints = [
            models.UniqueConstraint(fields=["organisation"], name="one_balance_policy_per_org")
        ]

    def __str__(self) -> str:
        return f"balance policy of organisation {self.organisation_id}"
