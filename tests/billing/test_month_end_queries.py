"""The month end's statements do not grow with the number of accounts.

A site of 30 shops (every third postpaid) with a month of readings deducted, rent and a
property fee, a public-area meter shared by area and a line-loss group: a run of 3 of them and a
run of all 30 are made, confirmed and issued (each in a transaction rolled back afterwards),
and every step takes the same number of statements for both.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from meterpay.apps.billing import consumption, documents
from meterpay.apps.billing.charges import charge_item_save, charge_subscribe
from meterpay.apps.billing.deductions import deductions_run
from meterpay.apps.billing.demo import DEMO_ELECTRICITY_TARIFF
from meterpay.apps.billing.models import Bill
from meterpay.apps.billing.runs import bill_run_confirm, bill_run_create, bill_run_issue
from meterpay.apps.billing.sharing import (
    allocation_group_save,
    allocation_members_set,
    grid_reading_enter,
    loss_group_save,
)
from meterpay.apps.customers import services as customers
from meterpay.apps.customers.models import Account
from meterpay.apps.ledger.selectors import ledger_mismatches
from meterpay.apps.meters import services as meters
from meterpay.apps.payments.services import recharge_record
from meterpay.apps.readings import services as readings
from meterpay.apps.sites import services as sites
from meterpay.apps.supply.models import BalancePolicy
from meterpay.apps.tariffs.services import default_tariffs_create
from tests.billing.test_month_end import DEC, NOV, local

pytestmark = pytest.mark.django_db

SHOPS = 30


class _Rollback(Exception):
    pass


def _reads(meter: Any, first: Decimal, used: Decimal) -> None:
    for day, total in ((NOV, first), (DEC, first + used)):
        readings.register_read_record(
            meter=meter,
            read_at=local(day),
            source="poll",
            total=total,
            expected_interval=timedelta(days=30),
        )


@pytest.fixture
def shops(org: Any) -> list[Account]:
    actor = "t"
    BalancePolicy.objects.create(organisation=org.org, alarm_thresholds_minor=[5000, 2000, 500])
    default_tariffs_create(actor=actor, organisation=org.org, electricity=DEMO_ELECTRICITY_TARIFF)
    accounts = []
    for n in range(SHOPS):
        room = sites.room_create(
            actor=actor,
            floor=org.floor,
            number=f"S{n:02d}",
            kind="shop",
            area_m2=Decimal(20 + n),
        )
        meter = meters.meter_create(
            actor=actor,
            organisation=org.org,
            kind="electricity_1p",
            protocol="dlt645",
            address=f"{500 + n:012d}",
            gateway=org.gateway,
            room=room,
        )
        customer = customers.customer_create(actor=actor, organisation=org.org, name=f"Shop {n}")
        account = customers.account_open_new(
            actor=actor,
            customer=customer,
            rooms=[room],
            meters=[meter],
            billing_mode="postpaid" if n % 3 == 2 else "prepaid",
        )
        if account.billing_mode == "prepaid":
            recharge_record(
                actor=actor,
                account=account,
                amount="5000.00",
                channel="cash",
                idempotency_key=f"k{n}",
            )
        _reads(meter, Decimal(1000 + n), Decimal(100 + 7 * n))
        accounts.append(account)
    opened = local(date(2026, 10, 1))
    Account.objects.filter(organisation=org.org).update(opened_at=opened, move_in_on=opened.date())
    public = sites.room_create(
        actor=actor, floor=org.floor, number="P1", kind="public_area", area_m2=Decimal(0)
    )
    master = meters.meter_create(
        actor=actor,
        organisation=org.org,
        kind="electricity_3p",
        protocol="dlt645",
        address="000000000999",
        gateway=org.gateway,
        room=public,
    )
    _reads(master, Decimal(0), Decimal(400))
    deductions_run()
    for values in (
        {"code": "rent", "name": "Rent", "basis": "per_area", "unit_price": "60"},
        {"code": "fee", "name": "Property fee", "basis": "fixed", "unit_price": "300"},
    ):
        item = charge_item_save(
            actor=actor,
            organisation_id=org.org.pk,
            values={
                **values,
                "frequency": "monthly",
                "settlement": "bill" if values["code"] == "rent" else "deduct",
                "revenue": "rent" if values["code"] == "rent" else "property_fee",
            },
        )
        charge_subscribe(actor=actor, item=item, accounts=accounts)
    group = allocation_group_save(
        actor=actor,
        organisation_id=org.org.pk,
        values={"name": "Lighting", "site": org.site, "master_meter": master, "rule": "area"},
    )
    allocation_members_set(actor=actor, group=group, members=[(a, None) for a in accounts])
    loss = loss_group_save(
        actor=actor,
        organisation_id=org.org.pk,
        values={"name": "Grid", "site": org.site, "unit_price": "0.80", "rule": "usage"},
    )
    grid_reading_enter(actor=actor, group=loss, read_on=NOV, reading="10000")
    grid_reading_enter(actor=actor, group=loss, read_on=DEC, reading="20000")
    return accounts


def _statements(org: Any, accounts: list[Account]) -> dict[str, int]:
    counts: dict[str, int] = {}
    try:
        with transaction.atomic():
            with CaptureQueriesContext(connection) as queries:
                run = bill_run_create(
                    actor="t",
                    organisation_id=org.org.pk,
                    period_start=NOV,
                    period_end=DEC,
                    accounts=accounts,
                )
            counts["create"] = len(queries)
            assert run.bills.count() == len(accounts)
            with CaptureQueriesContext(connection) as queries:
                bill_run_confirm(actor="t", run=run)
            counts["confirm"] = len(queries)
            with CaptureQueriesContext(connection) as queries:
                bill_run_issue(actor="t", run=run)
            counts["issue"] = len(queries)
            assert set(run.bills.values_list("status", flat=True)) == {"issued"}
            assert ledger_mismatches() == []
            with CaptureQueriesContext(connection) as queries:
                documents._run_items(run, "en")
            counts["print"] = len(queries)
            raise _Rollback
    except _Rollback:
        pass
    return counts


def test_statements_do_not_grow_with_the_accounts(org: Any, shops: list[Account]) -> None:
    # both runs leave some members of the groups out (shared with, not billed)
    few = _statements(org, shops[:3])
    many = _statements(org, shops[:-1])
    assert few == many


def test_the_lines_of_a_run_are_those_of_each_account_alone(org: Any, shops: list[Account]) -> None:
    """Loaded in bulk, each account's consumption, charges and shares are its own."""
    try:
        with transaction.atomic():
            run = bill_run_create(
                actor="t",
                organisation_id=org.org.pk,
                period_start=NOV,
                period_end=DEC,
                accounts=shops,
            )
            together = {
                b.account_id: sorted(b.lines.values_list("section", "label", "amount_minor"))
                for b in run.bills.all()
            }
            raise _Rollback
    except _Rollback:
        pass
    for account in shops[:4] + shops[-2:]:
        try:
            with transaction.atomic():
                alone = bill_run_create(
                    actor="t",
                    organisation_id=org.org.pk,
                    period_start=NOV,
                    period_end=DEC,
                    accounts=[account],
                )
                bill: Bill = alone.bills.get()
                lines = sorted(bill.lines.values_list("section", "label", "amount_minor"))
                raise _Rollback
        except _Rollback:
            pass
        assert lines == together[account.pk]
        assert {section for section, _l, _a in lines} == {
            "energy",
            "charges",
            "public_share",
            "line_loss",
        }


def test_many_ids_go_as_one_array(
    org: Any, shops: list[Account], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above ``MANY_IDS`` accounts PostgreSQL gets the ids as one array: the same bills."""

    def lines() -> dict[int, list[tuple[str, str, int]]]:
        try:
            with transaction.atomic():
                run = bill_run_create(
                    actor="t",
                    organisation_id=org.org.pk,
                    period_start=NOV,
                    period_end=DEC,
                    accounts=shops,
                )
                found = {
                    b.account_id: sorted(b.lines.values_list("section", "label", "amount_minor"))
                    for b in run.bills.all()
                }
                raise _Rollback
        except _Rollback:
            pass
        return found

    as_lists = lines()
    monkeypatch.setattr(consumption, "MANY_IDS", 0)
    assert lines() == as_lists
    assert len(as_lists) == SHOPS
