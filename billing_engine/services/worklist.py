"""The care manager's worklist: per patient and program, the work still open this month.

Built from an evaluation (``EvaluationResult``) and the bundle it evaluated, in polars
over whole frames. One row per patient and program (the code family):

- ``open`` rows: programs with nothing billed yet whose gaps are ``short`` (more
  minutes or a contact by the deadline close them) or blocked by something minutes
  cannot fix (``worklist_blockers.csv`` maps those gap reasons to the words shown).
  The code in reach is the program's short gap needing the fewest minutes (then the
  highest amount); ``minutes_needed`` is that gap's, so it always equals a ``short``
  gap of ``billing evaluate`` at the same as-of.
- ``done`` rows: programs already billed this month, with the add-on gap (the next
  threshold) when there is one.

The owner is ``patients.care_manager_id``, else the staff member who logged the most
care-management minutes for the patient in the month and the two before it. Business
days left count the as-of date and the deadline, on the calendar TCM uses (the
``tcm.contact.holidays`` setting the evaluation read). No clock is read here: the
as-of date is the evaluation's.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path

import polars as pl

from billing_engine.calendar import Month, federal_holidays
from billing_engine.engine.family import MINUTES_DETAIL_PATTERN
from billing_engine.engine.kernel import STATUS_BLOCKED, STATUS_SHORT
from billing_engine.engine.pipeline import EvaluationResult
from billing_engine.io.bundle import Bundle, entered_in_error
from billing_engine.pricing.money import MONEY
from billing_engine.services.care_owners import care_owners
from code_rules.tcm.codes import FAILED, FEDERAL_OBSERVED, NO_HOLIDAYS

WORKLIST_COLUMNS = (
    "care_manager_id", "patient_id", "program", "code", "minutes_counted",
    "minutes_needed", "deadline", "business_days_left", "blockers", "amount",
    "last_contact", "status",
)  # fmt: skip
OPEN, DONE = "open", "done"  # the worklist's status column
BLOCKERS_FILE = Path(__file__).with_name("worklist_blockers.csv")
OWNER_MONTHS = 3  # "the last three months": the worklist's month and the two before it
CARE_MANAGEMENT = "care_management"  # interchange encounters.kind of logged time
HOLIDAYS_SETTING = "tcm.contact.holidays"  # the business-day calendar TCM deadlines use
BLOCKER_SEPARATOR = "; "
BILLED_SEPARATOR = "+"  # a done row without a next threshold shows the codes billed
ONE_DAY = dt.timedelta(days=1)


@lru_cache(maxsize=1)
def blocker_table() -> pl.DataFrame:
    """Gap reasons that minutes cannot fix, with the words the worklist shows."""
    return pl.read_csv(BLOCKERS_FILE, schema={"reason": pl.String, "blocker": pl.String})


def business_calendar(result: EvaluationResult, last: dt.date) -> tuple[dt.date, ...]:
    """The holidays that are not business days from the as-of date through `last`."""
    used = result.parameters_used.get(HOLIDAYS_SETTING)
    choice = used.value if used is not None else FEDERAL_OBSERVED
    if choice == NO_HOLIDAYS:
        return ()
    return federal_holidays(
        result.as_of.year, max(last.year, result.as_of.year), choice == FEDERAL_OBSERVED
    )


def owners(bundle: Bundle, month: Month) -> pl.DataFrame:
    """``patient_id, care_manager_id``: the patient's care manager, else the performer
    with the most care-management minutes in the last three months (ties: lowest id)."""
    first = month.shift(1 - OWNER_MONTHS).start
    logged = bundle["encounters"].filter(
        (pl.col("kind") == CARE_MANAGEMENT)
        & ~entered_in_error()
        & pl.col("date").is_between(first, month.end)
    )
    return care_owners(bundle["patients"], logged.select("patient_id", "performer_id", "minutes"))


def last_contacts(bundle: Bundle, as_of: dt.date) -> pl.DataFrame:
    """``patient_id, last_contact``: the latest encounter with the patient by as-of
    (entries in error and failed contact attempts left out)."""
    return (
        bundle["encounters"]
        .filter(
            ~entered_in_error() & pl.col("outcome").ne_missing(FAILED) & (pl.col("date") <= as_of)
        )
        .group_by("patient_id")
        .agg(last_contact=pl.col("date").max())
    )


def code_programs(result: EvaluationResult) -> pl.DataFrame:
    """``code, program, add_on``: each considered code's family, and whether it is an add-on."""
    return result.outcomes.group_by("code").agg(
        program=pl.col("family").first(), add_on=pl.col("base_key").is_not_null().any()
    )


