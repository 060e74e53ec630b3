"""Binary-coded decimal helpers shared by DL/T 645 and CJ/T 188.

Both protocols send multi-byte BCD numbers least significant byte first, two decimal
digits per byte. DL/T 645 marks a negative value by setting the top bit of the most
significant byte (the last byte on the wire).
"""

from __future__ import annotations

from decimal import Decimal

from meterpay.protocols.errors import EncodeError, FrameError


def bcd_byte(value: int) -> int:
    """Encode 0..99 as one BCD byte."""
    if not 0 <= value <= 99:
        raise EncodeError(f"{value} does not fit in one BCD byte")
    return (value // 10) << 4 | value % 10


def bcd_byte_value(byte: int) -> int:
    """Decode one BCD byte; raise :class:`FrameError` for a nibble above 9."""
    high, low = byte >> 4, byte & 0x0F
    if high > 9 or low > 9:
        raise FrameError(f"{byte:#04x} is not a BCD byte")
    return high * 10 + low


def encode_bcd_le(value: int, length: int) -> bytes:
    """Encode a non-negative integer as ``length`` BCD bytes, least significant first."""
    if value < 0 or value >= 100**length:
        raise EncodeError(f"{value} does not fit in {length} BCD bytes")
    out = bytearray()
    for _ in range(length):
        out.append(bcd_byte(value % 100))
        value //= 100
    return bytes(out)


def decode_bcd_le(data: bytes) -> int:
    """Decode BCD bytes sent least significant first."""
    value = 0
    for byte in reversed(data):
        value = value * 100 + bcd_byte_value(byte)
    return value


def encode_decimal(value: Decimal, length: int, decimals: int, *, signed: bool = False) -> bytes:
    """Encode a decimal in fixed point BCD (``decimals`` digits after the point).

    Signed values use the top bit of the most significant byte as the sign, leaving
    ``2 * length - 1`` digits for the magnitude.
    """
    if not isinstance(value, Decimal) or not value.is_finite():
        raise EncodeError(f"{value!r} is not a finite Decimal")
    scaled = value.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        raise EncodeError(f"{value} has more than {decimals} decimal places")
    integer = int(scaled)
    negative = integer < 0
    if negative and not signed:
        raise EncodeError(f"{value} is negative but the field is unsigned")
    magnitude = -integer if negative else integer
    if signed and magnitude >= 8 * 10 ** (2 * length - 1):
        raise EncodeError(f"{value} does not fit in a signed {length}-byte BCD field")
    encoded = bytearray(encode_bcd_le(magnitude, length))
    if negative:
        encoded[-1] |= 0x80
    return bytes(encoded)


def decode_decimal(data: bytes, decimals: int, *, signed: bool = False) -> Decimal:
    """Decode fixed point BCD written by :func:`encode_decimal`."""
    negative = False
    if signed and data and data[-1] & 0x80:
        negative = True
        data = data[:-1] + bytes([data[-1] & 0x7F])
    magnitude = Decimal(decode_bcd_le(data)).scaleb(-decimals)
    return -magnitude if negative else magnitude
