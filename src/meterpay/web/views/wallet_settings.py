"""Wallet settings in the console: payment providers, the balance policy (and an account's own
rules), notification channels and their log. Thin: forms parse, ``wallet_settings`` services
validate and write (audited). Secrets are write-only: never rendered back, not even after an
error."""

from __future__ import annotations

import re
from datetime import date
from itertools import pairwise
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from meterpay.apps.customers.models import Account
from meterpay.apps.ledger.models import Wallet
from meterpay.apps.ledger.services import wallet_for
from meterpay.apps.notifications import services as notification_services
from meterpay.apps.notifications.models import (
    NOTIFICATION_EVENTS,
    Notification,
    NotificationChannel,
)
from meterpay.apps.notifications.services import (
    notification_channel_enable,
    notification_channel_save,
    target_display,
)
from meterpay.apps.organisations.access import access_object, org_objects
from meterpay.apps.payments.models import PaymentNotificationLog, PaymentProviderConfig
from meterpay.apps.payments.providers import (
    NOTIFY_PATHS,
    PROVIDER_FIELDS,
    SECRET_FIELDS,
    fingerprint,
    notify_path,
    payment_provider_enable,
    payment_provider_save,
    secret_hint,
)
from meterpay.apps.supply.selectors import policy_row
from meterpay.apps.supply.services import POLICY_FIELDS, balance_policy_save, wallet_overrides_set
from meterpay.core.money import MoneyError, from_minor, parse_amount, to_minor
from meterpay.core.roles import Permission
from meterpay.web.views.base import deny, page, querystring_without_page, staff_view

Kind = PaymentProviderConfig.Kind


def _amount_minor(text: str) -> int:
    try:
        return to_minor(parse_amount(text))
    except MoneyError:
        raise ValidationError(_("An amount in yuan with at most 2 decimals, e.g. 50.00.")) from None


