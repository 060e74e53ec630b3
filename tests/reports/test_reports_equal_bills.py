"""The reports equal the bills and the ledger: a mall's October and November read every hour
and deducted day by day on a time-of-use tariff, water too, rent, a property fee, a
public-area meter shared by area and a grid meter's line loss; November is re-rated (a rating
credit and an extra deduction), billed, issued, credited and re-issued. The comprehensive
report of November, from the roll-ups (advanced as the data came, and rebuilt), gives to the
fen and the 0.0001 kWh what the bills and the ledger say."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import Sum

from meterpay.apps.billing.bills import bill_confirm, bill_issue, bill_reissue
from meterpay.apps.billing.charges import charge_item_save, charge_subscribe
from meterpay.apps.billing.deductions import deductions_run
from meterpay.apps.billing.demo import DEMO_WATER_TARIFF
from meterpay.apps.billing.models import Bill, BillLine
from meterpay.apps.billing.runs import bill_run_confirm, bill_run_create, bill_run_issue
from meterpay.apps.billing.sharing import (
    allocation_group_save,
    allocation_members_set,
    grid_reading_enter,
    loss_group_save,
)
from meterpay.apps.customers import services as customers
from meterpay.apps.customers.models import Account
from meterpay.apps.ledger.models import JournalEntry, Posting
from meterpay.apps.ledger.selectors import ledger_mismatches
from meterpay.apps.meters import services as meters
from meterpay.apps.meters.models import Meter
from meterpay.apps.payments.services import recharge_record
from meterpay.apps.readings.services import ReadInput, register_reads_record_batch
from meterpay.apps.reports.selectors import comprehensive_report, meter_energy
from meterpay.apps.reports.services import rollups_catch_up, rollups_rebuild
from meterpay.apps.sites import services as sites
from meterpay.apps.supply.models import BalancePolicy
from meterpay.apps.supply.services import movement_post
from meterpay.apps.tariffs.services import default_tariffs_create
from meterpay.core import ledger
from meterpay.core.ledger import ChargeType
from tests.reports.helpers import TOU_TARIFF, booked, deducted, local, profile

pytestmark = pytest.mark.django_db

OCT, NOV, DEC = date(2026, 10, 1), date(2026, 11, 1), date(2026, 12, 1)


class Mall:
    """Building B1: shop A (prepaid, room 101, 50 m², an electricity and a water meter),
    shop B (postpaid, room 103, 30 m²), the public-area meter (room P1, no account);
    building B2: shop C (prepaid, room 201, 20 m²)."""

    def __init__(self, org: Any) -> None:
        actor = "t"
        self.org = org
        BalancePolicy.objects.create(
            organisation=org.org,
            alarm_thresholds_minor=[5000, 2000, 500],
            night_start=None,
            night_end=None,
            protect_weekends=False,
            protect_holidays=False,
            postpaid_grace_days=0,
        )
        default_tariffs_create(
            actor=actor, organisation=org.org, electricity=TOU_TARIFF, water=DEMO_WATER_TARIFF
        )
        self.a = org.account
        self.meter_a = org.meter
        self.water_a = meters.meter_create(
            actor=actor, organisation=org.org, kind="water", protocol="cjt188",
            address="00000000000777", room=org.room,
        )  # fmt: skip
        Meter.objects.filter(pk=self.water_a.pk).update(account=self.a)
        room_b = sites.room_create(
            actor=actor, floor=org.floor, number="103", kind="shop", area_m2=Decimal("30.00")
        )
        self.meter_b = self._meter("000000000903", room_b)
        self.b = customers.account_open_new(
            actor=actor,
            customer=customers.customer_create(actor=actor, organisation=org.org, name="Shop B"),
            rooms=[room_b],
            meters=[self.meter_b],
            billing_mode="postpaid",
        )
        public = sites.room_create(
            actor=actor, floor=org.floor, number="P1", kind="public_area", area_m2=Decimal("0")
        )
        self.master = self._meter("000000000999", public, kind="electricity_3p")
        b2 = sites.building_create(actor=actor, site=org.site, name="B2")
        floor2 = sites.floor_create(actor=actor, building=b2, name="2F", level=2)
        room_c = sites.room_create(
            actor=actor, floor=floor2, number="201", kind="shop", area_m2=Decimal("20.00")
        )
        self.meter_c = self._meter("000000000905", room_c)
        self.c = customers.account_open_new(
            actor=actor,
            customer=customers.customer_create(actor=actor, organisation=org.org, name="Shop C"),
            rooms=[room_c],
            meters=[self.meter_c],
        )
        Account.objects.filter(pk__in=[self.a.pk, self.b.pk, self.c.pk]).update(
            opened_at=local(date(2026, 9, 1)), move_in_on=date(2026, 9, 1)
        )
        for account in (self.a, self.b, self.c):
            account.refresh_from_db()
        for account in (self.a, self.c):
            recharge_record(
                actor=actor, account=account, amount="20000.00", channel="cash",
                idempotency_key=f"r-{account.pk}",
            )  # fmt: skip
        # October and November, every hour, deducted day by day and rolled up as it goes
        self.scale = {
            self.meter_a.pk: Decimal(1), self.water_a.pk: Decimal("0.1"),
            self.meter_b.pk: Decimal("0.5"), self.master.pk: Decimal("0.3"),
            self.meter_c.pk: Decimal(2),
        }  # fmt: skip
        totals = dict.fromkeys(self.scale, Decimal(1000))
        day = OCT
        while day <= DEC:
            hours = [local(day) + timedelta(hours=h) for h in range(24 if day < DEC else 1)]
            reads = []
            for hour in hours:
                for meter_id, scale in self.scale.items():
                    if meter_id == self.meter_c.pk and date(2026, 11, 12) <= day < date(
                        2026, 11, 16
                    ):
                        continue  # shop C's meter offline for four days: one long gap
                    reads.append(
                        ReadInput(
                            meter_id=meter_id,
                            read_at=hour,
                            total=totals[meter_id],
                            expected_interval=timedelta(hours=1),
                        )
                    )
                    totals[meter_id] += (profile(hour) * 4 * scale).quantize(Decimal("0.01"))
            register_reads_record_batch(reads=reads)
            deductions_run()
            if day.day % 7 == 0:
                rollups_catch_up()
            day += timedelta(days=1)
        self._month_end()

    def _meter(self, address: str, room: Any, kind: str = "electricity_1p") -> Meter:
        return meters.meter_create(
            actor="t", organisation=self.org.org, kind=kind, protocol="dlt645",
            address=address, gateway=self.org.gateway, room=room,
        )  # fmt: skip

    def _month_end(self) -> None:
        actor, org = "t", self.org
        rent = charge_item_save(
            actor=actor,
            organisation_id=org.org.pk,
            values={
                "code": "rent", "name": "Rent", "basis": "per_area", "unit_price": "60",
                "frequency": "monthly", "settlement": "bill", "revenue": "rent",
            },
        )  # fmt: skip
        fee = charge_item_save(
            actor=actor,
            organisation_id=org.org.pk,
            values={
                "code": "property", "name": "Property fee", "basis": "fixed",
                "unit_price": "300", "frequency": "monthly", "settlement": "deduct",
                "revenue": "property_fee",
            },
        )  # fmt: skip
        for item in (rent, fee):
            charge_subscribe(actor=actor, item=item, accounts=[self.a, self.b, self.c])
        group = allocation_group_save(
            actor=actor,
            organisation_id=org.org.pk,
            values={
                "name": "Lighting",
                "site": org.site,
                "master_meter": self.master,
                "rule": "area",
            },
        )
        allocation_members_set(
            actor=actor, group=group, members=[(self.a, None), (self.b, None), (self.c, None)]
        )
        loss = loss_group_save(
            actor=actor,
            organisation_id=org.org.pk,
            values={"name": "Grid", "site": org.site, "unit_price": "0.80", "rule": "usage"},
        )
        grid_reading_enter(actor=actor, group=loss, read_on=NOV, reading="10000")
        grid_reading_enter(actor=actor, group=loss, read_on=DEC, reading="99000")

    def rerate(self) -> None:
        """November re-rated: A's energy rated 12.34 too high, B's 5.67 too low."""
        credit = ledger.build_rating_credit(
            account_id=str(self.a.pk), charge_type=ChargeType.ENERGY, amount=Decimal("12.34"),
            reference=f"meter-{self.meter_a.pk}/rerate-2026-11", occurred_at=local(NOV, 12) + timedelta(days=19),
        )  # fmt: skip
        extra = ledger.build_deduction(
            account_id=str(self.b.pk), lines=[(ChargeType.ENERGY, Decimal("5.67"))],
            reference=f"meter-{self.meter_b.pk}/rerate-2026-11", occurred_at=local(NOV, 12) + timedelta(days=24),
        )  # fmt: skip
        for entry, account, meter in (
            (credit, self.a, self.meter_a),
            (extra, self.b, self.meter_b),
        ):
            movement_post(
                actor="t", entry=entry, kind=JournalEntry.Kind.DEDUCTION, account=account,
                reference=f"meter-{meter.pk}/rerate-2026-11",
            )  # fmt: skip

    def bill(self) -> None:
        run = bill_run_create(
            actor="t", organisation_id=self.org.org.pk, period_start=NOV, period_end=DEC,
            site=self.org.site, due_on=date(2026, 12, 5),
        )  # fmt: skip
        bill_run_confirm(actor="t", run=run)
        bill_run_issue(actor="t", run=run)
        first = Bill.objects.get(run=run, account=self.a)
        corrected = bill_reissue(
            actor="t",
            bill=first,
            reason="works",
            adjustments=[("Works discount", Decimal("-50.00"))],
        )
        bill_confirm(actor="t", bill=corrected)
        bill_issue(actor="t", bill=corrected)


@pytest.fixture
def mall(org: Any) -> Mall:
    mall = Mall(org)
    mall.rerate()
    mall.bill()
    return mall


def bill_lines(account: Account, **where: Any) -> int:
    """Σ of the lines of the account's November bills (credit notes included)."""
    lines = BillLine.objects.filter(
        bill__account=account, bill__period_start=NOV, bill__period_end=DEC,
        bill__status__in=["issued", "paid", "credited"], **where,
    )  # fmt: skip
    return int(lines.aggregate(s=Sum("amount_minor"))["s"] or 0)


