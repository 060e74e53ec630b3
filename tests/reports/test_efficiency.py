"""The efficiency view on the database: curves and heat map from the hourly roll-ups, the
ranking of rooms, a night base load that jumps, a meter of an open account that used nothing,
and the peak-shaving suggestion priced by the engine with the room's own tariff."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from meterpay.apps.customers import services as customers
from meterpay.apps.readings.models import Interval
from meterpay.apps.readings.services import ReadInput, register_reads_record_batch
from meterpay.apps.reports.efficiency import efficiency_view
from meterpay.apps.reports.models import MeterHour
from meterpay.apps.reports.services import rollups_catch_up
from meterpay.apps.sites import services as sites
from meterpay.apps.tariffs.services import default_tariffs_create
from meterpay.core import tariffs
from meterpay.core.money import to_minor
from meterpay.core.tariffs import parse_tariff
from tests.reports.helpers import TOU_TARIFF, local, profile

pytestmark = pytest.mark.django_db

MAR, APR, APR15 = date(2026, 3, 1), date(2026, 4, 1), date(2026, 4, 15)
NIGHTS_UP_FROM = date(2026, 4, 8)
IDLE = (date(2026, 4, 5), date(2026, 4, 9))


def usage(meter: str, end: datetime) -> Decimal:
    """kWh of the hour ending at ``end``."""
    at = timezone.localtime(end - timedelta(microseconds=1))
    kwh = profile(end) * 4
    if meter == "a" and at.date() >= NIGHTS_UP_FROM and at.hour < 6:
        kwh += 3  # something left on at night in the last week
    if meter == "b" and IDLE[0] <= at.date() <= IDLE[1]:
        return Decimal(0)
    return kwh * (2 if meter == "b" else 1)


@pytest.fixture
def place(org: Any) -> Any:
    default_tariffs_create(actor="t", organisation=org.org, electricity=TOU_TARIFF)
    room_b = sites.room_create(
        actor="t", floor=org.floor, number="103", kind="shop", area_m2=Decimal("25.00")
    )
    from meterpay.apps.meters import services as meters

    meter_b = meters.meter_create(
        actor="t", organisation=org.org, kind="electricity_1p", protocol="dlt645",
        address="000000000903", gateway=org.gateway, room=room_b,
    )  # fmt: skip
    customers.account_open_new(
        actor="t",
        customer=customers.customer_create(actor="t", organisation=org.org, name="Shop B"),
        rooms=[room_b],
        meters=[meter_b],
    )
    totals = {"a": Decimal(100), "b": Decimal(100)}
    reads = []
    moment = local(MAR)
    while moment <= local(APR15):
        for name, meter in (("a", org.meter), ("b", meter_b)):
            reads.append(
                ReadInput(
                    meter_id=meter.pk,
                    read_at=moment,
                    total=totals[name],
                    expected_interval=timedelta(hours=1),
                )
            )
        moment += timedelta(hours=1)
        for name in totals:
            totals[name] += usage(name, moment)
    for index in range(0, len(reads), 2000):
        register_reads_record_batch(reads=reads[index : index + 2000])
    rollups_catch_up()
    org.meter_b = meter_b
    return org


def test_the_efficiency_of_a_floor(place: Any) -> None:
    view = efficiency_view(
        organisation_id=place.org.pk, start=APR, end=APR15, floor_id=place.floor.pk,
        today=date(2026, 4, 20),
    )  # fmt: skip
    # the vacant room's meter has no data (and no account: no anomaly for it)
    assert view.meters == (place.meter.pk, place.free_meter.pk, place.meter_b.pk)
    hours = MeterHour.objects.filter(
        meter_id__in=view.meters, hour__gte=local(APR), hour__lt=local(APR15)
    )
    assert view.kwh == sum((Decimal(h.quantity) / 10000 for h in hours), Decimal(0))
    assert len(view.load_curve) == 14 * 24
    assert sum((v or 0 for _, v in view.load_curve), Decimal(0)) == view.kwh
    assert [d for d, _ in view.heat_map] == [APR + timedelta(days=n) for n in range(14)]
    assert view.heat_map[0][1][9] == view.load_curve[9][1]  # 09:00-10:00 on 1 April
    assert sum(view.composition.values(), Decimal(0)) == view.kwh
    assert view.composition["untimed"] == 0 and view.composition["sharp"] > 0
    # ranking: B used twice A's day load, but nothing for five days
    ranked = [(r.key, r.kwh) for r in view.ranking]
    assert [k for k, _ in ranked][:2] == [f"room:{place.meter_b.room_id}", f"room:{place.room.pk}"]
    a = next(r for r in view.ranking if r.key == f"room:{place.room.pk}")
    assert a.kwh_per_m2 == (a.kwh / 50).quantize(Decimal("0.01"))
    assert a.peak_share is not None and a.night_base_kw is not None and a.weekend_base_kw
    # anomalies: A's night base load against its own history; B idle while its account is open
    kinds = {(x.key, x.anomaly.kind) for x in view.anomalies}
    assert kinds == {
        (f"room:{place.room.pk}", "night_base_jump"),
        (f"room:{place.meter_b.room_id}", "zero_consumption"),
    }
    jump = next(x.anomaly for x in view.anomalies if x.anomaly.kind == "night_base_jump")
    # 1 kWh an hour at night, 6 in the hour to 06:00 (the profile by the end); then 3 kW more
    assert jump.baseline == Decimal("1.833") and jump.current == Decimal("4.833")
    idle = next(x for x in view.anomalies if x.anomaly.kind == "zero_consumption")
    assert (idle.meter_id, idle.anomaly.first, idle.anomaly.last) == (place.meter_b.pk, *IDLE)
    assert len(view.suggestions) == 2


def test_peak_shaving_is_priced_by_the_engine(place: Any) -> None:
    view = efficiency_view(
        organisation_id=place.org.pk, start=APR, end=APR15, room_id=place.room.pk,
        today=date(2026, 4, 20),
    )  # fmt: skip
    (suggestion,) = view.suggestions
    # "before" is what the engine charges for the room's own intervals of the span
    zone = timezone.get_current_timezone()
    raw = [
        tariffs.Interval(
            i.start_at.astimezone(zone).replace(tzinfo=None),
            i.end_at.astimezone(zone).replace(tzinfo=None),
            i.consumption,
        )
        for i in Interval.objects.filter(
            meter=place.meter, booked=True, end_at__gt=local(APR), end_at__lte=local(APR15)
        ).order_by("end_at")
    ]
    charged = tariffs.rate(tariff=parse_tariff(TOU_TARIFF), intervals=raw)
    assert suggestion.before_minor == to_minor(charged.total)
    peak = view.composition["peak"] + view.composition["sharp"]
    assert abs(suggestion.moved_kwh - peak / 5) < Decimal("0.01")
    assert suggestion.saved_minor == suggestion.before_minor - suggestion.after_minor > 0
    # peak and sharp at 1.00-1.30 moved to the valley at 0.30: about 0.70 a kWh saved
    assert abs(Decimal(suggestion.saved_minor) / 100 - suggestion.moved_kwh * Decimal("0.72")) < 10
    assert "20%" in suggestion.text and "Commercial TOU" in suggestion.text


def test_every_report_exports_numbers_as_numbers_and_no_formula(place: Any) -> None:
    import io

    import openpyxl

    from meterpay.apps.customers.models import Customer
    from meterpay.apps.reports.exports import comprehensive_xlsx, efficiency_xlsx, meter_energy_xlsx
    from meterpay.apps.reports.selectors import comprehensive_report, meter_energy

    Customer.objects.filter(pk=place.customer.pk).update(name='=HYPERLINK("http://x")')
    report = comprehensive_report(
        organisation_id=place.org.pk, start=APR, end=APR15, today=date(2026, 4, 20)
    )
    book = openpyxl.load_workbook(io.BytesIO(comprehensive_xlsx(report)))
    sheet = book.worksheets[0]
    header = [c.value for c in sheet[1]]
    row = next(
        r for r in sheet.iter_rows(min_row=2, values_only=True) if r[4] == place.account.number
    )
    assert row[5] == '\'=HYPERLINK("http://x")'  # text, never a formula
    figures = next(r.figures for r in report.rows if r.account_id == place.account.pk)
    assert row[header.index("kWh")] == float(figures.kwh)
    assert isinstance(row[header.index("Electricity")], float | int)
    kwh_cell = sheet.cell(row=2, column=header.index("kWh") + 1)
    assert kwh_cell.number_format == "#,##0.0000"
    totals = list(book.worksheets[1].iter_rows(min_row=2, values_only=True))
    assert totals[-1][0] == "Total" and totals[-1][4] == float(report.total.kwh)

    energy = meter_energy(
        organisation_id=place.org.pk, meter_id=place.meter_b.pk, start=APR, end=APR15,
        today=date(2026, 4, 20),
    )  # fmt: skip
    rows = list(
        openpyxl.load_workbook(io.BytesIO(meter_energy_xlsx(energy))).active.iter_rows(
            min_row=2, values_only=True
        )
    )
    assert len(rows) == 15 and rows[-1][1] == float(energy.total)
    assert rows[0][1] == float(energy.points[0].quantity or 0)

    view = efficiency_view(
        organisation_id=place.org.pk, start=APR, end=APR15, floor_id=place.floor.pk,
        today=date(2026, 4, 20),
    )  # fmt: skip
    book = openpyxl.load_workbook(io.BytesIO(efficiency_xlsx(view)))
    assert book.sheetnames == [
        "Load curve", "Heat map", "Composition", "Ranking", "Anomalies", "Peak shaving",
    ]  # fmt: skip
    curve = list(book["Load curve"].iter_rows(min_row=2, values_only=True))
    assert len(curve) == 14 * 24 and curve[0][0] == datetime(2026, 4, 1, 0, 0)
    saved = [r[6] for r in book["Peak shaving"].iter_rows(min_row=2, values_only=True)]
    assert saved == [s.saved_minor / 100 for s in view.suggestions]
