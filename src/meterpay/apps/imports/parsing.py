"""Reading import files (CSV or XLSX) into rows of text, with the columns each kind expects."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

COLUMNS: dict[str, list[tuple[str, bool, str]]] = {
    # kind: [(column, required, example)]
    "rooms": [
        ("site", True, "Riverside Mall"),
        ("building", True, "Main building"),
        ("floor", True, "1F"),
        ("floor_level", False, "1"),
        ("room", True, "1F-101"),
        ("type", True, "shop"),
        ("area_m2", True, "48.50"),
    ],
    "customers": [
        ("name", True, "Li Wei"),
        ("kind", False, "person"),
        ("phone", False, "13800138000"),
        ("email", False, "liwei@example.com"),
        ("notes", False, ""),
    ],
    "meters": [
        ("kind", True, "electricity_1p"),
        ("protocol", True, "dlt645"),
        ("address", True, "000000123456"),
        ("model", False, "DDSY1352"),
        ("serial_number", False, "SN123456"),
        ("gateway", False, "DTU-0001"),
        ("site", False, "Riverside Mall"),
        ("building", False, "Main building"),
        ("floor", False, "1F"),
        ("room", False, "1F-101"),
        ("multiplier", False, "1"),
        ("installed_on", False, "2026-01-15"),
    ],
}

# Column headings as a Chinese spreadsheet would have them.
ALIASES = {
    "园区": "site",
    "项目": "site",
    "楼栋": "building",
    "楼层": "floor",
    "楼层序号": "floor_level",
    "房间": "room",
    "房间号": "room",
    "类型": "type",
    "房间类型": "type",
    "面积": "area_m2",
    "名称": "name",
    "姓名": "name",
    "客户类型": "kind",
    "电话": "phone",
    "邮箱": "email",
    "备注": "notes",
    "表类型": "kind",
    "协议": "protocol",
    "表地址": "address",
    "型号": "model",
    "表号": "serial_number",
    "网关": "gateway",
    "倍率": "multiplier",
    "安装日期": "installed_on",
}


class ImportFileError(ValueError):
    """The file as a whole cannot be read (format, encoding, headings)."""


@dataclass(frozen=True)
class Row:
    number: int  # the row number a spreadsheet shows (heading is row 1)
    values: dict[str, str]


def read_rows(kind: str, filename: str, content: bytes) -> list[Row]:
    if kind not in COLUMNS:
        raise ImportFileError(f"unknown import kind {kind!r}")
    name = filename.lower()
    if name.endswith(".xlsx"):
        table = _read_xlsx(content)
    elif name.endswith(".csv"):
        table = _read_csv(content)
    else:
        raise ImportFileError("the file must be .xlsx or .csv")
    if not table:
        raise ImportFileError("the file is empty")
    headings = [_heading(h) for h in table[0]]
    expected = [c for c, _, _ in COLUMNS[kind]]
    missing = [c for c, required, _ in COLUMNS[kind] if required and c not in headings]
    if missing:
        raise ImportFileError(f"missing column(s): {', '.join(missing)}")
    unknown = [h for h in headings if h and h not in expected]
    if unknown:
        raise ImportFileError(f"unknown column(s): {', '.join(unknown)}")
    rows = []
    for index, raw in enumerate(table[1:], start=2):
        cells = [(c if c is not None else "") for c in raw]
        if not any(str(c).strip() for c in cells):
            continue
        values = {h: _text(cells[i]) if i < len(cells) else "" for i, h in enumerate(headings) if h}
        rows.append(Row(number=index, values=values))
    if not rows:
        raise ImportFileError("the file has headings but no rows")
    return rows


def _heading(value: object) -> str:
    text = str(value or "").strip()
    return ALIASES.get(text, text.lower().replace(" ", "_"))


def _text(value: object) -> str:
    from datetime import date, datetime

    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _read_csv(content: bytes) -> list[list[object]]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = content.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes any byte string
        raise ImportFileError("the CSV file is neither UTF-8 nor GB18030 text")
    return [list(r) for r in csv.reader(io.StringIO(text))]


def _read_xlsx(content: bytes) -> list[list[object]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a bad file
        raise ImportFileError(f"not a readable XLSX file ({exc.__class__.__name__})") from None
    sheet = workbook.worksheets[0]
    return [list(r) for r in sheet.iter_rows(values_only=True)]


def template_xlsx(kind: str) -> bytes:
    import xlsxwriter

    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = workbook.add_worksheet(kind)
    bold = workbook.add_format({"bold": True, "bg_color": "#DCE6F1"})
    text = workbook.add_format({"num_format": "@"})
    for col, (name, _required, example) in enumerate(COLUMNS[kind]):
        sheet.write_string(0, col, name, bold)
        sheet.write_string(1, col, example, text)
        sheet.set_column(col, col, max(14, len(name) + 4), text)
    notes = workbook.add_worksheet("notes")
    notes.write_string(
        0, 0, "Columns marked required must be filled; one row per item; the heading row stays."
    )
    for row, (name, required, _example) in enumerate(COLUMNS[kind], start=2):
        notes.write_string(row, 0, name)
        notes.write_string(row, 1, "required" if required else "optional")
    workbook.close()
    return buffer.getvalue()


def template_csv(kind: str) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([c for c, _, _ in COLUMNS[kind]])
    writer.writerow([e for _, _, e in COLUMNS[kind]])
    return buffer.getvalue().encode("utf-8-sig")
