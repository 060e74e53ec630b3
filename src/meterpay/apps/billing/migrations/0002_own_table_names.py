"""The tables taken over from the wallets app get this app's own names (a rename: no data moves)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0001_initial"),
    ]

    operations = [
        migrations.AlterModelTable(
            name="deductionstate",
            table=None,
        ),
        migrations.AlterModelTable(
            name="postpaidbill",
            table=None,
        ),
    ]
