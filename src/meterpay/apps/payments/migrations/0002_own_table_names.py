"""The tables taken over from the wallets app get this app's own names (a rename: no data moves)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0001_initial"),
    ]

    operations = [
        migrations.AlterModelTable(
            name="paymentnotificationlog",
            table=None,
        ),
        migrations.AlterModelTable(
            name="paymentproviderconfig",
            table=None,
        ),
        migrations.AlterModelTable(
            name="recharge",
            table=None,
        ),
        migrations.AlterModelTable(
            name="statementimport",
            table=None,
        ),
        migrations.AlterModelTable(
            name="statementline",
            table=None,
        ),
    ]
