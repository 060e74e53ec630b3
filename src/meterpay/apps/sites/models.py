from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from meterpay.apps.organisations.models import OrgOwned


class Site(OrgOwned):
    """A mall, campus, park, residential community or office block."""

    class Kind(models.TextChoices):
        MALL = "mall", _("Shopping mall")
        CAMPUS = "campus", _("Campus")
        PARK = "park", _("Industrial park")
        RESIDENTIAL = "residential", _("Residential community")
        OFFICE = "office", _("Office block")

    name = models.CharField(_("name"), max_length=120)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    address = models.CharField(_("address"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("site")
        verbose_name_plural = _("sites")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "name"], name="site_name_unique")
        ]

    def __str__(self) -> str:
        return self.name


class Building(OrgOwned):
    site = models.ForeignKey(
        Site, on_delete=models.PROTECT, related_name="buildings", verbose_name=_("site")
    )
    name = models.CharField(_("name"), max_length=120)

    class Meta:
        verbose_name = _("building")
        verbose_name_plural = _("buildings")
        ordering = ["site__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["site", "name"], name="building_name_unique")
        ]

    def __str__(self) -> str:
        return f"{self.site.name} / {self.name}"


class Floor(OrgOwned):
    building = models.ForeignKey(
        Building, on_delete=models.PROTECT, related_name="floors", verbose_name=_("building")
    )
    name = models.CharField(_("name"), max_length=40)
    level = models.IntegerField(_("level"), help_text=_("Sort order; negative for basements."))

    class Meta:
        verbose_name = _("floor")
        verbose_name_plural = _("floors")
        ordering = ["building_id", "level"]
        constraints = [
            models.UniqueConstraint(fields=["building", "name"], name="floor_name_unique")
        ]

    def __str__(self) -> str:
        return f"{self.building} / {self.name}"


class Room(OrgOwned):
    """A room or shop: the unit a customer rents and a meter supplies."""

    class Kind(models.TextChoices):
        SHOP = "shop", _("Shop")
        APARTMENT = "apartment", _("Apartment")
        DORMITORY = "dormitory", _("Dormitory room")
        OFFICE = "office", _("Office")
        PUBLIC_AREA = "public_area", _("Public area")

    floor = models.ForeignKey(
        Floor, on_delete=models.PROTECT, related_name="rooms", verbose_name=_("floor")
    )
    number = models.CharField(_("number"), max_length=40)
    kind = models.CharField(_("type"), max_length=16, choices=Kind.choices)
    area_m2 = models.DecimalField(
        _("area (m²)"),
        max_digits=10,
        decimal_places=2,
        default=Decimal("0.00"),
        validators=[MinValueValidator(Decimal("0"))],
    )

    class Meta:
        verbose_name = _("room")
        verbose_name_plural = _("rooms")
        ordering = [
            "floor__building__site__name",
            "floor__building__name",
            "floor__level",
            "number",
        ]
        constraints = [
            models.UniqueConstraint(fields=["floor", "number"], name="room_number_unique"),
            models.CheckConstraint(
                condition=models.Q(area_m2__gte=0), name="room_area_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.floor.building} {self.number}"


class Holiday(OrgOwned):
    """A public holiday at a site: time-of-use tariffs rate it with their holiday prices."""

    site = models.ForeignKey(
        Site, on_delete=models.PROTECT, related_name="holidays", verbose_name=_("site")
    )
    date = models.DateField(_("date"))
    name = models.CharField(_("name"), max_length=80, blank=True)

    class Meta:
        verbose_name = _("holiday")
        verbose_name_plural = _("holidays")
        ordering = ["date"]
        constraints = [
            models.UniqueConstraint(fields=["site", "date"], name="holiday_once_per_site")
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.name}"
