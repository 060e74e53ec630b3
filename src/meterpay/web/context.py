from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from meterpay.core.roles import Permission

# (url name, label, permission, section) — only areas that exist are listed.
NAVIGATION = [
    ("console:home", _("Overview"), Permission.VIEW, "home"),
    ("console:site_tree", _("Sites"), Permission.VIEW, "sites"),
    ("console:room_grid", _("Room monitoring"), Permission.VIEW, "rooms"),
    ("console:customer_list", _("Customers"), Permission.VIEW, "customers"),
    ("console:account_list", _("Accounts"), Permission.VIEW, "accounts"),
    ("console:meter_list", _("Meters"), Permission.VIEW, "meters"),
    ("console:gateway_list", _("Gateways"), Permission.VIEW, "gateways"),
    ("console:tariff_list", _("Tariffs"), Permission.VIEW, "tariffs"),
    ("console:import_list", _("Imports"), Permission.IMPORT_DATA, "imports"),
    ("console:bill_run_list", _("Billing"), Permission.VIEW, "billing"),
    ("console:finance_orders", _("Finance"), Permission.VIEW_FINANCE, "finance"),
    ("console:balance_policy", _("Wallet settings"), Permission.VIEW, "wallet_settings"),
    ("console:audit_list", _("Audit log"), Permission.VIEW_AUDIT, "audit"),
    ("console:user_list", _("Users"), Permission.MANAGE_USERS, "users"),
    ("console:token_list", _("API tokens"), Permission.MANAGE_OWN_TOKENS, "tokens"),
]


def console(request: HttpRequest) -> dict[str, Any]:
    user: Any = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not getattr(user, "is_staff_member", False):
        return {}
    return {
        "navigation": [
            {"url": reverse(name), "label": label, "section": section}
            for name, label, permission, section in NAVIGATION
            if user.can(permission)
        ],
        "perms_mp": {p.value: user.can(p) for p in Permission},
    }
