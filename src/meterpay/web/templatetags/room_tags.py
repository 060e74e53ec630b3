"""Words for the room pages: a command's outcome in the reader's language (the stored outcome is
a technical note, kept for the tooltip), and a relay's or valve's state."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.translation import gettext as _

from meterpay.apps.control.models import MeterCommand
from meterpay.apps.monitoring.labels import SWITCH_LABELS
from meterpay.core.money import from_minor

register = template.Library()


@register.simple_tag
def switch_word(utility: str, state: str) -> str:
    """``{% switch_word "water" "off" %}`` → "Valve closed"."""
    return str(SWITCH_LABELS.get((utility, state), state))


@register.filter
def command_outcome(command: MeterCommand) -> str:
    status = command.status
    if status == MeterCommand.Status.PENDING:
        if command.attempts:
            return _("Not done yet: trying again (attempt %(n)d)") % {"n": command.attempts + 1}
        return _("Waiting for the gateway to send it")
    if status == MeterCommand.Status.SENT:
        return _("Sent; waiting for the meter to answer")
    if status == MeterCommand.Status.ACKNOWLEDGED:
        return _("The meter answered; reading its state to confirm")
    if status == MeterCommand.Status.CONFIRMED:
        if command.kind == MeterCommand.Kind.CREDIT_DOWNLOAD:
            amount = command.confirmed_amount_minor or command.amount_minor or 0
            return _("Done: %(amount)s added on the meter") % {"amount": from_minor(amount)}
        if command.kind == MeterCommand.Kind.CREDIT_REFUND:
            amount = command.confirmed_amount_minor or 0
            return _("Done: %(amount)s taken back from the meter") % {"amount": from_minor(amount)}
        utility = "water" if command.kind in ("valve_open", "valve_close") else "electricity"
        return _("Done: the meter reports %(state)s") % {
            "state": SWITCH_LABELS[(utility, command.target)]
        }
    if status == MeterCommand.Status.FAILED:
        return _("Failed: the meter refused or did not act")
    if status == MeterCommand.Status.TIMED_OUT:
        return _("No answer from the meter in time")
    return _("Replaced by a later command")


@register.filter
def command_badge(command: MeterCommand) -> str:
    """The badge class of a command's status."""
    if command.status == MeterCommand.Status.CONFIRMED:
        return "open"
    if command.status in (MeterCommand.Status.FAILED, MeterCommand.Status.TIMED_OUT):
        return "suspended"
    if command.status == MeterCommand.Status.SUPERSEDED:
        return "closed"
    return "pre-set"


@register.filter
def label_of(mapping: Any, key: Any) -> Any:
    """``{{ fee_labels|label_of:tile.fee }}``: a label by a key that may be an enum member."""
    try:
        return mapping.get(key, key)
    except AttributeError:
        return key
