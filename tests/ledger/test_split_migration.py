"""The split of the wallets app, migrated for real: a ledger written before the split is, after
it, the same ledger under the new apps and their own table names.

The database is migrated back to wallets 0005 (everything that depends on the split
unapplied), a small ledger of two organisations is written with the historical models, and the
database is migrated forward again. Then every moved row is there with the same primary key and
the same values, the foreign keys point at the renamed tables, every wallet balance is what it
was, ``meterpay ledger check`` is clean, new money movements still post, and on PostgreSQL the
ledger triggers guard the renamed tables. The database is left at the latest migrations.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.apps import apps as current_apps
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.graph import MigrationGraph

from meterpay.apps.ledger.selectors import ledger_mismatches, unbalanced_entries
from meterpay.core import ledger
from meterpay.core.ledger import Channel, ChargeType
from meterpay.core.money import to_minor

pytestmark = pytest.mark.django_db(transaction=True)

SPLIT = ("wallets", "0006_moved_to_new_apps")
BEFORE_SPLIT = ("wallets", "0005_meter_side_credit")

#: Every model the split moved: its name in the wallets app -> its app and table now.
MOVED = {
    "LedgerAccount": ("ledger", "ledger_ledgeraccount"),
    "JournalEntry": ("ledger", "ledger_journalentry"),
    "Posting": ("ledger", "ledger_posting"),
    "Wallet": ("ledger", "ledger_wallet"),
    "NotificationChannel": ("notifications", "notifications_notificationchannel"),
    "Notification": ("notifications", "notifications_notification"),
    "BalancePolicy": ("supply", "supply_balancepolicy"),
    "Recharge": ("payments", "payments_recharge"),
    "PaymentProviderConfig": ("payments", "payments_paymentproviderconfig"),
    "PaymentNotificationLog": ("payments", "payments_paymentnotificationlog"),
    "StatementImport": ("payments", "payments_statementimport"),
    "StatementLine": ("payments", "payments_statementline"),
    "DeductionState": ("billing", "billing_deductionstate"),
    "PostpaidBill": ("billing", "billing_bill"),
}
#: Models a later migration renamed (billing 0003: the postpaid statements became bills).
RENAMED = {"PostpaidBill": "Bill"}


def later_changes(name: str, row: dict[str, Any]) -> dict[str, Any]:
    """A row as later migrations left it: billing 0003 renamed the statement's amount and took
    "open" for "issued"; the columns it added are checked in tests/billing."""
    if name != "PostpaidBill":
        return row
    row = {("due_minor" if k == "amount_minor" else k): v for k, v in row.items()}
    row["status"] = {"open": "issued"}.get(row["status"], "paid")
    return row


#: Columns that later migrations drop on purpose (supply 0003: the default tariffs moved to the
#: tariffs app, tariffs 0003 carried them over).
DROPPED = {"BalancePolicy": {"default_tariff", "default_water_tariff"}}

WATER_TARIFF = {
    "format": "meterpay-tariff/1",
    "id": "north-water",
    "name": "North water",
    "currency": "CNY",
    "commodity": "water",
    "versions": [{"effective_from": "2024-01-01T00:00:00", "water": {"price": "3.64"}}],
}

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def pre_split_targets(graph: MigrationGraph) -> tuple[list[tuple[str, str]], list[str]]:
    """Each app's newest migration that does not depend on the split, and the apps that have
    none (the apps the split created)."""
    after = set(graph.backwards_plan(SPLIT))
    targets: list[tuple[str, str]] = []
    unapplied: list[str] = []
    for app in sorted({app for app, _ in graph.nodes}):
        kept = {node for node in graph.nodes if node[0] == app and node not in after}
        if not kept:
            unapplied.append(app)
        targets += sorted(
            node
            for node in kept
            if not any(child.key in kept for child in graph.node_map[node].children)
        )
    return targets, unapplied


def pg_triggers(table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal",
            [table],
        )
        return {name for (name,) in cursor.fetchall()}


def pg_functions(prefix: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname = current_schema() AND proname LIKE %s",
            [prefix.replace("_", "\\_") + "%"],
        )
        return {name for (name,) in cursor.fetchall()}


def foreign_keys(table: str) -> dict[str, str]:
    """column -> the table it references, as the database has it."""
    with connection.cursor() as cursor:
        relations = connection.introspection.get_relations(cursor, table)
    return {column: relation[1] for column, relation in relations.items()}


@dataclass
class Book:
    """The ledger written before the split, and what it looked like."""

    apps: Any
    wallets: dict[str, Any] = field(default_factory=dict)
    ledger_accounts: dict[tuple[int, str], Any] = field(default_factory=dict)
    rows: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    balances: dict[int, int] = field(default_factory=dict)

    def model(self, name: str) -> Any:
        return self.apps.get_model("wallets", name)

    def ledger_account(self, org: Any, code: str) -> Any:
        key = (org.pk, code)
        if key not in self.ledger_accounts:
            self.ledger_accounts[key] = self.model("LedgerAccount").objects.create(
                organisation=org, code=code, kind=str(ledger.parse_account(code).kind)
            )
        return self.ledger_accounts[key]

    def post(
        self,
        account: Any,
        entry: ledger.JournalEntry,
        kind: str,
        *,
        channel: str = "",
        reference: str = "",
        reverses: Any = None,
    ) -> Any:
        """Store a built entry the way the posting service did: entry, postings and the
        wallet's cached balance in one transaction (the deferred trigger checks the sum)."""
        wallet_code = ledger.wallet_account(str(account.pk)).code
        wallet_amount = -sum(p.amount for p in entry.postings if p.account == wallet_code)
        with transaction.atomic():
            row = self.model("JournalEntry").objects.create(
                organisation_id=account.organisation_id,
                idempotency_key=entry.idempotency_key,
                occurred_at=entry.occurred_at,
                memo=entry.memo,
                kind=kind,
                channel=channel,
                reference=reference,
                account=account,
                wallet_amount=wallet_amount,
                actor_label="cashier",
                reverses=reverses,
            )
            for posting in entry.postings:
                self.model("Posting").objects.create(
                    organisation_id=account.organisation_id,
                    entry=row,
                    ledger_account=self.ledger_account(account.organisation, posting.account),
                    amount=posting.amount,
                )
            wallet = self.model("Wallet").objects.get(account=account)
            wallet.balance_minor += wallet_amount
            wallet.save(update_fields=["balance_minor"])
        return row

    def balance(self, account: Any) -> int:
        return int(self.model("Wallet").objects.get(account=account).balance_minor)

    def snapshot(self) -> None:
        for name in MOVED:
            self.rows[name] = {row["id"]: row for row in self.model(name).objects.values()}
        self.balances = {row["id"]: row["balance_minor"] for row in self.rows["Wallet"].values()}


