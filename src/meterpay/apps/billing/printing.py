"""Bill print templates: a safe template language, the default templates, HTML and PDF.

A bill is printed from a **bill context** (``BillContext``): plain dicts, lists and strings
that the caller has already formatted (money with two decimals and thousands separators,
dates as text). A manager edits the template of the bills of an organisation; the template
is Django's template language run by a dedicated engine that knows only a vetted set of tags
and filters, escapes every value, loads no files and sees only the context. Rendering goes
through WeasyPrint, which is given a URL fetcher that serves ``data:`` URIs only: a template
cannot make the server fetch anything.

Public functions: ``template_check``, ``default_template``, ``sample_context``, ``bill_html``,
``bill_pdf``, ``bills_pdf`` / ``bills_pdf_each`` (a whole run as one PDF file) and
``bills_zip`` / ``bills_zip_each`` (one PDF per bill in a zip file).
"""

# The Chinese text of the sample bill is written with full-width punctuation.
# ruff: noqa: RUF001

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import functools
import io
import logging
import math
import multiprocessing
import os
import re
import shutil
import subprocess
import threading
import zipfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict, cast
from urllib.parse import unquote_to_bytes

import pydyf  # type: ignore[import-untyped]
from django.template import Context, Engine, Library, Template, defaultfilters, defaulttags

# WeasyPrint ships no type information.
from weasyprint import CSS, HTML  # type: ignore[import-untyped]
from weasyprint.text.fonts import FontConfiguration  # type: ignore[import-untyped]
from weasyprint.urls import URLFetcher, URLFetcherResponse  # type: ignore[import-untyped]

logger = logging.getLogger(__name__)
# WeasyPrint logs every step of every document at INFO: not worth a line per bill.
if logging.getLogger("weasyprint.progress").level == logging.NOTSET:
    logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)

TEMPLATE_DIR = Path(__file__).resolve().parent / "print_templates"
#: The languages of the default templates.
LANGUAGES = ("zh-hans", "en")
#: A bill template longer than this is refused (the default ones are about 7,000 characters).
MAX_TEMPLATE_CHARS = 200_000


# --- The bill context: what the caller fills in -------------------------------------------


class OrganisationBlock(TypedDict):
    name: str
    address: str
    phone: str
    bank_account: str
    logo: str  # a data: URI (image/png, image/jpeg, image/svg+xml) or ""
    seal: str  # a data: URI or ""; printed over the signature area


class BillBlock(TypedDict):
    number: str
    kind: str  # "monthly", "payment_request", "final" or "credit_note"
    kind_label: str  # 月度账单 / Monthly bill, 付款通知, 结算单, 贷项通知 …
    status_label: str
    period_start: str
    period_end: str
    issued_on: str
    due_on: str  # "" when there is no due date (a credit note)
    currency: str  # "CNY"
    total: str
    paid: str
    outstanding: str
    replaces: str  # the number of the bill this one corrects or replaces, or ""
    notes: str  # several lines allowed


class CustomerBlock(TypedDict):
    name: str
    phone: str


class AccountBlock(TypedDict):
    number: str
    rooms: str
    site: str
    billing_mode_label: str


class MeterRow(TypedDict):
    address: str
    kind_label: str
    previous_reading: str
    reading: str
    multiplier: str
    consumption: str
    unit: str


class ChargeLine(TypedDict):
    label: str
    quantity: str
    unit: str
    unit_price: str
    amount: str


class ChargeSection(TypedDict):
    title: str
    lines: list[ChargeLine]
    subtotal: str


class ShareRow(TypedDict):
    group: str
    rule_label: str
    total_quantity: str
    unit: str
    ratio: str
    quantity: str
    amount: str


class PaymentBlock(TypedDict):
    instructions: str  # several lines allowed


class BillContext(TypedDict):
    organisation: OrganisationBlock
    bill: BillBlock
    customer: CustomerBlock
    account: AccountBlock
    meters: list[MeterRow]
    sections: list[ChargeSection]
    shares: list[ShareRow]
    payment: PaymentBlock


# --- The template language ------------------------------------------------------------------


class TemplateProblem(ValueError):
    """A bill template that does not compile or render, in one line for the manager."""


