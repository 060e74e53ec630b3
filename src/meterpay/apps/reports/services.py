"""Writes of the reports app: the roll-ups, advanced from what was stored and rebuilt.

* :func:`rollups_advance` takes the interval rows and ledger entries stored since it last ran
  (a cursor per table: the highest id taken and the ids below it still missing, see
  ``meterpay.core.reports.cursor``), sums them per bucket in memory (the engine's
  time-of-use rule needs the account's tariff and holidays, which SQL does not have) and adds
  the sums to the stored buckets with one upsert per table (PostgreSQL: a binary ``COPY``
  into a staging table, then ``INSERT … SELECT … ON CONFLICT DO UPDATE SET x = t.x +
  EXCLUDED.x``; SQLite: the same upsert, ``executemany``), with the cursors, in one
  transaction. The ingest path does not wait
  for it: it reads what was stored, after the fact.
* :func:`rollups_rebuild` deletes an account's or a meter's buckets of a span and sums them
  again from the raw rows (after a re-rating, or to repair), months from the days.

Both take the cursors' lock, so they never run into each other; a second advance while one
runs skips (PostgreSQL) or waits (SQLite) instead of counting anything twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Model, Q
from django.utils import timezone

from meterpay.apps.audit.services import audit_record
from meterpay.apps.customers.models import Account
from meterpay.apps.ledger.models import JournalEntry
from meterpay.apps.meters.models import Meter
from meterpay.apps.readings.models import Interval
from meterpay.apps.reports.contexts import meter_contexts, organisation_clocks, utility_of
from meterpay.apps.reports.models import (
    CostDay,
    CostMonth,
    MeterDay,
    MeterHour,
    MeterMonth,
    RollupCursor,
)
from meterpay.core.reports.cursor import IdCursor
from meterpay.core.reports.rollup import (
    COST_FIGURES,
    FIGURES,
    NOT_METERED,
    ConsumptionRollup,
    CostRollup,
    EntryRow,
    IntervalRow,
    LocalClock,
    meter_of_reference,
    to_units,
)

log = logging.getLogger(__name__)
INTERVALS, ENTRIES = "intervals", "entries"
#: Rows read per table and run (a transaction of a second or two).
DEFAULT_BATCH = 50_000
#: Gap ranges looked up per query.
_RANGES_PER_QUERY = 500
_CONSUMPTION_KEY = ("meter_id", "account_id")
_COST_KEY = ("account_id", "meter_id")


@dataclass(frozen=True, slots=True)
class Advanced:
    """What a run took: interval rows and entries, buckets written; ``caught_up`` when no
    table had more than a batch waiting; ``skipped`` when another run held the cursors."""

    intervals: int
    entries: int
    buckets: int
    caught_up: bool
    skipped: bool = False


# ------------------------------------------------------------------------------ cursors


def _locked_cursors(*, skip_locked: bool) -> dict[str, RollupCursor] | None:
    """Both cursors, locked for the transaction (created when missing); None when another
    run holds them and ``skip_locked``."""
    RollupCursor.objects.bulk_create(
        [RollupCursor(name=INTERVALS), RollupCursor(name=ENTRIES)], ignore_conflicts=True
    )
    names = [INTERVALS, ENTRIES]
    if connection.vendor == "postgresql":
        rows = list(
            RollupCursor.objects.select_for_update(skip_locked=skip_locked)
            .filter(name__in=names)
            .order_by("name")
        )
        if len(rows) < len(names):
            return None
    else:
        # SQLite: writing first takes the database's write lock before the cursors are read
        RollupCursor.objects.filter(name__in=names).update(updated_at=timezone.now())
        rows = list(RollupCursor.objects.filter(name__in=names))
    return {row.name: row for row in rows}


def _cursor(row: RollupCursor) -> IdCursor:
    return IdCursor.from_state(row.last_id, row.gaps or [])


def _save_cursor(row: RollupCursor, cursor: IdCursor, now: datetime) -> None:
    dropped = cursor.expire(now=now.timestamp())
    if dropped:
        log.warning(
            "roll-up of %s gave up %d id ranges that never turned up: %s",
            row.name,
            len(dropped),
            [(gap.low, gap.high) for gap in dropped[:10]],
        )
    row.last_id = cursor.last_id
    row.gaps = cursor.gaps_state()
    row.updated_at = now
    row.save(update_fields=["last_id", "gaps", "updated_at"])


def _in_ranges(ranges: Sequence[tuple[int, int]]) -> Iterable[Q]:
    for index in range(0, len(ranges), _RANGES_PER_QUERY):
        where = Q()
        for low, high in ranges[index : index + _RANGES_PER_QUERY]:
            where |= Q(pk__gte=low, pk__lte=high)
        yield where


# ------------------------------------------------------------------------------ reading rows

_INTERVAL_FIELDS = ("pk", "meter_id", "start_at", "end_at", "consumption", "status", "booked")
_ENTRY_FIELDS = (
    "pk", "kind", "organisation_id", "account_id", "occurred_at", "wallet_amount", "reference",
)  # fmt: skip


def _pg_rows(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Rows in PostgreSQL's binary format, loaded by psycopg's own C loaders (Django's
    connection asks for text and parses every time stamp and number in Python)."""
    import psycopg

    with connection.cursor() as cursor, psycopg.Cursor(cursor.cursor.connection) as binary:
        binary.execute(sql.encode(), params, binary=True)
        return binary.fetchall()


