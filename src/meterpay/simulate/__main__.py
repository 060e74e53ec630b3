"""Technicians' simulator: ``python -m meterpay.simulate serial-server|dtu ...``.

Examples::

    # three DL/T 645 meters behind a serial server on port 8899, time x60
    python -m meterpay.simulate serial-server --protocol dlt645 --port 8899 \\
        --meters 000000000001,000000000002,000000000003 --speed 60 --profile shop

    # a DTU with two water meters connecting out to the platform
    python -m meterpay.simulate dtu --protocol cjt188 --connect 127.0.0.1:9000 \\
        --dtu-id DTU-0001 --meters 00000000000001,00000000000002 --heartbeat 30
"""

from __future__ import annotations

import argparse
import asyncio

from meterpay.protocols import cjt188
from meterpay.simulate.bus import FaultPlan, VirtualBus
from meterpay.simulate.clock import ScaledClock
from meterpay.simulate.meters import (
    Cjt188Responder,
    Dlt645Responder,
    ModbusResponder,
    VirtualElectricityMeter,
    VirtualWaterMeter,
)
from meterpay.simulate.profiles import PROFILES, WATER_HOUSEHOLD
from meterpay.simulate.servers import VirtualDtu, VirtualSerialServer


def build_bus(args: argparse.Namespace) -> VirtualBus:
    clock = ScaledClock(speed=args.speed)
    addresses = [a.strip() for a in args.meters.split(",") if a.strip()]
    if args.protocol == "cjt188":
        order = cjt188.DiOrder(args.di_order)
        water = [
            VirtualWaterMeter(cjt188.normalise_address(a), clock, WATER_HOUSEHOLD, order)
            for a in addresses
        ]
        return VirtualBus([Cjt188Responder(m) for m in water])
    profile = PROFILES[args.profile]
    meters = []
    for index, address in enumerate(addresses, start=1):
        unit = int(address) if args.protocol == "modbus" else index
        dlt_address = address.rjust(12, "0")
        meter = VirtualElectricityMeter(dlt_address, clock, unit, args.model, profile)
        meter.enforce_command_expiry = args.speed == 1.0
        meters.append(meter)
    if args.protocol == "modbus":
        return VirtualBus([ModbusResponder(m) for m in meters])
    return VirtualBus([Dlt645Responder(m) for m in meters])


def faults(args: argparse.Namespace) -> FaultPlan:
    return FaultPlan(
        drop_rate=args.drop_rate,
        lose_ack_rate=args.lose_ack_rate,
        corrupt_rate=args.corrupt_rate,
        split_rate=args.split_rate,
        delay=args.delay,
        seed=args.seed,
    )


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m meterpay.simulate")
    modes = root.add_subparsers(dest="mode", required=True)
    for name in ("serial-server", "dtu"):
        mode = modes.add_parser(name)
        mode.add_argument("--protocol", choices=["dlt645", "modbus", "cjt188"], required=True)
        mode.add_argument("--meters", required=True, help="comma-separated addresses / unit ids")
        mode.add_argument("--model", default="DDSY1352", choices=["DDSY1352", "DTSY1352"])
        mode.add_argument("--profile", default="office", choices=sorted(PROFILES))
        mode.add_argument("--di-order", default="as-written", choices=["as-written", "swapped"])
        mode.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second")
        mode.add_argument("--drop-rate", type=float, default=0.0)
        mode.add_argument("--lose-ack-rate", type=float, default=0.0)
        mode.add_argument("--corrupt-rate", type=float, default=0.0)
        mode.add_argument("--split-rate", type=float, default=0.0)
        mode.add_argument("--delay", type=float, default=0.0)
        mode.add_argument("--seed", type=int)
        if name == "serial-server":
            mode.add_argument("--host", default="127.0.0.1")
            mode.add_argument("--port", type=int, default=8899)
        else:
            mode.add_argument("--connect", required=True, help="platform host:port")
            mode.add_argument("--dtu-id", required=True)
            mode.add_argument("--heartbeat", type=float, default=60.0)
    return root


async def main(args: argparse.Namespace) -> None:
    bus = build_bus(args)
    if args.mode == "serial-server":
        server = VirtualSerialServer(bus, faults=faults(args), host=args.host, port=args.port)
        port = await server.start()
        print(f"virtual serial server ({args.protocol}) on {args.host}:{port}", flush=True)
        await server.serve_forever()
    else:
        host, _, port_text = args.connect.rpartition(":")
        dtu = VirtualDtu(
            args.dtu_id,
            bus,
            host,
            int(port_text),
            heartbeat_interval=args.heartbeat,
            faults=faults(args),
            reconnect_delay=5.0,
        )
        print(f"virtual DTU {args.dtu_id} connecting to {args.connect}", flush=True)
        await dtu.run()


if __name__ == "__main__":
    asyncio.run(main(parser().parse_args()))