def _gaps(result: EvaluationResult) -> pl.DataFrame:
    """The month's short and blocked gaps with program, add-on flag, blocker and counted minutes."""
    counted = pl.col("detail").str.extract(MINUTES_DETAIL_PATTERN, 1).cast(pl.Int64)
    return (
        result.gaps.filter(pl.col("status").is_in([STATUS_SHORT, STATUS_BLOCKED]))
        .join(code_programs(result), on="code", how="left")
        .join(blocker_table(), on="reason", how="left")
        .with_columns(
            minutes_counted=pl.coalesce(counted, "minutes_logged"),
            deadline=pl.coalesce("deadline", "period_end"),
            short=pl.col("status") == STATUS_SHORT,
        )
    )


def _in_reach(frame: pl.DataFrame) -> pl.DataFrame:
    """One gap per patient and program: short first, fewest minutes, highest amount."""
    return frame.sort(
        ["patient_id", "program", "short", "minutes_needed", "potential_amount", "code"],
        descending=[False, False, True, False, True, False],
        nulls_last=True,
    ).unique(["patient_id", "program"], keep="first", maintain_order=True)


def _rows(gaps: pl.DataFrame, status: str) -> pl.DataFrame:
    return gaps.select(
        "patient_id",
        "program",
        "code",
        "minutes_counted",
        minutes_needed=pl.when("short").then("minutes_needed"),
        deadline="deadline",
        amount=pl.col("potential_amount").cast(MONEY),
        status=pl.lit(status),
    )


def worklist(
    result: EvaluationResult, bundle: Bundle, care_manager: str | None = None
) -> pl.DataFrame:
    """The worklist (``WORKLIST_COLUMNS``): open rows sorted by deadline, then amount
    (highest first), then the done rows; only `care_manager`'s when given."""
    gaps = _gaps(result)
    billed = (
        result.claim_lines.join(code_programs(result), on="code", how="inner")
        .group_by("patient_id", "program")
        .agg(billed_code=pl.col("code").unique().sort().str.join(BILLED_SEPARATOR))
    )
    work = gaps.filter(pl.col("short") | pl.col("blocker").is_not_null())
    open_gaps = work.join(billed, on=["patient_id", "program"], how="anti")
    blockers = (
        open_gaps.filter(pl.col("blocker").is_not_null())
        .group_by("patient_id", "program")
        .agg(blockers=pl.col("blocker").unique().sort().str.join(BLOCKER_SEPARATOR))
    )
    opened = _rows(_in_reach(open_gaps), OPEN).join(
        blockers, on=["patient_id", "program"], how="left"
    )
    next_threshold = _in_reach(
        gaps.filter(pl.col("short") & pl.col("add_on")).join(
            billed, on=["patient_id", "program"], how="semi"
        )
    )
    done = billed.join(
        _rows(next_threshold, DONE), on=["patient_id", "program"], how="left"
    ).with_columns(
        code=pl.coalesce("code", "billed_code"),
        status=pl.lit(DONE),
        blockers=pl.lit(None, pl.String),
    )
    rows = pl.concat([opened, done.select(opened.columns)], how="vertical_relaxed")
    last = rows.get_column("deadline").max()
    holidays = business_calendar(result, last if isinstance(last, dt.date) else result.as_of)
    days_left = pl.business_day_count(
        pl.lit(result.as_of), pl.col("deadline") + ONE_DAY, holidays=list(holidays)
    ).clip(lower_bound=0)
    table = (
        rows.join(owners(bundle, result.month), on="patient_id", how="left")
        .join(last_contacts(bundle, result.as_of), on="patient_id", how="left")
        .with_columns(business_days_left=pl.when(pl.col("deadline").is_not_null()).then(days_left))
        .with_columns(
            pl.col("minutes_counted", "minutes_needed", "business_days_left").cast(pl.Int64)
        )
        .sort(
            ["status", "deadline", "amount", "care_manager_id", "patient_id", "program"],
            descending=[True, False, True, False, False, False],
            nulls_last=True,
        )
        .select(WORKLIST_COLUMNS)
    )
    if care_manager is not None:
        table = table.filter(pl.col("care_manager_id") == care_manager)
    return table
