"""The month end over the API: charge items and the accounts they apply to, public-area and
line-loss groups with their grid readings, bill runs (draft → confirmed → issued), bills (paid,
credited, re-issued, printed) and arrears.

Every operation checks the caller's role before it reads the body, so a write the role does
not allow answers 403 whatever it sends. What the billing rules refuse in the request (a grid
reading below the previous one, a run whose inputs have problems, a bad price) answers 422
with ``detail`` and ``errors`` by field (``__all__`` lists every problem of a run); an object
not in a state that allows the operation (confirming an issued run, paying a draft bill)
answers 400. Money, prices and quantities are decimal strings.
"""

import functools
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet, Sum
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone, translation
from ninja import Query, Router, Status
from ninja.pagination import paginate
from ninja.params.functions import Header

from meterpay.api import auth
from meterpay.api.billing_schemas import (
    AllocationGroupIn,
    AllocationGroupOut,
    AllocationGroupPatch,
    ArrearsOut,
    BillDetailOut,
    BillFilter,
    BillOut,
    ChargeItemIn,
    ChargeItemOut,
    ChargeItemPatch,
    CreditIn,
    FilterId,
    GridReadingIn,
    GridReadingOut,
    Language,
    LossGroupIn,
    LossGroupOut,
    LossGroupPatch,
    MembersIn,
    PayIn,
    ReissueIn,
    RunDetailOut,
    RunFilter,
    RunIn,
    RunOut,
    SubscribeIn,
    SubscribeOut,
    SubscriptionOut,
)
from meterpay.api.pagination import LimitOffset
from meterpay.apps.billing import bills as bill_services
from meterpay.apps.billing import runs as run_services
from meterpay.apps.billing.charges import (
    ChargeItemError,
    charge_item_save,
    charge_subscribe,
    charge_unsubscribe,
)
from meterpay.apps.billing.models import (
    AllocationGroup,
    Bill,
    BillRun,
    ChargeItem,
    ChargeSubscription,
    GridReading,
    LossGroup,
)
from meterpay.apps.billing.sharing import (
    SharingError,
    allocation_group_save,
    allocation_members_set,
    grid_reading_enter,
    loss_group_save,
)
from meterpay.apps.customers.models import Account
from meterpay.apps.ledger.models import JournalEntry
from meterpay.apps.meters.models import Meter
from meterpay.apps.organisations.access import access_object, org_objects, require
from meterpay.apps.payments.models import Recharge
from meterpay.apps.sites.models import Site
from meterpay.apps.tariffs.models import Tariff
from meterpay.core import ledger
from meterpay.core.ledger import Channel, IdempotencyConflict
from meterpay.core.money import MoneyError
from meterpay.core.roles import Permission

router = Router(tags=["month end"])

#: Error fields that say the object's state refuses the operation (400), not the request (422).
STATE_FIELDS = frozenset({"status", "bill"})
KEY_LIMIT = 200


# --- the role, checked before the body is read ---------------------------------------------


class BearerToken(auth.BearerToken):
    """The bearer token of :mod:`meterpay.api.auth`, whose user must hold ``permission``."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission
        super().__init__()

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = super().authenticate(request, token)
        if user is not None:
            require(user, self.permission)  # 403 before the body is validated
        return user


class StaffSession(auth.StaffSession):
    """The console's session, whose user must hold ``permission``."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission
        super().__init__()

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = super().authenticate(request, key)
        if user is not None:
            require(user, self.permission)
        return user


def allowed(permission: Permission) -> list[Any]:
    return [BearerToken(permission), StaffSession(permission)]


VIEW = allowed(Permission.VIEW)
MANAGE_CHARGES = allowed(Permission.MANAGE_CHARGES)
ENTER_GRID_READINGS = allowed(Permission.ENTER_GRID_READINGS)
RUN_BILLS = allowed(Permission.RUN_BILLS)
ISSUE_BILLS = allowed(Permission.ISSUE_BILLS)
RECORD_PAYMENTS = allowed(Permission.RECORD_PAYMENTS)


# --- refusals ---------------------------------------------------------------------------------


