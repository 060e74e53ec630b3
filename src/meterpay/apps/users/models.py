from __future__ import annotations

import hashlib

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _

from meterpay.core.roles import Permission, Role, role_allows


class User(AbstractUser):
    """A staff user (owner, operator, finance, viewer) or a tenant user of the portal."""

    class RoleChoice(models.TextChoices):
        OWNER = Role.OWNER.value, _("Owner")
        OPERATOR = Role.OPERATOR.value, _("Operator")
        FINANCE = Role.FINANCE.value, _("Finance")
        VIEWER = Role.VIEWER.value, _("Viewer")
        TENANT = Role.TENANT.value, _("Tenant")

    organisation = models.ForeignKey(
        "organisations.Organisation",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="users",
        verbose_name=_("organisation"),
    )
    role = models.CharField(
        _("role"), max_length=16, choices=RoleChoice.choices, default=Role.VIEWER
    )
    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="portal_users",
        verbose_name=_("customer"),
        help_text=_("For tenant users: the customer whose accounts they see in the portal."),
    )

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(role="tenant") | models.Q(customer__isnull=False),
                name="tenant_user_has_customer",
            ),
        ]

    @property
    def is_staff_member(self) -> bool:
        return self.organisation_id is not None and self.role != Role.TENANT

    def can(self, permission: Permission | str) -> bool:
        return (
            self.is_active
            and self.organisation_id is not None
            and role_allows(self.role, permission)
        )


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiToken(models.Model):
    """A bearer token for the REST API. Only its SHA-256 is stored; the raw token is shown once."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(_("prefix"), max_length=12)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
