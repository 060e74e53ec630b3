"""Account terms as a JSON document (``meterpay rate --account``) → :class:`AccountTerms`.

The document is one JSON object; every field is optional and unknown fields are errors::

    {
      "contract_demand_kw": "500",
      "capacity_kva": "630",
      "room_area_m2": "42.5",
      "tier_usage_carried_in": "1200",
      "tier_thresholds": ["2880", "4800"],
      "holidays": ["2024-10-01", "2024-10-02"],
      "move_in": "2024-03-10",
      "move_out": "2024-11-20"
    }

Numbers may be decimal strings or JSON numbers (read exactly, never through a float).
``tier_threshold_scale`` multiplies the tariff's tier thresholds instead of replacing them
(give one of the two). Dates are ``YYYY-MM-DD``; ``move_in`` is the first billed day and
``move_out`` the last billed day (inclusive).

:func:`terms_problems` lists what a tariff needs from the terms and they lack (contract
demand, capacity, room area, the number of tier thresholds), each naming the tariff field
that needs it, so a command can say so before rating.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from meterpay.core.tariffs.errors import AccountTermsError
from meterpay.core.tariffs.model import AccountTerms, Tariff, Tiers

ACCOUNT_FIELDS = (
    "contract_demand_kw",
    "capacity_kva",
    "room_area_m2",
    "tier_usage_carried_in",
    "tier_thresholds",
    "tier_threshold_scale",
    "holidays",
    "move_in",
    "move_out",
)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _shown(value: object) -> str:
    """A value as the JSON it came from (strings quoted like Python's ``repr``)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, list):
        return f"[{', '.join(_shown(item) for item in value)}]"
    if isinstance(value, dict):
        return "an object"
    return json.dumps(value)


def _number(value: object, field: str, *, positive: bool = False) -> Decimal:
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise AccountTermsError(field, f"{_shown(value)} is not a number") from None
    else:
        raise AccountTermsError(field, f"{_shown(value)} is not a number")
    if not number.is_finite():
        raise AccountTermsError(field, f"{_shown(value)} is not a number")
    if number < 0 or (positive and number == 0):
        raise AccountTermsError(field, "must be positive" if positive else "must not be negative")
    return number


def _date(value: object, field: str) -> date:
    if isinstance(value, str) and _DATE.fullmatch(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise AccountTermsError(field, f"{_shown(value)} is not a date (YYYY-MM-DD)")


def _list(value: object, field: str, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise AccountTermsError(field, f"must be a list of {what}")
    return value


def parse_account_terms(document: object) -> AccountTerms:
    """Validate an account terms object (already decoded JSON) into :class:`AccountTerms`.

    Raises :class:`AccountTermsError` naming the field (``holidays[2]``) and the problem.
    JSON ``null`` for a field is the same as leaving it out.
    """
    if not isinstance(document, dict):
        raise AccountTermsError("", "must be a JSON object")
    for key in document:
        if key not in ACCOUNT_FIELDS:
            raise AccountTermsError(str(key), "unknown field")
    values: Mapping[str, Any] = {key: value for key, value in document.items() if value is not None}
    terms: dict[str, Any] = {}
    for field in ("contract_demand_kw", "capacity_kva"):
        if field in values:
            terms[field] = _number(values[field], field, positive=True)
    for field in ("room_area_m2", "tier_usage_carried_in"):
        if field in values:
            terms[field] = _number(values[field], field)
    if "tier_thresholds" in values and "tier_threshold_scale" in values:
        raise AccountTermsError(
            "tier_threshold_scale", "give tier_thresholds or tier_threshold_scale, not both"
        )
    if "tier_threshold_scale" in values:
        terms["tier_threshold_scale"] = _number(
            values["tier_threshold_scale"], "tier_threshold_scale", positive=True
        )
    if "tier_thresholds" in values:
        raw = _list(values["tier_thresholds"], "tier_thresholds", "numbers")
        if not raw:
            raise AccountTermsError("tier_thresholds", "must not be empty")
        thresholds: list[Decimal] = []
        for index, item in enumerate(raw):
            threshold = _number(item, f"tier_thresholds[{index}]", positive=True)
            if thresholds and threshold <= thresholds[-1]:
                raise AccountTermsError(
                    f"tier_thresholds[{index}]", "must be greater than the previous threshold"
                )
            thresholds.append(threshold)
        terms["tier_thresholds"] = tuple(thresholds)
    if "holidays" in values:
        raw = _list(values["holidays"], "holidays", "dates (YYYY-MM-DD)")
        terms["holidays"] = frozenset(
            _date(item, f"holidays[{index}]") for index, item in enumerate(raw)
        )
    for field in ("move_in", "move_out"):
        if field in values:
            terms[field] = _date(values[field], field)
    move_in, move_out = terms.get("move_in"), terms.get("move_out")
    if move_in is not None and move_out is not None and move_out < move_in:
        raise AccountTermsError("move_out", f"{move_out} is before move_in {move_in}")
    return AccountTerms(**terms)


def parse_account_terms_json(text: str) -> AccountTerms:
    """:func:`parse_account_terms` of JSON text; numbers are read as exact decimals."""
    try:
        document = json.loads(
            text, parse_float=Decimal, parse_int=Decimal, parse_constant=lambda name: name
        )
    except json.JSONDecodeError as error:
        raise AccountTermsError("", f"not valid JSON: {error}") from None
    return parse_account_terms(document)


@dataclass(frozen=True, slots=True)
class TermsProblem:
    """The tariff field at ``tariff_path`` needs the account's ``field``: ``problem`` says how."""

    tariff_path: str
    field: str
    problem: str


def _version_tiers(energy_tiers: Tiers | None, water_tiers: Tiers | None) -> tuple[str, Tiers]:
    if energy_tiers is not None:
        return "energy.tiers", energy_tiers
    assert water_tiers is not None
    return "water.tiers", water_tiers


def terms_problems(tariff: Tariff, account: AccountTerms) -> list[TermsProblem]:
    """What ``tariff`` needs from ``account`` that it lacks, in document order."""
    problems: list[TermsProblem] = []
    for index, version in enumerate(tariff.versions):
        path = f"versions[{index}]"
        basic = version.basic
        if basic is not None:
            if basic.method == "capacity" and account.capacity_kva is None:
                problems.append(
                    TermsProblem(
                        f"{path}.basic",
                        "capacity_kva",
                        "missing: the tariff charges by transformer capacity",
                    )
                )
            if basic.needs_contract_demand and account.contract_demand_kw is None:
                rule = (
                    f"contract rule {basic.contract_rule}"
                    if basic.contract_rule is not None
                    else "demand overrun or minimum rule"
                )
                problems.append(
                    TermsProblem(
                        f"{path}.basic",
                        "contract_demand_kw",
                        f"missing: the tariff's {rule} needs it",
                    )
                )
        energy_tiers = version.energy.tiers if version.energy is not None else None
        water_tiers = version.water.tiers if version.water is not None else None
        if account.tier_thresholds is not None and (energy_tiers or water_tiers):
            where, tiers = _version_tiers(energy_tiers, water_tiers)
            expected = len(tiers.steps) - 1
            if len(account.tier_thresholds) != expected:
                problems.append(
                    TermsProblem(
                        f"{path}.{where}",
                        "tier_thresholds",
                        f"{len(account.tier_thresholds)} given, the tariff has "
                        f"{expected} tier thresholds",
                    )
                )
        for item_index, item in enumerate(version.custom_items):
            if item.basis == "per_area" and account.room_area_m2 is None:
                problems.append(
                    TermsProblem(
                        f"{path}.custom_items[{item_index}]",
                        "room_area_m2",
                        f"missing: {item.name!r} is charged per m²",
                    )
                )
    return problems