class AmountField(forms.CharField):
    """A money amount typed as a decimal string; cleaned to integer minor units (never a float)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.widget.attrs.update(
            {"inputmode": "decimal", "placeholder": "0.00", "size": 10, "maxlength": 16}
        )

    def to_python(self, value: Any) -> int | None:  # type: ignore[override]
        text = str(super().to_python(value) or "").strip()
        return _amount_minor(text) if text else None


def _amount_text(minor: int | None) -> str:
    return "" if minor is None else str(from_minor(int(minor)))


class DateLinesField(forms.CharField):
    """Dates (YYYY-MM-DD), one per line or separated by commas or spaces."""

    widget = forms.Textarea(attrs={"rows": 4, "placeholder": "2027-01-01"})

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        days = []
        for token in re.split(r"[\s,;\uff0c]+", str(value or "")):
            if not token:
                continue
            try:
                days.append(date.fromisoformat(token))
            except ValueError:
                raise ValidationError(
                    _("%(value)s is not a date like 2027-01-01.") % {"value": token}
                ) from None
        return [d.isoformat() for d in sorted(set(days))]


def _time_input() -> forms.TimeInput:
    return forms.TimeInput(attrs={"type": "time"}, format="%H:%M")


# --- payment providers ------------------------------------------------------------------------

PROVIDER_HELP = {
    Kind.WECHAT: gettext_lazy(
        "WeChat Pay API v3: meterpay verifies each payment notification with the WeChat Pay "
        "public key (or platform certificate) and decrypts it with the APIv3 key."
    ),
    Kind.ALIPAY: gettext_lazy(
        "Alipay (RSA2): meterpay verifies each asynchronous notification with Alipay's public "
        "key, and checks the app id and, when given, the seller id."
    ),
    Kind.FORWARDING: gettext_lazy(
        "A forwarding provider (an aggregator or your own payment service) signs its callbacks "
        "with HMAC-SHA256 using the shared secret."
    ),
}


class ProviderForm(forms.Form):
    name = forms.CharField(
        label=gettext_lazy("name"),
        max_length=59,
        help_text=gettext_lazy("Lower-case letters, digits and dashes; part of the callback URL."),
    )
    merchant_id = forms.CharField(label=gettext_lazy("merchant id"), max_length=64, required=False)
    app_id = forms.CharField(label=gettext_lazy("app id"), max_length=64, required=False)
    key_serial = forms.CharField(
        label=gettext_lazy("WeChat Pay public key id or certificate serial"),
        max_length=80,
        required=False,
        help_text=gettext_lazy(
            "PUB_KEY_ID_… for a WeChat Pay public key; read from the certificate when you paste "
            "a platform certificate."
        ),
    )
    public_key_pem = forms.CharField(
        label=gettext_lazy("provider public key or certificate (PEM)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
    )
    secret = forms.CharField(
        label=gettext_lazy("secret"),
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    simulator_private_key_pem = forms.CharField(
        label=gettext_lazy("demo payment page key (private, PEM)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "autocomplete": "off"}),
        help_text=gettext_lazy(
            "Only for a demo or test: lets the portal's demo payment page sign notifications as "
            "the provider would. Leave empty in production."
        ),
    )
    clear_simulator_private_key = forms.BooleanField(
        label=gettext_lazy("remove the demo payment page key"), required=False
    )
    enabled = forms.BooleanField(label=gettext_lazy("enabled"), required=False, initial=True)

    def __init__(self, *args: Any, kind: str, config: PaymentProviderConfig | None, **kwargs: Any):
        initial = kwargs.pop("initial", {})
        if config is not None:
            initial.update(
                {
                    "name": config.name,
                    "merchant_id": config.merchant_id,
                    "app_id": config.app_id,
                    "key_serial": config.key_serial,
                    "public_key_pem": config.public_key_pem,
                    "enabled": config.enabled,
                }
            )
        super().__init__(*args, initial=initial, **kwargs)
        self.kind = kind
        self.config = config
        used = PROVIDER_FIELDS[kind]
        for field in list(self.fields):
            if field in {"enabled"}:
                continue
            base = "simulator_private_key_pem" if field == "clear_simulator_private_key" else field
            if base not in used or (field == "clear_simulator_private_key" and config is None):
                del self.fields[field]
        if kind == Kind.WECHAT:
            self.fields["merchant_id"].label = gettext_lazy("merchant id (mchid)")
            self.fields["app_id"].label = gettext_lazy("app id (appid)")
            self.fields["secret"].label = gettext_lazy("APIv3 key")
            self.fields["secret"].help_text = gettext_lazy(
                "The 32-character key set in the merchant platform (API security)."
            )
        elif kind == Kind.ALIPAY:
            self.fields["merchant_id"].label = gettext_lazy("seller id (PID, optional)")
            self.fields["app_id"].label = gettext_lazy("Alipay app id")
            self.fields["public_key_pem"].label = gettext_lazy("Alipay public key (PEM or base64)")
        elif kind == Kind.FORWARDING:
            self.fields["secret"].label = gettext_lazy("HMAC secrets")
            self.fields["secret"].widget = forms.Textarea(
                attrs={"rows": 2, "spellcheck": "false", "autocomplete": "off"}
            )
            self.fields["secret"].help_text = gettext_lazy(
                "At least 32 characters. While rotating, one per line: a callback signed with any "
                "of them is accepted."
            )
        for field in SECRET_FIELDS:
            if field in self.fields and config is not None:
                hint = secret_hint(getattr(config, field))
                self.fields[field].help_text = _("Now: %(hint)s. Leave empty to keep it.") % {
                    "hint": hint
                } + (f" {self.fields[field].help_text}" if self.fields[field].help_text else "")

    def forget_secrets(self) -> None:
        """After an error the form is shown again: without what was typed into secret fields."""
        if self.is_bound:
            data = self.data.copy()
            for field in SECRET_FIELDS:
                data.pop(self.add_prefix(field), None)
            self.data = data


def _apply_errors(form: forms.Form, exc: ValidationError, aliases: dict[str, str] | None = None):
    """Put a service's field errors on the form's fields (others on the form itself)."""
    aliases = aliases or {}
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for key, errors in exc.error_dict.items():
        field = aliases.get(key, key)
        form.add_error(field if field in form.fields else None, errors)


@staff_view(Permission.VIEW_FINANCE)
def payment_provider_list(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    configs = org_objects(user, PaymentProviderConfig).order_by("kind", "name")
    rows = [
        {
            "config": c,
            "notify_url": request.build_absolute_uri(notify_path(c)),
            "secret": secret_hint(c.secret),
            "simulator": bool(c.simulator_private_key_pem),
            "public_key": fingerprint(c.public_key_pem),
        }
        for c in configs
    ]
    received = org_objects(user, PaymentNotificationLog)[:20]  # newest first (Meta)
    present = {c.kind for c in configs}
    addable = [(k, label) for k, label in Kind.choices if k == Kind.FORWARDING or k not in present]
    return render(
        request,
        "web/wallet_settings/providers.html",
        {
            "section": "wallet_settings",
            "tab": "providers",
            "rows": rows,
            "addable": addable,
            "received": received,
        },
    )


def _provider_form_page(
    request: HttpRequest, kind: str, config: PaymentProviderConfig | None
) -> HttpResponse:
    user: Any = request.user
    form = ProviderForm(
        request.POST if request.method == "POST" else None, kind=kind, config=config
    )
    if request.method == "POST" and form.is_valid():
        try:
            saved = payment_provider_save(
                actor=user,
                organisation_id=user.organisation_id,
                kind=kind,
                config=config,
                values=form.cleaned_data,
            )
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, _("Payment provider %(name)s saved.") % {"name": saved})
            return redirect("console:payment_provider_list")
    form.forget_secrets()
    notify_url = ""
    if config is not None:
        notify_url = request.build_absolute_uri(notify_path(config))
    elif kind != Kind.FORWARDING:
        notify_url = request.build_absolute_uri(NOTIFY_PATHS[Kind(kind)])
    return render(
        request,
        "web/wallet_settings/provider_form.html",
        {
            "section": "wallet_settings",
            "tab": "providers",
            "form": form,
            "kind_label": Kind(kind).label,
            "help": PROVIDER_HELP[Kind(kind)],
            "config": config,
            "notify_url": notify_url,
        },
    )


@staff_view(Permission.MANAGE_PAYMENT_PROVIDERS)
def payment_provider_create(request: HttpRequest) -> HttpResponse:
    kind = request.GET.get("kind") or request.POST.get("kind", "")
    if kind not in Kind.values:
        return render(
            request,
            "web/wallet_settings/provider_kind.html",
            {"section": "wallet_settings", "tab": "providers", "kinds": Kind.choices},
        )
    return _provider_form_page(request, kind, None)


@staff_view(Permission.MANAGE_PAYMENT_PROVIDERS)
def payment_provider_edit(request: HttpRequest, provider_id: int) -> HttpResponse:
    user: Any = request.user
    config = access_object(user, PaymentProviderConfig, provider_id)
    action = request.POST.get("action", "")
    if request.method == "POST" and action in {"enable", "disable"}:
        payment_provider_enable(actor=user, config=config, enabled=action == "enable")
        messages.success(request, _("Saved."))
        return redirect("console:payment_provider_list")
    return _provider_form_page(request, config.kind, config)


# --- balance policy ---------------------------------------------------------------------------

LEVEL_HELP = gettext_lazy("Alarm when the balance falls to this amount or below.")


class PolicyForm(forms.Form):
    alarm_level_1 = AmountField(label=gettext_lazy("alarm level 1 (first warning)"))
    alarm_level_2 = AmountField(label=gettext_lazy("alarm level 2"), required=False)
    alarm_level_3 = AmountField(
        label=gettext_lazy("alarm level 3 (last warning)"), required=False, help_text=LEVEL_HELP
    )
    repeat_count = forms.IntegerField(
        label=gettext_lazy("send each alarm up to (times)"), min_value=1, max_value=20
    )
    repeat_interval_minutes = forms.IntegerField(
        label=gettext_lazy("repeat no sooner than (minutes)"),
        min_value=1,
        max_value=60 * 24 * 30,
        help_text=gettext_lazy("1440 is once a day."),
    )
    quiet_start = forms.TimeField(
        label=gettext_lazy("quiet hours from"), required=False, widget=_time_input()
    )
    quiet_end = forms.TimeField(
        label=gettext_lazy("quiet hours until"),
        required=False,
        widget=_time_input(),
        help_text=gettext_lazy(
            "Alarms due in quiet hours wait until they end. Empty: no quiet hours."
        ),
    )
    overdraft = AmountField(
        label=gettext_lazy("overdraft (emergency credit)"),
        help_text=gettext_lazy(
            "Supply is cut when the balance reaches minus this amount; 0.00 cuts at zero."
        ),
    )
    restore_threshold = AmountField(
        label=gettext_lazy("restore supply above"),
        help_text=gettext_lazy(
            "Supply cut for balance comes back when a recharge lifts the balance above this; "
            "at least minus the overdraft."
        ),
    )
    night_start = forms.TimeField(
        label=gettext_lazy("no cut-off from"), required=False, widget=_time_input()
    )
    night_end = forms.TimeField(
        label=gettext_lazy("no cut-off until"),
        required=False,
        widget=_time_input(),
        help_text=gettext_lazy(
            "A cut-off due at night waits until the morning. Empty: nights are not protected."
        ),
    )
    protect_weekends = forms.BooleanField(
        label=gettext_lazy("no cut-off at weekends"), required=False
    )
    protect_holidays = forms.BooleanField(
        label=gettext_lazy("no cut-off on holidays"), required=False
    )
    holidays = DateLinesField(
        label=gettext_lazy("holidays"),
        required=False,
        help_text=gettext_lazy("Dates without cut-off, e.g. 2027-10-01, one per line."),
    )
    working_days = DateLinesField(
        label=gettext_lazy("weekend working days"),
        required=False,
        help_text=gettext_lazy(
            "Saturdays or Sundays worked in lieu of a holiday: cut-off is not deferred on them."
        ),
    )
    reminder_days = forms.DecimalField(
        label=gettext_lazy("remind when days of credit left fall below"),
        required=False,
        max_digits=4,
        decimal_places=1,
        help_text=gettext_lazy(
            "Estimated from the last 7 days' use; at most one reminder a day. Empty: no reminder."
        ),
    )
    postpaid_due_days = forms.IntegerField(
        label=gettext_lazy("postpaid bills are due after (days)"),
        min_value=0,
        max_value=365,
        help_text=gettext_lazy("Counted from the end of the billing period."),
    )
    postpaid_grace_days = forms.IntegerField(
        label=gettext_lazy("grace after the due date (days)"),
        min_value=0,
        max_value=365,
        help_text=gettext_lazy("A postpaid account's supply is cut when a bill is this late."),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        levels = [data.get(f"alarm_level_{n}") for n in (1, 2, 3)]
        if levels[2] is not None and levels[1] is None:
            self.add_error("alarm_level_2", _("Set level 2 before level 3."))
        for n in (2, 3):
            here, above = levels[n - 1], levels[n - 2]
            if here is not None and above is not None and here >= above:
                self.add_error(
                    f"alarm_level_{n}",
                    _("Lower than level %(level)s: each level is a later warning.")
                    % {"level": n - 1},
                )
        for start, end in (("quiet_start", "quiet_end"), ("night_start", "night_end")):
            if start in data and end in data and (data[start] is None) != (data[end] is None):
                self.add_error(
                    end if data[end] is None else start, _("Give both times, or neither.")
                )
        return data

    def values(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "alarm_thresholds_minor": [
                data[f"alarm_level_{n}"]
                for n in (1, 2, 3)
                if data.get(f"alarm_level_{n}") is not None
            ],
            "overdraft_minor": data["overdraft"],
            "restore_threshold_minor": data["restore_threshold"],
            **{key: data[key] for key in POLICY_FIELDS if key in self.fields and key in data},
        }


POLICY_ALIASES = {
    "alarm_thresholds_minor": "alarm_level_1",
    "overdraft_minor": "overdraft",
    "restore_threshold_minor": "restore_threshold",
}


def _policy_initial(organisation_id: int) -> dict[str, Any]:
    row = policy_row(organisation_id)
    levels = [*(row.alarm_thresholds_minor or []), None, None, None]
    return {
        **{f"alarm_level_{n}": _amount_text(levels[n - 1]) for n in (1, 2, 3)},
        "overdraft": _amount_text(row.overdraft_minor),
        "restore_threshold": _amount_text(row.restore_threshold_minor),
        "repeat_count": row.repeat_count,
        "repeat_interval_minutes": row.repeat_interval_minutes,
        "quiet_start": row.quiet_start,
        "quiet_end": row.quiet_end,
        "night_start": row.night_start,
        "night_end": row.night_end,
        "protect_weekends": row.protect_weekends,
        "protect_holidays": row.protect_holidays,
        "holidays": "\n".join(str(d) for d in row.holidays or []),
        "working_days": "\n".join(str(d) for d in row.working_days or []),
        "reminder_days": row.reminder_days,
        "postpaid_due_days": row.postpaid_due_days,
        "postpaid_grace_days": row.postpaid_grace_days,
    }


@staff_view()
def balance_policy(request: HttpRequest) -> HttpResponse:
    """Anyone reads the policy; manage_balance_policy changes it."""
    user: Any = request.user
    can_change = user.can(Permission.MANAGE_BALANCE_POLICY)
    if request.method == "POST" and not can_change:
        deny()
    form = PolicyForm(
        request.POST if request.method == "POST" else None,
        initial=_policy_initial(user.organisation_id),
    )
    if request.method == "POST" and form.is_valid():
        try:
            balance_policy_save(
                actor=user, organisation_id=user.organisation_id, values=form.values()
            )
        except ValidationError as exc:
            _apply_errors(form, exc, POLICY_ALIASES)
        else:
            messages.success(request, _("Balance policy saved."))
            return redirect("console:balance_policy")
    if not can_change:
        for field in form.fields.values():
            field.disabled = True
    return render(
        request,
        "web/wallet_settings/policy.html",
        {
            "section": "wallet_settings",
            "tab": "policy",
            "form": form,
            "can_change": can_change,
            "saved": policy_row(user.organisation_id).pk is not None,
        },
    )


class AccountRulesForm(forms.Form):
    keep_supply = forms.BooleanField(
        label=gettext_lazy("keep supply (never cut for balance)"),
        required=False,
        help_text=gettext_lazy(
            "For hospitals, server rooms, medical equipment: alarms are still sent, the cut-off "
            "is deferred indefinitely."
        ),
    )
    alarm_level_1 = AmountField(label=gettext_lazy("alarm level 1"), required=False)
    alarm_level_2 = AmountField(label=gettext_lazy("alarm level 2"), required=False)
    alarm_level_3 = AmountField(
        label=gettext_lazy("alarm level 3"),
        required=False,
        help_text=gettext_lazy("All three empty: the organisation's levels."),
    )
    overdraft = AmountField(
        label=gettext_lazy("overdraft (emergency credit)"),
        required=False,
        help_text=gettext_lazy("Empty: the organisation's."),
    )
    restore_threshold = AmountField(
        label=gettext_lazy("restore supply above"),
        required=False,
        help_text=gettext_lazy("Empty: the organisation's."),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        levels = [data.get(f"alarm_level_{n}") for n in (1, 2, 3)]
        given = [level for level in levels if level is not None]
        if given and levels[: len(given)] != given:
            self.add_error("alarm_level_1", _("Fill the levels from level 1 down, without gaps."))
        elif any(a <= b for a, b in pairwise(given)):
            self.add_error("alarm_level_2", _("Each alarm level is lower than the one before it."))
        if data.get("overdraft") is not None and data["overdraft"] < 0:
            self.add_error("overdraft", _("The overdraft is an allowance: zero or more."))
        return data


@staff_view()
def account_balance_rules(request: HttpRequest, account_id: int) -> HttpResponse:
    """An account's own alarm levels, overdraft, restore threshold and keep-supply flag."""
    user: Any = request.user
    account = access_object(user, Account.objects.select_related("customer"), account_id)
    can_change = user.can(Permission.MANAGE_BALANCE_POLICY)
    if request.method == "POST" and not can_change:
        deny()
    wallet = Wallet.objects.filter(account=account).first()
    levels = [*((wallet.alarm_thresholds_minor if wallet else None) or []), None, None, None]
    initial = {
        "keep_supply": bool(wallet and wallet.keep_supply),
        **{f"alarm_level_{n}": _amount_text(levels[n - 1]) for n in (1, 2, 3)},
        "overdraft": _amount_text(wallet.overdraft_minor if wallet else None),
        "restore_threshold": _amount_text(wallet.restore_threshold_minor if wallet else None),
    }
    form = AccountRulesForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            wallet_overrides_set(
                actor=user,
                wallet=wallet or wallet_for(account),
                keep_supply=data["keep_supply"],
                alarm_thresholds_minor=[
                    data[f"alarm_level_{n}"]
                    for n in (1, 2, 3)
                    if data.get(f"alarm_level_{n}") is not None
                ]
                or None,
                overdraft_minor=data["overdraft"],
                restore_threshold_minor=data["restore_threshold"],
            )
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, _("The account's balance rules are saved."))
            return redirect("console:account_detail", account.pk)
    if not can_change:
        for field in form.fields.values():
            field.disabled = True
    row = policy_row(user.organisation_id)
    # An empty field follows the organisation: show its value where the account's would be.
    org_levels = [*(row.alarm_thresholds_minor or []), None, None, None]
    for name, minor in [
        *((f"alarm_level_{n}", org_levels[n - 1]) for n in (1, 2, 3)),
        ("overdraft", row.overdraft_minor),
        ("restore_threshold", row.restore_threshold_minor),
    ]:
        form.fields[name].widget.attrs["placeholder"] = _amount_text(minor) or "—"
    return render(
        request,
        "web/wallet_settings/account_rules.html",
        {
            "section": "accounts",
            "account": account,
            "form": form,
            "can_change": can_change,
            "organisation_levels": [_amount_text(m) for m in row.alarm_thresholds_minor or []],
            "organisation_overdraft": _amount_text(row.overdraft_minor),
            "organisation_restore": _amount_text(row.restore_threshold_minor),
        },
    )


