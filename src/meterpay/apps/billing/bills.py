"""The life of a bill after it is made: issue, payment, overdue and reminders, credit notes
and re-issue. Bill runs (``runs.py``) make the drafts and take them through confirmation.

A bill's booked lines (charges, shares, line loss, adjustments) are posted when it is issued,
in one entry per place they are owed: the wallet (deducted from a prepaid wallet, or added to a
postpaid account's running account) or the account's receivable (a payment request). What a
bill still asks for (``unpaid_minor``) follows from what is owed there: the customer's debt is
laid on the newest bills first, so every payment settles the oldest bills first
(``meterpay.core.billing.lifecycle.payment_allocation``). An issued bill is never edited: a
credit note reverses what it booked and a corrected bill replaces it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import JSONField, Max, Model, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from meterpay.apps.audit.models import AuditEvent
from meterpay.apps.audit.services import audit_record
from meterpay.apps.billing.deductions import _rows_update
from meterpay.apps.billing.lines import LineDraft, Section
from meterpay.apps.billing.models import Bill, BillLine
from meterpay.apps.customers.models import Account
from meterpay.apps.ledger.models import JournalEntry, LedgerAccount, Posting, SupplyStatus, Wallet
from meterpay.apps.ledger.services import (
    actor_label,
    actor_user,
    channel_parse,
    entry_post,
    stored_entry,
    wallet_code,
    wallet_for,
)
from meterpay.apps.notifications.models import Notification, NotificationChannel
from meterpay.apps.notifications.services import notification_create
from meterpay.apps.notifications.tasks import notifications_send_task
from meterpay.apps.organisations.models import Organisation
from meterpay.apps.payments.services import recharge_record
from meterpay.apps.supply.models import BalancePolicy
from meterpay.apps.supply.selectors import policy_row
from meterpay.apps.supply.services import (
    ARREARS_SOURCES,
    evaluation_needed,
    movement_post,
    wallet_evaluate,
)
from meterpay.core import ledger
from meterpay.core.billing.lifecycle import (
    BillStatus,
    TransitionError,
    check_transition,
    payment_allocation,
)
from meterpay.core.ledger import BillTarget, Channel, ChargeType
from meterpay.core.money import format_amount, from_minor, to_minor

log = logging.getLogger(__name__)
type Actor = Any

#: Statuses whose bills ask to be paid (the payment allocation runs over them).
LIVE = (Bill.Status.ISSUED, Bill.Status.PAID)
#: An overdue bill is reminded at most this often.
REMINDER_GAP = timedelta(days=7)


class BillError(ValidationError):
    """A bill operation that breaks a rule (wrong status, bad amount…)."""


def _transition(bill: Bill, target: str) -> None:
    try:
        check_transition(current=BillStatus(bill.status), target=BillStatus(target))
    except TransitionError as exc:
        raise BillError({"status": str(exc)}) from None


def bill_number(organisation_id: int, prefix: str, count: int = 1) -> list[str]:
    """``count`` new numbers ``<prefix>-00001`` …, unique in the organisation.

    The organisation row is locked while numbering, so two runs never take the same numbers.
    """
    Organisation.objects.select_for_update().filter(pk=organisation_id).first()
    last = (
        Bill.objects.filter(organisation_id=organisation_id, number__startswith=f"{prefix}-")
        .aggregate(n=Max("number"))
        .get("n")
    )
    start = int(last.rsplit("-", 1)[1]) + 1 if last else 1
    return [f"{prefix}-{n:05d}" for n in range(start, start + count)]


def bill_values(
    *,
    account: Account,
    kind: str,
    period_start: date | None,
    period_end: date,
    due_on: date,
    lines: Sequence[LineDraft],
    number: str,
    run_id: int | None = None,
    status: str = Bill.Status.DRAFT,
    readings: list[dict[str, Any]] | None = None,
    review: dict[str, Any] | None = None,
    replaces: Bill | None = None,
    credits: Bill | None = None,
    notes: str = "",
    currency: str = "CNY",
) -> dict[str, Any]:
    """The fields of an unsaved bill of these lines (what it totals, asks for and where it is
    owed), by attribute name: what :func:`bill_row` makes a bill of, and what a run stores
    without one (:func:`bills_store_values`)."""
    return {
        "organisation_id": account.organisation_id,
        "number": number,
        "run_id": run_id,
        "account_id": account.pk,
        "kind": kind,
        "status": status,
        "settles": bill_settles(account, lines),
        "period_start": period_start,
        "period_end": period_end,
        "currency": currency,
        "total_minor": sum(line.amount_minor for line in lines),
        "due_minor": bill_due(account, lines),
        "unpaid_minor": 0,
        "due_on": due_on,
        "readings": readings or [],
        "review": review or {},
        "replaces_id": None if replaces is None else replaces.pk,
        "credits_id": None if credits is None else credits.pk,
        "notes": notes,
    }


def bill_row(
    *,
    account: Account,
    lines: Sequence[LineDraft],
    replaces: Bill | None = None,
    credits: Bill | None = None,
    **fields: Any,
) -> Bill:
    """An unsaved bill of these lines (the fields of :func:`bill_values`)."""
    bill = Bill(
        **bill_values(account=account, lines=lines, replaces=replaces, credits=credits, **fields)
    )
    bill.account = account
    bill.replaces = replaces
    bill.credits = credits
    return bill


#: The columns a bill line is copied with, as :meth:`LineDraft.row` fills them.
LINE_COLUMNS = (
    "bill_id",
    "position",
    "section",
    "label",
    "quantity",
    "unit",
    "unit_price_micro",
    "amount_minor",
    "charge_type",
    "settles",
    "posted",
    "meter_id",
    "detail",
)


def line_values(line: LineDraft, *, bill_id: int, position: int) -> tuple[Any, ...]:
    """``line.row(…)``'s values in :data:`LINE_COLUMNS` order (JSON as text), no model."""
    return (
        bill_id,
        position,
        line.section,
        line.label[:200],
        line.quantity,
        line.unit,
        line.unit_price_micro,
        line.amount_minor,
        str(line.charge_type),
        line.settles,
        line.posted,
        line.meter_id,
        json.dumps(line.detail),
    )


def _copy(table: str, columns: Sequence[str | None], rows: Iterable[Sequence[Any]]) -> None:
    """PostgreSQL's COPY of rows of Python values (JSON as text)."""
    connection = transaction.get_connection()
    quote = connection.ops.quote_name
    names = ", ".join(quote(str(c)) for c in columns)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {quote(table)} ({names}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)


