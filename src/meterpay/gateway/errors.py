"""Errors of the gateway layer; each carries a one-line message fit for a technician."""

from __future__ import annotations


class GatewayError(Exception):
    """Base class: the meter could not be read or commanded."""


class MeterUnreachable(GatewayError):
    """The TCP connection could not be made or was lost."""


class MeterTimeout(GatewayError):
    """No complete reply before the deadline (wrong address, meter off, lost frame)."""


class MeterProtocolError(GatewayError):
    """The reply was damaged or did not make sense (checksum, unexpected frame)."""


class CommandRejected(GatewayError):
    """The meter answered with an error reply."""
