"""Charge items (rent, property fee, service fee…): set them up, apply them to accounts, and
put what is due in a billing period on the accounts' bills.

The pricing and proration rule is ``meterpay.core.billing.charges`` (docs/billing.md). A cycle
of an item is charged once per account: a later run over the same period finds the cycle on a
live bill already and leaves it out, so re-running a period changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from meterpay.apps.audit.services import audit_record, snapshot
from meterpay.apps.billing.consumption import AccountConsumption, ids_match
from meterpay.apps.billing.lines import LineDraft, Section, micro_price, price_micro
from meterpay.apps.billing.models import BillLine, ChargeItem, ChargeSubscription, Settlement
from meterpay.apps.customers.models import Account
from meterpay.core.billing.charges import (
    Basis,
    ChargeError,
    ChargeItemRule,
    Frequency,
    charges_due,
)
from meterpay.core.ledger import BillTarget, ChargeType

type Actor = Any

_LIVE_BILLS = ("draft", "confirmed", "issued", "paid")


class ChargeItemError(ChargeError):
    """A charge item or subscription that cannot be saved; ``field`` names the bad field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _price(value: Any, field: str) -> int:
    try:
        price = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ChargeItemError(field, _("%(value)r is not a price") % {"value": value}) from None
    if not price.is_finite() or price < 0:
        raise ChargeItemError(field, _("a price is a number of 0 or more"))
    return price_micro(price)


def item_rule(item: ChargeItem, subscription: ChargeSubscription | None = None) -> ChargeItemRule:
    """The core's view of an item, with a subscription's own price and span."""
    price = item.unit_price_micro
    valid_from, valid_to = item.valid_from, item.valid_to
    if subscription is not None:
        if subscription.unit_price_micro is not None:
            price = subscription.unit_price_micro
        if subscription.start_on is not None:
            valid_from = max(filter(None, [valid_from, subscription.start_on]))
        if subscription.end_on is not None:
            valid_to = min(filter(None, [valid_to, subscription.end_on]))
    return ChargeItemRule(
        code=item.code,
        name=item.name,
        basis=Basis(item.basis),
        unit_price=micro_price(price),
        frequency=Frequency(item.frequency),
        day_of_month=item.day_of_month,
        prorate=item.prorate,
        valid_from=valid_from,
        valid_to=valid_to,
    )


@transaction.atomic
def charge_item_save(
    *, actor: Actor, organisation_id: int, values: Mapping[str, Any], item: ChargeItem | None = None
) -> ChargeItem:
    """Create or change a charge item; every rule of the core is checked before it is saved."""
    before = snapshot(item) if item is not None else None
    row = item or ChargeItem(organisation_id=organisation_id)
    for name in (
        "code",
        "name",
        "basis",
        "frequency",
        "day_of_month",
        "utility",
        "settlement",
        "revenue",
        "prorate",
        "valid_from",
        "valid_to",
        "active",
    ):
        if name in values:
            setattr(row, name, values[name])
    if "unit_price" in values:
        row.unit_price_micro = _price(values["unit_price"], "unit_price")
    if row.basis != ChargeItem.Basis.PER_UNIT:
        row.utility = ""
    elif not row.utility:
        raise ChargeItemError("utility", _("a charge per unit names the meters it is charged on"))
    duplicate = ChargeItem.objects.filter(organisation_id=organisation_id, code=row.code)
    if row.pk:
        duplicate = duplicate.exclude(pk=row.pk)
    if duplicate.exists():
        raise ChargeItemError(
            "code", _("another charge item has the code %(code)s") % {"code": row.code}
        )
    try:
        item_rule(row)
    except ChargeError as exc:
        raise ChargeItemError("__all__", str(exc)) from None
    row.save()
    audit_record(
        actor=actor,
        action="charge_item.save",
        obj=row,
        before=before,
        after=snapshot(row),
    )
    return row


@transaction.atomic
def charge_subscribe(
    *,
    actor: Actor,
    item: ChargeItem,
    accounts: Iterable[Account],
    start_on: date | None = None,
    end_on: date | None = None,
    unit_price: Decimal | str | None = None,
) -> int:
    """Apply an item to accounts (of its organisation); an account that has it keeps it."""
    if start_on and end_on and end_on < start_on:
        raise ChargeItemError("end_on", _("the end is before the start"))
    own = None if unit_price in (None, "") else _price(unit_price, "unit_price")
    have = set(ChargeSubscription.objects.filter(item=item).values_list("account_id", flat=True))
    rows = [
        ChargeSubscription(
            organisation_id=item.organisation_id,
            item=item,
            account=account,
            start_on=start_on,
            end_on=end_on,
            unit_price_micro=own,
        )
        for account in accounts
        if account.organisation_id == item.organisation_id and account.pk not in have
    ]
    ChargeSubscription.objects.bulk_create(rows)
    audit_record(
        actor=actor,
        action="charge_item.subscribe",
        obj=item,
        after={"accounts": [row.account.number for row in rows][:200], "count": len(rows)},
    )
    return len(rows)


@transaction.atomic
def charge_unsubscribe(*, actor: Actor, subscription: ChargeSubscription) -> None:
    audit_record(
        actor=actor,
        action="charge_item.unsubscribe",
        obj=subscription.item,
        before={"account": subscription.account_id},
    )
    subscription.delete()


