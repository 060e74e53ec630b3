"""Printed bills from stored bills, print templates, branding, and the month-end workbooks."""

from __future__ import annotations

import io
import shutil
import subprocess
from datetime import date
from typing import Any

import pytest
from openpyxl import load_workbook

from meterpay.apps.billing.bills import bill_pay
from meterpay.apps.billing.documents import (
    bill_branding_save,
    bill_context,
    bill_pdf_bytes,
    bill_template_preview_html,
    bill_template_save,
    money,
    run_pdf_bytes,
    template_for,
)
from meterpay.apps.billing.exports import arrears_rows, arrears_xlsx, payments_xlsx, safe_text
from meterpay.apps.billing.models import BillTemplate
from meterpay.apps.billing.printing import TemplateProblem, default_template
from meterpay.apps.billing.runs import bill_run_confirm, bill_run_issue
from meterpay.apps.customers.models import Customer
from tests.billing.test_month_end import Mall

pytestmark = pytest.mark.django_db

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\xa5\xf7"
    b"\xd3\xb5\x00\x00\x00\x00IEND\xaeB`\x82"
)


@pytest.fixture
def issued(org: Any) -> Mall:
    mall = Mall(org)
    mall.issued_run = mall.run()
    bill_run_confirm(actor="t", run=mall.issued_run)
    bill_run_issue(actor="t", run=mall.issued_run)
    return mall


def pdf_text(pdf: bytes) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    done = subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True
    )
    return done.stdout.decode()


def test_money_is_formatted_from_minor_units() -> None:
    assert money(123456) == "1,234.56"
    assert money(-5) == "-0.05"
    assert money(0) == "0.00"


def test_a_stored_bill_prints_with_its_lines_shares_and_readings(issued: Mall) -> None:
    bill = issued.issued_run.bills.get(account=issued.shop_a)
    context = bill_context(bill, "en")
    assert context["bill"]["number"] == bill.number
    assert context["bill"]["total"] == money(bill.total_minor)
    titles = [section["title"] for section in context["sections"]]
    assert "Rent and fees" in titles and "Public-area share" in titles
    assert [s["ratio"] for s in context["shares"]] == ["62.50%", "66.67%"]  # 50:30 area, 300:150
    assert context["meters"][0]["consumption"] == "300.00"
    text = pdf_text(bill_pdf_bytes(bill=bill, language="zh-hans"))
    assert bill.number in text and issued.shop_a.customer.name in text
    assert money(bill.total_minor) in text


def test_a_run_prints_as_one_file(issued: Mall) -> None:
    pdf = run_pdf_bytes(run=issued.issued_run, language="en")
    text = pdf_text(pdf)
    for bill in issued.issued_run.bills.all():
        assert bill.number in text


def test_templates_that_do_not_compile_are_refused_and_nothing_is_written(org: Any) -> None:
    with pytest.raises(TemplateProblem, match="line 2"):
        bill_template_save(
            actor="t",
            organisation_id=org.org.pk,
            values={
                "name": "Mine",
                "language": "en",
                "body": "<p>\n{% if bill.number %}\n</p>",
                "is_default": True,
            },
        )
    with pytest.raises(TemplateProblem):
        bill_template_preview_html(source="{% load static %}", language="en")
    assert not BillTemplate.objects.exists()
    assert template_for(org.org.pk, "en") == default_template("en")


def test_an_organisations_default_template_and_branding_are_used(issued: Mall) -> None:
    org = issued.org.org
    body = default_template("en").replace("<body", "<body data-mine='1'", 1)
    bill_template_save(
        actor="t",
        organisation_id=org.pk,
        values={"name": "Ours", "language": "en", "body": body, "is_default": True},
    )
    assert template_for(org.pk, "en") == body
    assert "data-mine" in bill_template_preview_html(source=body, language="en")
    with pytest.raises(TemplateProblem, match="PNG"):
        bill_branding_save(
            actor="t", organisation_id=org.pk, values={}, logo=b"x", logo_type="text/html"
        )
    bill_branding_save(
        actor="t",
        organisation_id=org.pk,
        values={"address": "1 Mall Road", "bank_account": "ICBC 6222 0000"},
        logo=PNG,
        logo_type="image/png",
        seal=PNG,
        seal_type="image/png",
    )
    bill = issued.issued_run.bills.get(account=issued.shop_b)
    context = bill_context(bill, "en")
    assert context["organisation"]["logo"].startswith("data:image/png;base64,")
    assert context["organisation"]["address"] == "1 Mall Road"


def test_workbooks_escape_formulas_and_hold_exact_amounts(issued: Mall) -> None:
    assert safe_text("=HYPERLINK()") == "'=HYPERLINK()"
    assert safe_text("+1") == "'+1" and safe_text("@x") == "'@x" and safe_text("-2") == "'-2"
    assert safe_text("Shop B") == "Shop B"
    Customer.objects.filter(pk=issued.shop_b.customer_id).update(name="=cmd|' /C calc'!A0")
    rows = arrears_rows(organisation_id=issued.org.org.pk, today=date(2026, 12, 20))
    assert len(rows) == 2
    book = load_workbook(
        io.BytesIO(arrears_xlsx(organisation_id=issued.org.org.pk, today=date(2026, 12, 20)))
    )
    sheet = book.active
    names = [row[1].value for row in sheet.iter_rows(min_row=2)]
    assert "'=cmd|' /C calc'!A0" in names
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)
    unpaid = sorted(row[8].value for row in sheet.iter_rows(min_row=2))
    bills = issued.issued_run.bills.order_by("unpaid_minor")
    assert unpaid == [b.unpaid_minor / 100 for b in bills]

    b = issued.issued_run.bills.get(account=issued.shop_b)
    bill_pay(actor="t", bill=b, amount="100.00", channel="cash", idempotency_key="w1")
    a = issued.issued_run.bills.get(account=issued.shop_a)
    bill_pay(actor="t", bill=a, amount="12.34", channel="bank_transfer", idempotency_key="w2")
    book = load_workbook(
        io.BytesIO(
            payments_xlsx(
                organisation_id=issued.org.org.pk, start=date(2026, 1, 1), end=date(2027, 12, 31)
            )
        )
    )
    amounts = sorted(row[5].value for row in book.active.iter_rows(min_row=2))
    assert amounts == [12.34, 100.0]
