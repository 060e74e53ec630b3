"""``meterpay meter``: read a meter and switch its relay or valve during commissioning.

    meterpay meter read  --protocol dlt645 --host 10.0.0.5 --port 8899 --address 000012345678 --json
    meterpay meter relay trip  --protocol modbus --host H --port P --address 3
    meterpay meter valve close --protocol cjt188 --host H --port P --address 00000000000001

The host is a serial server in transparent TCP-server mode. Failures (unreachable,
timeout, wrong address, damaged reply, refused command) print one line on stderr and
exit with status 2. The logic lives in :mod:`meterpay.gateway.commissioning`.
"""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from meterpay.gateway.commissioning import Endpoint, format_reading, read_meter, run_command
from meterpay.gateway.errors import GatewayError
from meterpay.gateway.meters import MeterSpec
from meterpay.gateway.readings import Command as MeterCommand
from meterpay.gateway.readings import MeterProtocol
from meterpay.protocols.cjt188 import DiOrder

COMMANDS = {
    ("relay", "trip"): MeterCommand.RELAY_TRIP,
    ("relay", "close"): MeterCommand.RELAY_CLOSE,
    ("valve", "open"): MeterCommand.VALVE_OPEN,
    ("valve", "close"): MeterCommand.VALVE_CLOSE,
}


def _add_connection_options(parser: ArgumentParser) -> None:
    parser.add_argument("--protocol", required=True, choices=[p.value for p in MeterProtocol])
    parser.add_argument("--host", required=True, help="serial server host")
    parser.add_argument("--port", required=True, type=int, help="serial server TCP port")
    parser.add_argument(
        "--address", required=True, help="meter address (DL/T 645, CJ/T 188) or Modbus unit id"
    )
    parser.add_argument("--unit", type=int, help="Modbus unit id, if it differs from --address")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds per request")
    parser.add_argument(
        "--model", default="DDSY1352", help="Modbus register map: DDSY1352|DTSY1352"
    )
    parser.add_argument(
        "--di-order", default=DiOrder.AS_WRITTEN.value, choices=[o.value for o in DiOrder]
    )
    parser.add_argument("--password", default="02000000", help="DL/T 645 level + password")
    parser.add_argument("--operator-code", default="00000000", help="DL/T 645 operator code")


class Command(BaseCommand):
    help = "Read a meter, trip/close its relay or open/close its valve over a serial server."

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        _add_connection_options(actions.add_parser("read", help="print the meter's readings"))
        relay = actions.add_parser("relay", help="trip or close an electricity meter's relay")
        relay.add_argument("operation", choices=["trip", "close"])
        _add_connection_options(relay)
        valve = actions.add_parser("valve", help="open or close a water meter's valve")
        valve.add_argument("operation", choices=["open", "close"])
        _add_connection_options(valve)

    def handle(self, *args: Any, **options: Any) -> None:
        protocol = MeterProtocol(options["protocol"])
        address = options["address"]
        if protocol is MeterProtocol.MODBUS and options["unit"] is not None:
            address = str(options["unit"])
        spec = MeterSpec(
            protocol=protocol,
            address=address,
            model=options["model"],
            di_order=DiOrder(options["di_order"]),
            password=options["password"],
            operator_code=options["operator_code"],
        )
        endpoint = Endpoint(options["host"], options["port"], options["timeout"])
        try:
            if options["action"] == "read":
                reading = read_meter(endpoint, spec)
                text = json.dumps(reading.to_json()) if options["json"] else format_reading(reading)
            else:
                command = COMMANDS[(options["action"], options["operation"])]
                state = run_command(endpoint, spec, command)
                device = options["action"]
                if options["json"]:
                    text = json.dumps({"address": address, device: state})
                else:
                    text = f"{device} {state}"
        except GatewayError as exc:
            self.stderr.write(f"error: {exc}")
            raise SystemExit(2) from None
        self.stdout.write(text)
