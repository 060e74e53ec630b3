from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from meterpay.apps.organisations.models import OrgOwned


class Protocol(models.TextChoices):
    DLT645 = "dlt645", "DL/T 645-2007"
    MODBUS = "modbus", "Modbus-RTU"
    CJT188 = "cjt188", "CJ/T 188-2004"


class Gateway(OrgOwned):
    """A 4G DTU, serial server or MQTT gateway that links meters on a bus to the platform."""

    class Kind(models.TextChoices):
        DTU_4G = "dtu_4g", _("4G DTU")
        SERIAL_SERVER = "serial_server", _("Serial server")
        MQTT = "mqtt", _("MQTT gateway")

    site = models.ForeignKey(
        "sites.Site", on_delete=models.PROTECT, related_name="gateways", verbose_name=_("site")
    )
    identifier = models.CharField(
        _("identifier"),
        max_length=64,
        unique=True,
        help_text=_("The ID the gateway registers with."),
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    protocol = models.CharField(_("protocol"), max_length=8, choices=Protocol.choices)
    name = models.CharField(_("name"), max_length=120, blank=True)
    # A serial server in TCP-server mode does not connect out: the gateway process dials it.
    host = models.CharField(
        _("host"),
        max_length=255,
        blank=True,
        help_text=_(
            "Serial servers in TCP-server mode only: the address the platform connects to. "
            "Leave empty when the device connects to the platform."
        ),
    )
    port = models.PositiveIntegerField(
        _("port"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(65535)],
    )
    last_seen_at = models.DateTimeField(_("last seen at"), null=True, blank=True)

    class Meta:
        verbose_name = _("gateway")
        verbose_name_plural = _("gateways")
        ordering = ["identifier"]

    def __str__(self) -> str:
        return self.name or self.identifier

    @property
    def dialled(self) -> bool:
        """Whether the platform connects to this gateway (rather than the other way round)."""
        return bool(self.host)

    def clean(self) -> None:
        super().clean()
        if self.host and self.kind != self.Kind.SERIAL_SERVER:
            raise ValidationError(
                {"host": _("Only a serial server (TCP-server mode) is reached at a host.")}
            )
        if self.host and self.port is None:
            raise ValidationError({"port": _("Give the port the serial server listens on.")})
        if self.port is not None and not self.host:
            raise ValidationError({"host": _("Give the host of the serial server.")})


class Meter(OrgOwned):
    """A replaced meter keeps its history (removed_on, replaced_by)."""

    class Kind(models.TextChoices):
        ELECTRICITY_1P = "electricity_1p", _("Electricity, single-phase")
        ELECTRICITY_3P = "electricity_3p", _("Electricity, three-phase")
        WATER = "water", _("Water")

    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    model = models.CharField(_("model"), max_length=60, blank=True)
    address = models.CharField(
        _("address"),
        max_length=20,
        help_text=_("Bus address: 12 digits (DL/T 645), 14 (CJ/T 188), unit id (Modbus)."),
    )
    serial_number = models.CharField(_("serial number"), max_length=40, blank=True)
    protocol = models.CharField(_("protocol"), max_length=8, choices=Protocol.choices)
    gateway = models.ForeignKey(
        Gateway,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="meters",
        verbose_name=_("gateway"),
    )
    multiplier = models.PositiveIntegerField(
        _("CT ratio / multiplier"), default=1, validators=[MinValueValidator(1)]
    )
    room = models.ForeignKey(
        "sites.Room",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="meters",
        verbose_name=_("room"),
    )
    account = models.ForeignKey(
        "customers.Account",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="meters",
        verbose_name=_("account"),
    )
    installed_on = models.DateField(_("installed on"), null=True, blank=True)
    removed_on = models.DateField(_("removed on"), null=True, blank=True)
    replaced_by = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="replaces",
        verbose_name=_("replaced by"),
    )

    class Meta:
        verbose_name = _("meter")
        verbose_name_plural = _("meters")
        ordering = ["address"]
        constraints = [
            # Modbus unit ids repeat across buses; other addresses are checked org-wide.
            models.UniqueConstraint(
                fields=["gateway", "protocol", "address"],
                condition=models.Q(removed_on__isnull=True),
                name="active_meter_address_unique_on_bus",
            ),
            models.CheckConstraint(
                condition=models.Q(multiplier__gte=1), name="meter_multiplier_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.address}"

    @property
    def is_electricity(self) -> bool:
        return self.kind != self.Kind.WATER
