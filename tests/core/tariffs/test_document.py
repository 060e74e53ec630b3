from __future__ import annotations

import copy
import json
from decimal import Decimal

import pytest

from meterpay.core.tariffs import TariffError, parse_tariff, parse_tariff_json, tariff_to_dict
from meterpay.core.tariffs.document import format_months, parse_months, tariff_to_json
from meterpay.core.tariffs.loading import load_tariff_text

from .helpers import FIXTURES, fixture_json, simple_document

METERPAY_FIXTURES = sorted(p.name for p in FIXTURES.glob("*.json") if not p.name.startswith("urdb"))


@pytest.mark.parametrize("name", METERPAY_FIXTURES)
def test_fixture_documents_round_trip_exactly(name: str) -> None:
    document = fixture_json(name)
    tariff = parse_tariff(document)
    assert tariff_to_dict(tariff) == document
    assert parse_tariff_json(tariff_to_json(tariff)) == tariff


def test_parsed_values_are_decimals_with_the_written_digits() -> None:
    tariff = parse_tariff(fixture_json("cn_residential_annual_tou.json"))
    energy = tariff.versions[0].energy
    assert energy is not None and energy.tiers is not None
    assert energy.periods[0].price == Decimal("0.5683")
    assert str(energy.periods[0].price) == "0.5683"
    assert energy.tiers.steps[1].up_to == Decimal("4800")
    assert energy.tiers.cumulation == "year"