def _error(status: int, errors: dict[str, list[str]]) -> JsonResponse:
    detail = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in errors.items())
    return JsonResponse({"detail": detail, "errors": errors}, status=status)


def refusals[**P](view: Callable[P, Any]) -> Callable[P, Any]:
    """Answer what the billing services refuse: 422 (the request), 400 (the object's state),
    409 (an idempotency key reused with different content)."""

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
        try:
            return view(*args, **kwargs)
        except IdempotencyConflict as exc:
            return _error(409, {"Idempotency-Key": [str(exc)]})
        except (ChargeItemError, SharingError) as exc:
            return _error(422, {exc.field: [str(exc)]})
        except MoneyError as exc:
            return _error(422, {"amount": [str(exc)]})
        except ValidationError as exc:
            errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
            return _error(400 if set(errors) <= STATE_FIELDS else 422, errors)

    return wrapper


def _text(value: str) -> str:
    """Text as stored: without NUL characters (PostgreSQL text never holds them)."""
    return value.replace("\x00", "").strip()


def _org(request: HttpRequest) -> int:
    user: Any = request.user
    return int(user.organisation_id)


# --- charge items -----------------------------------------------------------------------------


def _items(request: HttpRequest) -> QuerySet[ChargeItem]:
    return (
        org_objects(request.user, ChargeItem)
        .annotate(subscription_count=Count("subscriptions"))
        .order_by("name", "pk")  # Meta.ordering is not applied to a GROUP BY
    )


def _item_values(changes: dict[str, Any]) -> dict[str, Any]:
    values = dict(changes)
    if "name" in values:
        values["name"] = _text(values["name"])
    if "utility" in values:
        values["utility"] = values["utility"] or ""
    return values


@router.get("/charge-items", response=list[ChargeItemOut], auth=VIEW)
@paginate(LimitOffset)
def charge_item_list(request: HttpRequest, active: bool | None = None) -> Any:
    items = _items(request)
    return items if active is None else items.filter(active=active)


@router.post("/charge-items", response={201: ChargeItemOut}, auth=MANAGE_CHARGES)
@refusals
def charge_item_create(request: HttpRequest, payload: ChargeItemIn) -> Any:
    """A charge (rent, property fee, service fee…): fixed, per m² or per kWh / m³ per cycle."""
    item = charge_item_save(
        actor=request.user, organisation_id=_org(request), values=_item_values(payload.dict())
    )
    return Status(201, access_object(request.user, _items(request), item.pk))


@router.get("/charge-items/{charge_item_id}", response=ChargeItemOut, auth=VIEW)
def charge_item_detail(request: HttpRequest, charge_item_id: int) -> Any:
    return access_object(request.user, _items(request), charge_item_id)


@router.patch("/charge-items/{charge_item_id}", response=ChargeItemOut, auth=MANAGE_CHARGES)
@refusals
def charge_item_update(request: HttpRequest, charge_item_id: int, payload: ChargeItemPatch) -> Any:
    item = access_object(request.user, ChargeItem, charge_item_id)
    nullable = {"utility", "valid_from", "valid_to"}
    changes = {
        name: value
        for name, value in payload.dict(exclude_unset=True).items()
        if value is not None or name in nullable
    }
    charge_item_save(
        actor=request.user,
        organisation_id=_org(request),
        values=_item_values(changes),
        item=item,
    )
    return access_object(request.user, _items(request), item.pk)


@router.get(
    "/charge-items/{charge_item_id}/subscriptions", response=list[SubscriptionOut], auth=VIEW
)
@paginate(LimitOffset)
def subscription_list(request: HttpRequest, charge_item_id: int) -> Any:
    """The accounts the item applies to."""
    item = access_object(request.user, ChargeItem, charge_item_id)
    return (
        ChargeSubscription.objects.filter(item=item)
        .select_related("account__customer")
        .order_by("account__number", "pk")
    )


