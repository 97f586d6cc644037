"""The allowed amount of a claim line (FEE-1), in this order of precedence:

1. a ``fee_schedule`` row of the line's payer for the code and modifier in effect on the
   date of service (the contract: it overrides the payer's ``fee_basis``);
2. the payer's ``fee_basis``: ``medicare_pfs`` (default for Medicare and Medicare
   Advantage) or ``percent_of_medicare:NNN`` price from the Physician Fee Schedule
   (``pricing.pfs``);
3. otherwise (``schedule`` without a row, no RVUs loaded for the year, a status the PFS
   does not pay, an unknown locality) the line keeps empty amounts and an ``info`` gap
   ``fee_not_found`` says why: never a zero.

The amount is exact until it is multiplied by the units and rounded once to the cent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from billing_engine.io.bundle import Bundle
from billing_engine.params.parameters import ParameterSet
from billing_engine.params.period import PeriodParameters
from billing_engine.pricing.fees import FeeLibrary
from billing_engine.pricing.money import CALC, MONEY, dec, round_cents
from billing_engine.pricing.pfs import ROW, as_number, pfs_amounts

if TYPE_CHECKING:
    pass


BASIS_PFS = "medicare_pfs"
BASIS_SCHEDULE = "schedule"
PERCENT_PREFIX = "percent_of_medicare:"
PFS_DEFAULT_KINDS = ("medicare", "medicare_advantage")
FEE_RULE = "FEE-1"
FEE_NOT_FOUND = "fee_not_found"
FEE_ESTIMATED = "fee_estimated"

PRICE_COLUMNS: dict[str, pl.DataType] = {
    "allowed_amount": MONEY,
    "payer_amount": MONEY,
    "patient_amount": MONEY,
    "secondary_payer_id": pl.String(),
    "secondary_amount": MONEY,
    "sequestration_amount": MONEY,
    "fee_source": pl.String(),
}


@dataclass(frozen=True)
class Priced:
    lines: pl.DataFrame  # the input lines with allowed_amount, fee_source, _fee_missing
    # and _fee_estimated
    missing: pl.DataFrame  # the lines left unpriced, with the reason in `_fee_missing`
    estimated: pl.DataFrame  # lines priced by estimate, the derivation in `_fee_estimated`


def fee_basis(payers: pl.DataFrame) -> pl.DataFrame:
    """payer_id, kind, basis (medicare_pfs/schedule) and percent (of Medicare, or null)."""
    raw = (
        pl.col("fee_basis")
        .str.strip_chars()
        .replace("", None)
        .fill_null(
            pl.when(pl.col("kind").is_in(PFS_DEFAULT_KINDS))
            .then(pl.lit(BASIS_PFS))
            .otherwise(pl.lit(BASIS_SCHEDULE))
        )
    )
    percent = raw.str.strip_prefix(PERCENT_PREFIX)
    is_percent = raw.str.starts_with(PERCENT_PREFIX)
    return payers.select(
        "payer_id",
        "kind",
        basis=pl.when(is_percent).then(pl.lit(BASIS_PFS)).otherwise(raw),
        percent=pl.when(is_percent).then(percent.cast(CALC, strict=False)),
    )


def _schedule_amounts(lines: pl.DataFrame, bundle: Bundle) -> pl.DataFrame:
    """ROW, sched_amount, sched_from: the payer's fee_schedule row in effect on the DOS."""
    schedule = bundle["fee_schedule"].select(
        "payer_id",
        "code",
        pl.col("modifier").fill_null(""),
        "effective_from",
        "effective_to",
        pl.col("amount").cast(CALC).alias("sched_amount"),
    )
    return (
        lines.select(ROW, "payer_id", "code", "_modifier", "date_of_service")
        .join(schedule, on=["payer_id", "code"], how="inner")
        .filter(
            (pl.col("modifier") == pl.col("_modifier"))
            & (pl.col("effective_from") <= pl.col("date_of_service"))
            & (
                pl.col("effective_to").is_null()
                | (pl.col("effective_to") >= pl.col("date_of_service"))
            )
        )
        .sort("effective_from")
        .group_by(ROW)
        .agg(pl.col("sched_amount").last(), pl.col("effective_from").last().alias("sched_from"))
    )


