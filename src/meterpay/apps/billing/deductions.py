"""Platform-side deduction: new validated intervals of an account's meter → a ledger deduction.

For each (account, meter) a :class:`DeductionState` holds the rating accumulator
(``incremental_charge``'s ``state``) and the end of the last rated interval. Rating the next
intervals, persisting the state, posting the deduction and evaluating alarms / cut-off happen
in one transaction, so a crash can neither lose nor double a deduction; the deduction's
idempotency key names the meter and the rated period.

There is one path, :func:`meters_deduct_batch`: many meters in one transaction and a constant
number of statements (states, intervals, tariffs and terms loaded in one go; entries, postings,
audit rows, balances and states written in bulk; each wallet whose balance changed evaluated
once, after all its meters). :func:`meter_deduct` is that path with one meter.

Explicit entry points (no signals): :func:`meters_deduct` right after readings are stored (the
gateway asks through a job), and the periodic :func:`deductions_run` sweep catches up.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple, cast
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Field, Model
from django.utils import timezone

from meterpay.apps.audit.models import AuditEvent
from meterpay.apps.billing.models import DeductionState
from meterpay.apps.customers.models import Account
from meterpay.apps.ledger import services as ledger_services
from meterpay.apps.ledger.models import JournalEntry, Posting, Wallet
from meterpay.apps.meters.models import Meter
from meterpay.apps.organisations.models import Organisation
from meterpay.apps.readings.models import Interval
from meterpay.apps.supply.models import BalancePolicy
from meterpay.apps.supply.selectors import policy_row
from meterpay.apps.supply.services import evaluation_needed, wallet_evaluate
from meterpay.apps.tariffs import selectors
from meterpay.core import ledger, tariffs
from meterpay.core.ledger import ChargeType
from meterpay.core.money import round_money

log = logging.getLogger(__name__)
ACTOR = "rating"
MAX_INTERVALS_PER_RUN = 2000


def _utility(meter: Meter) -> str:
    return "water" if meter.kind == Meter.Kind.WATER else "electricity"


def _charge_type(meter: Meter) -> ChargeType:
    return ChargeType.WATER if meter.kind == Meter.Kind.WATER else ChargeType.ENERGY


def carried_state(tariff: tariffs.Tariff, state: dict[str, Any] | None) -> dict[str, Any] | None:
    """The rating state to go on from: none when the account has moved to another tariff.

    The old tariff's charges up to the move are posted already; the new tariff accumulates
    from the move on (its monthly quantities, tiers and demand count from there).
    """
    if not state or state.get("tariff_id") != tariff.id:
        return None
    return state


def meter_deduct(*, meter: Meter, actor: Any = ACTOR) -> JournalEntry | None:
    """Rate the meter's booked intervals after the last rated one and post the deduction: the
    batch path with one meter, except that a rating error is raised, not logged.

    The state's cursor decides what is new, so calling this twice never deducts twice.
    """
    entries = meters_deduct_batch(meter_ids=[meter.pk], actor=actor, raise_errors=True)
    return entries[0] if entries else None


def account_deduct_pending(*, account: Account, actor: Any = ACTOR) -> list[JournalEntry]:
    """Rate every meter of the account up to its latest interval (used at move-out)."""
    meter_ids = list(Meter.objects.filter(account=account).values_list("pk", flat=True))
    return meters_deduct_batch(meter_ids=meter_ids, actor=actor, raise_errors=True)


# --------------------------------------------------------------------------- the batch path
#
# See the module doc. tests/billing/test_batch_deduction.py proves that a batch posts what its
# meters one by one post.

#: Meters per transaction of the batch path.
BATCH_SIZE = 1000


@dataclass(slots=True)
class _Rated:
    meter: Meter
    account: Account
    state: DeductionState
    intervals: list[Any]  # (meter_id, start_at, end_at, consumption) rows of Interval
    currency: str
    result: Any = None  # the engine's incremental charge
    entry: ledger.JournalEntry | None = None

    @property
    def last_end(self) -> datetime:
        end: datetime = self.intervals[-1].end_at
        return end

    @property
    def reference(self) -> str:
        return f"meter-{self.meter.pk}/{self.last_end.isoformat()}"

    def wallet_delta(self) -> int:
        """What the entry takes out of the wallet, in minor units (negative: puts in)."""
        assert self.entry is not None
        code = ledger_services.wallet_code(self.account.pk)
        return sum(p.amount for p in self.entry.postings if p.account == code)


def _account_id(meter: Meter) -> int:
    assert meter.account_id is not None  # the batch selects meters of open accounts
    return meter.account_id


def _locked_states(meters: list[Meter]) -> dict[int, DeductionState]:
    """Each meter's state for its current account, created if missing, locked in pk order."""
    pairs = {(m.account_id, m.pk) for m in meters}
    accounts = {m.pk: _account_id(m) for m in meters}
    ids = [m.pk for m in meters]
    existing = set(
        DeductionState.objects.filter(meter_id__in=ids).values_list("account_id", "meter_id")
    )
    DeductionState.objects.bulk_create(
        [
            DeductionState(
                organisation_id=m.organisation_id, account_id=accounts[m.pk], meter_id=m.pk
            )
            for m in meters
            if (m.account_id, m.pk) not in existing
        ],
        ignore_conflicts=True,  # created concurrently: the lock below waits for that one
    )
    return {
        state.meter_id: state
        for state in DeductionState.objects.select_for_update()
        .filter(meter_id__in=ids)
        .order_by("pk")
        if (state.account_id, state.meter_id) in pairs
    }