# --- notification channels --------------------------------------------------------------------


class ChannelForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("kind"), choices=NotificationChannel.Kind.choices)
    name = forms.CharField(label=gettext_lazy("name"), max_length=80)
    target = forms.CharField(
        label=gettext_lazy("target"),
        max_length=500,
        required=False,
        help_text=gettext_lazy(
            "Apprise URL (e.g. dingtalk://token/, wecombot://key, a SMS gateway's URL), an "
            "e-mail address, or the webhook URL. {phone} and {email} are replaced by the "
            "customer's."
        ),
    )
    secret = forms.CharField(
        label=gettext_lazy("webhook secret (HMAC)"),
        max_length=200,
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=gettext_lazy("Webhooks only: requests are signed like forwarding callbacks."),
    )
    clear_secret = forms.BooleanField(
        label=gettext_lazy("remove the webhook secret"), required=False
    )
    events = forms.MultipleChoiceField(
        label=gettext_lazy("events"),
        choices=NOTIFICATION_EVENTS,
        widget=forms.CheckboxSelectMultiple,
        initial=[e for e, _label in NOTIFICATION_EVENTS],
    )
    enabled = forms.BooleanField(label=gettext_lazy("enabled"), required=False, initial=True)

    def __init__(self, *args: Any, channel: NotificationChannel | None, **kwargs: Any) -> None:
        initial = kwargs.pop("initial", {})
        if channel is not None:
            initial.update(
                {
                    "kind": channel.kind,
                    "name": channel.name,
                    "target": ""
                    if channel.kind == NotificationChannel.Kind.APPRISE
                    else channel.target,
                    "events": channel.events,
                    "enabled": channel.enabled,
                }
            )
        super().__init__(*args, initial=initial, **kwargs)
        if channel is not None:
            del self.fields["kind"]
            if channel.kind == NotificationChannel.Kind.APPRISE:
                self.fields["target"].help_text = _(
                    "Now: %(target)s. The URL holds the service's token, so it is not shown; "
                    "leave empty to keep it."
                ) % {"target": target_display(channel)}
            if channel.kind == NotificationChannel.Kind.WEBHOOK:
                self.fields["secret"].help_text = _("Now: %(hint)s. Leave empty to keep it.") % {
                    "hint": secret_hint(channel.secret)
                }
            else:
                del self.fields["secret"]
                del self.fields["clear_secret"]
        else:
            del self.fields["clear_secret"]

    def forget_secrets(self) -> None:
        if self.is_bound:
            data = self.data.copy()
            data.pop(self.add_prefix("secret"), None)
            self.data = data


