"""The tariff of an account: its assignment in force, else the organisation's default tariff,
rated with the same account terms either way (TariffBook, the one rule)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from meterpay.apps.audit.models import AuditEvent
from meterpay.apps.sites import services as sites
from meterpay.apps.tariffs import selectors, services
from meterpay.apps.tariffs.models import DefaultTariff
from tests.factories import build_org
from tests.tariffs.helpers import single_price

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.get_fixed_timezone(480))


@pytest.fixture
def org() -> Any:
    return build_org("dt", 950)


def _tariff(org: Any, name: str, **changes: Any) -> Any:
    return services.tariff_create(
        actor="t", organisation=org.org, document=single_price(name=name, **changes)
    )


def test_no_assignment_and_no_default_means_no_tariff(org: Any) -> None:
    assert selectors.account_tariff(org.account, "electricity", NOW) is None


def test_the_default_rates_accounts_without_an_assignment_with_their_terms(org: Any) -> None:
    default = _tariff(org, "Default")
    sites.holidays_add(actor="t", site=org.site, days=[(date(2026, 10, 1), "National Day")])
    services.default_tariff_set(
        actor="t", organisation=org.org, utility="electricity", tariff=default
    )
    found = selectors.account_tariff(org.account, "electricity", NOW)
    assert found is not None
    tariff, terms = found
    assert tariff.name == "Default"
    # the same terms an assignment would get: the rooms' area and the sites' holidays
    assert terms.room_area_m2 == Decimal("50.00")
    assert date(2026, 10, 1) in terms.holidays
    assert terms == selectors.account_terms(org.account)
    assert selectors.account_tariff(org.account, "water", NOW) is None


def test_an_assignment_in_force_wins_over_the_default(org: Any) -> None:
    services.default_tariff_set(
        actor="t", organisation=org.org, utility="electricity", tariff=_tariff(org, "Default")
    )
    own = _tariff(org, "Own")
    services.account_tariff_assign(
        actor="t", account=org.account, tariff=own, effective_from=NOW - timedelta(days=1)
    )
    assert selectors.account_tariff(org.account, "electricity", NOW)[0].name == "Own"
    before = NOW - timedelta(days=2)
    assert selectors.account_tariff(org.account, "electricity", before)[0].name == "Default"


def test_one_book_answers_for_many_accounts_in_a_constant_number_of_queries(
    org: Any, django_assert_max_num_queries: Any
) -> None:
    services.default_tariff_set(
        actor="t", organisation=org.org, utility="electricity", tariff=_tariff(org, "Default")
    )
    with django_assert_max_num_queries(4):
        book = selectors.TariffBook([org.account])
    assert book.in_force(org.account, "electricity", NOW) is not None


def test_setting_and_clearing_the_default_is_audited(org: Any) -> None:
    tariff = _tariff(org, "Default")
    services.default_tariff_set(
        actor="t", organisation=org.org, utility="electricity", tariff=tariff
    )
    assert DefaultTariff.objects.get(organisation=org.org, utility="electricity").tariff == tariff
    services.default_tariff_set(actor="t", organisation=org.org, utility="electricity", tariff=None)
    assert not DefaultTariff.objects.filter(organisation=org.org).exists()
    actions = list(
        AuditEvent.objects.filter(action__startswith="tariff.default").values_list(
            "action", flat=True
        )
    )
    assert sorted(actions) == ["tariff.default_clear", "tariff.default_set"]


def test_a_default_of_another_utility_organisation_or_archived_is_refused(org: Any) -> None:
    other = build_org("dt-other", 960)
    foreign = _tariff(other, "Theirs")
    with pytest.raises(services.TariffValidationError, match="another organisation"):
        services.default_tariff_set(
            actor="t", organisation=org.org, utility="electricity", tariff=foreign
        )
    mine = _tariff(org, "Mine")
    with pytest.raises(services.TariffValidationError, match="not a water tariff"):
        services.default_tariff_set(actor="t", organisation=org.org, utility="water", tariff=mine)
    services.tariff_set_archived(actor="t", tariff=mine, archived=True)
    with pytest.raises(services.TariffValidationError, match="archived"):
        services.default_tariff_set(
            actor="t", organisation=org.org, utility="electricity", tariff=mine
        )
    assert not DefaultTariff.objects.exists()
