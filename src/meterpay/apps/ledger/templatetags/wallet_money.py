"""``{{ value|minor }}``: integer minor units as a decimal amount string ("12.34")."""

from __future__ import annotations

from typing import Any

from django import template

from meterpay.core.money import format_amount, from_minor

register = template.Library()


@register.filter
def minor(value: Any, currency: str = "CNY") -> str:
    if value is None or value == "":
        return "—"
    return format_amount(from_minor(int(value), currency or "CNY"), currency or "CNY")