@staff_view()
def notification_channel_list(request: HttpRequest) -> HttpResponse:
    """The channels and the notification log (every message and its delivery result)."""
    user: Any = request.user
    channels = org_objects(user, NotificationChannel).order_by("name", "pk")
    event_labels = dict(NOTIFICATION_EVENTS)
    rows = [
        {
            "channel": c,
            "target": target_display(c),
            "events": [event_labels.get(e, e) for e in c.events or []],
            "all_events": set(c.events or []) >= set(event_labels),
        }
        for c in channels
    ]
    log = (
        org_objects(user, Notification)
        .select_related("account__customer", "channel")
        .order_by("-created_at", "-id")
    )
    status = request.GET.get("status", "")
    kind = request.GET.get("kind", "")
    channel_id = request.GET.get("channel", "")
    q = request.GET.get("q", "").strip()
    if status:
        log = log.filter(status=status)
    if kind:
        log = log.filter(kind=kind)
    if channel_id.isdigit():
        log = log.filter(channel_id=int(channel_id))
    elif channel_id == "none":
        log = log.filter(channel__isnull=True)
    if q:
        log = log.filter(
            Q(account__number__icontains=q)
            | Q(account__customer__name__icontains=q)
            | Q(subject__icontains=q)
        )
    return render(
        request,
        "web/wallet_settings/channels.html",
        {
            "section": "wallet_settings",
            "tab": "channels",
            "rows": rows,
            "log": page(request, log),
            "statuses": Notification.Status.choices,
            "kinds": Notification.Kind.choices,
            "channels": channels,
            "status": status,
            "kind": kind,
            "channel_id": channel_id,
            "q": q,
            "query": querystring_without_page(request),
        },
    )


