"""Room monitoring: the grid of every room's state, and the room page where operators do what
they do to a room (open the account, set its price, sell and refund, set alarm levels, switch
the supply, settle and close), each confirmed in a dialog and its result shown live."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from meterpay.apps.billing.settlement import account_move_out
from meterpay.apps.control.models import MeterCommand
from meterpay.apps.control.services import meter_command_request
from meterpay.apps.customers import services as customer_services
from meterpay.apps.customers.models import Account
from meterpay.apps.customers.selectors import rooms_with_status
from meterpay.apps.ledger.models import JournalEntry
from meterpay.apps.ledger.services import wallet_for
from meterpay.apps.meters.models import Meter
from meterpay.apps.monitoring import grid as grids
from meterpay.apps.monitoring import room as monitoring
from meterpay.apps.monitoring.labels import (
    FEE_HELP,
    FEE_LABELS,
    LINK_LABELS,
    OCCUPANCY_LABELS,
    SUPPLY_LABELS,
)
from meterpay.apps.organisations.access import access_object, org_objects
from meterpay.apps.payments.meter_credit import energy_refund_request
from meterpay.apps.payments.refunds import refund_record
from meterpay.apps.payments.services import recharge_record
from meterpay.apps.sites.models import Building, Floor, Room, Site
from meterpay.apps.supply.selectors import policy_row
from meterpay.apps.supply.services import wallet_overrides_set
from meterpay.apps.tariffs.models import Tariff
from meterpay.apps.tariffs.services import account_tariff_assign
from meterpay.core.fee_status import FEE_STATUS_ORDER
from meterpay.core.ledger import IdempotencyConflict
from meterpay.core.money import from_minor
from meterpay.core.roles import Permission
from meterpay.web.views.base import is_htmx, page, querystring_without_page, staff_view
from meterpay.web.views.wallet_settings import AmountField

GRID_PAGE = 120
#: Seconds between the grid's and the room page's live refreshes.
REFRESH_SECONDS = 10


# --- the grid -------------------------------------------------------------------------------


def _chips(filters: dict[str, str], counts: dict[str, dict[str, int]]) -> dict[str, list[Any]]:
    """Per filter, a chip per value: its label, count, whether chosen, and its address."""
    labels = {
        "status": OCCUPANCY_LABELS,
        "fee": FEE_LABELS,
        "link": LINK_LABELS,
        "supply": SUPPLY_LABELS,
    }
    chips: dict[str, list[Any]] = {}
    for name, values in grids.DIMENSIONS.items():
        row = []
        for value in values:
            chosen = filters.get(name) == value
            query = {k: v for k, v in filters.items() if k != name}
            if not chosen:
                query[name] = value
            row.append(
                {
                    "value": value,
                    "label": labels[name][value],
                    "n": counts[name].get(value, 0),
                    "chosen": chosen,
                    "href": "?" + urlencode(query),
                }
            )
        chips[name] = row
    return chips


@staff_view()
def room_grid(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    grid = grids.room_grid(user, request.GET.dict())
    filters = grid.filters
    context = {
        "section": "rooms",
        "rooms": page(request, grid.tiles, per_page=GRID_PAGE),
        "counts": grid.counts["status"],
        "chips": _chips(filters, grid.counts),
        "params": filters,
        "query": querystring_without_page(request),
        "live_query": request.GET.urlencode(),
        "refresh_seconds": REFRESH_SECONDS,
        "sites": org_objects(user, Site),
        "buildings": org_objects(user, Building)
        .select_related("site")
        .filter(**({"site_id": filters["site"]} if "site" in filters else {})),
        "floors": org_objects(user, Floor).filter(building_id=filters["building"])
        if "building" in filters
        else [],
        "kinds": Room.Kind.choices,
        "legend": [(s.value, FEE_LABELS[s], FEE_HELP[s]) for s in FEE_STATUS_ORDER],
        "fee_labels": FEE_LABELS,
        "link_labels": LINK_LABELS,
    }
    if is_htmx(request):
        return render(request, "web/rooms/grid.html#results", context)
    return render(request, "web/rooms/grid.html", context)


# --- the room page --------------------------------------------------------------------------


def _room(user: Any, room_id: int) -> Room:
    return access_object(user, rooms_with_status(user), room_id)


def _live_context(user: Any, room: Room) -> dict[str, Any]:
    state = monitoring.room_state(room)
    return {
        "room": room,
        "state": state,
        "account": state.account,
        "commands": monitoring.room_commands(room, limit=15),
        "notifications": monitoring.room_notifications(room, limit=10),
        "fee_labels": FEE_LABELS,
        "fee_help": FEE_HELP,
        "link_labels": LINK_LABELS,
        "occupancy_labels": OCCUPANCY_LABELS,
        "refresh_seconds": REFRESH_SECONDS,
    }


def _operations_context(user: Any, room: Room, state: Any) -> dict[str, Any]:
    account = state.account
    tariffs = (
        org_objects(user, Tariff).filter(archived=False).order_by("utility", "name")
        if account is not None
        else []
    )
    levels: list[str] = []
    org_levels: list[str] = []
    if account is not None:
        own = account.wallet.alarm_thresholds_minor if account.wallet is not None else None
        levels = [str(from_minor(int(m))) for m in own or []]
        org_levels = [
            str(from_minor(int(m)))
            for m in policy_row(room.organisation_id).alarm_thresholds_minor or []
        ]
    return {
        "room": room,
        "state": state,
        "account": account,
        "tariffs": tariffs,
        "level_fields": list(
            zip((1, 2, 3), [*levels, "", "", ""][:3], [*org_levels, "", "", ""][:3], strict=True)
        ),
        "form_key": uuid.uuid4().hex,
        "today": timezone.localdate(),
        "switches": _switches(state),
    }


def _switches(state: Any) -> list[dict[str, Any]]:
    """The relay and valve buttons: per commandable meter, switch off (dangerous) and on."""
    rows = []
    for item in state.meters:
        if not item.commandable:
            continue
        if item.utility == "water":
            off, on = ("valve_close", _("Close valve")), ("valve_open", _("Open valve"))
        else:
            off, on = ("relay_trip", _("Trip relay")), ("relay_close", _("Close relay"))
        rows.append({"meter": item.meter, "utility": item.utility, "off": off, "on": on})
    return rows


@staff_view()
def room_detail(request: HttpRequest, room_id: int) -> HttpResponse:
    user: Any = request.user
    room = _room(user, room_id)
    context = _live_context(user, room)
    state = context["state"]
    account = state.account.account if state.account is not None else None
    today, month = monitoring.today_and_month(room, account)
    context.update(_operations_context(user, room, state))
    context.update(
        {
            "section": "rooms",
            "accounts": room.accounts.select_related("customer").order_by("-id"),
            "today_usage": today,
            "month_usage": month,
            "chart": monitoring.daily_chart(room),
        }
    )
    return render(request, "web/rooms/detail.html", context)


@staff_view()
def room_state(request: HttpRequest, room_id: int) -> HttpResponse:
    """The live part of the room page (money, meters, supply, commands, alarms), polled."""
    user: Any = request.user
    room = _room(user, room_id)
    return render(request, "web/rooms/_live.html", _live_context(user, room))


# --- operations -----------------------------------------------------------------------------

#: Operation → the permission the existing pages ask for the same action.
OPERATIONS: dict[str, Permission] = {
    "open_account": Permission.MANAGE_ACCOUNTS,
    "set_tariff": Permission.MANAGE_TARIFFS,
    "recharge": Permission.RECORD_PAYMENTS,
    "refund": Permission.RECORD_PAYMENTS,
    "alarm_levels": Permission.MANAGE_BALANCE_POLICY,
    "switch": Permission.MANAGE_METERS,
    "settle_close": Permission.MANAGE_ACCOUNTS,
}


class AlarmLevelsForm(forms.Form):
    alarm_level_1 = AmountField(label=gettext_lazy("alarm level 1"), required=False)
    alarm_level_2 = AmountField(label=gettext_lazy("alarm level 2"), required=False)
    alarm_level_3 = AmountField(label=gettext_lazy("alarm level 3"), required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        levels = [data.get(f"alarm_level_{n}") for n in (1, 2, 3)]
        given = [level for level in levels if level is not None]
        if given and levels[: len(given)] != given:
            raise ValidationError(_("Fill the levels from level 1 down, without gaps."))
        if any(a <= b for a, b in pairwise(given)):
            raise ValidationError(_("Each alarm level is lower than the one before it."))
        data["levels"] = given
        return data


class Result:
    """What an operation did: a message, and the command whose outcome is awaited (if any)."""

    def __init__(
        self, message: str, *, ok: bool = True, command: MeterCommand | None = None
    ) -> None:
        self.message = message
        self.ok = ok
        self.command = command


def _account(state: Any) -> Account:
    if state.account is None:
        raise ValidationError(_("This room has no account."))
    account: Account = state.account.account
    return account


def _open_account(user: Any, room: Room, state: Any, post: Any) -> Result:
    account = _account(state)
    move_in = _date(post.get("move_in_on"), field=_("move-in date"))
    opened = customer_services.account_open(actor=user, account=account, move_in_on=move_in)
    return Result(_("Account %(number)s is open.") % {"number": opened.number})


def _set_tariff(user: Any, room: Room, state: Any, post: Any) -> Result:
    account = _account(state)
    tariff = access_object(user, Tariff, post.get("tariff"))
    start = _moment(post.get("effective_from"))
    account_tariff_assign(actor=user, account=account, tariff=tariff, effective_from=start)
    return Result(
        _("%(utility)s is priced by %(tariff)s from %(when)s.")
        % {
            "utility": tariff.get_utility_display(),
            "tariff": tariff.name,
            "when": timezone.localtime(start).strftime("%Y-%m-%d %H:%M") if start else _("now"),
        }
    )


def _recharge(user: Any, room: Room, state: Any, post: Any) -> Result:
    account = _account(state)
    recharge, _created = recharge_record(
        actor=user,
        account=account,
        amount=(post.get("amount") or "").strip(),
        channel=post.get("channel") or "cash",
        idempotency_key=post.get("idempotency_key") or uuid.uuid4().hex,
        reference=post.get("reference", ""),
    )
    amount = from_minor(recharge.amount_minor, recharge.currency)
    if recharge.status != recharge.Status.PAID:
        return Result(
            _("Bank transfer of %(amount)s recorded; it is credited once finance confirms it.")
            % {"amount": amount}
        )
    download = None
    if recharge.entry_id is not None:
        download = MeterCommand.objects.filter(
            organisation_id=account.organisation_id,
            idempotency_key=f"download:entry-{recharge.entry_id}",
        ).first()
    balance = from_minor(recharge.balance_after_minor or 0, recharge.currency)
    if download is not None:
        return Result(
            _("%(amount)s received (order %(number)s); it is being downloaded to the meter.")
            % {"amount": amount, "number": recharge.number},
            command=download,
        )
    return Result(
        _("%(amount)s received (order %(number)s). The balance is now %(balance)s.")
        % {"amount": amount, "number": recharge.number, "balance": balance}
    )


def _refund(user: Any, room: Room, state: Any, post: Any) -> Result:
    account = _account(state)
    key = post.get("idempotency_key") or uuid.uuid4().hex
    if account.billing_side == Account.BillingSide.METER:
        command = energy_refund_request(actor=user, account=account, idempotency_key=key)
        return Result(
            _("Energy refund sent to the meter; the wallet is credited once it confirms."),
            command=command,
        )
    entry: JournalEntry = refund_record(
        actor=user,
        account=account,
        amount=(post.get("amount") or "").strip() or None,
        channel=post.get("channel") or "cash",
        idempotency_key=key,
    )
    return Result(
        _("%(amount)s refunded.") % {"amount": from_minor(-entry.wallet_amount, entry.currency)}
    )


def _alarm_levels(user: Any, room: Room, state: Any, post: Any) -> Result:
    account = _account(state)
    form = AlarmLevelsForm(post)
    if not form.is_valid():
        raise ValidationError([str(error) for errors in form.errors.values() for error in errors])
    wallet = wallet_for(account)
    wallet_overrides_set(
        actor=user,
        wallet=wallet,
        keep_supply=wallet.keep_supply,
        alarm_thresholds_minor=form.cleaned_data["levels"] or None,
        overdraft_minor=wallet.overdraft_minor,
        restore_threshold_minor=wallet.restore_threshold_minor,
    )
    if form.cleaned_data["levels"]:
        return Result(
            _("Alarm levels set: %(levels)s.")
            % {"levels": " / ".join(str(from_minor(m)) for m in form.cleaned_data["levels"])}
        )
    return Result(_("The account follows the organisation's alarm levels again."))


def _switch(user: Any, room: Room, state: Any, post: Any) -> Result:
    meter = Meter.objects.filter(room=room, removed_on__isnull=True, pk=_int(post.get("meter")))
    found = meter.select_related("gateway").first()
    if found is None:
        raise Http404("no such meter in this room")
    command = meter_command_request(
        actor=user,
        meter=found,
        kind=post.get("kind", ""),
        reason=(post.get("reason") or "").strip() or _("from the room page"),
        requested_by=MeterCommand.Requester.OPERATOR,
    )
    return Result(
        _("%(command)s queued for meter %(address)s; the gateway sends it and reads the meter.")
        % {"command": command.get_kind_display(), "address": found.address},
        command=command,
    )


def _settle_close(user: Any, room: Room, state: Any, post: Any) -> Result:
    account = _account(state)
    move_out = _date(post.get("move_out_on"), field=_("move-out date")) or timezone.localdate()
    readings: dict[int, Decimal] = {}
    for item in state.meters:
        text = (post.get(f"reading_{item.meter.pk}") or "").strip()
        if not text:
            continue
        try:
            readings[item.meter.pk] = Decimal(text)
        except InvalidOperation:
            raise ValidationError(
                _("Meter %(address)s: %(text)s is not a reading.")
                % {"address": item.meter.address, "text": text}
            ) from None
    paid_out = bool(post.get("paid_out")) and user.can(Permission.RECORD_PAYMENTS)
    done = account_move_out(
        actor=user,
        account=account,
        move_out_on=move_out,
        final_readings=readings or None,
        refund_paid_out=paid_out,
    )
    currency = done.bill.currency
    parts = [_("Final bill %(number)s issued; account closed.") % {"number": done.bill.number}]
    if done.settlement.refund_minor:
        refund = from_minor(done.settlement.refund_minor, currency)
        parts.append(
            _("%(amount)s refunded in cash.") % {"amount": refund}
            if paid_out
            else _("%(amount)s to refund: finance pays it out.") % {"amount": refund}
        )
    if done.settlement.arrears_minor:
        parts.append(
            _("%(amount)s owed: the final bill asks for it.")
            % {"amount": from_minor(done.settlement.arrears_minor, currency)}
        )
    return Result(" ".join(parts))


HANDLERS = {
    "open_account": _open_account,
    "set_tariff": _set_tariff,
    "recharge": _recharge,
    "refund": _refund,
    "alarm_levels": _alarm_levels,
    "switch": _switch,
    "settle_close": _settle_close,
}


def _int(value: Any) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        raise Http404("not a number") from None


def _date(value: Any, *, field: str) -> date | None:
    text = str(value or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationError(
            _("%(field)s: %(text)s is not a date (YYYY-MM-DD).") % {"field": field, "text": text}
        ) from None


def _moment(value: Any) -> datetime | None:
    text = str(value or "").strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        day = _date(text, field=_("effective from"))
        moment = datetime.combine(day or timezone.localdate(), time())
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


@staff_view()
def room_operations(request: HttpRequest, room_id: int) -> HttpResponse:
    """GET: the operations panel. POST ``op``: do it (permission first, then the input)."""
    user: Any = request.user
    room = _room(user, room_id)
    if request.method != "POST":
        state = monitoring.room_state(room)
        return render(request, "web/rooms/_operations.html", _operations_context(user, room, state))
    op = request.POST.get("op", "")
    permission = OPERATIONS.get(op)
    if permission is None:
        result = Result(_("Unknown operation."), ok=False)
    elif not user.can(permission):
        raise PermissionDenied
    else:
        state = monitoring.room_state(room)
        try:
            result = HANDLERS[op](user, room, state, request.POST)
        except IdempotencyConflict:
            result = Result(_("This form was already submitted with other values."), ok=False)
        except ValidationError as exc:
            result = Result("; ".join(exc.messages), ok=False)
    if not is_htmx(request):
        (messages.success if result.ok else messages.error)(request, result.message)
        return redirect("console:room_detail", room.pk)
    response = render(
        request,
        "web/rooms/_result.html",
        {"room": room, "result": result, "command": result.command},
    )
    if result.ok:
        # the live part follows every change; the buttons change with the account's status
        reshaped = op in ("open_account", "settle_close")
        response["HX-Trigger"] = "room-changed, room-ops-changed" if reshaped else "room-changed"
    return response


@staff_view()
def room_command(request: HttpRequest, room_id: int, command_id: uuid.UUID) -> HttpResponse:
    """One command's status, polled by the result of the operation that asked for it until it
    is final; then the room's live part is refreshed."""
    user: Any = request.user
    room = _room(user, room_id)
    command = (
        MeterCommand.objects.filter(command_id=command_id, meter__room=room)
        .select_related("meter")
        .first()
    )
    if command is None:
        raise Http404("no such command for this room")
    recent = timezone.now() - command.created_at < timedelta(minutes=2)
    response = render(
        request,
        "web/rooms/_command.html",
        {"room": room, "command": command, "poll_after": "1s" if recent else "10s"},
    )
    if command.is_final:
        response["HX-Trigger"] = "room-changed"
    return response
