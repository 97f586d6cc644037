"""Primitives the code families share: one definition per idea each family used to re-write.

- ``active_on`` / ``overlaps`` (defined in ``billing_engine.intervals``, where every
  stage can use them): a row's [start, end] interval of dates holds a date, or shares a
  day with a period (a null bound is open or "not known", as asked).
- ``coverage_on``: the coverage of a patient active on a date (the primary one, or the
  first of preferred payer kinds), with its payer's kind (and state).
- ``with_payer_pays``: the ``pays:<code>`` columns, one per code.
- criterion factories: coverage, payer pays, billing practitioner known / qualified, not
  already billed; every one takes the rule ids of the program it serves.
- ``prior_usage`` and ``frequency_cap``: services already billed in a window, and the
  n-th qualifying service of a group under one or more caps.

Every function works over whole frames (a ``frequency_cap`` in ``granted`` mode loops
over the rank of a candidate within its group: one whole-frame pass per rank, never per
row). None reads a code or a threshold of its own: callers pass them from parameters.
``docs/primitives.md`` says which family uses which, and what is still left to them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import polars as pl

from billing_engine.engine import facts as nz
from billing_engine.engine.context import EvalContext
from billing_engine.engine.kernel import Criterion
from billing_engine.intervals import ClosedInterval, IntoExpr, active_on, as_expr, overlaps

__all__ = [
    "Cap",
    "ClosedInterval",
    "IntoExpr",
    "Window",
    "active_on",
    "billing_practitioner_known_criterion",
    "billing_practitioner_qualified_criterion",
    "coverage_criterion",
    "coverage_on",
    "frequency_cap",
    "not_already_billed_criterion",
    "overlaps",
    "payer_pays_criterion",
    "prior_usage",
    "with_payer_pays",
]

_ROW = "_prim_row"


# --------------------------------------------------------------------------- coverage


def coverage_on(
    ctx: EvalContext,
    frame: pl.DataFrame,
    date_column: str,
    *,
    prefer_kinds: Sequence[str] | None = None,
    with_state: bool = False,
) -> pl.DataFrame:
    """Adds ``payer_id`` and ``payer_kind`` (and ``payer_state`` when ``with_state``): the
    patient's coverage active on the row's date.

    Without ``prefer_kinds`` it is the primary coverage: the lowest ``rank`` (blank = 1),
    then the latest start date (``facts.primary_coverage``, the one definition of that
    join). With ``prefer_kinds`` a coverage whose payer kind is listed comes first
    whatever its rank (the Medicaid T-code payer of a dual eligible), then rank, then
    the latest start. Rows without an active coverage get nulls. The frame's rows and
    order are kept.
    """
    if prefer_kinds is None:
        result = nz.primary_coverage(ctx, frame, date_column)
        if with_state:
            result = result.join(
                ctx.bundle["payers"].select("payer_id", pl.col("state").alias("payer_state")),
                on="payer_id",
                how="left",
            )
        return result
    cov = ctx.bundle["coverages"].select(
        "patient_id", "payer_id", "start_date", "end_date", pl.col("rank").fill_null(1)
    )
    indexed = frame.with_row_index("_cov_row")
    active = (
        indexed.select("_cov_row", "patient_id", date_column)
        .join(cov, on="patient_id", how="inner")
        .filter(active_on(date_column, "start_date", "end_date"))
    )
    payers = ctx.bundle["payers"].select(
        "payer_id", pl.col("kind").alias("payer_kind"), pl.col("state").alias("payer_state")
    )
    kept = ["_cov_row", "payer_id", "payer_kind", *(["payer_state"] if with_state else [])]
    matched = (
        active.join(payers, on="payer_id", how="left")
        .with_columns(_not_paying=~pl.col("payer_kind").is_in(list(prefer_kinds)).fill_null(False))
        .sort(
            "_cov_row", "_not_paying", "rank", "start_date", descending=[False, False, False, True]
        )
        .unique(subset=["_cov_row"], keep="first")
        .select(kept)
    )
    return indexed.join(matched, on="_cov_row", how="left").sort("_cov_row").drop("_cov_row")


def with_payer_pays(
    ctx: EvalContext,
    facts: pl.DataFrame,
    codes: Sequence[str],
    date_column: str,
    kinds: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Adds ``pays:<code>`` for each of `codes`: whether the row's payer pays the code on
    the row's date (``facts.payer_pays``: a payer_codes row in effect decides, else the
    payer kind is in `kinds`; null without a payer). `kinds` defaults to the parameter
    ``common.payer_kinds_paying_by_default``. `facts` needs ``payer_id``, ``payer_kind``
    and `date_column`; its rows and order are kept."""
    paying = (
        list(kinds)
        if kinds is not None
        else ctx.params.as_strs("common.payer_kinds_paying_by_default")
    )
    for code in codes:
        frame = facts.with_columns(_code=pl.lit(code))
        facts = facts.with_columns(
            nz.payer_pays(ctx, frame, "_code", date_column, paying).alias(f"pays:{code}")
        )
    return facts