def _channel_form_page(request: HttpRequest, channel: NotificationChannel | None) -> HttpResponse:
    user: Any = request.user
    form = ChannelForm(request.POST if request.method == "POST" else None, channel=channel)
    if request.method == "POST" and form.is_valid():
        try:
            saved = notification_channel_save(
                actor=user,
                organisation_id=user.organisation_id,
                channel=channel,
                values=form.cleaned_data,
            )
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, _("Channel %(name)s saved.") % {"name": saved.name})
            return redirect("console:notification_channel_list")
    form.forget_secrets()
    return render(
        request,
        "web/wallet_settings/channel_form.html",
        {"section": "wallet_settings", "tab": "channels", "form": form, "channel": channel},
    )


@staff_view(Permission.MANAGE_NOTIFICATIONS)
def notification_channel_create(request: HttpRequest) -> HttpResponse:
    return _channel_form_page(request, None)


@staff_view(Permission.MANAGE_NOTIFICATIONS)
def notification_channel_edit(request: HttpRequest, channel_id: int) -> HttpResponse:
    user: Any = request.user
    channel = access_object(user, NotificationChannel, channel_id)
    action = request.POST.get("action", "")
    if request.method == "POST" and action in {"enable", "disable"}:
        notification_channel_enable(actor=user, channel=channel, enabled=action == "enable")
        messages.success(request, _("Saved."))
        return redirect("console:notification_channel_list")
    return _channel_form_page(request, channel)


