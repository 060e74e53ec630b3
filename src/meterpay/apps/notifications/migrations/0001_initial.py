"""The models as they were in the wallets app, taken over without touching the tables
(state only; ``db_table`` still names the wallets tables until 0002 renames them).
"""

import django.db.models.deletion
from django.db import migrations, models

import meterpay.apps.notifications.models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("wallets", "0006_moved_to_new_apps"),
        ("customers", "0001_initial"),
        ("organisations", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="NotificationChannel",
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
                                    ("apprise", "Apprise URL (SMS, WeCom, DingTalk, push…)"),
                                    ("email", "E-mail"),
                                    ("webhook", "Webhook"),
                                ],
                                max_length=8,
                                verbose_name="kind",
                            ),
                        ),
                        ("name", models.CharField(max_length=80, verbose_name="name")),
                        (
                            "target",
                            models.CharField(blank=True, max_length=500, verbose_name="target"),
                        ),
                        (
                            "secret",
                            models.CharField(
                                blank=True, max_length=200, verbose_name="webhook secret"
                            ),
                        ),
                        ("enabled", models.BooleanField(default=True, verbose_name="enabled")),
                        (
                            "events",
                            models.JSONField(
                                blank=True,
                                default=meterpay.apps.notifications.models.notification_events_all,
                                verbose_name="events",
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
                        "verbose_name": "notification channel",
                        "verbose_name_plural": "notification channels",
                        "db_table": "wallets_notificationchannel",
                    },
                ),
                migrations.CreateModel(
                    name="Notification",
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
                                    ("alarm", "Balance alarm"),
                                    ("reminder", "Days of credit reminder"),
                                    ("cut_off", "Supply cut off"),
                                    ("cut_deferred", "Cut-off deferred"),
                                    ("restore", "Supply restored"),
                                    ("bill_due", "Bill overdue"),
                                    ("test", "Test message"),
                                ],
                                max_length=12,
                                verbose_name="kind",
                            ),
                        ),
                        (
                            "level",
                            models.PositiveSmallIntegerField(
                                blank=True, null=True, verbose_name="alarm level"
                            ),
                        ),
                        ("subject", models.CharField(max_length=200, verbose_name="subject")),
                        ("body", models.TextField(verbose_name="message")),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("pending", "Pending"),
                                    ("sent", "Sent"),
                                    ("failed", "Failed"),
                                ],
                                default="pending",
                                max_length=8,
                                verbose_name="status",
                            ),
                        ),
                        (
                            "attempts",
                            models.PositiveIntegerField(default=0, verbose_name="attempts"),
                        ),
                        (
                            "result",
                            models.CharField(
                                blank=True, max_length=300, verbose_name="delivery result"
                            ),
                        ),
                        (
                            "created_at",
                            models.DateTimeField(auto_now_add=True, verbose_name="created at"),
                        ),
                        (
                            "sent_at",
                            models.DateTimeField(blank=True, null=True, verbose_name="sent at"),
                        ),
                        (
                            "account",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="notifications",
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
                        (
                            "channel",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="notifications.notificationchannel",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "notification",
                        "verbose_name_plural": "notifications",
                        "db_table": "wallets_notification",
                        "ordering": ["-created_at", "-id"],
                        "indexes": [
                            models.Index(
                                fields=["status", "created_at"], name="notification_pending"
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