def _bills_copy(
    items: Sequence[tuple[dict[str, Any], Sequence[LineDraft]]], now: datetime
) -> list[int]:
    """Bills (their :func:`bill_values`) and lines copied on PostgreSQL: no model instance or
    statement made per row. Their ids."""
    ids = _store_rows(Bill, [values for values, _lines in items], now, ids=True)
    columns = {f.attname: f.column for f in BillLine._meta.concrete_fields}
    _copy(
        BillLine._meta.db_table,
        [columns[name] for name in LINE_COLUMNS],
        (
            line_values(line, bill_id=pk, position=n)
            for pk, (_values, lines) in zip(ids, items, strict=True)
            for n, line in enumerate(lines, 1)
        ),
    )
    return ids


def bills_store_values(
    items: Sequence[tuple[dict[str, Any], Sequence[LineDraft]]], batch_size: int = 2000
) -> list[int]:
    """Store many bills, given as :func:`bill_values`, with their lines in bulk (no ledger
    posting: that happens at issue); their ids. A run of a large site stores 100,000 bills:
    PostgreSQL copies them, elsewhere ``bulk_create`` in batches."""
    if not items:
        return []
    if transaction.get_connection().vendor == "postgresql":
        return _bills_copy(items, timezone.now())
    bills = [(Bill(**values), lines) for values, lines in items]
    bills_store(bills, batch_size=batch_size)
    return [bill.pk for bill, _lines in bills]


def bills_store(items: Sequence[tuple[Bill, Sequence[LineDraft]]], batch_size: int = 2000) -> None:
    """Store many bills and their lines in bulk (no ledger posting: that happens at issue)."""
    connection = transaction.get_connection()
    if items and connection.vendor == "postgresql":
        fields = [f for f in Bill._meta.concrete_fields if not f.primary_key]
        now = timezone.now()
        rows = [
            ({f.attname: getattr(bill, f.attname) for f in fields}, lines) for bill, lines in items
        ]
        for (bill, _lines), pk in zip(items, _bills_copy(rows, now), strict=True):
            bill.pk = pk
            bill.created_at = bill.created_at or now
            bill._state.adding = False
            bill._state.db = connection.alias
        return
    for offset in range(0, len(items), batch_size):
        chunk = items[offset : offset + batch_size]
        bills = Bill.objects.bulk_create([bill for bill, _lines in chunk])
        BillLine.objects.bulk_create(
            [
                line.row(bill_id=bill.pk, position=n)
                for bill, (_row, lines) in zip(bills, chunk, strict=True)
                for n, line in enumerate(lines, 1)
            ],
            batch_size=5000,
        )


def bill_store(*, lines: Sequence[LineDraft], **fields: Any) -> Bill:
    """Store one bill with its lines (see :func:`bill_row` for the fields)."""
    bill = bill_row(lines=lines, **fields)
    bills_store([(bill, lines)])
    return bill


def bill_settles(account: Account, lines: Sequence[LineDraft]) -> str:
    if account.billing_mode == Account.BillingMode.POSTPAID:
        return Bill.Settles.WALLET
    if any(line.settles == BillTarget.RECEIVABLE for line in lines):
        return Bill.Settles.RECEIVABLE
    return Bill.Settles.WALLET


def bill_due(account: Account, lines: Sequence[LineDraft]) -> int:
    """What a bill asks to be paid: everything for a postpaid account; for a prepaid one only
    the requested lines (the rest was, or is, taken from the prepaid wallet)."""
    if account.billing_mode == Account.BillingMode.POSTPAID:
        return sum(line.amount_minor for line in lines)
    return sum(line.amount_minor for line in lines if line.settles == BillTarget.RECEIVABLE)


def _booked(bill: Bill) -> dict[str, list[tuple[ChargeType, int]]]:
    """The bill's lines it books itself, by where they are owed."""
    booked: dict[str, list[tuple[ChargeType, int]]] = {}
    postpaid = bill.account.billing_mode == Account.BillingMode.POSTPAID
    for line in bill.lines.filter(posted=True).order_by("position"):
        target = BillTarget.WALLET if postpaid else BillTarget(line.settles)
        booked.setdefault(target, []).append((ChargeType(line.charge_type), line.amount_minor))
    return booked


def bill_post(*, actor: Actor, bill: Bill, evaluate: bool = True) -> list[JournalEntry]:
    """Book the bill's own lines: one entry per place they are owed (idempotent by number)."""
    entries = []
    now = timezone.now()
    for target, lines in sorted(_booked(bill).items()):
        try:
            entry = ledger.build_bill_charges(
                account_id=str(bill.account_id),
                lines=lines,
                target=BillTarget(target),
                reference=bill.number,
                occurred_at=now,
                currency=bill.currency,
                memo=f"bill {bill.number}",
            )
        except ledger.NothingToPost:
            continue
        posted = movement_post(
            actor=actor,
            entry=entry,
            kind=JournalEntry.Kind.BILL,
            account=bill.account,
            reference=f"bill:{bill.number}",
            evaluate=evaluate and target == BillTarget.WALLET,
        )
        entries.append(posted.entry)
    return entries


@transaction.atomic
def bill_issue(*, actor: Actor, bill: Bill, notify: bool = True) -> Bill:
    """Issue a confirmed bill: book its lines, tell the customer, and settle what is paid."""
    bill = Bill.objects.select_for_update().select_related("account__customer").get(pk=bill.pk)
    _transition(bill, Bill.Status.ISSUED)
    wallet = wallet_for(bill.account)
    # evaluated once the bill counts as issued, so its own charges are laid on it, not on an
    # older bill (which would then look overdue)
    entries = bill_post(actor=actor, bill=bill, evaluate=False)
    bill.status = Bill.Status.ISSUED
    bill.issued_at = timezone.now()
    bill.unpaid_minor = bill.due_minor
    if entries:
        bill.entry = entries[-1]
    bill.save(update_fields=["status", "issued_at", "unpaid_minor", "entry"])
    bills_settle(account=bill.account)
    if any(entry.wallet_amount for entry in entries):
        wallet_evaluate(
            wallet=Wallet.objects.select_for_update().get(pk=wallet.pk), now=timezone.now()
        )
    bill.refresh_from_db()
    if notify and bill.due_minor > 0:
        amount = format_amount(from_minor(bill.due_minor, bill.currency), bill.currency)
        notification_create(
            account=bill.account,
            kind=Notification.Kind.BILL_ISSUED,
            subject=_("Bill %(number)s: %(amount)s due on %(due)s")
            % {"number": bill.number, "amount": amount, "due": bill.due_on},
            body=_("Your bill %(number)s for %(start)s to %(end)s is %(amount)s, due on %(due)s.")
            % {
                "number": bill.number,
                "start": bill.period_start or "",
                "end": bill.period_end,
                "amount": amount,
                "due": bill.due_on,
            },
        )
    audit_record(
        actor=actor,
        action="bill.issue",
        obj=bill,
        after={"number": bill.number, "total": bill.total_minor, "due": bill.due_minor},
    )
    return bill