#: The tags a bill template may use (``{# … #}`` comments always work).
ALLOWED_TAGS = (
    "comment",
    "cycle",
    "filter",
    "firstof",
    "for",
    "if",
    "ifchanged",
    "now",
    "regroup",
    "resetcycle",
    "spaceless",
    "templatetag",
    "verbatim",
    "with",
)
#: The filters a bill template may use. Not ``safe``/``safeseq``: every value is escaped.
ALLOWED_FILTERS = (
    "add",
    "capfirst",
    "center",
    "cut",
    "default",
    "default_if_none",
    "dictsort",
    "dictsortreversed",
    "escape",
    "first",
    "force_escape",
    "join",
    "last",
    "length",
    "linebreaks",
    "linebreaksbr",
    "ljust",
    "lower",
    "make_list",
    "pluralize",
    "rjust",
    "slice",
    "title",
    "truncatechars",
    "truncatewords",
    "upper",
    "wordcount",
    "wordwrap",
    "yesno",
)
#: Tags a template author may know from elsewhere, refused by name.
_REFUSED_TAGS = frozenset(
    {
        "autoescape",
        "block",
        "blocktrans",
        "blocktranslate",
        "csrf_token",
        "debug",
        "extends",
        "get_current_language",
        "include",
        "load",
        "lorem",
        "partial",
        "partialdef",
        "querystring",
        "ssi",
        "static",
        "trans",
        "translate",
        "url",
        "widthratio",
    }
)


def _library() -> Library:
    library = Library()
    for tag in ALLOWED_TAGS:
        library.tags[tag] = defaulttags.register.tags[tag]
    for name in ALLOWED_FILTERS:
        library.filters[name] = defaultfilters.register.filters[name]
    return library


_LIBRARY = _library()


class _BillEngine(Engine):
    """Django's template engine with only the bill library as builtins and no loaders."""

    def get_template_builtins(self, builtins: list[str]) -> list[Library]:
        return [_LIBRARY]

    def get_template_libraries(self, libraries: dict[str, str]) -> dict[str, Library]:
        return {}


# debug=True keeps the line of an error raised while rendering.
_ENGINE = _BillEngine(loaders=[], debug=True, autoescape=True, string_if_invalid="")


def _error_line(exc: BaseException) -> int | None:
    token = getattr(exc, "token", None)
    if token is not None and getattr(token, "lineno", None):
        return int(token.lineno)
    debug = getattr(exc, "template_debug", None)
    if isinstance(debug, dict) and debug.get("line"):
        return int(debug["line"])
    return None


def _tag(name: str) -> str:
    return "{% " + name + " %}"


