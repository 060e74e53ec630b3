"""The postpaid statements become bills of the month end (a rename: no row is copied).

A statement's amount becomes what the bill asks for and its total; "open" becomes "issued".
"""

import django.utils.timezone
from django.db import migrations, models


def statements_to_bills(apps, schema_editor):
    Bill = apps.get_model("billing", "Bill")
    for bill in Bill.objects.all().iterator():
        bill.number = f"P{bill.account_id}-{bill.period_end:%Y%m%d}"
        bill.total_minor = bill.due_minor
        bill.unpaid_minor = bill.due_minor if bill.status == "open" else 0
        bill.status = "issued" if bill.status == "open" else "paid"
        bill.created_at = bill.issued_at
        bill.save(update_fields=["number", "total_minor", "unpaid_minor", "status", "created_at"])


def bills_to_statements(apps, schema_editor):
    Bill = apps.get_model("billing", "Bill")
    Bill.objects.exclude(status__in=["issued", "paid"]).delete()
    Bill.objects.filter(status="issued").update(status="open")


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0002_own_table_names"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="postpaidbill", name="one_bill_per_period"),
        migrations.RenameModel(old_name="PostpaidBill", new_name="Bill"),
        migrations.RenameField(model_name="bill", old_name="amount_minor", new_name="due_minor"),
        migrations.AlterField(
            model_name="bill",
            name="status",
            field=models.CharField(max_length=10, verbose_name="status"),
        ),
        migrations.AlterField(
            model_name="bill",
            name="issued_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="issued at"),
        ),
        migrations.AddField(
            model_name="bill",
            name="number",
            field=models.CharField(default="", max_length=30, verbose_name="number"),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="bill",
            name="total_minor",
            field=models.BigIntegerField(default=0, verbose_name="total (minor units)"),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="bill",
            name="unpaid_minor",
            field=models.BigIntegerField(default=0, verbose_name="unpaid (minor units)"),
        ),
        migrations.AddField(
            model_name="bill",
            name="created_at",
            field=models.DateTimeField(
                auto_now_add=True, default=django.utils.timezone.now, verbose_name="created at"
            ),
            preserve_default=False,
        ),
        migrations.RunPython(statements_to_bills, bills_to_statements),
    ]
