"""Small builders for virtual buses used by gateway, simulate and CLI tests."""

from __future__ import annotations

from datetime import datetime

from meterpay.protocols.cjt188 import DiOrder
from meterpay.simulate.bus import VirtualBus
from meterpay.simulate.clock import ManualClock
from meterpay.simulate.meters import (
    Cjt188Responder,
    Dlt645Responder,
    ModbusResponder,
    VirtualElectricityMeter,
    VirtualWaterMeter,
)

START = datetime(2026, 3, 2, 9, 0, 0)  # a Monday morning
DLT_ADDRESS = "000012345678"
WATER_ADDRESS = "00000000000042"


def electricity_meter(
    clock: ManualClock | None = None, **kwargs: object
) -> VirtualElectricityMeter:
    return VirtualElectricityMeter(DLT_ADDRESS, clock or ManualClock(START), unit_id=3, **kwargs)  # type: ignore[arg-type]


def water_meter(
    clock: ManualClock | None = None, di_order: DiOrder = DiOrder.AS_WRITTEN
) -> VirtualWaterMeter:
    return VirtualWaterMeter(WATER_ADDRESS, clock or ManualClock(START), di_order=di_order)


def bus_for(protocol: str, meter: VirtualElectricityMeter | VirtualWaterMeter) -> VirtualBus:
    if protocol == "cjt188":
        assert isinstance(meter, VirtualWaterMeter)
        return VirtualBus([Cjt188Responder(meter)])
    assert isinstance(meter, VirtualElectricityMeter)
    responder = Dlt645Responder(meter) if protocol == "dlt645" else ModbusResponder(meter)
    return VirtualBus([responder])
