from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from meterpay.apps.audit.services import audit_record, snapshot
from meterpay.apps.customers.models import Account, Customer
from meterpay.apps.meters.models import Meter
from meterpay.apps.organisations.models import Organisation
from meterpay.apps.sites.models import Room

ACTIVE_STATUSES = (Account.Status.PRESET, Account.Status.OPEN, Account.Status.SUSPENDED)


class AccountError(ValidationError):
    pass


#: Called as ``hook(actor=..., account=...)`` inside ``account_close``'s transaction, before the
#: account closes. Apps above customers register here (the wallets app settles the wallet:
#: final charges, then refund or arrears), because customers may not import them.
ACCOUNT_CLOSE_HOOKS: list[Callable[..., object]] = []


@transaction.atomic
def customer_create(
    *,
    actor: object,
    organisation: Organisation,
    name: str,
    kind: str = Customer.Kind.PERSON,
    phone: str = "",
    email: str = "",
    notes: str = "",
) -> Customer:
    customer = Customer(
        organisation=organisation,
        name=name.strip(),
        kind=kind,
        phone=phone.strip(),
        email=email.strip(),
        notes=notes,
    )
    customer.full_clean()
    customer.save()
    audit_record(actor=actor, action="customer.create", obj=customer, after=snapshot(customer))
    return customer


@transaction.atomic
def customer_update(*, actor: object, customer: Customer, **changes: str) -> Customer:
    before = snapshot(customer)
    for field in ("name", "kind", "phone", "email", "notes"):
        if field in changes:
            setattr(customer, field, changes[field])
    customer.full_clean()
    customer.save()
    audit_record(
        actor=actor, action="customer.update", obj=customer, before=before, after=snapshot(customer)
    )
    return customer


def _next_account_number(organisation: Organisation) -> str:
    # The organisation row lock serialises number allocation (PostgreSQL; SQLite locks the file).
    Organisation.objects.select_for_update().filter(pk=organisation.pk).first()
    # Numbers are fixed-width ("A000123"), so the text order is the numeric order.
    latest = (
        Account.objects.filter(organisation=organisation, number__regex=r"^A[0-9]{6}$")
        .order_by("-number")
        .values_list("number", flat=True)
        .first()
    )
    return f"A{int(latest[1:]) + 1 if latest else 1:06d}"


def _check_rooms_free(
    rooms: Sequence[Room], organisation: Organisation, exclude: Account | None = None
) -> None:
    for room in rooms:
        if room.organisation_id != organisation.pk:
            raise AccountError({"rooms": "room belongs to another organisation"})
        taken = room.accounts.filter(status__in=ACTIVE_STATUSES)
        if exclude is not None:
            taken = taken.exclude(pk=exclude.pk)
        other = taken.first()
        if other is not None:
            raise AccountError({"rooms": f"room {room.number} already has account {other.number}"})


def _attach_meters(account: Account, meters: Iterable[Meter], actor: object) -> None:
    # Re-read under lock: the caller's objects may be stale (e.g. freed by a move-out since).
    for meter in (
        Meter.objects.select_for_update().filter(pk__in=[m.pk for m in meters]).order_by("pk")
    ):
        if meter.organisation_id != account.organisation_id:
            raise AccountError({"meters": "meter belongs to another organisation"})
        if meter.removed_on is not None:
            raise AccountError({"meters": f"meter {meter.address} has been removed"})
        if meter.account_id not in (None, account.pk):
            raise AccountError({"meters": f"meter {meter.address} belongs to another account"})
        before = snapshot(meter)
        meter.account = account
        meter.save(update_fields=["account"])
        audit_record(
            actor=actor, action="meter.assign", obj=meter, before=before, after=snapshot(meter)
        )


@transaction.atomic
def account_preset(
    *,
    actor: object,
    customer: Customer,
    rooms: Sequence[Room],
    meters: Sequence[Meter] = (),
    billing_mode: str = Account.BillingMode.PREPAID,
    billing_side: str = Account.BillingSide.PLATFORM,
    move_in_on: date | None = None,
) -> Account:
    """Pre-set an account (information entered in advance); it does not bill until opened."""
    organisation = customer.organisation
    if not rooms:
        raise AccountError({"rooms": "an account needs at least one room"})
    _check_rooms_free(rooms, organisation)
    account = Account(
        organisation=organisation,
        customer=customer,
        number=_next_account_number(organisation),
        billing_mode=billing_mode,
        billing_side=billing_side,
        status=Account.Status.PRESET,
        move_in_on=move_in_on,
    )
    account.full_clean()
    account.save()
    account.rooms.set(rooms)
    _attach_meters(account, meters, actor)
    audit_record(actor=actor, action="account.preset", obj=account, after=snapshot(account))
    return account