def write_ledger(apps: Any) -> Book:
    """Two organisations, five accounts with wallets, recharges (cash, bank pending, WeChat),
    deductions (one into overdraft), a refund, a fee and its reversal, the supply policy, a
    notification, a postpaid bill, a deduction state and a statement with a matched line."""
    book = Book(apps)
    Organisation = apps.get_model("organisations", "Organisation")
    Site = apps.get_model("sites", "Site")
    Customer = apps.get_model("customers", "Customer")
    Account = apps.get_model("customers", "Account")
    Meter = apps.get_model("meters", "Meter")
    User = apps.get_model("users", "User")
    m = book.model

    north = Organisation.objects.create(name="North Mall", slug="north")
    south = Organisation.objects.create(name="South Park", slug="south")
    cashier = User.objects.create(
        username="north-finance", password="!", organisation=north, role="finance"
    )
    accounts: dict[str, Any] = {}
    for org, numbers in ((north, ("N-1", "N-2", "N-3")), (south, ("S-1", "S-2"))):
        Site.objects.create(organisation=org, name=f"{org.name} site", kind="mall")
        for number in numbers:
            customer = Customer.objects.create(organisation=org, name=f"Tenant {number}")
            account = Account.objects.create(
                organisation=org,
                customer=customer,
                number=number,
                status="open",
                opened_at=T0 - timedelta(days=30),
            )
            accounts[number] = account
            book.wallets[number] = m("Wallet").objects.create(
                organisation=org,
                account=account,
                ledger_account=book.ledger_account(
                    org, ledger.wallet_account(str(account.pk)).code
                ),
            )
    n1, n2, n3, s1, s2 = (accounts[n] for n in ("N-1", "N-2", "N-3", "S-1", "S-2"))
    meter_n1 = Meter.objects.create(
        organisation=north, account=n1, kind="electricity_1p", protocol="dlt645", address="1" * 12
    )
    meter_s2 = Meter.objects.create(
        organisation=south, account=s2, kind="electricity_3p", protocol="dlt645", address="2" * 12
    )
    m("Wallet").objects.filter(pk=book.wallets["N-3"].pk).update(
        keep_supply=True, alarm_thresholds_minor=[1000], overdraft_minor=500
    )

    # Cash recharges, each with its order and its entry, as the counter recorded them.
    for index, (account, amount) in enumerate(
        ((n1, "100.00"), (n2, "50.00"), (n3, "10.00"), (s1, "80.00"), (s2, "5.00"))
    ):
        number = f"C20261102{index:06d}"
        entry = ledger.build_recharge(
            account_id=str(account.pk),
            amount=Decimal(amount),
            channel=Channel.CASH,
            reference=number,
            occurred_at=T0 + timedelta(minutes=index),
        )
        row = book.post(account, entry, "recharge", channel="cash", reference=number)
        m("Recharge").objects.create(
            organisation_id=account.organisation_id,
            number=number,
            account=account,
            channel="cash",
            amount_minor=to_minor(Decimal(amount), "CNY"),
            status="paid",
            idempotency_key=f"counter-{account.number}",
            entry=row,
            balance_after_minor=book.balance(account),
            created_by=cashier if account.organisation_id == north.pk else None,
            actor_label="cashier",
            paid_at=entry.occurred_at,
        )
    # A bank transfer not confirmed yet: an order without an entry.
    m("Recharge").objects.create(
        organisation=north,
        number="B20261102000001",
        account=n2,
        channel="bank_transfer",
        amount_minor=30000,
        status="pending",
        idempotency_key="bank-N-2",
        reference="BOC 8841",
    )
    # An online payment through the WeChat Pay clearing account, and its statement line.
    wechat = ledger.build_recharge(
        account_id=str(n2.pk),
        amount=Decimal("66.60"),
        channel=Channel.WECHAT,
        reference="4200001234",
        occurred_at=T0 + timedelta(hours=2),
    )
    wechat_row = book.post(n2, wechat, "recharge", channel="wechat", reference="4200001234")
    m("Recharge").objects.create(
        organisation=north,
        number="MP20261102110000AB12CD34",
        account=n2,
        channel="wechat",
        provider="wechat",
        amount_minor=6660,
        status="paid",
        idempotency_key="online-N-2-1",
        provider_transaction_id="4200001234",
        provider_status="SUCCESS",
        entry=wechat_row,
        balance_after_minor=book.balance(n2),
        paid_at=wechat.occurred_at,
    )
    m("PaymentProviderConfig").objects.create(
        organisation=north, kind="wechat", merchant_id="1900000109", app_id="wx8888"
    )
    m("PaymentNotificationLog").objects.create(
        organisation=north,
        provider="wechat",
        outcome="credited",
        merchant_order_no="MP20261102110000AB12CD34",
        provider_transaction_id="4200001234",
    )
    statement = m("StatementImport").objects.create(
        organisation=north,
        channel="wechat",
        provider="wechat",
        day=date(2026, 11, 2),
        filename="wechat-2026-11-02.csv",
        uploaded_by=cashier,
        row_count=1,
        matched=1,
        statement_total_minor=6660,
        ledger_total_minor=6660,
    )
    m("StatementLine").objects.create(
        organisation=north,
        statement=statement,
        transaction_id="4200001234",
        amount_minor=6660,
        ledger_amount_minor=6660,
        entry=wechat_row,
        match="matched",
    )

    # Metered deductions; S-2 goes into overdraft.
    for account, lines, reference in (
        (n1, [(ChargeType.ENERGY, Decimal("12.345")), (ChargeType.BASIC_CHARGE, Decimal("3"))], 1),
        (s2, [(ChargeType.ENERGY, Decimal("7.895"))], 2),
    ):
        entry = ledger.build_deduction(
            account_id=str(account.pk),
            lines=lines,
            reference=f"meter-{reference}/2026-11-02T10:00",
            occurred_at=T0 + timedelta(hours=3),
        )
        book.post(account, entry, "deduction", reference=entry.idempotency_key[:120])
    # A refund paid out in cash, and a fee charged by mistake then reversed.
    refund = ledger.build_refund(
        account_id=str(s1.pk),
        available_minor=book.balance(s1),
        amount=Decimal("20.00"),
        channel=Channel.CASH,
        reference="move-out",
        occurred_at=T0 + timedelta(hours=4),
    )
    book.post(s1, refund, "refund", channel="cash")
    fee = ledger.build_fee(
        account_id=str(n3.pk),
        amount=Decimal("2.50"),
        fee_code="card",
        reference="card-1",
        occurred_at=T0 + timedelta(hours=5),
    )
    fee_row = book.post(n3, fee, "fee")
    reversal = ledger.build_reversal(
        original=fee, occurred_at=T0 + timedelta(hours=6), reason="charged by mistake"
    )
    book.post(n3, reversal, "reversal", reverses=fee_row)

    # Supply policy, notifications, billing state.
    m("BalancePolicy").objects.create(
        organisation=north,
        alarm_thresholds_minor=[5000, 2000, 500],
        overdraft_minor=1000,
        restore_threshold_minor=100,
        quiet_start=time(22),
        quiet_end=time(7),
        reminder_days=Decimal("3.0"),
        default_water_tariff=WATER_TARIFF,
    )
    m("BalancePolicy").objects.create(organisation=south, alarm_thresholds_minor=[1000])
    channel = m("NotificationChannel").objects.create(
        organisation=north, kind="email", name="Front desk", target="desk@north.example"
    )
    m("Notification").objects.create(
        organisation=north,
        account=n3,
        channel=channel,
        kind="alarm",
        level=1,
        subject="Balance below 50.00",
        body="Your balance is 10.00.",
        status="sent",
        attempts=1,
        sent_at=T0 + timedelta(hours=7),
    )
    m("Wallet").objects.filter(pk=book.wallets["N-3"].pk).update(
        alarm_history={"1": {"sent_count": 1, "last_sent_at": "2026-11-02T16:00:00+00:00"}}
    )
    m("PostpaidBill").objects.create(
        organisation=south,
        account=s2,
        period_end=date(2026, 10, 31),
        amount_minor=4210,
        due_on=date(2026, 11, 15),
        status="open",
    )
    m("DeductionState").objects.create(
        organisation=north,
        account=n1,
        meter=meter_n1,
        state={"energy_kwh": "18.15", "demand_kw": "4.2"},
        rated_until=T0 + timedelta(hours=3),
    )
    m("DeductionState").objects.create(
        organisation=south, account=s2, meter=meter_s2, state={}, rated_until=None
    )
    book.snapshot()
    return book