def _two_versions() -> dict[str, object]:
    document = fixture_json("cn_commercial_tou_cpp.json")
    second = copy.deepcopy(document["versions"][0])
    second["effective_from"] = "2024-06-01T00:00:00"
    document["versions"].append(second)
    return document


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda d: d["versions"][1]["energy"]["periods"][2].__setitem__("price", 1.08),
            "versions[1].energy.periods[2].price: must be a decimal string",
        ),
        (
            lambda d: d["versions"][1]["energy"]["periods"][2].__setitem__("price", "abc"),
            "versions[1].energy.periods[2].price: must be a decimal string",
        ),
        (
            lambda d: d["versions"][0]["energy"]["periods"][0].__setitem__("price", "-1"),
            "versions[0].energy.periods[0].price: must not be negative",
        ),
        (
            lambda d: d["versions"][1].__setitem__("effective_from", "2023-12-01T00:00:00"),
            "versions[1].effective_from: must be later than the previous version's",
        ),
        (
            lambda d: d["versions"][0]["energy"]["schedule"][1]["windows"][1].__setitem__(
                "period", "shoulder"
            ),
            "versions[0].energy.schedule[1].windows[1].period: unknown period 'shoulder'",
        ),
        (
            lambda d: d["versions"][0]["energy"]["schedule"][1]["windows"][0].__setitem__(
                "end", "25:00"
            ),
            'versions[0].energy.schedule[1].windows[0].end: must be a time "HH:MM" between 00:00 and 24:00',
        ),
        (
            lambda d: d["versions"][0]["energy"]["critical_peak"][0].__setitem__("months", "7-13"),
            "versions[0].energy.critical_peak[0].months: bad month range '7-13'",
        ),
        (
            lambda d: d["versions"][0].__setitem__("surprise", 1),
            "versions[0].surprise: unknown field",
        ),
        (
            lambda d: d["versions"][0]["energy"]["schedule"][0].__setitem__(
                "day_types", ["sunday"]
            ),
            "versions[0].energy.schedule[0].day_types[0]: must be one of weekday, weekend, holiday",
        ),
        (lambda d: d.__setitem__("currency", "XYZ"), "currency: must be one of"),
        (lambda d: d.__setitem__("format", "other/1"), "format: must be 'meterpay-tariff/1'"),
        (lambda d: d.pop("versions"), "versions: is required"),
        (lambda d: d.__setitem__("versions", []), "versions: must not be empty"),
        (
            lambda d: d["versions"][0]["energy"]["periods"].append({"name": "flat", "price": "1"}),
            "versions[0].energy.periods[5].name: duplicate name 'flat'",
        ),
        (
            lambda d: d["versions"][0].__setitem__("water", {"price": "1"}),
            "versions[0].water: not allowed in a electricity tariff",
        ),
        (
            lambda d: d["versions"][0].__setitem__("effective_from", "2024-01-01T00:00:00+08:00"),
            "versions[0].effective_from: must be local time without a UTC offset",
        ),
    ],
)
def test_errors_name_the_field_path(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    document = _two_versions()
    mutate(document)
    with pytest.raises(TariffError) as caught:
        parse_tariff(document)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (
            {
                "energy": {
                    "periods": [{"name": "a", "price": "1"}],
                    "tiers": {"cumulation": "month", "steps": [{"up_to": "10"}]},
                }
            },
            "versions[0].energy.tiers.steps[0].up_to: must be null on the last step",
        ),
        (
            {
                "energy": {
                    "periods": [{"name": "a", "price": "1"}],
                    "tiers": {
                        "cumulation": "month",
                        "steps": [{"up_to": "10"}, {"up_to": "5"}, {"up_to": None}],
                    },
                }
            },
            "versions[0].energy.tiers.steps[1].up_to: must increase from step to step",
        ),
        (
            {
                "energy": {
                    "periods": [{"name": "a", "price": "1"}, {"name": "b", "price": "2"}],
                    "tiers": {
                        "cumulation": "month",
                        "steps": [{"up_to": "10", "price": "1"}, {"up_to": None}],
                    },
                }
            },
            "versions[0].energy.tiers.steps[0].price: an absolute step price needs a single period",
        ),
        (
            {
                "energy": {
                    "periods": [{"name": "a", "price": "1"}],
                    "tiers": {
                        "cumulation": "month",
                        "steps": [{"up_to": None, "price": "1", "increment": "1"}],
                    },
                }
            },
            "versions[0].energy.tiers.steps[0]: give only one of increment, price, period_prices",
        ),
        (
            {
                "energy": {
                    "periods": [{"name": "a", "price": "1"}, {"name": "b", "price": "1"}],
                    "tiers": {
                        "cumulation": "month",
                        "steps": [{"up_to": None, "period_prices": {"a": "1"}}],
                    },
                }
            },
            "versions[0].energy.tiers.steps[0].period_prices.b: is required",
        ),
        (
            {
                "energy": {
                    "periods": [{"name": "a", "price": "1"}],
                    "tiers": {"cumulation": "decade", "steps": []},
                }
            },
            "versions[0].energy.tiers.cumulation: must be one of month, year",
        ),
        (
            {
                "energy": {
                    "periods": [{"name": "a", "price": "1"}],
                    "tiers": {
                        "cumulation": "year",
                        "year_start_month": 13,
                        "steps": [{"up_to": None}],
                    },
                }
            },
            "versions[0].energy.tiers.year_start_month: must be a month number 1-12",
        ),
        (
            {"basic": {"method": "capacity", "price": "20", "overrun_threshold": "1.05"}},
            "versions[0].basic: overrun and minimum apply to method max_demand only",
        ),
        (
            {"basic": {"method": "kva", "price": "20"}},
            "versions[0].basic.method: must be one of capacity, max_demand",
        ),
        (
            {"power_factor": {"standard": "0.95"}},
            'versions[0].power_factor.standard: must be "0.90", "0.85" or "0.80"',
        ),
        (
            {"power_factor": {"standard": "0.9", "applies_to": ["tax"]}},
            "versions[0].power_factor.applies_to[0]: must be one of energy, basic, demand",
        ),
        (
            {"demand": {}},
            "versions[0].demand: needs periods or flat",
        ),
        (
            {"demand": {"schedule": []}},
            "versions[0].demand.periods: is required with a schedule",
        ),
        (
            {
                "demand": {
                    "flat": [
                        {"months": "1-6", "tiers": [{"up_to": None, "price": "1"}]},
                        {"months": "6-12", "tiers": [{"up_to": None, "price": "2"}]},
                    ]
                }
            },
            "versions[0].demand.flat[1].months: overlaps an earlier season",
        ),
        (
            {"demand": {"flat": [{"months": "1-12", "tiers": [{"up_to": "5", "price": "1"}]}]}},
            "versions[0].demand.flat[0].tiers[0].up_to: must be null on the last tier",
        ),
        (
            {
                "demand": {
                    "flat": [
                        {
                            "months": "1-12",
                            "tiers": [
                                {"up_to": "5", "price": "1"},
                                {"up_to": "4", "price": "1"},
                                {"up_to": None, "price": "1"},
                            ],
                        }
                    ]
                }
            },
            "versions[0].demand.flat[0].tiers[1].up_to: must increase from tier to tier",
        ),
        (
            {"custom_items": [{"name": "rent", "amount": "1", "frequency": "weekly"}]},
            "versions[0].custom_items[0].frequency: must be one of monthly, quarterly, yearly, one_time",
        ),
        (
            {"custom_items": [{"name": "rent", "amount": "1", "prorate": "yes"}]},
            "versions[0].custom_items[0].prorate: must be true or false",
        ),
        (
            {"fixed_charges": [{"name": "a", "amount": "1"}, {"name": "a", "amount": "2"}]},
            "versions[0].fixed_charges[1].name: duplicate name 'a'",
        ),
        (
            {"energy": {"periods": [{"name": "a", "price": "1"}], "default_period": "z"}},
            "versions[0].energy.default_period: unknown period 'z'",
        ),
        (
            {
                "energy": {
                    "periods": [{"name": "a", "price": "1"}],
                    "schedule": [{"months": "1", "default_period": "z"}],
                }
            },
            "versions[0].energy.schedule[0].default_period: unknown period 'z'",
        ),
        (
            {
                "energy": {
                    "periods": [{"name": "a", "price": "1"}],
                    "critical_peak": [{"months": "1", "windows": []}],
                }
            },
            "versions[0].energy.critical_peak[0].windows: must not be empty",
        ),
        (
            {
                "energy": {
                    "periods": [{"name": "a", "price": "1"}],
                    "schedule": [
                        {
                            "months": "1",
                            "windows": [{"start": "08:00", "end": "08:00", "period": "a"}],
                        }
                    ],
                }
            },
            "versions[0].energy.schedule[0].windows[0].end: must differ from start",
        ),
        (
            {"energy": {"periods": [{"name": "a", "price": "1"}], "schedule": [{"months": [0]}]}},
            "versions[0].energy.schedule[0].months[0]: must be a month number 1-12",
        ),
        (
            {"energy": {"periods": [{"name": "a", "price": "1"}], "schedule": [{"months": 5}]}},
            'versions[0].energy.schedule[0].months: must be a month range string such as "6-8" or a list',
        ),
        (
            {
                "energy": {
                    "periods": [{"name": "a", "price": "1"}],
                    "schedule": [
                        {
                            "months": "1",
                            "windows": [{"start": "8:00", "end": "09:00", "period": "a"}],
                        }
                    ],
                }
            },
            'versions[0].energy.schedule[0].windows[0].start: must be a time "HH:MM"',
        ),
        (
            {"energy": {"periods": [{"name": "a", "price": "1"}], "schedule": "all"}},
            "versions[0].energy.schedule: must be a list",
        ),
        (
            {"energy": {"periods": [{"name": "", "price": "1"}]}},
            "versions[0].energy.periods[0].name: must be a non-empty string",
        ),
        (
            {"energy": {"periods": [{"name": "a", "price": "NaN"}]}},
            "versions[0].energy.periods[0].price: must be a decimal string",
        ),
        (
            {"energy": {"periods": [{"name": "a", "price": "1"}]}, "effective_from": "yesterday"},
            "versions[0].effective_from: must be an ISO date-time string",
        ),
        (
            {"energy": "cheap"},
            "versions[0].energy: must be an object",
        ),
    ],
)
def test_component_errors(version: dict[str, object], message: str) -> None:
    with pytest.raises(TariffError) as caught:
        parse_tariff(simple_document(**version))
    assert str(caught.value).startswith(message)


