"""Roll-ups of consumption and cost for the reports: derived data, kept up to date from the
stored intervals and ledger entries (``services.rollups_advance``) and rebuilt from them for a
re-rated period (``services.rollups_rebuild``); docs/reports.md.

Buckets are keyed by plain ids, not foreign keys: they are derived (deleting one loses
nothing) and written in bulk, and ``account_id`` 0 (no account) must take part in the key.
The key is the primary key (no id column, no second index), the time in the middle: a
meter's (an account's) buckets of a span are one range of it.
Quantities are integers of 1/10000 kWh or m³, money integer minor units.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from meterpay.apps.organisations.models import Organisation


def _organisation() -> models.ForeignKey[Organisation]:
    """The organisation of a high-volume derived row: no database foreign key, no index of its
    own (the reports filter on the meters or accounts they read)."""
    return models.ForeignKey(
        Organisation,
        on_delete=models.DO_NOTHING,
        related_name="+",
        verbose_name=_("organisation"),
        db_constraint=False,
        db_index=False,
    )


class RollupCursor(models.Model):
    """How far a roll-up has read an append-only table: the highest id taken and the ids below
    it still missing (``[[low, high, since], …]``, see ``meterpay.core.reports.cursor``)."""

    name = models.CharField(_("name"), max_length=20, unique=True)
    last_id = models.BigIntegerField(_("last id"), default=0)
    gaps = models.JSONField(_("gaps"), default=list, blank=True)
    updated_at = models.DateTimeField(_("updated at"), null=True, blank=True)

    class Meta:
        verbose_name = _("roll-up cursor")
        verbose_name_plural = _("roll-up cursors")

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_id}"


class Consumption(models.Model):
    """What a meter's intervals ending in a bucket say, for one account (0: none)."""

    organisation = _organisation()
    meter_id = models.BigIntegerField(_("meter"))
    account_id = models.BigIntegerField(_("account"), help_text=_("0: no account"))
    #: ``e`` electricity (kWh), ``w`` water (m³)
    utility = models.CharField(_("utility"), max_length=1)
    #: booked consumption, 1/10000 kWh or m³
    quantity = models.BigIntegerField(_("quantity"), default=0)
    #: of it, by the tariff's period (the rest is untimed)
    sharp = models.BigIntegerField(_("sharp"), default=0)
    peak = models.BigIntegerField(_("peak"), default=0)
    flat = models.BigIntegerField(_("flat"), default=0)
    valley = models.BigIntegerField(_("valley"), default=0)
    other = models.BigIntegerField(_("other periods"), default=0)
    #: of it, in local hours 00:00-06:00
    night = models.BigIntegerField(_("night"), default=0)
    intervals = models.IntegerField(_("intervals"), default=0)
    estimated = models.IntegerField(_("estimated (gap) intervals"), default=0)
    flagged = models.IntegerField(_("flagged intervals"), default=0)
    #: the span the booked intervals cover, and the estimated ones
    seconds = models.IntegerField(_("seconds covered"), default=0)
    estimated_seconds = models.IntegerField(_("seconds estimated"), default=0)

    class Meta:
        abstract = True


class MeterHour(Consumption):
    #: the local hour's start (an instant)
    hour = models.DateTimeField(_("hour"))
    pk = models.CompositePrimaryKey("meter_id", "hour", "account_id")

    class Meta:
        verbose_name = _("meter hour")
        verbose_name_plural = _("meter hours")

    def __str__(self) -> str:
        return f"meter {self.meter_id} / account {self.account_id} @ {self.hour}"


class MeterDay(Consumption):
    day = models.DateField(_("day"))
    pk = models.CompositePrimaryKey("meter_id", "day", "account_id")

    class Meta:
        verbose_name = _("meter day")
        verbose_name_plural = _("meter days")

    def __str__(self) -> str:
        return f"meter {self.meter_id} / account {self.account_id} @ {self.day}"


class MeterMonth(Consumption):
    #: the month's first day
    month = models.DateField(_("month"))
    pk = models.CompositePrimaryKey("meter_id", "month", "account_id")

    class Meta:
        verbose_name = _("meter month")
        verbose_name_plural = _("meter months")
        indexes = [models.Index(fields=["organisation", "month"], name="meter_month_org")]

    def __str__(self) -> str:
        return f"meter {self.meter_id} / account {self.account_id} @ {self.month}"


class Cost(models.Model):
    """What an account's deductions (and rating credits) took from its wallet in a bucket,
    per meter (``meter_id`` 0: a deduction that names no meter)."""

    organisation = _organisation()
    account_id = models.BigIntegerField(_("account"))
    meter_id = models.BigIntegerField(_("meter"), help_text=_("0: not a meter's deduction"))
    #: ``e``, ``w``, or empty for a deduction that names no meter
    utility = models.CharField(_("utility"), max_length=1, blank=True)
    #: minor units taken (a rating credit counts negative)
    amount_minor = models.BigIntegerField(_("amount (minor units)"), default=0)
    entries = models.IntegerField(_("entries"), default=0)

    class Meta:
        abstract = True


class CostDay(Cost):
    day = models.DateField(_("day"))
    pk = models.CompositePrimaryKey("account_id", "day", "meter_id")

    class Meta:
        verbose_name = _("cost per day")
        verbose_name_plural = _("costs per day")

    def __str__(self) -> str:
        return f"account {self.account_id} / meter {self.meter_id} @ {self.day}"


class CostMonth(Cost):
    month = models.DateField(_("month"))
    pk = models.CompositePrimaryKey("account_id", "month", "meter_id")

    class Meta:
        verbose_name = _("cost per month")
        verbose_name_plural = _("costs per month")
        indexes = [models.Index(fields=["organisation", "month"], name="cost_month_org")]

    def __str__(self) -> str:
        return f"account {self.account_id} / meter {self.meter_id} @ {self.month}"
