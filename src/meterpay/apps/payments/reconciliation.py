"""Daily reconciliation: a provider statement (CSV) for one channel and day, matched against
the ledger. The import is all-or-nothing: any bad row refuses the whole file, with a message
per row.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from meterpay.apps.audit.services import audit_record
from meterpay.apps.ledger.models import JournalEntry
from meterpay.apps.ledger.selectors import entries_in
from meterpay.apps.organisations.models import Organisation
from meterpay.apps.payments.models import StatementImport, StatementLine
from meterpay.core.money import MoneyError, parse_amount, to_minor

REQUIRED = ("transaction_id", "amount")


@dataclass(frozen=True, slots=True)
class RowError:
    row: int  # 1-based line number in the file (the header is line 1)
    message: str


class StatementRejected(ValidationError):
    def __init__(self, errors: list[RowError]) -> None:
        super().__init__([f"line {e.row}: {e.message}" for e in errors])
        self.row_errors = errors


def parse_statement(content: bytes, currency: str = "CNY") -> list[tuple[str, int]]:
    """``transaction_id,amount`` rows (amount as a decimal, e.g. 50.00); all rows or errors."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise StatementRejected([RowError(1, "the file is not UTF-8 text")]) from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise StatementRejected([RowError(1, f"missing column(s): {', '.join(missing)}")])
    rows: list[tuple[str, int]] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    for line, raw in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
        txid = row.get("transaction_id", "")
        if not txid:
            errors.append(RowError(line, "transaction_id is empty"))
            continue
        if txid in seen:
            errors.append(RowError(line, f"transaction {txid} repeats line {seen[txid]}"))
            continue
        seen[txid] = line
        try:
            amount = parse_amount(row.get("amount", ""), currency)
        except MoneyError as exc:
            errors.append(RowError(line, f"amount: {exc}"))
            continue
        if amount <= 0:
            errors.append(RowError(line, "amount must be positive"))
            continue
        rows.append((txid, to_minor(amount, currency)))
    if errors:
        raise StatementRejected(errors)
    if not rows:
        raise StatementRejected([RowError(2, "the statement has no rows")])
    return rows


@transaction.atomic
def statement_import(
    *,
    actor: Any,
    organisation: Organisation,
    channel: str,
    day: date,
    filename: str,
    content: bytes,
) -> StatementImport:
    if channel not in ("wechat", "alipay", "forwarding", "bank_transfer"):
        raise ValidationError({"channel": "statements come from a provider or the bank"})
    rows = parse_statement(content, organisation.currency)
    recharges = {
        e.reference: e
        for e in entries_in(organisation.pk, day, day).filter(
            kind=JournalEntry.Kind.RECHARGE, channel=channel
        )
    }
    statement = StatementImport.objects.create(
        organisation=organisation,
        channel=channel,
        provider=channel,
        day=day,
        filename=filename[:200],
        uploaded_by=actor if hasattr(actor, "pk") else None,
        row_count=len(rows),
    )
    lines = []
    matched = 0
    for txid, amount in rows:
        entry = recharges.pop(txid, None)
        if entry is None:
            match = StatementLine.Match.NOT_IN_LEDGER
        elif entry.wallet_amount == amount:
            match = StatementLine.Match.MATCHED
            matched += 1
        else:
            match = StatementLine.Match.AMOUNT_DIFFERS
        lines.append(
            StatementLine(
                organisation=organisation,
                statement=statement,
                transaction_id=txid[:80],
                amount_minor=amount,
                ledger_amount_minor=entry.wallet_amount if entry else None,
                entry=entry,
                match=match,
            )
        )
    for txid, entry in recharges.items():
        lines.append(
            StatementLine(
                organisation=organisation,
                statement=statement,
                transaction_id=txid[:80],
                amount_minor=0,
                ledger_amount_minor=entry.wallet_amount,
                entry=entry,
                match=StatementLine.Match.NOT_IN_STATEMENT,
            )
        )
    StatementLine.objects.bulk_create(lines)
    statement.matched = matched
    statement.statement_total_minor = sum(a for _, a in rows)
    statement.ledger_total_minor = sum(
        line.ledger_amount_minor or 0 for line in lines if line.entry is not None
    )
    statement.save()
    audit_record(
        actor=actor,
        action="statement.import",
        obj=statement,
        after={"rows": len(rows), "matched": matched, "channel": channel, "day": str(day)},
    )
    return statement