@pytest.fixture
def executor() -> Iterator[MigrationExecutor]:
    """A migration executor; whatever happens, the database ends at the latest migrations."""
    executor = MigrationExecutor(connection)
    try:
        yield executor
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


def test_the_split_keeps_every_row_balance_and_guard(executor: MigrationExecutor) -> None:
    postgres = connection.vendor == "postgresql"
    targets, unapplied = pre_split_targets(executor.loader.graph)
    assert BEFORE_SPLIT in targets
    assert unapplied == ["billing", "ledger", "notifications", "payments", "supply"]

    # Back to just before the split.
    executor.migrate(targets + [(app, None) for app in unapplied])
    executor.loader.build_graph()
    applied = set(executor.loader.applied_migrations)
    assert BEFORE_SPLIT in applied and SPLIT not in applied
    assert not {app for app, _ in applied} & set(unapplied)
    tables = set(connection.introspection.table_names())
    assert {f"wallets_{name.lower()}" for name in MOVED} <= tables
    assert not {table for _app, table in MOVED.values()} & tables
    if postgres:
        # unapplying ledger 0003 brings back the triggers of wallets 0002, on the old tables
        assert pg_triggers("wallets_posting") == {
            "wallets_posting_balanced",
            "wallets_posting_immutable",
        }
        assert pg_triggers("wallets_journalentry") == {"wallets_entry_immutable"}

    book = write_ledger(executor.loader.project_state(targets).apps)
    Posting = book.model("Posting")
    for wallet_id, balance in book.balances.items():
        postings = Posting.objects.filter(ledger_account__wallet__pk=wallet_id)
        assert balance == -sum(postings.values_list("amount", flat=True))
    assert sorted(book.balances.values()) == [-290, 1000, 6000, 8465, 11660]

    # Forward to the latest migrations.
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    executor.loader.build_graph()
    assert set(executor.loader.graph.leaf_nodes()) <= set(executor.loader.applied_migrations)

    tables = set(connection.introspection.table_names())
    assert not [table for table in tables if table.startswith("wallets_")]
    assert {table for _app, table in MOVED.values()} <= tables

    # Every moved row, by primary key, with the same values (foreign keys included).
    for name, (app, table) in MOVED.items():
        model = current_apps.get_model(app, RENAMED.get(name, name))
        assert model._meta.db_table == table
        after = {row["id"]: row for row in model.objects.values()}
        assert after.keys() == book.rows[name].keys(), name
        for pk, before in book.rows[name].items():
            before = later_changes(name, before)
            gone = set(before) - set(after[pk])
            assert gone == DROPPED.get(name, set()), (name, gone)
            kept = {k: v for k, v in after[pk].items() if k in before}
            assert kept == {k: v for k, v in before.items() if k not in gone}, (name, pk)

    # The database's own foreign keys point at the renamed tables.
    for _app, table in MOVED.values():
        for column, target in foreign_keys(table).items():
            assert target in tables and not target.startswith("wallets_"), (table, column)
    assert foreign_keys("ledger_posting")["entry_id"] == "ledger_journalentry"
    assert foreign_keys("ledger_wallet")["ledger_account_id"] == "ledger_ledgeraccount"
    assert foreign_keys("payments_recharge")["entry_id"] == "ledger_journalentry"
    assert foreign_keys("payments_statementline")["entry_id"] == "ledger_journalentry"

    from meterpay.apps.billing.models import DeductionState
    from meterpay.apps.customers.models import Account
    from meterpay.apps.ledger.models import JournalEntry, Posting, Wallet
    from meterpay.apps.notifications.models import Notification
    from meterpay.apps.payments.models import Recharge, StatementLine
    from meterpay.apps.payments.services import recharge_record
    from meterpay.apps.tariffs.models import DefaultTariff

    # The relations resolve through the ORM, joins included.
    for wallet in Wallet.objects.select_related("ledger_account", "account"):
        assert wallet.ledger_account.code == f"wallet:{wallet.account_id}"
        assert wallet.organisation_id == wallet.account.organisation_id
    for recharge in Recharge.objects.filter(status="paid").select_related("entry"):
        assert (
            recharge.entry.kind == "recharge" and recharge.entry.account_id == recharge.account_id
        )
        assert recharge.entry.wallet_amount == recharge.amount_minor
    assert Posting.objects.filter(entry__recharge__isnull=False).count() == 2 * 6
    line = StatementLine.objects.select_related("entry__recharge", "statement").get()
    assert line.entry.recharge.provider_transaction_id == line.transaction_id
    reversal = JournalEntry.objects.select_related("reverses").get(kind="reversal")
    assert reversal.reverses.kind == "fee" and reversal.reverses.reversed_by == reversal
    assert Notification.objects.select_related("channel").get().channel.name == "Front desk"
    assert DeductionState.objects.filter(meter__address="1" * 12).count() == 1
    # tariffs 0003 carried the policy's default water tariff over.
    default = DefaultTariff.objects.select_related("tariff").get()
    assert (default.utility, default.tariff.name) == ("water", "North water")

    # The balances, and the ledger check.
    assert dict(Wallet.objects.values_list("pk", "balance_minor")) == book.balances
    assert ledger_mismatches() == [] and unbalanced_entries() == []
    out = StringIO()
    call_command("ledger", "check", stdout=out)
    assert "ledger OK" in out.getvalue()

    # New movements post on the renamed tables; a retry of a pre-split order credits nothing.
    n1 = Account.objects.get(number="N-1")
    before = Wallet.objects.get(account=n1).balance_minor
    old_entry_max = max(book.rows["JournalEntry"])
    old_posting_max = max(book.rows["Posting"])
    recharge, created = recharge_record(
        actor="cashier", account=n1, amount="25.00", channel="cash", idempotency_key="after"
    )
    assert created and recharge.status == "paid"
    assert recharge.entry_id > old_entry_max
    assert min(recharge.entry.postings.values_list("pk", flat=True)) > old_posting_max
    assert Wallet.objects.get(account=n1).balance_minor == before + 2500
    replay, created = recharge_record(
        actor="cashier", account=n1, amount="100.00", channel="cash", idempotency_key="counter-N-1"
    )
    assert not created and replay.pk in book.rows["Recharge"]
    assert Wallet.objects.get(account=n1).balance_minor == before + 2500
    assert ledger_mismatches() == [] and unbalanced_entries() == []
    call_command("ledger", "check", stdout=StringIO())

    # The foreign keys are enforced against the renamed tables.
    with pytest.raises(IntegrityError), transaction.atomic():
        StatementLine.objects.create(
            organisation_id=line.organisation_id,
            statement=line.statement,
            transaction_id="nowhere",
            amount_minor=1,
            entry_id=old_entry_max + 1000,
            match="extra",
        )

    if postgres:
        assert pg_triggers("ledger_posting") == {
            "ledger_posting_balanced",
            "ledger_posting_immutable",
        }
        assert pg_triggers("ledger_journalentry") == {"ledger_entry_immutable"}
        assert pg_functions("wallets_") == set()
        posting = Posting.objects.filter(entry=recharge.entry).first()
        with (
            pytest.raises(IntegrityError, match="postings sum to 5"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(
                "INSERT INTO ledger_posting (organisation_id, entry_id, ledger_account_id,"
                " amount) VALUES (%s, %s, %s, 5)",
                [posting.organisation_id, posting.entry_id, posting.ledger_account_id],
            )
        with (
            pytest.raises(IntegrityError, match="immutable"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(
                "UPDATE ledger_posting SET amount = amount + 1 WHERE id = %s",
                [min(book.rows["Posting"])],
            )
        with (
            pytest.raises(IntegrityError, match="immutable"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute("DELETE FROM ledger_journalentry WHERE id = %s", [reversal.pk])
        assert ledger_mismatches() == [] and unbalanced_entries() == []
