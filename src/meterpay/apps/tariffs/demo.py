"""Demo tariffs: realistic Chinese prices for the demo organisation's three sites, assigned to
every account that is not closed.

* Mall shops: general commercial time-of-use with sharp/peak/flat/valley and a summer and
  winter critical peak; a provincial price adjustment in force and one scheduled.
* Dormitory rooms: residential annual stepped prices with peak/valley increments, and
  residential water with annual steps and a sewage treatment surcharge.
* Office tower: two-part tariffs with power-factor adjustment (standard 0.90) — basic charge
  by transformer capacity for most floors, by maximum demand for the largest offices.

Deterministic: fixed dates, no randomness. Prices are illustrative, in the shape provincial
price notices use.
"""

from __future__ import annotations

import copy
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from meterpay.apps.customers.models import Account
from meterpay.apps.organisations.models import Organisation
from meterpay.apps.tariffs import services
from meterpay.apps.tariffs.models import Tariff

_TOU_SCHEDULE = [
    {
        "months": "1-12",
        "windows": [
            {"start": "00:00", "end": "08:00", "period": "valley"},
            {"start": "08:00", "end": "11:00", "period": "peak"},
            {"start": "17:00", "end": "22:00", "period": "peak"},
        ],
        "default_period": "flat",
    }
]


def _commercial_version(effective_from: str, prices: dict[str, str]) -> dict[str, Any]:
    return {
        "effective_from": effective_from,
        "energy": {
            "periods": [{"name": name, "price": price} for name, price in prices.items()],
            "schedule": copy.deepcopy(_TOU_SCHEDULE),
            "critical_peak": [
                {
                    "months": "7-8",
                    "day_types": ["weekday", "weekend"],
                    "windows": [{"start": "19:00", "end": "21:00", "period": "sharp"}],
                },
                {
                    "months": "12-1",
                    "day_types": ["weekday", "weekend"],
                    "windows": [{"start": "18:00", "end": "20:00", "period": "sharp"}],
                },
            ],
        },
        "fixed_charges": [{"name": "计量服务费 meter service", "amount": "5.00"}],
    }


MALL_COMMERCIAL_TOU: dict[str, Any] = {
    "format": "meterpay-tariff/1",
    "id": "riverside-mall-commercial-tou",
    "name": "商业分时电价(含尖峰) Mall commercial TOU with critical peak",
    "description": "一般工商业 1-10 kV; peak 08-11 and 17-22, valley 00-08; "
    "critical peak 19-21 in July-August and 18-20 in December-January.",
    "currency": "CNY",
    "commodity": "electricity",
    "versions": [
        _commercial_version(
            "2025-01-01T00:00:00",
            {"flat": "0.6508", "sharp": "1.3015", "peak": "1.0846", "valley": "0.2603"},
        ),
        _commercial_version(
            "2026-06-01T00:00:00",
            {"flat": "0.6632", "sharp": "1.3264", "peak": "1.1053", "valley": "0.2653"},
        ),
        _commercial_version(
            "2027-01-01T00:00:00",
            {"flat": "0.6702", "sharp": "1.3404", "peak": "1.1170", "valley": "0.2542"},
        ),
    ],
}

DORM_RESIDENTIAL_STEPPED: dict[str, Any] = {
    "format": "meterpay-tariff/1",
    "id": "eastlake-dorm-residential-stepped-tou",
    "name": "居民阶梯电价·峰谷 Dormitory residential stepped with peak/valley",
    "description": "年阶梯 0-2760 / 2760-4800 / 4800+ kWh, +0 / +0.05 / +0.30 CNY on both "
    "peak (08-22) and valley prices.",
    "currency": "CNY",
    "commodity": "electricity",
    "versions": [
        {
            "effective_from": "2025-01-01T00:00:00",
            "energy": {
                "periods": [
                    {"name": "peak", "price": "0.5683"},
                    {"name": "valley", "price": "0.2883"},
                ],
                "schedule": [
                    {
                        "months": "1-12",
                        "windows": [{"start": "08:00", "end": "22:00", "period": "peak"}],
                        "default_period": "valley",
                    }
                ],
                "tiers": {
                    "cumulation": "year",
                    "steps": [
                        {"up_to": "2760", "increment": "0"},
                        {"up_to": "4800", "increment": "0.05"},
                        {"up_to": None, "increment": "0.3"},
                    ],
                },
            },
        }
    ],
}

