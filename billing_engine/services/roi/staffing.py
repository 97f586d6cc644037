"""The staffing file of ``billing roi --staffing FILE.csv``: who the care managers are and
what each costs.

Columns ``care_manager_id, role, annual_salary, benefits_rate, fte, start_date,
end_date``; ``care_manager_id``, ``role`` and ``annual_salary`` are required in every
row, the others may be empty (benefits: ``roi.benefits_rate``; FTE: 1; dates: open).
Every problem is reported at once with its file, row (the header is row 1) and column,
and nothing is used from a file with any problem.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import polars as pl

from billing_engine.errors import BillingError, BundleInvalid, InputIssue
from billing_engine.services.roi.report import MONEY_DTYPE

STAFFING_COLUMNS = ("care_manager_id", "role", "annual_salary", "benefits_rate", "fte",
                    "start_date", "end_date")  # fmt: skip
REQUIRED = ("care_manager_id", "role", "annual_salary")
FIRST_DATA_ROW = 2  # the header is row 1, as a spreadsheet shows it
_ROW = "__row__"
_MONEY_RE = r"^[0-9]{1,12}(\.[0-9]{1,2})?$"
_DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
MAX_FTE = 1.5  # above this a row is a typing error (hours, percent), not one person
MAX_BENEFITS_RATE = 1.0


class StaffingInvalid(BundleInvalid):
    """The staffing file was refused; ``issues`` lists every problem found (reported as
    a refused bundle is: every issue on its line, exit code 2)."""

    def __init__(self, source: str, issues: list[InputIssue]) -> None:
        self.source = source
        self.issues = issues
        BillingError.__init__(
            self, f"{source}: {len(issues)} problem(s); the staffing file was not used"
        )


def read_staffing(path: Path, roles: Collection[str]) -> pl.DataFrame:
    """The staffing rows, typed: care_manager_id, role, annual_salary (Decimal),
    benefits_rate (Float64, null = the default), fte (Float64), start_date, end_date.

    `roles` are the roles the ROI parameters know (``roi.default_annual_salary``).
    Raises ``StaffingInvalid`` naming every bad cell.
    """
    label = path.name
    try:
        raw = pl.read_csv(path, infer_schema=False)
    except (OSError, pl.exceptions.PolarsError, UnicodeDecodeError) as exc:
        issue = InputIssue(label, None, None, f"cannot be read: {exc}")
        raise StaffingInvalid(label, [issue]) from None
    missing = [c for c in STAFFING_COLUMNS if c not in raw.columns]
    if missing:
        issues = [InputIssue(label, 1, c, "column missing from the header") for c in missing]
        raise StaffingInvalid(label, issues)
    if raw.is_empty():
        raise StaffingInvalid(label, [InputIssue(label, None, None, "has no rows")])
    frame = raw.select(
        pl.int_range(FIRST_DATA_ROW, pl.len() + FIRST_DATA_ROW).alias(_ROW),
        *(pl.col(c).str.strip_chars().replace("", None).alias(c) for c in STAFFING_COLUMNS),
    )
    issues = _issues(label, frame, roles)
    if issues:
        raise StaffingInvalid(label, issues)
    return frame.select(
        "care_manager_id",
        "role",
        pl.col("annual_salary").cast(MONEY_DTYPE),
        pl.col("benefits_rate").cast(pl.Float64),
        pl.col("fte").cast(pl.Float64).fill_null(1.0),
        pl.col("start_date").str.to_date(),
        pl.col("end_date").str.to_date(),
    )


def _issues(label: str, frame: pl.DataFrame, roles: Collection[str]) -> list[InputIssue]:
    """Every bad cell of the staffing rows, in row then column order."""
    known = sorted(roles)
    date = {c: pl.col(c).str.to_date(strict=False) for c in ("start_date", "end_date")}
    checks: list[tuple[str, pl.Expr, str]] = [
        *((c, pl.col(c).is_null(), "is required") for c in REQUIRED),
        ("care_manager_id", pl.col("care_manager_id").is_duplicated()
         & pl.col("care_manager_id").is_not_null(), "appears in more than one row"),
        ("role", pl.col("role").is_not_null() & ~pl.col("role").is_in(known),
         f"is not a known role ({', '.join(known)})"),
        ("annual_salary", pl.col("annual_salary").is_not_null()
         & ~pl.col("annual_salary").str.contains(_MONEY_RE),
         "is not an amount in dollars (digits, optional cents, no $ or commas)"),
        ("benefits_rate", pl.col("benefits_rate").is_not_null()
         & ~(pl.col("benefits_rate").cast(pl.Float64, strict=False)
             .is_between(0, MAX_BENEFITS_RATE)).fill_null(False),
         f"is not a fraction between 0 and {MAX_BENEFITS_RATE:g} (0.30 for 30 %)"),
        ("fte", pl.col("fte").is_not_null()
         & ~(pl.col("fte").cast(pl.Float64, strict=False) > 0).fill_null(False),
         "is not a number above 0 (1 = full time)"),
        ("fte", (pl.col("fte").cast(pl.Float64, strict=False) > MAX_FTE).fill_null(False),
         f"is above {MAX_FTE:g}: give the fraction of full time (0.5 = half time)"),
        *((c, pl.col(c).is_not_null()
           & ~(pl.col(c).str.contains(_DATE_RE) & date[c].is_not_null()),
           "is not a date YYYY-MM-DD") for c in date),
        ("end_date", (date["end_date"] < date["start_date"]).fill_null(False),
         "is before start_date"),
    ]  # fmt: skip
    found = pl.concat(
        [
            frame.filter(condition).select(
                _ROW, column=pl.lit(column), problem=pl.lit(problem), value=pl.col(column)
            )
            for column, condition, problem in checks
        ]
    ).sort(_ROW, pl.col("column").replace_strict(
        {c: i for i, c in enumerate(STAFFING_COLUMNS)}, return_dtype=pl.Int64))  # fmt: skip
    return [
        InputIssue(label, row, column, problem, value)
        for row, column, problem, value in found.select(_ROW, "column", "problem", "value").rows()
    ]