def _manager_message(exc: BaseException) -> str:
    """Django's error, phrased for someone who edits a bill template."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    line = _error_line(exc)
    if match := re.match(
        r"Invalid block tag on line (\d+): '([^']*)'(?:, expected (.+?))?\.", text
    ):
        line, tag, expected = int(match[1]), match[2], match[3]
        if tag in _REFUSED_TAGS or tag in defaulttags.register.tags:
            message = f"{_tag(tag)} is not allowed in bill templates"
        elif expected:
            wanted = " or ".join(_tag(t) for t in re.findall(r"'([^']+)'", expected))
            message = f"{_tag(tag)} is out of place here, expected {wanted}"
        elif tag.startswith("end") or tag in {"else", "elif", "empty"}:
            message = f"{_tag(tag)} has no opening tag"
        else:
            message = f"unknown tag {_tag(tag)}"
    elif match := re.match(
        r"Unclosed tag on line (\d+): '([^']*)'\. Looking for one of: (.+)\.", text
    ):
        line, tag = int(match[1]), match[2]
        closing = [t.strip() for t in match[3].split(",")][-1]
        message = f"{_tag(tag)} is not closed, add {_tag(closing)}"
    elif match := re.match(r"Invalid filter: '([^']*)'", text):
        name = match[1]
        if name in defaultfilters.register.filters:
            message = f"the filter |{name} is not allowed in bill templates"
        else:
            message = f"unknown filter |{name}"
    else:
        message = re.sub(r" on line \d+", "", text).rstrip(".")
    return f"line {line}: {message}" if line else message


@functools.lru_cache(maxsize=64)
def _compiled(source: str) -> Template:
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateProblem(f"the template is longer than {MAX_TEMPLATE_CHARS:,} characters")
    try:
        return Template(source, engine=_ENGINE)
    except Exception as exc:  # any compile error is the template's, not ours
        raise TemplateProblem(_manager_message(exc)) from exc


def _plain(value: object) -> Any:
    """A fresh copy made of dicts, lists and strings only: nothing of the caller's is reachable.

    The copy also means a template that calls a method (``{{ meters.clear }}``) only changes
    its own copy.
    """
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if value is None:
        return ""
    if isinstance(value, (bool, int)):
        return value
    raise TypeError(f"a bill context holds text, not {type(value).__name__}")


def bill_html(*, source: str, context: BillContext) -> str:
    """The bill's HTML from a bill template. Raises ``TemplateProblem``.

    The HTML holds the template's own markup as the manager wrote it: show it to a browser
    only in a sandboxed frame (or show the PDF).
    """
    template = _compiled(source)
    data = Context(_plain(context), autoescape=True)
    try:
        return str(template.render(data))
    except Exception as exc:  # a render error is the template's (the context is plain data)
        raise TemplateProblem(_manager_message(exc)) from exc


def template_check(source: str) -> None:
    """Raise ``TemplateProblem`` unless the template compiles and renders the sample bills."""
    for language in LANGUAGES:
        bill_html(source=source, context=sample_context(language))


def _language(language: str) -> str:
    code = language.strip().lower().replace("_", "-")
    if code.startswith("zh"):
        return "zh-hans"
    if code.startswith("en"):
        return "en"
    raise ValueError(f"no default bill template in {language!r} (there are: {LANGUAGES})")


@functools.cache
def default_template(language: str) -> str:
    """The source of the default bill template of ``language`` ("zh-hans" or "en")."""
    return (TEMPLATE_DIR / f"bill.{_language(language)}.html").read_text(encoding="utf-8")


# --- PDF: WeasyPrint, offline ---------------------------------------------------------------


class _DataOnlyFetcher(URLFetcher):  # type: ignore[misc]
    """Serves ``data:`` URIs and refuses everything else: a bill never reaches the network."""

    def __init__(self) -> None:
        super().__init__(allowed_protocols=("data",), fail_on_errors=False)

    def fetch(self, url: str, headers: object = None) -> URLFetcherResponse:
        if not url[:5].lower() == "data:":
            raise ValueError(f"bill templates may only use data: URIs, not {url[:80]!r}")
        header, comma, payload = url[5:].partition(",")
        if not comma:
            raise ValueError("a data: URI without a comma")
        media_type = header
        data = unquote_to_bytes(payload)
        if header.lower().endswith(";base64"):
            media_type = header[: -len(";base64")]
            data = base64.b64decode(data)
        return URLFetcherResponse(
            "data:", body=data, headers={"Content-Type": media_type or "text/plain"}
        )


_FETCHER = _DataOnlyFetcher()
_FONTS = FontConfiguration()
# WeasyPrint shares the font configuration; one bill is laid out at a time per process.
_LOCK = threading.RLock()
#: write_pdf options (measured in bench/bill_pdf.py).
PDF_OPTIONS: dict[str, Any] = {"optimize_images": False, "uncompressed_pdf": False}

#: The font family bills are printed with: a compact copy of ``SOURCE_FONT`` made when the
#: first bill is printed (see ``_compact_font_faces``). Templates may name it in their styles.
BILL_FONT = "Meterpay Bill Sans"
#: The installed font the compact copy is made of; bills fall back to it for characters the
#: copy lacks, and use it directly when no copy can be made.
SOURCE_FONT = "Noto Sans CJK SC"
#: The OpenType features the compact copy keeps (not the vertical, Japanese and Korean forms).
_COMPACT_FEATURES = (b"kern", b"liga", b"calt", b"ccmp", b"mark", b"palt", b"halt")
# hb_subset_flags_t and hb_subset_sets_t (hb-subset.h)
_HB_SUBSET_FLAGS_DESUBROUTINIZE = 0x4
_HB_SUBSET_SETS_LAYOUT_FEATURE_TAG = 6


def _compact_codepoints() -> list[int]:
    """Every character of GB 2312 and the Latin, punctuation and symbol blocks of a bill."""
    codepoints = set(range(0x20, 0x7F)) | set(range(0xA0, 0x250))
    for first, last in (
        (0x2000, 0x206F),  # general punctuation
        (0x20A0, 0x20CF),  # currency symbols
        (0x2100, 0x218F),  # letterlike symbols, number forms (℃, №, Ⅻ)
        (0x2190, 0x21FF),  # arrows
        (0x2200, 0x22FF),  # mathematical operators
        (0x2460, 0x24FF),  # enclosed alphanumerics (①)
        (0x2500, 0x25FF),  # box drawing, geometric shapes
        (0x3000, 0x303F),  # CJK symbols and punctuation
        (0x3200, 0x33FF),  # enclosed CJK letters, CJK compatibility (㎡, ㎥)
        (0xFF00, 0xFFEF),  # half-width and full-width forms
    ):
        codepoints.update(range(first, last + 1))
    for high in range(0xA1, 0xF8):
        for low in range(0xA1, 0xFF):
            try:
                codepoints.add(ord(bytes((high, low)).decode("gb2312")))
            except UnicodeDecodeError:
                continue
    return sorted(codepoints)


def _font_file(family: str, style: str) -> tuple[str, int]:
    """The file and face index fontconfig has for ``family`` in ``style``."""
    fc_match = shutil.which("fc-match")
    if fc_match is None:
        raise OSError("fc-match is not installed")
    found = subprocess.run(  # noqa: S603 (a fixed program, no shell)
        [fc_match, "--format=%{file}\n%{index}\n%{family}", f"{family}:style={style}"],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    ).stdout.split("\n")
    if len(found) < 3 or family not in found[2].split(","):
        raise OSError(f"{family} {style} is not installed")
    return found[0], int(found[1])


def _harfbuzz_subset(path: str, index: int, codepoints: Sequence[int]) -> bytes:
    """HarfBuzz's subset of a font file: the given characters, glyphs numbered afresh."""
    hb = ctypes.CDLL(ctypes.util.find_library("harfbuzz") or "libharfbuzz.so.0")
    hbs = ctypes.CDLL(ctypes.util.find_library("harfbuzz-subset") or "libharfbuzz-subset.so.0")
    pointer, uint = ctypes.c_void_p, ctypes.c_uint
    signatures: tuple[tuple[Any, Any, list[Any]], ...] = (
        (hb.hb_blob_create_from_file_or_fail, pointer, [ctypes.c_char_p]),
        (hb.hb_face_create, pointer, [pointer, uint]),
        (hb.hb_set_add, None, [pointer, ctypes.c_uint32]),
        (hb.hb_tag_from_string, ctypes.c_uint32, [ctypes.c_char_p, ctypes.c_int]),
        (hb.hb_face_reference_blob, pointer, [pointer]),
        (hb.hb_blob_get_data, pointer, [pointer, ctypes.POINTER(uint)]),
        (hb.hb_blob_destroy, None, [pointer]),
        (hb.hb_face_destroy, None, [pointer]),
        (hb.hb_set_clear, None, [pointer]),
        (hbs.hb_subset_input_create_or_fail, pointer, []),
        (hbs.hb_subset_input_unicode_set, pointer, [pointer]),
        (hbs.hb_subset_input_set, pointer, [pointer, uint]),
        (hbs.hb_subset_input_set_flags, None, [pointer, uint]),
        (hbs.hb_subset_input_destroy, None, [pointer]),
        (hbs.hb_subset_or_fail, pointer, [pointer, pointer]),
    )
    for function, restype, argtypes in signatures:
        function.restype, function.argtypes = restype, argtypes
    blob = hb.hb_blob_create_from_file_or_fail(path.encode())
    if not blob:
        raise OSError(f"HarfBuzz cannot read {path}")
    face = hb.hb_face_create(blob, index)
    subset_input = hbs.hb_subset_input_create_or_fail()
    subset = result = None
    try:
        if not subset_input:
            raise OSError("HarfBuzz cannot make a subset input")
        characters = hbs.hb_subset_input_unicode_set(subset_input)
        for codepoint in codepoints:
            hb.hb_set_add(characters, codepoint)
        features = hbs.hb_subset_input_set(subset_input, _HB_SUBSET_SETS_LAYOUT_FEATURE_TAG)
        hb.hb_set_clear(features)
        for feature in _COMPACT_FEATURES:
            hb.hb_set_add(features, hb.hb_tag_from_string(feature, -1))
        hbs.hb_subset_input_set_flags(subset_input, _HB_SUBSET_FLAGS_DESUBROUTINIZE)
        subset = hbs.hb_subset_or_fail(face, subset_input)
        if not subset:
            raise OSError(f"HarfBuzz cannot subset {path}")
        result = hb.hb_face_reference_blob(subset)
        length = uint()
        data = hb.hb_blob_get_data(result, ctypes.byref(length))
        if not data or length.value < 1024:
            raise OSError(f"HarfBuzz made an empty subset of {path}")
        return ctypes.string_at(data, length.value)
    finally:
        if result:
            hb.hb_blob_destroy(result)
        if subset:
            hb.hb_face_destroy(subset)
        if subset_input:
            hbs.hb_subset_input_destroy(subset_input)
        hb.hb_face_destroy(face)
        hb.hb_blob_destroy(blob)


