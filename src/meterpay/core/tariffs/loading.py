"""Load a tariff from JSON text: a meterpay tariff document or a URDB rate (auto-detected).

Detection: an object whose ``format`` starts with ``meterpay-tariff/`` is a meterpay
document; an object with ``items`` or any ``energyratestructure``/``demandratestructure``/
``flatdemandstructure``/``fixedchargefirstmeter``/``fixedmonthlycharge``/``label`` field is
a URDB rate. JSON numbers are decoded as Decimal, never float.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal

from meterpay.core.tariffs.document import parse_tariff
from meterpay.core.tariffs.errors import TariffError
from meterpay.core.tariffs.model import Tariff
from meterpay.core.tariffs.urdb import tariff_from_urdb

_URDB_MARKERS = (
    "items",
    "energyratestructure",
    "demandratestructure",
    "flatdemandstructure",
    "fixedchargefirstmeter",
    "fixedmonthlycharge",
    "label",
)


@dataclass(frozen=True, slots=True)
class LoadedTariff:
    tariff: Tariff
    source_format: str  # "meterpay" or "urdb"
    warnings: tuple[str, ...] = ()


def load_tariff_text(text: str) -> LoadedTariff:
    try:
        document = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as error:
        raise TariffError("", f"not valid JSON: {error}") from None
    if isinstance(document, dict):
        declared = document.get("format")
        if isinstance(declared, str) and declared.startswith("meterpay-tariff/"):
            return LoadedTariff(parse_tariff(document), "meterpay")
        if any(marker in document for marker in _URDB_MARKERS):
            tariff, warnings = tariff_from_urdb(document)
            return LoadedTariff(tariff, "urdb", tuple(warnings))
    raise TariffError("", "neither a meterpay tariff document (format) nor a URDB rate")
