"""The tables taken over from the wallets app get this app's own names (a rename: no data moves)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0001_initial"),
    ]

    operations = [
        migrations.AlterModelTable(
            name="journalentry",
            table=None,
        ),
        migrations.AlterModelTable(
            name="ledgeraccount",
            table=None,
        ),
        migrations.AlterModelTable(
            name="posting",
            table=None,
        ),
        migrations.AlterModelTable(
            name="wallet",
            table=None,
        ),
    ]
