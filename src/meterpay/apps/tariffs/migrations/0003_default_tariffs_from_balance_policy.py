"""The balance policy's default tariff documents become stored tariffs and the organisation's
default tariffs: one rule for the tariff of an account (its assignment, else this default)."""

from typing import Any

from django.db import migrations

from meterpay.core.tariffs import TariffError, parse_tariff, tariff_to_dict

NOTE = "the balance policy's default tariff"


def forwards(apps: Any, schema_editor: Any) -> None:
    BalancePolicy = apps.get_model("supply", "BalancePolicy")
    Tariff = apps.get_model("tariffs", "Tariff")
    TariffRevision = apps.get_model("tariffs", "TariffRevision")
    DefaultTariff = apps.get_model("tariffs", "DefaultTariff")
    for policy in BalancePolicy.objects.order_by("pk"):
        for utility, document in (
            ("electricity", policy.default_tariff),
            ("water", policy.default_water_tariff),
        ):
            if not document:
                continue
            name, note = f"Default {utility}", NOTE
            description = ""
            try:
                engine = parse_tariff(document)
                document, name, description = (
                    tariff_to_dict(engine),
                    engine.name,
                    engine.description,
                )
            except (TariffError, TypeError, ValueError) as exc:  # kept as it was, and said so
                note = f"{NOTE} (does not validate: {exc})"[:300]
            tariff = Tariff.objects.create(
                organisation_id=policy.organisation_id,
                name=(name or f"Default {utility}")[:200],
                utility=utility,
                description=description,
                document=document,
            )
            TariffRevision.objects.create(
                organisation_id=policy.organisation_id,
                tariff=tariff,
                number=1,
                kind="created",
                document=document,
                note=note,
                created_by_label="migration",
            )
            DefaultTariff.objects.create(
                organisation_id=policy.organisation_id, utility=utility, tariff=tariff
            )


def backwards(apps: Any, schema_editor: Any) -> None:
    BalancePolicy = apps.get_model("supply", "BalancePolicy")
    DefaultTariff = apps.get_model("tariffs", "DefaultTariff")
    for row in DefaultTariff.objects.select_related("tariff"):
        field = "default_water_tariff" if row.utility == "water" else "default_tariff"
        BalancePolicy.objects.filter(organisation_id=row.organisation_id).update(
            **{field: row.tariff.document}
        )
    DefaultTariff.objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("tariffs", "0002_default_tariffs"),
        ("supply", "0002_own_table_names"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