def _compact_font_faces() -> str:
    """``@font-face`` rules of ``BILL_FONT``, a compact copy of ``SOURCE_FONT``; or "".

    WeasyPrint embeds a subset of each font in each PDF, but keeps the glyph numbers: with the
    whole CJK font (65,000 glyphs, 19 MB) that costs about 25 ms per face and PDF and 60 kB of
    empty glyph slots. The copy holds GB 2312 and the usual symbols (7,700 glyphs, numbered
    afresh), made with HarfBuzz in about 0.1 s per face. Characters outside it are printed
    with ``SOURCE_FONT`` (the next family in the stylesheet).
    """
    rules = []
    try:
        codepoints = _compact_codepoints()
        for style, weight in (("Regular", 400), ("Bold", 700)):
            data = _harfbuzz_subset(*_font_file(SOURCE_FONT, style), codepoints)
            encoded = base64.b64encode(data).decode("ascii")
            rules.append(
                f'@font-face {{ font-family: "{BILL_FONT}"; font-weight: {weight};'
                f" src: url(data:font/otf;base64,{encoded}); }}"
            )
    except (OSError, AttributeError, ValueError, subprocess.SubprocessError) as exc:
        logger.warning("bills are printed with the whole %s font (slower): %s", SOURCE_FONT, exc)
        return ""
    return "\n".join(rules)


