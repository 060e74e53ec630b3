"""Bills stored in bulk (COPY on PostgreSQL) are the bills the ORM stores one by one."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from meterpay.apps.billing.bills import (
    LINE_COLUMNS,
    bill_row,
    bill_values,
    bills_store,
    bills_store_values,
    line_values,
)
from meterpay.apps.billing.lines import LineDraft, Section
from meterpay.apps.billing.models import Bill, BillLine
from meterpay.core.ledger import ChargeType

pytestmark = pytest.mark.django_db

LINES = [
    LineDraft(
        section=Section.ENERGY,
        label="Electricity, flat",
        amount_minor=20400,
        charge_type=ChargeType.ENERGY,
        settles="wallet",
        posted=False,
        quantity=Decimal("300.0000"),
        unit="kWh",
        unit_price_micro=680000,
        detail={"month": "2026-11", "component": "energy", "meter": "000000000001"},
    ),
    LineDraft(
        section=Section.CHARGES,
        label="Rent 2026-11-01 ~ 2026-11-30\ttab, new\nline and \\ backslash " + "x" * 250,
        amount_minor=300000,
        charge_type=ChargeType.RENT,
        settles="receivable",
        posted=True,
        quantity=Decimal("50.0000"),
        unit="m2",
        unit_price_micro=60000000,
        detail={"item": "rent", "key": "rent/2026-11-01", "note": "引号 \" and ' quotes"},
    ),
    LineDraft(
        section=Section.ADJUSTMENT,
        label="Difference to real-time deductions",
        amount_minor=-3,
        charge_type=ChargeType.ENERGY,
        settles="wallet",
        posted=False,
    ),
]


def _fields(account: Any, number: str) -> dict[str, Any]:
    return {
        "account": account,
        "kind": Bill.Kind.STATEMENT,
        "period_start": date(2026, 11, 1),
        "period_end": date(2026, 12, 1),
        "due_on": date(2026, 12, 15),
        "lines": LINES,
        "number": number,
        "readings": [{"meter_id": 1, "consumption": "300.0000", "first_reading": None}],
        "review": {"flags": ["no_previous"], "kwh": "300.0000"},
        "notes": "a note",
    }


def _stored(bill_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    skip = {"id", "number", "created_at"}
    bill = {
        f.attname: getattr(Bill.objects.get(pk=bill_id), f.attname)
        for f in Bill._meta.concrete_fields
        if f.attname not in skip
    }
    lines = [
        {
            f.attname: getattr(line, f.attname)
            for f in BillLine._meta.concrete_fields
            if f.attname not in {"id", "bill_id"}
        }
        for line in BillLine.objects.filter(bill_id=bill_id).order_by("position")
    ]
    return bill, lines


def test_a_bill_stored_in_bulk_is_the_bill_the_orm_stores(org: Any) -> None:
    one = bill_row(**_fields(org.account, "B202611-00001"))
    one.save()
    BillLine.objects.bulk_create(
        [line.row(bill_id=one.pk, position=n) for n, line in enumerate(LINES, 1)]
    )
    [bulk] = bills_store_values([(bill_values(**_fields(org.account, "B202611-00002")), LINES)])
    row = bill_row(**_fields(org.account, "B202611-00003"))
    bills_store([(row, LINES)])
    assert row.pk is not None and row.created_at is not None
    assert _stored(bulk) == _stored(one.pk) == _stored(row.pk)
    assert Bill.objects.get(pk=bulk).created_at is not None
    assert len(_stored(bulk)[1][1]["label"]) == 200


def test_line_values_are_the_fields_of_the_line_row() -> None:
    for line in LINES:
        row = line.row(bill_id=7, position=3)
        values = dict(zip(LINE_COLUMNS, line_values(line, bill_id=7, position=3), strict=True))
        values["detail"] = json.loads(values["detail"])
        assert values == {name: getattr(row, name) for name in LINE_COLUMNS}
