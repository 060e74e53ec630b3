"""The default tariffs now live in the tariffs app (tariffs 0003 moved them there)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("supply", "0002_own_table_names"),
        ("tariffs", "0003_default_tariffs_from_balance_policy"),
    ]

    operations = [
        migrations.RemoveField(
            model_name="balancepolicy",
            name="default_tariff",
        ),
        migrations.RemoveField(
            model_name="balancepolicy",
            name="default_water_tariff",
        ),
    ]
