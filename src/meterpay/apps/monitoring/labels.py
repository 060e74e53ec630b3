"""The words the console and the API show for a room's statuses (translated)."""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from meterpay.core.fee_status import FeeStatus

FEE_LABELS: dict[str, Promise] = {
    FeeStatus.NORMAL: _("Normal"),
    FeeStatus.ALARM_1: _("Alarm level 1"),
    FeeStatus.ALARM_2: _("Alarm level 2"),
    FeeStatus.ALARM_3: _("Alarm level 3"),
    FeeStatus.OVERDRAWN: _("Overdrawn"),
    FeeStatus.CUT_OFF: _("Cut off"),
    FeeStatus.ARREARS: _("In arrears"),
    FeeStatus.METER_LOW: _("Meter credit low"),
}
FEE_HELP: dict[str, Promise] = {
    FeeStatus.NORMAL: _("Balance above every alarm level, nothing overdue."),
    FeeStatus.ALARM_1: _("Balance at or below alarm level 1."),
    FeeStatus.ALARM_2: _("Balance at or below alarm level 2."),
    FeeStatus.ALARM_3: _("Balance at or below alarm level 3."),
    FeeStatus.OVERDRAWN: _("Balance below zero, in the overdraft; not cut yet."),
    FeeStatus.CUT_OFF: _("Supply cut: for balance, for an overdue bill or by an operator."),
    FeeStatus.ARREARS: _("A bill is unpaid past its due date."),
    FeeStatus.METER_LOW: _("Meter-side account: the meter holds alarm level 1 or less."),
}
OCCUPANCY_LABELS: dict[str, Promise] = {
    "vacant": _("Vacant"),
    "pre-set": _("Pre-set"),
    "open": _("Open"),
    "suspended": _("Suspended"),
    "closed": _("Closed"),
}
LINK_LABELS: dict[str, Promise] = {
    "online": _("Online"),
    "offline": _("Offline"),
    "unknown": _("Not polled yet"),
    "none": _("No meter"),
}
SUPPLY_LABELS: dict[str, Promise] = {
    "on": _("Supply on"),
    "off": _("Supply off"),
    "pending": _("Command in progress"),
    "unknown": _("Supply not reported"),
}
#: (utility, state) → the word for a relay or a valve.
SWITCH_LABELS: dict[tuple[str, str], Promise] = {
    ("electricity", "on"): _("Relay closed"),
    ("electricity", "off"): _("Relay tripped"),
    ("electricity", "pending"): _("Relay: command in progress"),
    ("electricity", "unknown"): _("Relay not reported"),
    ("water", "on"): _("Valve open"),
    ("water", "off"): _("Valve closed"),
    ("water", "pending"): _("Valve: command in progress"),
    ("water", "unknown"): _("Valve not reported"),
}
