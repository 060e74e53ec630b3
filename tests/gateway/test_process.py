"""The gateway process end to end: real DtuServer + DbPort, virtual DTUs over TCP, a real database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from meterpay.apps.audit.models import AuditEvent
from meterpay.apps.control.models import MeterCommand, MeterSupplyState
from meterpay.apps.control.services import meter_command_request
from meterpay.apps.meters import services as meters
from meterpay.apps.readings.models import GatewayLink, Interval, MeterLink, RegisterRead
from meterpay.apps.readings.services import meter_link_set_max_demand
from meterpay.gateway.db_port import DbPort, PollIntervals
from meterpay.gateway.dtu import DtuServer
from meterpay.gateway.process import GatewayProcess, ProcessOptions
from meterpay.simulate.bus import FaultPlan, VirtualBus
from meterpay.simulate.clock import ScaledClock
from meterpay.simulate.meters import (
    Cjt188Responder,
    Dlt645Responder,
    VirtualElectricityMeter,
    VirtualWaterMeter,
)
from meterpay.simulate.servers import VirtualDtu
from tests.factories import build_org

pytestmark = pytest.mark.django_db(transaction=True)
WAIT = 20.0  # an upper bound for conditions, never a sleep that a result depends on


async def until(condition: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    check = sync_to_async(condition, thread_sensitive=True)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def setup_site() -> dict[str, Any]:
    org = build_org("gwp", 700)
    water_gateway = meters.gateway_create(
        actor="t", site=org.site, identifier="DTU-gwp-W", kind="dtu_4g", protocol="cjt188"
    )
    water = meters.meter_create(
        actor="t",
        organisation=org.org,
        kind="water",
        protocol="cjt188",
        address="00000000000700",
        gateway=water_gateway,
        room=org.room,
    )
    absent_gateway = meters.gateway_create(
        actor="t", site=org.site, identifier="DTU-gwp-X", kind="dtu_4g", protocol="dlt645"
    )
    absent = meters.meter_create(
        actor="t",
        organisation=org.org,
        kind="electricity_1p",
        protocol="dlt645",
        address="000000000799",
        gateway=absent_gateway,
    )
    for meter in (org.meter, org.free_meter, water):  # the clock runs x600: lift the spike ceiling
        meter_link_set_max_demand(actor="t", meter=meter, max_demand=Decimal(100000))
    return {"org": org, "water": water, "absent": absent}


def test_polls_readings_and_carries_out_commands_with_confirmation() -> None:
    site = setup_site()
    org = site["org"]
    clock = ScaledClock(speed=600)
    e1 = VirtualElectricityMeter(org.meter.address, clock)
    e2 = VirtualElectricityMeter(org.free_meter.address, clock)
    w1 = VirtualWaterMeter(site["water"].address, clock)
    for meter in (e1, e2):
        meter.enforce_command_expiry = False
    electricity_faults = FaultPlan()

    async def scenario() -> None:
        port = DbPort(
            intervals=PollIntervals(electricity=0.3, water=0.3), backoff_base=timedelta(0)
        )
        server = DtuServer(port, listen_port=0, request_timeout=0.5)
        listen = await server.start()
        process = GatewayProcess(server, port, ProcessOptions(tick=0.05, plan_refresh=60))
        dtus = [
            VirtualDtu(
                org.gateway.identifier,
                VirtualBus([Dlt645Responder(e1), Dlt645Responder(e2)]),
                "127.0.0.1",
                listen,
                faults=electricity_faults,
                reconnect_delay=0.2,
            ),
            VirtualDtu(
                "DTU-gwp-W",
                VirtualBus([Cjt188Responder(w1)]),
                "127.0.0.1",
                listen,
                reconnect_delay=0.2,
            ),
        ]
        tasks = [asyncio.create_task(process.run()), *(asyncio.create_task(d.run()) for d in dtus)]
        try:
            # readings flow into the database and intervals follow
            await until(
                lambda: all(
                    RegisterRead.objects.filter(meter_id=m).count() >= 3
                    for m in (org.meter.pk, org.free_meter.pk, site["water"].pk)
                ),
                "3 reads each",
            )
            await until(
                lambda: Interval.objects.filter(meter=org.meter, booked=True).exists(),
                "an interval",
            )
            await until(
                lambda: GatewayLink.objects.filter(gateway=org.gateway, online=True).exists(),
                "online",
            )

            # a trip, acknowledged and confirmed by the status read
            trip = await sync_to_async(meter_command_request)(
                actor=org.users["operator"],
                meter=org.meter,
                kind="relay_trip",
                reason="arrears",
                requested_by="operator",
            )
            await until(
                lambda: MeterCommand.objects.get(pk=trip.pk).status == "confirmed", "trip confirmed"
            )
            assert not e1.relay_closed
            trip_row = await sync_to_async(MeterCommand.objects.get)(pk=trip.pk)
            assert trip_row.attempts == 1 and trip_row.acknowledged_at is not None
            supply = await sync_to_async(MeterSupplyState.objects.get)(meter=org.meter)
            assert (supply.desired, supply.reported) == ("off", "off")

            # the acknowledgement is lost: the status read confirms, and the command is not sent twice
            electricity_faults.lose_ack_next = 1
            lost = await sync_to_async(meter_command_request)(
                actor="balance rule",
                meter=org.free_meter,
                kind="relay_trip",
                requested_by="balance_rule",
            )
            await until(
                lambda: MeterCommand.objects.get(pk=lost.pk).status == "confirmed",
                "lost ack confirmed",
            )
            lost_row = await sync_to_async(MeterCommand.objects.get)(pk=lost.pk)
            assert lost_row.attempts == 1 and lost_row.acknowledged_at is None
            assert not e2.relay_closed

            # water valve
            close = await sync_to_async(meter_command_request)(
                actor="batch", meter=site["water"], kind="valve_close", requested_by="batch_task"
            )
            await until(
                lambda: MeterCommand.objects.get(pk=close.pk).status == "confirmed", "valve closed"
            )
            assert not w1.valve_open

            # a meter whose gateway never connects goes offline after three missed polls
            await until(
                lambda: MeterLink.objects.filter(meter=site["absent"], online=False).exists(),
                "offline",
            )

            # the DTU goes away: its gateway turns offline
            dtus[1].stop()
            await server.sessions["DTU-gwp-W"].close("test")
            await until(
                lambda: GatewayLink.objects.filter(
                    gateway__identifier="DTU-gwp-W", online=False
                ).exists(),
                "gateway offline",
            )
        finally:
            process.stop()
            for dtu in dtus:
                dtu.stop()
            await server.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await port.close()

    asyncio.run(scenario())
    assert AuditEvent.objects.filter(action="meter_command.confirmed").count() == 3
    assert AuditEvent.objects.filter(
        action="meter.offline", object_id=str(site["absent"].pk)
    ).exists()
    assert not Interval.objects.filter(register_delta__lt=0).exists()
