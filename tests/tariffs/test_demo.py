"""Demo tariffs: valid documents that rate their sites' sample months, assigned in bulk."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from meterpay.apps.audit.models import AuditEvent
from meterpay.apps.tariffs import selectors, services
from meterpay.apps.tariffs.demo import demo_tariffs_seed
from meterpay.apps.tariffs.models import AccountTariff
from meterpay.core.tariffs import AccountTerms
from tests.factories import build_org
from tests.tariffs.helpers import fixture_document

pytestmark = pytest.mark.django_db

PROFILE = {
    "mall": ("shop", AccountTerms()),
    "dorm": ("dormitory", AccountTerms()),
    "water": ("water", AccountTerms()),
    "office_capacity": ("office", AccountTerms(capacity_kva=Decimal(125))),
    "office_demand": ("office", AccountTerms(contract_demand_kw=Decimal(110))),
}


def test_demo_tariffs_rate_their_sample_months_and_are_assigned() -> None:
    org = build_org("demo-t", 930)  # a mall with one open account
    tariffs = demo_tariffs_seed(actor="demo-seed", organisation=org.org)
    assert set(tariffs) == set(PROFILE)
    for key, tariff in tariffs.items():
        profile, terms = PROFILE[key]
        engine = selectors.engine_tariff(tariff)
        for month in (1, 7):
            intervals = selectors.sample_intervals(profile, year=2026, month=month, step_minutes=15)
            preview = selectors.rate_preview(tariff=engine, intervals=intervals, account=terms)
            assert preview.bill.total > 0, key
    mall = tariffs["mall"]
    in_force = selectors.tariff_in_force(org.account, "electricity", timezone.now())
    assert in_force is not None and in_force.tariff == mall
    rows = selectors.version_rows(selectors.engine_tariff(mall), datetime(2026, 11, 23))
    assert [r.state for r in rows] == ["past", "current", "scheduled"]
    assert AuditEvent.objects.filter(action="account.tariff_assign").count() == 1


def test_bulk_assignment_keeps_the_rules(make_org: Any) -> None:
    org = make_org("bulk", 940)
    tariff = services.tariff_create(
        actor="test",
        organisation=org.org,
        document=fixture_document("cn_two_part_demand_pf.json"),
    )
    start = timezone.now()
    with pytest.raises(services.TariffValidationError):
        services.account_tariffs_assign_new(
            actor="test",
            tariff=tariff,
            assignments=[(org.account, start, services.AssignmentTerms())],
        )
    terms = services.AssignmentTerms(contract_demand_kw="80")
    services.account_tariffs_assign_new(
        actor="test", tariff=tariff, assignments=[(org.account, start, terms)]
    )
    assert AccountTariff.objects.get(account=org.account).contract_demand_kw == 80
    with pytest.raises(services.TariffValidationError):
        services.account_tariffs_assign_new(
            actor="test", tariff=tariff, assignments=[(org.account, start, terms)]
        )
