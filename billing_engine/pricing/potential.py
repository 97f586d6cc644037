"""What a short gap would earn if closed: the money left on the table."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from billing_engine.io.bundle import Bundle
from billing_engine.params.parameters import ParameterSet
from billing_engine.params.period import PeriodParameters
from billing_engine.pricing.allowed import price_lines
from billing_engine.pricing.fees import FeeLibrary
from billing_engine.pricing.money import MONEY

if TYPE_CHECKING:
    from billing_engine.params.conflict_table import ConflictTable


def short_and_started() -> pl.Expr:
    """A ``short`` gap that work already logged in the period has started.

    Time-based gaps (``minutes_needed`` set) are within reach once minutes were logged
    toward them (``minutes_logged`` > 0): "started, N minutes short". A short gap
    without a minute count (TCM: the contact or the face-to-face visit still open before
    its deadline) is within reach: its qualifying discharge and every earlier criterion
    are met. A time-based gap with nothing logged is "not started": it is not money
    left on the table, whatever the code would pay.
    """
    timed = pl.col("minutes_needed").is_not_null()
    started = pl.col("minutes_logged").fill_null(0) > 0
    return (pl.col("status") == "short") & (~timed | started)


def _one_per_alternative_group(
    valued: pl.DataFrame,
    lines: pl.DataFrame | None,
    period: PeriodParameters,
    table: ConflictTable,
) -> pl.DataFrame:
    """Null the potential of alternatives that cannot add to what the month bills.

    Alternatives of one precedence group (``code_rules/conflicts.yaml``: complex CCM,
    the practitioner's CCM, staff CCM; the two TCM codes) bill at most one per patient
    and period: of the group's gaps only the closest (fewest minutes needed, then the
    most valuable) keeps its potential, and none
    does when a line of the group is already billed (closing the gap would replace that
    line, not add to it). Add-ons (``base_key`` set) are left alone. `table` is the
    conflict table the evaluation resolved with (carried forward under
    ``--allow-unverified``).
    """
    groups = table.in_force(period.start, period.end)
    alternative, group = [], []
    for g in groups:
        for alt in g.order:
            if alt not in alternative:
                alternative.append(alt)
                group.append(g.id)
    if not alternative:
        return valued

    def grouped(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(
            _group=pl.when(pl.col("base_key").is_null()).then(
                pl.col("alternative").replace_strict(alternative, group, default=None)
            )
        )

    key = ["patient_id", "period_start", "_group"]
    frame = grouped(valued)
    if lines is not None and not lines.is_empty():
        billed = grouped(lines).filter(pl.col("_group").is_not_null()).select(key).unique()
        frame = frame.join(billed.with_columns(_billed=pl.lit(True)), on=key, how="left")
    else:
        frame = frame.with_columns(_billed=pl.lit(None, dtype=pl.Boolean))
    frame = frame.sort(
        ["minutes_needed", "potential_amount", "_gap"],
        descending=[False, True, False],
        nulls_last=True,
    ).with_columns(_n=pl.int_range(pl.len()).over(key))
    best = (pl.col("_n") == 0) | pl.col("_group").is_null()
    return frame.with_columns(
        potential_amount=pl.when(best & ~pl.col("_billed").fill_null(False)).then(
            pl.col("potential_amount")
        )
    ).drop("_group", "_billed", "_n")


def potential_amounts(
    gaps: pl.DataFrame,
    bundle: Bundle,
    params: ParameterSet,
    period: PeriodParameters,
    fees: FeeLibrary,
    lines: pl.DataFrame | None = None,
    *,
    conflict_table: ConflictTable,
) -> pl.Series:
    """Per gap row: the allowed amount of one unit of its code if it were closed.

    Only ``short_and_started`` gaps with a payer are valued ("within reach"): the money
    left on the table, what more work this period would still earn on work started. The
    date of service is the gap's deadline (a TCM gap: the contact or visit deadline),
    else the period end; the place of service the gap's own (monthly codes: the billing
    practitioner's, else the counted encounters', see
    ``facts.monthly_place_of_service``), else the monthly default. Other gaps
    (blocked, suppressed, info, short but not started) and codes without a fee get
    null, and so do alternatives that cannot add to the month's `lines` (the line
    outcomes): ``_one_per_alternative_group``.
    """
    pos = pl.lit(period.as_str("common.monthly_place_of_service"))
    if "place_of_service" in gaps.columns:
        pos = pl.coalesce(pl.col("place_of_service"), pos)
    candidates = gaps.with_row_index("_gap").filter(
        short_and_started() & pl.col("payer_id").is_not_null()
    )
    if candidates.is_empty():
        return pl.Series("potential_amount", [None] * gaps.height, dtype=MONEY)
    pseudo = candidates.select(
        "_gap",
        "patient_id",
        "payer_id",
        "billing_practitioner_id",
        "code",
        "family",
        units=pl.lit(1, dtype=pl.Int64),
        date_of_service=pl.coalesce("deadline", "period_end"),
        place_of_service=pos,
    )
    valued = price_lines(pseudo, bundle, params, period, fees).lines.select(
        "_gap", pl.col("allowed_amount").alias("potential_amount")
    )
    if "alternative" in gaps.columns and "base_key" in gaps.columns:
        valued = _one_per_alternative_group(
            candidates.select(
                "_gap", "patient_id", "period_start", "alternative", "base_key", "minutes_needed"
            ).join(valued, on="_gap"),
            lines,
            period,
            conflict_table,
        ).select("_gap", "potential_amount")
    return (
        gaps.with_row_index("_gap")
        .join(valued, on="_gap", how="left")
        .sort("_gap")["potential_amount"]
    )