# --------------------------------------------------------------------------- criteria


def coverage_criterion(rules: tuple[str, ...], shows: tuple[str, ...] = ("payer_id",)) -> Criterion:
    """Active coverage on the date of service (facts: ``payer_id`` from ``coverage_on``),
    citing the program's own rule ids."""
    return Criterion(
        "coverage",
        "active coverage on the date of service",
        pl.col("payer_id").is_not_null(),
        "coverage_missing",
        rules,
        shows=shows,
    )


def payer_pays_criterion(
    code: str,
    rules: tuple[str, ...],
    shows: tuple[str, ...] = ("payer_id", "payer_kind"),
) -> Criterion:
    """The payer pays `code` (facts: the ``pays:<code>`` column of ``with_payer_pays``),
    citing the program's own rule ids."""
    return Criterion(
        "payer_pays",
        "the payer pays this code",
        pl.col(f"pays:{code}"),
        "payer_not_covered",
        rules,
        shows=shows,
    )


def billing_practitioner_known_criterion(
    rules: tuple[str, ...],
    detail: str,
    description: str = "the time is billed under a known billing practitioner",
) -> Criterion:
    """A billing practitioner was resolved (``billing_practitioner_id`` not null); the gap
    is ``practitioner_not_qualified`` with `detail` saying where to set one."""
    return Criterion(
        "billing_practitioner_known",
        description,
        pl.col("billing_practitioner_id").is_not_null(),
        "practitioner_not_qualified",
        rules,
        detail=pl.lit(detail),
        shows=("billing_practitioner_id",),
    )


def billing_practitioner_qualified_criterion(
    rules: tuple[str, ...],
    credentials: Sequence[str] | pl.Expr,
    description: str,
    *,
    require_npi: bool = False,
    waived: pl.Expr | None = None,
    detail: pl.Expr | None = None,
    shows: tuple[str, ...] = ("bp_credential",),
) -> Criterion:
    """The billing practitioner's credential (``bp_credential``) may bill the code.

    `credentials` is the list of credentials (``bp_credential`` is in it) or a list
    column expression per row (it contains ``bp_credential``: a state's table).
    ``require_npi`` also needs ``bp_npi``; ``waived`` is a condition under which the
    check passes anyway (TCM before the visit is known): ``waived | check``.
    """
    met = (
        credentials.list.contains(pl.col("bp_credential"))
        if isinstance(credentials, pl.Expr)
        else pl.col("bp_credential").is_in(list(credentials))
    )
    if require_npi:
        met = met & pl.col("bp_npi").is_not_null()
    if waived is not None:
        met = waived | met
    return Criterion(
        "billing_practitioner_qualified",
        description,
        met,
        "practitioner_not_qualified",
        rules,
        detail=detail,
        shows=shows,
    )