class _IntervalRow(NamedTuple):
    meter_id: int
    start_at: datetime
    end_at: datetime
    consumption: Decimal


def _new_intervals(meters: list[Meter], states: dict[int, DeductionState]) -> dict[int, list[Any]]:
    """Each meter's booked intervals after its cursor, at most ``MAX_INTERVALS_PER_RUN``."""
    since: dict[int, datetime] = {}
    for meter in meters:
        assert meter.account is not None
        moment = states[meter.pk].rated_until or meter.account.opened_at
        if moment is not None:
            since[meter.pk] = moment
    found: dict[int, list[Any]] = {}
    if not since:
        return found
    rows: Any
    if connection.vendor == "postgresql":
        # each meter from its own cursor: one meter far behind does not drag in the others'
        # intervals since then
        pairs = sorted(since.items())
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT i.meter_id, i.start_at, i.end_at, i.consumption"  # noqa: S608
                f" FROM {Interval._meta.db_table} i"
                " JOIN unnest(%s::bigint[], %s::timestamptz[]) AS c(meter_id, since)"
                " ON i.meter_id = c.meter_id"
                " WHERE i.booked AND i.end_at > c.since AND i.start_at >= c.since"
                " ORDER BY i.meter_id, i.end_at",
                [[m for m, _ in pairs], [at for _, at in pairs]],
            )
            rows = [_IntervalRow(*row) for row in cursor.fetchall()]
    else:
        rows = (
            Interval.objects.filter(
                meter_id__in=list(since), booked=True, end_at__gt=min(since.values())
            )
            .order_by("meter_id", "end_at")
            .values_list("meter_id", "start_at", "end_at", "consumption", named=True)
        )
    for row in rows:
        moment = since[row.meter_id]
        if row.end_at > moment and row.start_at >= moment:
            bucket = found.setdefault(row.meter_id, [])
            if len(bucket) < MAX_INTERVALS_PER_RUN:
                bucket.append(row)
    return found


def _locked_wallets(accounts: dict[int, Account]) -> dict[int, Wallet]:
    """The accounts' wallets (created when missing), locked in pk order like every path."""
    have = set(Wallet.objects.filter(account_id__in=list(accounts)).values_list("account_id"))
    for pk, account in accounts.items():
        if (pk,) not in have:
            ledger_services.wallet_for(account)
    return {
        wallet.account_id: wallet
        for wallet in Wallet.objects.select_for_update()
        .filter(account_id__in=list(accounts))
        .order_by("pk")
    }


def _rate(item: _Rated, found: tuple[tariffs.Tariff, tariffs.AccountTerms], zone: ZoneInfo) -> None:
    """Rate the item's intervals and build its entry (a deduction, or a rating credit)."""
    tariff, terms = found

    def local(moment: datetime) -> datetime:
        return moment.astimezone(zone).replace(tzinfo=None)

    item.result = tariffs.incremental_charge(
        tariff=tariff,
        new_intervals=[
            tariffs.Interval(
                start=local(i.start_at), end=local(i.end_at), quantity=Decimal(i.consumption)
            )
            for i in item.intervals
        ],
        state=carried_state(tariff, item.state.state),
        account=terms,
    )
    amount = round_money(item.result.amount, tariff.currency)
    charge_type = _charge_type(item.meter)
    account_id = str(item.account.pk)
    if amount > 0:
        try:
            item.entry = ledger.build_deduction(
                account_id=account_id,
                lines=[(charge_type, amount)],
                reference=item.reference,
                occurred_at=item.last_end,
                currency=item.currency,
                memo=f"meter {item.meter.address}: {len(item.intervals)} interval(s) to "
                f"{item.last_end:%Y-%m-%d %H:%M}",
            )
        except ledger.NothingToPost:
            item.entry = None
    elif amount < 0:
        item.entry = ledger.build_rating_credit(
            account_id=account_id,
            charge_type=charge_type,
            amount=-amount,
            reference=item.reference,
            occurred_at=item.last_end,
            currency=item.currency,
        )


