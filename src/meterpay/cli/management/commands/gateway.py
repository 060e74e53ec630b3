"""``meterpay gateway``: the long-running process that talks to meters.

DTUs and serial servers (TCP-client mode) connect to ``--port`` (``GATEWAY_PORT``, 9000);
serial servers in TCP-server mode (gateways with a host and port) are dialled; MQTT
gateways are reached through the broker (``MQTT_HOST``/``MQTT_PORT``; ``--no-mqtt``).
Meters are polled every ``--poll-electricity`` / ``--poll-water`` seconds, pending commands
are sent and confirmed, gateways and meters are marked online/offline.

A new relay/valve command leaves at once: on PostgreSQL the gateway LISTENs for the NOTIFY
written with the command; on SQLite it polls the newest command id every ``--command-poll``
seconds. ``--tick`` is how often the outbox is read anyway (retries, a missed wake-up).
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from meterpay.gateway.command_wakeups import WAKEUP_CHOICES
from meterpay.gateway.main import GatewayConfig, run_gateway


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


class Command(BaseCommand):
    help = "Run the meter gateway: DTU server, polling, remote control, MQTT."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("GATEWAY_HOST", "0.0.0.0"))  # noqa: S104
        parser.add_argument("--port", type=int, default=int(os.environ.get("GATEWAY_PORT", "9000")))
        parser.add_argument(
            "--poll-electricity",
            type=float,
            default=_env_float("GATEWAY_POLL_ELECTRICITY", 900),
            help="seconds between polls of an electricity meter (900)",
        )
        parser.add_argument(
            "--poll-water",
            type=float,
            default=_env_float("GATEWAY_POLL_WATER", 3600),
            help="seconds between polls of a water meter (3600)",
        )
        parser.add_argument(
            "--offline-after", type=int, default=3, help="missed polls before offline (3)"
        )
        parser.add_argument(
            "--request-timeout", type=float, default=3.0, help="seconds to wait for a reply (3)"
        )
        parser.add_argument(
            "--request-retries",
            type=int,
            default=1,
            help="times a request without a reply is sent again (1)",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=500,
            help="polled readings stored per database write, at most (500)",
        )
        parser.add_argument(
            "--lanes",
            type=int,
            default=2,
            help="PostgreSQL: batches of readings stored at once, each on a connection of its"
            " own (2; SQLite always 1)",
        )
        parser.add_argument(
            "--batch-delay",
            type=float,
            default=0.05,
            help="seconds a polled reading may wait for others to share its write (0.05)",
        )
        parser.add_argument("--heartbeat-timeout", type=float, default=180.0)
        parser.add_argument(
            "--backoff", type=float, default=15.0, help="first retry delay in seconds (15)"
        )
        parser.add_argument(
            "--command-wakeup",
            choices=WAKEUP_CHOICES,
            default=os.environ.get("GATEWAY_COMMAND_WAKEUP", "auto"),
            help="how a new command wakes the gateway: auto (listen on PostgreSQL, poll on "
            "SQLite), listen (LISTEN/NOTIFY), poll, off (only the tick)",
        )
        parser.add_argument(
            "--command-poll",
            type=float,
            default=0.2,
            help="seconds between checks for new commands with --command-wakeup poll (0.2)",
        )
        parser.add_argument(
            "--tick",
            type=float,
            default=1.0,
            help="seconds between reads of the command outbox without a wake-up (1)",
        )
        parser.add_argument("--mqtt-host", default=os.environ.get("MQTT_HOST", "127.0.0.1"))
        parser.add_argument(
            "--mqtt-port", type=int, default=int(os.environ.get("MQTT_PORT", "1883"))
        )
        parser.add_argument(
            "--no-mqtt", action="store_true", help="do not connect to an MQTT broker"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["request_retries"] < 0:
            raise CommandError("--request-retries must be 0 or more")
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be 1 or more")
        if options["lanes"] < 1:
            raise CommandError("--lanes must be 1 or more")
        if options["batch_delay"] < 0:
            raise CommandError("--batch-delay must be 0 or more")
        logging.getLogger("meterpay").setLevel(logging.INFO)
        config = GatewayConfig(
            host=options["host"],
            port=options["port"],
            poll_electricity=options["poll_electricity"],
            poll_water=options["poll_water"],
            offline_after=options["offline_after"],
            request_timeout=options["request_timeout"],
            request_retries=options["request_retries"],
            batch_size=options["batch_size"],
            lanes=options["lanes"],
            batch_delay=options["batch_delay"],
            heartbeat_timeout=options["heartbeat_timeout"],
            backoff_base=options["backoff"],
            tick=options["tick"],
            command_wakeup=options["command_wakeup"],
            command_poll=options["command_poll"],
            mqtt_host=None if options["no_mqtt"] else options["mqtt_host"],
            mqtt_port=options["mqtt_port"],
        )
        asyncio.run(run_gateway(config))
