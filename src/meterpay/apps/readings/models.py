"""Register reads as the meters report them, the interval consumption derived from them,
and each meter's (and gateway's) link state: online, offline since when.

Energy and volume are Decimal throughout: kWh for electricity, m³ for water.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from meterpay.apps.organisations.models import Organisation, OrgOwned

#: Register values: up to 999999.99 on the meters we know, with room for finer meters.
REGISTER = {"max_digits": 14, "decimal_places": 4}
#: Consumption after the CT ratio (register delta x multiplier).
CONSUMPTION = {"max_digits": 18, "decimal_places": 4}


def _organisation_unchecked() -> models.ForeignKey[Organisation]:
    """The organisation of a high-volume row, without a database foreign key: the batch store
    takes it from the meter it has just loaded (docs/decisions/readings-foreign-keys.md)."""
    return models.ForeignKey(
        Organisation,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("organisation"),
        db_constraint=False,
    )


class RegisterRead(OrgOwned):
    """One reading of a meter's cumulative registers at one moment (stored once per moment)."""

    class Source(models.TextChoices):
        POLL = "poll", _("Polled")
        PUSH = "push", _("Pushed")
        MANUAL = "manual", _("Manual")

    organisation = _organisation_unchecked()
    #: No index of its own: the (meter, read_at) constraint's index serves every meter lookup.
    #: No database foreign keys on this table and Interval: docs/decisions/readings-foreign-keys.md
    meter = models.ForeignKey(
        "meters.Meter",
        on_delete=models.PROTECT,
        related_name="register_reads",
        verbose_name=_("meter"),
        db_index=False,
        db_constraint=False,
    )
    read_at = models.DateTimeField(_("read at"))
    source = models.CharField(_("source"), max_length=8, choices=Source.choices)
    #: kWh (electricity, forward active total) or m³ (water)
    total = models.DecimalField(_("total register"), **REGISTER)
    sharp = models.DecimalField(_("sharp"), null=True, blank=True, **REGISTER)
    peak = models.DecimalField(_("peak"), null=True, blank=True, **REGISTER)
    flat = models.DecimalField(_("flat"), null=True, blank=True, **REGISTER)
    valley = models.DecimalField(_("valley"), null=True, blank=True, **REGISTER)
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)

    class Meta:
        verbose_name = _("register read")
        verbose_name_plural = _("register reads")
        ordering = ["meter", "read_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["meter", "read_at"], name="register_read_once_per_moment"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.meter_id} @ {self.read_at:%Y-%m-%d %H:%M} = {self.total}"


class Interval(OrgOwned):
    """Consumption between two register reads of the same meter.

    Only ``booked`` intervals count as consumption; the others are kept, flagged, for review.
    """

    class Status(models.TextChoices):
        OK = "ok", _("OK")
        ROLLOVER = "rollover", _("Register rolled over")
        GAP = "gap", _("Gap (missed reads)")
        NEGATIVE = "negative", _("Negative delta")
        SPIKE = "spike", _("Implausible spike")

    BOOKED_STATUSES = (Status.OK, Status.ROLLOVER, Status.GAP)

    organisation = _organisation_unchecked()
    #: No index of its own: (meter, end_at) serves every meter lookup.
    meter = models.ForeignKey(
        "meters.Meter",
        on_delete=models.PROTECT,
        related_name="intervals",
        verbose_name=_("meter"),
        db_index=False,
        db_constraint=False,
    )
    start_read = models.ForeignKey(
        RegisterRead,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("start read"),
        db_constraint=False,
    )
    end_read = models.OneToOneField(
        RegisterRead,
        on_delete=models.CASCADE,
        related_name="interval",
        verbose_name=_("end read"),
        db_constraint=False,
    )
    start_at = models.DateTimeField(_("start"))
    end_at = models.DateTimeField(_("end"))
    register_delta = models.DecimalField(_("register delta"), **REGISTER)
    multiplier = models.PositiveIntegerField(_("multiplier"))
    #: register delta x multiplier, in kWh or m³
    consumption = models.DecimalField(_("consumption"), **CONSUMPTION)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    booked = models.BooleanField(_("booked"))
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("interval")
        verbose_name_plural = _("intervals")
        ordering = ["meter", "end_at"]
        indexes = [models.Index(fields=["meter", "end_at"], name="interval_meter_end")]

    def __str__(self) -> str:
        span = f"{self.start_at:%H:%M}-{self.end_at:%H:%M}"
        return f"{self.meter_id} {span} {self.consumption} ({self.status})"


class MeterLink(OrgOwned):
    """Whether the platform can reach a meter, and its latest register read (for lists)."""

    meter = models.OneToOneField(
        "meters.Meter", on_delete=models.CASCADE, related_name="link", verbose_name=_("meter")
    )
    online = models.BooleanField(_("online"), null=True, help_text=_("Unknown until first polled."))
    last_seen_at = models.DateTimeField(_("last seen at"), null=True, blank=True)
    offline_since = models.DateTimeField(_("offline since"), null=True, blank=True)
    missed_polls = models.PositiveIntegerField(_("missed polls in a row"), default=0)
    last_error = models.CharField(_("last error"), max_length=200, blank=True)
    last_read_at = models.DateTimeField(_("last read at"), null=True, blank=True)
    last_total = models.DecimalField(_("last register"), null=True, blank=True, **REGISTER)
    # The newest read (id, with last_read_at and last_total) and the newest good read (a first
    # read, a late one, or one whose interval was booked): all of a meter's past that the
    # interval rules need (core.intervals.MeterHistory). Kept here, beside the lock every writer
    # of the meter's reads takes, so a batch loads it with that lock instead of searching the
    # reads. Plain ids: the reads table has no database foreign keys to keep.
    last_read_id = models.BigIntegerField(_("last read"), null=True, blank=True, editable=False)
    good_read_id = models.BigIntegerField(
        _("newest good read"), null=True, blank=True, editable=False
    )
    good_read_at = models.DateTimeField(
        _("newest good read at"), null=True, blank=True, editable=False
    )
    good_total = models.DecimalField(
        _("newest good register"), null=True, blank=True, editable=False, **REGISTER
    )
    #: Overrides services.MAX_DEMAND_BY_KIND (kW or m³/h, before the CT ratio).
    max_demand = models.DecimalField(
        _("maximum demand"), null=True, blank=True, max_digits=10, decimal_places=3
    )

    class Meta:
        verbose_name = _("meter link")
        verbose_name_plural = _("meter links")

    def __str__(self) -> str:
        state = "unknown" if self.online is None else "online" if self.online else "offline"
        return f"meter {self.meter_id} {state}"


class GatewayLink(OrgOwned):
    """Whether a gateway is connected to the gateway process now, and since when."""

    gateway = models.OneToOneField(
        "meters.Gateway", on_delete=models.CASCADE, related_name="link", verbose_name=_("gateway")
    )
    online = models.BooleanField(_("online"), default=False)
    since = models.DateTimeField(_("since"), null=True, blank=True)
    attributes = models.JSONField(_("attributes"), default=dict, blank=True)
    last_reason = models.CharField(_("last disconnect reason"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("gateway link")
        verbose_name_plural = _("gateway links")

    def __str__(self) -> str:
        return f"gateway {self.gateway_id} {'online' if self.online else 'offline'}"