def _covered_until(account: Account) -> datetime | None:
    """The end of what the account's live wallet bills cover (a balance statement covers what
    was owed when it was issued)."""
    zone = timezone.get_current_timezone()
    ends: list[datetime] = []
    for start, end, issued in Bill.objects.filter(
        account=account, settles=Bill.Settles.WALLET, status__in=LIVE, due_minor__gt=0
    ).values_list("period_start", "period_end", "issued_at"):
        if start is not None:
            ends.append(datetime.combine(end, datetime.min.time(), tzinfo=zone))
        elif issued is not None:
            ends.append(issued)
    return max(ends) if ends else None


#: Bills issued together by :func:`bills_issue` (a constant number of statements for each).
ISSUE_BATCH = 2000


@dataclass(slots=True)
class _Issue:
    """A bill to issue and the entries it books (one per place its lines are owed)."""

    bill: Bill
    planned: list[ledger.JournalEntry] = field(default_factory=list)
    entry_ids: list[int] = field(default_factory=list)  # stored now or before (a replay)
    wallet_amounts: list[int] = field(default_factory=list)  # what each moved in the wallet


def bills_issue(*, actor: Actor, bills: Sequence[Bill], notify: bool = True) -> list[Bill]:
    """Issue many confirmed bills as :func:`bill_issue` issues each, in a constant number of
    statements per :data:`ISSUE_BATCH` bills (a bill run's issue).

    What is written is what issuing them one by one writes (tests/billing/test_bulk_issue.py):
    the same entries, postings and audit rows (built by the same pure builders, stored in
    bulk, replays of stored keys checked), the wallets' balances changed once per wallet and
    each changed wallet evaluated as ``movement_post`` evaluates it, unless the supply rules
    would write nothing for it (``evaluation_needed`` for prepaid wallets, the same answer for
    postpaid ones here), then every account's bills settled and the customers notified. Two
    bills of one account go in different batches, in order. Call it in a transaction.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("bills_issue runs inside a transaction")
    pending = sorted((b.pk for b in bills), reverse=True)
    issued: list[Bill] = []
    while pending:
        chunk = pending[-ISSUE_BATCH:]
        del pending[-ISSUE_BATCH:]
        rows = list(
            Bill.objects.select_for_update()
            .filter(pk__in=chunk)
            .select_related("account")
            .defer("readings", "review", "notes")  # what issuing does not read
            .order_by("pk")
        )
        seen: set[int] = set()
        batch: list[Bill] = []
        for bill in rows:
            if bill.account_id in seen:  # a second bill of the account: after the first
                pending.append(bill.pk)
                continue
            seen.add(bill.account_id)
            batch.append(bill)
        pending.sort(reverse=True)
        issued.extend(_issue_batch(actor=actor, bills=batch, notify=notify))
    return issued


def _issue_batch(*, actor: Actor, bills: list[Bill], notify: bool) -> list[Bill]:
    if not bills:
        return []
    for bill in bills:
        _transition(bill, Bill.Status.ISSUED)
    now = timezone.now()
    accounts = {bill.account_id: bill.account for bill in bills}
    wallets = _wallets_of(accounts)
    booked: dict[int, dict[str, list[tuple[ChargeType, int]]]] = {b.pk: {} for b in bills}
    postpaid = {
        pk
        for pk, account in accounts.items()
        if account.billing_mode == Account.BillingMode.POSTPAID
    }
    by_pk = {bill.pk: bill for bill in bills}
    for bill_id, settles, charge_type, amount in (
        BillLine.objects.filter(bill_id__in=list(by_pk), posted=True)
        .order_by("bill_id", "position")
        .values_list("bill_id", "settles", "charge_type", "amount_minor")
    ):
        target = BillTarget.WALLET if by_pk[bill_id].account_id in postpaid else settles
        booked[bill_id].setdefault(target, []).append((ChargeType(charge_type), amount))
    issues = []
    for bill in bills:
        item = _Issue(bill)
        for target, lines in sorted(booked[bill.pk].items()):
            try:
                entry = ledger.build_bill_charges(
                    account_id=str(bill.account_id),
                    lines=lines,
                    target=BillTarget(target),
                    reference=bill.number,
                    occurred_at=now,
                    currency=bill.currency,
                    memo=f"bill {bill.number}",
                )
            except ledger.NothingToPost:
                continue
            ledger.validate_postings(entry.postings)
            item.planned.append(entry)
        issues.append(item)
    _entries_store(actor=actor, issues=issues, wallets=wallets, now=now)
    for item in issues:
        bill = item.bill
        bill.status = Bill.Status.ISSUED
        bill.issued_at = now
        bill.unpaid_minor = bill.due_minor
        if item.entry_ids:
            bill.entry_id = item.entry_ids[-1]
    _rows_update(Bill, bills, ["status", "issued_at", "unpaid_minor", "entry"])
    _settle_many(accounts=list(accounts.values()), now=now, known=by_pk)
    # evaluated once the bills count as issued, so their own charges are laid on them, not
    # on older bills (which would then look overdue)
    _wallets_evaluate(issues=issues, wallets=wallets, now=now)
    if notify:
        _notify_issued([b for b in bills if b.due_minor > 0], now)
    user, label = actor_user(actor), actor_label(actor)
    _store_rows(
        AuditEvent,
        [
            {
                "organisation_id": bill.organisation_id,
                "actor_id": None if user is None else user.pk,
                "actor_label": label,
                "action": "bill.issue",
                "object_type": Bill._meta.label_lower,
                "object_id": str(bill.pk),
                "object_repr": str(bill)[:255],
                "after": {"number": bill.number, "total": bill.total_minor, "due": bill.due_minor},
            }
            for bill in bills
        ],
        now,
    )
    return bills


def _stamped(field: Any) -> bool:
    """A time set when the row is saved (``auto_now`` or ``auto_now_add``)."""
    return bool(getattr(field, "auto_now_add", False) or getattr(field, "auto_now", False))


def _store_rows(
    model: type[Model], rows: Sequence[dict[str, Any]], now: datetime, *, ids: bool = False
) -> list[int]:
    """Rows of ``model`` (values by attribute name; other fields their defaults, times set
    on save ``now``) stored in bulk: PostgreSQL copies them (their ids taken from the
    sequence first when ``ids``), elsewhere ``bulk_create``. The new ids when ``ids``."""
    if not rows:
        return []
    connection = transaction.get_connection()
    if connection.vendor != "postgresql":
        objects = model._default_manager.bulk_create([model(**row) for row in rows])
        return [obj.pk for obj in objects] if ids else []
    meta = model._meta
    pk = meta.pk
    assert pk is not None
    fields = [f for f in meta.concrete_fields if f is not pk]
    new_ids: list[int] = []
    if ids:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [meta.db_table, pk.column, len(rows)],
            )
            new_ids = [value for (value,) in cursor.fetchall()]
    # per field: its name, its default, and what to do with a value (0 nothing, 1 a time set
    # on save, 2 JSON to text) and the JSON encoder
    spec = [
        (
            f.attname,
            f.get_default(),
            1 if _stamped(f) else 2 if isinstance(f, JSONField) else 0,
            getattr(f, "encoder", None),
        )
        for f in fields
    ]

    def values(row: dict[str, Any]) -> list[Any]:
        out = []
        get = row.get
        for name, default, kind, encoder in spec:
            value = get(name, default)
            if kind == 1 and value is None:
                value = now
            elif kind == 2 and value is not None:
                value = json.dumps(value, cls=encoder)
            out.append(value)
        return out

    columns = [f.column for f in fields]
    if ids:
        _copy(
            meta.db_table,
            [pk.column, *columns],
            ([key, *values(row)] for key, row in zip(new_ids, rows, strict=True)),
        )
    else:
        _copy(meta.db_table, columns, (values(row) for row in rows))
    return new_ids


def _wallets_of(accounts: dict[int, Account]) -> dict[int, Wallet]:
    """The accounts' wallets (created when missing, as ``wallet_for`` does), not locked."""
    found = {w.account_id: w for w in Wallet.objects.filter(account_id__in=list(accounts))}
    for pk, account in accounts.items():
        if pk not in found:
            found[pk] = wallet_for(account)
    return found