def _charged_cycles(account_ids: Sequence[int], exclude_run_id: int | None) -> set[tuple[int, str]]:
    """(account, item/cycle key) of charges on live bills already."""
    rows = BillLine.objects.filter(
        ids_match("bill__account_id", account_ids),
        bill__status__in=_LIVE_BILLS,
        section=Section.CHARGES,
        posted=True,
    )
    if exclude_run_id is not None:
        rows = rows.exclude(bill__run_id=exclude_run_id)
    return {
        (account_id, detail.get("key", ""))
        for account_id, detail in rows.values_list("bill__account_id", "detail")
        if isinstance(detail, dict)
    }


def _revenue(item: ChargeItem) -> ChargeType:
    return ChargeType(item.revenue)


def _item_lines(
    item: ChargeItem,
    rule: ChargeItemRule,
    start: date,
    end: date,
    account: Account,
    area: Decimal | None,
    usage: Decimal | None,
    currency: str,
) -> list[tuple[str, LineDraft]] | str:
    """The lines an item charges an account in ``[start, end)`` with their cycle keys, or the
    problem that stops the run."""
    try:
        dues = charges_due(
            item=rule,
            period_start=start,
            period_end=end,
            move_in=account.move_in_on,
            move_out=account.move_out_on,
            room_area_m2=area,
            usage=usage,
            usage_unit="m3" if item.utility == "water" else "kWh",
            currency=currency,
        )
    except ChargeError as exc:
        return str(exc)
    settles = BillTarget.WALLET if item.settlement == Settlement.DEDUCT else BillTarget.RECEIVABLE
    lines = []
    for due in dues:
        if not due.amount_minor:
            continue
        last_day = date.fromordinal(due.cycle_end.toordinal() - 1)
        label = item.name
        if item.frequency != ChargeItem.Frequency.ONE_TIME:
            label = f"{item.name} {due.cycle_start:%Y-%m-%d} ~ {last_day:%Y-%m-%d}"
        if due.proration != 1:
            label += " " + _("(prorated %(share)s)") % {"share": f"{due.proration:.4f}"}
        lines.append(
            (
                due.key,
                LineDraft(
                    section=Section.CHARGES,
                    label=label,
                    amount_minor=due.amount_minor,
                    charge_type=_revenue(item),
                    settles=settles,
                    posted=True,
                    quantity=(due.quantity * due.proration).quantize(Decimal("0.0001")),
                    unit=due.unit,
                    unit_price_micro=price_micro(due.unit_price),
                    detail={
                        "item": item.code,
                        "key": due.key,
                        "proration": str(due.proration),
                        "cycle_start": due.cycle_start.isoformat(),
                        "cycle_end": due.cycle_end.isoformat(),
                    },
                ),
            )
        )
    return lines


def charge_lines(
    *,
    accounts: Sequence[Account],
    start: date,
    end: date,
    consumption: Mapping[int, AccountConsumption],
    areas: Mapping[int, Decimal],
    currency: str = "CNY",
    run_id: int | None = None,
) -> tuple[dict[int, list[LineDraft]], list[str]]:
    """The charges due in ``[start, end)`` per account, and the problems that stop the run
    (a per-m² item on an account without room area, …), each naming the account and item."""
    ids = [a.pk for a in accounts]
    by_account: dict[int, list[LineDraft]] = {a.pk: [] for a in accounts}
    problems: list[str] = []
    charged = _charged_cycles(ids, run_id)
    subscriptions = (
        ChargeSubscription.objects.filter(ids_match("account_id", ids), item__active=True)
        .order_by("account_id", "item__name", "item_id")
        .values_list("account_id", "item_id", "start_on", "end_on", "unit_price_micro")
    )
    items = {  # the organisations' items, loaded once: subscriptions name them by id
        item.pk: item
        for item in ChargeItem.objects.filter(
            organisation_id__in={a.organisation_id for a in accounts}, active=True
        )
    }
    rules: dict[tuple[Any, ...], ChargeItemRule] = {}
    # an item's charge depends on the account through what its basis reads only (the area of
    # a per-m² item, the usage of a per-unit one) and the move-in and move-out: the same for
    # many accounts, so each is computed, and its line made, once
    computed: dict[tuple[Any, ...], list[tuple[str, LineDraft]] | str] = {}
    account_by_id = {a.pk: a for a in accounts}
    for account_id, item_id, start_on, end_on, own_price in subscriptions:
        account = account_by_id[account_id]
        item = items[item_id]
        key = (item_id, start_on, end_on, own_price)
        if key not in rules:  # one rule per item and own price and span, not per account
            rules[key] = item_rule(
                item,
                ChargeSubscription(start_on=start_on, end_on=end_on, unit_price_micro=own_price),
            )
        use = consumption.get(account.pk)
        usage = use.usage(item.utility) if use is not None and item.utility else None
        area = areas.get(account.pk)
        inputs = (
            key,
            account.move_in_on,
            account.move_out_on,
            area if item.basis == ChargeItem.Basis.PER_AREA else None,
            usage if item.basis == ChargeItem.Basis.PER_UNIT else None,
        )
        found = computed.get(inputs)
        if found is None:
            found = computed[inputs] = _item_lines(
                item, rules[key], start, end, account, area, usage, currency
            )
        if isinstance(found, str):
            problems.append(
                _("account %(account)s, %(item)s: %(problem)s")
                % {"account": account.number, "item": item.name, "problem": found}
            )
            continue
        by_account[account.pk].extend(
            line for due_key, line in found if (account.pk, due_key) not in charged
        )
    return by_account, problems
