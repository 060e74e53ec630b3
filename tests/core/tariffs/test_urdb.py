from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

import pytest

from meterpay.core.tariffs import TariffError
from meterpay.core.tariffs.urdb import tariff_from_urdb

from .helpers import fixture_text


def _load(name: str) -> object:
    return json.loads(fixture_text(name), parse_float=Decimal)


def test_tiered_residential_rate() -> None:
    tariff, warnings = tariff_from_urdb(_load("urdb_residential_tiered.json"))
    assert warnings == []
    assert tariff.id == "urdb-5f1a2b3c4d5e6f7a8b9c0d11" and tariff.currency == "USD"
    version = tariff.versions[0]
    assert version.energy is not None and version.energy.tiers is not None
    steps = version.energy.tiers.steps
    assert [step.up_to for step in steps] == [Decimal(500), Decimal(1000), None]
    # rate + adj
    assert [step.period_prices["p0"] for step in steps] == [
        Decimal("0.0912"),
        Decimal("0.1075"),
        Decimal("0.1228"),
    ]
    assert version.fixed_charges[0].amount == Decimal("12.5")
    assert version.minimum_charge == Decimal(20)


def test_tou_rate_with_demand_schedules() -> None:
    tariff, warnings = tariff_from_urdb(_load("urdb_commercial_tou_demand.json"))
    assert warnings == []
    version = tariff.versions[0]
    assert version.energy is not None and version.demand is not None
    schedule = version.energy.schedule
    assert schedule.period_at(7, "weekday", 13 * 60) == "p2"  # summer afternoon
    assert schedule.period_at(1, "weekday", 13 * 60) == "p1"
    assert schedule.period_at(7, "weekend", 13 * 60) == "p0"
    assert schedule.period_at(7, "holiday", 13 * 60) == "p0"  # holidays as weekends
    demand_schedule = version.demand.schedule
    assert demand_schedule is not None and demand_schedule.period_at(3, "weekday", 12 * 60) == "d1"
    flat = {month: season for season in version.demand.flat for month in season.months}
    assert flat[7].tiers[0].up_to == Decimal(50) and flat[7].tiers[1].price == Decimal("7.3")
    assert flat[1].tiers[0].price == Decimal("4.2")


def test_api_response_reports_unsupported_fields() -> None:
    tariff, warnings = tariff_from_urdb(_load("urdb_api_response_tou_tiered.json"))
    assert tariff.versions[0].fixed_charges[0].amount == Decimal("10.0")
    assert tariff.versions[0].minimum_charge is None
    assert sorted(warnings) == sorted(
        [
            "fueladjustmentsmonthly: not supported; ignored",
            "demandratchetpercentage: not supported; ignored",
            "coincidentratestructure: not supported; ignored",
            "coincidentrateschedule: not supported; ignored",
            "mincharge: units '$/day' not supported (only $/month); ignored",
        ]
    )


def test_more_warnings_and_units() -> None:
    rate = {
        "items": [
            {
                "label": "x",
                "energyratestructure": [
                    [{"max": 10, "rate": 0.1, "unit": "kWh daily"}, {"rate": 0.2}]
                ],
                "flatdemandstructure": [[{"rate": 3, "sell": 1}]],
                "flatdemandunit": "kVA",
                "demandratestructure": [[{"rate": 1, "bogus": 2}]],
                "demandrateunit": "hp",
                "demandwindow": 30,
                "fixedchargefirstmeter": 5,
                "fixedchargeunits": "$/day",
                "fixedmonthlycharge": 7,
            },
            {"label": "y"},
        ]
    }
    tariff, warnings = tariff_from_urdb(rate)
    assert "items: 2 rates given; only the first is imported" in warnings
    assert any("'kWh daily' is not supported" in w for w in warnings)
    assert any("sell rates" in w for w in warnings)
    assert "flatdemandunit: 'kVA' treated as kW" in warnings
    assert "demandrateunit: 'hp' treated as kW" in warnings
    assert "demandratestructure[0][0].bogus: not supported; ignored" in warnings
    assert any(w.startswith("demandwindow: 30 min") for w in warnings)
    assert "fixedchargefirstmeter: units '$/day' not supported (only $/month); ignored" in warnings
    assert "fixedmonthlycharge: superseded by fixedchargefirstmeter; ignored" in warnings
    version = tariff.versions[0]
    assert version.energy is not None and version.energy.tiers is None
    assert version.fixed_charges == ()
    assert version.effective_from == datetime(1970, 1, 1)


@pytest.mark.parametrize(
    ("rate", "message"),
    [
        ({"items": []}, "items: must be a non-empty list of rates"),
        ([], "a URDB rate must be an object"),
        ({"energyratestructure": [[{"rate": "x"}]]}, "energyratestructure[0][0].rate: must be a number"),
        ({"energyratestructure": [[]]}, "energyratestructure[0]: must be a non-empty list of tiers"),
        ({"energyratestructure": [["t"]]}, "energyratestructure[0][0]: must be an object"),
        ({"energyratestructure": "flat"}, "energyratestructure: must be a non-empty list of periods"),
        (
            {"energyratestructure": [[{"rate": 1}], [{"rate": 2}]], "energyweekdayschedule": [[0] * 24] * 11},
            "energyweekdayschedule: must be 12 rows (months) of 24 period indexes",
        ),
        (
            {"energyratestructure": [[{"rate": 1}], [{"rate": 2}]], "energyweekdayschedule": [[0] * 23] * 12},
            "energyweekdayschedule[0]: must be 24 period indexes",
        ),
        (
            {"energyratestructure": [[{"rate": 1}], [{"rate": 2}]], "energyweekdayschedule": [[5] * 24] * 12},
            "energyweekdayschedule[0][0]: must be a period index 0-1",
        ),
        ({"energyratestructure": [[{"rate": 1}, {"rate": 2}, {"rate": 3}]]}, "energyratestructure[0]: every tier but the last needs max"),
        ({"flatdemandstructure": [[{"rate": 1}], [{"rate": 2}]]}, "flatdemandmonths: must be 12 period indexes"),
        ({"flatdemandstructure": [[{"rate": 1}]], "flatdemandmonths": [3] * 12}, "flatdemandmonths[0]: must be a period index 0-0"),
    ],
)  # fmt: skip
def test_invalid_rates(rate: object, message: str) -> None:
    with pytest.raises(TariffError) as caught:
        tariff_from_urdb(rate)
    assert str(caught.value) == message


def test_differing_tier_limits_are_reported() -> None:
    rate = {
        "energyratestructure": [
            [{"max": 100, "rate": 0.1}, {"rate": 0.2}],
            [{"max": 200, "rate": 0.3}, {"rate": 0.4}],
        ],
        "energyweekdayschedule": [[0] * 12 + [1] * 12] * 12,
        "energyweekendschedule": [[0] * 24] * 12,
        "flatdemandstructure": [[{"rate": 2.5}]],
    }
    tariff, warnings = tariff_from_urdb(rate)
    assert warnings == [
        "energyratestructure[1]: tier limits differ from period 0's; period 0's limits are used for all periods"
    ]
    demand = tariff.versions[0].demand
    assert demand is not None and demand.flat[0].months == frozenset(range(1, 13))