def _ledger_accounts(codes: set[tuple[int, str]]) -> dict[tuple[int, str], int]:
    """Ids of these (organisation, code) ledger accounts, created when missing."""
    if not codes:
        return {}

    def load() -> dict[tuple[int, str], int]:
        found: dict[tuple[int, str], int] = {}
        for organisation_id in {org for org, _code in codes}:
            wanted = [code for org, code in codes if org == organisation_id]
            for pk, code in LedgerAccount.objects.filter(
                organisation_id=organisation_id, code__in=wanted
            ).values_list("pk", "code"):
                found[(organisation_id, code)] = pk
        return found

    found = load()
    missing = codes - set(found)
    if missing:
        LedgerAccount.objects.bulk_create(
            [
                LedgerAccount(
                    organisation_id=org, code=code, kind=str(ledger.parse_account(code).kind)
                )
                for org, code in sorted(missing)
            ],
            ignore_conflicts=True,  # created concurrently: the one stored is the one
        )
        found = load()
    return found


def _entries_store(
    *, actor: Actor, issues: list[_Issue], wallets: dict[int, Wallet], now: datetime
) -> None:
    """Store the planned entries with their postings and audit rows, and change the wallets'
    balances, as ``entry_post`` does for each (replays of stored keys are checked, not stored
    again; the wallets of the entries are locked first, in pk order)."""
    planned = [(item, entry) for item in issues for entry in item.planned]
    if not planned:
        return
    touched = sorted(
        {
            wallets[item.bill.account_id].pk
            for item, entry in planned
            if any(p.account.startswith("wallet:") for p in entry.postings)
        }
    )
    locked = {
        w.account_id: w
        for w in Wallet.objects.select_for_update().filter(pk__in=touched).order_by("pk")
    }
    wallets.update(locked)
    stored = {
        (row.organisation_id, row.idempotency_key): row
        for row in JournalEntry.objects.filter(
            organisation_id__in={item.bill.organisation_id for item, _e in planned},
            idempotency_key__in=[entry.idempotency_key for _i, entry in planned],
        )
    }
    fresh: list[tuple[_Issue, ledger.JournalEntry]] = []
    for item, entry in planned:
        row = stored.get((item.bill.organisation_id, entry.idempotency_key))
        if row is not None:  # stored before: a harmless retry, or a conflict raised here
            ledger.check_replay(stored=stored_entry(row), proposed=entry)
        else:
            fresh.append((item, entry))
    known = {  # the wallets' ledger accounts are known
        (w.organisation_id, wallet_code(w.account_id)): w.ledger_account_id
        for w in wallets.values()
    }
    codes = {(item.bill.organisation_id, p.account) for item, e in fresh for p in e.postings}
    ledger_ids = {**known, **_ledger_accounts(codes - set(known))}
    user, label = actor_user(actor), actor_label(actor)
    user_id = None if user is None else user.pk

    def wallet_amount(entry: ledger.JournalEntry) -> int:
        return -sum(p.amount for p in entry.postings if p.account.startswith("wallet:"))

    entry_ids = _store_rows(
        JournalEntry,
        [
            {
                "organisation_id": item.bill.organisation_id,
                "idempotency_key": entry.idempotency_key,
                "occurred_at": entry.occurred_at,
                "memo": entry.memo[:255],
                "kind": JournalEntry.Kind.BILL,
                "channel": "",
                "reference": f"bill:{item.bill.number}"[:120],
                "account_id": item.bill.account_id,
                "wallet_amount": wallet_amount(entry),
                "currency": entry.currency,
                "created_by_id": user_id,
                "actor_label": label,
            }
            for item, entry in fresh
        ],
        now,
        ids=True,
    )
    _store_rows(
        Posting,
        [
            {
                "organisation_id": item.bill.organisation_id,
                "entry_id": entry_id,
                "ledger_account_id": ledger_ids[(item.bill.organisation_id, p.account)],
                "amount": p.amount,
            }
            for (item, entry), entry_id in zip(fresh, entry_ids, strict=True)
            for p in entry.postings
        ],
        now,
    )
    unbalanced = (
        Posting.objects.filter(entry_id__in=entry_ids)
        .values("entry_id")
        .annotate(total=Sum("amount"))
        .exclude(total=0)
        .order_by("entry_id")
        .values_list("entry_id", "total")
        .first()
    )
    if unbalanced is not None:  # pragma: no cover - the core makes this impossible
        raise ledger.UnbalancedEntry(f"entry {unbalanced[0]} sums to {unbalanced[1]}")
    changed: dict[int, Wallet] = {}
    for item, entry in fresh:
        wallet = wallets[item.bill.account_id]
        code = wallet_code(wallet.account_id)
        if any(p.account == code for p in entry.postings):
            wallet.balance_minor -= sum(p.amount for p in entry.postings if p.account == code)
            wallet.updated_at = now
            changed[wallet.pk] = wallet
    _rows_update(
        Wallet, sorted(changed.values(), key=lambda w: w.pk), ["balance_minor", "updated_at"]
    )
    _store_rows(
        AuditEvent,
        [
            {
                "organisation_id": item.bill.organisation_id,
                "actor_id": user_id,
                "actor_label": label,
                "action": f"ledger.{JournalEntry.Kind.BILL}",
                "object_type": JournalEntry._meta.label_lower,
                "object_id": str(entry_id),
                "object_repr": entry.idempotency_key[:255],
                "after": {
                    "key": entry.idempotency_key,
                    "postings": [[p.account, p.amount] for p in entry.postings],
                    "memo": entry.memo[:255],
                },
            }
            for (item, entry), entry_id in zip(fresh, entry_ids, strict=True)
        ],
        now,
    )
    new = {
        (item.bill.organisation_id, entry.idempotency_key): entry_id
        for (item, entry), entry_id in zip(fresh, entry_ids, strict=True)
    }
    for item, entry in planned:
        key = (item.bill.organisation_id, entry.idempotency_key)
        if key in new:
            item.entry_ids.append(new[key])
            item.wallet_amounts.append(wallet_amount(entry))
        else:
            item.entry_ids.append(stored[key].pk)
            item.wallet_amounts.append(stored[key].wallet_amount)


