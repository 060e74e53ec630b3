"""The models as they were in the wallets app, taken over without touching the tables
(state only; ``db_table`` still names the wallets tables until 0002 renames them).
"""

import datetime

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("wallets", "0006_moved_to_new_apps"),
        ("organisations", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="BalancePolicy",
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
                            "alarm_thresholds_minor",
                            models.JSONField(default=list, verbose_name="alarm thresholds"),
                        ),
                        (
                            "overdraft_minor",
                            models.BigIntegerField(default=0, verbose_name="overdraft"),
                        ),
                        (
                            "restore_threshold_minor",
                            models.BigIntegerField(default=0, verbose_name="restore threshold"),
                        ),
                        (
                            "repeat_count",
                            models.PositiveIntegerField(default=1, verbose_name="repeat count"),
                        ),
                        (
                            "repeat_interval_minutes",
                            models.PositiveIntegerField(
                                default=1440, verbose_name="repeat interval"
                            ),
                        ),
                        (
                            "quiet_start",
                            models.TimeField(
                                blank=True, null=True, verbose_name="quiet hours from"
                            ),
                        ),
                        (
                            "quiet_end",
                            models.TimeField(
                                blank=True, null=True, verbose_name="quiet hours until"
                            ),
                        ),
                        (
                            "night_start",
                            models.TimeField(
                                blank=True,
                                default=datetime.time(18, 0),
                                null=True,
                                verbose_name="no cut-off from",
                            ),
                        ),
                        (
                            "night_end",
                            models.TimeField(
                                blank=True,
                                default=datetime.time(8, 0),
                                null=True,
                                verbose_name="no cut-off until",
                            ),
                        ),
                        (
                            "protect_weekends",
                            models.BooleanField(
                                default=True, verbose_name="no cut-off at weekends"
                            ),
                        ),
                        (
                            "protect_holidays",
                            models.BooleanField(
                                default=True, verbose_name="no cut-off on holidays"
                            ),
                        ),
                        (
                            "holidays",
                            models.JSONField(blank=True, default=list, verbose_name="holidays"),
                        ),
                        (
                            "working_days",
                            models.JSONField(
                                blank=True, default=list, verbose_name="weekend working days"
                            ),
                        ),
                        (
                            "reminder_days",
                            models.DecimalField(
                                blank=True,
                                decimal_places=1,
                                max_digits=5,
                                null=True,
                                verbose_name="remind when days of credit left fall below",
                            ),
                        ),
                        (
                            "postpaid_due_days",
                            models.PositiveIntegerField(
                                default=15, verbose_name="postpaid bill due after (days)"
                            ),
                        ),
                        (
                            "postpaid_grace_days",
                            models.PositiveIntegerField(
                                default=7, verbose_name="postpaid grace days"
                            ),
                        ),
                        (
                            "default_tariff",
                            models.JSONField(blank=True, null=True, verbose_name="default tariff"),
                        ),
                        (
                            "default_water_tariff",
                            models.JSONField(
                                blank=True, null=True, verbose_name="default water tariff"
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
                        "verbose_name": "balance policy",
                        "verbose_name_plural": "balance policies",
                        "db_table": "wallets_balancepolicy",
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("organisation",), name="one_balance_policy_per_org"
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
