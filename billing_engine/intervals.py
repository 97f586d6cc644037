"""Dates in intervals: a row's start .. end holds a date, or shares a day with a period.

The one definition of "active on a date" and "overlaps a period" (coverages, consents,
conditions, stays, fee schedules, parameters' rows): every stage uses these, never a
hand-written pair of comparisons. Re-exported by ``engine.primitives`` for the families.
"""

from __future__ import annotations

from typing import Literal

import polars as pl

ClosedInterval = Literal["both", "left", "right", "none"]
IntoExpr = str | pl.Expr

__all__ = ["ClosedInterval", "IntoExpr", "active_on", "as_expr", "overlaps"]


def as_expr(value: IntoExpr) -> pl.Expr:
    """A column name as its column; an expression as is."""
    return pl.col(value) if isinstance(value, str) else value


def _lower(start: pl.Expr, date: pl.Expr, inclusive: bool, open_: bool) -> pl.Expr:
    """`start` is on (or, not inclusive, strictly) before `date`; null start open if `open_`."""
    check = (start <= date) if inclusive else (start < date)
    return (start.is_null() | check) if open_ else check


def _upper(end: pl.Expr, date: pl.Expr, inclusive: bool, open_: bool) -> pl.Expr:
    """`end` is on (or, not inclusive, strictly) after `date`; null end open if `open_`."""
    check = (end >= date) if inclusive else (end > date)
    return (end.is_null() | check) if open_ else check


def active_on(
    date: IntoExpr,
    start: IntoExpr = "start_date",
    end: IntoExpr = "end_date",
    *,
    closed: ClosedInterval = "both",
    open_start: bool = False,
    open_end: bool = True,
) -> pl.Expr:
    """The row's interval ``start`` .. ``end`` holds ``date`` (a boolean expression).

    ``closed`` says which bounds belong to the interval, as in ``pl.Expr.is_between``
    (``left``: the end day is excluded, e.g. a discharge date). A null ``start`` is
    "since ever" when ``open_start`` (conditions' onset, payer_codes' effective_from),
    else the comparison is null (not active); likewise a null ``end`` with ``open_end``
    (coverages, consents' revocation, conditions' resolution). Strings name columns.

    The expression is ``lower & upper`` with each side spelled as the copies it replaces
    spell it (``start.is_null() | (start <= date)``), so nulls propagate identically
    (Kleene logic): filters and ``fill_null(False)`` see the same rows.
    """
    d, s, e = as_expr(date), as_expr(start), as_expr(end)
    lower = _lower(s, d, closed in ("both", "left"), open_start)
    upper = _upper(e, d, closed in ("both", "right"), open_end)
    return lower & upper


def overlaps(
    period_start: IntoExpr,
    period_end: IntoExpr,
    start: IntoExpr = "start_date",
    end: IntoExpr = "end_date",
    *,
    closed: ClosedInterval = "both",
    open_start: bool = False,
    open_end: bool = True,
    open_period_end: bool = False,
) -> pl.Expr:
    """The row's interval ``start`` .. ``end`` shares at least one day with the period.

    The period ``period_start`` .. ``period_end`` is closed (both days belong to it); a
    null ``period_end`` is open when ``open_period_end`` (another row's open coverage).
    ``closed``, ``open_start`` and ``open_end`` describe the row's interval as in
    ``active_on``. Dates are days: with ``closed="left"`` the row's last day is the day
    before ``end`` (an inpatient stay ends on its discharge date, exclusive).
    """
    ps, pe, s, e = as_expr(period_start), as_expr(period_end), as_expr(start), as_expr(end)
    starts_in_time = s <= pe if closed in ("both", "left") else s < pe
    if open_period_end:
        starts_in_time = pe.is_null() | starts_in_time
    if open_start:
        starts_in_time = s.is_null() | starts_in_time
    return starts_in_time & _upper(e, ps, closed in ("both", "right"), open_end)