def _wallets_evaluate(*, issues: list[_Issue], wallets: dict[int, Wallet], now: datetime) -> None:
    """Evaluate each wallet a bill's entry moved money in (stored now or before), as
    :func:`bill_issue` does, skipping those the supply rules would write nothing for."""
    to_check: dict[int, Wallet] = {}
    for item in issues:
        if any(item.wallet_amounts):
            wallet = wallets[item.bill.account_id]
            wallet.account = item.bill.account
            to_check[wallet.pk] = wallet
    if not to_check:
        return
    policies: dict[int, BalancePolicy] = {}
    for org in {w.organisation_id for w in to_check.values()}:
        policies[org] = policy_row(org)
    quiet = _postpaid_quiet(
        [w for w in to_check.values() if w.account.billing_mode == Account.BillingMode.POSTPAID],
        policies,
        now,
    )
    for pk in sorted(to_check):
        wallet = to_check[pk]
        if pk in quiet:
            continue
        if wallet.account.billing_mode == Account.BillingMode.PREPAID and not evaluation_needed(
            wallet, policies[wallet.organisation_id], now
        ):
            continue
        wallet_evaluate(wallet=wallet, now=now)


def _postpaid_quiet(
    wallets: list[Wallet], policies: dict[int, BalancePolicy], now: datetime
) -> set[int]:
    """Postpaid wallets whose evaluation now would change nothing: supply on and no cut-off
    deferred, and (their bills settled already) no bill owed to the wallet unpaid past its
    due date and the grace days: the arrears rule of :func:`postpaid_arrears`, one query."""
    if not wallets or any(source is not postpaid_arrears for source in ARREARS_SOURCES):
        return set()
    candidates = {
        w.account_id: w
        for w in wallets
        if w.supply == SupplyStatus.ON and not w.cut_deferred and w.cut_deferred_until is None
    }
    if not candidates:
        return set()
    today = timezone.localdate(now)
    overdue: set[int] = set()
    for grace in {policies[w.organisation_id].postpaid_grace_days for w in candidates.values()}:
        overdue.update(
            Bill.objects.filter(
                account_id__in=[
                    pk
                    for pk, w in candidates.items()
                    if policies[w.organisation_id].postpaid_grace_days == grace
                ],
                settles=Bill.Settles.WALLET,
                status=Bill.Status.ISSUED,
                unpaid_minor__gt=0,
                due_on__lt=today - timedelta(days=grace),
            ).values_list("account_id", flat=True)
        )
    return {w.pk for pk, w in candidates.items() if pk not in overdue}


def _wallet_owes(balances: dict[int, int], live: dict[int, list[Bill]]) -> dict[int, int]:
    """:func:`owed` on the wallet for many accounts: each account's debt, less what it took
    after the end of what its live wallet bills (``live``) cover, in one statement."""
    zone = timezone.get_current_timezone()
    covered: dict[int, datetime] = {}
    for account_id, bills in live.items():
        ends = [
            datetime.combine(b.period_end, datetime.min.time(), tzinfo=zone)
            if b.period_start is not None
            else b.issued_at
            for b in bills
            if b.period_start is not None or b.issued_at is not None
        ]
        if ends:
            covered[account_id] = max(e for e in ends if e is not None)
    unbilled: dict[int, int] = {}
    kinds = [JournalEntry.Kind.DEDUCTION.value, JournalEntry.Kind.FEE.value]
    if covered:
        connection = transaction.get_connection()
        if connection.vendor == "postgresql":
            pairs = sorted(covered.items())
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT e.account_id, SUM(e.wallet_amount)"  # noqa: S608 - the model's table
                    f" FROM {connection.ops.quote_name(JournalEntry._meta.db_table)} e"
                    " JOIN unnest(%s::bigint[], %s::timestamptz[]) AS c(account_id, covered)"
                    " ON e.account_id = c.account_id"
                    " WHERE e.kind = ANY(%s) AND e.occurred_at > c.covered"
                    " GROUP BY e.account_id",
                    [[pk for pk, _at in pairs], [at for _pk, at in pairs], kinds],
                )
                unbilled = {pk: int(total or 0) for pk, total in cursor.fetchall()}
        else:
            for account_id, at, amount in JournalEntry.objects.filter(
                account_id__in=list(covered),
                kind__in=kinds,
                occurred_at__gt=min(covered.values()),
            ).values_list("account_id", "occurred_at", "wallet_amount"):
                if at > covered[account_id]:
                    unbilled[account_id] = unbilled.get(account_id, 0) + amount
    return {pk: max(0, -balance + unbilled.get(pk, 0)) for pk, balance in balances.items()}


