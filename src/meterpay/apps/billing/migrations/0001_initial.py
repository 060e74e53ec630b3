"""The models as they were in the wallets app, taken over without touching the tables
(state only; ``db_table`` still names the wallets tables until 0002 renames them).
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("wallets", "0006_moved_to_new_apps"),
        ("customers", "0001_initial"),
        ("meters", "0002_gateway_host_port"),
        ("organisations", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="DeductionState",
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
                        ("state", models.JSONField(blank=True, default=dict, verbose_name="state")),
                        (
                            "rated_until",
                            models.DateTimeField(blank=True, null=True, verbose_name="rated until"),
                        ),
                        (
                            "updated_at",
                            models.DateTimeField(auto_now=True, verbose_name="updated at"),
                        ),
                        (
                            "account",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="customers.account",
                            ),
                        ),
                        (
                            "meter",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="meters.meter",
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
                        "verbose_name": "deduction state",
                        "verbose_name_plural": "deduction states",
                        "db_table": "wallets_deductionstate",
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("account", "meter"), name="deduction_state_once"
                            )
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="PostpaidBill",
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
                        ("period_end", models.DateField(verbose_name="period end")),
                        (
                            "amount_minor",
                            models.BigIntegerField(verbose_name="amount (minor units)"),
                        ),
                        ("due_on", models.DateField(verbose_name="due on")),
                        (
                            "status",
                            models.CharField(
                                choices=[("open", "Open"), ("paid", "Paid")],
                                max_length=6,
                                verbose_name="status",
                            ),
                        ),
                        (
                            "issued_at",
                            models.DateTimeField(auto_now_add=True, verbose_name="issued at"),
                        ),
                        (
                            "paid_at",
                            models.DateTimeField(blank=True, null=True, verbose_name="paid at"),
                        ),
                        (
                            "account",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="bills",
                                to="customers.account",
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
                        "verbose_name": "postpaid bill",
                        "verbose_name_plural": "postpaid bills",
                        "db_table": "wallets_postpaidbill",
                        "ordering": ["-period_end"],
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("account", "period_end"), name="one_bill_per_period"
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