def _intervals(where: Q, limit: int | None = None) -> list[tuple[int, IntervalRow]]:
    if limit is not None and connection.vendor == "postgresql":
        # the hot path (new rows): consumption as integer units computed by the server
        query = Interval.objects.filter(where).order_by("pk").values_list("pk")[:limit].query
        sql, params = query.sql_with_params()
        table = connection.ops.quote_name(Interval._meta.db_table)
        rows = _pg_rows(
            "SELECT i.id, i.meter_id, i.start_at, i.end_at,"  # noqa: S608 - names from the model
            " (i.consumption * 10000)::bigint, i.status, i.booked"
            f" FROM {table} i WHERE i.id IN ({sql}) ORDER BY i.id",
            params,
        )
        return [(row[0], row[1:]) for row in rows]
    found = Interval.objects.filter(where).order_by("pk").values_list(*_INTERVAL_FIELDS)
    if limit is not None:
        found = found[:limit]
    return [
        (pk, (meter_id, start, end, to_units(consumption), status, booked))
        for pk, meter_id, start, end, consumption, status, booked in found
    ]


def _entries(where: Q, limit: int | None = None) -> list[tuple[int, EntryRow | None]]:
    """Entries as roll-up rows (None: not a deduction of an account, taken all the same)."""
    rows = list(JournalEntry.objects.filter(where).order_by("pk").values_list(*_ENTRY_FIELDS))
    if limit is not None:
        rows = rows[:limit]
    meters = {meter_of_reference(row[6]) for row in rows if row[1] == JournalEntry.Kind.DEDUCTION}
    kinds = dict(
        Meter.objects.filter(pk__in={m for m in meters if m is not None}).values_list("pk", "kind")
    )
    found: list[tuple[int, EntryRow | None]] = []
    for pk, kind, organisation_id, account_id, occurred_at, wallet_amount, reference in rows:
        if kind != JournalEntry.Kind.DEDUCTION or account_id is None:
            found.append((pk, None))
            continue
        meter_id = meter_of_reference(reference)
        if meter_id is not None and meter_id in kinds:
            utility = utility_of(kinds[meter_id])
        else:
            meter_id, utility = 0, NOT_METERED
        found.append(
            (pk, (organisation_id, account_id, meter_id, utility, occurred_at, -wallet_amount))
        )
    return found


