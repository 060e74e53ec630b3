"""Bulk import: preview (a dry run that is rolled back) and all-or-nothing commit.

Both run the same code, row by row, through the normal services; the preview rolls the
whole transaction back, the commit keeps it only if no row failed. So a preview that
shows no errors is exactly what the commit will do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from meterpay.apps.audit.services import audit_record
from meterpay.apps.customers.models import Customer
from meterpay.apps.customers.services import customer_create
from meterpay.apps.imports.models import ImportBatch
from meterpay.apps.imports.parsing import ImportFileError, Row, read_rows
from meterpay.apps.meters.models import Gateway, Meter, Protocol
from meterpay.apps.meters.services import meter_create
from meterpay.apps.organisations.models import Organisation
from meterpay.apps.sites.models import Floor, Room, Site
from meterpay.apps.sites.services import floor_get_or_create, room_create


class RowError(Exception):
    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


@dataclass
class ImportResult:
    rows: list[Row]
    errors: list[dict[str, Any]] = field(default_factory=list)
    created: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


class _Rollback(Exception):
    pass


def _choice(values: dict[str, str], column: str, choices: list[tuple[str, Any]]) -> str:
    value = values.get(column, "").strip()
    allowed = [c for c, _ in choices]
    if value not in allowed:
        raise RowError(column, f"{value!r} is not one of {', '.join(allowed)}")
    return value


def _required(values: dict[str, str], column: str) -> str:
    value = values.get(column, "").strip()
    if not value:
        raise RowError(column, "is required")
    return value


def _decimal(values: dict[str, str], column: str) -> Decimal:
    text = _required(values, column)
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise RowError(column, f"{text!r} is not a number") from None
    if not number.is_finite() or number < 0:
        raise RowError(column, f"{text!r} must be zero or more")
    if number != number.quantize(Decimal("0.01")):
        raise RowError(column, f"{text!r} has more than 2 decimals")
    return number


def _int(values: dict[str, str], column: str, default: int) -> int:
    text = values.get(column, "").strip()
    if not text:
        return default
    if not text.lstrip("-").isdigit():
        raise RowError(column, f"{text!r} is not a whole number")
    return int(text)


def _date(values: dict[str, str], column: str) -> date | None:
    text = values.get(column, "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise RowError(column, f"{text!r} is not a date (YYYY-MM-DD)") from None


def _find_room(organisation: Organisation, values: dict[str, str]) -> Room | None:
    names = [values.get(c, "").strip() for c in ("site", "building", "floor", "room")]
    if not any(names):
        return None
    if not all(names):
        raise RowError("room", "give site, building, floor and room together, or none of them")
    site, building, floor, number = names
    room = Room.objects.filter(
        organisation=organisation,
        floor__building__site__name=site,
        floor__building__name=building,
        floor__name=floor,
        number=number,
    ).first()
    if room is None:
        raise RowError("room", f"no room {site} / {building} / {floor} / {number}")
    return room


class RowErrors(Exception):
    """Every field problem of one row, found before anything of the row is written."""

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors


class _Fields:
    def __init__(self) -> None:
        self.problems: list[RowError] = []

    def get[T](self, parse: Callable[[], T]) -> T | None:
        try:
            return parse()
        except RowError as exc:
            self.problems.append(exc)
            return None

    def check(self) -> None:
        if self.problems:
            raise RowErrors(self.problems)


def _existing_site(organisation: Organisation, values: dict[str, str]) -> str:
    name = _required(values, "site")
    if not Site.objects.filter(organisation=organisation, name=name).exists():
        raise RowError("site", f"no site named {name!r}")
    return name


def _import_room(actor: Any, organisation: Organisation, values: dict[str, str]) -> None:
    fields = _Fields()
    kind = fields.get(lambda: _choice(values, "type", Room.Kind.choices))
    area = fields.get(lambda: _decimal(values, "area_m2"))
    level = fields.get(lambda: _int(values, "floor_level", 0))
    site = fields.get(lambda: _existing_site(organisation, values))
    building = fields.get(lambda: _required(values, "building"))
    floor_name = fields.get(lambda: _required(values, "floor"))
    number = fields.get(lambda: _required(values, "room"))
    fields.check()
    floor: Floor = floor_get_or_create(
        actor=actor,
        organisation=organisation,
        site_name=str(site),
        building_name=str(building),
        floor_name=str(floor_name),
        level=level,
    )
    assert area is not None  # fields.check() passed
    room_create(actor=actor, floor=floor, number=str(number), kind=str(kind), area_m2=area)


def _customer_kind(values: dict[str, str]) -> str:
    kind = values.get("kind", "").strip() or "person"
    if kind not in Customer.Kind.values:
        raise RowError("kind", f"{kind!r} is not one of {', '.join(Customer.Kind.values)}")
    return kind


def _import_customer(actor: Any, organisation: Organisation, values: dict[str, str]) -> None:
    fields = _Fields()
    kind = fields.get(lambda: _customer_kind(values))
    name = fields.get(lambda: _required(values, "name"))
    fields.check()
    customer_create(
        actor=actor,
        organisation=organisation,
        name=str(name),
        kind=str(kind),
        phone=values.get("phone", ""),
        email=values.get("email", ""),
        notes=values.get("notes", ""),
    )


def _gateway(organisation: Organisation, values: dict[str, str]) -> Gateway | None:
    identifier = values.get("gateway", "").strip()
    if not identifier:
        return None
    gateway = Gateway.objects.filter(organisation=organisation, identifier=identifier).first()
    if gateway is None:
        raise RowError("gateway", f"no gateway {identifier!r}")
    return gateway


def _multiplier(values: dict[str, str]) -> int:
    multiplier = _int(values, "multiplier", 1)
    if multiplier < 1:
        raise RowError("multiplier", "must be 1 or more")
    return multiplier


def _import_meter(actor: Any, organisation: Organisation, values: dict[str, str]) -> None:
    fields = _Fields()
    kind = fields.get(lambda: _choice(values, "kind", Meter.Kind.choices))
    protocol = fields.get(lambda: _choice(values, "protocol", Protocol.choices))
    address = fields.get(lambda: _required(values, "address"))
    gateway = fields.get(lambda: _gateway(organisation, values))
    multiplier = fields.get(lambda: _multiplier(values))
    room = fields.get(lambda: _find_room(organisation, values))
    installed_on = fields.get(lambda: _date(values, "installed_on"))
    fields.check()
    meter_create(
        actor=actor,
        organisation=organisation,
        kind=str(kind),
        protocol=str(protocol),
        address=str(address),
        model=values.get("model", ""),
        serial_number=values.get("serial_number", ""),
        gateway=gateway,
        room=room,
        multiplier=int(multiplier or 1),
        installed_on=installed_on,
    )


IMPORTERS: dict[str, Callable[[Any, Organisation, dict[str, str]], None]] = {
    "rooms": _import_room,
    "customers": _import_customer,
    "meters": _import_meter,
}


# Model field names that differ from the file's column names.
FIELD_TO_COLUMN = {
    "rooms": {"number": "room", "kind": "type", "__all__": "room"},
    "customers": {"__all__": "name"},
    "meters": {"__all__": "address"},
}


def _apply(actor: Any, organisation: Organisation, kind: str, rows: list[Row]) -> ImportResult:
    result = ImportResult(rows=rows)
    importer = IMPORTERS[kind]
    for row in rows:
        try:
            with transaction.atomic():
                importer(actor, organisation, row.values)
            result.created += 1
        except RowError as exc:
            result.errors.append({"row": row.number, "column": exc.column, "message": exc.message})
        except RowErrors as exc:
            for error in exc.errors:
                result.errors.append(
                    {"row": row.number, "column": error.column, "message": error.message}
                )
        except ValidationError as exc:
            errors = exc.message_dict if hasattr(exc, "error_dict") else {"": exc.messages}
            renames = FIELD_TO_COLUMN.get(kind, {})
            for name, messages in errors.items():
                column = renames.get(name, "" if name == "__all__" else name)
                for message in messages:
                    result.errors.append({"row": row.number, "column": column, "message": message})
    return result


def import_run(
    *,
    actor: Any,
    organisation: Organisation,
    kind: str,
    filename: str,
    content: bytes,
    commit: bool,
) -> ImportResult:
    """Run the import; keep the changes only if ``commit`` and every row succeeded."""
    try:
        rows = read_rows(kind, filename, content)
    except ImportFileError as exc:
        return ImportResult(rows=[], errors=[{"row": None, "column": "", "message": str(exc)}])
    try:
        with transaction.atomic():
            result = _apply(actor, organisation, kind, rows)
            if not commit or not result.ok:
                raise _Rollback
    except _Rollback:
        if commit:
            result.created = 0
    return result


@transaction.atomic
def import_preview(
    *, actor: Any, organisation: Organisation, kind: str, filename: str, content: bytes
) -> ImportBatch:
    result = import_run(
        actor=actor,
        organisation=organisation,
        kind=kind,
        filename=filename,
        content=content,
        commit=False,
    )
    return ImportBatch.objects.create(
        organisation=organisation,
        kind=kind,
        filename=filename[:255],
        content=content,
        uploaded_by=actor,
        row_count=len(result.rows),
        errors=result.errors,
    )


def import_commit(*, actor: Any, batch: ImportBatch) -> ImportResult:
    """Commit a previewed batch: all rows or none. Re-validates, since data may have changed."""
    with transaction.atomic():
        batch = ImportBatch.objects.select_for_update().get(pk=batch.pk)
        if batch.status != ImportBatch.Status.PREVIEWED:
            raise ValidationError({"status": "this import was committed already"})
        result = import_run(
            actor=actor,
            organisation=batch.organisation,
            kind=batch.kind,
            filename=batch.filename,
            content=bytes(batch.content),
            commit=True,
        )
        batch.errors = result.errors
        if result.ok:
            batch.status = ImportBatch.Status.COMMITTED
            batch.committed_at = timezone.now()
            audit_record(
                actor=actor,
                action="import.commit",
                obj=batch,
                after={"kind": batch.kind, "rows": result.created, "file": batch.filename},
            )
        batch.save()
    return result
