"""``meterpay simulate``'s fleet: built from the database, talking to the real gateway process."""

from __future__ import annotations

import asyncio
import socket
from decimal import Decimal

import pytest

from meterpay.apps.meters import services as meters
from meterpay.apps.readings.models import RegisterRead
from meterpay.apps.readings.services import meter_link_set_max_demand
from meterpay.gateway.commissioning import Endpoint, read_async
from meterpay.gateway.db_port import DbPort, PollIntervals
from meterpay.gateway.dtu import DtuServer
from meterpay.gateway.errors import GatewayError
from meterpay.gateway.meters import MeterSpec as GatewayMeterSpec
from meterpay.gateway.process import GatewayProcess, ProcessOptions
from meterpay.gateway.readings import MeterProtocol
from meterpay.simulate.clock import ScaledClock
from meterpay.simulate.fleet import build_fleet
from meterpay.simulate.from_db import fleet_specs
from meterpay.simulate.meters import VirtualElectricityMeter, VirtualWaterMeter
from meterpay.simulate.profiles import SHOP, WATER_HOUSEHOLD
from tests.factories import build_org
from tests.gateway.test_process import until


def _org_with_water_and_mqtt() -> object:
    org = build_org("fl", 800)
    water_gateway = meters.gateway_create(
        actor="t", site=org.site, identifier="DTU-fl-W", kind="dtu_4g", protocol="cjt188"
    )
    meters.meter_create(
        actor="t",
        organisation=org.org,
        kind="water",
        protocol="cjt188",
        address="00000000000800",
        gateway=water_gateway,
        room=org.room,
    )
    mqtt = meters.gateway_create(
        actor="t", site=org.site, identifier="MQTT-fl", kind="mqtt", protocol="dlt645"
    )
    meters.meter_create(
        actor="t",
        organisation=org.org,
        kind="electricity_3p",
        protocol="dlt645",
        address="000000000880",
        gateway=mqtt,
        room=org.vacant_room,
    )
    return org


@pytest.mark.django_db
def test_fleet_from_the_database_uses_room_profiles_and_gateway_kinds() -> None:
    _org_with_water_and_mqtt()
    specs = {g.identifier: g for g in fleet_specs("fl")}
    assert set(specs) == {"DTU-fl", "DTU-fl-W", "MQTT-fl"}
    fleet = build_fleet(
        list(specs.values()),
        ScaledClock(speed=60),
        connect=("127.0.0.1", 1),
        mqtt=("127.0.0.1", 1883),
        fast_clock=True,
    )
    assert sorted(d.dtu_id for d in fleet.dtus) == ["DTU-fl", "DTU-fl-W"]
    assert [g.identifier for g in fleet.mqtt] == ["MQTT-fl"] and fleet.mqtt[0].org == "fl"
    shop_meter = fleet.meters[("DTU-fl", f"{800:012d}")]
    assert isinstance(shop_meter, VirtualElectricityMeter)
    assert (
        shop_meter.profile is SHOP
        and not shop_meter.prepaid
        and not shop_meter.enforce_command_expiry
    )
    assert shop_meter.energy_total > 0  # starts from a plausible register value
    water = fleet.meters[("DTU-fl-W", "00000000000800")]
    assert isinstance(water, VirtualWaterMeter) and water.profile is WATER_HOUSEHOLD
    without_mqtt = build_fleet(
        list(specs.values()), ScaledClock(), connect=("127.0.0.1", 1), mqtt=None
    )
    assert without_mqtt.mqtt == [] and "MQTT-fl" in without_mqtt.skipped


@pytest.mark.django_db(transaction=True)
def test_fleet_connects_to_the_gateway_process_and_gets_polled() -> None:
    org = _org_with_water_and_mqtt()
    for meter in org.site.gateways.get(identifier="DTU-fl").meters.all():
        meter_link_set_max_demand(actor="t", meter=meter, max_demand=Decimal(100000))

    specs = fleet_specs("fl", ["DTU-fl", "DTU-fl-W"])

    async def scenario() -> None:
        port = DbPort(intervals=PollIntervals(0.3, 0.3))
        server = DtuServer(port, listen_port=0, request_timeout=0.5)
        listen = await server.start()
        process = GatewayProcess(server, port, ProcessOptions(tick=0.05))
        fleet = build_fleet(
            specs,
            ScaledClock(speed=300),
            connect=("127.0.0.1", listen),
            mqtt=None,
            fast_clock=True,
            reconnect_delay=0.2,
        )
        tasks = [asyncio.create_task(process.run()), asyncio.create_task(fleet.run())]
        try:
            await until(
                lambda: (
                    RegisterRead.objects.filter(
                        meter__gateway__identifier__in=["DTU-fl", "DTU-fl-W"]
                    )
                    .values("meter")
                    .distinct()
                    .count()
                    == 3
                ),
                "every simulated meter read",
            )
        finally:
            fleet.stop()
            process.stop()
            await server.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await port.close()

    asyncio.run(scenario())
    assert RegisterRead.objects.filter(meter__address="000000000800", total__gt=0).exists()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.django_db
def test_a_dialled_serial_server_listens_where_the_platform_dials() -> None:
    org = build_org("fs", 810)
    port = _free_port()
    serial = meters.gateway_create(
        actor="t",
        site=org.site,
        identifier="SER-fs",
        kind="serial_server",
        protocol="dlt645",
        host="127.0.0.1",
        port=port,
    )
    meters.meter_create(
        actor="t",
        organisation=org.org,
        kind="electricity_1p",
        protocol="dlt645",
        address="000000000899",
        gateway=serial,
        room=org.room,
    )
    (spec,) = fleet_specs("fs", ["SER-fs"])
    assert spec.listen == ("127.0.0.1", port)
    fleet = build_fleet([spec], ScaledClock(), connect=("127.0.0.1", 1), mqtt=None)
    assert fleet.dtus == [] and len(fleet.serial_servers) == 1

    async def scenario() -> str:
        running = asyncio.create_task(fleet.run())
        try:
            for _ in range(50):  # until it listens
                try:
                    reading = await read_async(
                        Endpoint("127.0.0.1", port, timeout=1.0),
                        GatewayMeterSpec(MeterProtocol.DLT645, "000000000899"),
                    )
                    return reading.address
                except GatewayError:
                    await asyncio.sleep(0.05)
            raise AssertionError("the virtual serial server never answered")
        finally:
            fleet.stop()
            await asyncio.wait_for(running, 5)

    assert asyncio.run(scenario()) == "000000000899"
