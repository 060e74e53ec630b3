"""Power-factor adjustment of electricity charges (China, 功率因数调整电费办法).

Rule: 水利电力部、国家物价局《功率因数调整电费办法》(83)水电财字第215号, tables 1-3.
The month's power factor PF = kWh / sqrt(kWh² + kvarh²), rounded half-up to 0.01.
Against the standard S (0.90, 0.85 or 0.80) the energy and basic charges are adjusted by a
percentage (positive = surcharge 增收, negative = reduction 减收):

* Reduction, PF above S, capped:
  - S=0.90: 0.15 % per 0.01 from 0.91 to 0.94; 0.95-1.00: 0.75 %.
  - S=0.85: 0.10 % per 0.01 from 0.86 to 0.90 (0.90: 0.50 %); then 0.15 % per 0.01:
    0.91: 0.65 %, 0.92: 0.80 %, 0.93: 0.95 %; 0.94-1.00: 1.10 %.
  - S=0.80: 0.10 % per 0.01 from 0.81 to 0.90 (0.90: 1.00 %); 0.91: 1.15 %;
    0.92-1.00: 1.30 %.
* Surcharge, PF below S:
  - 0.5 % per 0.01 down to S - 0.20 (which is +10 %),
  - then 1 % per 0.01 for the next 0.05 (S - 0.25 is +15 %): the "0.65/0.60/0.55" knees,
  - then 2 % per 0.01 below that, without limit.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Context, Decimal

from meterpay.core.tariffs.errors import RatingError

_HUNDREDTH = Decimal("0.01")
_SQRT_CONTEXT = Context(prec=40)

# Reduction percentages (as positive numbers) for PF above the standard, in hundredths of PF.
# Keys are PFx100; anything above the last key gets the cap (the last value).
_REDUCTION: dict[int, dict[int, Decimal]] = {
    90: {91: Decimal("0.15"), 92: Decimal("0.30"), 93: Decimal("0.45"), 94: Decimal("0.60"),
         95: Decimal("0.75")},
    85: {86: Decimal("0.1"), 87: Decimal("0.2"), 88: Decimal("0.3"), 89: Decimal("0.4"),
         90: Decimal("0.5"), 91: Decimal("0.65"), 92: Decimal("0.80"), 93: Decimal("0.95"),
         94: Decimal("1.10")},
    80: {81: Decimal("0.1"), 82: Decimal("0.2"), 83: Decimal("0.3"), 84: Decimal("0.4"),
         85: Decimal("0.5"), 86: Decimal("0.6"), 87: Decimal("0.7"), 88: Decimal("0.8"),
         89: Decimal("0.9"), 90: Decimal("1.0"), 91: Decimal("1.15"), 92: Decimal("1.30")},
}  # fmt: skip


def power_factor(*, kwh: Decimal, kvarh: Decimal) -> Decimal | None:
    """Monthly power factor rounded half-up to 0.01, or ``None`` when there is no energy."""
    if kwh < 0 or kvarh < 0:
        raise RatingError("kWh and kvarh for the power factor must not be negative")
    if kwh == 0:
        return None
    apparent = (kwh * kwh + kvarh * kvarh).sqrt(_SQRT_CONTEXT)
    return _SQRT_CONTEXT.divide(kwh, apparent).quantize(_HUNDREDTH, rounding=ROUND_HALF_UP)


def adjustment_percent(*, power_factor: Decimal, standard: Decimal) -> Decimal:
    """Adjustment in percent of the charges (e.g. ``Decimal("-0.75")`` or ``Decimal("17")``)."""
    standard_hundredths = int(standard * 100)
    if standard_hundredths not in _REDUCTION:
        raise RatingError(f"no power-factor table for standard {standard}")
    pf_hundredths = int((power_factor * 100).to_integral_value(rounding=ROUND_HALF_UP))
    if pf_hundredths == standard_hundredths:
        return Decimal("0")
    if pf_hundredths > standard_hundredths:
        table = _REDUCTION[standard_hundredths]
        cap_at = max(table)
        return -table[min(pf_hundredths, cap_at)]
    below = standard_hundredths - pf_hundredths
    if below <= 20:
        return Decimal("0.5") * below
    if below <= 25:
        return Decimal(10) + Decimal(below - 20)
    return Decimal(15) + Decimal(2) * (below - 25)