def _settle_many(*, accounts: list[Account], now: datetime, known: dict[int, Bill]) -> None:
    """:func:`bills_settle` for many accounts: the same allocation, in a few statements.
    ``known``: bills in memory that are updated with what is written (the ones being issued)."""
    ids = [a.pk for a in accounts]
    by_id = {a.pk: a for a in accounts}
    changed: list[Bill] = []
    names = (
        "pk",
        "account_id",
        "number",
        "due_minor",
        "unpaid_minor",
        "status",
        "period_start",
        "period_end",
        "issued_at",
        "paid_at",
        "overdue_since",
    )
    for settles in (Bill.Settles.WALLET, Bill.Settles.RECEIVABLE):
        live: dict[int, list[Bill]] = {}
        for row in (
            Bill.objects.filter(
                account_id__in=ids, settles=settles, status__in=LIVE, due_minor__gt=0
            )
            .order_by("account_id", "due_on", "pk")
            .select_for_update()
            .values_list(*names)
        ):
            bill = known.get(row[0]) or Bill(**dict(zip(names, row, strict=True)))
            live.setdefault(bill.account_id, []).append(bill)
        if not live:
            continue
        if settles == Bill.Settles.WALLET:
            balances = dict.fromkeys(live, 0)  # no wallet: nothing owed on it
            balances.update(
                Wallet.objects.filter(account_id__in=list(live)).values_list(
                    "account_id", "balance_minor"
                )
            )
            owes = _wallet_owes(balances, live)
        else:
            owes = _receivables({pk: by_id[pk] for pk in live})
        for account_id, bills in live.items():
            unpaid = payment_allocation(
                owed_minor=owes.get(account_id, 0), bills=[(b.number, b.due_minor) for b in bills]
            )
            for bill in bills:
                left = unpaid[bill.number]
                status = Bill.Status.PAID if left == 0 else Bill.Status.ISSUED
                if (left, status) != (bill.unpaid_minor, bill.status):
                    bill.unpaid_minor = left
                    bill.status = status
                    bill.paid_at = now if status == Bill.Status.PAID else None
                    if status == Bill.Status.PAID:
                        bill.overdue_since = None
                    changed.append(bill)
    _rows_update(Bill, changed, ["unpaid_minor", "status", "paid_at", "overdue_since"])


def _receivables(accounts: dict[int, Account]) -> dict[int, int]:
    """What each account owes on its receivable (≥ 0), as :func:`owed` reads it."""
    codes = {
        (a.organisation_id, ledger.receivable_account(str(pk)).code): pk
        for pk, a in accounts.items()
    }
    owes: dict[int, int] = {}
    for organisation_id in {org for org, _code in codes}:
        for code, total in (
            Posting.objects.filter(
                entry__organisation_id=organisation_id,
                ledger_account__organisation_id=organisation_id,
                ledger_account__code__in=[c for org, c in codes if org == organisation_id],
            )
            .values("ledger_account__code")
            .annotate(total=Sum("amount"))
            .values_list("ledger_account__code", "total")
        ):
            owes[codes[(organisation_id, code)]] = max(0, int(total or 0))
    return owes


def _notify_issued(bills: list[Bill], now: datetime) -> None:
    """``notification_create`` of "bill issued" for many bills: the same rows, in bulk."""
    if not bills:
        return
    enabled: dict[int, list[NotificationChannel]] = {}
    for channel in NotificationChannel.objects.filter(
        organisation_id__in={b.organisation_id for b in bills}, enabled=True
    ).order_by("pk"):
        enabled.setdefault(channel.organisation_id, []).append(channel)
    kind = Notification.Kind.BILL_ISSUED
    # the messages' templates, translated once for all the bills
    subject_text = _("Bill %(number)s: %(amount)s due on %(due)s")
    body_text = _("Your bill %(number)s for %(start)s to %(end)s is %(amount)s, due on %(due)s.")
    rows: list[dict[str, Any]] = []
    for bill in bills:
        on = enabled.get(bill.organisation_id, [])
        channels: list[NotificationChannel | None] = [c for c in on if kind in (c.events or [])]
        if not on:
            channels = [None]
        amount = format_amount(from_minor(bill.due_minor, bill.currency), bill.currency)
        subject = subject_text % {"number": bill.number, "amount": amount, "due": bill.due_on}
        body = body_text % {
            "number": bill.number,
            "start": bill.period_start or "",
            "end": bill.period_end,
            "amount": amount,
            "due": bill.due_on,
        }
        rows.extend(
            {
                "organisation_id": bill.organisation_id,
                "account_id": bill.account_id,
                "channel_id": None if channel is None else channel.pk,
                "kind": kind,
                "subject": subject[:200],
                "body": body,
            }
            for channel in channels
        )
    _store_rows(Notification, rows, now)
    transaction.on_commit(_send_notifications)


def _send_notifications() -> None:
    try:
        notifications_send_task()
    except Exception:  # the periodic task retries; never break the committed issue
        log.exception("could not schedule notification sending")


def owed(account: Account, settles: str) -> int:
    """What the customer owes on its bills where they are owed (≥ 0).

    A postpaid wallet's debt also holds consumption not billed yet (deductions and fees after
    what the bills cover); that part is not laid on the bills.
    """
    if settles == Bill.Settles.WALLET:
        wallet = Wallet.objects.filter(account_id=account.pk).first()
        debt = -(wallet.balance_minor if wallet else 0)
        covered = _covered_until(account)
        if covered is not None:
            unbilled = JournalEntry.objects.filter(
                account=account,
                kind__in=(JournalEntry.Kind.DEDUCTION, JournalEntry.Kind.FEE),
                occurred_at__gt=covered,
            ).aggregate(s=Sum("wallet_amount"))["s"]
            debt += int(unbilled or 0)
        return max(0, debt)
    code = ledger.receivable_account(str(account.pk)).code
    total = Posting.objects.filter(
        entry__organisation_id=account.organisation_id, ledger_account__code=code
    ).aggregate(s=Sum("amount"))["s"]
    return max(0, int(total or 0))


