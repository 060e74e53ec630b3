"""The account-opening wizard: room → customer → meters → billing mode → confirm.

The choices so far live in the session under ``WIZARD_KEY``; every step re-checks them
against the user's organisation, so a tampered session cannot reach another's objects.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from meterpay.apps.customers import services
from meterpay.apps.customers.models import Customer
from meterpay.apps.customers.selectors import rooms_with_status
from meterpay.apps.meters.models import Meter
from meterpay.apps.organisations.access import access_object, org_objects
from meterpay.core.roles import Permission
from meterpay.web.forms import CustomerForm, WizardBillingForm
from meterpay.web.views.base import staff_view

WIZARD_KEY = "account_wizard"
STEPS = [
    ("room", gettext_lazy("Room")),
    ("customer", gettext_lazy("Customer")),
    ("meters", gettext_lazy("Meters")),
    ("billing", gettext_lazy("Billing mode")),
    ("confirm", gettext_lazy("Confirm")),
]


def _state(request: HttpRequest) -> dict[str, Any]:
    return request.session.setdefault(WIZARD_KEY, {})


def _save(request: HttpRequest, **changes: Any) -> None:
    state = _state(request)
    state.update(changes)
    request.session[WIZARD_KEY] = state


def _go(step: str) -> HttpResponse:
    response = redirect("console:account_wizard")
    response["Location"] += f"?step={step}"
    return response


@staff_view(Permission.MANAGE_ACCOUNTS)
def account_wizard(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    step = request.GET.get("step", "room")
    if request.GET.get("restart"):
        request.session.pop(WIZARD_KEY, None)
    state = _state(request)
    room = (
        access_object(user, rooms_with_status(user), state["room"]) if state.get("room") else None
    )
    customer = access_object(user, Customer, state["customer"]) if state.get("customer") else None
    if step != "room" and room is None:
        return _go("room")
    if step in ("meters", "billing", "confirm") and customer is None:
        return _go("customer")
    context: dict[str, Any] = {
        "section": "accounts",
        "step": step,
        "steps": STEPS,
        "room": room,
        "customer": customer,
        "state": state,
        "step_index": [key for key, _label in STEPS].index(step) if step in dict(STEPS) else 0,
    }
    handler = {
        "room": _room_step,
        "customer": _customer_step,
        "meters": _meters_step,
        "billing": _billing_step,
        "confirm": _confirm_step,
    }.get(step, _room_step)
    return handler(request, user, context)


def _room_step(request: HttpRequest, user: Any, context: dict[str, Any]) -> HttpResponse:
    if request.method == "POST":
        room = access_object(user, rooms_with_status(user), request.POST.get("room"))
        if room.occupancy != "vacant":
            messages.error(
                request, _("Room %(room)s already has an account.") % {"room": room.number}
            )
        else:
            _save(request, room=room.pk, meters=[])
            return _go("customer")
    q = request.GET.get("q", "").strip()
    rooms = rooms_with_status(user).filter(occupancy="vacant")
    if q:
        rooms = rooms.filter(Q(number__icontains=q) | Q(floor__building__name__icontains=q))
    context.update({"vacant_rooms": rooms[:60], "q": q})
    return render(request, "web/accounts/wizard.html", context)


def _customer_step(request: HttpRequest, user: Any, context: dict[str, Any]) -> HttpResponse:
    form = CustomerForm(request.POST if request.POST.get("mode") == "new" else None)
    if request.method == "POST":
        if request.POST.get("mode") == "existing":
            customer = access_object(user, Customer, request.POST.get("customer"))
            _save(request, customer=customer.pk)
            return _go("meters")
        if user.can(Permission.MANAGE_CUSTOMERS) and form.is_valid():
            customer = services.customer_create(
                actor=user, organisation=user.organisation, **form.cleaned_data
            )
            _save(request, customer=customer.pk)
            return _go("meters")
    q = request.GET.get("q", "").strip()
    customers = org_objects(user, Customer)
    if q:
        customers = customers.filter(Q(name__icontains=q) | Q(phone__icontains=q))
    context.update({"customers": customers[:50], "form": form, "q": q})
    return render(request, "web/accounts/wizard.html", context)


def _available_meters(user: Any, room: Any) -> Any:
    return org_objects(user, Meter).filter(room=room, removed_on__isnull=True, account__isnull=True)


def _meters_step(request: HttpRequest, user: Any, context: dict[str, Any]) -> HttpResponse:
    available = _available_meters(user, context["room"])
    if request.method == "POST":
        chosen = [int(pk) for pk in request.POST.getlist("meters") if pk.isdigit()]
        valid = set(available.filter(pk__in=chosen).values_list("pk", flat=True))
        _save(request, meters=sorted(valid))
        return _go("billing")
    context.update(
        {"available_meters": available, "chosen": set(context["state"].get("meters", []))}
    )
    return render(request, "web/accounts/wizard.html", context)


def _billing_step(request: HttpRequest, user: Any, context: dict[str, Any]) -> HttpResponse:
    state = context["state"]
    form = WizardBillingForm(
        request.POST or None,
        initial={
            "billing_mode": state.get("billing_mode", "prepaid"),
            "billing_side": state.get("billing_side", "platform"),
            "move_in_on": state.get("move_in_on"),
        },
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        _save(
            request,
            billing_mode=data["billing_mode"],
            billing_side=data["billing_side"],
            move_in_on=data["move_in_on"].isoformat() if data["move_in_on"] else None,
        )
        return _go("confirm")
    context["form"] = form
    return render(request, "web/accounts/wizard.html", context)


def _confirm_step(request: HttpRequest, user: Any, context: dict[str, Any]) -> HttpResponse:
    state = context["state"]
    if "billing_mode" not in state:
        return _go("billing")
    meters = list(_available_meters(user, context["room"]).filter(pk__in=state.get("meters", [])))
    if request.method == "POST":
        try:
            account = services.account_open_new(
                actor=user,
                customer=context["customer"],
                rooms=[context["room"]],
                meters=meters,
                billing_mode=state["billing_mode"],
                billing_side=state["billing_side"],
                move_in_on=parse_date(state["move_in_on"]) if state.get("move_in_on") else None,
            )
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
        else:
            request.session.pop(WIZARD_KEY, None)
            messages.success(request, _("Account %(number)s is open.") % {"number": account.number})
            return redirect("console:account_detail", account.pk)
    context["meters"] = meters
    return render(request, "web/accounts/wizard.html", context)
