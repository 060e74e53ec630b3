"""A site's holiday calendar reaches rating: the holiday day type applies to its accounts."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse

from meterpay.apps.sites.models import Holiday
from meterpay.apps.sites.services import holidays_add
from meterpay.apps.tariffs import selectors
from meterpay.core.tariffs import Interval, parse_tariff, rate
from tests.factories import build_org

pytestmark = pytest.mark.django_db

# Peak price on weekdays 08:00-22:00; everything else (nights, weekends, holidays) valley.
DOCUMENT = {
    "format": "meterpay-tariff/1",
    "id": "holiday-test",
    "name": "Holiday test",
    "currency": "CNY",
    "commodity": "electricity",
    "versions": [
        {
            "effective_from": "2024-01-01T00:00:00",
            "energy": {
                "periods": [
                    {"name": "peak", "price": "1.000000"},
                    {"name": "valley", "price": "0.300000"},
                ],
                "schedule": [
                    {
                        "months": "1-12",
                        "day_types": ["weekday"],
                        "windows": [{"start": "08:00", "end": "22:00", "period": "peak"}],
                        "default_period": "valley",
                    },
                    {
                        "months": "1-12",
                        "day_types": ["weekend", "holiday"],
                        "default_period": "valley",
                    },
                ],
            },
        }
    ],
}


def test_a_site_holiday_is_rated_at_holiday_prices() -> None:
    org = build_org("hol", 950)
    tariff = parse_tariff(DOCUMENT)
    noon_on_a_friday = [
        Interval(
            start=datetime(2027, 1, 1, 12), end=datetime(2027, 1, 1, 13), quantity=Decimal("10")
        )
    ]
    before = rate(
        tariff=tariff, intervals=noon_on_a_friday, account=selectors.account_terms(org.account)
    )
    holidays_add(actor="t", site=org.site, days=[(date(2027, 1, 1), "New Year")])
    terms = selectors.account_terms(org.account)
    assert date(2027, 1, 1) in terms.holidays
    after = rate(tariff=tariff, intervals=noon_on_a_friday, account=terms)
    assert before.total == Decimal("10.00") and after.total == Decimal("3.00")


def test_holiday_calendar_page_adds_all_or_nothing_and_removes(client: Any) -> None:
    org = build_org("hol2", 960)
    client.force_login(org.users["operator"])
    url = reverse("console:site_holidays", args=[org.site.pk])
    response = client.post(url, {"lines": "2027-01-01 元旦\n2027-13-40 nonsense"}, follow=True)
    assert "Line 2" in response.content.decode()
    assert not Holiday.objects.filter(site=org.site).exists()
    client.post(url, {"lines": "2027-01-01 元旦\n2027-02-06 春节\n2027-01-01 again"})
    assert sorted(Holiday.objects.filter(site=org.site).values_list("name", flat=True)) == [
        "元旦",
        "春节",
    ]
    holiday = Holiday.objects.get(date=date(2027, 2, 6))
    client.post(url, {"remove": holiday.pk})
    assert Holiday.objects.filter(site=org.site).count() == 1
    client.force_login(org.users["viewer"])
    assert client.get(url).status_code == 200
    assert client.post(url, {"lines": "2027-05-01 x"}).status_code == 403
