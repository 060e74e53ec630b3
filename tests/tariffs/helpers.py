"""Tariff documents and builders shared by the tariff tests (and the isolation tables)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "core" / "tariffs" / "fixtures"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def fixture_document(name: str) -> dict[str, Any]:
    return dict(json.loads(fixture_text(name)))


SINGLE_PRICE: dict[str, Any] = {
    "format": "meterpay-tariff/1",
    "id": "flat-test",
    "name": "Flat test price",
    "currency": "CNY",
    "commodity": "electricity",
    "versions": [
        {
            "effective_from": "2024-01-01T00:00:00",
            "energy": {"periods": [{"name": "flat", "price": "0.6500"}]},
            "fixed_charges": [{"name": "meter service", "amount": "10.00"}],
        }
    ],
}


def single_price(**changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(SINGLE_PRICE)
    document.update(changes)
    return document


def org_tariff(org: Any) -> Any:
    """The test organisation's tariff (created on first use; isolation tables call this)."""
    from meterpay.apps.tariffs.models import Tariff
    from meterpay.apps.tariffs.services import tariff_create

    existing = Tariff.objects.filter(organisation=org.org).order_by("id").first()
    if existing is not None:
        return existing
    return tariff_create(
        actor="test", organisation=org.org, document=single_price(name=f"Tariff {org.org.slug}")
    )


def urdb_with_unimported_fields() -> str:
    """A URDB rate with a fuel adjustment and a demand ratchet (imported with warnings)."""
    rate = json.loads(fixture_text("urdb_commercial_tou_demand.json"))
    rate["fueladjustmentsmonthly"] = [0.01] * 12
    rate["demandratchetpercentage"] = [0.8] * 12
    return json.dumps(rate)