def bills_settle(*, account: Account, now: datetime | None = None) -> list[Bill]:
    """Bring the unpaid part of the account's live bills in line with what it owes."""
    now = now or timezone.now()
    changed = []
    for settles in (Bill.Settles.WALLET, Bill.Settles.RECEIVABLE):
        bills = list(
            Bill.objects.filter(account=account, settles=settles, status__in=LIVE, due_minor__gt=0)
            .order_by("due_on", "pk")
            .select_for_update()
        )
        if not bills:
            continue
        unpaid = payment_allocation(
            owed_minor=owed(account, settles), bills=[(b.number, b.due_minor) for b in bills]
        )
        for bill in bills:
            left = unpaid[bill.number]
            status = Bill.Status.PAID if left == 0 else Bill.Status.ISSUED
            if (left, status) != (bill.unpaid_minor, bill.status):
                bill.unpaid_minor = left
                bill.status = status
                bill.paid_at = now if status == Bill.Status.PAID else None
                if status == Bill.Status.PAID:
                    bill.overdue_since = None
                bill.save(update_fields=["unpaid_minor", "status", "paid_at", "overdue_since"])
                changed.append(bill)
    return changed


@transaction.atomic
def bill_pay(
    *,
    actor: Actor,
    bill: Bill,
    amount: Decimal | str,
    channel: str,
    idempotency_key: str,
    reference: str = "",
) -> Bill:
    """A payment at the counter or by transfer towards a bill (partial payments welcome).

    A bill owed to the wallet is paid into the wallet (a recharge: supply is restored by the
    same rules); a payment request is paid to the receivable. The idempotency key makes a
    repeated request pay once.
    """
    bill = Bill.objects.select_related("account").get(pk=bill.pk)
    if bill.status not in LIVE:
        raise BillError({"bill": _("only an issued bill can be paid")})
    chosen = channel_parse(channel)
    if chosen not in (Channel.CASH, Channel.BANK_TRANSFER):
        raise BillError({"channel": _("online payments arrive through their provider")})
    if bill.settles == Bill.Settles.WALLET:
        recharge, _created = recharge_record(
            actor=actor,
            account=bill.account,
            amount=amount,
            channel=chosen,
            idempotency_key=idempotency_key,
            reference=reference or bill.number,
        )
        if chosen is Channel.BANK_TRANSFER:
            from meterpay.apps.payments.services import recharge_confirm

            recharge_confirm(actor=actor, recharge=recharge)
    else:
        try:
            value = Decimal(str(amount))
            minor = to_minor(value, bill.currency)
        except (ArithmeticError, ValueError) as exc:
            raise BillError({"amount": str(exc)}) from None
        key = (idempotency_key or "").strip()
        if not key or len(key) > 200:
            raise BillError({"idempotency_key": "an idempotency key of 1 to 200 characters"})
        try:
            entry = ledger.build_bill_payment(
                account_id=str(bill.account_id),
                amount_minor=minor,
                channel=chosen,
                reference=key,
                occurred_at=timezone.now(),
                currency=bill.currency,
                memo=f"payment of bill {bill.number}",
            )
        except ledger.LedgerError as exc:
            raise BillError({"amount": str(exc)}) from None
        entry_post(
            actor=actor,
            organisation_id=bill.organisation_id,
            entry=entry,
            kind=JournalEntry.Kind.BILL_PAYMENT,
            account=bill.account,
            channel=chosen,
            reference=f"bill:{bill.number}",
        )
    bills_settle(account=bill.account)
    bill.refresh_from_db()
    audit_record(
        actor=actor,
        action="bill.pay",
        obj=bill,
        after={"amount": str(amount), "channel": str(chosen), "unpaid": bill.unpaid_minor},
    )
    return bill


@transaction.atomic
def bill_credit(*, actor: Actor, bill: Bill, reason: str) -> Bill:
    """Cancel an issued bill with a credit note: what it booked is reversed, the note lists
    it negated, and the bill is ``credited`` (it no longer asks for anything)."""
    bill = Bill.objects.select_for_update().select_related("account").get(pk=bill.pk)
    reason = reason.strip()
    if not reason:
        raise BillError({"reason": _("a credit note needs a reason")})
    _transition(bill, Bill.Status.CREDITED)
    from meterpay.apps.billing.services import entry_reverse

    for entry in JournalEntry.objects.filter(
        organisation_id=bill.organisation_id,
        kind=JournalEntry.Kind.BILL,
        reference=f"bill:{bill.number}",
    ):
        entry_reverse(actor=actor, entry=entry, reason=f"credit note for {bill.number}: {reason}")
    lines = [
        LineDraft(
            section=line.section,
            label=line.label,
            amount_minor=-line.amount_minor,
            charge_type=ChargeType(line.charge_type),
            settles=line.settles,
            posted=False,  # the reversal above booked it
            quantity=line.quantity,
            unit=line.unit,
            unit_price_micro=line.unit_price_micro,
            meter_id=line.meter_id,
            detail=line.detail,
        )
        for line in bill.lines.filter(posted=True).order_by("position")
    ]
    [number] = bill_number(bill.organisation_id, "CN")
    note = bill_store(
        account=bill.account,
        kind=Bill.Kind.CREDIT_NOTE,
        period_start=bill.period_start,
        period_end=bill.period_end,
        due_on=timezone.localdate(),
        lines=lines,
        number=number,
        status=Bill.Status.ISSUED,
        credits=bill,
        notes=reason,
        currency=bill.currency,
    )
    Bill.objects.filter(pk=note.pk).update(issued_at=timezone.now(), due_minor=0)
    bill.status = Bill.Status.CREDITED
    bill.unpaid_minor = 0
    bill.save(update_fields=["status", "unpaid_minor"])
    bills_settle(account=bill.account)
    audit_record(
        actor=actor,
        action="bill.credit",
        obj=bill,
        after={"credit_note": number, "reason": reason[:200]},
    )
    return Bill.objects.get(pk=note.pk)


