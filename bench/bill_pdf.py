"""Bill PDF throughput: single bills, a run as one PDF file, a run as a zip of PDFs.

    uv run python bench/bill_pdf.py [--bills 500] [--workers 2] [--language zh-hans]
        [--options 40]

No database: the bills are the sample bill of ``meterpay.apps.billing.printing`` with varied
numbers (bill number, customer, readings, amounts), printed with the default template. Django
gets a minimal configuration (the bill template engine needs settings, not apps). It prints,
with bytes per bill:

1. single-bill PDFs/s: ``bill_pdf`` for each bill, one after the other, one process;
2. run file bills/s: ``bills_pdf``, every bill in one PDF file (each bill laid out as its own
   document, 25 at a time, the chunks joined), in this process and with ``--workers``;
3. the alternative for (2), timed for comparison on the first 100 bills: one HTML document
   holding every bill, a page break before each (its page counters run over the whole file
   and it holds every page in memory, so it is not used);
4. zip bills/s: ``bills_zip`` with one worker and with ``--workers`` worker processes;
5. with ``--options N``: N single bills with other ``write_pdf`` options, and with the whole
   CJK font instead of the compact copy, the ways interleaved bill by bill.

Measured figures, the machine and the command: docs/bills-printing.md, "Performance".
"""

from __future__ import annotations

import argparse
import copy
import io
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))

import django  # noqa: E402
from django.conf import settings  # noqa: E402

if not settings.configured:
    settings.configure(USE_TZ=True, TIME_ZONE="Asia/Shanghai", LANGUAGE_CODE="zh-hans")
django.setup()

from meterpay.apps.billing import printing  # noqa: E402
from meterpay.apps.billing.printing import BillContext  # noqa: E402

CENT = Decimal("0.01")
CUSTOMERS = {
    "zh-hans": ["星河咖啡", "鲜果时光", "云间书店", "山野面馆", "晨光文具", "锦绣服饰", "悦动健身"],
    "en": ["Galaxy Coffee", "Fresh Fruit Time", "Cloud Books", "Mountain Noodles", "Sunrise"],
}


def _money(value: Decimal) -> str:
    return f"{value.quantize(CENT, ROUND_HALF_UP):,.2f}"


def _number(text: str) -> Decimal:
    return Decimal(text.replace(",", ""))


def varied_contexts(language: str, count: int, seed: int = 7) -> list[BillContext]:
    """``count`` sample bills with their own number, customer, readings and amounts."""
    rng = random.Random(seed)
    base = printing.sample_context(language)
    contexts = []
    for i in range(count):
        context = copy.deepcopy(base)
        bill = context["bill"]
        bill["number"] = f"BL-2025-06-{i + 1:06d}"
        context["customer"]["name"] = rng.choice(CUSTOMERS[language])
        context["account"]["number"] = f"AC-{rng.randrange(1, 99999):07d}"
        context["account"]["rooms"] = f"A-{rng.randrange(1, 6)}F-{rng.randrange(101, 140)}"
        for meter in context["meters"]:
            previous = _number(meter["previous_reading"]) + rng.randrange(0, 50000)
            used = (_number(meter["reading"]) - _number(meter["previous_reading"])) * Decimal(
                rng.uniform(0.4, 1.8)
            ).quantize(CENT)
            meter["previous_reading"] = _money(previous)
            meter["reading"] = _money(previous + used)
            meter["consumption"] = _money(used * _number(meter["multiplier"]))
        total = Decimal(0)
        for section in context["sections"]:
            subtotal = Decimal(0)
            for line in section["lines"]:
                factor = Decimal(rng.uniform(0.5, 1.6)).quantize(Decimal("0.001"))
                amount = (_number(line["amount"]) * factor).quantize(CENT, ROUND_HALF_UP)
                line["amount"] = _money(amount)
                if not line["unit_price"].endswith("%"):
                    line["quantity"] = _money(_number(line["quantity"]) * factor)
                subtotal += amount
            section["subtotal"] = _money(subtotal)
            total += subtotal
        paid = (total * Decimal(rng.choice([0, 0.3, 0.5, 1]))).quantize(CENT)
        bill["total"], bill["paid"] = _money(total), _money(paid)
        bill["outstanding"] = _money(total - paid)
        contexts.append(context)
    return contexts


