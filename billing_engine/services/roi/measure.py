"""What the practice's own months measured, per care manager: minutes, patients, lines and
the money her minutes stand behind.

Each month is evaluated exactly as ``billing revenue`` evaluates it (the same
``evaluate`` and ``assemble_revenue``), so the practice's totals here are that command's.

**Attribution.** A priced line's evidence names the encounters it stands on. Its
amounts (allowed, payer, patient) are shared among the performers of those encounters
by their minutes (excluded minutes weigh nothing; a line whose encounters all weigh
nothing is shared equally per encounter), in whole cents by the largest remainder, so
the shares add up to the line exactly. The shares of performers who are not care
managers (a practitioner's own visit) and lines with no encounter in their evidence are
*not attributed*: the team's amount plus the not-attributed amount is the practice's.

**Minutes.** Of a care manager's minutes logged in a month (encounters not entered in
error), *excluded* ones are care-management time the engine set aside (before consent,
inpatient days, failed attempts, ...); *counted* ones are on the evidence of a priced
line of the range; the rest are *stranded* (valid, on no line: below a threshold, over
a cap, or on a line of a month after the range).

**Patients.** Her caseload patient-months are the (patient, month) pairs she logged work
for; *enrolled* ones have a consent in effect that month; *billable* ones carry a line
share of hers. A PMPM member's amount goes to the care manager who logged the most
minutes with that enrolled member that month (ties: the first id), so no member counts
twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from billing_engine.calendar import Month
from billing_engine.engine.frames import capitation_members
from billing_engine.io.bundle import Bundle
from billing_engine.pricing.fees import FeeLibrary
from billing_engine.services.evaluation import EvaluationResult, evaluate
from billing_engine.services.revenue import RevenueReport, assemble_revenue, month_revenue

CENTS = ("allowed_cents", "payer_cents", "patient_cents")
_AMOUNTS = {"allowed_amount": "allowed_cents", "payer_amount": "payer_cents",
            "patient_amount": "patient_cents"}  # fmt: skip
LINE_KEY = ("month", "line_no")
PM_KEY = ("group", "month", "patient_id")  # one caseload patient-month of a group


@dataclass(frozen=True)
class MonthsMeasured:
    """What ROI keeps of the range's evaluations (whole frames, every month)."""

    revenue: RevenueReport  # as `billing revenue` reports the same months
    lines: pl.DataFrame  # month, line_no, patient_id, payer_id, evidence, the *_cents
    encounters: pl.DataFrame  # month, encounter_id, patient_id, performer_id, minutes,
    # excluded (bool), counted (bool)
    members: pl.DataFrame  # month, payer_id, patient_id, per_member (PMPM of the month)
    consented: pl.DataFrame  # month, patient_id: a consent in effect that month


def measure_months(
    bundle: Bundle,
    months: Sequence[Month],
    *,
    as_of: dt.date | None = None,
    settings: Mapping[str, Any] | None = None,
    fees: FeeLibrary | None = None,
) -> MonthsMeasured:
    """Evaluate every month of the range as ``billing revenue`` does and keep its parts."""
    parts, lines, encounters, members = [], [], [], []
    valid = bundle.without_entered_in_error()
    for month in months:
        result = evaluate(bundle, month, as_of, settings=settings, fees=fees)
        parts.append(month_revenue(result))
        lines.append(_month_lines(result))
        encounters.append(_month_encounters(valid, result))
        members.append(_month_members(valid, result))
    report = assemble_revenue(bundle, parts, settings=settings)
    all_lines = pl.concat(lines, how="vertical")
    evidence = all_lines.select(pl.col("evidence").explode().alias("encounter_id")).unique()
    all_encounters = pl.concat(encounters, how="vertical").with_columns(
        counted=~pl.col("excluded")
        & pl.col("encounter_id").is_in(evidence["encounter_id"].implode())
    )
    return MonthsMeasured(
        revenue=report,
        lines=all_lines,
        encounters=all_encounters,
        members=pl.concat(members, how="vertical"),
        consented=pl.concat([_consented(valid, m) for m in months], how="vertical"),
    )


def _month_lines(result: EvaluationResult) -> pl.DataFrame:
    return result.priced_lines.with_row_index("line_no").select(
        pl.lit(str(result.month)).alias("month"),
        pl.col("line_no").cast(pl.Int64),
        "patient_id",
        "payer_id",
        pl.col("evidence").cast(pl.List(pl.String)),
        *((pl.col(a) * 100).cast(pl.Int64).fill_null(0).alias(c) for a, c in _AMOUNTS.items()),
    )


