from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def get_item(mapping: Any, key: str) -> Any:
    """``{{ counts|get_item:"pre-set" }}``: dictionary lookup for keys that are not identifiers."""
    try:
        return mapping.get(key)
    except AttributeError:
        return None
