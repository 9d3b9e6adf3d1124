"""The rounding of a published figure: the unit of its last stated digit, and the true values it can stand for.

A figure published at unit u (one unit of its last digit) is the true value rounded to nearest (within u/2 of it)
or cut (rounded down: up to u below it), so the truth lies in [figure − u/2, figure + u]. The config's checks
(the timeline's final figures against the count) and the exit-poll comparison (a census figure against its count)
read figures this one way.
"""
from __future__ import annotations

from decimal import Decimal


#: significant digits a published figure is read to: a computed float's last digits are its arithmetic's noise
#: (0.1 + 0.2 = 0.30000000000000004), not a publication's, and would read as a unit of 1e-17
SIGNIFICANT_DIGITS = 12


def last_digit_unit(value: float) -> float:
    """The unit of the last decimal digit ``value`` shows (in ``value``'s units): 10^-d for d decimals of its first
    :data:`SIGNIFICANT_DIGITS` significant digits (0.1 + 0.2 reads 0.3 → 0.1), 1 for a whole number (a float
    keeps no trailing zero: 0.820 shows two decimals)."""
    return 10.0 ** min(Decimal(f"{float(value):.{SIGNIFICANT_DIGITS}g}").as_tuple().exponent, 0)


def rounding_interval(figure: float, unit: float) -> tuple[float, float]:
    """``(low, high)``: the true values ``figure``, published at ``unit`` (the unit of its last digit, 0: exact),
    can stand for, rounded to nearest or down: [figure − unit/2, figure + unit]."""
    return figure - unit / 2, figure + unit


def rounds_to(true: float, figure: float, unit: float, slack: float = 0.0) -> bool:
    """Whether a ``true`` value is consistent with ``figure`` published at ``unit`` (rounded to nearest or down,
    :func:`rounding_interval`), i.e. −unit ≤ figure − true ≤ unit/2, each bound widened by ``slack`` (the floats'
    or the true value's own rounding; same units)."""
    low, high = rounding_interval(figure, unit)
    return low - slack <= true <= high + slack