@functools.cache
def _stylesheet() -> Any:
    """The base stylesheet of every bill template and the bill font, parsed once."""
    return CSS(
        string=_compact_font_faces()
        + "\n"
        + (TEMPLATE_DIR / "bill.css").read_text(encoding="utf-8"),
        font_config=_FONTS,
        url_fetcher=_FETCHER,
    )


def _document(source: str, context: BillContext, cache: dict[str, Any]) -> Any:
    html = HTML(string=bill_html(source=source, context=context), url_fetcher=_FETCHER)
    return html.render(font_config=_FONTS, stylesheets=[_stylesheet()], cache=cache)


@contextmanager
def _rendering() -> Iterator[dict[str, Any]]:
    """The lock and an image cache shared by the bills of one call (the same logo and seal)."""
    with _LOCK:
        yield {}


def bill_pdf(*, source: str, context: BillContext) -> bytes:
    """One bill as a PDF file. Raises ``TemplateProblem``."""
    with _rendering() as cache:
        pdf: bytes = _document(source, context, cache).write_pdf(**PDF_OPTIONS)
    return pdf


# A run is laid out RUN_CHUNK bills at a time (a laid-out page holds about 1.5 MB), each
# chunk written as PDF objects, and the chunks joined into one file: memory stays bounded
# and the chunks can be made by worker processes.
RUN_CHUNK = 25
#: Below this many bills per worker the bills are made in this process (starting costs).
MIN_BILLS_PER_WORKER = 20

# A reference "12 0 R" outside literal and hexadecimal strings (pydyf escapes parentheses).
_PDF_TOKENS = re.compile(
    rb"\((?:\\.|[^\\)])*\)|<[0-9A-Fa-f\s]*>|(?<![\w.+#/-])(\d+) (\d+) R\b", re.DOTALL
)


@dataclass
class _PdfPart:
    """The objects of a PDF as WeasyPrint wrote them, to be joined with others."""

    objects: list[tuple[bytes, bytes | None]] = field(default_factory=list)  # dict, stream
    pages: int = 0  # the number of its /Pages object
    page_count: int = 0

    def capture(self, document: Any, pdf: Any) -> None:
        """A ``write_pdf`` finisher: keep the objects (then leave little for pydyf to write)."""
        for number, item in enumerate(pdf.objects[1:], start=1):
            if item.number != number:
                raise RuntimeError("pydyf no longer numbers its objects in order")
            data: bytes = item.data
            if isinstance(item, pydyf.Stream):
                head, _, rest = data.partition(b"\nstream\n")
                self.objects.append((head, rest.removesuffix(b"\nendstream")))
                item.stream, item.compress = [], False
            else:
                self.objects.append((data, None))
        self.pages = pdf.pages.number
        self.page_count = int(pdf.pages["Count"])


def _renumbered(data: bytes, shift: int) -> bytes:
    def one(match: re.Match[bytes]) -> bytes:
        if match[1] is None:
            return match[0]
        return b"%d %s R" % (int(match[1]) + shift, match[2])

    return _PDF_TOKENS.sub(one, data)


def _joined(parts: Sequence[_PdfPart], title: str) -> bytes:
    """One PDF of the pages of ``parts``, in order (a page tree node per part)."""
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xf0\x9f\x96\xa4\n")
    offsets: list[int] = []

    def put(body: bytes) -> None:
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % len(offsets) + body + b"\nendobj\n")

    shift, kids = 3, []  # 1: catalog, 2: the root of the page tree, 3: document information
    for part in parts:
        kids.append(b"%d 0 R" % (part.pages + shift))
        shift += len(part.objects)
    put(b"<< /Type /Catalog /Pages 2 0 R >>")
    count = sum(part.page_count for part in parts)
    put(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), count))
    put(pydyf.Dictionary({"Producer": pydyf.String("meterpay"), "Title": pydyf.String(title)}).data)
    shift = 3
    for part in parts:
        for number, (head, stream) in enumerate(part.objects, start=1):
            head = _renumbered(head, shift)
            if number == part.pages:  # a page tree node under the root
                head = b"<< /Parent 2 0 R " + head.removeprefix(b"<<")
            put(head if stream is None else head + b"\nstream\n" + stream + b"\nendstream")
        shift += len(part.objects)
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(offsets) + 1))
    out.writelines(b"%010d 00000 n \n" % offset for offset in offsets)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R /Info 3 0 R >>\n" % (len(offsets) + 1))
    out.write(b"startxref\n%d\n%%%%EOF\n" % xref)
    return out.getvalue()


