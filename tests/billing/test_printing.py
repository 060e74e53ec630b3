"""Bill print templates: the safe template language, the default templates, PDFs, runs, zips.

No database: a bill is printed from a bill context (plain formatted strings).
"""

from __future__ import annotations

import copy
import io
import logging
import re
import shutil
import socket
import subprocess
import zipfile
from pathlib import Path

import pytest

from meterpay.apps.billing import printing
from meterpay.apps.billing.printing import (
    BillContext,
    TemplateProblem,
    bill_html,
    bill_pdf,
    bills_pdf,
    bills_pdf_each,
    bills_zip,
    default_template,
    sample_context,
    template_check,
)

HAVE_POPPLER = shutil.which("pdftotext") is not None and shutil.which("pdfinfo") is not None
needs_poppler = pytest.mark.skipif(
    not HAVE_POPPLER, reason="pdftotext/pdfinfo (poppler-utils) are not installed"
)


def pdf_text(pdf: bytes, tmp_path: Path, page: int | None = None) -> str:
    """The text of a PDF (or of one page), runs of blanks made one space.

    pdftotext leaves out the spaces between Chinese characters and digits ("第1/1页").
    """
    path = tmp_path / "bill.pdf"
    path.write_bytes(pdf)
    pages = ["-f", str(page), "-l", str(page)] if page else []
    text = subprocess.run(
        ["pdftotext", *pages, str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    return re.sub(r"\s+", " ", text)


def pdf_pages(pdf: bytes, tmp_path: Path) -> int:
    path = tmp_path / "pages.pdf"
    path.write_bytes(pdf)
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)", info, re.MULTILINE)[1])


def bill(number: str, name: str = "星河咖啡", language: str = "zh-hans") -> BillContext:
    context = sample_context(language)
    context["bill"]["number"] = number
    context["customer"]["name"] = name
    return context


# --- templates -------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_default_templates_pass_the_check(language):
    template_check(default_template(language))


def test_default_template_languages():
    assert default_template("zh-Hans") == default_template("zh_CN") == default_template("zh")
    assert 'lang="en"' in default_template("en-GB")
    with pytest.raises(ValueError, match="no default bill template"):
        default_template("fr")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("<p>\n{% if bill.total %}\n<b>x</b>", "line 2: {% if %} is not closed, add {% endif %}"),
        ("<p>\n\n{{ bill.total|nosuchfilter }}", "line 3: unknown filter |nosuchfilter"),
        ("{% load static %}", "line 1: {% load %} is not allowed in bill templates"),
        ("<p>\n{% include 'x.html' %}", "line 2: {% include %} is not allowed in bill templates"),
        ("{% debug %}", "line 1: {% debug %} is not allowed in bill templates"),
        ("{% extends 'base.html' %}", "line 1: {% extends %} is not allowed in bill templates"),
        ("{% url 'home' %}", "line 1: {% url %} is not allowed in bill templates"),
        ("{% csrf_token %}", "line 1: {% csrf_token %} is not allowed in bill templates"),
        ("{% ssi '/etc/passwd' %}", "line 1: {% ssi %} is not allowed in bill templates"),
        ("{% lorem %}", "line 1: {% lorem %} is not allowed in bill templates"),
        ("{% autoescape off %}x{% endautoescape %}", "line 1: {% autoescape %} is not allowed"),
        ("{{ customer.name|safe }}", "line 1: the filter |safe is not allowed in bill templates"),
        ("a\n{% endif %}", "line 2: {% endif %} has no opening tag"),
        ("{% frobnicate %}", "line 1: unknown tag {% frobnicate %}"),
        (
            "\n{{ bill.__class__ }}",
            "line 2: Variables and attributes may not begin with underscores",
        ),
        ("{% for a, b in meters %}{% endfor %}", "line 1: Need 2 values to unpack"),
    ],
)
def test_a_broken_template_is_a_template_problem_with_its_line(source, message):
    with pytest.raises(TemplateProblem) as problem:
        template_check(source)
    text = str(problem.value)
    assert text.startswith(message), text
    assert "\n" not in text


def test_an_empty_if_is_a_template_problem():
    with pytest.raises(TemplateProblem, match=r"^line 3: "):
        template_check("<p>\n</p>\n{% if %}x")


def test_a_template_problem_is_a_value_error():
    assert issubclass(TemplateProblem, ValueError)


def test_values_are_escaped():
    context = bill("BL-1", name="<script>alert(1)</script>")
    html = bill_html(source=default_template("en"), context=context)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in html


def test_the_template_sees_a_copy_of_plain_data():
    context = sample_context("en")
    original = copy.deepcopy(context)
    html = bill_html(source="{{ meters.clear }}{{ bill.popitem }}{{ sections }}", context=context)
    assert context == original
    assert "&#x27;" in html  # the list is shown as escaped text


