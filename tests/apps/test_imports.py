from __future__ import annotations

import csv
import io
from typing import Any

import pytest
import xlsxwriter

from meterpay.apps.audit.models import AuditEvent
from meterpay.apps.customers.models import Customer
from meterpay.apps.imports.models import ImportBatch
from meterpay.apps.imports.parsing import COLUMNS, read_rows, template_csv, template_xlsx
from meterpay.apps.imports.services import import_commit, import_preview
from meterpay.apps.meters.models import Meter
from meterpay.apps.sites.models import Room
from tests.factories import build_org

pytestmark = pytest.mark.django_db


def _csv(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode()


def _xlsx(rows: list[list[Any]]) -> bytes:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet()
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            sheet.write(r, c, value)
    book.close()
    return buffer.getvalue()


@pytest.fixture
def org() -> Any:
    return build_org("imp", 40)


ROOM_HEAD = ["site", "building", "floor", "floor_level", "room", "type", "area_m2"]


def test_good_room_file_previews_then_commits_everything(org: Any) -> None:
    content = _csv(
        [
            ROOM_HEAD,
            ["Site imp", "B2", "1F", "1", "R1", "shop", "12.50"],
            ["Site imp", "B2", "2F", "2", "R2", "office", "30"],
        ]
    )
    owner = org.users["owner"]
    batch = import_preview(
        actor=owner, organisation=org.org, kind="rooms", filename="rooms.csv", content=content
    )
    assert batch.errors == [] and batch.row_count == 2
    assert not Room.objects.filter(number__in=["R1", "R2"]).exists()  # the preview saved nothing
    result = import_commit(actor=owner, batch=batch)
    assert result.ok and result.created == 2
    assert Room.objects.get(number="R1").floor.building.name == "B2"
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.COMMITTED
    assert AuditEvent.objects.filter(action="import.commit").count() == 1
    with pytest.raises(Exception, match="committed already"):
        import_commit(actor=owner, batch=batch)


def test_bad_rows_import_nothing_and_name_each_row_and_column(org: Any) -> None:
    content = _csv(
        [
            ROOM_HEAD,
            ["Site imp", "B2", "1F", "1", "R1", "shop", "12.50"],  # row 2 fine
            ["Site imp", "B2", "1F", "1", "R3", "castle", "10"],  # row 3 bad type
            ["Site imp", "B2", "1F", "1", "R4", "shop", "-1"],  # row 4 bad area
            ["Nowhere", "B2", "1F", "1", "R5", "shop", "10"],  # row 5 unknown site
            ["Site imp", "B2", "1F", "1", "R1", "shop", "11"],  # row 6 duplicate of row 2
            [
                "Site imp",
                "B2",
                "1F",
                "x",
                "R6",
                "shop",
                "1.234",
            ],  # row 7 two problems: both reported
        ]
    )
    owner = org.users["owner"]
    batch = import_preview(
        actor=owner, organisation=org.org, kind="rooms", filename="rooms.csv", content=content
    )
    by_row = {(e["row"], e["column"]) for e in batch.errors}
    assert (3, "type") in by_row
    assert (4, "area_m2") in by_row
    assert (5, "site") in by_row
    assert (6, "room") in by_row
    assert (7, "floor_level") in by_row and (7, "area_m2") in by_row
    assert not any(row == 2 for row, _ in by_row)
    result = import_commit(actor=owner, batch=batch)
    assert not result.ok and result.created == 0
    assert not Room.objects.filter(number__in=["R1", "R3", "R4", "R5", "R6"]).exists()
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.PREVIEWED


def test_xlsx_customers_and_chinese_headings(org: Any) -> None:
    content = _xlsx(
        [["姓名", "电话", "邮箱"], ["张三", 13800138000, "zs@example.com"], ["李四", "", ""]]
    )
    batch = import_preview(
        actor=org.users["operator"],
        organisation=org.org,
        kind="customers",
        filename="c.xlsx",
        content=content,
    )
    assert batch.errors == []
    assert import_commit(actor=org.users["operator"], batch=batch).created == 2
    assert Customer.objects.get(name="张三").phone == "13800138000"


def test_meters_import_finds_gateway_and_room(org: Any) -> None:
    head = [c for c, _, _ in COLUMNS["meters"]]
    good = [
        "electricity_1p",
        "dlt645",
        "000000555555",
        "DDSY1352",
        "",
        "DTU-imp",
        "Site imp",
        "B1",
        "1F",
        "102",
        "1",
        "2026-01-02",
    ]
    bad = ["water", "dlt645", "1", "", "", "DTU-nope", "", "", "", "", "0", "02/01/2026"]
    batch = import_preview(
        actor=org.users["owner"],
        organisation=org.org,
        kind="meters",
        filename="m.csv",
        content=_csv([head, good, bad]),
    )
    columns = {e["column"] for e in batch.errors if e["row"] == 3}
    assert "gateway" in columns
    assert all(e["row"] == 3 for e in batch.errors)
    fixed = import_preview(
        actor=org.users["owner"],
        organisation=org.org,
        kind="meters",
        filename="m.csv",
        content=_csv([head, good]),
    )
    assert import_commit(actor=org.users["owner"], batch=fixed).ok
    meter = Meter.objects.get(address="000000555555")
    assert meter.room == org.vacant_room and meter.gateway == org.gateway


@pytest.mark.parametrize(
    "content,filename,message",
    [
        (b"", "x.csv", "empty"),
        (b"name\n", "x.csv", "no rows"),
        (b"nom\nX\n", "x.csv", "missing column"),
        (b"name,colour\nX,red\n", "x.csv", "unknown column"),
        (b"PK\x03\x04garbage", "x.xlsx", "not a readable XLSX"),
        (b"name\nX\n", "x.txt", ".xlsx or .csv"),
    ],
)
def test_unreadable_files_give_one_clear_message(
    org: Any, content: bytes, filename: str, message: str
) -> None:
    batch = import_preview(
        actor=org.users["owner"],
        organisation=org.org,
        kind="customers",
        filename=filename,
        content=content,
    )
    assert (
        len(batch.errors) == 1
        and message in batch.errors[0]["message"]
        and batch.errors[0]["row"] is None
    )


@pytest.mark.parametrize("kind", list(COLUMNS))
def test_templates_have_the_columns_and_an_example_row(kind: str) -> None:
    for name, blob in (("t.xlsx", template_xlsx(kind)), ("t.csv", template_csv(kind))):
        rows = read_rows(kind, name, blob)
        assert len(rows) == 1
        assert list(rows[0].values) == [c for c, _, _ in COLUMNS[kind]]


def test_gb18030_csv_from_chinese_excel(org: Any) -> None:
    content = "姓名,电话\n王五,13900000000\n".encode("gb18030")
    batch = import_preview(
        actor=org.users["owner"],
        organisation=org.org,
        kind="customers",
        filename="c.csv",
        content=content,
    )
    assert batch.errors == []