def _cpu_ticks() -> tuple[int, int]:
    """(idle, total) ticks of all CPUs since boot; (0, 0) where there is no /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except OSError:
        return 0, 0
    return fields[3] + fields[4], sum(fields)


class Busy:
    """How busy the whole machine was (all processes, all CPUs) since the last ``read``."""

    def __init__(self) -> None:
        self.idle, self.total = _cpu_ticks()

    def read(self) -> str:
        idle, total = _cpu_ticks()
        idle_spent, spent = idle - self.idle, total - self.total
        self.idle, self.total = idle, total
        return f"machine {100 * (1 - idle_spent / spent):3.0f}% busy" if spent else ""


#: The CPU seconds of this process in the last ``timed`` call (workers not counted).
cpu_spent = [0.0]


def timed(action: Callable[[], object]) -> tuple[float, object]:
    """Wall seconds of ``action`` and its result; its CPU seconds go to ``cpu_spent``."""
    started, cpu = time.perf_counter(), time.process_time()
    result = action()
    cpu_spent[0] = time.process_time() - cpu
    return time.perf_counter() - started, result


def pdf_pages(pdf: bytes) -> int | str:
    """The pages of a PDF, as pdfinfo counts them ("?" without pdfinfo)."""
    pdfinfo = shutil.which("pdfinfo")
    if pdfinfo is None:
        return "?"
    with tempfile.NamedTemporaryFile(suffix=".pdf") as file:
        file.write(pdf)
        file.flush()
        info = subprocess.run(  # noqa: S603 - pdfinfo on a file of ours, fixed arguments
            [pdfinfo, file.name], capture_output=True, text=True
        ).stdout
    found = re.search(r"^Pages:\s+(\d+)", info, re.MULTILINE)
    return int(found[1]) if found else "?"


def one_html_run(source: str, contexts: list[BillContext]) -> bytes:
    """Every bill in one HTML document, a page break before each (the alternative to (2))."""
    bodies = []
    for context in contexts:
        html = printing.bill_html(source=source, context=context)
        body = html[html.index("<body>") + len("<body>") : html.rindex("</body>")]
        bodies.append(f'<section style="break-before: page">{body}</section>')
    document = "<!DOCTYPE html><html><body>" + "".join(bodies) + "</body></html>"
    with printing._rendering() as cache:
        pdf: bytes = printing.HTML(string=document, url_fetcher=printing._FETCHER).write_pdf(
            font_config=printing._FONTS, stylesheets=[printing._stylesheet()], cache=cache
        )
    return pdf


def options_compared(
    source: str, contexts: list[BillContext]
) -> list[tuple[str, tuple[float, float, float]]]:
    """Median wall seconds, mean CPU seconds and mean bytes per bill of each way to print."""
    whole_fonts = printing.FontConfiguration()  # without the compact copy of the font
    whole_css = printing.CSS(
        string=(printing.TEMPLATE_DIR / "bill.css").read_text(encoding="utf-8"),
        font_config=whole_fonts,
        url_fetcher=printing._FETCHER,
    )

    def with_options(options: dict[str, object]) -> Callable[[BillContext], bytes]:
        def pdf(context: BillContext) -> bytes:
            saved = dict(printing.PDF_OPTIONS)
            printing.PDF_OPTIONS.update(options)
            try:
                return printing.bill_pdf(source=source, context=context)
            finally:
                printing.PDF_OPTIONS.clear()
                printing.PDF_OPTIONS.update(saved)

        return pdf

    def whole_font(context: BillContext) -> bytes:
        html = printing.HTML(
            string=printing.bill_html(source=source, context=context),
            url_fetcher=printing._FETCHER,
        )
        document = html.render(font_config=whole_fonts, stylesheets=[whole_css], cache={})
        pdf: bytes = document.write_pdf(**printing.PDF_OPTIONS)
        return pdf

    variants: dict[str, Callable[[BillContext], bytes]] = {
        "default": with_options({}),
        "uncompressed_pdf": with_options({"uncompressed_pdf": True}),
        "optimize_images": with_options({"optimize_images": True}),
        "hinting": with_options({"hinting": True}),
        "whole CJK font": whole_font,
    }
    whole_font(contexts[0])  # warm-up
    runs: dict[str, list[tuple[float, float, int]]] = {label: [] for label in variants}
    for context in contexts:
        for label, pdf in variants.items():
            seconds, result = timed(lambda p=pdf, c=context: p(c))
            runs[label].append((seconds, cpu_spent[0], len(result)))  # type: ignore[arg-type]
    return [
        (
            label,
            (
                statistics.median(t for t, _, _ in run),
                statistics.mean(c for _, c, _ in run),
                statistics.mean(b for _, _, b in run),
            ),
        )
        for label, run in runs.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bills", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--language", default="zh-hans", choices=printing.LANGUAGES)
    parser.add_argument("--options", type=int, default=0, metavar="N")
    args = parser.parse_args()

    source = printing.default_template(args.language)
    contexts = varied_contexts(args.language, args.bills)
    print(
        f"{args.bills} bills ({args.language}), Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    seconds, _ = timed(lambda: printing.bill_pdf(source=source, context=contexts[0]))
    print(f"first bill (font copy, stylesheet, warm-up): {seconds:.2f} s")
    busy = Busy()  # this process alone keeps one CPU busy: 50% of a 2-CPU machine

    # 1. single bills
    times, sizes, cpu = [], [], 0.0
    for context in contexts:
        seconds, pdf = timed(lambda c=context: printing.bill_pdf(source=source, context=c))
        times.append(seconds)
        sizes.append(len(pdf))  # type: ignore[arg-type]
        cpu += cpu_spent[0]
    print(
        f"1. single-bill PDFs: {len(times) / sum(times):6.1f} /s   median "
        f"{statistics.median(times) * 1000:5.1f} ms, CPU {cpu / len(times) * 1000:5.1f} ms/bill, "
        f"{statistics.mean(sizes) / 1000:6.1f} kB/bill, {busy.read()}"
    )

    # 2. the run as one file
    seconds, pdf = timed(lambda: printing.bills_pdf(source=source, contexts=contexts))
    assert isinstance(pdf, bytes)
    print(
        f"2. run file:         {len(contexts) / seconds:6.1f} bills/s ({seconds:.1f} s), CPU "
        f"{cpu_spent[0] / len(contexts) * 1000:5.1f} ms/bill, "
        f"{len(pdf) / len(contexts) / 1000:6.1f} kB/bill, {pdf_pages(pdf)} pages, {busy.read()}"
    )

    if args.workers > 1:
        seconds, pdf = timed(
            lambda: printing.bills_pdf(source=source, contexts=contexts, workers=args.workers)
        )
        assert isinstance(pdf, bytes)
        print(
            f"2. run file, {args.workers} workers: {len(contexts) / seconds:6.1f} bills/s "
            f"({seconds:.1f} s, workers started included), {pdf_pages(pdf)} pages, {busy.read()}"
        )

    # 3. the alternative: one HTML document (at most 100 bills: it holds every page in memory)
    some = contexts[:100]
    seconds, pdf = timed(lambda: one_html_run(source, some))
    assert isinstance(pdf, bytes)
    print(
        f"3. one HTML document:{len(some) / seconds:6.1f} bills/s ({len(some)} bills, "
        f"{seconds:.1f} s), CPU {cpu_spent[0] / len(some) * 1000:5.1f} ms/bill, "
        f"{len(pdf) / len(some) / 1000:6.1f} kB/bill, {pdf_pages(pdf)} pages, {busy.read()}"
    )

    # 4. zip files
    for workers in sorted({1, args.workers}):
        seconds, archive = timed(
            lambda w=workers: printing.bills_zip(source=source, contexts=contexts, workers=w)
        )
        assert isinstance(archive, bytes)
        with zipfile.ZipFile(io.BytesIO(archive)) as opened:
            files = len(opened.namelist())
        print(
            f"4. zip, {workers} worker(s):  {len(contexts) / seconds:6.1f} bills/s "
            f"({seconds:.1f} s, workers started included), {files} files, "
            f"{len(archive) / len(contexts) / 1000:6.1f} kB/bill, {busy.read()}"
        )

    # 5. write_pdf options and the whole font, interleaved bill by bill (fair under load)
    if args.options:
        for label, (seconds, cpu, size) in options_compared(source, contexts[: args.options]):
            print(
                f"5. {label:18s} {1 / seconds:6.1f} PDFs/s, median {seconds * 1000:5.1f} ms, "
                f"CPU {cpu * 1000:5.1f} ms/bill, {size / 1000:6.1f} kB/bill"
            )
        print(f"   ({busy.read()})")


if __name__ == "__main__":
    main()