def price_lines(
    lines: pl.DataFrame,
    bundle: Bundle,
    params: ParameterSet,
    period: PeriodParameters,
    fees: FeeLibrary,
) -> Priced:
    """Add ``allowed_amount`` and ``fee_source`` to claim lines (outcome rows).

    Lines that cannot be priced keep a null amount and say why in ``_fee_missing``.
    """
    lines = lines.with_row_index(ROW).with_columns(_modifier=pl.lit(""))
    basis = fee_basis(bundle["payers"])
    frame = lines.join(basis.drop("kind"), on="payer_id", how="left")
    frame = frame.join(_schedule_amounts(lines, bundle), on=ROW, how="left")
    needs_pfs = frame.filter(pl.col("sched_amount").is_null() & (pl.col("basis") == BASIS_PFS))
    if needs_pfs.is_empty():
        pfs = pl.DataFrame(
            schema={ROW: pl.UInt32(), "pfs_unit": CALC, "pfs_source": pl.String(),
                    "pfs_missing": pl.String(), "pfs_estimate": pl.String()}
        )  # fmt: skip
    else:
        pfs = pfs_amounts(needs_pfs, bundle, fees, params, period)
    frame = frame.join(pfs, on=ROW, how="left")
    percent = pl.col("percent")
    unit = (
        pl.when(pl.col("sched_amount").is_not_null())
        .then(pl.col("sched_amount"))
        .when(percent.is_not_null())
        .then(pl.col("pfs_unit") * percent * dec("0.01"))
        .otherwise(pl.col("pfs_unit"))
    )
    allowed = round_cents(unit * pl.col("units").cast(CALC))
    source = (
        pl.when(pl.col("sched_amount").is_not_null())
        .then(
            pl.format(
                "fee_schedule {} {} from {}: {} per unit",
                pl.col("payer_id"),
                pl.col("code"),
                pl.col("sched_from").cast(pl.String),
                as_number(pl.col("sched_amount")),
            )
        )
        .when(percent.is_not_null())
        .then(pl.format("{}% of Medicare: {}", as_number(percent), pl.col("pfs_source")))
        .otherwise(pl.col("pfs_source"))
    )
    missing = (
        pl.when(pl.col("sched_amount").is_not_null())
        .then(pl.lit(None, dtype=pl.String))
        .when(pl.col("basis").is_null())
        .then(pl.format("payer {} is not in the payers table", pl.col("payer_id")))
        .when(pl.col("basis") == BASIS_PFS)
        .then(pl.col("pfs_missing"))
        .otherwise(
            pl.format(
                "no fee_schedule row of payer {} for {} on {} (fee basis: schedule)",
                pl.col("payer_id"),
                pl.col("code"),
                pl.col("date_of_service").cast(pl.String),
            )
        )
    )
    frame = frame.with_columns(
        _fee_missing=missing,
    ).with_columns(
        allowed_amount=pl.when(pl.col("_fee_missing").is_null()).then(allowed),
        fee_source=pl.when(pl.col("_fee_missing").is_null()).then(source),
        _fee_estimated=pl.when(
            pl.col("_fee_missing").is_null() & pl.col("sched_amount").is_null()
        ).then(pl.col("pfs_estimate")),
    )
    priced = frame.sort(ROW).drop(
        ROW, "_modifier", "basis", "percent", "sched_amount", "sched_from", "pfs_unit",
        "pfs_source", "pfs_missing", "pfs_estimate",
    )  # fmt: skip
    return Priced(
        priced,
        priced.filter(pl.col("_fee_missing").is_not_null()),
        priced.filter(pl.col("_fee_estimated").is_not_null()),
    )


def fee_gaps(
    missing: pl.DataFrame, outcome_columns: list[str], estimated: pl.DataFrame | None = None
) -> pl.DataFrame:
    """One ``info`` gap per unpriced line (``fee_not_found``) and per line priced by
    estimate (``fee_estimated``, no CMS file for the year); the line itself stays."""
    frames = [
        _info_gap(missing, FEE_NOT_FOUND, "_fee_missing", outcome_columns),
        _info_gap(
            estimated if estimated is not None else missing.head(0),
            FEE_ESTIMATED,
            "_fee_estimated",
            outcome_columns,
        ),
    ]
    return pl.concat(frames, how="vertical")


def _info_gap(
    frame: pl.DataFrame, reason: str, detail: str, outcome_columns: list[str]
) -> pl.DataFrame:
    return frame.with_columns(
        is_line=pl.lit(False),
        status=pl.lit("info"),
        reason=pl.lit(reason),
        detail=pl.col(detail),
        minutes_logged=pl.lit(None, dtype=pl.Int64),
        minutes_needed=pl.lit(None, dtype=pl.Int64),
        deadline=pl.lit(None, dtype=pl.Date),
        rule=pl.lit(FEE_RULE),
    ).select(outcome_columns)
