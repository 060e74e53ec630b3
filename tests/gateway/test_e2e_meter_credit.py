"""End to end: a meter-side recharge reaches a simulated DL/T 645 meter behind a virtual DTU.

The first purchase's reply is lost, so the gateway's retry repeats the frame: the meter answers
it without applying it twice, and the purchase count read confirms the download. The mirror
follows the meter; an energy refund takes the money back to the wallet; a purchase made at the
meter itself is flagged as a discrepancy. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async

from meterpay.apps.control.models import BalanceDiscrepancy, MeterBalance, MeterCommand
from meterpay.apps.customers.models import Account
from meterpay.apps.ledger.models import JournalEntry, Wallet
from meterpay.apps.payments.meter_credit import energy_refund_request, on_meter_minor
from meterpay.apps.payments.services import recharge_record
from meterpay.gateway.db_port import DbPort, PollIntervals
from meterpay.gateway.dtu import DtuServer
from meterpay.gateway.process import GatewayProcess, ProcessOptions
from meterpay.simulate.bus import FaultPlan, VirtualBus
from meterpay.simulate.clock import ScaledClock
from meterpay.simulate.meters import Dlt645Responder, VirtualElectricityMeter
from meterpay.simulate.servers import VirtualDtu
from tests.factories import build_org
from tests.gateway.test_process import until

pytestmark = pytest.mark.django_db(transaction=True)


def test_meter_side_recharge_reaches_the_meter_once_and_the_mirror_follows() -> None:
    org = build_org("mside", 900)
    Account.objects.filter(pk=org.account.pk).update(billing_side=Account.BillingSide.METER)
    account = Account.objects.get(pk=org.account.pk)
    meter = VirtualElectricityMeter(
        org.meter.address,
        ScaledClock(speed=1),
        remaining_money=Decimal(0),  # a new meter: all its money comes from the platform
        purchase_count=3,
        price_per_kwh=Decimal(0),  # the money on the meter stays put: exact comparisons
    )
    faults = FaultPlan(lose_ack_next=1)  # the first purchase acts, its reply is lost

    def balance() -> MeterBalance | None:
        return MeterBalance.objects.filter(meter=org.meter).first()

    def wallet_minor() -> int:
        return Wallet.objects.get(account=account).balance_minor

    async def scenario() -> None:
        port = DbPort(
            intervals=PollIntervals(electricity=0.3, water=60),
            backoff_base=timedelta(0),
            batch_delay=0.02,
        )
        server = DtuServer(port, listen_port=0, request_timeout=0.15, request_retries=1)
        listen = await server.start()
        process = GatewayProcess(server, port, ProcessOptions(tick=0.05, plan_refresh=60))
        dtu = VirtualDtu(
            org.gateway.identifier,
            VirtualBus([Dlt645Responder(meter)]),
            "127.0.0.1",
            listen,
            faults=faults,
            reconnect_delay=0.1,
        )
        tasks = [asyncio.create_task(process.run()), asyncio.create_task(dtu.run())]
        try:
            await until(lambda: (b := balance()) and b.purchase_count == 3, "the meter mirrored")
            recharge = lambda key, amount: recharge_record(  # noqa: E731
                actor=org.users["finance"],
                account=account,
                amount=amount,
                channel="cash",
                idempotency_key=key,
            )
            await sync_to_async(recharge)("r-1", "50.00")
            download = await sync_to_async(MeterCommand.objects.get)(kind="credit_download")
            await until(
                lambda: MeterCommand.objects.get(pk=download.pk).status == "confirmed",
                "the download confirmed",
            )
            assert faults.lose_ack_next == 0  # the reply really was lost
            assert meter.remaining_money == Decimal("50.00") and meter.purchase_count == 4
            # a replayed recharge neither credits nor downloads again
            await sync_to_async(recharge)("r-1", "50.00")
            await sync_to_async(recharge)("r-2", "20.00")
            await until(
                lambda: (
                    not MeterCommand.objects.filter(
                        kind="credit_download", status__in=MeterCommand.OPEN_STATUSES
                    ).exists()
                ),
                "the second download finished",
            )
            assert meter.remaining_money == Decimal("70.00") and meter.purchase_count == 5
            await until(
                lambda: (b := balance()) and b.remaining_minor == 7000 and b.purchase_count == 5,
                "the mirror matches the meter",
            )
            refund = await sync_to_async(energy_refund_request)(
                actor=org.users["finance"], account=account, idempotency_key="move-out"
            )
            await until(
                lambda: MeterCommand.objects.get(pk=refund.pk).status == "confirmed",
                "the energy refund confirmed",
            )
            assert meter.remaining_money == 0 and meter.purchase_count == 6
            assert not await sync_to_async(BalanceDiscrepancy.objects.exists)()  # none so far
            meter.top_up(Decimal("5.00"))  # bought at the meter itself: not the platform's
            await until(
                lambda: BalanceDiscrepancy.objects.filter(
                    meter=org.meter, kind="purchase_count", cleared_at__isnull=True
                ).exists(),
                "the local purchase flagged",
            )
        finally:
            process.stop()
            dtu.stop()
            await server.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await port.close()

    asyncio.run(scenario())
    downloads = MeterCommand.objects.filter(kind="credit_download").order_by("id")
    assert [(c.purchase_number, c.confirmed_amount_minor) for c in downloads] == [
        (4, 5000),
        (5, 2000),
    ]
    assert MeterCommand.objects.get(kind="credit_refund").confirmed_amount_minor == 7000
    # the money went wallet -> meter -> wallet -> refunds payable; nothing left anywhere
    assert wallet_minor() == 0
    assert on_meter_minor(account) == 0
    refund_entry = JournalEntry.objects.get(account=account, kind="refund")
    assert refund_entry.wallet_amount == -7000
    # the local purchase moved the count and put money on the meter the platform never sent
    assert set(BalanceDiscrepancy.objects.values_list("kind", flat=True)) == {
        "purchase_count",
        "above_credited",
    }
