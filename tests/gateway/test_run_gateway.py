"""`meterpay gateway`'s wiring (run_gateway): DTUs in, polling, storage, a clean stop on a signal."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import socket
from decimal import Decimal

import pytest

from meterpay.apps.readings.models import GatewayLink, Interval, RegisterRead
from meterpay.apps.readings.services import meter_link_set_max_demand
from meterpay.gateway.main import GatewayConfig, run_gateway
from meterpay.simulate.bus import VirtualBus
from meterpay.simulate.clock import ScaledClock
from meterpay.simulate.meters import Dlt645Responder, VirtualElectricityMeter
from meterpay.simulate.servers import VirtualDtu
from tests.factories import build_org
from tests.gateway.test_process import until

pytestmark = pytest.mark.django_db(transaction=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_gateway_polls_stores_settles_the_collector_and_stops_on_sigterm() -> None:
    org = build_org("rgw", 900)
    meter_link_set_max_demand(actor="t", meter=org.meter, max_demand=Decimal(100000))
    virtual = VirtualElectricityMeter(org.meter.address, ScaledClock(speed=600))
    config = GatewayConfig(
        host="127.0.0.1",
        port=free_port(),
        poll_electricity=0.3,
        poll_water=0.3,
        request_timeout=0.5,
        tick=0.05,
        mqtt_host=None,
    )
    threshold = gc.get_threshold()

    async def scenario() -> None:
        gateway = asyncio.create_task(run_gateway(config))
        dtu = VirtualDtu(
            org.gateway.identifier,
            VirtualBus([Dlt645Responder(virtual)]),
            "127.0.0.1",
            config.port,
            reconnect_delay=0.1,
        )
        connected = asyncio.create_task(dtu.run())
        try:
            await until(
                lambda: RegisterRead.objects.filter(meter=org.meter).count() >= 3, "3 reads"
            )
            await until(
                lambda: Interval.objects.filter(meter=org.meter, booked=True).exists(),
                "an interval",
            )
            # once started, the collector is settled: start-up objects frozen, room for a batch
            assert gc.get_threshold()[0] == 50_000 and gc.get_freeze_count() > 0
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # ours to send
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.wait_for(gateway, 10)  # stops, stores what waits, closes
        finally:
            for task in (connected, gateway):
                task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(connected, gateway, return_exceptions=True)

    try:
        asyncio.run(scenario())
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
    link = GatewayLink.objects.get(gateway=org.gateway)
    assert link.online is False  # the DTU's link went down with the gateway
