"""Exact money arithmetic shared by every part of meterpay.

Rules (also in docs/money.md):
- In code, money is a ``Decimal``; never a float.
- In storage, money is an integer count of the currency's minor unit (fen for CNY).
- Unit prices carry up to 6 decimal places (``PRICE_QUANTUM``).
- Every amount that becomes a line, a posting or a balance is rounded once, half-up
  (``ROUND_HALF_UP``), to the minor unit with :func:`round_money`.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

MINOR_UNITS_PER_MAJOR: dict[str, int] = {"CNY": 100, "USD": 100, "EUR": 100, "HKD": 100, "JPY": 1}
PRICE_QUANTUM = Decimal("0.000001")


class MoneyError(ValueError):
    """An amount that cannot be money: a float, a non-number, too many decimals."""


def _exponent(currency: str) -> Decimal:
    try:
        per_major = MINOR_UNITS_PER_MAJOR[currency]
    except KeyError:
        raise MoneyError(f"unknown currency {currency!r}") from None
    return Decimal(1) / Decimal(per_major)


def round_money(amount: Decimal, currency: str = "CNY") -> Decimal:
    """Round ``amount`` half-up to the currency's minor unit."""
    if not isinstance(amount, Decimal):
        raise MoneyError(f"money must be a Decimal, got {type(amount).__name__}")
    return amount.quantize(_exponent(currency), rounding=ROUND_HALF_UP)


def round_price(price: Decimal) -> Decimal:
    """Round a unit price half-up to 6 decimal places."""
    if not isinstance(price, Decimal):
        raise MoneyError(f"prices must be Decimal, got {type(price).__name__}")
    return price.quantize(PRICE_QUANTUM, rounding=ROUND_HALF_UP)


def parse_amount(text: str, currency: str = "CNY") -> Decimal:
    """Parse a decimal string such as ``"50.00"``; reject more precision than the minor unit."""
    if isinstance(text, float):
        raise MoneyError("money must not be given as a float")
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise MoneyError(f"{text!r} is not an amount") from None
    if not value.is_finite():
        raise MoneyError(f"{text!r} is not an amount")
    if value != value.quantize(_exponent(currency)):
        raise MoneyError(f"{text!r} has more decimals than {currency} allows")
    return value.quantize(_exponent(currency))


def to_minor(amount: Decimal, currency: str = "CNY") -> int:
    """Decimal amount (already rounded) to an integer count of minor units."""
    rounded = round_money(amount, currency)
    if rounded != amount:
        raise MoneyError(f"{amount} is not rounded to the minor unit of {currency}")
    return int(rounded * MINOR_UNITS_PER_MAJOR[currency])


def from_minor(minor: int, currency: str = "CNY") -> Decimal:
    """Integer minor units to a Decimal amount with the currency's decimals."""
    if not isinstance(minor, int) or isinstance(minor, bool):
        raise MoneyError(f"minor units must be an int, got {type(minor).__name__}")
    return (Decimal(minor) / Decimal(MINOR_UNITS_PER_MAJOR[currency])).quantize(_exponent(currency))


def format_amount(amount: Decimal, currency: str = "CNY") -> str:
    """Decimal string with exactly the currency's decimals, e.g. ``"12.30"``."""
    return str(round_money(amount, currency))