def _month_encounters(valid: Bundle, result: EvaluationResult) -> pl.DataFrame:
    month = result.month
    excluded = result.time_entries.filter(pl.col("excluded").is_not_null()).select("encounter_id")
    return (
        valid["encounters"]
        .filter(pl.col("date").is_between(month.start, month.end))
        .select(
            pl.lit(str(month)).alias("month"),
            "encounter_id",
            "patient_id",
            "performer_id",
            pl.col("minutes").cast(pl.Int64).fill_null(0),
            excluded=pl.col("encounter_id").is_in(excluded["encounter_id"].implode()),
        )
    )


def _month_members(valid: Bundle, result: EvaluationResult) -> pl.DataFrame:
    """Each member of a PMPM contract in the month with the month's amount per member."""
    per_member = result.capitation.group_by("payer_id").agg(per_member=pl.col("pmpm").sum())
    return (
        capitation_members(valid, result.month)
        .join(per_member, on="payer_id", how="inner")
        .select(pl.lit(str(result.month)).alias("month"), "payer_id", "patient_id", "per_member")
    )


def _consented(valid: Bundle, month: Month) -> pl.DataFrame:
    """(month, patient_id) of every patient with a consent in effect in `month` (a
    revoked consent ends with its revocation's month)."""
    consents = valid["consents"]
    return (
        consents.filter(
            (pl.col("obtained_date") <= month.end)
            & (pl.col("revoked_date").is_null() | (pl.col("revoked_date") >= month.start))
        )
        .select(pl.lit(str(month)).alias("month"), "patient_id")
        .unique()
    )


def line_shares(lines: pl.DataFrame, encounters: pl.DataFrame) -> pl.DataFrame:
    """Each line's amounts shared among the performers of its evidence encounters:
    month, line_no, patient_id, payer_id, performer_id and the three *_cents (see the
    module docstring: by minutes, whole cents, largest remainder)."""
    weights = (
        lines.select(*LINE_KEY, pl.col("evidence").alias("encounter_id"))
        .explode("encounter_id")
        .join(
            encounters.select(
                "encounter_id",
                "performer_id",
                weight=pl.when(pl.col("excluded")).then(0).otherwise(pl.col("minutes")),
            ),
            on="encounter_id",
            how="inner",
        )
        .group_by(*LINE_KEY, "performer_id")
        .agg(pl.col("weight").sum(), encounters=pl.len().cast(pl.Int64))
        .with_columns(
            weight=pl.when(pl.col("weight").sum().over(LINE_KEY) > 0)
            .then(pl.col("weight"))
            .otherwise(pl.col("encounters"))
        )
    )
    shared = weights.join(
        lines.select(*LINE_KEY, "patient_id", "payer_id", *CENTS), on=list(LINE_KEY)
    )
    return shared.select(
        *LINE_KEY, "patient_id", "payer_id", "performer_id",
        *(largest_remainder(shared, c) for c in CENTS),
    ).sort(*LINE_KEY, "performer_id")  # fmt: skip


def largest_remainder(frame: pl.DataFrame, cents: str) -> pl.Series:
    """`cents` of each line (``LINE_KEY``) shared by its rows' ``weight`` in whole cents:
    each share rounded down, the cents left given one each to the largest remainders
    (ties: ``performer_id``), so a line's shares add up to it exactly."""
    total_weight = pl.col("weight").sum().over(LINE_KEY)
    exact = pl.col(cents) * pl.col("weight")
    worked = frame.with_row_index("_row").with_columns(
        _base=exact // total_weight, _rest=exact % total_weight
    )
    ranked = worked.sort(*LINE_KEY, "_rest", "performer_id", descending=[False, False, True, False])
    ranked = ranked.with_columns(
        _place=pl.int_range(pl.len()).over(LINE_KEY),
        _left=pl.col(cents).first().over(LINE_KEY) - pl.col("_base").sum().over(LINE_KEY),
    ).with_columns(
        (pl.col("_base") + (pl.col("_place") < pl.col("_left")).cast(pl.Int64)).alias(cents)
    )
    return ranked.sort("_row")[cents]


