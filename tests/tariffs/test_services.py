"""Stored tariffs: validation with field paths, revisions kept, scheduled versions, URDB import,
assignment and the tariff in force."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from meterpay.apps.audit.models import AuditEvent
from meterpay.apps.tariffs import selectors, services
from meterpay.apps.tariffs.models import AccountTariff, Tariff
from meterpay.core.tariffs import Interval, rate
from tests.factories import build_org
from tests.tariffs.helpers import (
    fixture_document,
    fixture_text,
    single_price,
    urdb_with_unimported_fields,
)

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.get_fixed_timezone(480))


@pytest.fixture
def org() -> Any:
    return build_org("tf", 900)


def create(org: Any, document: dict[str, Any] | None = None) -> Tariff:
    return services.tariff_create(
        actor=org.users["finance"], organisation=org.org, document=document or single_price()
    )


def test_create_stores_the_normalised_document_a_revision_and_an_audit_event(org: Any) -> None:
    tariff = create(org, fixture_document("cn_commercial_tou_cpp.json"))
    assert tariff.name == "General commercial, TOU with summer critical peak"
    assert tariff.utility == "electricity"
    assert tariff.document == fixture_document("cn_commercial_tou_cpp.json")
    revision = tariff.revisions.get()
    assert (revision.number, revision.kind, revision.created_by_label) == (
        1,
        "created",
        "tf-finance",
    )
    assert AuditEvent.objects.filter(action="tariff.create", object_id=str(tariff.pk)).exists()


@pytest.mark.parametrize(
    "change,path",
    [
        (
            lambda d: d["versions"][0]["energy"]["periods"][0].update(price=0.65),
            "versions[0].energy.periods[0].price",
        ),
        (lambda d: d["versions"][0].update(colour="red"), "versions[0].colour"),
        (lambda d: d.update(currency="XXX"), "currency"),
        (lambda d: d.pop("name"), "name"),
    ],
)
def test_validation_errors_name_the_field_path(org: Any, change: Any, path: str) -> None:
    document = single_price()
    change(document)
    with pytest.raises(services.TariffValidationError) as error:
        create(org, document)
    assert path in error.value.message_dict
    assert not Tariff.objects.filter(organisation=org.org).exists()


def test_a_document_that_is_not_an_object_is_a_document_error(org: Any) -> None:
    with pytest.raises(services.TariffValidationError) as error:
        create(org, [1, 2])  # type: ignore[arg-type]
    assert list(error.value.message_dict) == ["document"]


def test_every_edit_keeps_the_previous_document_as_a_revision(org: Any) -> None:
    tariff = create(org)
    first = tariff.document
    edited = single_price()
    edited["versions"][0]["energy"]["periods"][0]["price"] = "0.7000"
    services.tariff_update_document(
        actor=org.users["owner"], tariff=tariff, document=edited, note="price correction"
    )
    tariff.refresh_from_db()
    assert tariff.document["versions"][0]["energy"]["periods"][0]["price"] == "0.7000"
    revisions = list(tariff.revisions.order_by("number"))
    assert [r.number for r in revisions] == [1, 2]
    assert revisions[0].document == first
    assert (revisions[1].kind, revisions[1].note) == ("edited", "price correction")
    # the same document again changes nothing
    services.tariff_update_document(actor=org.users["owner"], tariff=tariff, document=edited)
    assert tariff.revisions.count() == 2


def test_an_invalid_edit_changes_nothing(org: Any) -> None:
    tariff = create(org)
    bad = single_price()
    bad["versions"][0]["energy"]["periods"][0]["price"] = "-1"
    with pytest.raises(services.TariffValidationError) as error:
        services.tariff_update_document(actor=org.users["owner"], tariff=tariff, document=bad)
    assert error.value.message_dict == {
        "versions[0].energy.periods[0].price": ["must not be negative"]
    }
    tariff.refresh_from_db()
    assert tariff.revisions.count() == 1
    assert tariff.document["versions"][0]["energy"]["periods"][0]["price"] == "0.6500"


def test_the_utility_of_a_tariff_cannot_change(org: Any) -> None:
    tariff = create(org)
    with pytest.raises(services.TariffValidationError) as error:
        services.tariff_update_document(
            actor="test", tariff=tariff, document=fixture_document("water_stepped.json")
        )
    assert "commodity" in error.value.message_dict


@time_machine.travel(NOW, tick=False)
def test_a_scheduled_version_applies_from_its_date(org: Any) -> None:
    tariff = create(org)
    change_at = datetime(2026, 12, 1)
    services.tariff_version_schedule(
        actor=org.users["finance"],
        tariff=tariff,
        effective_from=change_at,
        version={"energy": {"periods": [{"name": "flat", "price": "0.8000"}]}},
    )
    tariff.refresh_from_db()
    assert [v["effective_from"] for v in tariff.document["versions"]] == [
        "2024-01-01T00:00:00",
        "2026-12-01T00:00:00",
    ]
    revision = tariff.revisions.order_by("-number").first()
    assert revision is not None and revision.kind == "version_scheduled"
    engine = selectors.engine_tariff(tariff)
    hour = timedelta(hours=1)
    before = Interval(start=change_at - hour, end=change_at, quantity=Decimal(10))
    after = Interval(start=change_at, end=change_at + hour, quantity=Decimal(10))
    lines = {
        line.month: line
        for line in rate(tariff=engine, intervals=[before, after]).lines
        if line.component == "energy"
    }
    assert lines["2026-11"].unit_price == Decimal("0.65")
    assert lines["2026-12"].unit_price == Decimal("0.8")
    rows = selectors.version_rows(engine, datetime(2026, 11, 23, 12))
    assert [r.state for r in rows] == ["current", "scheduled"]


@time_machine.travel(NOW, tick=False)
def test_schedule_refuses_the_past_a_taken_date_and_names_the_version_path(org: Any) -> None:
    tariff = create(org)
    with pytest.raises(services.TariffValidationError) as error:
        services.tariff_version_schedule(
            actor="test", tariff=tariff, effective_from=datetime(2026, 1, 1), version={}
        )
    assert "effective_from" in error.value.message_dict
    with pytest.raises(services.TariffValidationError) as error:
        services.tariff_version_schedule(
            actor="test",
            tariff=tariff,
            effective_from=datetime(2027, 1, 1),
            version={"energy": {"periods": [{"name": "flat", "price": "x"}]}},
        )
    assert error.value.message_dict == {
        "version.energy.periods[0].price": ["must be a decimal string"]
    }
    # an aware time is taken in the organisation's time zone
    services.tariff_version_schedule(
        actor="test",
        tariff=tariff,
        effective_from=datetime(2027, 1, 1, tzinfo=timezone.get_fixed_timezone(480)),
        version={"energy": {"periods": [{"name": "flat", "price": "0.7"}]}},
    )
    tariff.refresh_from_db()
    assert tariff.document["versions"][-1]["effective_from"] == "2027-01-01T00:00:00"
    assert tariff.revisions.count() == 2


def test_urdb_import_keeps_and_returns_its_warnings(org: Any) -> None:
    tariff, loaded = services.tariff_import(
        actor=org.users["owner"],
        organisation=org.org,
        text=urdb_with_unimported_fields(),
    )
    assert loaded.source_format == "urdb"
    assert len(loaded.warnings) == 2
    assert any("fueladjustmentsmonthly" in w for w in loaded.warnings)
    revision = tariff.revisions.get()
    assert revision.kind == "imported"
    assert revision.warnings == list(loaded.warnings)
    event = AuditEvent.objects.get(action="tariff.create", object_id=str(tariff.pk))
    assert event.after is not None and event.after["warnings"] == list(loaded.warnings)


def test_import_of_a_meterpay_document_and_export_round_trip(org: Any) -> None:
    text = fixture_text("cn_two_part_demand_pf.json")
    tariff, loaded = services.tariff_import(actor="test", organisation=org.org, text=text)
    assert loaded.source_format == "meterpay" and loaded.warnings == ()
    assert json.loads(services.tariff_export(tariff=tariff)) == json.loads(text)


@pytest.mark.parametrize("text", ["{", "[]", '{"hello": 1}'])
def test_import_of_something_else_is_refused(org: Any, text: str) -> None:
    with pytest.raises(services.TariffValidationError) as error:
        services.tariff_import(actor="test", organisation=org.org, text=text)
    assert "document" in error.value.message_dict


@time_machine.travel(NOW, tick=False)
def test_assignment_and_the_tariff_in_force(org: Any) -> None:
    first = create(org)
    second = create(org, single_price(name="Second"))
    water = create(org, fixture_document("water_stepped.json"))
    t0 = timezone.now()
    a1 = services.account_tariff_assign(actor="test", account=org.account, tariff=first)
    a2 = services.account_tariff_assign(
        actor="test", account=org.account, tariff=second, effective_from=t0 + timedelta(days=7)
    )
    services.account_tariff_assign(actor="test", account=org.account, tariff=water)
    assert selectors.tariff_in_force(org.account, "electricity", t0) == a1
    assert selectors.tariff_in_force(org.account, "electricity", t0 + timedelta(days=8)) == a2
    assert selectors.tariff_in_force(org.account, "electricity", t0 - timedelta(days=1)) is None
    assert selectors.tariff_in_force(org.account, "water", t0).tariff == water
    assert AccountTariff.objects.filter(account=org.account).count() == 3
    # assigning again at the same moment replaces that assignment
    services.account_tariff_assign(
        actor="test", account=org.account, tariff=first, effective_from=a2.effective_from
    )
    assert AccountTariff.objects.filter(account=org.account).count() == 3
    assert AuditEvent.objects.filter(action="account.tariff_assign").count() == 4


def test_account_terms_come_from_the_assignment_and_the_rooms(org: Any) -> None:
    tariff = create(org, fixture_document("cn_residential_annual_tou.json"))
    assignment = services.account_tariff_assign(
        actor="test",
        account=org.account,
        tariff=tariff,
        tier_threshold_scale="1.5",
        capacity_kva="80",
    )
    terms = selectors.account_terms(org.account, assignment)
    assert terms.tier_threshold_scale == Decimal("1.5")
    assert terms.capacity_kva == Decimal("80")
    assert terms.room_area_m2 == Decimal("50.00")
    assert terms.tier_thresholds is None
    with pytest.raises(services.TariffValidationError) as error:
        services.account_tariff_assign(
            actor="test", account=org.account, tariff=tariff, tier_thresholds=["100"]
        )
    assert "tier_thresholds" in error.value.message_dict
    override = services.account_tariff_assign(
        actor="test",
        account=org.account,
        tariff=tariff,
        tier_thresholds=["3000", "5000"],
        effective_from=timezone.now() + timedelta(days=1),
    )
    assert selectors.account_terms(org.account, override).tier_thresholds == (
        Decimal("3000"),
        Decimal("5000"),
    )


def test_assignment_rules(org: Any) -> None:
    two_part = fixture_document("cn_two_part_demand_pf.json")
    tariff = create(org, two_part)
    with pytest.raises(services.TariffValidationError) as error:
        services.account_tariff_assign(actor="test", account=org.account, tariff=tariff)
    assert "contract_demand_kw" in error.value.message_dict
    other = build_org("tf-other", 950)
    foreign = create(other)
    with pytest.raises(services.TariffValidationError):
        services.account_tariff_assign(actor="test", account=org.account, tariff=foreign)
    services.tariff_set_archived(actor="test", tariff=foreign, archived=True)
    own = create(org)
    services.tariff_set_archived(actor="test", tariff=own, archived=True)
    with pytest.raises(services.TariffValidationError) as error:
        services.account_tariff_assign(actor="test", account=org.account, tariff=own)
    assert "tariff" in error.value.message_dict
    with pytest.raises(services.TariffValidationError):
        services.account_tariff_assign(
            actor="test", account=org.account, tariff=tariff, contract_demand_kw="-5"
        )


@pytest.mark.parametrize("profile", ["shop", "dormitory", "office", "water"])
def test_sample_profiles_are_deterministic_and_rate(profile: str) -> None:
    first = selectors.sample_intervals(profile, year=2026, month=7, step_minutes=15)
    again = selectors.sample_intervals(profile, year=2026, month=7, step_minutes=15)
    assert first == again and len(first) == 31 * 96
    hourly = selectors.sample_intervals(profile, year=2026, month=2)
    assert len(hourly) == 28 * 24
    assert all(i.quantity >= 0 for i in hourly)


def test_preview_daily_costs_add_up_to_the_bill() -> None:
    from meterpay.core.tariffs import AccountTerms, parse_tariff

    engine = parse_tariff(fixture_document("cn_commercial_tou_cpp.json"))
    intervals = selectors.sample_intervals("shop", year=2026, month=7)
    preview = selectors.rate_preview(tariff=engine, intervals=intervals, account=AccountTerms())
    assert preview.bill == rate(tariff=engine, intervals=intervals)
    assert sum(cost for _day, cost in preview.daily_costs) == preview.bill.total
    assert len(preview.daily_costs) == 31


def test_price_summary_reads_every_component() -> None:
    from meterpay.core.tariffs import parse_tariff

    text = []
    for name in (
        "cn_commercial_tou_cpp.json",
        "cn_residential_annual_tou.json",
        "cn_two_part_demand_pf.json",
        "water_stepped.json",
        "apartment_rent.json",
    ):
        engine = parse_tariff(fixture_document(name))
        for version in engine.versions:
            text += [f"{i.component}: {i.text}" for i in selectors.version_summary(version, "CNY")]
    joined = "\n".join(text)
    for expected in (
        "sharp 1.3015",
        "critical peak: months 7-8",
        "tiers (per year): 0-2760 kWh: +0/kWh",
        "basic charge: 38 CNY/kW of max demand/month",
        "power factor: standard 0.90",
        "surcharge: sewage 1.36 CNY/m³",
        "fixed: meter rent 2.00 CNY/month",
        "minimum: at least 50.00 CNY/month",
        "custom: property fee 3.50 CNY/m² monthly",
    ):
        assert expected in joined, expected
    tou = selectors.tou_day(
        parse_tariff(fixture_document("cn_commercial_tou_cpp.json")), datetime(2026, 7, 1).date()
    )
    assert tou is not None
    assert [h["period"] for h in tou["hours"]][7:12] == ["valley", "peak", "peak", "peak", "flat"]
    assert tou["hours"][19]["period"] == "sharp"