def _post(
    rated: list[_Rated], wallets: dict[int, Wallet], actor: Any
) -> tuple[list[JournalEntry], dict[int, int]]:
    """Store each entry once with its postings and audit row (the wallets are locked).

    Returns the new entries and, per account, what they took out of its wallet.
    """
    items = {
        (item.account.organisation_id, item.entry.idempotency_key): item
        for item in rated
        if item.entry is not None
    }
    if not items:
        return [], {}
    stored = {
        (row.organisation_id, row.idempotency_key): row
        for row in JournalEntry.objects.filter(
            organisation_id__in={org for org, _ in items},
            idempotency_key__in=[key for _, key in items],
        )
    }
    fresh: list[_Rated] = []
    for key, item in items.items():
        assert item.entry is not None
        if key in stored:  # stored before: the same entry (a harmless retry) or an error
            ledger.check_replay(
                stored=ledger_services.stored_entry(stored[key]), proposed=item.entry
            )
        else:
            fresh.append(item)
    user, label = ledger_services.actor_user(actor), ledger_services.actor_label(actor)
    rows: list[JournalEntry] = JournalEntry.objects.bulk_create(
        [
            JournalEntry(
                organisation_id=item.account.organisation_id,
                idempotency_key=item.entry.idempotency_key,
                occurred_at=item.entry.occurred_at,
                memo=item.entry.memo[:255],
                kind=JournalEntry.Kind.DEDUCTION,
                reference=item.reference[:120],
                account_id=item.account.pk,
                wallet_amount=-item.wallet_delta(),
                currency=item.entry.currency,
                created_by=user,
                actor_label=label,
            )
            for item in fresh
            if item.entry is not None
        ]
    )
    ledger_accounts = {
        (w.organisation_id, ledger_services.wallet_code(w.account_id)): w.ledger_account_id
        for w in wallets.values()
    }
    postings, audits = [], []
    deltas: dict[int, int] = {}
    for item, row in zip(fresh, rows, strict=True):
        assert item.entry is not None
        for p in item.entry.postings:
            code = (row.organisation_id, p.account)
            if code not in ledger_accounts:
                ledger_accounts[code] = ledger_services.ledger_account_get(*code).pk
            postings.append(
                Posting(
                    organisation_id=row.organisation_id,
                    entry_id=row.pk,
                    ledger_account_id=ledger_accounts[code],
                    amount=p.amount,
                )
            )
        audits.append(
            AuditEvent(
                organisation_id=row.organisation_id,
                actor=user,
                actor_label=label,
                action=f"ledger.{JournalEntry.Kind.DEDUCTION}",
                object_type=JournalEntry._meta.label_lower,
                object_id=str(row.pk),
                object_repr=str(row)[:255],
                after={
                    "key": row.idempotency_key,
                    "postings": [[p.account, p.amount] for p in item.entry.postings],
                    "memo": row.memo,
                },
            )
        )
        deltas[item.account.pk] = deltas.get(item.account.pk, 0) + item.wallet_delta()
    Posting.objects.bulk_create(postings)
    AuditEvent.objects.bulk_create(audits)
    return rows, deltas