def not_already_billed_criterion(
    met: pl.Expr,
    description: str,
    rules: tuple[str, ...] = (),
    *,
    detail: pl.Expr | None = None,
    shows: tuple[str, ...] = (),
) -> Criterion:
    """The service is not already in claims history (reason ``already_billed``).

    `met` is the family's own test (``pl.col("same_day_claims") == 0``,
    ``pl.col("own_claims").list.len() == 0``, ``~pl.col(...).list.contains(code)``, ...):
    what counts as the same service differs by family, the criterion's name and reason
    do not.
    """
    return Criterion(
        "not_already_billed",
        description,
        met,
        "already_billed",
        rules,
        detail=detail,
        shows=shows,
    )


# --------------------------------------------------------------------------- windows


@dataclass(frozen=True)
class Window:
    """The dates a candidate's cap looks at: ``start`` .. ``end`` (expressions over the
    candidate's row; None = unbounded), ``closed`` as in ``active_on``; with
    ``other_days_only`` services on the candidate's own date never count (they are
    "already billed", checked apart)."""

    start: pl.Expr | None = None
    end: pl.Expr | None = None
    closed: ClosedInterval = "both"
    other_days_only: bool = False
    date: str = "date"  # the candidate's date column (for other_days_only)

    @staticmethod
    def lifetime(date: str = "date", other_days_only: bool = False) -> Window:
        return Window(other_days_only=other_days_only, date=date)

    @staticmethod
    def same_day(date: str = "date") -> Window:
        return Window(pl.col(date), pl.col(date), "both", date=date)

    @staticmethod
    def calendar_year_through(date: str = "date", closed: ClosedInterval = "both") -> Window:
        """1 January of the date's year through the date (``closed="left"``: before it)."""
        return Window(pl.date(pl.col(date).dt.year(), 1, 1), pl.col(date), closed, date=date)

    @staticmethod
    def month_of(date: str = "date") -> Window:
        """The calendar month of the date."""
        d = pl.col(date)
        return Window(d.dt.month_start(), d.dt.month_end(), "both", date=date)

    @staticmethod
    def months_back(date: str, months: int, closed: ClosedInterval = "both") -> Window:
        """The `months` months ending on the date: date - months + 1 day .. date."""
        start = pl.col(date).dt.offset_by(f"-{months}mo").dt.offset_by("1d")
        return Window(start, pl.col(date), closed, date=date)

    @staticmethod
    def days_back(date: str, days: int, closed: ClosedInterval = "both") -> Window:
        """date - `days` .. date."""
        return Window(pl.col(date) - pl.duration(days=days), pl.col(date), closed, date=date)


def _in_window(other_date: str, window: Window) -> pl.Expr:
    """The other service's date falls in the window evaluated on the candidate's row
    (columns ``_w_start`` / ``_w_end`` hold its bounds; null = unbounded)."""
    inside = active_on(
        other_date, "_w_start", "_w_end", closed=window.closed, open_start=True, open_end=True
    )
    if window.other_days_only:
        inside = inside & (pl.col(other_date) != pl.col(window.date))
    return inside


def _with_bounds(frame: pl.DataFrame, window: Window) -> pl.DataFrame:
    return frame.with_columns(
        _w_start=window.start if window.start is not None else pl.lit(None, dtype=pl.Date),
        _w_end=window.end if window.end is not None else pl.lit(None, dtype=pl.Date),
    )


def prior_usage(
    candidates: pl.DataFrame,
    services: pl.DataFrame,
    *,
    on: Sequence[str],
    window: Window,
    service_date: str = "date_of_service",
    units: IntoExpr | None = None,
) -> pl.Series:
    """Per candidate: the units of `services` (joined ``on``) dated in its window.

    `units` (column or expression over `services`; default 1 a row) is summed; the
    result is an Int64 series aligned with `candidates`, 0 without any. `services`
    must not share column names with `candidates` other than ``on``.
    """
    amount = pl.lit(1, dtype=pl.Int64) if units is None else as_expr(units)
    bounded = _with_bounds(candidates.with_row_index(_ROW), window)
    found = (
        bounded.select(_ROW, *on, "_w_start", "_w_end", window.date)
        .join(services.with_columns(_amount=amount), on=list(on), how="inner")
        .filter(_in_window(service_date, window))
        .group_by(_ROW)
        .agg(_used=pl.col("_amount").sum().cast(pl.Int64))
    )
    return (
        bounded.select(_ROW)
        .join(found, on=_ROW, how="left")
        .sort(_ROW)
        .select(pl.col("_used").fill_null(0).alias("prior_units"))
        .get_column("prior_units")
    )