DORM_WATER: dict[str, Any] = {
    "format": "meterpay-tariff/1",
    "id": "eastlake-dorm-water",
    "name": "居民生活用水(含污水处理费) Dormitory water with sewage surcharge",
    "description": "年阶梯 0-180 / 180-260 / 260+ m³; 污水处理费 1.36 CNY/m³.",
    "currency": "CNY",
    "commodity": "water",
    "versions": [
        {
            "effective_from": "2025-01-01T00:00:00",
            "water": {
                "price": "3.64",
                "tiers": {
                    "cumulation": "year",
                    "steps": [
                        {"up_to": "180", "price": "3.64"},
                        {"up_to": "260", "price": "5.64"},
                        {"up_to": None, "price": "7.64"},
                    ],
                },
                "surcharges": [{"name": "污水处理费 sewage treatment", "price": "1.36"}],
            },
        }
    ],
}


def _two_part(tariff_id: str, name: str, basic: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "format": "meterpay-tariff/1",
        "id": tariff_id,
        "name": name,
        "description": description,
        "currency": "CNY",
        "commodity": "electricity",
        "versions": [
            {
                "effective_from": "2025-01-01T00:00:00",
                "energy": {
                    "periods": [
                        {"name": "flat", "price": "0.6124"},
                        {"name": "peak", "price": "0.9782"},
                        {"name": "valley", "price": "0.2953"},
                    ],
                    "schedule": copy.deepcopy(_TOU_SCHEDULE),
                },
                "basic": basic,
                "power_factor": {"standard": "0.90"},
            }
        ],
    }


OFFICE_CAPACITY = _two_part(
    "harbour-office-two-part-capacity",
    "两部制·按容量 Office two-part, basic charge by capacity",
    {"method": "capacity", "price": "26"},
    "基本电费 26 CNY/kVA·month on the contracted transformer capacity; 力调标准 0.90.",
)
OFFICE_DEMAND = _two_part(
    "harbour-office-two-part-demand",
    "两部制·按需量 Office two-part, basic charge by maximum demand",
    {
        "method": "max_demand",
        "price": "38",
        "overrun_threshold": "1.05",
        "overrun_multiplier": "2",
        "minimum_fraction": "0.4",
    },
    "基本电费 38 CNY/kW·month of the month's maximum 15-minute demand; demand above "
    "105 % of the contract at double price, at least 40 % of the contract; 力调标准 0.90.",
)
# Office floor area (m²) → contracted capacity (kVA) and contract demand (kW).
_OFFICE_CAPACITY_BY_AREA = {120: "80", 180: "100", 240: "125", 360: "160"}
_OFFICE_DEMAND_BY_AREA = {360: "110"}


def demo_tariffs_seed(*, actor: object, organisation: Organisation) -> dict[str, Tariff]:
    """Create the demo tariffs and assign them from each account's move-in (or 2026-03-01)."""
    tariffs = {
        key: services.tariff_create(
            actor=actor, organisation=organisation, document=document, note="demo tariff"
        )
        for key, document in (
            ("mall", MALL_COMMERCIAL_TOU),
            ("dorm", DORM_RESIDENTIAL_STEPPED),
            ("water", DORM_WATER),
            ("office_capacity", OFFICE_CAPACITY),
            ("office_demand", OFFICE_DEMAND),
        )
    }
    zone = ZoneInfo(organisation.timezone)
    accounts = (
        Account.objects.filter(organisation=organisation)
        .exclude(status=Account.Status.CLOSED)
        .prefetch_related("rooms__floor__building__site")
        .order_by("number")
    )
    plan: dict[str, list[tuple[Account, datetime, services.AssignmentTerms]]] = {
        key: [] for key in tariffs
    }
    for account in accounts:
        rooms = list(account.rooms.all())
        if not rooms:
            continue
        site_kind = rooms[0].floor.building.site.kind
        start = datetime.combine(account.move_in_on or date(2026, 3, 1), time(), zone)
        plain = services.AssignmentTerms()
        if site_kind == "mall":
            plan["mall"].append((account, start, plain))
        elif site_kind == "campus":
            plan["dorm"].append((account, start, plain))
            plan["water"].append((account, start, plain))
        elif site_kind == "office":
            area = int(sum((room.area_m2 for room in rooms), Decimal(0)))
            if area in _OFFICE_DEMAND_BY_AREA:
                terms = services.AssignmentTerms(contract_demand_kw=_OFFICE_DEMAND_BY_AREA[area])
                plan["office_demand"].append((account, start, terms))
            else:
                capacity = _OFFICE_CAPACITY_BY_AREA.get(area, "100")
                terms = services.AssignmentTerms(capacity_kva=capacity)
                plan["office_capacity"].append((account, start, terms))
    for key, assignments in plan.items():
        services.account_tariffs_assign_new(
            actor=actor, tariff=tariffs[key], assignments=assignments
        )
    return tariffs
