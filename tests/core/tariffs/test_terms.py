"""Account terms files (``meterpay rate --account``) and what a tariff needs from them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from meterpay.core.tariffs import AccountTerms, AccountTermsError, parse_tariff
from meterpay.core.tariffs.terms import (
    parse_account_terms,
    parse_account_terms_json,
    terms_problems,
)

from .helpers import fixture_tariff, simple_document

FULL = """{
  "contract_demand_kw": "500",
  "capacity_kva": 630,
  "room_area_m2": 42.5,
  "tier_usage_carried_in": "1200.5",
  "tier_thresholds": ["2880", 4800],
  "holidays": ["2024-10-01", "2024-10-02"],
  "move_in": "2024-03-10",
  "move_out": "2024-11-20"
}"""


def test_every_field_parses_exactly() -> None:
    terms = parse_account_terms_json(FULL)
    assert terms == AccountTerms(
        contract_demand_kw=Decimal(500),
        capacity_kva=Decimal(630),
        room_area_m2=Decimal("42.5"),
        tier_usage_carried_in=Decimal("1200.5"),
        tier_thresholds=(Decimal(2880), Decimal(4800)),
        holidays=frozenset({date(2024, 10, 1), date(2024, 10, 2)}),
        move_in=date(2024, 3, 10),
        move_out=date(2024, 11, 20),
    )
    # JSON numbers are read as decimals, never through a float
    assert str(parse_account_terms_json('{"room_area_m2": 0.1}').room_area_m2) == "0.1"


def test_empty_object_and_nulls_are_the_defaults() -> None:
    assert parse_account_terms_json("{}") == AccountTerms()
    assert parse_account_terms({"capacity_kva": None, "holidays": None}) == AccountTerms()
    scaled = parse_account_terms_json('{"tier_threshold_scale": "1.25"}')
    assert scaled.tier_threshold_scale == Decimal("1.25")


@pytest.mark.parametrize(
    ("text", "field", "problem"),
    [
        ('{"contract_demand_kw": "abc"}', "contract_demand_kw", "'abc' is not a number"),
        ('{"contract_demand_kw": true}', "contract_demand_kw", "true is not a number"),
        ('{"contract_demand_kw": "0"}', "contract_demand_kw", "must be positive"),
        ('{"capacity_kva": NaN}', "capacity_kva", "'NaN' is not a number"),
        ('{"room_area_m2": -1}', "room_area_m2", "must not be negative"),
        ('{"tier_usage_carried_in": [1]}', "tier_usage_carried_in", "[1] is not a number"),
        ('{"tier_thresholds": "2880"}', "tier_thresholds", "must be a list of numbers"),
        ('{"tier_thresholds": []}', "tier_thresholds", "must not be empty"),
        ('{"tier_thresholds": ["10", "x"]}', "tier_thresholds[1]", "'x' is not a number"),
        ('{"tier_thresholds": ["10", "5"]}', "tier_thresholds[1]", "must be greater than the previous threshold"),
        ('{"tier_thresholds": ["10"], "tier_threshold_scale": "2"}', "tier_threshold_scale", "give tier_thresholds or tier_threshold_scale, not both"),
        ('{"holidays": "2024-10-01"}', "holidays", "must be a list of dates (YYYY-MM-DD)"),
        ('{"holidays": ["2024-10-01", "2024-02-30"]}', "holidays[1]", "'2024-02-30' is not a date (YYYY-MM-DD)"),
        ('{"move_in": "20240310"}', "move_in", "'20240310' is not a date (YYYY-MM-DD)"),
        ('{"move_in": "2024-03-10", "move_out": "2024-03-09"}', "move_out", "2024-03-09 is before move_in 2024-03-10"),
        ('{"contract_kw": "500"}', "contract_kw", "unknown field"),
        ("[1]", "", "must be a JSON object"),
    ],
)  # fmt: skip
def test_errors_name_the_field(text: str, field: str, problem: str) -> None:
    with pytest.raises(AccountTermsError) as caught:
        parse_account_terms_json(text)
    assert (caught.value.field, caught.value.problem) == (field, problem)


def test_invalid_json() -> None:
    with pytest.raises(AccountTermsError, match="not valid JSON"):
        parse_account_terms_json("{")


def test_terms_problems_name_the_tariff_field_and_the_account_field() -> None:
    two_part = fixture_tariff("cn_two_part_contract_demand.json")
    assert [(p.tariff_path, p.field, p.problem) for p in terms_problems(two_part, AccountTerms())] == [
        ("versions[0].basic", "contract_demand_kw", "missing: the tariff's contract rule cn_two_part needs it")
    ]  # fmt: skip
    assert terms_problems(two_part, AccountTerms(contract_demand_kw=Decimal(1))) == []
    capacity = parse_tariff(
        simple_document(
            energy={"periods": [{"name": "flat", "price": "0.5"}]},
            basic={"method": "capacity", "price": "23.3"},
        )
    )
    assert [p.field for p in terms_problems(capacity, AccountTerms())] == ["capacity_kva"]
    rent = fixture_tariff("apartment_rent.json")
    problems = terms_problems(rent, AccountTerms())
    assert [(p.tariff_path, p.field, p.problem) for p in problems] == [
        (
            "versions[0].custom_items[1]",
            "room_area_m2",
            "missing: 'property fee' is charged per m²",
        ),
        (
            "versions[1].custom_items[1]",
            "room_area_m2",
            "missing: 'property fee' is charged per m²",
        ),
    ]
    residential = fixture_tariff("cn_residential_annual_tou.json")
    wrong_count = AccountTerms(tier_thresholds=(Decimal(10),))
    assert [(p.field, p.problem) for p in terms_problems(residential, wrong_count)] == [
        ("tier_thresholds", "1 given, the tariff has 2 tier thresholds")
    ]