@transaction.atomic
def bill_reissue(
    *,
    actor: Actor,
    bill: Bill,
    reason: str,
    adjustments: Sequence[tuple[str, Decimal]] = (),
) -> Bill:
    """Credit an issued bill and make its corrected replacement as a draft: the same lines,
    plus the clerk's adjustments (label, amount; negative in the customer's favour)."""
    bill = Bill.objects.select_related("account").get(pk=bill.pk)
    if bill.status == Bill.Status.CREDITED:
        raise BillError({"bill": _("this bill was credited already")})
    bill_credit(actor=actor, bill=bill, reason=reason)
    target = BillTarget.WALLET if bill.settles == Bill.Settles.WALLET else BillTarget.RECEIVABLE
    lines = [
        LineDraft(
            section=line.section,
            label=line.label,
            amount_minor=line.amount_minor,
            charge_type=ChargeType(line.charge_type),
            settles=line.settles,
            posted=line.posted,
            quantity=line.quantity,
            unit=line.unit,
            unit_price_micro=line.unit_price_micro,
            meter_id=line.meter_id,
            detail=line.detail,
        )
        for line in bill.lines.order_by("position")
    ]
    for label, amount in adjustments:
        if not label.strip():
            raise BillError({"adjustments": _("every adjustment needs a label")})
        lines.append(
            LineDraft(
                section=Section.ADJUSTMENT,
                label=label.strip(),
                amount_minor=to_minor(Decimal(amount), bill.currency),
                charge_type=ChargeType.ADJUSTMENT,
                settles=target,
                posted=True,
            )
        )
    [number] = bill_number(bill.organisation_id, bill.number.split("-", 1)[0])
    replacement = bill_store(
        account=bill.account,
        kind=bill.kind,
        period_start=bill.period_start,
        period_end=bill.period_end,
        due_on=bill.due_on,
        lines=lines,
        number=number,
        readings=bill.readings,
        review=bill.review,
        replaces=bill,
        notes=reason,
        currency=bill.currency,
    )
    audit_record(
        actor=actor, action="bill.reissue", obj=replacement, after={"replaces": bill.number}
    )
    return replacement


@transaction.atomic
def bill_confirm(*, actor: Actor, bill: Bill) -> Bill:
    bill = Bill.objects.select_for_update().get(pk=bill.pk)
    _transition(bill, Bill.Status.CONFIRMED)
    bill.status = Bill.Status.CONFIRMED
    bill.confirmed_at = timezone.now()
    bill.save(update_fields=["status", "confirmed_at"])
    audit_record(actor=actor, action="bill.confirm", obj=bill, after={"number": bill.number})
    return bill


def overdue_bills(*, organisation_id: int | None = None, today: date | None = None) -> Any:
    today = today or timezone.localdate()
    rows = Bill.objects.filter(status=Bill.Status.ISSUED, unpaid_minor__gt=0, due_on__lt=today)
    if organisation_id is not None:
        rows = rows.filter(organisation_id=organisation_id)
    return rows


def bills_overdue_run(*, now: datetime | None = None) -> int:
    """Daily: mark bills overdue, remind their customers (at most weekly), and let the supply
    rules cut postpaid accounts whose bills are past the grace days (and restore paid ones)."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    reminded = 0
    account_ids = set(overdue_bills(today=today).values_list("account_id", flat=True))
    for account_id in sorted(account_ids):
        with transaction.atomic():
            account = Account.objects.get(pk=account_id)
            bills_settle(account=account, now=now)
            for bill in overdue_bills(today=today).filter(account=account).select_for_update():
                fields = []
                if bill.overdue_since is None:
                    bill.overdue_since = bill.due_on + timedelta(days=1)
                    fields.append("overdue_since")
                last = bill.last_reminder_on
                if last is None or today - last >= REMINDER_GAP:
                    amount = format_amount(
                        from_minor(bill.unpaid_minor, bill.currency), bill.currency
                    )
                    notification_create(
                        account=account,
                        kind=Notification.Kind.BILL_DUE,
                        subject=_("Bill %(number)s is overdue: %(amount)s")
                        % {"number": bill.number, "amount": amount},
                        body=_(
                            "Your bill %(number)s was due on %(due)s; %(amount)s is still "
                            "unpaid. Please pay it to keep your supply."
                        )
                        % {"number": bill.number, "due": bill.due_on, "amount": amount},
                    )
                    bill.reminders_sent += 1
                    bill.last_reminder_on = today
                    fields += ["reminders_sent", "last_reminder_on"]
                    reminded += 1
                if fields:
                    bill.save(update_fields=fields)
            wallet = Wallet.objects.filter(account=account).first()
            if wallet is not None and account.billing_mode == Account.BillingMode.POSTPAID:
                wallet_evaluate(wallet=wallet, now=now)
    return reminded


def postpaid_arrears(*, wallet: Wallet, now: datetime, grace_days: int) -> bool:
    """The supply rules' arrears source: settle the account's bills from its balance; is any
    bill owed to the wallet still unpaid past its due date and the grace days?"""
    account = Account.objects.get(pk=wallet.account_id)
    bills_settle(account=account, now=now)
    today = timezone.localdate(now)
    return Bill.objects.filter(
        account_id=wallet.account_id,
        settles=Bill.Settles.WALLET,
        status=Bill.Status.ISSUED,
        unpaid_minor__gt=0,
        due_on__lt=today - timedelta(days=grace_days),
    ).exists()


@transaction.atomic
def postpaid_bill_issue(
    *, actor: Any, account: Account, period_end: date, due_on: date | None = None
) -> Bill | None:
    """A balance statement of what a postpaid wallet owes at ``period_end`` beyond its open
    bills; None if nothing more is owed. Without ``due_on`` it is due the policy's
    ``postpaid_due_days`` after the period end. (Month-end bills come from bill runs.)"""
    if account.billing_mode != Account.BillingMode.POSTPAID:
        raise ValidationError({"account": "only postpaid accounts get bills"})
    if due_on is None:
        due_on = period_end + timedelta(days=policy_row(account.organisation_id).postpaid_due_days)
    wallet = Wallet.objects.select_for_update().get(account=account)
    open_total = (
        Bill.objects.filter(
            account=account, settles=Bill.Settles.WALLET, status=Bill.Status.ISSUED
        ).aggregate(s=Sum("unpaid_minor"))["s"]
        or 0
    )
    amount = -wallet.balance_minor - open_total
    if amount <= 0:
        return None
    [number] = bill_number(account.organisation_id, f"S{period_end:%Y%m}")
    bill = bill_store(
        account=account,
        kind=Bill.Kind.STATEMENT,
        period_start=None,
        period_end=period_end,
        due_on=due_on,
        lines=[
            LineDraft(
                section=Section.BALANCE,
                label=_("Balance owed"),
                amount_minor=amount,
                charge_type=ChargeType.FEES,
                settles=BillTarget.WALLET,
                posted=False,
            )
        ],
        number=number,
        status=Bill.Status.ISSUED,
        currency=wallet.currency,
    )
    Bill.objects.filter(pk=bill.pk).update(issued_at=timezone.now(), unpaid_minor=amount)
    bill.refresh_from_db()
    audit_record(
        actor=actor,
        action="bill.issue",
        obj=bill,
        after={"amount": amount, "due_on": str(due_on)},
    )
    return bill
