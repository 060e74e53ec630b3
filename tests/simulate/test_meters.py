"""Virtual meter state: TOU accumulation, relay/valve effects, prepaid, clocks, profiles."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from decimal import Decimal

from meterpay.protocols import dlt645, modbus_rtu
from meterpay.simulate.clock import ManualClock, ScaledClock
from meterpay.simulate.meters import Dlt645Responder, ModbusResponder, VirtualElectricityMeter
from meterpay.simulate.profiles import DEFAULT_TOU, DORM_ROOM, OFFICE, PROFILES, SHOP, Tariff
from tests.simulate.factories import DLT_ADDRESS, START, electricity_meter, water_meter


def test_tou_schedule_books_energy_to_the_tariff_in_force() -> None:
    assert DEFAULT_TOU.tariff_at(datetime(2026, 3, 2, 3, 0)) is Tariff.VALLEY
    assert DEFAULT_TOU.tariff_at(datetime(2026, 3, 2, 10, 30)) is Tariff.PEAK
    assert DEFAULT_TOU.tariff_at(datetime(2026, 3, 2, 19, 59)) is Tariff.SHARP
    assert DEFAULT_TOU.tariff_at(datetime(2026, 3, 2, 23, 30)) is Tariff.VALLEY

    clock = ManualClock(datetime(2026, 3, 2, 8, 0))
    meter = electricity_meter(clock, profile=OFFICE, prepaid=False)
    clock.advance(timedelta(hours=4))  # 08-10 flat, 10-12 peak at 9 kW
    meter.advance()
    assert meter.tariff_energy[Tariff.FLAT] == Decimal("18.0")
    assert meter.tariff_energy[Tariff.PEAK] == Decimal("18.0")
    assert meter.tariff_energy[Tariff.SHARP] == meter.tariff_energy[Tariff.VALLEY] == 0
    assert meter.energy_registers() == [Decimal("36.00"), 0, Decimal("18.00"), Decimal("18.00"), 0]


def test_tripped_relay_stops_consumption() -> None:
    clock = ManualClock(START)
    meter = electricity_meter(clock)
    clock.advance(timedelta(hours=1))
    meter.trip()
    before = meter.energy_total
    clock.advance(timedelta(hours=5))
    meter.advance()
    assert meter.energy_total == before
    assert meter.power_kw() == 0 and meter.current_a() == 0
    meter.close()
    clock.advance(timedelta(hours=1))
    meter.advance()
    assert meter.energy_total > before


def test_prepaid_meter_trips_itself_when_credit_runs_out() -> None:
    clock = ManualClock(START)
    meter = electricity_meter(clock, remaining_money=Decimal("5.00"), price_per_kwh=Decimal("1.00"))
    clock.advance(timedelta(hours=3))  # 9 kW office load burns 5 yuan within the hour
    meter.advance()
    assert meter.remaining_money == 0 and not meter.relay_closed
    meter.top_up(Decimal("50.00"))
    assert meter.purchase_count == 2 and meter.remaining_money == Decimal("50.00")


def test_close_permitted_waits_for_the_button() -> None:
    meter = electricity_meter()
    meter.trip()
    responder = Dlt645Responder(meter)
    request = dlt645.relay_control_request(
        DLT_ADDRESS,
        dlt645.RelayAction.CLOSE_PERMITTED,
        password=meter.password,
        operator_code="00000000",
        expires_at=START + timedelta(minutes=5),
    )
    assert responder.handle(request) == dlt645.relay_control_reply(DLT_ADDRESS)
    assert not meter.relay_closed
    meter.press_button()
    assert meter.relay_closed


def test_expired_relay_command_is_refused() -> None:
    meter = electricity_meter()
    request = dlt645.relay_control_request(
        DLT_ADDRESS,
        dlt645.RelayAction.TRIP,
        password=meter.password,
        operator_code="00000000",
        expires_at=START - timedelta(seconds=1),
    )
    reply = Dlt645Responder(meter).handle(request)
    assert reply is not None and reply.is_error and meter.relay_closed


def test_single_phase_meter_has_no_phase_b() -> None:
    reply = Dlt645Responder(electricity_meter()).handle(
        dlt645.read_request(DLT_ADDRESS, dlt645.VOLTAGE_B)
    )
    assert reply == dlt645.error_reply(DLT_ADDRESS, dlt645.Function.READ, dlt645.ERROR_NO_DATA)
    three = Dlt645Responder(electricity_meter(model="DTSY1352"))
    reply = three.handle(dlt645.read_request(DLT_ADDRESS, dlt645.VOLTAGE_BLOCK))
    assert reply is not None
    assert dlt645.parse_read_reply(reply, dlt645.VOLTAGE_BLOCK) == (Decimal("229.8"),) * 3


def test_meter_ignores_other_addresses_and_answers_the_wildcard() -> None:
    responder = Dlt645Responder(electricity_meter())
    assert responder.handle(dlt645.read_request("000000000001", dlt645.TOTAL_ENERGY)) is None
    reply = responder.handle(dlt645.read_request(dlt645.WILDCARD_ADDRESS, dlt645.TOTAL_ENERGY))
    assert reply is not None and reply.address == DLT_ADDRESS


def test_modbus_exceptions_for_bad_addresses_and_values() -> None:
    responder = ModbusResponder(electricity_meter())
    reply = responder.handle(modbus_rtu.read_registers_request(3, 0x0100, 2))
    assert reply is not None and reply.is_exception and reply.pdu.exception_code == 2
    reply = responder.handle(modbus_rtu.write_register_request(3, 0x0041, 0x1234))
    assert reply is not None and reply.pdu.exception_code == 3
    assert responder.handle(modbus_rtu.read_registers_request(9, 0, 2)) is None


def test_closed_valve_stops_water() -> None:
    clock = ManualClock(START)
    meter = water_meter(clock)
    clock.advance(timedelta(hours=10))
    meter.advance()
    used = meter.volume
    assert used > 0
    meter.set_valve(False)
    clock.advance(timedelta(hours=10))
    meter.advance()
    assert meter.volume == used


def test_scaled_clock_runs_faster_than_real_time() -> None:
    clock = ScaledClock(START, speed=3600)  # one simulated hour per real second
    time.sleep(0.05)
    elapsed = clock.now() - START
    assert timedelta(minutes=2) < elapsed < timedelta(minutes=30)


def test_profiles_have_plausible_shapes() -> None:
    weekday_noon, night = datetime(2026, 3, 4, 12, 30), datetime(2026, 3, 4, 3, 0)
    assert SHOP.demand(weekday_noon) > SHOP.demand(night)
    assert OFFICE.demand(datetime(2026, 3, 7, 10, 0)) < OFFICE.demand(datetime(2026, 3, 4, 10, 0))
    assert DORM_ROOM.demand(datetime(2026, 3, 4, 20, 0)) > DORM_ROOM.demand(
        datetime(2026, 3, 4, 14, 0)
    )
    assert set(PROFILES) == {"shop", "dorm_room", "office", "public_area", "water_household"}


def test_a_purchase_closes_a_prepaid_meter_that_tripped_for_want_of_credit() -> None:
    clock = ManualClock(datetime(2026, 3, 2, 9, 0))
    meter = VirtualElectricityMeter("000000000001", clock, profile=SHOP)
    meter.remaining_money, meter.purchase_count = Decimal("0.01"), 0
    clock.advance(timedelta(hours=1))
    meter.advance()
    assert not meter.relay_closed and meter.tripped_for_credit
    assert meter.credit(dlt645.CreditOperation.PURCHASE, Decimal("20.00"), 1)
    assert meter.relay_closed
    meter.trip()  # tripped by command: a purchase does not close it
    assert meter.credit(dlt645.CreditOperation.PURCHASE, Decimal("5.00"), 2)
    assert not meter.relay_closed
