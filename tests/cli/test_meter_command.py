"""``meterpay meter`` against a virtual serial server on an ephemeral port."""

from __future__ import annotations

import io
import json
import socket
from datetime import timedelta

import pytest
from django.core.management import call_command

from meterpay.simulate.bus import FaultPlan
from meterpay.simulate.clock import ManualClock
from meterpay.simulate.servers import serve_in_thread
from tests.simulate.factories import (
    DLT_ADDRESS,
    START,
    WATER_ADDRESS,
    bus_for,
    electricity_meter,
    water_meter,
)

ELECTRIC_ADDRESS = {"dlt645": DLT_ADDRESS, "modbus": "3"}


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("meter", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def run_failing(*args: str) -> str:
    err = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("meter", *args, stdout=io.StringIO(), stderr=err)
    assert exited.value.code == 2
    return err.getvalue()


def options(protocol: str, port: int, address: str) -> list[str]:
    return [
        "--protocol",
        protocol,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--address",
        address,
        "--timeout",
        "1",
    ]


@pytest.mark.parametrize("protocol", ["dlt645", "modbus"])
def test_read_json_then_trip_shows_open_then_close(protocol: str) -> None:
    clock = ManualClock(START)
    meter = electricity_meter(clock)
    clock.advance(timedelta(hours=2))  # office hours: consumption accrues on the flat/peak tariffs
    with serve_in_thread(bus_for(protocol, meter)) as port:
        base = options(protocol, port, ELECTRIC_ADDRESS[protocol])
        out, _ = run("read", *base, "--json")
        reading = json.loads(out)
        assert reading["relay"] == "closed"
        assert set(reading["energy_kwh"]) == {"total", "sharp", "peak", "flat", "valley"}
        assert reading["energy_kwh"]["total"] == str(meter.energy_registers()[0])
        assert float(reading["energy_kwh"]["total"]) > 0
        assert reading["voltage_v"] == "229.8"

        out, _ = run("relay", "trip", *base)
        assert out.strip() == "relay open"
        assert meter.relay_closed is False

        reading = json.loads(run("read", *base, "--json")[0])
        assert reading["relay"] == "open"
        assert reading["power_kw"] in ("0.0000", "0.000")

        run("relay", "close", *base)
        assert json.loads(run("read", *base, "--json")[0])["relay"] == "closed"


def test_water_read_and_valve_close() -> None:
    clock = ManualClock(START)
    meter = water_meter(clock)
    clock.advance(timedelta(hours=12))
    with serve_in_thread(bus_for("cjt188", meter)) as port:
        base = options("cjt188", port, WATER_ADDRESS)
        reading = json.loads(run("read", *base, "--json")[0])
        assert reading == {
            "address": WATER_ADDRESS,
            "volume_m3": reading["volume_m3"],
            "valve": "open",
        }
        assert float(reading["volume_m3"]) > 0
        assert run("valve", "close", *base)[0].strip() == "valve closed"
        assert json.loads(run("read", *base, "--json")[0])["valve"] == "closed"


def test_human_readable_output() -> None:
    with serve_in_thread(bus_for("dlt645", electricity_meter())) as port:
        out, _ = run("read", *options("dlt645", port, DLT_ADDRESS))
    assert "energy total" in out and "relay          closed" in out


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_unreachable_host_exits_2() -> None:
    err = run_failing("read", *options("dlt645", free_port(), DLT_ADDRESS))
    assert err.count("\n") == 1 and "cannot connect" in err


def test_wrong_address_times_out_with_exit_2() -> None:
    with serve_in_thread(bus_for("dlt645", electricity_meter())) as port:
        err = run_failing("read", *options("dlt645", port, "000000000099"))
    assert "no reply" in err


def test_checksum_error_exits_2() -> None:
    faults = FaultPlan(corrupt_next=1)
    with serve_in_thread(bus_for("modbus", electricity_meter()), faults) as port:
        err = run_failing("read", *options("modbus", port, "3"))
    assert "checksum" in err


def test_dropped_frame_times_out_with_exit_2() -> None:
    with serve_in_thread(bus_for("cjt188", water_meter()), FaultPlan(drop_next=1)) as port:
        err = run_failing("read", *options("cjt188", port, WATER_ADDRESS))
    assert "no reply" in err