@transaction.atomic
def account_open(*, actor: object, account: Account, move_in_on: date | None = None) -> Account:
    """Pre-set → open: billing starts (move-in)."""
    account = Account.objects.select_for_update().get(pk=account.pk)
    if account.status != Account.Status.PRESET:
        raise AccountError(
            {"status": f"only a pre-set account can be opened (it is {account.status})"}
        )
    before = snapshot(account)
    account.status = Account.Status.OPEN
    account.opened_at = timezone.now()
    account.move_in_on = move_in_on or account.move_in_on or timezone.localdate()
    account.save()
    audit_record(
        actor=actor, action="account.open", obj=account, before=before, after=snapshot(account)
    )
    return account


@transaction.atomic
def account_open_new(
    *,
    actor: object,
    customer: Customer,
    rooms: Sequence[Room],
    meters: Sequence[Meter] = (),
    billing_mode: str = Account.BillingMode.PREPAID,
    billing_side: str = Account.BillingSide.PLATFORM,
    move_in_on: date | None = None,
) -> Account:
    """The account-opening wizard's commit: pre-set and open in one step."""
    account = account_preset(
        actor=actor,
        customer=customer,
        rooms=rooms,
        meters=meters,
        billing_mode=billing_mode,
        billing_side=billing_side,
        move_in_on=move_in_on,
    )
    return account_open(actor=actor, account=account, move_in_on=move_in_on)


def accounts_open_bulk(*, actor: object, accounts: Iterable[Account]) -> list[Account]:
    """One-click opening of many pre-set accounts; each opens in its own transaction."""
    return [
        account_open(actor=actor, account=a) for a in accounts if a.status == Account.Status.PRESET
    ]


@transaction.atomic
def account_suspend(*, actor: object, account: Account) -> Account:
    account = Account.objects.select_for_update().get(pk=account.pk)
    if account.status != Account.Status.OPEN:
        raise AccountError({"status": "only an open account can be suspended"})
    before = snapshot(account)
    account.status = Account.Status.SUSPENDED
    account.suspended_at = timezone.now()
    account.save()
    audit_record(
        actor=actor, action="account.suspend", obj=account, before=before, after=snapshot(account)
    )
    return account


@transaction.atomic
def account_resume(*, actor: object, account: Account) -> Account:
    account = Account.objects.select_for_update().get(pk=account.pk)
    if account.status != Account.Status.SUSPENDED:
        raise AccountError({"status": "only a suspended account can be resumed"})
    before = snapshot(account)
    account.status = Account.Status.OPEN
    account.suspended_at = None
    account.save()
    audit_record(
        actor=actor, action="account.resume", obj=account, before=before, after=snapshot(account)
    )
    return account


@transaction.atomic
def account_close(*, actor: object, account: Account, move_out_on: date | None = None) -> Account:
    """Move-out: the account closes, its rooms and meters are free for the next tenant.

    The account and its history stay readable. Final reading, bill and refund join this
    step with the wallet (settlement).
    """
    account = Account.objects.select_for_update().get(pk=account.pk)
    if account.status == Account.Status.CLOSED:
        raise AccountError({"status": "the account is closed already"})
    for hook in ACCOUNT_CLOSE_HOOKS:
        hook(actor=actor, account=account)
    before = snapshot(account)
    account.status = Account.Status.CLOSED
    account.closed_at = timezone.now()
    account.move_out_on = move_out_on or timezone.localdate()
    account.save()
    for meter in Meter.objects.filter(account=account, removed_on__isnull=True):
        meter_before = snapshot(meter)
        meter.account = None
        meter.save(update_fields=["account"])
        audit_record(
            actor=actor,
            action="meter.unassign",
            obj=meter,
            before=meter_before,
            after=snapshot(meter),
        )
    audit_record(
        actor=actor, action="account.close", obj=account, before=before, after=snapshot(account)
    )
    return account
