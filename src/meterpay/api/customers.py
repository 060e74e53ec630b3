from typing import Any

from django.db.models import Q
from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from ninja.pagination import paginate

from meterpay.api.pagination import LimitOffset
from meterpay.api.schemas import AccountIn, AccountOut, CustomerIn, CustomerOut, CustomerPatch
from meterpay.apps.customers import services
from meterpay.apps.customers.models import Account, Customer
from meterpay.apps.meters.models import Meter
from meterpay.apps.organisations.access import access_object, org_objects, require
from meterpay.apps.sites.models import Room
from meterpay.core.roles import Permission

router = Router(tags=["customers and accounts"])


class AccountFilter(Schema):
    status: str | None = None
    billing_mode: str | None = None
    customer: int | None = None
    q: str | None = None


def accounts_qs(request: HttpRequest) -> Any:
    return (
        org_objects(request.user, Account)
        .select_related("customer")
        .prefetch_related("rooms", "meters")
    )


@router.get("/customers", response=list[CustomerOut])
@paginate(LimitOffset)
def customer_list(request: HttpRequest, q: str | None = None) -> Any:
    qs = org_objects(request.user, Customer)
    q = (q or "").replace("\x00", "")  # PostgreSQL text never holds NUL
    return qs.filter(name__icontains=q) if q else qs


@router.post("/customers", response={201: CustomerOut})
def customer_create(request: HttpRequest, payload: CustomerIn) -> Any:
    require(request.user, Permission.MANAGE_CUSTOMERS)
    return Status(
        201,
        services.customer_create(
            actor=request.user, organisation=request.user.organisation, **payload.dict()
        ),
    )


@router.get("/customers/{customer_id}", response=CustomerOut)
def customer_detail(request: HttpRequest, customer_id: int) -> Any:
    return access_object(request.user, Customer, customer_id)


@router.patch("/customers/{customer_id}", response=CustomerOut)
def customer_update(request: HttpRequest, customer_id: int, payload: CustomerPatch) -> Any:
    require(request.user, Permission.MANAGE_CUSTOMERS)
    customer = access_object(request.user, Customer, customer_id)
    changes = {k: v for k, v in payload.dict().items() if v is not None}
    return services.customer_update(actor=request.user, customer=customer, **changes)


@router.get("/accounts", response=list[AccountOut])
@paginate(LimitOffset)
def account_list(request: HttpRequest, filters: Query[AccountFilter]) -> Any:
    qs = accounts_qs(request)
    if filters.status:
        qs = qs.filter(status=filters.status)
    if filters.billing_mode:
        qs = qs.filter(billing_mode=filters.billing_mode)
    if filters.customer:
        qs = qs.filter(customer_id=filters.customer)
    if filters.q:
        qs = qs.filter(Q(number__icontains=filters.q) | Q(customer__name__icontains=filters.q))
    return qs


@router.get("/accounts/{account_id}", response=AccountOut)
def account_detail(request: HttpRequest, account_id: int) -> Any:
    return access_object(request.user, accounts_qs(request), account_id)


@router.post("/accounts", response={201: AccountOut})
def account_create(request: HttpRequest, payload: AccountIn) -> Any:
    """Pre-set an account, or (``open``: true, the default) open it at once."""
    require(request.user, Permission.MANAGE_ACCOUNTS)
    customer = access_object(request.user, Customer, payload.customer_id)
    rooms = [access_object(request.user, Room, pk) for pk in payload.room_ids]
    meters = [access_object(request.user, Meter, pk) for pk in payload.meter_ids]
    create = services.account_open_new if payload.open else services.account_preset
    account = create(
        actor=request.user,
        customer=customer,
        rooms=rooms,
        meters=meters,
        billing_mode=payload.billing_mode,
        billing_side=payload.billing_side,
        move_in_on=payload.move_in_on,
    )
    return Status(201, (access_object(request.user, accounts_qs(request), account.pk)))


def _transition(request: HttpRequest, account_id: int, action: Any) -> dict[str, Any]:
    require(request.user, Permission.MANAGE_ACCOUNTS)
    account = access_object(request.user, Account, account_id)
    action(actor=request.user, account=account)
    return access_object(request.user, accounts_qs(request), account_id)


@router.post("/accounts/{account_id}/open", response=AccountOut)
def account_open(request: HttpRequest, account_id: int) -> Any:
    return _transition(request, account_id, services.account_open)


@router.post("/accounts/{account_id}/suspend", response=AccountOut)
def account_suspend(request: HttpRequest, account_id: int) -> Any:
    return _transition(request, account_id, services.account_suspend)


@router.post("/accounts/{account_id}/resume", response=AccountOut)
def account_resume(request: HttpRequest, account_id: int) -> Any:
    return _transition(request, account_id, services.account_resume)


@router.post("/accounts/{account_id}/close", response=AccountOut)
def account_close(request: HttpRequest, account_id: int) -> Any:
    return _transition(request, account_id, services.account_close)
