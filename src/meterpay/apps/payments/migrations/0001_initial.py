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
        ("ledger", "0001_initial"),
        ("organisations", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="PaymentNotificationLog",
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
                        ("provider", models.CharField(max_length=70, verbose_name="provider")),
                        (
                            "received_at",
                            models.DateTimeField(auto_now_add=True, verbose_name="received at"),
                        ),
                        (
                            "outcome",
                            models.CharField(
                                choices=[
                                    ("credited", "Credited"),
                                    ("replay", "Replay (already credited)"),
                                    ("ignored", "Not a payment"),
                                    ("rejected", "Rejected"),
                                ],
                                max_length=10,
                                verbose_name="outcome",
                            ),
                        ),
                        (
                            "detail",
                            models.CharField(blank=True, max_length=300, verbose_name="detail"),
                        ),
                        (
                            "merchant_order_no",
                            models.CharField(blank=True, max_length=64, verbose_name="order"),
                        ),
                        (
                            "provider_transaction_id",
                            models.CharField(blank=True, max_length=80, verbose_name="transaction"),
                        ),
                        (
                            "remote_addr",
                            models.CharField(
                                blank=True, max_length=64, verbose_name="remote address"
                            ),
                        ),
                        (
                            "organisation",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                to="organisations.organisation",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "payment notification",
                        "verbose_name_plural": "payment notifications",
                        "db_table": "wallets_paymentnotificationlog",
                        "ordering": ["-received_at", "-id"],
                    },
                ),
                migrations.CreateModel(
                    name="StatementImport",
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
                            "channel",
                            models.CharField(
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
                        ("provider", models.CharField(max_length=70, verbose_name="provider")),
                        ("day", models.DateField(verbose_name="day")),
                        ("filename", models.CharField(max_length=200, verbose_name="file")),
                        (
                            "uploaded_at",
                            models.DateTimeField(auto_now_add=True, verbose_name="uploaded at"),
                        ),
                        ("row_count", models.PositiveIntegerField(default=0, verbose_name="rows")),
                        ("matched", models.PositiveIntegerField(default=0, verbose_name="matched")),
                        (
                            "statement_total_minor",
                            models.BigIntegerField(default=0, verbose_name="statement total"),
                        ),
                        (
                            "ledger_total_minor",
                            models.BigIntegerField(default=0, verbose_name="ledger total"),
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
                            "uploaded_by",
                            models.ForeignKey(
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "statement import",
                        "verbose_name_plural": "statement imports",
                        "db_table": "wallets_statementimport",
                        "ordering": ["-day", "-id"],
                    },
                ),
                migrations.CreateModel(
                    name="StatementLine",
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
                            "transaction_id",
                            models.CharField(max_length=80, verbose_name="transaction"),
                        ),
                        (
                            "amount_minor",
                            models.BigIntegerField(verbose_name="amount (minor units)"),
                        ),
                        (
                            "ledger_amount_minor",
                            models.BigIntegerField(
                                blank=True, null=True, verbose_name="ledger amount"
                            ),
                        ),
                        (
                            "match",
                            models.CharField(
                                choices=[
                                    ("matched", "Matched"),
                                    ("amount", "Amount differs"),
                                    ("missing", "Not in the ledger"),
                                    ("extra", "Not in the statement"),
                                ],
                                max_length=8,
                                verbose_name="match",
                            ),
                        ),
                        (
                            "entry",
                            models.ForeignKey(
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="ledger.journalentry",
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
                            "statement",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="lines",
                                to="payments.statementimport",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "wallets_statementline",
                        "ordering": ["match", "transaction_id"],
                    },
                ),
                migrations.CreateModel(
                    name="PaymentProviderConfig",
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
                            "kind",
                            models.CharField(
                                choices=[
                                    ("wechat", "WeChat Pay"),
                                    ("alipay", "Alipay"),
                                    ("forwarding", "Forwarding provider"),
                                ],
                                max_length=12,
                                verbose_name="kind",
                            ),
                        ),
                        ("name", models.CharField(blank=True, max_length=60, verbose_name="name")),
                        ("enabled", models.BooleanField(default=True, verbose_name="enabled")),
                        (
                            "merchant_id",
                            models.CharField(blank=True, max_length=64, verbose_name="merchant id"),
                        ),
                        (
                            "app_id",
                            models.CharField(blank=True, max_length=64, verbose_name="app id"),
                        ),
                        (
                            "key_serial",
                            models.CharField(blank=True, max_length=80, verbose_name="key serial"),
                        ),
                        (
                            "public_key_pem",
                            models.TextField(blank=True, verbose_name="provider public key (PEM)"),
                        ),
                        ("secret", models.TextField(blank=True, verbose_name="secret")),
                        (
                            "simulator_private_key_pem",
                            models.TextField(
                                blank=True, verbose_name="simulator private key (demo)"
                            ),
                        ),
                        (
                            "created_at",
                            models.DateTimeField(auto_now_add=True, verbose_name="created at"),
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
                        "verbose_name": "payment provider",
                        "verbose_name_plural": "payment providers",
                        "db_table": "wallets_paymentproviderconfig",
                        "constraints": [
                            models.UniqueConstraint(
                                condition=models.Q(("kind", "forwarding")),
                                fields=("kind", "name"),
                                name="forwarding_provider_name_unique",
                            ),
                            models.UniqueConstraint(
                                condition=models.Q(("kind", "forwarding"), _negated=True),
                                fields=("organisation", "kind"),
                                name="one_wallet_provider_per_org",
                            ),
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="Recharge",
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
                            "number",
                            models.CharField(
                                max_length=40, unique=True, verbose_name="order number"
                            ),
                        ),
                        (
                            "channel",
                            models.CharField(
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
                            "provider",
                            models.CharField(blank=True, max_length=70, verbose_name="provider"),
                        ),
                        (
                            "amount_minor",
                            models.BigIntegerField(verbose_name="amount (minor units)"),
                        ),
                        (
                            "currency",
                            models.CharField(default="CNY", max_length=3, verbose_name="currency"),
                        ),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("pending", "Pending"),
                                    ("paid", "Paid"),
                                    ("closed", "Closed"),
                                    ("failed", "Failed"),
                                ],
                                max_length=8,
                                verbose_name="status",
                            ),
                        ),
                        (
                            "idempotency_key",
                            models.CharField(max_length=255, verbose_name="idempotency key"),
                        ),
                        (
                            "reference",
                            models.CharField(blank=True, max_length=120, verbose_name="reference"),
                        ),
                        (
                            "provider_transaction_id",
                            models.CharField(
                                blank=True, max_length=80, verbose_name="provider transaction"
                            ),
                        ),
                        (
                            "provider_status",
                            models.CharField(
                                blank=True, max_length=40, verbose_name="provider status"
                            ),
                        ),
                        (
                            "balance_after_minor",
                            models.BigIntegerField(
                                blank=True, null=True, verbose_name="balance after"
                            ),
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
                            "paid_at",
                            models.DateTimeField(blank=True, null=True, verbose_name="paid at"),
                        ),
                        (
                            "account",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="recharges",
                                to="customers.account",
                            ),
                        ),
                        (
                            "confirmed_by",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
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
                            ),
                        ),
                        (
                            "entry",
                            models.OneToOneField(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="recharge",
                                to="ledger.journalentry",
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
                        "verbose_name": "recharge",
                        "verbose_name_plural": "recharges",
                        "db_table": "wallets_recharge",
                        "ordering": ["-created_at", "-id"],
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("organisation", "idempotency_key"), name="recharge_key_once"
                            ),
                            models.CheckConstraint(
                                condition=models.Q(("amount_minor__gt", 0)),
                                name="recharge_positive",
                            ),
                            models.CheckConstraint(
                                condition=models.Q(
                                    models.Q(("status", "paid"), _negated=True),
                                    ("entry__isnull", False),
                                    _connector="OR",
                                ),
                                name="paid_recharge_has_entry",
                            ),
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
