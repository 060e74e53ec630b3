"""``meterpay gateway``: wire the DTU server, the database port, the process and MQTT together."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from dataclasses import dataclass
from datetime import timedelta

from asgiref.sync import sync_to_async
from django.db import close_old_connections

from meterpay.apps.meters.models import Gateway
from meterpay.gateway.command_wakeups import command_wakeups
from meterpay.gateway.db_port import DbPort, PollIntervals
from meterpay.gateway.dialout import Dialler, DialTarget
from meterpay.gateway.dtu import DtuServer
from meterpay.gateway.mqtt import MqttAdapter
from meterpay.gateway.process import GatewayProcess, ProcessOptions

log = logging.getLogger("meterpay.gateway")


@dataclass
class GatewayConfig:
    host: str = "0.0.0.0"  # noqa: S104 - DTUs connect in from the field
    port: int = 9000
    poll_electricity: float = 15 * 60.0
    poll_water: float = 60 * 60.0
    offline_after: int = 3
    request_timeout: float = 3.0
    #: Resends of a request that got no reply (a frame lost on the radio or the bus).
    request_retries: int = 1
    #: Polled readings are stored in batches of up to this many, or after batch_delay seconds.
    batch_size: int = 500
    #: PostgreSQL: batches stored at once, each on a connection of its own.
    lanes: int = 2
    batch_delay: float = 0.05
    heartbeat_timeout: float = 180.0
    backoff_base: float = 15.0
    #: Longest wait between attempts to reach a serial server in TCP-server mode.
    dial_backoff_max: float = 60.0
    #: How often the outbox is read without a wake-up (the safety net).
    tick: float = 1.0
    #: How new commands wake the dispatcher: auto (listen on PostgreSQL, poll on SQLite),
    #: listen, poll (every command_poll seconds) or off (the tick alone).
    command_wakeup: str = "auto"
    command_poll: float = 0.2
    mqtt_host: str | None = "127.0.0.1"
    mqtt_port: int = 1883


def _dial_targets() -> list[DialTarget]:
    close_old_connections()
    dialled = Gateway.objects.filter(kind=Gateway.Kind.SERIAL_SERVER, port__isnull=False)
    rows = dialled.exclude(host="").order_by("identifier")
    return [DialTarget(g, h, p) for g, h, p in rows.values_list("identifier", "host", "port")]


async def load_dial_targets() -> list[DialTarget]:
    """Serial servers in TCP-server mode, from the database (in the ORM's worker thread)."""
    return await sync_to_async(_dial_targets, thread_sensitive=True)()


def collector_settle() -> None:
    """Move everything alive now (Django, the meter plan, the caches) out of the garbage
    collector's sight and let its young generation grow to 50,000 objects.

    A batch of readings makes tens of thousands of objects that live for the batch (rows,
    states, the decoded telemetry); with the collector's defaults it scans them again and
    again mid-batch, and makes full passes over the long-lived ones: together about a third
    of the gateway's throughput (bench/ingest.py). With room for a batch, most of its objects
    are freed by their reference counts before a collection comes. Frozen objects are never
    collected, which is right for what lives as long as the process.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


async def run_gateway(config: GatewayConfig) -> None:
    port = DbPort(
        intervals=PollIntervals(config.poll_electricity, config.poll_water),
        offline_after=config.offline_after,
        backoff_base=timedelta(seconds=config.backoff_base),
        batch_size=config.batch_size,
        lanes=config.lanes,
        batch_delay=config.batch_delay,
    )
    server = DtuServer(
        port,
        host=config.host,
        listen_port=config.port,
        request_timeout=config.request_timeout,
        request_retries=config.request_retries,
        heartbeat_timeout=config.heartbeat_timeout,
    )
    listening = await server.start()
    process = GatewayProcess(
        server,
        port,
        ProcessOptions(tick=config.tick),
        wakeups=command_wakeups(config.command_wakeup, poll_every=config.command_poll),
    )
    dialler = Dialler(
        server,
        load_dial_targets,
        backoff_max=config.dial_backoff_max,
        request_timeout=config.request_timeout,
        request_retries=config.request_retries,
    )
    tasks = []

    async def started() -> None:
        collector_settle()  # Django and the meter plan are loaded: what lives as long as we do
        # dial after the process's startup, which marks every gateway offline first
        tasks.append(asyncio.create_task(dialler.run()))

    if config.mqtt_host:
        adapter = MqttAdapter(
            port, config.mqtt_host, config.mqtt_port, reply_timeout=config.request_timeout * 2
        )
        process.sinks.append(adapter)
        tasks.append(asyncio.create_task(adapter.run()))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, process.stop)
    mqtt = f", MQTT {config.mqtt_host}:{config.mqtt_port}" if config.mqtt_host else ""
    log.info("gateway listening for DTUs on %s:%s%s", config.host, listening, mqtt)
    try:
        await process.run(ready=started)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.stop()
        await port.close()