def test_a_context_of_objects_is_refused():
    context = sample_context("en")
    context["bill"]["total"] = object()  # type: ignore[typeddict-item]
    with pytest.raises(TypeError, match="a bill context holds text"):
        bill_html(source="{{ bill.total }}", context=context)


def test_allowed_tags_and_filters_work():
    source = (
        "{% with name=customer.name %}{{ name|upper }}{% endwith %}|"
        "{% for s in sections %}{{ s.title|lower }}{% if not forloop.last %},{% endif %}{% endfor %}|"
        "{{ bill.replaces|default:'none' }}|{{ bill.notes|truncatechars:9 }}|"
        "{% firstof bill.replaces bill.number %}|{% now 'Y' %}|{{ meters|length }}"
    )
    html = bill_html(source=source, context=sample_context("en"))
    assert html.startswith("GALAXY COFFEE|electricity,water,rent and property,")
    assert "|none|Energy i…|BL-2025-06-000123|20" in html
    assert html.endswith("|2")


def test_a_credit_note_says_which_bill_it_corrects():
    for language, text in (("zh-hans", "冲减并更正账单"), ("en", "This credit note corrects bill")):
        context = sample_context(language)
        context["bill"].update(kind="credit_note", replaces="BL-2025-05-000077")
        html = bill_html(source=default_template(language), context=context)
        assert text in html
        assert "<strong>BL-2025-05-000077</strong>" in html
    context = sample_context("en")
    context["bill"]["replaces"] = "BL-2025-05-000077"
    assert "This bill replaces bill" in bill_html(source=default_template("en"), context=context)
    assert "replaces bill" not in bill_html(source=default_template("en"), context=bill("X"))


# --- PDFs ------------------------------------------------------------------------------


@needs_poppler
def test_a_bill_pdf_holds_the_customer_the_number_and_the_total(tmp_path):
    pdf = bill_pdf(source=default_template("zh-hans"), context=sample_context("zh-hans"))
    assert pdf.startswith(b"%PDF-")
    text = pdf_text(pdf, tmp_path)
    for expected in ("星河咖啡", "BL-2025-06-000123", "33,959.77", "23,959.77", "A座-1F-101"):
        assert expected in text
    assert "第1/1页" in text.replace(" ", "")
    assert pdf_pages(pdf, tmp_path) == 1


@needs_poppler
def test_the_english_bill_pdf(tmp_path):
    pdf = bill_pdf(source=default_template("en"), context=sample_context("en"))
    text = pdf_text(pdf, tmp_path)
    for expected in ("Galaxy Coffee", "BL-2025-06-000123", "33,959.77", "Amount due", "Page 1 / 1"):
        assert expected in text
    assert pdf_pages(pdf, tmp_path) == 1


@needs_poppler
def test_a_long_bill_numbers_its_own_pages(tmp_path):
    context = sample_context("zh-hans")
    context["sections"][0]["lines"] = context["sections"][0]["lines"] * 8
    pdf = bill_pdf(source=default_template("zh-hans"), context=context)
    assert pdf_pages(pdf, tmp_path) == 2
    assert "第1/2页" in pdf_text(pdf, tmp_path, page=1).replace(" ", "")
    assert "第2/2页" in pdf_text(pdf, tmp_path, page=2).replace(" ", "")


@needs_poppler
def test_a_run_is_one_pdf_with_each_bill_on_its_own_pages(tmp_path, monkeypatch):
    monkeypatch.setattr(printing, "RUN_CHUNK", 2)  # three chunks, joined
    contexts = [
        bill(f"BL-RUN-{i}", name=name)
        for i, name in enumerate(["甲店", "乙店", "丙店", "丁店", "戊店"])
    ]
    pdf = bills_pdf(source=default_template("zh-hans"), contexts=contexts)
    assert pdf_pages(pdf, tmp_path) == 5
    for page, (number, name) in enumerate(
        [("BL-RUN-0", "甲店"), ("BL-RUN-1", "乙店"), ("BL-RUN-2", "丙店"), ("BL-RUN-3", "丁店")],
        start=1,
    ):
        text = pdf_text(pdf, tmp_path, page=page)
        assert number in text
        assert name in text
        assert "第1/1页" in text.replace(" ", "")


@needs_poppler
def test_a_run_with_a_template_per_bill(tmp_path):
    long = sample_context("en")
    long["sections"][0]["lines"] = long["sections"][0]["lines"] * 8
    items = [
        (default_template("zh-hans"), bill("BL-A")),
        (default_template("en"), long),
        (default_template("en"), bill("BL-C", name="Cloud Books", language="en")),
    ]
    pdf = bills_pdf_each(items=items)
    assert pdf_pages(pdf, tmp_path) == 4
    assert "账单号" in pdf_text(pdf, tmp_path, page=1)
    assert "Page 2 / 2" in pdf_text(pdf, tmp_path, page=3)
    assert "Cloud Books" in pdf_text(pdf, tmp_path, page=4)


