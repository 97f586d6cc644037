"""Money: Decimal throughout, rounded to the cent in one place.

Amounts are computed exactly in ``CALC`` (38 digits, 12 decimal places: an RVU has 2
decimals, a GPCI 3, a conversion factor 4 and a percentage 2, so products stay exact)
and rounded once, half up, to ``MONEY`` by :func:`round_cents`. Polars' own decimal
``round`` and casts to a smaller scale round half to even, which is not how a fee
schedule rounds, so they are never used for money.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import polars as pl

CALC = pl.Decimal(38, 12)
MONEY = pl.Decimal(18, 2)
CENT = Decimal("0.01")
_CENTS_PER_DOLLAR = Decimal(100)
_HALF = Decimal("0.5")


def dec(value: object) -> pl.Expr:
    """A decimal literal in the calculation precision (from str/int/Decimal, never float)."""
    if isinstance(value, float):
        raise TypeError("money and rates are Decimal or str, never float")
    return pl.lit(Decimal(str(value)), dtype=CALC)


def exact(expr: pl.Expr) -> pl.Expr:
    """`expr` in the calculation precision."""
    return expr.cast(CALC)


def round_cents(expr: pl.Expr) -> pl.Expr:
    """Round a non-negative amount half up to the cent (the only rounding of money)."""
    hundredths = (expr.cast(CALC) * pl.lit(_CENTS_PER_DOLLAR, dtype=CALC) + dec(_HALF)).floor()
    return (hundredths * pl.lit(CENT, dtype=CALC)).cast(MONEY)


def cents(value: Decimal) -> Decimal:
    """Python-side twin of :func:`round_cents` for scalar amounts (reports, tests)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def money_text(expr: pl.Expr) -> pl.Expr:
    """A money column as the contract's text: two decimal places, no currency sign."""
    return expr.cast(MONEY).cast(pl.String)
