from __future__ import annotations

from datetime import date

from meterpay.apps.sites.models import Holiday


def site_holidays(site_ids: list[int]) -> frozenset[date]:
    """Every holiday date of the given sites (rating treats them as the holiday day type)."""
    return frozenset(Holiday.objects.filter(site_id__in=site_ids).values_list("date", flat=True))
