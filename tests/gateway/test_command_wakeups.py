"""A command leaves the gateway as soon as its transaction commits, not at the next outbox read.

The safety-net tick is 60 s in these tests, far beyond their timeouts: a command that goes out
went out because the wake-up (LISTEN/NOTIFY on PostgreSQL, the short poll on SQLite) woke the
dispatcher. The order of events (wake-up, then claim) is asserted, not a duration.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from asgiref.sync import sync_to_async
from django.db import connection, connections, transaction

from meterpay.apps.control.models import MeterCommand
from meterpay.apps.control.services import COMMANDS_CHANNEL, meter_command_request
from meterpay.gateway.command_wakeups import (
    CommandListener,
    CommandPoll,
    _listen_params,
    command_wakeups,
)
from meterpay.simulate.bus import VirtualBus
from meterpay.simulate.clock import ScaledClock
from meterpay.simulate.meters import Dlt645Responder, VirtualElectricityMeter
from meterpay.simulate.servers import VirtualDtu
from tests.factories import build_org
from tests.gateway.test_e2e_prepaid import running_gateway
from tests.gateway.test_process import until

pytestmark = pytest.mark.django_db(transaction=True)


def request_closing(**kwargs: Any) -> MeterCommand:
    """Request a command, then close this thread's connection (it may be another thread's)."""
    try:
        return meter_command_request(**kwargs)
    finally:
        if on_postgresql():
            connections.close_all()


def on_postgresql() -> bool:
    return connection.vendor == "postgresql"


def test_the_notify_is_delivered_with_the_commit_and_dropped_with_a_rollback() -> None:
    if not on_postgresql():
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    org = build_org("wake-notify", 900)
    with psycopg.connect(**_listen_params(), autocommit=True) as listener:
        listener.execute(f"LISTEN {COMMANDS_CHANNEL}")
        with pytest.raises(RuntimeError), transaction.atomic():
            meter_command_request(
                actor="t", meter=org.meter, kind="relay_trip", requested_by="operator"
            )
            raise RuntimeError("rolled back")
        committed = meter_command_request(
            actor="t", meter=org.meter, kind="relay_close", requested_by="operator"
        )
        received = list(listener.notifies(timeout=5.0, stop_after=1))
        assert [(n.channel, n.payload) for n in received] == [
            (COMMANDS_CHANNEL, str(committed.command_id))
        ]
        assert list(listener.notifies(timeout=0.2)) == []  # the rolled-back one never came


def test_wakeup_choices() -> None:
    assert command_wakeups("off") is None
    expected = CommandListener if on_postgresql() else CommandPoll
    assert isinstance(command_wakeups("auto"), expected)
    assert isinstance(command_wakeups("poll", poll_every=0.5), CommandPoll)
    with pytest.raises(ValueError, match="unknown command wake-up"):
        command_wakeups("sometimes")
    with pytest.raises(ValueError, match="positive"):
        CommandPoll(every=0)
    if not on_postgresql():
        with pytest.raises(ValueError, match="needs PostgreSQL"):
            command_wakeups("listen")


@pytest.mark.parametrize("wakeup", ["listen", "poll"])
def test_a_command_committed_elsewhere_goes_out_without_waiting_for_the_tick(wakeup: str) -> None:
    if wakeup == "listen" and not on_postgresql():
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    org = build_org(f"wake-{wakeup}", 910)
    clock = ScaledClock()
    meter = VirtualElectricityMeter(org.meter.address, clock)
    meter.prepaid = False
    dtu = VirtualDtu(org.gateway.identifier, VirtualBus([Dlt645Responder(meter)]), "127.0.0.1", 0)
    events: list[str] = []
    # another connection than the gateway's where the database allows concurrent writers
    request = sync_to_async(request_closing, thread_sensitive=not on_postgresql())

    async def scenario() -> None:
        async with running_gateway([dtu], tick=60.0, wakeup=wakeup, events=events) as process:
            claim = process.store.claim

            async def recording_claim(command_id: Any) -> int | None:
                events.append("claim")
                return await claim(command_id)

            process.store.claim = recording_claim  # type: ignore[method-assign]
            await until(lambda: org.gateway.identifier in process.workers, "the DTU's worker")
            events.clear()  # the wake-up at start (commands written while nobody listened)
            command = await request(
                actor="t", meter=org.meter, kind="relay_trip", requested_by="operator"
            )
            await until(
                lambda: MeterCommand.objects.get(pk=command.pk).status == "confirmed",
                "the command confirmed",
            )
        assert not meter.relay_closed

    asyncio.run(scenario())
    assert events[0] == "wake" and "claim" in events, events


def test_a_command_goes_on_the_wire_while_the_one_before_is_still_being_confirmed() -> None:
    """Two meters behind one DTU: the second trip is sent while recording the first trip's
    acknowledgement is held up; both are confirmed once it is released."""
    org = build_org("wake-pipeline", 920)
    clock = ScaledClock()
    first = VirtualElectricityMeter(org.meter.address, clock)
    second = VirtualElectricityMeter(org.free_meter.address, clock)
    for meter in (first, second):
        meter.prepaid = False
    bus = VirtualBus([Dlt645Responder(first), Dlt645Responder(second)])
    dtu = VirtualDtu(org.gateway.identifier, bus, "127.0.0.1", 0)

    async def scenario() -> None:
        async with running_gateway([dtu], tick=60.0) as process:
            held = asyncio.Event()
            release = asyncio.Event()
            port: Any = process.store  # the DbPort: the store and the DTU sessions' port
            record_result = port.command_result

            async def held_up(dtu_id: str, result: Any) -> None:
                if not held.is_set():
                    held.set()
                    await release.wait()
                await record_result(dtu_id, result)

            port.command_result = held_up
            await until(lambda: org.gateway.identifier in process.workers, "the DTU's worker")
            commands = [
                await sync_to_async(meter_command_request)(
                    actor="t", meter=meter, kind="relay_trip", requested_by="operator"
                )
                for meter in (org.meter, org.free_meter)
            ]
            await asyncio.wait_for(held.wait(), 20)
            await until(lambda: not second.relay_closed, "the second trip on the wire")
            assert held.is_set() and not release.is_set()  # the first is still unconfirmed
            release.set()
            await until(
                lambda: all(
                    MeterCommand.objects.get(pk=c.pk).status == "confirmed" for c in commands
                ),
                "both confirmed",
            )
        assert not first.relay_closed and not second.relay_closed

    asyncio.run(scenario())
