"""Room monitoring as the operator's cockpit: the grid's tiles, filters, counts and live
refresh (in a constant number of queries), and the room page with its state and every remote
operation, role-checked and isolated by organisation."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from meterpay.apps.billing.deductions import meter_deduct
from meterpay.apps.billing.models import Bill
from meterpay.apps.control.models import MeterCommand
from meterpay.apps.control.services import (
    meter_command_acknowledged,
    meter_command_claim,
    supply_state_reported,
)
from meterpay.apps.customers import services as customers
from meterpay.apps.customers.models import Account
from meterpay.apps.ledger.models import JournalEntry, Wallet
from meterpay.apps.meters import services as meters
from meterpay.apps.meters.models import Meter
from meterpay.apps.notifications.models import Notification
from meterpay.apps.payments.services import recharge_record
from meterpay.apps.readings.models import MeterLink
from meterpay.apps.readings.services import (
    meter_link_poll_failed,
    meter_link_set_max_demand,
    register_read_record,
)
from meterpay.apps.sites import services as sites
from meterpay.apps.supply.models import BalancePolicy
from meterpay.apps.tariffs.models import AccountTariff
from meterpay.apps.tariffs.services import account_tariff_assign, tariff_create
from meterpay.core.money import from_minor
from tests.factories import build_org

pytestmark = pytest.mark.django_db

TOU = {
    "format": "meterpay-tariff/1",
    "id": "cockpit-tou",
    "name": "Cockpit time of use",
    "currency": "CNY",
    "commodity": "electricity",
    "versions": [
        {
            "effective_from": "2024-01-01T00:00:00",
            "energy": {
                "periods": [
                    {"name": "flat", "price": "0.6000"},
                    {"name": "peak", "price": "1.0000"},
                    {"name": "valley", "price": "0.3000"},
                ],
                "schedule": [
                    {
                        "months": "1-12",
                        "windows": [
                            {"start": "00:00", "end": "08:00", "period": "valley"},
                            {"start": "08:00", "end": "12:00", "period": "peak"},
                            {"start": "18:00", "end": "22:00", "period": "peak"},
                        ],
                    }
                ],
            },
        }
    ],
}


def read(meter: Meter, at: Any, total: str, **tou: str) -> None:
    register_read_record(
        meter=meter,
        read_at=at,
        source="poll",
        total=Decimal(total),
        **{k: Decimal(v) for k, v in tou.items()},
    )


@pytest.fixture
def cockpit() -> Any:
    """Org "cockpit": room 101 with an open prepaid account (100.00 in the wallet, a TOU
    tariff), an electricity meter read three times today and a water meter, both online."""
    org = build_org("cockpit", 900)
    BalancePolicy.objects.create(organisation=org.org, alarm_thresholds_minor=[5000, 2000, 500])
    water_gateway = meters.gateway_create(
        actor="t", site=org.site, identifier="DTU-cockpit-w", kind="dtu_4g", protocol="cjt188"
    )
    water = meters.meter_create(
        actor="t",
        organisation=org.org,
        kind="water",
        protocol="cjt188",
        address="00000000000901",
        gateway=water_gateway,
        room=org.room,
    )
    Meter.objects.filter(pk=water.pk).update(account=org.account)
    Account.objects.filter(pk=org.account.pk).update(
        opened_at=timezone.now() - timedelta(days=40),
        move_in_on=timezone.localdate() - timedelta(days=40),
    )
    org.account.refresh_from_db()
    tariff = tariff_create(actor="t", organisation=org.org, document=TOU)
    account_tariff_assign(
        actor="t",
        account=org.account,
        tariff=tariff,
        effective_from=timezone.now() - timedelta(days=40),
    )
    recharge_record(
        actor="t", account=org.account, amount="100.00", channel="cash", idempotency_key="open"
    )
    now = timezone.now()
    start = max(
        timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0),
        now - timedelta(hours=3),
    )
    for meter in (org.meter, water):
        meter_link_set_max_demand(actor="t", meter=meter, max_demand=Decimal(1_000_000))
    read(org.meter, start, "1000.00", sharp="0", peak="400.00", flat="300.00", valley="300.00")
    read(org.meter, start + (now - start) / 2, "1010.00")
    read(org.meter, now - timedelta(seconds=30), "1012.50", peak="405.00")
    read(water, start, "50.000")
    read(water, now - timedelta(seconds=30), "51.250")
    meter_deduct(meter=org.meter)
    org.water = water
    org.tariff = tariff
    return org


def _get(client: Any, user: Any, name: str, **kwargs: Any) -> Any:
    client.force_login(user)
    return client.get(reverse(f"console:{name}", kwargs=kwargs or None))


# --- the grid -------------------------------------------------------------------------------


def test_grid_tiles_show_money_fee_status_link_and_both_utilities(
    client: Any, cockpit: Any
) -> None:
    response = _get(client, cockpit.users["viewer"], "room_grid")
    assert response.status_code == 200
    tiles = {t.number: t for t in response.context["rooms"]}
    tile = tiles["101"]
    assert tile.fee == "normal" and tile.prepaid and tile.balance_minor < 10000
    assert tile.electricity is not None and tile.water is not None
    assert tile.electricity.link == "online" and tile.water.link == "online"
    assert tiles["102"].fee is None and tiles["102"].occupancy == "vacant"
    body = response.content.decode()
    assert 'data-room="101"' in body and 'data-fee="normal"' in body
    assert "util-icon electricity" in body and "util-icon water" in body
    assert 'hx-trigger="every 10s' in body  # the live refresh
    assert 'id="room-legend"' in body


def test_grid_fee_statuses_filters_and_counts(client: Any, cockpit: Any) -> None:
    """Four more rooms: alarm 2, overdrawn, cut off, postpaid in arrears; then filter."""
    org = cockpit
    made: dict[str, Account] = {}
    for number, mode in (
        ("201", "prepaid"),
        ("202", "prepaid"),
        ("203", "prepaid"),
        ("204", "postpaid"),
    ):
        room = sites.room_create(
            actor="t", floor=org.floor, number=number, kind="office", area_m2=Decimal(10)
        )
        made[number] = customers.account_open_new(
            actor="t", customer=org.customer, rooms=[room], billing_mode=mode
        )
    for number, balance, supply in (
        ("201", 1500, "on"),
        ("202", -300, "on"),
        ("203", -100, "cut_manual"),
    ):
        wallet = Wallet.objects.get_or_create(
            account=made[number],
            defaults={"organisation": org.org, "ledger_account_id": _ledger_account(made[number])},
        )[0]
        Wallet.objects.filter(pk=wallet.pk).update(balance_minor=balance, supply=supply)
    Bill.objects.create(
        organisation=org.org,
        number="B-ARREARS",
        account=made["204"],
        status=Bill.Status.ISSUED,
        settles=Bill.Settles.RECEIVABLE,
        period_end=timezone.localdate() - timedelta(days=40),
        total_minor=8000,
        due_minor=8000,
        unpaid_minor=8000,
        due_on=timezone.localdate() - timedelta(days=10),
    )
    client.force_login(org.users["operator"])
    response = client.get(reverse("console:room_grid"))
    tiles = {t.number: t for t in response.context["rooms"]}
    assert tiles["201"].fee == "alarm_2"
    assert tiles["202"].fee == "overdrawn"
    assert tiles["203"].fee == "cut_off" and tiles["203"].supply in ("unknown", "off")
    assert tiles["204"].fee == "arrears" and tiles["204"].owed_minor == 8000
    fee = {chip["value"]: chip["n"] for chip in response.context["chips"]["fee"]}
    assert fee == {
        "cut_off": 1,
        "arrears": 1,
        "overdrawn": 1,
        "alarm_3": 0,
        "alarm_2": 1,
        "alarm_1": 0,
        "meter_low": 0,
        "normal": 1,
    }
    filtered = client.get(
        reverse("console:room_grid"), {"fee": "overdrawn"}, HTTP_HX_REQUEST="true"
    )
    assert [t.number for t in filtered.context["rooms"]] == ["202"]
    text = filtered.content.decode()
    assert "<html" not in text and 'id="room-summary"' in text
    # the counts of the other filters are those of the rooms kept; the fee chips stay faceted
    status = {c["value"]: c["n"] for c in filtered.context["chips"]["status"]}
    assert status["open"] == 1 and status["vacant"] == 0
    assert sum(c["n"] for c in filtered.context["chips"]["fee"]) == 5
    urgent = client.get(reverse("console:room_grid"), {"order": "urgent"})
    assert [t.number for t in urgent.context["rooms"]][:4] == ["203", "204", "202", "201"]
    found = client.get(reverse("console:room_grid"), {"q": "customer COCKPIT", "kind": "office"})
    assert [t.number for t in found.context["rooms"]] == ["201", "202", "203", "204"]
    assert [
        t.number for t in client.get(reverse("console:room_grid"), {"q": "10"}).context["rooms"]
    ] == ["101", "102"]
    offline = client.get(reverse("console:room_grid"), {"link": "offline"})
    assert list(offline.context["rooms"]) == []
    for n in range(3):
        meter_link_poll_failed(meter=org.water, at=timezone.now(), error="timeout")
    offline = client.get(reverse("console:room_grid"), {"link": "offline"})
    [tile] = offline.context["rooms"]
    assert tile.number == "101" and tile.water.link == "offline" and tile.water.since is not None
    assert 'data-link="offline"' in offline.content.decode()


def _ledger_account(account: Account) -> int:
    from meterpay.apps.ledger.services import wallet_for

    return wallet_for(account).ledger_account_id


def _rooms(org: Any, count: int, first: int = 0) -> None:
    """``count`` more rooms, each with an open prepaid account, a wallet and an online meter."""
    from meterpay.apps.readings.services import meter_link_seen

    for n in range(first, first + count):
        room = sites.room_create(
            actor="t", floor=org.floor, number=f"Q{n:03d}", kind="shop", area_m2=Decimal(20)
        )
        meter = meters.meter_create(
            actor="t",
            organisation=org.org,
            kind="electricity_1p",
            protocol="dlt645",
            address=f"{950000 + n:012d}",
            gateway=org.gateway,
            room=room,
        )
        account = customers.account_open_new(
            actor="t", customer=org.customer, rooms=[room], meters=[meter]
        )
        recharge_record(
            actor="t", account=account, amount="30.00", channel="cash", idempotency_key=f"q{n}"
        )
        meter_link_seen(meter=meter, at=timezone.now())


def _grid_queries(client: Any, params: dict[str, str] | None = None) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("console:room_grid"), params or {}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    return len(queries)


def test_grid_answers_with_a_constant_number_of_queries(client: Any) -> None:
    org = build_org("gridq", 930)
    client.force_login(org.users["viewer"])
    _rooms(org, 1)  # 3 rooms
    few = _grid_queries(client)
    few_filtered = _grid_queries(
        client, {"fee": "alarm_2", "link": "online", "site": str(org.site.pk)}
    )
    _rooms(org, 27, first=1)  # 30 rooms
    many = _grid_queries(client)
    many_filtered = _grid_queries(
        client, {"fee": "alarm_2", "link": "online", "site": str(org.site.pk)}
    )
    assert few == many, (few, many)
    assert few_filtered == many_filtered
    assert many <= 12


# --- the room page --------------------------------------------------------------------------


def test_room_page_shows_state_readings_usage_commands_and_alarms(
    client: Any, cockpit: Any
) -> None:
    org = cockpit
    Notification.objects.create(
        organisation=org.org,
        account=org.account,
        kind=Notification.Kind.ALARM,
        level=1,
        subject="Balance low",
        body="x",
        status=Notification.Status.SENT,
    )
    response = _get(client, org.users["owner"], "room_detail", room_id=org.room.pk)
    assert response.status_code == 200
    body = response.content.decode()
    state = response.context["state"]
    assert state.account is not None and state.account.fee == "normal"
    assert [m.utility for m in state.meters] == ["electricity", "water"]
    electricity = state.meters[0]
    assert electricity.latest.total == Decimal("1012.50")
    assert f'data-testid="total-{org.meter.pk}"' in body
    assert "1012.5000 kWh" in body and "51.2500 m³" in body
    assert "not read" in body  # voltage, current, power
    today = response.context["today_usage"]
    assert today.kwh == Decimal("12.5000") and today.m3 == Decimal("1.2500")
    assert today.cost_minor and today.cost_minor > 0
    labels = [line.label for line in today.lines]
    assert labels and all(label.startswith("Electricity, ") for label in labels)
    assert sum(line.amount_minor for line in today.lines) == today.cost_minor
    month = response.context["month_usage"]
    assert month.kwh == Decimal("12.5000") and month.cost_minor == today.cost_minor
    chart = json.loads(
        body.split('id="usage-chart-data" type="application/json">')[1].split("<")[0]
    )
    assert sum(Decimal(v) for v in chart["electricity"]) == Decimal("12.5000")
    assert "Balance low" in body and "Cockpit time of use" in body  # the subject in its title
    for testid in ("money", "meters", "readings", "usage", "commands", "alarms", "operations"):
        assert f'data-testid="{testid}"' in body
    for op in ("recharge", "refund", "set_tariff", "alarm_levels", "settle_close"):
        assert f'data-op="{op}"' in body
    assert 'data-command="relay_trip"' in body and 'data-command="valve_close"' in body


def test_room_page_in_chinese_has_no_english_badge(client: Any, cockpit: Any) -> None:
    client.force_login(cockpit.users["operator"])
    client.cookies["django_language"] = "zh-hans"
    body = client.get(reverse("console:room_detail", args=[cockpit.room.pk])).content.decode()
    assert "房间" in body
    badge = body.split('data-testid="occupancy">')[1].split("<")[0]
    assert badge == "已开户", badge
    assert ">open<" not in body and ">normal<" not in body
    grid = client.get(reverse("console:room_grid")).content.decode()
    assert ">open<" not in grid and "Alarm level" not in grid and "Relay closed" not in grid


def test_vacant_room_page_offers_the_wizard(client: Any, cockpit: Any) -> None:
    body = _get(client, cockpit.users["operator"], "room_detail", room_id=cockpit.vacant_room.pk)
    text = body.content.decode()
    assert body.status_code == 200 and "Open an account for this room" in text
    assert body.context["today_usage"].cost_minor is None


def test_live_state_fragment_and_operations_panel(client: Any, cockpit: Any) -> None:
    state = _get(client, cockpit.users["viewer"], "room_state", room_id=cockpit.room.pk)
    assert state.status_code == 200 and "<html" not in state.content.decode()
    assert 'data-testid="balance"' in state.content.decode()
    panel = _get(client, cockpit.users["viewer"], "room_operations", room_id=cockpit.room.pk)
    assert panel.status_code == 200
    assert "data-op=" not in panel.content.decode()  # a viewer gets no buttons
    assert "makes no change" in panel.content.decode()


# --- operations -----------------------------------------------------------------------------


def _op(client: Any, user: Any, room: Any, data: dict[str, Any], htmx: bool = True) -> Any:
    client.force_login(user)
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    return client.post(reverse("console:room_operations", args=[room.pk]), data, **headers)


def test_recharge_changes_the_balance_and_triggers_a_refresh(client: Any, cockpit: Any) -> None:
    before = Wallet.objects.get(account=cockpit.account).balance_minor
    response = _op(
        client,
        cockpit.users["finance"],
        cockpit.room,
        {"op": "recharge", "amount": "50.00", "channel": "cash", "idempotency_key": "k1"},
    )
    assert response.status_code == 200 and response["HX-Trigger"] == "room-changed"
    assert 'data-ok="1"' in response.content.decode()
    assert Wallet.objects.get(account=cockpit.account).balance_minor == before + 5000
    again = _op(
        client,
        cockpit.users["finance"],
        cockpit.room,
        {"op": "recharge", "amount": "50.00", "channel": "cash", "idempotency_key": "k1"},
    )
    assert again.status_code == 200
    assert Wallet.objects.get(account=cockpit.account).balance_minor == before + 5000  # once
    refund = _op(
        client,
        cockpit.users["finance"],
        cockpit.room,
        {"op": "refund", "amount": "20.00", "channel": "cash", "idempotency_key": "r1"},
    )
    assert 'data-ok="1"' in refund.content.decode()
    assert Wallet.objects.get(account=cockpit.account).balance_minor == before + 3000
    live = _get(client, cockpit.users["finance"], "room_state", room_id=cockpit.room.pk)
    shown = live.content.decode().split('data-testid="balance">')[1].split("<")[0]
    assert shown == str(from_minor(before + 3000))


def test_switch_command_is_queued_and_its_status_polled_until_final(
    client: Any, cockpit: Any
) -> None:
    response = _op(
        client,
        cockpit.users["operator"],
        cockpit.room,
        {"op": "switch", "meter": cockpit.meter.pk, "kind": "relay_trip", "reason": "test"},
    )
    assert response.status_code == 200
    command = MeterCommand.objects.get(meter=cockpit.meter, kind="relay_trip")
    assert command.requested_by == "operator"
    body = response.content.decode()
    url = reverse("console:room_command", args=[cockpit.room.pk, command.command_id])
    assert f'hx-get="{url}"' in body and 'data-status="pending"' in body
    polled = client.get(url, HTTP_HX_REQUEST="true")
    assert 'hx-trigger="load delay:1s"' in polled.content.decode()
    assert "HX-Trigger" not in polled
    assert meter_command_claim(command_id=command.command_id, worker="t") is not None
    meter_command_acknowledged(command_id=command.command_id, at=timezone.now())
    supply_state_reported(meter=cockpit.meter, reported="off", at=timezone.now())
    final = client.get(url, HTTP_HX_REQUEST="true")
    text = final.content.decode()
    assert 'data-status="confirmed"' in text and "hx-get" not in text
    assert "Done: the meter reports Relay tripped" in text
    assert final["HX-Trigger"] == "room-changed"
    live = _get(client, cockpit.users["operator"], "room_state", room_id=cockpit.room.pk)
    assert f'data-testid="supply-{cockpit.meter.pk}" data-supply="off"' in live.content.decode()
    # a water meter gets a valve, not a relay; a meter of another room is not found
    wrong = _op(
        client,
        cockpit.users["operator"],
        cockpit.room,
        {"op": "switch", "meter": cockpit.water.pk, "kind": "relay_trip"},
    )
    assert 'data-ok="0"' in wrong.content.decode()
    other = _op(
        client,
        cockpit.users["operator"],
        cockpit.room,
        {"op": "switch", "meter": cockpit.free_meter.pk, "kind": "relay_trip"},
    )
    assert other.status_code == 404


def test_tariff_alarm_levels_open_and_settle(client: Any, cockpit: Any) -> None:
    org = cockpit
    owner = org.users["owner"]
    other_tariff = tariff_create(
        actor="t", organisation=org.org, document={**TOU, "id": "b", "name": "Second price"}
    )
    response = _op(client, owner, org.room, {"op": "set_tariff", "tariff": other_tariff.pk})
    assert 'data-ok="1"' in response.content.decode()
    assert AccountTariff.objects.filter(account=org.account, tariff=other_tariff).exists()
    response = _op(
        client,
        owner,
        org.room,
        {"op": "alarm_levels", "alarm_level_1": "80", "alarm_level_2": "30", "alarm_level_3": ""},
    )
    assert 'data-ok="1"' in response.content.decode()
    assert Wallet.objects.get(account=org.account).alarm_thresholds_minor == [8000, 3000]
    bad = _op(
        client,
        owner,
        org.room,
        {"op": "alarm_levels", "alarm_level_1": "10", "alarm_level_2": "30"},
    )
    assert 'data-ok="0"' in bad.content.decode()
    # a pre-set account in the vacant room is opened from the room page
    preset = customers.account_preset(
        actor="t", customer=org.customer, rooms=[org.vacant_room], meters=[org.free_meter]
    )
    response = _op(client, org.users["operator"], org.vacant_room, {"op": "open_account"})
    assert 'data-ok="1"' in response.content.decode()
    preset.refresh_from_db()
    assert preset.status == "open"
    # settle and close: the final bill, the balance to refund, the account closed
    balance = Wallet.objects.get(account=org.account).balance_minor
    response = _op(client, org.users["operator"], org.room, {"op": "settle_close"})
    text = response.content.decode()
    assert 'data-ok="1"' in text, text
    org.account.refresh_from_db()
    assert org.account.status == "closed"
    final = Bill.objects.get(account=org.account, kind=Bill.Kind.FINAL)
    assert final.number in text
    assert Wallet.objects.get(account=org.account).balance_minor == 0
    refund = JournalEntry.objects.filter(account=org.account, kind="refund").get()
    assert -refund.wallet_amount == balance  # recorded as a refund to pay (operator)
    assert "finance pays it out" in text


def test_non_htmx_post_redirects_with_a_message(client: Any, cockpit: Any) -> None:
    response = _op(
        client,
        cockpit.users["finance"],
        cockpit.room,
        {"op": "recharge", "amount": "abc", "idempotency_key": "x"},
        htmx=False,
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("console:room_detail", args=[cockpit.room.pk])


ROLE_OPS = [
    ("recharge", {"amount": "5.00"}, {"owner", "finance"}),
    ("refund", {"amount": "1.00"}, {"owner", "finance"}),
    ("set_tariff", {"tariff": "0"}, {"owner", "finance"}),
    ("alarm_levels", {"alarm_level_1": "50"}, {"owner", "finance"}),
    ("switch", {"kind": "relay_trip"}, {"owner", "operator"}),
    ("open_account", {}, {"owner", "operator"}),
    ("settle_close", {"move_out_on": "not a date"}, {"owner", "operator"}),
]


@pytest.mark.parametrize("op,data,allowed", ROLE_OPS)
def test_operations_are_role_checked_before_their_input(
    client: Any, cockpit: Any, op: str, data: dict[str, str], allowed: set[str]
) -> None:
    """A role without the permission gets 403 whatever it sends; one with it gets an answer."""
    if op == "switch":
        data = {**data, "meter": str(cockpit.meter.pk)}
    for role in ("owner", "operator", "finance", "viewer"):
        before = (
            JournalEntry.objects.count(),
            MeterCommand.objects.count(),
            Account.objects.filter(status="closed").count(),
        )
        response = _op(client, cockpit.users[role], cockpit.room, {"op": op, **data})
        if role in allowed:
            assert response.status_code in (200, 404), (op, role, response.status_code)
        else:
            assert response.status_code == 403, (op, role, response.status_code)
            after = (
                JournalEntry.objects.count(),
                MeterCommand.objects.count(),
                Account.objects.filter(status="closed").count(),
            )
            assert after == before


def test_another_orgs_room_is_404_everywhere(client: Any, cockpit: Any) -> None:
    other = build_org("outsider", 960)
    command = MeterCommand.objects.create(
        organisation=cockpit.org,
        meter=cockpit.meter,
        kind="relay_trip",
        requested_by="operator",
        next_attempt_at=timezone.now(),
    )
    client.force_login(other.users["owner"])
    room = cockpit.room.pk
    for url in (
        reverse("console:room_detail", args=[room]),
        reverse("console:room_state", args=[room]),
        reverse("console:room_operations", args=[room]),
        reverse("console:room_command", args=[room, command.command_id]),
    ):
        assert client.get(url).status_code == 404, url
    before = MeterCommand.objects.count(), JournalEntry.objects.count()
    for data in (
        {"op": "recharge", "amount": "5.00"},
        {"op": "switch", "meter": cockpit.meter.pk, "kind": "relay_trip"},
        {"op": "settle_close"},
    ):
        response = client.post(reverse("console:room_operations", args=[room]), data)
        assert response.status_code == 404
    assert (MeterCommand.objects.count(), JournalEntry.objects.count()) == before
    # a command of another room is not shown through this room
    client.force_login(cockpit.users["owner"])
    url = reverse("console:room_command", args=[cockpit.vacant_room.pk, command.command_id])
    assert client.get(url).status_code == 404
    assert MeterLink.objects.filter(meter=cockpit.meter).exists()
