"""``meterpay simulate``: virtual DTUs and MQTT gateways for an organisation's gateways and meters.

DTUs connect to the gateway process over TCP (``--connect``, ``127.0.0.1:GATEWAY_PORT``);
MQTT gateways connect to the broker (``--mqtt-host``/``--mqtt-port``; ``--no-mqtt``). Meters
consume by the profile of their room kind (shop, dormitory, office, public area; water), on a
clock ``--speed`` times faster than real time, with optional faults on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from meterpay.simulate.bus import FaultPlan
from meterpay.simulate.clock import ScaledClock
from meterpay.simulate.fleet import build_fleet
from meterpay.simulate.from_db import fleet_specs


class Command(BaseCommand):
    help = "Simulate the meters of an organisation: virtual DTUs and MQTT gateways."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", required=True, help="organisation slug")
        parser.add_argument("--gateway", action="append", help="only this gateway (repeatable)")
        default_connect = f"127.0.0.1:{os.environ.get('GATEWAY_PORT', '9000')}"
        parser.add_argument("--connect", default=default_connect, help="gateway process host:port")
        parser.add_argument("--mqtt-host", default=os.environ.get("MQTT_HOST", "127.0.0.1"))
        parser.add_argument(
            "--mqtt-port", type=int, default=int(os.environ.get("MQTT_PORT", "1883"))
        )
        parser.add_argument("--no-mqtt", action="store_true")
        parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second")
        parser.add_argument("--heartbeat", type=float, default=60.0, help="DTU heartbeat seconds")
        parser.add_argument("--drop-rate", type=float, default=0.0)
        parser.add_argument("--lose-ack-rate", type=float, default=0.0)
        parser.add_argument("--corrupt-rate", type=float, default=0.0)
        parser.add_argument("--split-rate", type=float, default=0.0)
        parser.add_argument("--delay", type=float, default=0.0)
        parser.add_argument("--seed", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        specs = fleet_specs(options["org"], options["gateway"])
        if not specs:
            raise CommandError(f"no gateways found for organisation {options['org']!r}")
        host, _, port = options["connect"].rpartition(":")
        faults = FaultPlan(
            drop_rate=options["drop_rate"],
            lose_ack_rate=options["lose_ack_rate"],
            corrupt_rate=options["corrupt_rate"],
            split_rate=options["split_rate"],
            delay=options["delay"],
            seed=options["seed"],
        )
        fleet = build_fleet(
            specs,
            ScaledClock(speed=options["speed"]),
            connect=(host, int(port)),
            mqtt=None if options["no_mqtt"] else (options["mqtt_host"], options["mqtt_port"]),
            faults=faults,
            heartbeat=options["heartbeat"],
            fast_clock=options["speed"] != 1.0,
        )
        self.stdout.write(
            f"simulating {len(fleet.meters)} meters: "
            f"{len(fleet.dtus)} DTUs -> {options['connect']}, "
            f"{len(fleet.serial_servers)} serial servers listening to be dialled, "
            f"{len(fleet.mqtt)} MQTT gateways, speed x{options['speed']:g}"
        )
        if fleet.skipped:
            self.stdout.write(f"  left out: {', '.join(fleet.skipped)}")

        async def main() -> None:
            loop = asyncio.get_running_loop()
            runner = asyncio.create_task(fleet.run())
            for signum in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(signum, runner.cancel)
            with contextlib.suppress(asyncio.CancelledError):
                await runner

        asyncio.run(main())