def bill_quantity(account: Account, label: str) -> Decimal:
    """The kWh of a period on the account's live November bill (from the rating state)."""
    lines = BillLine.objects.filter(
        bill__account=account, bill__kind="statement", bill__status="issued",
        bill__period_start=NOV, section="energy", label=f"Electricity, {label}",
    )  # fmt: skip
    return Decimal(lines.aggregate(s=Sum("quantity"))["s"] or 0).quantize(Decimal("0.0001"))


def revenue(account: Account, code: str, since: Any, until: Any) -> int:
    """What the ledger credited to a revenue account for the account's entries."""
    found = Posting.objects.filter(
        entry__account=account, ledger_account__code=code,
        entry__occurred_at__gt=since, entry__occurred_at__lte=until,
    ).aggregate(s=Sum("amount"))["s"]  # fmt: skip
    return -int(found or 0)


def check_november(mall: Mall) -> Any:
    report = comprehensive_report(
        organisation_id=mall.org.org.pk, start=NOV, end=DEC, today=date(2026, 12, 20)
    )
    rows = {row.key: row for row in report.rows}
    since, until = local(NOV), local(DEC)
    for account in (mall.a, mall.b, mall.c):
        figures = rows[f"account:{account.pk}"].figures
        # money: the ledger's deductions, and what the bills showed of them
        assert figures.deductions_minor == deducted(account.pk, since, until)
        assert figures.electricity_minor + figures.water_minor == bill_lines(
            account, bill__kind="statement", bill__status="issued", posted=False
        )
        # the bills' booked lines (a credit note cancels the credited bill)
        for section, value in (
            ("charges", figures.charges_minor),
            ("public_share", figures.public_share_minor),
            ("line_loss", figures.line_loss_minor),
            ("adjustment", figures.adjustments_minor),
        ):
            assert value == bill_lines(account, section=section, posted=True) + bill_lines(
                account, section=section, bill__kind="credit_note"
            ), section
        # and the ledger's revenue for them
        assert figures.charges_minor == revenue(
            account, "revenue:rent", since, until + timedelta(days=60)
        ) + revenue(account, "revenue:property_fee", since, until + timedelta(days=60))
        # energy: the bill's meter readings, and each period's kWh as the engine priced it
        statement = Bill.objects.get(account=account, kind="statement", status="issued")
        kwh = sum(
            (
                Decimal(m["consumption"])
                for m in statement.readings
                if m["utility"] == "electricity"
            ),
            Decimal(0),
        )
        m3 = sum(
            (Decimal(m["consumption"]) for m in statement.readings if m["utility"] == "water"),
            Decimal(0),
        )
        assert (figures.kwh, figures.m3) == (kwh, m3)
        for period in ("sharp", "peak", "flat", "valley"):
            assert figures.kwh_by_period[period] == bill_quantity(account, period), period
        assert figures.kwh_by_period["untimed"] == 0
    public = rows[f"room:{mall.master.room_id}"].figures
    assert public.kwh > 0 and public.deductions_minor == 0
    a = rows[f"account:{mall.a.pk}"].figures
    assert a.m3 > 0 and a.water_minor > 0
    # the re-rating is in: A's credit lowers its electricity, B's extra raises it
    assert a.electricity_minor == revenue(mall.a, "revenue:energy", since, until)
    # totals and subtotals add up
    assert report.total.deductions_minor == sum(
        deducted(acc.pk, since, until) for acc in (mall.a, mall.b, mall.c)
    )
    assert report.total.total_minor == sum(row.figures.total_minor for row in report.rows)
    subtotals = {(s.level, s.name): s.figures for s in report.subtotals}
    assert subtotals[("site", "Site alpha")].total_minor == report.total.total_minor
    b2 = rows[f"account:{mall.c.pk}"].figures
    assert subtotals[("building", "B2")].kwh == b2.kwh
    assert subtotals[("building", "B1")].kwh == report.total.kwh - b2.kwh
    assert [(s.level, s.name) for s in report.subtotals] == [
        ("site", "Site alpha"), ("building", "B1"), ("floor", "1F"),
        ("building", "B2"), ("floor", "2F"),
    ]  # fmt: skip
    # a building's report, and some accounts'
    b2_id = next(s.id for s in report.subtotals if s.level == "building" and s.name == "B2")
    only_b2 = comprehensive_report(
        organisation_id=mall.org.org.pk, start=NOV, end=DEC, building_id=b2_id,
        today=date(2026, 12, 20),
    )  # fmt: skip
    assert [row.key for row in only_b2.rows] == [f"account:{mall.c.pk}"]
    assert only_b2.total == b2 and [s.level for s in only_b2.subtotals] == [
        "site",
        "building",
        "floor",
    ]
    some = comprehensive_report(
        organisation_id=mall.org.org.pk, start=NOV, end=DEC, account_ids=[mall.a.pk, mall.b.pk],
        today=date(2026, 12, 20),
    )  # fmt: skip
    assert {row.key for row in some.rows} == {f"account:{mall.a.pk}", f"account:{mall.b.pk}"}
    assert (
        some.total.total_minor
        == rows[f"account:{mall.a.pk}"].figures.total_minor
        + rows[f"account:{mall.b.pk}"].figures.total_minor
    )
    # month on month: October from its own buckets
    october = comprehensive_report(
        organisation_id=mall.org.org.pk, start=OCT, end=NOV, today=date(2026, 12, 20)
    )
    before = {row.key: row.figures for row in october.rows}
    for key, row in rows.items():
        mom = row.month_on_month
        assert (mom.start, mom.end) == (OCT, NOV)
        if mom.kwh.previous is None:  # no data in October: nothing to compare with
            assert before[key].intervals == before[key].total_minor == 0
            continue
        assert mom.kwh.previous == before[key].kwh
        assert mom.kwh.difference == row.figures.kwh - before[key].kwh
        assert mom.total_minor.previous == before[key].total_minor
        assert row.year_on_year.kwh.previous is None  # no November 2025
    assert report.month_on_month.electricity_minor.previous == october.total.electricity_minor
    # shop C's meter was offline four days: the data is marked, not hidden
    c = rows[f"account:{mall.c.pk}"].figures
    assert c.estimated == 1 and c.coverage == 100  # the gap was booked in full...
    energy = meter_energy(
        organisation_id=mall.org.org.pk, meter_id=mall.meter_c.pk, start=NOV, end=DEC,
        today=date(2026, 12, 20),
    )  # fmt: skip
    # ...but these days are: the last read before was at 23:00 on the 11th, the next at
    # midnight ending the 15th, which the gap (its consumption, estimated) counts in
    missing = [p.start for p in energy.points if p.missing]
    assert missing == [date(2026, 11, d) for d in (11, 12, 13, 14)]
    assert [p.start for p in energy.points if p.estimated] == [date(2026, 11, 15)]
    assert [p.quantity for p in energy.points[11:14]] == [None, None, None]
    assert energy.total == c.kwh
    months = meter_energy(
        organisation_id=mall.org.org.pk, meter_id=mall.meter_c.pk, start=OCT, end=DEC,
        grain="month", today=date(2026, 12, 20),
    )  # fmt: skip
    assert [(p.start, p.quantity) for p in months.points][1] == (NOV, c.kwh)
    # over the month the gap covers the four days: nothing missing, one interval estimated
    assert [(p.missing, p.estimated) for p in months.points] == [(False, 0), (False, 1)]
    year = meter_energy(
        organisation_id=mall.org.org.pk, meter_id=mall.meter_c.pk, start=NOV, end=DEC,
        grain="year", today=date(2026, 12, 20),
    )  # fmt: skip
    assert [(p.start, p.quantity) for p in year.points] == [(date(2026, 1, 1), months.total)]
    return report


