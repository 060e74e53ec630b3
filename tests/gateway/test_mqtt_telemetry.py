"""Telemetry messages: one reading or a batch; malformed readings are logged and skipped."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aiomqtt
import pytest

from meterpay.gateway.mqtt import (
    MAX_BATCH,
    MqttAdapter,
    reading_to_json,
    readings_from_json,
    topic,
)
from meterpay.gateway.readings import (
    ElectricityReading,
    EnergyRegisters,
    MeterProtocol,
    MeterReading,
    WaterReading,
)

AT = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def electricity(address: str, total: str) -> dict[str, Any]:
    reading = ElectricityReading(
        MeterProtocol.DLT645,
        address,
        EnergyRegisters(Decimal(total), None, None, None, None),
        read_at=AT,
    )
    return reading_to_json(reading)


def water(address: str, volume: str) -> dict[str, Any]:
    return reading_to_json(
        WaterReading(MeterProtocol.CJT188, address, Decimal(volume), "open", read_at=AT)
    )


def test_a_batch_parses_every_reading_in_order() -> None:
    data = {"readings": [electricity("000000000001", "12.34"), water("00000000000002", "5.60")]}
    readings, errors = readings_from_json(data)
    assert errors == []
    assert [r.address for r in readings] == ["000000000001", "00000000000002"]
    first, second = readings
    assert isinstance(first, ElectricityReading) and first.energy_kwh.total == Decimal("12.34")
    assert isinstance(second, WaterReading) and second.volume_m3 == Decimal("5.60")
    assert first.read_at == AT


def test_malformed_readings_are_named_and_the_good_ones_kept() -> None:
    naive = electricity("000000000004", "1")
    naive["read_at"] = "2026-05-01T08:00:00"
    data = {
        "readings": [
            electricity("000000000001", "1.00"),
            {"energy_kwh": {"total": "2"}},  # no address
            "not a reading",
            {"address": "000000000003", "energy_kwh": {"total": "lots"}},
            naive,
            water("00000000000005", "7.5"),
            {"address": "000000000006", "protocol": "smoke-signals"},
        ]
    }
    readings, errors = readings_from_json(data)
    assert [r.address for r in readings] == ["000000000001", "00000000000005"]
    assert errors[0] == "reading 1: address is missing"
    assert errors[1] == "reading 2: not an object"
    assert errors[2].startswith("reading 3: not a number")
    assert errors[3] == "reading 4: read_at needs a time zone"
    assert errors[4].startswith("reading 6: ")
    assert len(errors) == 5


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"readings": "many"}, '"readings" must be a list'),
        ({"readings": None}, '"readings" must be a list'),
        ({"readings": [{}] * (MAX_BATCH + 1)}, f"at most {MAX_BATCH}"),
    ],
)
def test_a_message_that_is_no_batch_is_refused_whole(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        readings_from_json(data)


class RecordingStore:
    """The adapter's store, recording what it is handed (no database)."""

    def __init__(self) -> None:
        self.single: list[MeterReading] = []
        self.batches: list[list[MeterReading]] = []

    async def mqtt_gateways(self) -> dict[str, str]:
        return {"GW-1": "acme"}

    async def reading_pushed(self, gateway: str, reading: MeterReading) -> int | None:
        self.single.append(reading)
        return 1

    async def readings_pushed(self, gateway: str, readings: Sequence[MeterReading]) -> None:
        self.batches.append(list(readings))


def message(leaf: str, payload: Any, org: str = "acme") -> aiomqtt.Message:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return aiomqtt.Message(
        topic(org, "GW-1", leaf), body, qos=1, retain=False, mid=1, properties=None
    )


def handle(*messages: aiomqtt.Message) -> RecordingStore:
    store = RecordingStore()
    adapter = MqttAdapter(store)  # type: ignore[arg-type]

    async def run() -> None:
        for item in messages:
            await adapter._handle(item)

    asyncio.run(run())
    return store


def test_the_adapter_hands_a_batch_to_the_store_in_one_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    batch = {
        "readings": [
            electricity("000000000001", "1.00"),
            {"address": "000000000002", "energy_kwh": {"total": "x"}},
            electricity("000000000003", "3.00"),
        ]
    }
    with caplog.at_level(logging.WARNING, logger="meterpay.gateway.mqtt"):
        store = handle(message("telemetry", batch))
    assert [[r.address for r in b] for b in store.batches] == [["000000000001", "000000000003"]]
    assert store.single == []
    assert "GW-1: skipping reading 1: not a number: 'x'" in caplog.text


def test_the_one_reading_form_still_works_and_nonsense_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="meterpay.gateway.mqtt"):
        store = handle(
            message("telemetry", electricity("000000000001", "1.00")),
            message("telemetry", b"{not json"),
            message("telemetry", [1, 2, 3]),
            message("telemetry", {"readings": {"address": "1"}}),
            message("telemetry", {"energy_kwh": {"total": "1"}}),
            message("telemetry", {"readings": [electricity("000000000009", "9")]}, org="evil"),
        )
    assert [r.address for r in store.single] == ["000000000001"]
    assert store.batches == []
    assert "not JSON" in caplog.text
    assert "not a JSON object" in caplog.text
    assert '"readings" must be a list' in caplog.text
    assert "address is missing" in caplog.text
    assert "GW-1 is not a gateway of evil" in caplog.text


def test_a_batch_of_only_bad_readings_reaches_the_store_not_at_all(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad = [{"address": str(i), "volume_m3": "?"} for i in range(15)]
    with caplog.at_level(logging.WARNING, logger="meterpay.gateway.mqtt"):
        store = handle(message("telemetry", {"readings": bad}))
    assert store.batches == []
    assert "5 more readings skipped" in caplog.text