def _rows_update(model: type[Model], rows: Sequence[Model], fields: list[str]) -> None:
    """Write ``fields`` of ``rows`` in one statement (PostgreSQL: ``UPDATE … FROM (VALUES …)``;
    elsewhere one ``executemany``).

    Django's ``bulk_update`` builds a ``CASE`` per field and row; at 1000 rows compiling it
    costs more than the rest of the deduction.
    """
    if not rows:
        return
    connection = transaction.get_connection()
    quote = connection.ops.quote_name
    meta = model._meta
    pk = meta.pk
    assert pk is not None
    columns: list[Field[Any, Any]] = [
        pk,
        *(cast("Field[Any, Any]", meta.get_field(name)) for name in fields),
    ]
    values = [
        [column.get_db_prep_save(getattr(row, column.attname), connection) for column in columns]
        for row in rows
    ]
    names = [quote(column.column) for column in columns]
    table = quote(meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            placeholders = "(" + ", ".join(f"%s::{c.db_type(connection)}" for c in columns) + ")"
            sets = ", ".join(f"{name} = v.{name}" for name in names[1:])
            table_rows = ", ".join([placeholders] * len(rows))
            cursor.execute(
                f"UPDATE {table} AS t SET {sets} FROM (VALUES {table_rows})"  # noqa: S608 - names from the model
                f" AS v({', '.join(names)}) WHERE t.{names[0]} = v.{names[0]}",
                [value for row_values in values for value in row_values],
            )
        else:
            sets = ", ".join(f"{name} = %s" for name in names[1:])
            cursor.executemany(
                f"UPDATE {table} SET {sets} WHERE {names[0]} = %s",  # noqa: S608 - names from the model
                [[*row_values[1:], row_values[0]] for row_values in values],
            )


def meters_deduct_batch(
    *, meter_ids: Sequence[int], actor: Any = ACTOR, raise_errors: bool = False
) -> list[JournalEntry]:
    """Rate and post many meters in one transaction; the new entries.

    A meter whose rating fails stays unrated and is logged (the others go on), or with
    ``raise_errors`` the error is raised. Lock order, as on every path: deduction states, then
    wallets, both in pk order.
    """
    with transaction.atomic():
        meters = list(
            Meter.objects.filter(
                pk__in=set(meter_ids),
                account__status=Account.Status.OPEN,
                account__billing_side=Account.BillingSide.PLATFORM,
            )
            .select_related("account")
            .order_by("pk")
        )
        if not meters:
            return []
        states = _locked_states(meters)
        new = _new_intervals(meters, states)
        busy = [m for m in meters if new.get(m.pk)]
        if not busy:
            return []
        accounts = {_account_id(m): m.account for m in busy if m.account is not None}
        book = selectors.TariffBook(accounts.values())
        policies: dict[int, BalancePolicy] = {}
        zones = {
            pk: ZoneInfo(name)
            for pk, name in Organisation.objects.filter(
                pk__in={a.organisation_id for a in accounts.values()}
            ).values_list("pk", "timezone")
        }
        wallets = _locked_wallets(accounts)
        rated: list[_Rated] = []
        for meter in busy:
            account = accounts[_account_id(meter)]
            item = _Rated(
                meter, account, states[meter.pk], new[meter.pk], wallets[account.pk].currency
            )
            found = book.in_force(account, _utility(meter), item.last_end)
            if found is None:
                log.info("no tariff for account %s meter %s: not rated yet", account.pk, meter.pk)
                continue
            try:
                _rate(item, found, zones[account.organisation_id])
            except (tariffs.RatingError, tariffs.TariffError):
                if raise_errors:
                    raise
                log.exception("deduction of meter %s failed", meter.pk)
                continue
            rated.append(item)
        entries, deltas = _post(rated, wallets, actor)
        moment = timezone.now()
        changed = [wallets[pk] for pk in deltas]
        for wallet in changed:
            wallet.balance_minor -= deltas[wallet.account_id]
            wallet.updated_at = moment
        _rows_update(Wallet, changed, ["balance_minor", "updated_at"])
        for item in rated:
            item.state.state = dict(item.result.state)
            item.state.rated_until = item.last_end
            item.state.updated_at = moment
        _rows_update(
            DeductionState, [item.state for item in rated], ["state", "rated_until", "updated_at"]
        )
        for wallet in changed:
            wallet.account = accounts[wallet.account_id]
            org = wallet.organisation_id
            if org not in policies:
                policies[org] = policy_row(org)
            if evaluation_needed(wallet, policies[org], moment):
                wallet_evaluate(wallet=wallet, now=moment)
        return entries


def _chunks(ids: Sequence[int]) -> list[list[int]]:
    ordered = sorted(set(ids))
    return [ordered[i : i + BATCH_SIZE] for i in range(0, len(ordered), BATCH_SIZE)]


def _each_meter(meter_ids: Sequence[int]) -> int:
    count = 0
    for pk in meter_ids:
        try:
            if meter_deduct(meter=Meter(pk=pk)) is not None:
                count += 1
        except Exception:  # one bad meter must not stop the others; the sweep retries it
            log.exception("deduction of meter %s failed", pk)
    return count


def meters_deduct(*, meter_ids: Sequence[int]) -> int:
    """Deduct for these meters now (the gateway asks right after storing their readings).

    A batch that fails is retried meter by meter, so one bad meter cannot hold up the others.
    """
    count = 0
    for chunk in _chunks(meter_ids):
        try:
            count += len(meters_deduct_batch(meter_ids=chunk))
        except Exception:
            log.exception("batch deduction of %d meters failed: one by one", len(chunk))
            count += _each_meter(chunk)
    return count


def deductions_run(*, now: datetime | None = None) -> int:
    """The sweep: every platform-billed meter of an open account with unrated intervals."""
    meters = Meter.objects.filter(
        account__status=Account.Status.OPEN,
        account__billing_side=Account.BillingSide.PLATFORM,
        removed_on__isnull=True,
    ).values_list("pk", flat=True)
    return meters_deduct(meter_ids=list(meters))