def test_water_tariff_rejects_electric_components() -> None:
    document = simple_document(water={"price": "1"})
    document["versions"][0]["energy"] = {"periods": [{"name": "a", "price": "1"}]}
    with pytest.raises(TariffError, match=r"versions\[0\]\.energy: not allowed in a water tariff"):
        parse_tariff(document)


def test_month_ranges_parse_and_format() -> None:
    assert parse_months("6-8,12", "m") == frozenset({6, 7, 8, 12})
    assert parse_months("11-2", "m") == frozenset({11, 12, 1, 2})
    assert format_months(frozenset({11, 12, 1, 2})) == "1-2,11-12"
    assert format_months(frozenset({3})) == "3"
    with pytest.raises(TariffError, match="bad month range 'x'"):
        parse_months("x", "m")


def test_optional_fields_serialize_when_not_default() -> None:
    document = simple_document(
        energy={
            "periods": [{"name": "a", "price": "1"}, {"name": "b", "price": "2"}],
            "schedule": [
                {
                    "months": "1-6",
                    "day_types": ["weekday"],
                    "windows": [{"start": "22:00", "end": "24:00", "period": "a"}],
                }
            ],
            "default_period": "b",
            "tiers": {
                "cumulation": "year",
                "year_start_month": 7,
                "steps": [
                    {"up_to": "10", "period_prices": {"a": "1.5", "b": "2.5"}},
                    {"up_to": None, "increment": "0.1"},
                ],
            },
        },
        basic={
            "method": "max_demand",
            "price": "30",
            "overrun_threshold": "1.1",
            "overrun_multiplier": "3",
        },
        demand={
            "periods": [
                {
                    "name": "on",
                    "tiers": [{"up_to": "50", "price": "5"}, {"up_to": None, "price": "6"}],
                }
            ],
            "flat": [{"months": "1-12", "tiers": [{"up_to": None, "price": "2"}]}],
        },
        power_factor={"standard": "0.85", "applies_to": ["energy"]},
        minimum_charge="10",
        custom_items=[
            {
                "name": "deposit",
                "amount": "100",
                "basis": "per_area",
                "frequency": "one_time",
                "prorate": False,
            }
        ],
    )
    document["description"] = "all the options"
    assert tariff_to_dict(parse_tariff(document)) == document


def test_json_text_errors() -> None:
    with pytest.raises(TariffError, match="not valid JSON"):
        parse_tariff_json("{")
    with pytest.raises(TariffError, match="description: must be a string"):
        parse_tariff({**simple_document(), "description": 5})


def test_loader_detects_formats_and_decodes_numbers_as_decimal() -> None:
    meterpay = load_tariff_text(json.dumps(fixture_json("cn_two_part_demand_pf.json")))
    assert meterpay.source_format == "meterpay" and meterpay.warnings == ()
    urdb = load_tariff_text((FIXTURES / "urdb_residential_tiered.json").read_text())
    assert urdb.source_format == "urdb"
    energy = urdb.tariff.versions[0].energy
    assert energy is not None and energy.periods[0].price == Decimal("0.0912")
    with pytest.raises(TariffError, match="neither a meterpay tariff document"):
        load_tariff_text("[1, 2]")
    with pytest.raises(TariffError, match="not valid JSON"):
        load_tariff_text("{oops")
    with pytest.raises(TariffError, match="must be a decimal string"):
        load_tariff_text(
            json.dumps(
                {
                    **simple_document(),
                    "versions": [{"effective_from": "2024-01-01T00:00:00", "minimum_charge": 1.5}],
                }
            )
        )
