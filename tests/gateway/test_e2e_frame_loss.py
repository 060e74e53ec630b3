"""End to end under 20% frame loss: virtual meters → DTU → gateway → readings → intervals, and
relay commands that still reach the meter and converge to the reported state.

Runs on SQLite and (``DATABASE_URL=postgres://…``) on PostgreSQL. Short request timeouts, one
request resend and no command back-off keep it at a few seconds.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async

from meterpay.apps.control.models import MeterCommand, MeterSupplyState
from meterpay.apps.control.services import meter_command_request
from meterpay.apps.meters import services as meters
from meterpay.apps.readings.models import Interval, RegisterRead
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
from tests.gateway.test_process import until

pytestmark = pytest.mark.django_db(transaction=True)
LOSS = 0.2


class CountedLoss(FaultPlan):
    """The seeded drop plan, counting requests and the ones it dropped."""

    requests = 0
    dropped = 0

    def drops(self) -> bool:
        self.requests += 1
        lost = super().drops()
        self.dropped += lost
        return lost


def test_readings_and_relay_commands_converge_under_20_percent_frame_loss() -> None:
    org = build_org("loss", 800)
    water_gateway = meters.gateway_create(
        actor="t", site=org.site, identifier="DTU-loss-W", kind="dtu_4g", protocol="cjt188"
    )
    water = meters.meter_create(
        actor="t",
        organisation=org.org,
        kind="water",
        protocol="cjt188",
        address="00000000000800",
        gateway=water_gateway,
        room=org.room,
    )
    for meter in (org.meter, org.free_meter, water):  # the clock runs x60: lift the ceiling
        meter_link_set_max_demand(actor="t", meter=meter, max_demand=Decimal(100000))
    clock = ScaledClock(speed=60)
    e1 = VirtualElectricityMeter(org.meter.address, clock)
    e2 = VirtualElectricityMeter(org.free_meter.address, clock)
    w1 = VirtualWaterMeter(water.address, clock)
    for meter in (e1, e2):
        meter.enforce_command_expiry = False
        meter.prepaid = False
    electricity_faults = CountedLoss(drop_rate=LOSS, seed=20260501)
    water_faults = CountedLoss(drop_rate=LOSS, seed=20260502)

    async def scenario() -> None:
        port = DbPort(
            intervals=PollIntervals(electricity=0.3, water=0.3),
            backoff_base=timedelta(0),
            batch_size=20,
            batch_delay=0.02,
        )
        server = DtuServer(port, listen_port=0, request_timeout=0.1, request_retries=2)
        listen = await server.start()
        process = GatewayProcess(server, port, ProcessOptions(tick=0.05, plan_refresh=60))
        dtus = [
            VirtualDtu(
                org.gateway.identifier,
                VirtualBus([Dlt645Responder(e1), Dlt645Responder(e2)]),
                "127.0.0.1",
                listen,
                faults=electricity_faults,
                reconnect_delay=0.1,
            ),
            VirtualDtu(
                "DTU-loss-W",
                VirtualBus([Cjt188Responder(w1)]),
                "127.0.0.1",
                listen,
                faults=water_faults,
                reconnect_delay=0.1,
            ),
        ]
        tasks = [asyncio.create_task(process.run()), *(asyncio.create_task(d.run()) for d in dtus)]
        try:
            await until(
                lambda: all(
                    RegisterRead.objects.filter(meter_id=m).count() >= 3
                    for m in (org.meter.pk, org.free_meter.pk, water.pk)
                ),
                "3 reads of each meter",
            )
            await until(
                lambda: all(
                    Interval.objects.filter(meter_id=m, booked=True).exists()
                    for m in (org.meter.pk, org.free_meter.pk, water.pk)
                ),
                "booked intervals for each meter",
            )
            for kind, target, relay_closed in (
                ("relay_trip", "off", False),
                ("relay_close", "on", True),
            ):
                command = await sync_to_async(meter_command_request)(
                    actor=org.users["operator"],
                    meter=org.meter,
                    kind=kind,
                    reason="test",
                    requested_by="operator",
                )
                await until(
                    lambda c=command: MeterCommand.objects.get(pk=c.pk).status == "confirmed",
                    f"{kind} confirmed",
                )
                assert e1.relay_closed is relay_closed
                await until(
                    lambda t=target: MeterSupplyState.objects.filter(
                        meter=org.meter, reported=t, desired=t
                    ).exists(),
                    f"reported supply {target}",
                )
            valve = await sync_to_async(meter_command_request)(
                actor="t", meter=water, kind="valve_close", requested_by="batch_task"
            )
            await until(
                lambda: MeterCommand.objects.get(pk=valve.pk).status == "confirmed",
                "valve closed",
            )
            assert not w1.valve_open
        finally:
            process.stop()
            for dtu in dtus:
                dtu.stop()
            await server.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await port.close()
        # frames really were lost, and the losses did not corrupt the register history
        requests = electricity_faults.requests + water_faults.requests
        dropped = electricity_faults.dropped + water_faults.dropped
        assert requests > 50 and 0.1 < dropped / requests < 0.3
        assert electricity_faults.dropped and water_faults.dropped
        assert port.stats["stored"] >= 9 and port.stats["batches"] >= 1

    asyncio.run(scenario())
    assert not Interval.objects.filter(register_delta__lt=0).exists()
    assert not Interval.objects.filter(status__in=["negative", "spike"]).exists()