def test_an_empty_run_is_refused():
    with pytest.raises(ValueError, match="no bills"):
        bills_pdf(source=default_template("en"), contexts=[])


def test_a_broken_template_fails_before_anything_is_laid_out():
    with pytest.raises(TemplateProblem, match="load"):
        bills_pdf(source="{% load static %}", contexts=[sample_context("en")])
    with pytest.raises(TemplateProblem, match="load"):
        bills_zip(source="{% load static %}", contexts=[sample_context("en")], workers=2)


def test_a_zip_holds_one_pdf_per_bill_named_by_number():
    contexts = [bill("BL-2025-06-000001"), bill("BL-2025-06-000002"), bill("BL/../etc")]
    contexts.append(bill("BL-2025-06-000001"))
    archive = bills_zip(source=default_template("zh-hans"), contexts=contexts)
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        names = opened.namelist()
        assert names == [
            "BL-2025-06-000001.pdf",
            "BL-2025-06-000002.pdf",
            "BL_.._etc.pdf",
            "BL-2025-06-000001-2.pdf",
        ]
        for name in names:
            assert opened.read(name).startswith(b"%PDF-")


def test_zip_names_from_the_caller():
    archive = bills_zip(
        source=default_template("en"),
        contexts=[bill("BL-9", name="Cloud Books", language="en")],
        name=lambda c: f"{c['customer']['name']} {c['bill']['number']}",
    )
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        assert opened.namelist() == ["Cloud Books BL-9.pdf"]


@pytest.mark.e2e  # starts worker processes
@needs_poppler
def test_a_zip_and_a_run_made_by_worker_processes(tmp_path, monkeypatch):
    monkeypatch.setattr(printing, "MIN_BILLS_PER_WORKER", 1)
    contexts = [bill(f"BL-W-{i}") for i in range(4)]
    archive = bills_zip(source=default_template("zh-hans"), contexts=contexts, workers=2)
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        assert opened.namelist() == [f"BL-W-{i}.pdf" for i in range(4)]
        assert "BL-W-3" in pdf_text(opened.read("BL-W-3.pdf"), tmp_path)
    pdf = bills_pdf(source=default_template("zh-hans"), contexts=contexts, workers=2)
    assert pdf_pages(pdf, tmp_path) == 4
    assert "BL-W-2" in pdf_text(pdf, tmp_path, page=3)


# --- nothing is fetched ------------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"a bill tried to reach the network: {args}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_a_template_cannot_make_the_server_fetch_anything(no_network, caplog):
    source = default_template("en").replace(
        "</body>",
        '<img src="http://example.com/x.png"><img src="file:///etc/hostname">'
        '<link rel="stylesheet" href="https://example.com/x.css">'
        "<style>@import url(http://example.com/y.css); "
        "body { background: url(ftp://example.com/z.png) }</style></body>",
    )
    with caplog.at_level(logging.WARNING, logger="weasyprint"):
        pdf = bill_pdf(source=source, context=sample_context("en"))
    assert pdf.startswith(b"%PDF-")
    refused = caplog.text
    for url in ("http://example.com/x.png", "file:///etc/hostname", "https://example.com/x.css"):
        assert f"not '{url}'" in refused


def test_the_fetcher_serves_data_uris_only():
    response = printing._FETCHER.fetch("data:text/plain;base64,aGVsbG8=")
    assert response.read() == b"hello"
    assert response.content_type == "text/plain"
    assert printing._FETCHER.fetch("data:,a%20b").read() == b"a b"
    for url in ("http://example.com/", "https://example.com/", "file:///etc/passwd", "ftp://x/"):
        with pytest.raises(ValueError, match="only use data: URIs"):
            printing._FETCHER.fetch(url)


def test_the_sample_images_are_data_uris():
    organisation = sample_context("zh-hans")["organisation"]
    assert organisation["logo"].startswith("data:image/svg+xml;base64,")
    assert organisation["seal"].startswith("data:image/svg+xml;base64,")


# --- the compact font ---------------------------------------------------------------------


@needs_poppler
def test_bills_are_printed_with_the_compact_font_and_fall_back_for_rare_characters(tmp_path):
    if not printing._compact_font_faces():
        pytest.skip("no compact copy of the CJK font could be made here")
    context = sample_context("zh-hans")
    context["customer"]["name"] = "堃燊咖啡"  # not in GB 2312: printed with the whole font
    pdf = bill_pdf(source=default_template("zh-hans"), context=context)
    assert "堃燊咖啡" in pdf_text(pdf, tmp_path)
    path = tmp_path / "fonts.pdf"
    path.write_bytes(pdf)
    fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True).stdout
    assert "Meterpay-Bill-Sans" in fonts
    assert "Noto-Sans-CJK-SC" in fonts
