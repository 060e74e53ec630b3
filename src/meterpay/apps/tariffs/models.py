"""Stored tariffs: the versioned price document, its revision history and account assignments.

The document (``Tariff.document``) is the meterpay tariff JSON of docs/tariffs.md, validated by
``meterpay.core.tariffs.parse_tariff`` on every write; ``name``, ``utility`` and
``description`` are copies of the document's fields for listing and filtering. Every change
adds a :class:`TariffRevision`; revisions are never changed or deleted.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from meterpay.apps.organisations.models import OrgOwned


class Utility(models.TextChoices):
    ELECTRICITY = "electricity", _("Electricity")
    WATER = "water", _("Water")


class Tariff(OrgOwned):
    name = models.CharField(_("name"), max_length=200)
    utility = models.CharField(_("utility"), max_length=12, choices=Utility.choices)
    description = models.TextField(_("description"), blank=True)
    document = models.JSONField(_("tariff document"))
    archived = models.BooleanField(_("archived"), default=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("tariff")
        verbose_name_plural = _("tariffs")
        ordering = ["archived", "utility", "name", "id"]
        indexes = [models.Index(fields=["organisation", "utility", "archived"])]

    def __str__(self) -> str:
        return self.name


class TariffRevision(OrgOwned):
    """One change of a tariff: the whole document after the change, who, when and why."""

    class Kind(models.TextChoices):
        CREATED = "created", _("Created")
        IMPORTED = "imported", _("Imported")
        EDITED = "edited", _("Document edited")
        VERSION_SCHEDULED = "version_scheduled", _("Price change scheduled")

    tariff = models.ForeignKey(
        Tariff, on_delete=models.PROTECT, related_name="revisions", verbose_name=_("tariff")
    )
    number = models.PositiveIntegerField(_("revision"))
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    document = models.JSONField(_("tariff document"))
    note = models.CharField(_("note"), max_length=300, blank=True)
    # Import warnings (URDB fields not imported) stay with the revision that dropped them.
    warnings = models.JSONField(_("warnings"), default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    created_by_label = models.CharField(_("by"), max_length=150)
    created_at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        verbose_name = _("tariff revision")
        verbose_name_plural = _("tariff revisions")
        ordering = ["tariff", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["tariff", "number"], name="tariff_revision_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.tariff_id} r{self.number}"


class AccountTariff(OrgOwned):
    """The tariff an account is rated with for one utility, from ``effective_from`` on.

    A later assignment for the same utility supersedes an earlier one; both stay. The
    per-account terms feed ``meterpay.core.tariffs.AccountTerms``; the room area comes from
    the account's rooms.
    """

    account = models.ForeignKey(
        "customers.Account",
        on_delete=models.PROTECT,
        related_name="tariff_assignments",
        verbose_name=_("account"),
    )
    tariff = models.ForeignKey(
        Tariff, on_delete=models.PROTECT, related_name="assignments", verbose_name=_("tariff")
    )
    utility = models.CharField(_("utility"), max_length=12, choices=Utility.choices)
    effective_from = models.DateTimeField(_("effective from"))
    tier_threshold_scale = models.DecimalField(
        _("tier threshold scale"),
        max_digits=8,
        decimal_places=4,
        default=1,
        help_text=_("Multiplies the tariff's tier thresholds, e.g. for household size."),
    )
    # Decimal strings replacing the tariff's thresholds (empty: use the tariff's, scaled).
    tier_thresholds = models.JSONField(_("tier thresholds"), default=list, blank=True)
    capacity_kva = models.DecimalField(
        _("capacity (kVA)"), max_digits=10, decimal_places=2, null=True, blank=True
    )
    contract_demand_kw = models.DecimalField(
        _("contract demand (kW)"), max_digits=10, decimal_places=2, null=True, blank=True
    )
    created_by_label = models.CharField(_("by"), max_length=150)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("account tariff")
        verbose_name_plural = _("account tariffs")
        ordering = ["account", "utility", "-effective_from"]
        indexes = [models.Index(fields=["account", "utility", "effective_from"])]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "utility", "effective_from"], name="account_tariff_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(tier_threshold_scale__gt=0), name="tier_scale_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.utility} {self.tariff_id} from {self.effective_from}"


class DefaultTariff(OrgOwned):
    """The tariff of an organisation's accounts for one utility when none is assigned to them.

    One rule decides the tariff of an account (``selectors.TariffBook``): its assignment in
    force, else this default.
    """

    utility = models.CharField(_("utility"), max_length=12, choices=Utility.choices)
    tariff = models.ForeignKey(
        Tariff, on_delete=models.PROTECT, related_name="default_for", verbose_name=_("tariff")
    )
    set_at = models.DateTimeField(_("set at"), auto_now=True)

    class Meta:
        verbose_name = _("default tariff")
        verbose_name_plural = _("default tariffs")
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "utility"], name="one_default_tariff_per_utility"
            )
        ]

    def __str__(self) -> str:
        return f"{self.organisation_id} {self.utility}: {self.tariff_id}"