def check_any_span(mall: Mall) -> None:
    """Spans that are not whole months read the daily buckets around the monthly ones."""
    meters = {
        mall.a.pk: [mall.meter_a.pk],
        mall.b.pk: [mall.meter_b.pk],
        mall.c.pk: [mall.meter_c.pk],
    }
    for first, last in (
        (date(2026, 11, 10), DEC),
        (date(2026, 10, 20), DEC),
        (OCT, date(2026, 10, 2)),
    ):
        report = comprehensive_report(
            organisation_id=mall.org.org.pk, start=first, end=last, today=date(2026, 12, 20)
        )
        rows = {row.key: row for row in report.rows}
        since, until = local(first), local(last)
        for account in (mall.a, mall.b, mall.c):
            row = rows[f"account:{account.pk}"]
            assert row.figures.kwh == booked(meters[account.pk], since, until)
            assert row.figures.deductions_minor == deducted(account.pk, since, until)
            # the span before, of as many days
            length = last - first
            assert (
                row.month_on_month.kwh.previous
                == booked(meters[account.pk], local(first - length), since)
                or row.month_on_month.kwh.previous is None
            )


def test_the_report_equals_the_bills_and_the_ledger(mall: Mall) -> None:
    rollups_catch_up()
    report = check_november(mall)
    check_any_span(mall)
    assert ledger_mismatches() == []
    # a rebuild of the re-rated month (as after a re-rating) gives the same report
    for account in (mall.a, mall.b, mall.c):
        rollups_rebuild(account=account, start=NOV, end=DEC)
    rollups_rebuild(meter=mall.master, start=NOV, end=DEC)
    again = check_november(mall)
    assert again == report