@router.post(
    "/charge-items/{charge_item_id}/subscriptions",
    response={201: SubscribeOut},
    auth=MANAGE_CHARGES,
)
@refusals
def subscription_add(request: HttpRequest, charge_item_id: int, payload: SubscribeIn) -> Any:
    """Apply the item to accounts (optionally for a span, at their own price); an account
    that has it already keeps its subscription as it is."""
    item = access_object(request.user, ChargeItem, charge_item_id)
    accounts = [
        access_object(request.user, Account, pk) for pk in dict.fromkeys(payload.account_ids)
    ]
    added = charge_subscribe(
        actor=request.user,
        item=item,
        accounts=accounts,
        start_on=payload.start_on,
        end_on=payload.end_on,
        unit_price=payload.unit_price,
    )
    return Status(
        201,
        {"added": added, "subscriptions": ChargeSubscription.objects.filter(item=item).count()},
    )


@router.delete(
    "/charge-items/{charge_item_id}/subscriptions/{account_id}",
    response={204: None},
    auth=MANAGE_CHARGES,
)
def subscription_remove(request: HttpRequest, charge_item_id: int, account_id: int) -> Any:
    """The item no longer applies to the account (bills made already keep their charges)."""
    item = access_object(request.user, ChargeItem, charge_item_id)
    account = access_object(request.user, Account, account_id)
    subscription = ChargeSubscription.objects.filter(item=item, account=account).first()
    if subscription is None:
        raise Http404("the item does not apply to the account")
    charge_unsubscribe(actor=request.user, subscription=subscription)
    return Status(204, None)


# --- public-area (allocation) groups ----------------------------------------------------------


def _allocation_groups(request: HttpRequest) -> QuerySet[AllocationGroup]:
    return org_objects(request.user, AllocationGroup).prefetch_related("members__account")


