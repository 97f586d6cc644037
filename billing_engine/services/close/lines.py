"""Close lines: the evaluation's claim lines as the close keeps them, matched over time.

Pure polars, no store. Three questions are answered here:

- **which stored line is this line?** A line is the same line when every column a claim
  carries is equal (``IDENTITY``: patient, payer, billing practitioner and NPI, code,
  modifiers, units, date and place of service, ICD-10 codes) — and, where a patient has
  two such lines, the n-th with the n-th. Re-evaluating an open cycle keeps a matched
  line's ``line_id`` and decision and refreshes its amounts and evidence
  (``match_open_cycle``).
- **what line number comes next?** ``line_id`` is ``L<YYYYMM>-<cycle>-<n>``, ``n`` from
  the cycle's counter, never reused.
- **what changed since the month was claimed?** ``adjustments`` compares a new
  evaluation with the lines carried by the exported claims: ``new``, ``replace``,
  ``void`` (close.md, "Adjustment cycles").
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

IDENTITY = (
    "patient_id",
    "payer_id",
    "billing_practitioner_id",
    "billing_npi",
    "code",
    "modifiers",
    "units",
    "date_of_service",
    "place_of_service",
    "icd10_codes",
)
# what a claimed line is matched on across cycles, and what makes a match a replacement:
# the period it bills (a monthly code's month, a TCM's 30 days; a visit's own date), so
# that a correction moving the day a threshold was reached still pairs the two lines
PERIOD = "__period"
SLOT = ("patient_id", "payer_id", "code", PERIOD)
SIGNATURE = ("modifiers", "units", "icd10_codes", "billing_practitioner_id")
# a pair differing in any of these is a replacement (the date: a monthly code's day the
# threshold was reached may move within its month; the claim then carries the new one)
COMPARED = (*SIGNATURE, "code", "date_of_service")
EVALUATED = (
    "period_start",
    "period_end",
    "allowed_amount",
    "payer_amount",
    "patient_amount",
    "evidence",
    "rule",
)
LINE_COLUMNS = (*IDENTITY, *EVALUATED)
_NTH = "__nth"

KIND_ORIGINAL, KIND_NEW, KIND_REPLACE, KIND_VOID = "original", "new", "replace", "void"
PENDING, APPROVED, HELD = "pending", "approved", "held"


def line_ids(month: str, cycle: int, first: int, count: int) -> pl.Series:
    """``count`` new line ids of a cycle, numbered from ``first``."""
    prefix = f"L{month.replace('-', '')}-{cycle}-"
    number = pl.int_range(first, first + count, dtype=pl.Int64).cast(pl.String).str.zfill(6)
    return pl.select((pl.lit(prefix) + number).alias("line_id")).to_series()


def claim_lines_of(evaluated: pl.DataFrame) -> pl.DataFrame:
    """The claim-line columns a close line keeps, nulls made comparable ('' for text)."""
    text = [c for c in IDENTITY if evaluated.schema[c] == pl.String]
    return evaluated.select(LINE_COLUMNS).with_columns(pl.col(text).fill_null(""))


def _numbered(frame: pl.DataFrame, keys: tuple[str, ...]) -> pl.DataFrame:
    return frame.with_columns(pl.int_range(pl.len()).over(list(keys)).alias(_NTH))


@dataclass(frozen=True)
class OpenMatch:
    """A re-evaluation of an open cycle against its stored lines."""

    kept: pl.DataFrame  # line_id + EVALUATED: stored lines still supported (values refreshed)
    added: pl.DataFrame  # LINE_COLUMNS: lines the stored ones do not hold (new, pending)
    dropped: pl.DataFrame  # line_id + IDENTITY: stored lines no longer supported


ADJUSTMENT_IDENTITY = (*IDENTITY, "kind", "adjusts_line_id")


def match_open_cycle(
    new: pl.DataFrame, stored: pl.DataFrame, keys: tuple[str, ...] = IDENTITY
) -> OpenMatch:
    """Match ``new`` lines to the ``stored`` close lines of an open cycle on ``keys``.

    Cycle 1 matches on ``IDENTITY``; an adjustment cycle on ``ADJUSTMENT_IDENTITY`` (the
    same difference against the same claimed line is the same adjustment line).
    """
    left = _numbered(new, keys)
    right = _numbered(stored.select("line_id", *keys), keys)
    joined = left.join(right, on=[*keys, _NTH], how="left", nulls_equal=True)
    kept = joined.filter(pl.col("line_id").is_not_null())
    added = joined.filter(pl.col("line_id").is_null()).drop("line_id", _NTH)
    dropped = right.join(left.select(*keys, _NTH), on=[*keys, _NTH], how="anti", nulls_equal=True)
    return OpenMatch(
        kept=kept.select("line_id", *EVALUATED),
        added=added.select(new.columns),
        dropped=dropped.drop(_NTH),
    )


def adjustments(new: pl.DataFrame, claimed: pl.DataFrame) -> pl.DataFrame:
    """Adjustment lines: how ``new`` (``LINE_COLUMNS``) differs from what is claimed.

    ``claimed`` holds the lines the month's exported claims carry now (voids taken off):
    ``line_id, claim_chain`` and ``LINE_COLUMNS``. A claimed line is matched to a new
    line of the same patient, payer, code and period (``SLOT``: ``period_start``, else
    the date of service), else of the same patient, payer and period (a code that
    changed, e.g. 99490 to 99487). Returns ``LINE_COLUMNS`` plus
    ``kind`` (new, replace, void), ``adjusts_line_id`` and ``adjusts_claim_id``; equal
    lines (same ``SIGNATURE``) are not listed.
    """
    period = pl.coalesce("period_start", "date_of_service").alias(PERIOD)
    new = new.with_row_index("__new").with_columns(period)
    claimed = claimed.with_row_index("__old").with_columns(period)
    pairs = _pairs(new, claimed, SLOT)
    rest_new = new.join(pairs.select("__new"), on="__new", how="anti")
    rest_old = claimed.join(pairs.select("__old"), on="__old", how="anti")
    second = _pairs(rest_new, rest_old, ("patient_id", "payer_id", PERIOD))
    pairs = pl.concat([pairs, second])
    changed = pairs.join(new, on="__new").join(
        claimed.select("__old", "line_id", "claim_chain", *COMPARED),
        on="__old",
        suffix="__old",
    )
    differs = pl.any_horizontal(pl.col(c).ne_missing(pl.col(f"{c}__old")) for c in COMPARED)
    replace = changed.filter(differs).select(
        *LINE_COLUMNS,
        pl.lit(KIND_REPLACE).alias("kind"),
        pl.col("line_id").alias("adjusts_line_id"),
        pl.col("claim_chain").alias("adjusts_claim_id"),
    )
    added = (
        new.join(pairs.select("__new"), on="__new", how="anti")
        .select(LINE_COLUMNS)
        .with_columns(
            pl.lit(KIND_NEW).alias("kind"),
            pl.lit(None, pl.String).alias("adjusts_line_id"),
            pl.lit(None, pl.String).alias("adjusts_claim_id"),
        )
    )
    voided = claimed.join(pairs.select("__old"), on="__old", how="anti").select(
        *LINE_COLUMNS,
        pl.lit(KIND_VOID).alias("kind"),
        pl.col("line_id").alias("adjusts_line_id"),
        pl.col("claim_chain").alias("adjusts_claim_id"),
    )
    return pl.concat([added, replace, voided]).sort("patient_id", "date_of_service", "code")


def _pairs(new: pl.DataFrame, old: pl.DataFrame, keys: tuple[str, ...]) -> pl.DataFrame:
    """``__new, __old`` row pairs: the n-th of a key on each side with each other."""
    left = _numbered(new.select("__new", *keys), keys)
    right = _numbered(old.select("__old", *keys), keys)
    return left.join(right, on=[*keys, _NTH], how="inner", nulls_equal=True).select(
        "__new", "__old"
    )
