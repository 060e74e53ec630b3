"""MQTT end to end against the real Mosquitto: telemetry in, commands out, acks, last will."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import timedelta
from decimal import Decimal

import aiomqtt
import pytest
from asgiref.sync import sync_to_async

from meterpay.apps.control.models import MeterCommand
from meterpay.apps.control.services import meter_command_request
from meterpay.apps.meters import services as meters
from meterpay.apps.readings.models import GatewayLink, Interval, RegisterRead
from meterpay.apps.readings.services import meter_link_set_max_demand
from meterpay.gateway.db_port import DbPort, PollIntervals
from meterpay.gateway.dtu import DtuServer
from meterpay.gateway.mqtt import MqttAdapter, topic
from meterpay.gateway.process import GatewayProcess, ProcessOptions
from meterpay.simulate.bus import FaultPlan
from meterpay.simulate.clock import ScaledClock
from meterpay.simulate.meters import VirtualElectricityMeter
from meterpay.simulate.mqtt import VirtualMqttGateway
from tests.conftest import require_server
from tests.factories import build_org
from tests.gateway.test_process import until

pytestmark = [pytest.mark.needs_mqtt, pytest.mark.django_db(transaction=True)]
BROKER = ("127.0.0.1", 1883)


def test_mqtt_gateway_end_to_end() -> None:
    require_server("Mosquitto", *BROKER)
    suffix = uuid.uuid4().hex[:8]  # retained status messages must not leak between runs
    org = build_org(f"mq{suffix}", 900)
    gateway = meters.gateway_create(
        actor="t", site=org.site, identifier=f"MQTT-{suffix}", kind="mqtt", protocol="dlt645"
    )
    first = meters.meter_create(
        actor="t",
        organisation=org.org,
        kind="electricity_3p",
        protocol="dlt645",
        address="000000000911",
        gateway=gateway,
        room=org.vacant_room,
    )
    second = meters.meter_create(
        actor="t",
        organisation=org.org,
        kind="electricity_3p",
        protocol="dlt645",
        address="000000000912",
        gateway=gateway,
    )
    for meter in (first, second):
        meter_link_set_max_demand(actor="t", meter=meter, max_demand=Decimal(100000))
    clock = ScaledClock(speed=300)
    virtual = {m.address: VirtualElectricityMeter(m.address, clock) for m in (first, second)}
    faults = FaultPlan()

    async def scenario() -> None:
        port = DbPort(intervals=PollIntervals(0.3, 0.3), backoff_base=timedelta(0))
        server = DtuServer(port, listen_port=0)
        await server.start()
        adapter = MqttAdapter(
            port,
            *BROKER,
            identifier=f"meterpay-test-{suffix}",
            reply_timeout=1.0,
            reconnect_delay=0.2,
        )
        process = GatewayProcess(server, port, ProcessOptions(tick=0.05), sinks=[adapter])
        device = VirtualMqttGateway(
            org.org.slug,
            gateway.identifier,
            virtual,
            host=BROKER[0],
            port=BROKER[1],
            faults=faults,
            reconnect_delay=0.2,
        )
        tasks = [asyncio.create_task(process.run()), asyncio.create_task(adapter.run())]
        await asyncio.wait_for(adapter.connected.wait(), 10)
        tasks.append(asyncio.create_task(device.run()))
        try:
            await until(
                lambda: GatewayLink.objects.filter(gateway=gateway, online=True).exists(),
                "status online",
            )
            await until(
                lambda: RegisterRead.objects.filter(meter=first, source="push").count() >= 2,
                "telemetry",
            )

            trip = await sync_to_async(meter_command_request)(
                actor=org.users["operator"], meter=first, kind="relay_trip", requested_by="operator"
            )
            await until(
                lambda: MeterCommand.objects.get(pk=trip.pk).status == "confirmed", "trip confirmed"
            )
            assert not virtual[first.address].relay_closed

            faults.lose_ack_next = 1
            lost = await sync_to_async(meter_command_request)(
                actor="rule", meter=second, kind="relay_trip", requested_by="balance_rule"
            )
            await until(
                lambda: MeterCommand.objects.get(pk=lost.pk).status == "confirmed",
                "lost ack confirmed",
            )
            row = await sync_to_async(MeterCommand.objects.get)(pk=lost.pk)
            assert row.attempts == 1 and row.acknowledged_at is None
            assert len(device.done) == 2  # each command id carried out once

            # another organisation's topic for this gateway is ignored
            count = await sync_to_async(RegisterRead.objects.filter(meter=second).count)()
            async with aiomqtt.Client(*BROKER, identifier=f"intruder-{suffix}") as intruder:
                payload = {
                    "address": second.address,
                    "read_at": "2020-01-01T00:00:00+00:00",
                    "energy_kwh": {"total": "1.00"},
                }
                await intruder.publish(
                    topic("someone-else", gateway.identifier, "telemetry"),
                    json.dumps(payload),
                    qos=1,
                )
            await asyncio.sleep(
                0.3
            )  # give a wrongly accepted message the chance to land (it must not)
            assert not await sync_to_async(
                RegisterRead.objects.filter(meter=second, read_at__year=2020).exists
            )()
            assert await sync_to_async(RegisterRead.objects.filter(meter=second).count)() >= count

            device.stop()
            await until(
                lambda: GatewayLink.objects.filter(gateway=gateway, online=False).exists(),
                "status offline",
            )
        finally:
            device.stop()
            process.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await server.stop()
            await port.close()

    asyncio.run(scenario())


def test_batched_telemetry_is_stored_through_the_batching_store(
    caplog: pytest.LogCaptureFixture,
) -> None:
    require_server("Mosquitto", *BROKER)
    suffix = uuid.uuid4().hex[:8]
    org = build_org(f"mb{suffix}", 950)
    gateway = meters.gateway_create(
        actor="t", site=org.site, identifier=f"MQTTB-{suffix}", kind="mqtt", protocol="dlt645"
    )
    fleet = [
        meters.meter_create(
            actor="t",
            organisation=org.org,
            kind="electricity_3p",
            protocol="dlt645",
            address=f"{960 + n:012d}",
            gateway=gateway,
        )
        for n in range(3)
    ]
    for meter in fleet:
        meter_link_set_max_demand(actor="t", meter=meter, max_demand=Decimal(100000))
    clock = ScaledClock(speed=300)
    virtual = {m.address: VirtualElectricityMeter(m.address, clock) for m in fleet}

    async def scenario() -> None:
        port = DbPort(batch_size=4, batch_delay=0.05)
        adapter = MqttAdapter(
            port, *BROKER, identifier=f"meterpay-test-{suffix}", reconnect_delay=0.2
        )
        device = VirtualMqttGateway(
            org.org.slug,
            gateway.identifier,
            virtual,
            host=BROKER[0],
            port=BROKER[1],
            telemetry_every=0.2,
            telemetry_batch=2,  # 3 meters: messages of 2 and 1 readings
            reconnect_delay=0.2,
        )
        tasks = [asyncio.create_task(adapter.run())]
        await asyncio.wait_for(adapter.connected.wait(), 10)
        tasks.append(asyncio.create_task(device.run()))
        try:
            for meter in fleet:
                await until(
                    lambda meter=meter: (
                        RegisterRead.objects.filter(meter=meter, source="push").count() >= 3
                    ),
                    f"batched telemetry of {meter.address}",
                )
            assert await sync_to_async(
                Interval.objects.filter(meter__in=fleet, booked=True).exists
            )()
            # a batch with a malformed reading: the good one is stored, the bad one logged
            good = {
                "address": fleet[0].address,
                "read_at": "2026-01-01T00:00:00+00:00",
                "energy_kwh": {"total": "1.00"},
            }
            bad = {"address": fleet[1].address, "energy_kwh": {"total": "many"}}
            async with aiomqtt.Client(*BROKER, identifier=f"sender-{suffix}") as sender:
                await sender.publish(
                    topic(org.org.slug, gateway.identifier, "telemetry"),
                    json.dumps({"readings": [bad, good]}),
                    qos=1,
                )
            await until(
                lambda: RegisterRead.objects.filter(
                    meter=fleet[0], read_at__year=2026, read_at__month=1, read_at__day=1
                ).exists(),
                "the good reading of a batch with a bad one",
            )
            assert "skipping reading 0: not a number: 'many'" in caplog.text
        finally:
            device.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await port.close()
        assert device.published >= 9

    with caplog.at_level(logging.WARNING, logger="meterpay.gateway.mqtt"):
        asyncio.run(scenario())