class ChannelTestForm(forms.Form):
    phone = forms.CharField(
        label=gettext_lazy("phone number for {phone}"), max_length=32, required=False
    )
    email = forms.EmailField(label=gettext_lazy("e-mail address for {email}"), required=False)


@staff_view(Permission.MANAGE_NOTIFICATIONS)
def notification_channel_test(request: HttpRequest, channel_id: int) -> HttpResponse:
    """Send a test message now; the result is shown and kept in the notification log."""
    user: Any = request.user
    channel = access_object(user, NotificationChannel, channel_id)
    form = ChannelTestForm(request.POST if request.method == "POST" else None)
    result = None
    if request.method == "POST" and form.is_valid():
        try:
            result = notification_services.notification_channel_test(
                actor=user, channel=channel, **form.cleaned_data
            )
        except ValidationError as exc:
            _apply_errors(form, exc)
    recent = (
        org_objects(user, Notification)
        .filter(channel=channel, kind=Notification.Kind.TEST)
        .order_by("-created_at", "-id")[:10]
    )
    return render(
        request,
        "web/wallet_settings/channel_test.html",
        {
            "section": "wallet_settings",
            "tab": "channels",
            "channel": channel,
            "target": target_display(channel),
            "form": form,
            "result": result,
            "recent": recent,
            "needs_phone": "{phone}" in channel.target,
            "needs_email": "{email}" in channel.target
            or (channel.kind == NotificationChannel.Kind.EMAIL and not channel.target),
            "list_url": reverse("console:notification_channel_list"),
        },
    )