# --------------------------------------------------------------------------- frequency cap


@dataclass(frozen=True)
class Cap:
    """One limit a candidate must stay under.

    ``limit`` (an int, an expression over the candidate's row, or None = no cap) counts
    units; ``prior`` is the usage already billed before the evaluation (a column or
    expression over the candidate's row, e.g. from ``prior_usage``; None = 0); ``window``
    says which *earlier granted* candidates count in ``granted`` mode (in ``qualifying``
    mode every earlier candidate of the group counts, as the group is the window).
    Output columns are prefixed ``<name>_``.
    """

    name: str
    limit: int | pl.Expr | None
    prior: IntoExpr | None = None
    window: Window = field(default_factory=Window)


Counting = Literal["qualifying", "granted"]


def _cap_columns(cap: Cap, earlier: pl.Expr, units: pl.Expr) -> list[pl.Expr]:
    """prior, earlier, used, room, within, granted of one cap (medicaid's _greedy fill)."""
    n = cap.name
    prior = pl.lit(0, dtype=pl.Int64) if cap.prior is None else as_expr(cap.prior).cast(pl.Int64)
    limit = pl.lit(cap.limit) if not isinstance(cap.limit, pl.Expr) else cap.limit
    limit = limit.cast(pl.Int64)
    room = (limit - prior).clip(lower_bound=0)
    after = earlier + units
    capped = pl.min_horizontal(after, room) - pl.min_horizontal(earlier, room)
    return [
        prior.alias(f"{n}_prior"),
        earlier.cast(pl.Int64).alias(f"{n}_earlier"),
        (prior + earlier).cast(pl.Int64).alias(f"{n}_used"),
        room.cast(pl.Int64).alias(f"{n}_room"),
        (room.is_null() | (earlier < room)).alias(f"{n}_within"),
        pl.when(room.is_null()).then(units).otherwise(capped).cast(pl.Int64).alias(f"{n}_granted"),
    ]


def frequency_cap(
    candidates: pl.DataFrame,
    caps: Sequence[Cap],
    *,
    group: Sequence[str],
    order: Sequence[str],
    units: IntoExpr | None = None,
    qualifies: pl.Expr | None = None,
    counting: Counting = "qualifying",
    date: str = "date",
    rank: str = "cap_rank",
    keep_order: Literal["input", "sorted"] = "input",
) -> pl.DataFrame:
    """The n-th qualifying service of a group under one or more caps, whole-frame.

    Candidates are ranked within `group` by `order` (``rank``: 1, 2, ... ordinal; equal
    `order` values keep the input order, so give a unique order for results that do not
    depend on the rows' order). ``units`` is each candidate's demand (default 1);
    ``qualifies`` says which candidates use the caps at all (default all; null = no).

    ``counting`` says what earlier candidates use:

    - ``qualifying``: every earlier qualifying candidate of the group uses its full
      ``units``, whether or not a cap let it bill (tobacco, nurse visit, MNT, Medicaid,
      G0506). The group is the window (patient, or patient and day, ...).
    - ``granted``: only earlier candidates that were granted (qualify and are within
      every cap) use, and only those dated in each cap's ``window`` (obesity, TCM,
      wellness). Settled in one whole-frame pass per rank.

    Per cap, adds ``<name>_prior``, ``_earlier`` (units of earlier candidates counted),
    ``_used`` (prior + earlier), ``_room`` (limit - prior, at least 0; null = no cap),
    ``_within`` (room null or earlier < room: a unit is left) and ``_granted`` (units of
    this candidate that fit: min(earlier + units, room) - min(earlier, room)). In
    ``granted`` mode also ``cap_granted`` (bool: qualifies and within every cap). Rows
    come back in input order (``keep_order="input"``) or sorted by group then order.
    """
    amount = pl.lit(1, dtype=pl.Int64) if units is None else as_expr(units)
    q = pl.lit(True) if qualifies is None else qualifies.fill_null(False)
    ranked = (
        candidates.with_row_index(_ROW)
        .sort([*group, *order], maintain_order=True)
        .with_columns(
            pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over(list(group)).alias(rank),
            _units=amount.cast(pl.Int64),
            _q=q,
        )
    )
    if counting == "qualifying":
        ranked = ranked.with_columns(_demand=_demand())
        demand = pl.col("_demand")
        earlier = (pl.col("_demand").cum_sum() - pl.col("_demand")).over(list(group))
        ranked = ranked.with_columns(_earlier=earlier)
        columns = [c for cap in caps for c in _cap_columns(cap, pl.col("_earlier"), demand)]
        result = ranked.with_columns(columns).drop("_demand", "_earlier")
    else:
        result = _granted_passes(ranked, caps, group, date, rank)
    result = result.drop("_units", "_q")
    if keep_order == "input":
        result = result.sort(_ROW)
    return result.drop(_ROW)