def _allocation_values(request: HttpRequest, changes: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "site_id":
            values["site"] = access_object(request.user, Site, value)
        elif name == "master_meter_id":
            values["master_meter"] = access_object(request.user, Meter, value)
        elif name == "tariff_id":
            values["tariff"] = None if value is None else access_object(request.user, Tariff, value)
        elif name == "name":
            values["name"] = _text(value)
        else:
            values[name] = value
    return values


@router.get("/allocation-groups", response=list[AllocationGroupOut], auth=VIEW)
@paginate(LimitOffset)
def allocation_group_list(request: HttpRequest, site: FilterId | None = None) -> Any:
    """Public-area meters (公摊) and the accounts that share them."""
    groups = _allocation_groups(request)
    return groups if site is None else groups.filter(site_id=site)


@router.post("/allocation-groups", response={201: AllocationGroupOut}, auth=MANAGE_CHARGES)
@refusals
def allocation_group_create(request: HttpRequest, payload: AllocationGroupIn) -> Any:
    """A public-area meter whose consumption its members share by ratio, area, usage or
    equally (add the members with ``PUT …/members``)."""
    group = allocation_group_save(
        actor=request.user,
        organisation_id=_org(request),
        values=_allocation_values(request, payload.dict()),
    )
    return Status(201, access_object(request.user, _allocation_groups(request), group.pk))


@router.get("/allocation-groups/{allocation_group_id}", response=AllocationGroupOut, auth=VIEW)
def allocation_group_detail(request: HttpRequest, allocation_group_id: int) -> Any:
    return access_object(request.user, _allocation_groups(request), allocation_group_id)


@router.patch(
    "/allocation-groups/{allocation_group_id}",
    response=AllocationGroupOut,
    auth=MANAGE_CHARGES,
)
@refusals
def allocation_group_update(
    request: HttpRequest, allocation_group_id: int, payload: AllocationGroupPatch
) -> Any:
    group = access_object(request.user, AllocationGroup, allocation_group_id)
    changes = {
        name: value
        for name, value in payload.dict(exclude_unset=True).items()
        if value is not None or name == "tariff_id"
    }
    allocation_group_save(
        actor=request.user,
        organisation_id=_org(request),
        values=_allocation_values(request, changes),
        group=group,
    )
    return access_object(request.user, _allocation_groups(request), group.pk)


@router.put(
    "/allocation-groups/{allocation_group_id}/members",
    response=AllocationGroupOut,
    auth=MANAGE_CHARGES,
)
@refusals
def allocation_members_put(
    request: HttpRequest, allocation_group_id: int, payload: MembersIn
) -> Any:
    """Replace the members: each an account and its ratio (the ratio counts under the ratio
    rule only)."""
    group = access_object(request.user, AllocationGroup, allocation_group_id)
    members: list[tuple[Account, Decimal | None]] = []
    seen: set[int] = set()
    for member in payload.members:
        account = access_object(request.user, Account, member.account_id)
        if account.pk in seen:
            raise SharingError("members", f"account {account.number} is listed twice")
        seen.add(account.pk)
        members.append((account, None if member.ratio is None else Decimal(member.ratio)))
    allocation_members_set(actor=request.user, group=group, members=members)
    return access_object(request.user, _allocation_groups(request), group.pk)


# --- line-loss groups and grid readings -------------------------------------------------------


def _loss_groups(request: HttpRequest) -> QuerySet[LossGroup]:
    return org_objects(request.user, LossGroup).prefetch_related("meters")


def _loss_values(request: HttpRequest, changes: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "site_id":
            values["site"] = access_object(request.user, Site, value)
        elif name in ("name", "grid_meter_number"):
            values[name] = _text(value)
        elif name != "meter_ids":
            values[name] = value
    return values


def _meters(request: HttpRequest, ids: list[int] | None) -> list[Meter] | None:
    if ids is None:
        return None
    return [access_object(request.user, Meter, pk) for pk in dict.fromkeys(ids)]


@router.get("/loss-groups", response=list[LossGroupOut], auth=VIEW)
@paginate(LimitOffset)
def loss_group_list(request: HttpRequest, site: FilterId | None = None) -> Any:
    """Grid (supply company) meters and the meters under them: the line loss (线损)."""
    groups = _loss_groups(request)
    return groups if site is None else groups.filter(site_id=site)


@router.post("/loss-groups", response={201: LossGroupOut}, auth=MANAGE_CHARGES)
@refusals
def loss_group_create(request: HttpRequest, payload: LossGroupIn) -> Any:
    values = payload.dict()
    group = loss_group_save(
        actor=request.user,
        organisation_id=_org(request),
        values=_loss_values(request, values),
        meters=_meters(request, values["meter_ids"]),
    )
    return Status(201, access_object(request.user, _loss_groups(request), group.pk))


@router.get("/loss-groups/{loss_group_id}", response=LossGroupOut, auth=VIEW)
def loss_group_detail(request: HttpRequest, loss_group_id: int) -> Any:
    return access_object(request.user, _loss_groups(request), loss_group_id)


@router.patch("/loss-groups/{loss_group_id}", response=LossGroupOut, auth=MANAGE_CHARGES)
@refusals
def loss_group_update(request: HttpRequest, loss_group_id: int, payload: LossGroupPatch) -> Any:
    group = access_object(request.user, LossGroup, loss_group_id)
    changes = {k: v for k, v in payload.dict(exclude_unset=True).items() if v is not None}
    loss_group_save(
        actor=request.user,
        organisation_id=_org(request),
        values=_loss_values(request, changes),
        meters=_meters(request, changes.get("meter_ids")),
        group=group,
    )
    return access_object(request.user, _loss_groups(request), group.pk)


@router.get("/loss-groups/{loss_group_id}/readings", response=list[GridReadingOut], auth=VIEW)
@paginate(LimitOffset)
def grid_reading_list(request: HttpRequest, loss_group_id: int) -> Any:
    """The grid meter's readings, newest first."""
    group = access_object(request.user, LossGroup, loss_group_id)
    return (
        GridReading.objects.filter(group=group)
        .select_related("entered_by")
        .defer("photo")
        .order_by("-read_on")
    )


@router.post(
    "/loss-groups/{loss_group_id}/readings",
    response={201: GridReadingOut},
    auth=ENTER_GRID_READINGS,
)
@refusals
def grid_reading_create(request: HttpRequest, loss_group_id: int, payload: GridReadingIn) -> Any:
    """Enter the grid meter's register at the start of ``read_on`` (a period boundary); it
    replaces that day's reading. A reading below the one before it (or above the one after
    it) is refused with 422, naming the other reading's day."""
    group = access_object(request.user, LossGroup, loss_group_id)
    row = grid_reading_enter(
        actor=request.user,
        group=group,
        read_on=payload.read_on,
        reading=payload.reading,
        notes=_text(payload.notes),
    )
    return Status(201, GridReading.objects.select_related("entered_by").get(pk=row.pk))


# --- bill runs ----------------------------------------------------------------------------------


def _runs(request: HttpRequest) -> QuerySet[BillRun]:
    live = ~Q(bills__status=Bill.Status.VOID)
    return (
        org_objects(request.user, BillRun)
        .select_related("organisation", "created_by")
        .prefetch_related("accounts")
        .annotate(
            bill_count=Count("bills", filter=live),
            sum_total=Sum("bills__total_minor", filter=live),
            sum_due=Sum("bills__due_minor", filter=live),
            sum_unpaid=Sum("bills__unpaid_minor", filter=live),
        )
        .order_by("-period_start", "-pk")
    )


def _run(request: HttpRequest, run_id: int) -> BillRun:
    return access_object(request.user, _runs(request), run_id)


@router.get("/bill-runs", response=list[RunOut], auth=VIEW)
@paginate(LimitOffset)
def bill_run_list(request: HttpRequest, filters: Query[RunFilter]) -> Any:
    runs = _runs(request)
    if filters.status:
        runs = runs.filter(status=filters.status)
    if filters.site is not None:
        runs = runs.filter(site_id=filters.site)
    if filters.period:
        year, month = (int(part) for part in filters.period.split("-"))
        runs = runs.filter(period_start__year=year, period_start__month=month)
    return runs


@router.post("/bill-runs", response={201: RunDetailOut}, auth=RUN_BILLS)
@refusals
def bill_run_create(request: HttpRequest, payload: RunIn) -> Any:
    """Make the draft bills of ``[period_start, period_end)`` for a site (every account
    supplied in the period) or for the accounts named. A problem in the inputs (a public-area
    group without members, a per-m² charge on an account without area, …) answers 422 with
    every problem in ``errors.__all__``, and nothing is written."""
    site = None if payload.site_id is None else access_object(request.user, Site, payload.site_id)
    accounts = [
        access_object(request.user, Account, pk) for pk in dict.fromkeys(payload.account_ids)
    ]
    run = run_services.bill_run_create(
        actor=request.user,
        organisation_id=_org(request),
        period_start=payload.period_start,
        period_end=payload.period_end,
        site=site,
        accounts=accounts,
        due_on=payload.due_on,
    )
    return Status(201, _run(request, run.pk))


@router.get("/bill-runs/{run_id}", response=RunDetailOut, auth=VIEW)
def bill_run_detail(request: HttpRequest, run_id: int) -> Any:
    """The run with its findings: each public-area group's shares and each line-loss group's
    bill (grid, metered, loss, rate, and every account's part). Its bills, with the review
    finance checks: ``GET /bills?run=``."""
    return _run(request, run_id)


def _run_step(request: HttpRequest, run_id: int, step: Callable[..., Any]) -> Any:
    run = access_object(request.user, BillRun, run_id)
    step(actor=request.user, run=run)
    return _run(request, run.pk)


@router.post("/bill-runs/{run_id}/remake", response=RunDetailOut, auth=RUN_BILLS)
@refusals
def bill_run_remake(request: HttpRequest, run_id: int) -> Any:
    """Remake a draft run's bills from what is stored now (problems: 422, as at creation)."""
    return _run_step(request, run_id, run_services.bill_run_compute)


@router.post("/bill-runs/{run_id}/confirm", response=RunDetailOut, auth=ISSUE_BILLS)
@refusals
def bill_run_confirm(request: HttpRequest, run_id: int) -> Any:
    """Finance has checked the drafts: they are confirmed together."""
    return _run_step(request, run_id, run_services.bill_run_confirm)


@router.post("/bill-runs/{run_id}/back-to-draft", response=RunDetailOut, auth=ISSUE_BILLS)
@refusals
def bill_run_back_to_draft(request: HttpRequest, run_id: int) -> Any:
    """A confirmed run goes back to draft (to be remade)."""
    return _run_step(request, run_id, run_services.bill_run_unconfirm)


@router.post("/bill-runs/{run_id}/issue", response=RunDetailOut, auth=ISSUE_BILLS)
@refusals
def bill_run_issue(request: HttpRequest, run_id: int) -> Any:
    """Issue every confirmed bill: booked, sent to the customers, settled from what is paid.
    Issuing again answers 400 and books nothing."""
    return _run_step(request, run_id, run_services.bill_run_issue)


@router.post("/bill-runs/{run_id}/discard", response=RunDetailOut, auth=RUN_BILLS)
@refusals
def bill_run_discard(request: HttpRequest, run_id: int) -> Any:
    """Discard a run that is not issued, with its bills (a confirmed run: issue_bills)."""
    run = access_object(request.user, BillRun, run_id)
    if run.status == BillRun.Status.CONFIRMED:
        require(request.user, Permission.ISSUE_BILLS)
    return _run_step(request, run_id, run_services.bill_run_void)


# --- bills ------------------------------------------------------------------------------------


def _bills(request: HttpRequest) -> QuerySet[Bill]:
    return org_objects(request.user, Bill).select_related("account__customer")


def _bill(request: HttpRequest, bill_id: int) -> Bill:
    return access_object(request.user, _bills(request), bill_id)


def _overdue(today: date) -> Q:
    return Q(status=Bill.Status.ISSUED, unpaid_minor__gt=0, due_on__lt=today)


@router.get("/bills", response=list[BillOut], auth=VIEW)
@paginate(LimitOffset)
def bill_list(request: HttpRequest, filters: Query[BillFilter]) -> Any:
    bills = _bills(request)
    if filters.status:
        bills = bills.filter(status=filters.status)
    if filters.kind:
        bills = bills.filter(kind=filters.kind)
    if filters.account is not None:
        bills = bills.filter(account_id=filters.account)
    if filters.run is not None:
        bills = bills.filter(run_id=filters.run)
    if filters.overdue is not None:
        overdue = _overdue(timezone.localdate())
        bills = bills.filter(overdue) if filters.overdue else bills.exclude(overdue)
    return bills


@router.get("/bills/arrears", response=list[ArrearsOut], auth=VIEW)
@paginate(LimitOffset)
def bill_arrears(request: HttpRequest) -> Any:
    """Issued bills still unpaid after their due date, oldest first."""
    return (
        bill_services.overdue_bills(organisation_id=_org(request), today=timezone.localdate())
        .select_related("account__customer")
        .order_by("due_on", "number")
    )


@router.get("/bills/{bill_id}", response=BillDetailOut, auth=VIEW)
def bill_detail(request: HttpRequest, bill_id: int) -> Any:
    """A bill with its lines and the meter readings it was made from."""
    return _bill(request, bill_id)


@router.post("/bills/{bill_id}/confirm", response=BillDetailOut, auth=ISSUE_BILLS)
@refusals
def bill_confirm(request: HttpRequest, bill_id: int) -> Any:
    """Confirm one draft bill (a corrected bill from ``reissue``, say)."""
    bill = access_object(request.user, Bill, bill_id)
    bill_services.bill_confirm(actor=request.user, bill=bill)
    return _bill(request, bill.pk)


@router.post("/bills/{bill_id}/issue", response=BillDetailOut, auth=ISSUE_BILLS)
@refusals
def bill_issue(request: HttpRequest, bill_id: int) -> Any:
    """Issue one confirmed bill: booked, sent, settled from what is paid."""
    bill = access_object(request.user, Bill, bill_id)
    bill_services.bill_issue(actor=request.user, bill=bill)
    return _bill(request, bill.pk)


def _key(value: str | None) -> str:
    key = (value or "").strip()
    if not key or len(key) > KEY_LIMIT:
        raise ValidationError(
            {"Idempotency-Key": f"send an Idempotency-Key header of 1 to {KEY_LIMIT} characters"}
        )
    return key


def _key_used_for_another_payment(bill: Bill, key: str, channel: Channel) -> bool:
    """Was ``key`` used for a payment the services' own replay check cannot compare with
    this one (the other kind of payment, or the other channel)?"""
    keys = {
        chosen: ledger.make_idempotency_key(
            movement="bill-payment", parts=[ledger.channel_account(channel=chosen).code, key]
        )
        for chosen in (Channel.CASH, Channel.BANK_TRANSFER)
    }
    paid = set(
        JournalEntry.objects.filter(
            organisation_id=bill.organisation_id, idempotency_key__in=list(keys.values())
        ).values_list("idempotency_key", flat=True)
    )
    if bill.settles == Bill.Settles.WALLET:
        return bool(paid)
    recharged = Recharge.objects.filter(
        organisation_id=bill.organisation_id, idempotency_key=key
    ).exists()
    return recharged or bool(paid - {keys[channel]})


@router.post("/bills/{bill_id}/pay", response=BillDetailOut, auth=RECORD_PAYMENTS)
@refusals
def bill_pay(
    request: HttpRequest,
    bill_id: int,
    payload: PayIn,
    idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
) -> Any:
    """Record a payment towards an issued bill, at the counter or by bank transfer (partial
    payments welcome; payments settle the account's oldest bills first).

    Send an `Idempotency-Key` header: a replay answers the bill as it is and pays once; the
    same key with a different amount, channel or account answers 409.
    """
    bill = access_object(request.user, Bill, bill_id)
    key = _key(idempotency_key)
    channel = Channel(payload.channel)
    if _key_used_for_another_payment(bill, key, channel):
        raise IdempotencyConflict(f"idempotency key {key!r} was used for another payment")
    bill_services.bill_pay(
        actor=request.user,
        bill=bill,
        amount=payload.amount,
        channel=channel.value,
        idempotency_key=key,
        reference=_text(payload.reference),
    )
    return _bill(request, bill.pk)


@router.post("/bills/{bill_id}/credit", response={201: BillDetailOut}, auth=ISSUE_BILLS)
@refusals
def bill_credit(request: HttpRequest, bill_id: int, payload: CreditIn) -> Any:
    """Cancel an issued bill with a credit note (answered): what it booked is reversed and
    it no longer asks for anything."""
    bill = access_object(request.user, Bill, bill_id)
    note = bill_services.bill_credit(actor=request.user, bill=bill, reason=_text(payload.reason))
    return Status(201, _bill(request, note.pk))


@router.post("/bills/{bill_id}/reissue", response={201: BillDetailOut}, auth=ISSUE_BILLS)
@refusals
def bill_reissue(request: HttpRequest, bill_id: int, payload: ReissueIn) -> Any:
    """Credit an issued bill and make its corrected replacement (answered) as a draft: the
    same lines plus the adjustments (negative amounts in the customer's favour). Confirm and
    issue it with ``POST /bills/{id}/confirm`` and ``/issue``."""
    bill = access_object(request.user, Bill, bill_id)
    replacement = bill_services.bill_reissue(
        actor=request.user,
        bill=bill,
        reason=_text(payload.reason),
        adjustments=[(_text(a.label), Decimal(a.amount)) for a in payload.adjustments],
    )
    return Status(201, _bill(request, replacement.pk))


_PDF = {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}


@router.get(
    "/bills/{bill_id}/pdf",
    auth=VIEW,
    openapi_extra={"responses": {200: {"description": "the printed bill", "content": _PDF}}},
)
def bill_pdf(request: HttpRequest, bill_id: int, language: Language | None = None) -> Any:
    """The bill printed with the organisation's template of the language (default: the
    request's language)."""
    from meterpay.apps.billing.documents import bill_pdf_bytes

    bill = access_object(request.user, Bill, bill_id)
    chosen = language or ("en" if translation.get_language().startswith("en") else "zh-hans")
    response = HttpResponse(
        bill_pdf_bytes(bill=bill, language=chosen), content_type="application/pdf"
    )
    response["Content-Disposition"] = f'inline; filename="{bill.number}-{chosen}.pdf"'
    return response
