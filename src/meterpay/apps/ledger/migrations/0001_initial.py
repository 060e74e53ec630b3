"""The models as they were in the wallets app, taken over without touching the tables
(state only; ``db_table`` still names the wallets tables until 0002 renames them).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("wallets", "0006_moved_to_new_apps"),
        ("customers", "0001_initial"),
        ("organisations", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="JournalEntry",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "idempotency_key",
                            models.CharField(max_length=255, verbose_name="idempotency key"),
                        ),
                        ("occurred_at", models.DateTimeField(verbose_name="occurred at")),
                        ("memo", models.CharField(blank=True, max_length=255, verbose_name="memo")),
                        (
                            "kind",
                            models.CharField(
                                choices=[
                                    ("recharge", "Recharge"),
                                    ("deduction", "Deduction"),
                                    ("fee", "Fee"),
                                    ("refund", "Refund"),
                                    ("refund_payout", "Refund paid out"),
                                    ("reversal", "Reversal"),
                                    ("arrears", "Arrears at closure"),
                                    ("meter_credit", "Credit on the meter"),
                                ],
                                max_length=16,
                                verbose_name="kind",
                            ),
                        ),
                        (
                            "channel",
                            models.CharField(
                                blank=True,
                                choices=[
                                    ("cash", "Cash"),
                                    ("bank_transfer", "Bank transfer"),
                                    ("wechat", "WeChat Pay"),
                                    ("alipay", "Alipay"),
                                    ("forwarding", "Forwarding provider"),
                                ],
                                max_length=16,
                                verbose_name="channel",
                            ),
                        ),
                        (
                            "reference",
                            models.CharField(blank=True, max_length=120, verbose_name="reference"),
                        ),
                        (
                            "wallet_amount",
                            models.BigIntegerField(default=0, verbose_name="wallet amount"),
                        ),
                        (
                            "currency",
                            models.CharField(default="CNY", max_length=3, verbose_name="currency"),
                        ),
                        (
                            "actor_label",
                            models.CharField(blank=True, max_length=150, verbose_name="actor"),
                        ),
                        (
                            "created_at",
                            models.DateTimeField(auto_now_add=True, verbose_name="created at"),
                        ),
                        (
                            "account",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="journal_entries",
                                to="customers.account",
                                verbose_name="account",
                            ),
                        ),
                        (
                            "created_by",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                                verbose_name="created by",
                            ),
                        ),
                        (
                            "organisation",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="organisations.organisation",
                                verbose_name="organisation",
                            ),
                        ),
                        (
                            "reverses",
                            models.OneToOneField(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="reversed_by",
                                to="ledger.journalentry",
                                verbose_name="reverses",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "journal entry",
                        "verbose_name_plural": "journal entries",
                        "db_table": "wallets_journalentry",
                        "ordering": ["-occurred_at", "-id"],
                    },
                ),
                migrations.CreateModel(
                    name="LedgerAccount",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("code", models.CharField(max_length=80, verbose_name="code")),
                        (
                            "kind",
                            models.CharField(
                                choices=[
                                    ("wallet", "wallet"),
                                    ("cash", "cash"),
                                    ("bank", "bank"),
                                    ("clearing", "clearing"),
                                    ("revenue", "revenue"),
                                    ("refunds_payable", "refunds_payable"),
                                    ("receivable", "receivable"),
                                    ("on_meter", "on_meter"),
                                ],
                                max_length=20,
                                verbose_name="kind",
                            ),
                        ),
                        (
                            "organisation",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="organisations.organisation",
                                verbose_name="organisation",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "ledger account",
                        "verbose_name_plural": "ledger accounts",
                        "db_table": "wallets_ledgeraccount",
                        "ordering": ["code"],
                    },
                ),
                migrations.CreateModel(
                    name="Posting",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("amount", models.BigIntegerField(verbose_name="amount (minor units)")),
                        (
                            "entry",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="postings",
                                to="ledger.journalentry",
                                verbose_name="entry",
                            ),
                        ),
                        (
                            "ledger_account",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="postings",
                                to="ledger.ledgeraccount",
                                verbose_name="ledger account",
                            ),
                        ),
                        (
                            "organisation",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="organisations.organisation",
                                verbose_name="organisation",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "posting",
                        "verbose_name_plural": "postings",
                        "db_table": "wallets_posting",
                        "ordering": ["entry", "id"],
                    },
                ),
                migrations.CreateModel(
                    name="Wallet",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "currency",
                            models.CharField(default="CNY", max_length=3, verbose_name="currency"),
                        ),
                        (
                            "balance_minor",
                            models.BigIntegerField(default=0, verbose_name="balance (minor units)"),
                        ),
                        (
                            "updated_at",
                            models.DateTimeField(auto_now=True, verbose_name="updated at"),
                        ),
                        (
                            "supply",
                            models.CharField(
                                choices=[
                                    ("on", "On"),
                                    ("cut_for_balance", "Cut for balance"),
                                    ("cut_manual", "Cut by an operator"),
                                ],
                                default="on",
                                max_length=16,
                                verbose_name="supply",
                            ),
                        ),
                        (
                            "supply_changed_at",
                            models.DateTimeField(
                                blank=True, null=True, verbose_name="supply changed at"
                            ),
                        ),
                        (
                            "cut_deferred_until",
                            models.DateTimeField(
                                blank=True, null=True, verbose_name="cut-off deferred until"
                            ),
                        ),
                        (
                            "cut_deferred",
                            models.BooleanField(default=False, verbose_name="cut-off deferred"),
                        ),
                        (
                            "alarm_history",
                            models.JSONField(
                                blank=True, default=dict, verbose_name="alarm history"
                            ),
                        ),
                        (
                            "reminder_sent_at",
                            models.DateTimeField(
                                blank=True, null=True, verbose_name="credit reminder sent at"
                            ),
                        ),
                        (
                            "keep_supply",
                            models.BooleanField(
                                default=False, verbose_name="keep supply (never cut for balance)"
                            ),
                        ),
                        (
                            "alarm_thresholds_minor",
                            models.JSONField(
                                blank=True, null=True, verbose_name="alarm thresholds"
                            ),
                        ),
                        (
                            "overdraft_minor",
                            models.BigIntegerField(blank=True, null=True, verbose_name="overdraft"),
                        ),
                        (
                            "restore_threshold_minor",
                            models.BigIntegerField(
                                blank=True, null=True, verbose_name="restore threshold"
                            ),
                        ),
                        (
                            "account",
                            models.OneToOneField(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="wallet",
                                to="customers.account",
                            ),
                        ),
                        (
                            "ledger_account",
                            models.OneToOneField(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="wallet",
                                to="ledger.ledgeraccount",
                            ),
                        ),
                        (
                            "organisation",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="organisations.organisation",
                                verbose_name="organisation",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "wallet",
                        "verbose_name_plural": "wallets",
                        "db_table": "wallets_wallet",
                    },
                ),
                migrations.AddIndex(
                    model_name="journalentry",
                    index=models.Index(
                        fields=["organisation", "kind", "occurred_at"], name="entry_kind_time"
                    ),
                ),
                migrations.AddIndex(
                    model_name="journalentry",
                    index=models.Index(
                        fields=["account", "occurred_at"], name="entry_account_time"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="journalentry",
                    constraint=models.UniqueConstraint(
                        fields=("organisation", "idempotency_key"), name="journal_entry_key_once"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="ledgeraccount",
                    constraint=models.UniqueConstraint(
                        fields=("organisation", "code"), name="ledger_account_code"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="posting",
                    constraint=models.CheckConstraint(
                        condition=models.Q(("amount", 0), _negated=True), name="posting_not_zero"
                    ),
                ),
            ],
            database_operations=[],
        ),
    ]