def _take(fetch: Any, cursor: IdCursor, batch: int, now: datetime) -> tuple[list[Any], bool]:
    """Rows filling the cursor's gaps, then up to ``batch`` new ones; whether it caught up."""
    taken: list[Any] = []
    for where in _in_ranges(cursor.ranges()):
        rows = fetch(where)
        filled = set(cursor.fill(pk for pk, _ in rows))
        taken.extend(row for pk, row in rows if pk in filled)
    rows = fetch(Q(pk__gt=cursor.last_id), batch)
    new = set(cursor.advance((pk for pk, _ in rows), now=now.timestamp()))
    taken.extend(row for pk, row in rows if pk in new)
    return taken, len(rows) < batch


# ------------------------------------------------------------------------------ writing buckets


def _columns(bucket: str, figures: Sequence[str], key: Sequence[str]) -> list[str]:
    return ["organisation_id", *key, "utility", bucket, *figures]


def _upsert(
    model: type[Model],
    columns: Sequence[str],
    conflict: Sequence[str],
    added: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> None:
    """Insert bucket rows, adding ``added`` to a bucket already stored (one statement)."""
    if not rows:
        return
    meta = model._meta
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    names = ", ".join(quote(name) for name in columns)
    keys = ", ".join(quote(name) for name in conflict)
    fields = [
        meta.get_field(name.removesuffix("_id") if name == "organisation_id" else name)
        for name in columns
    ]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # binary COPY into a staging table of the transaction, then one upsert from it
            stage = quote(f"stage_{meta.db_table}")
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table} INCLUDING DEFAULTS)"
                " ON COMMIT DELETE ROWS"
            )
            types = [_PG_TYPES[field.get_internal_type()] for field in fields]
            with cursor.cursor.copy(f"COPY {stage} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(types)
                for row in rows:
                    copy.write_row(row)
            sets = ", ".join(
                f"{quote(n)} = {table}.{quote(n)} + EXCLUDED.{quote(n)}" for n in added
            )
            cursor.execute(
                f"INSERT INTO {table} ({names}) SELECT {names} FROM {stage}"  # noqa: S608 - names from the model
                f" ON CONFLICT ({keys}) DO UPDATE SET {sets}"
            )
            cursor.execute(f"TRUNCATE {stage}")
            return
        sets = ", ".join(f"{quote(n)} = {quote(n)} + excluded.{quote(n)}" for n in added)
        marks = ", ".join(["%s"] * len(columns))
        adapters = [_sqlite_adapter(field) for field in fields]
        cursor.executemany(
            f"INSERT INTO {table} ({names}) VALUES ({marks})"  # noqa: S608 - names from the model
            f" ON CONFLICT ({keys}) DO UPDATE SET {sets}",
            [[adapt(value) for adapt, value in zip(adapters, row, strict=True)] for row in rows],
        )


_PG_TYPES = {
    "BigIntegerField": "int8",
    "IntegerField": "int4",
    "ForeignKey": "int8",
    "CharField": "text",
    "DateTimeField": "timestamptz",
    "DateField": "date",
}


def _sqlite_adapter(field: Any) -> Any:
    internal = field.get_internal_type()
    if internal == "DateTimeField":
        return connection.ops.adapt_datetimefield_value
    if internal == "DateField":
        return connection.ops.adapt_datefield_value
    return lambda value: value


_GRAINS: tuple[tuple[str, type[Model], str], ...] = (
    ("hour", MeterHour, "hour"),
    ("day", MeterDay, "day"),
    ("month", MeterMonth, "month"),
)


def _write_consumption(
    rollup: ConsumptionRollup, grains: Sequence[str] = ("hour", "day", "month")
) -> int:
    written = 0
    for grain, model, bucket in _GRAINS:
        if grain not in grains:
            continue
        rows = list(rollup.rows(grain))
        _upsert(
            model,
            _columns(bucket, FIGURES, _CONSUMPTION_KEY),
            [_CONSUMPTION_KEY[0], bucket, _CONSUMPTION_KEY[1]],
            FIGURES,
            rows,
        )
        written += len(rows)
    return written


def _write_cost(rollup: CostRollup, grains: Sequence[str] = ("day", "month")) -> int:
    written = 0
    for grain, model in (("day", CostDay), ("month", CostMonth)):
        if grain not in grains:
            continue
        rows = list(rollup.rows(grain))
        _upsert(
            model,
            _columns(grain, COST_FIGURES, _COST_KEY),
            [_COST_KEY[0], grain, _COST_KEY[1]],
            COST_FIGURES,
            rows,
        )
        written += len(rows)
    return written


def _consumption(rows: Sequence[IntervalRow], *, cached: bool = True) -> ConsumptionRollup:
    rollup = ConsumptionRollup()
    contexts = meter_contexts({row[0] for row in rows}, cached=cached)
    unknown = {row[0] for row in rows} - set(contexts)
    if unknown:
        log.warning("intervals of meters that do not exist left out: %s", sorted(unknown)[:10])
        rows = [row for row in rows if row[0] in contexts]
    rollup.add(rows, contexts)
    return rollup


def _cost(rows: Sequence[EntryRow]) -> CostRollup:
    rollup = CostRollup()
    rollup.add(rows, organisation_clocks({row[0] for row in rows}))
    return rollup


# ------------------------------------------------------------------------------ advance


def rollups_advance(
    *, batch: int = DEFAULT_BATCH, now: datetime | None = None, wait: bool = False
) -> Advanced:
    """Roll up the intervals and ledger entries stored since the last run (at most ``batch``
    new rows of each table), in one transaction with the cursors.

    Without ``wait`` a run that finds another one running skips (PostgreSQL): that one is
    taking the rows already.
    """
    now = now or timezone.now()
    with transaction.atomic():
        rows = _locked_cursors(skip_locked=not wait)
        if rows is None:
            return Advanced(0, 0, 0, caught_up=False, skipped=True)
        intervals_cursor, entries_cursor = _cursor(rows[INTERVALS]), _cursor(rows[ENTRIES])
        intervals, intervals_done = _take(_intervals, intervals_cursor, batch, now)
        entries, entries_done = _take(_entries, entries_cursor, batch, now)
        entries = [row for row in entries if row is not None]
        written = _write_consumption(_consumption(intervals)) if intervals else 0
        written += _write_cost(_cost(entries)) if entries else 0
        _save_cursor(rows[INTERVALS], intervals_cursor, now)
        _save_cursor(rows[ENTRIES], entries_cursor, now)
    return Advanced(len(intervals), len(entries), written, intervals_done and entries_done)


def rollups_catch_up(*, batch: int = DEFAULT_BATCH, max_seconds: float = 50.0) -> Advanced:
    """Advance until caught up or ``max_seconds`` have passed (the periodic job)."""
    began = time.monotonic()
    intervals = entries = buckets = 0
    while True:
        step = rollups_advance(batch=batch)
        intervals += step.intervals
        entries += step.entries
        buckets += step.buckets
        if step.skipped or step.caught_up or time.monotonic() - began > max_seconds:
            return Advanced(intervals, entries, buckets, step.caught_up, step.skipped)


# ------------------------------------------------------------------------------ rebuild


@dataclass(frozen=True, slots=True)
class Rebuilt:
    meters: int
    intervals: int
    entries: int
    buckets: int


def _months(start: date, end: date) -> list[date]:
    months = []
    month = start.replace(day=1)
    while month < end:
        months.append(month)
        month = (month + timedelta(days=32)).replace(day=1)
    return months


def _month_end(month: date) -> date:
    return (month + timedelta(days=32)).replace(day=1)


def _months_from_days(
    day_model: type[Model],
    month_model: type[Model],
    key: str,
    ids: Sequence[int],
    months: Sequence[date],
    figures: Sequence[str],
    key_columns: Sequence[str],
) -> int:
    """Recompute the month buckets of ``months`` for ``ids`` (of ``key``) from their days."""
    if not ids or not months:
        return 0
    month_model._default_manager.filter(**{f"{key}__in": ids, "month__in": months}).delete()
    sums: dict[tuple[Any, ...], list[int]] = {}
    for month in months:
        for row in day_model._default_manager.filter(
            **{f"{key}__in": ids, "day__gte": month, "day__lt": _month_end(month)}
        ).values_list("organisation_id", *key_columns, "utility", *figures):
            organisation_id, first, second, utility, *values = row
            target = (organisation_id, first, second, utility, month)
            found = sums.setdefault(target, [0] * len(figures))
            for index, value in enumerate(values):
                found[index] += value
    rows = [(*target, *values) for target, values in sums.items()]
    _upsert(
        month_model,
        _columns("month", figures, key_columns),
        [key_columns[0], "month", key_columns[1]],
        figures,
        rows,
    )
    return len(rows)


def rollups_rebuild(
    *,
    start: date,
    end: date,
    account: Account | None = None,
    meter: Meter | None = None,
    actor: Any = "reports",
) -> Rebuilt:
    """Delete the buckets of local days ``[start, end)`` of an account (its meters, and its
    cost) or of one meter (its consumption and the cost of its deductions) and sum them again
    from the intervals and ledger entries the roll-up has taken; months from their days.

    Rows the cursors have not taken yet are left to the next advance, so nothing is counted
    twice. Audited (``reports.rebuild``) as the ``actor``'s.
    """
    if (account is None) == (meter is None):
        raise ValueError("rebuild one account or one meter")
    if end <= start:
        raise ValueError("the span ends before it starts")
    owner = account if account is not None else meter
    assert owner is not None
    local: LocalClock = organisation_clocks([owner.organisation_id])[owner.organisation_id]
    since, until = local.day_start(start), local.day_start(end)
    months = _months(start, end)
    with transaction.atomic():
        cursors = _locked_cursors(skip_locked=False)
        assert cursors is not None
        intervals_cursor, entries_cursor = _cursor(cursors[INTERVALS]), _cursor(cursors[ENTRIES])
        if account is not None:
            meter_ids = sorted(
                set(Meter.objects.filter(account=account).values_list("pk", flat=True))
                | set(
                    MeterMonth.objects.filter(account_id=account.pk, month__in=months).values_list(
                        "meter_id", flat=True
                    )
                )
            )
            entries_where = Q(account=account)
        else:
            assert meter is not None
            meter_ids = [meter.pk]
            entries_where = Q(reference__startswith=f"meter-{meter.pk}/")
        MeterHour.objects.filter(meter_id__in=meter_ids, hour__gte=since, hour__lt=until).delete()
        MeterDay.objects.filter(meter_id__in=meter_ids, day__gte=start, day__lt=end).delete()
        intervals = [
            row
            for pk, row in _intervals(
                Q(meter_id__in=meter_ids, end_at__gt=since, end_at__lte=until)
            )
            if intervals_cursor.taken(pk)
        ]
        written = (
            _write_consumption(_consumption(intervals, cached=False), ("hour", "day"))
            if intervals
            else 0
        )
        written += _months_from_days(
            MeterDay, MeterMonth, "meter_id", meter_ids, months, FIGURES, _CONSUMPTION_KEY
        )
        cost_filter: dict[str, Any] = (
            {"account_id": account.pk} if account is not None else {"meter_id": meter_ids[0]}
        )
        CostDay.objects.filter(**cost_filter, day__gte=start, day__lt=end).delete()
        entries = [
            row
            for pk, row in _entries(
                entries_where
                & Q(kind=JournalEntry.Kind.DEDUCTION, occurred_at__gt=since, occurred_at__lte=until)
            )
            if row is not None and entries_cursor.taken(pk)
        ]
        written += _write_cost(_cost(entries), ("day",)) if entries else 0
        cost_key, cost_ids = next(iter(cost_filter.items()))
        written += _months_from_days(
            CostDay, CostMonth, cost_key, [cost_ids], months, COST_FIGURES, _COST_KEY
        )
        done = Rebuilt(len(meter_ids), len(intervals), len(entries), written)
        audit_record(
            actor=actor,
            action="reports.rebuild",
            obj=owner,
            after={"start": str(start), "end": str(end), "intervals": done.intervals,
                   "entries": done.entries},
        )  # fmt: skip
    return done