def _run_part(items: Sequence[tuple[str, BillContext]]) -> _PdfPart:
    """A chunk of a run, laid out and written as PDF objects (the work of one run worker)."""
    part = _PdfPart()
    with _rendering() as cache:
        documents = [_document(source, context, cache) for source, context in items]
        pages = [page for document in documents for page in document.pages]
        documents[0].copy(pages).write_pdf(finisher=part.capture, **PDF_OPTIONS)
    return part


def _pdfs(items: Sequence[tuple[str, BillContext]]) -> list[bytes]:
    """One PDF per bill (the work of one zip worker)."""
    with _rendering() as cache:
        return [
            cast(bytes, _document(source, context, cache).write_pdf(**PDF_OPTIONS))
            for source, context in items
        ]


def _worker_start(time_zone: str) -> None:
    from django.conf import settings

    if not os.environ.get("DJANGO_SETTINGS_MODULE") and not settings.configured:
        settings.configure(USE_TZ=True, TIME_ZONE=time_zone)
    _stylesheet()


def _in_chunks[T](
    work: Callable[[Sequence[tuple[str, BillContext]]], T],
    items: Sequence[tuple[str, BillContext]],
    workers: int,
    chunk: int,
) -> list[T]:
    """``work`` on consecutive chunks of ``items``, here or in ``workers`` processes."""
    for source, _ in items:
        _compiled(source)  # a TemplateProblem here, not in a worker
    workers = max(1, min(workers, len(items) // MIN_BILLS_PER_WORKER))
    if workers > 1:
        chunk = max(1, min(chunk, math.ceil(len(items) / (workers * 4))))
    chunks = [items[i : i + chunk] for i in range(0, len(items), chunk)]
    if workers == 1:
        return [work(part) for part in chunks]
    from django.conf import settings

    time_zone = str(settings.TIME_ZONE) if settings.configured else "UTC"
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("forkserver"),
        initializer=_worker_start,
        initargs=(time_zone,),
    ) as pool:
        return list(pool.map(work, [list(part) for part in chunks]))


def bills_pdf_each(*, items: Sequence[tuple[str, BillContext]], workers: int = 1) -> bytes:
    """A whole run as one PDF file, each bill with its own template, each from a new page.

    Each bill is laid out as its own document (its page numbers count its own pages).
    ``workers`` > 1 lays the bills out in that many worker processes (started for the call,
    with ``forkserver``).
    """
    if not items:
        raise ValueError("no bills to print")
    parts = _in_chunks(_run_part, items, workers, RUN_CHUNK)
    first, last = items[0][1]["bill"]["number"], items[-1][1]["bill"]["number"]
    title = first if len(items) == 1 else f"{first} … {last} ({len(items)})"
    return _joined(parts, title)


def bills_pdf(*, source: str, contexts: Sequence[BillContext], workers: int = 1) -> bytes:
    """A whole run as one PDF file, each bill from a new page."""
    return bills_pdf_each(items=[(source, context) for context in contexts], workers=workers)


def bill_file_name(context: BillContext) -> str:
    """The default file name of a bill in a zip: its number."""
    return context["bill"]["number"]


def _safe_name(name: str, taken: set[str]) -> str:
    stem = re.sub(r"[\\/:*?\"<>|\x00-\x1f]+", "_", name).strip(" ._") or "bill"
    stem = stem.removesuffix(".pdf")[:120]
    candidate, n = f"{stem}.pdf", 1
    while candidate.lower() in taken:
        n += 1
        candidate = f"{stem}-{n}.pdf"
    taken.add(candidate.lower())
    return candidate


def bills_zip_each(
    *,
    items: Sequence[tuple[str, BillContext]],
    name: Callable[[BillContext], str] = bill_file_name,
    workers: int = 1,
) -> bytes:
    """One PDF per bill in a zip file, each bill with its own template.

    File names come from ``name`` (made safe, ``.pdf`` added, a repeated name numbered).
    ``workers`` > 1 makes the PDFs in that many worker processes (started for the call,
    with ``forkserver``).
    """
    taken: set[str] = set()
    names = [_safe_name(name(context), taken) for _, context in items]
    pdfs = [pdf for chunk in _in_chunks(_pdfs, items, workers, RUN_CHUNK) for pdf in chunk]
    buffer = io.BytesIO()
    # The PDFs are compressed already: a light deflate takes what is left.
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for file_name, pdf in zip(names, pdfs, strict=True):
            archive.writestr(file_name, pdf)
    return buffer.getvalue()


def bills_zip(
    *,
    source: str,
    contexts: Sequence[BillContext],
    name: Callable[[BillContext], str] = bill_file_name,
    workers: int = 1,
) -> bytes:
    """One PDF per bill in a zip file; file names from ``name`` (the bill number by default)."""
    return bills_zip_each(
        items=[(source, context) for context in contexts], name=name, workers=workers
    )


# --- The sample bill (template editor preview, tests, benchmark) ----------------------------


def _svg_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _star(cx: float, cy: float, outer: float, inner: float) -> str:
    points = []
    for i in range(10):
        radius = outer if i % 2 == 0 else inner
        angle = math.radians(-90 + 36 * i)
        points.append(f"{cx + radius * math.cos(angle):.2f},{cy + radius * math.sin(angle):.2f}")
    return " ".join(points)


@functools.cache
def _sample_logo() -> str:
    return _svg_uri(
        '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">'
        '<rect width="64" height="64" rx="12" fill="#1f3a5f"/>'
        f'<polygon points="{_star(32, 27, 17, 7)}" fill="#ffffff"/>'
        '<path d="M10 50 Q22 42 32 50 T54 50" stroke="#f2a33a" stroke-width="4" fill="none"'
        ' stroke-linecap="round"/></svg>'
    )


@functools.cache
def _sample_seal() -> str:
    name = "星河商业管理有限公司"
    letters = []
    for i, letter in enumerate(name):
        angle = -118 + 236 * i / (len(name) - 1)
        letters.append(
            f'<text x="60" y="27" text-anchor="middle" transform="rotate({angle:.1f} 60 60)">'
            f"{letter}</text>"
        )
    return _svg_uri(
        '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="120" viewBox="0 0 120 120">'
        '<g opacity="0.82" fill="#d7261e">'
        '<circle cx="60" cy="60" r="56" fill="none" stroke="#d7261e" stroke-width="3.5"/>'
        f'<polygon points="{_star(60, 60, 16, 6.5)}"/>'
        f'<g font-family="{BILL_FONT}, {SOURCE_FONT}" font-size="14" font-weight="bold">'
        + "".join(letters)
        + "</g>"
        f'<text x="60" y="96" text-anchor="middle" font-family="{BILL_FONT}, {SOURCE_FONT}"'
        ' font-size="11" font-weight="bold">财务专用章</text>'
        "</g></svg>"
    )


def _lines(rows: Sequence[tuple[str, str, str, str, str]]) -> list[ChargeLine]:
    return [
        ChargeLine(label=label, quantity=quantity, unit=unit, unit_price=price, amount=amount)
        for label, quantity, unit, price, amount in rows
    ]


def sample_context(language: str) -> BillContext:
    """A realistic monthly bill of a mall shop, in ``language`` ("zh-hans" or "en").

    Used by the template editor's preview, by the tests and by the benchmark. The figures add
    up: the lines to the subtotals, the subtotals to the total.
    """
    zh = _language(language) == "zh-hans"

    def t(chinese: str, english: str) -> str:
        return chinese if zh else english

    kwh, m3, yuan = "kWh", "m³", t("元", "CNY")
    sections = [
        ChargeSection(
            title=t("电费", "Electricity"),
            lines=_lines(
                [
                    (t("尖时段电量", "Energy, critical peak"), "263.80", kwh, "1.3512", "356.45"),
                    (t("峰时段电量", "Energy, peak"), "908.70", kwh, "1.1260", "1,023.20"),
                    (t("平时段电量", "Energy, flat"), "996.60", kwh, "0.6756", "673.30"),
                    (t("谷时段电量", "Energy, valley"), "762.10", kwh, "0.3152", "240.21"),
                    (
                        t("基本电费（按最大需量）", "Basic charge (maximum demand)"),
                        "38.40",
                        "kW",
                        "40.0000",
                        "1,536.00",
                    ),
                    (
                        t(
                            "功率因数调整电费（实际 0.85，标准 0.90）",
                            "Power factor adjustment (0.85 against 0.90)",
                        ),
                        "3,829.16",
                        yuan,
                        "+2.50%",
                        "95.73",
                    ),
                ]
            ),
            subtotal="3,924.89",
        ),
        ChargeSection(
            title=t("水费", "Water"),
            lines=_lines(
                [
                    (t("水费", "Water"), "38.50", m3, "4.9200", "189.42"),
                    (t("污水处理费", "Sewage treatment"), "38.50", m3, "2.0800", "80.08"),
                ]
            ),
            subtotal="269.50",
        ),
        ChargeSection(
            title=t("租金及物业", "Rent and property"),
            lines=_lines(
                [
                    (
                        t("租金（2025年6月）", "Rent (June 2025)"),
                        "86.00",
                        "m²",
                        "320.0000",
                        "27,520.00",
                    ),
                    (t("物业费", "Property management fee"), "86.00", "m²", "28.0000", "2,408.00"),
                ]
            ),
            subtotal="29,928.00",
        ),
        ChargeSection(
            title=t("公摊与线损", "Shared charges"),
            lines=_lines(
                [
                    (t("公摊电费", "Public-area electricity"), "334.37", kwh, "0.7860", "262.81"),
                    (t("线损费", "Line-loss fee"), "94.87", kwh, "0.7860", "74.57"),
                ]
            ),
            subtotal="337.38",
        ),
        ChargeSection(
            title=t("调整", "Adjustments"),
            lines=_lines(
                [
                    (
                        t("开业活动减免", "Opening promotion discount"),
                        "1",
                        t("项", "item"),
                        "-500.00",
                        "-500.00",
                    )
                ]
            ),
            subtotal="-500.00",
        ),
    ]
    return BillContext(
        organisation=OrganisationBlock(
            name=t("星河商业管理有限公司", "Xinghe Commercial Management Co., Ltd."),
            address=t(
                "上海市浦东新区世纪大道 1888 号星河广场",
                "Xinghe Plaza, 1888 Century Avenue, Pudong, Shanghai",
            ),
            phone="021-5888 1234",
            bank_account=t(
                "招商银行上海分行营业部 1219 0888 8810 201",
                "China Merchants Bank, Shanghai Branch, 1219 0888 8810 201",
            ),
            logo=_sample_logo(),
            seal=_sample_seal(),
        ),
        bill=BillBlock(
            number="BL-2025-06-000123",
            kind="monthly",
            kind_label=t("月度账单", "Monthly bill"),
            status_label=t("部分已付", "Partly paid"),
            period_start="2025-06-01",
            period_end="2025-06-30",
            issued_on="2025-07-01",
            due_on="2025-07-15",
            currency="CNY",
            total="33,959.77",
            paid="10,000.00",
            outstanding="23,959.77",
            replaces="",
            notes=t(
                "本期电费按分时电价计算；公摊电费与线损费按下方分摊说明计算。\n"
                "如对账单有疑问，请于收到账单后 7 日内联系物业服务中心（021-5888 1234）。",
                "Energy is charged at time-of-use prices; the shared charges are split as shown"
                " above.\nQuestions about this bill: please call the property service centre"
                " (021-5888 1234) within 7 days.",
            ),
        ),
        customer=CustomerBlock(
            name=t("星河咖啡", "Galaxy Coffee"),
            phone="138 1234 5678",
        ),
        account=AccountBlock(
            number="AC-0001024",
            rooms=t("A座-1F-101", "Block A-1F-101"),
            site=t("星河广场", "Xinghe Plaza"),
            billing_mode_label=t("后付费（月结）", "Postpaid, monthly"),
        ),
        meters=[
            MeterRow(
                address="000012345678",
                kind_label=t("电表（CT 200/5）", "Electricity, CT 200/5"),
                previous_reading="2,345.67",
                reading="2,418.95",
                multiplier="40",
                consumption="2,931.20",
                unit=kwh,
            ),
            MeterRow(
                address="20230456",
                kind_label=t("水表", "Water"),
                previous_reading="1,023.40",
                reading="1,061.90",
                multiplier="1",
                consumption="38.50",
                unit=m3,
            ),
        ],
        sections=sections,
        shares=[
            ShareRow(
                group=t("A座公共区域照明与空调", "Block A public areas"),
                rule_label=t("按租赁面积", "By leased area"),
                total_quantity="48,600.00",
                unit=kwh,
                ratio="0.688%",
                quantity="334.37",
                amount="262.81",
            ),
            ShareRow(
                group=t("A座 1# 变压器线损", "Block A transformer 1 line loss"),
                rule_label=t("按本户用电量占比", "By share of consumption"),
                total_quantity="3,120.00",
                unit=kwh,
                ratio="3.041%",
                quantity="94.87",
                amount="74.57",
            ),
        ],
        payment=PaymentBlock(
            instructions=t(
                "请于 2025-07-15 前付清应付余额，可在商户服务号扫码支付（微信/支付宝），"
                "或银行转账至下方账户。\n转账时请在附言中注明账单号 BL-2025-06-000123。",
                "Please pay the amount due by 2025-07-15: scan the code in the tenant service"
                " account (WeChat Pay, Alipay) or transfer to the bank account below.\n"
                "Please quote bill number BL-2025-06-000123 with your transfer.",
            )
        ),
    )