def patient_months(
    measured: MonthsMeasured,
    shares: pl.DataFrame,
    care_managers: pl.DataFrame,
    group: pl.Expr,
    medicare_payers: Sequence[str],
) -> pl.DataFrame:
    """One row per (group, month, patient_id) a group's care managers worked or hold a
    line share of. `group` maps ``care_manager_id`` to the group (herself, her role,
    TEAM); `care_managers` has care_manager_id and month: the months each counts in
    (her work and line shares of other months are not hers). Columns: worked, enrolled, billable,
    the minutes (logged, excluded, counted), lines, the *_cents, medicare_cents, pmpm."""
    ids = care_managers.select("care_manager_id", "month")
    mine = measured.encounters.rename({"performer_id": "care_manager_id"}).join(
        ids, on=["care_manager_id", "month"], how="semi"
    )
    counted = pl.col("counted")
    work = (
        mine.with_columns(group=group)
        .group_by(*PM_KEY)
        .agg(
            minutes_logged=pl.col("minutes").sum(),
            minutes_excluded=pl.col("minutes").filter(pl.col("excluded")).sum(),
            minutes_counted=pl.col("minutes").filter(counted).sum(),
        )
        .join(
            measured.consented.with_columns(enrolled=pl.lit(True)),
            on=["month", "patient_id"],
            how="left",
        )
        .with_columns(worked=pl.lit(True), enrolled=pl.col("enrolled").fill_null(False))
    )
    medicare = pl.col("payer_id").is_in(list(medicare_payers))
    money = (
        shares.rename({"performer_id": "care_manager_id"})
        .join(ids, on=["care_manager_id", "month"], how="semi")
        .with_columns(group=group)
        .group_by(*PM_KEY)
        .agg(
            *(pl.col(c).sum() for c in CENTS),
            lines=pl.col("line_no").n_unique().cast(pl.Int64),
            medicare_cents=(pl.col("payer_cents") + pl.col("patient_cents")).filter(medicare).sum(),
        )
    )
    return (
        work.join(money, on=list(PM_KEY), how="full", coalesce=True)
        .join(_pmpm(measured, mine, group), on=list(PM_KEY), how="left")
        .with_columns(
            pl.col("worked", "enrolled").fill_null(False),
            pl.col(
                "minutes_logged",
                "minutes_excluded",
                "minutes_counted",
                "lines",
                *CENTS,
                "medicare_cents",
            ).fill_null(0),
            pl.col("pmpm").fill_null(pl.lit(0).cast(pl.Decimal(18, 2))),
        )
        .with_columns(billable=pl.col("worked") & (pl.col("lines") > 0))
    )


def _pmpm(measured: MonthsMeasured, mine: pl.DataFrame, group: pl.Expr) -> pl.DataFrame:
    """PMPM of each enrolled member, to the care manager with the most minutes with her
    that month, grouped: group, month, patient_id, pmpm."""
    owners = (
        mine.join(measured.consented, on=["month", "patient_id"], how="semi")
        .group_by("month", "patient_id", "care_manager_id")
        .agg(pl.col("minutes").sum())
        .sort(
            "month",
            "patient_id",
            "minutes",
            "care_manager_id",
            descending=[False, False, True, False],
        )
        .unique(["month", "patient_id"], keep="first", maintain_order=True)
    )
    return (
        measured.members.join(owners, on=["month", "patient_id"], how="inner")
        .with_columns(group=group)
        .group_by(*PM_KEY)
        .agg(pmpm=pl.col("per_member").sum().cast(pl.Decimal(18, 2)))
    )


def group_totals(rows: pl.DataFrame) -> pl.DataFrame:
    """The patient-month rows of `patient_months` summed per group: months worked,
    patient_months, enrolled_months, billable_patient_months, medicare_billable_months,
    the minutes, lines, the *_cents, medicare_cents and pmpm."""
    worked = pl.col("worked")
    return (
        rows.group_by("group")
        .agg(
            *(pl.col(c).sum().cast(pl.Int64) for c in (
                "minutes_logged", "minutes_excluded", "minutes_counted", "lines", *CENTS,
                "medicare_cents")),
            months_worked=pl.col("month").filter(worked).n_unique().cast(pl.Int64),
            patient_months=worked.sum().cast(pl.Int64),
            enrolled_months=(worked & pl.col("enrolled")).sum().cast(pl.Int64),
            billable_patient_months=pl.col("billable").sum().cast(pl.Int64),
            medicare_billable_months=(pl.col("billable") & (pl.col("medicare_cents") > 0))
            .sum()
            .cast(pl.Int64),
            pmpm=pl.col("pmpm").sum().cast(pl.Decimal(18, 2)),
        )
        .with_columns(
            minutes_stranded=pl.col("minutes_logged")
            - pl.col("minutes_excluded")
            - pl.col("minutes_counted")
        )
        .sort("group")
    )  # fmt: skip