def _demand() -> pl.Expr:
    """A candidate's units when it qualifies, else 0."""
    return pl.when(pl.col("_q")).then(pl.col("_units")).otherwise(0).cast(pl.Int64)


def _granted_passes(
    ranked: pl.DataFrame, caps: Sequence[Cap], group: Sequence[str], date: str, rank: str
) -> pl.DataFrame:
    """``granted`` counting: pass r settles every group's r-th candidate against the
    candidates granted in passes before it (a loop over ranks, not rows)."""
    keys = list(group)
    granted = ranked.select(*keys, pl.col(date).alias("_g_date"), _g_units=pl.col("_units")).clear()
    passes = int(ranked.select(pl.col(rank).max().fill_null(0)).item())
    decided: list[pl.DataFrame] = []
    for r in range(1, passes + 1):
        rows = ranked.filter(pl.col(rank) == r)
        columns: list[pl.Expr] = []
        for cap in caps:
            bounded = _with_bounds(rows, cap.window)
            used = (
                bounded.select(
                    _ROW, *keys, *dict.fromkeys([date, cap.window.date]), "_w_start", "_w_end"
                )
                .join(granted, on=keys, how="inner", nulls_equal=True)
                .filter(_in_window("_g_date", cap.window))
                .group_by(_ROW)
                .agg(pl.col("_g_units").sum().alias(f"_e_{cap.name}"))
            )
            rows = rows.join(used, on=_ROW, how="left").with_columns(
                pl.col(f"_e_{cap.name}").fill_null(0).cast(pl.Int64)
            )
            columns += _cap_columns(cap, pl.col(f"_e_{cap.name}"), _demand())
        rows = rows.with_columns(columns).drop([f"_e_{cap.name}" for cap in caps])
        ok = pl.all_horizontal([pl.col("_q"), *[pl.col(f"{cap.name}_within") for cap in caps]])
        rows = rows.with_columns(cap_granted=ok)
        granted = pl.concat(
            [
                granted,
                rows.filter(pl.col("cap_granted")).select(
                    *keys, pl.col(date).alias("_g_date"), _g_units=pl.col("_units")
                ),
            ]
        )
        decided.append(rows)
    if not decided:
        empty = ranked.with_columns(
            [c for cap in caps for c in _cap_columns(cap, pl.lit(0, dtype=pl.Int64), _demand())]
        )
        return empty.with_columns(cap_granted=pl.lit(False))
    return pl.concat(decided).sort(_ROW).sort([*keys, rank], maintain_order=True)
