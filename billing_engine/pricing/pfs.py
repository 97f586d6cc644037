"""The Physician Fee Schedule amount of a line:
``[(work RVU x work GPCI) + (PE RVU x PE GPCI) + (MP RVU x MP GPCI)] x CF`` (x NNN %),
with the facility PE RVU when the place of service is a facility one, the GPCIs of the
billing practitioner's ``medicare_locality`` (blank = national, all 1.000) and the
conversion factor of the date of service and the practitioner's QP status.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import polars as pl

from billing_engine.io.bundle import Bundle
from billing_engine.params.parameter import Parameter
from billing_engine.params.parameters import ParameterSet
from billing_engine.params.period import PeriodParameters, UsedValue
from billing_engine.pricing.fees import FeeLibrary
from billing_engine.pricing.money import CALC, dec, exact

if TYPE_CHECKING:
    pass

ROW = "_price_row"  # each line's position while it is priced
NATIONAL = "national"


def _timeline(param: Parameter, name: str) -> pl.DataFrame:
    """A dated parameter as (start, <name>) rows plus its verified end (for join_asof)."""
    return pl.DataFrame(
        {
            "_start": [v.start for v in param.values],
            name: [Decimal(str(v.value)) for v in param.values],
        },
        schema={"_start": pl.Date(), name: CALC},
    ).with_columns(**{f"{name}_through": pl.lit(param.verified_through, dtype=pl.Date)})


def as_of_date(
    frame: pl.DataFrame,
    date_col: str,
    param: Parameter,
    name: str,
    *,
    carry: bool = False,
    period: PeriodParameters | None = None,
) -> pl.DataFrame:
    """`frame` with column `name`: the parameter's value on `date_col` (null outside it).

    With `carry` (``--allow-unverified``) a date past the verified date keeps the last
    value, and `period` records the parameter as used unverified.
    """
    timeline = _timeline(param, name)
    joined = frame.sort(date_col).join_asof(
        timeline, left_on=date_col, right_on="_start", strategy="backward"
    )
    inside = pl.col(date_col) <= pl.col(f"{name}_through")
    if carry:
        if period is not None and not frame.is_empty():
            period.note_unverified(param.name, frame[date_col].max())
        return joined.drop("_start", f"{name}_through")
    return joined.with_columns(pl.when(inside).then(pl.col(name))).drop("_start", f"{name}_through")


def pfs_amounts(
    lines: pl.DataFrame,
    bundle: Bundle,
    fees: FeeLibrary,
    params: ParameterSet,
    period: PeriodParameters,
) -> pl.DataFrame:
    """ROW, pfs_unit (exact $ per unit, before any percentage), pfs_source, pfs_missing."""
    practitioners = bundle["practitioners"].select(
        pl.col("practitioner_id").alias("billing_practitioner_id"),
        pl.col("qp").fill_null(False).alias("_qp"),
        pl.col("medicare_locality").str.strip_chars().replace("", None).alias("_locality"),
    )
    facility_pos = period.as_strs("pricing.facility_places_of_service")
    payable = period.as_strs("pricing.payable_statuses")
    base = lines.select(ROW, "code", "_modifier", "date_of_service", "place_of_service",
                        "billing_practitioner_id").join(
        practitioners, on="billing_practitioner_id", how="left"
    ).with_columns(
        pl.col("_qp").fill_null(False),
        _year=pl.col("date_of_service").dt.year().cast(pl.Int32),
        _facility=pl.col("place_of_service").is_in(facility_pos).fill_null(False),
    )  # fmt: skip
    # a year without any RVU (GPCI) release is priced from the latest one: an estimate
    rvu_years = fees.rvus["year"].unique().to_list()
    gpci_years = fees.gpcis["year"].unique().to_list()
    base = base.with_columns(
        _rvu_year=_data_year(rvu_years),
        _gpci_year=_data_year(gpci_years),
    )
    rvus = fees.rvus.rename({"hcpcs": "code", "modifier": "_modifier", "year": "_rvu_year"})
    rvu = (
        base.select(ROW, "code", "_modifier", "_year", "_rvu_year", "date_of_service", "_qp")
        .join(rvus, on=["code", "_modifier", "_rvu_year"], how="inner")
        .filter(
            (pl.col("effective_from") <= pl.col("date_of_service"))
            | (pl.col("_rvu_year") != pl.col("_year"))
        )
        .sort((pl.col("qp") == pl.col("_qp")), "effective_from")
        .group_by(ROW)
        .agg(
            pl.all()
            .exclude(ROW, "code", "_modifier", "_year", "_rvu_year", "date_of_service", "_qp")
            .last()
        )
    )
    gpcis = fees.gpcis.select(
        pl.col("year").alias("_gpci_year"),
        pl.col("locality").alias("_locality"),
        "pw_gpci",
        "pe_gpci",
        "mp_gpci",
        pl.col("release").alias("_gpci_release"),
    )
    priced = (
        base.join(rvu, on=ROW, how="left")
        .join(gpcis, on=["_gpci_year", "_locality"], how="left")
        .with_columns(
            pl.when(pl.col("_locality").is_null())
            .then(dec(1))
            .otherwise(pl.col(c).cast(CALC))
            .alias(c)
            for c in ("pw_gpci", "pe_gpci", "mp_gpci")
        )
    )
    carry = period.allow_unverified
    for name, column in (
        ("pricing.conversion_factor", "_cf"),
        ("pricing.conversion_factor_qp", "_cf_qp"),
    ):
        priced = as_of_date(priced, "date_of_service", params.get(name), column)
        if carry:  # the carried-forward value, where no CMS file gives the year's factor
            priced = priced.join(
                as_of_date(
                    priced.select(ROW, "date_of_service"),
                    "date_of_service",
                    params.get(name),
                    f"{column}_carried",
                    carry=True,
                    period=period,
                ).drop("date_of_service"),
                on=ROW,
                how="left",
            )
        else:
            priced = priced.with_columns(pl.lit(None, dtype=CALC).alias(f"{column}_carried"))
    floor_param = params.get("pricing.work_gpci_floor")
    priced = _floor_timeline(priced, floor_param, period)
    estimated = pl.col("_rvu_year") != pl.col("_year")
    gpci_estimated = pl.col("_locality").is_not_null() & (pl.col("_gpci_year") != pl.col("_year"))
    is_qp = pl.col("_qp")
    verified_cf = pl.when(is_qp).then(pl.col("_cf_qp")).otherwise(pl.col("_cf"))
    carried_cf = pl.when(is_qp).then(pl.col("_cf_qp_carried")).otherwise(pl.col("_cf_carried"))
    file_cf = pl.col("conv_factor").cast(CALC)
    # the year's parameter value; past it the year's own CMS file; for an estimate the
    # carried-forward value (--allow-unverified) or else the latest file's factor
    cf = (
        pl.when(verified_cf.is_not_null())
        .then(verified_cf)
        .when(~estimated)
        .then(file_cf)
        .otherwise(pl.coalesce(carried_cf, file_cf))
    )
    cf_origin = (
        pl.when(verified_cf.is_not_null())
        .then(pl.format("the {} conversion factor", pl.col("_year").cast(pl.String)))
        .when(~estimated)
        .then(pl.format("the CONV FACTOR of {}", pl.col("release")))
        .when(carried_cf.is_not_null())
        .then(pl.lit("the last verified conversion factor, carried forward"))
        .otherwise(pl.format("the CONV FACTOR of {}", pl.col("release")))
    )
    floor = pl.col("_work_floor")
    pw = (
        pl.when(floor.is_not_null() & (pl.col("pw_gpci") < floor))
        .then(floor)
        .otherwise(pl.col("pw_gpci"))
    )
    priced = priced.with_columns(pw_gpci=pw)
    pe = pl.when(pl.col("_facility")).then(pl.col("f_pe_rvu")).otherwise(pl.col("nf_pe_rvu"))
    rvu_total = (
        exact(pl.col("work_rvu")) * pl.col("pw_gpci")
        + exact(pe) * pl.col("pe_gpci")
        + exact(pl.col("mp_rvu")) * pl.col("mp_gpci")
    )
    year_text = pl.col("_year").cast(pl.String)
    missing = (
        pl.when(pl.col("status").is_null())
        .then(pl.format("no {} PFS relative values loaded for {}", year_text, pl.col("code")))
        .when(~pl.col("status").is_in(payable))
        .then(
            pl.format(
                "PFS status {} for {} in {}: not paid under the fee schedule",
                pl.col("status"),
                pl.col("code"),
                year_text,
            )
        )
        .when(pl.col("_locality").is_not_null() & pl.col("pw_gpci").is_null())
        .then(
            pl.format(
                "locality {} (billing practitioner {}) is not in the {} GPCI file",
                pl.col("_locality"),
                pl.col("billing_practitioner_id"),
                year_text,
            )
        )
        .when(pe.is_null())
        .then(
            pl.format(
                "no {} PE RVU for {} in {}",
                pl.when(pl.col("_facility"))
                .then(pl.lit("facility"))
                .otherwise(pl.lit("non-facility")),
                pl.col("code"),
                year_text,
            )
        )
        .when(cf.is_null())
        .then(pl.format("no conversion factor for {}", pl.col("date_of_service").cast(pl.String)))
    )
    source = pl.format(
        "PFS {}{} {} RVU {}/{}/{} x GPCI {} {}/{}/{} x CF {}{} [{}]",
        year_text,
        pl.when(estimated | gpci_estimated)
        .then(
            pl.format(
                " estimate (no {} CMS file: {} RVUs, {} GPCIs)",
                year_text,
                pl.col("_rvu_year").cast(pl.String),
                pl.when(pl.col("_locality").is_null())
                .then(pl.lit("national"))
                .otherwise(pl.col("_gpci_year").cast(pl.String)),
            )
        )
        .otherwise(pl.lit("")),
        pl.when(pl.col("_facility")).then(pl.lit("facility")).otherwise(pl.lit("non-facility")),
        as_number(pl.col("work_rvu")),
        as_number(pe),
        as_number(pl.col("mp_rvu")),
        pl.col("_locality").fill_null(pl.lit(NATIONAL)),
        as_number(pl.col("pw_gpci")),
        as_number(pl.col("pe_gpci")),
        as_number(pl.col("mp_gpci")),
        as_number(cf),
        pl.when(pl.col("_qp")).then(pl.lit(" (QP)")).otherwise(pl.lit("")),
        pl.col("release"),
    )
    estimate = pl.format(
        "no {} CMS fee file: estimated from the {} RVUs of {}{} x {} ({})",
        year_text,
        pl.col("_rvu_year").cast(pl.String),
        pl.col("release"),
        pl.when(gpci_estimated)
        .then(pl.format(", the {} GPCIs of {}", pl.col("_gpci_year"), pl.col("_gpci_release")))
        .otherwise(pl.lit("")),
        cf_origin,
        as_number(cf),
    )
    return priced.select(
        ROW,
        pfs_unit=pl.when(missing.is_null()).then(rvu_total * cf),
        pfs_source=pl.when(missing.is_null()).then(source),
        pfs_missing=missing,
        pfs_estimate=pl.when(missing.is_null() & (estimated | gpci_estimated)).then(estimate),
    )


def _data_year(years: list[int]) -> pl.Expr:
    """The year whose fee data prices a line: its own, else the latest loaded (or null)."""
    year = pl.col("_year")
    if not years:
        return pl.lit(None, dtype=pl.Int32)
    return (
        pl.when(year.is_in(years)).then(year).otherwise(pl.lit(max(years), dtype=pl.Int32))
    ).cast(pl.Int32)


def _floor_timeline(
    frame: pl.DataFrame, param: Parameter, period: PeriodParameters
) -> pl.DataFrame:
    """`frame` with `_work_floor`: the work GPCI floor on the date of service (or null).

    A settings override (``pricing.work_gpci_floor``) replaces it for the whole run;
    null or 0 means no floor.
    """
    if param.name in period.overrides:
        raw = period.overrides[param.name]
        value = None if raw in (None, "", 0, "0") else Decimal(str(raw))
        period.used[param.name] = UsedValue(param.name, raw, (), True)
        return frame.with_columns(_work_floor=pl.lit(value, dtype=CALC))
    timeline = pl.DataFrame(
        {
            "_start": [v.start for v in param.values],
            "_work_floor": [
                None if v.value in (None, "", 0, "0") else Decimal(str(v.value))
                for v in param.values
            ],
        },
        schema={"_start": pl.Date(), "_work_floor": CALC},
    )
    joined = frame.sort("date_of_service").join_asof(
        timeline, left_on="date_of_service", right_on="_start", strategy="backward"
    )
    past = pl.col("date_of_service") > param.verified_through
    if period.allow_unverified:
        period.note_unverified(param.name, frame["date_of_service"].max())
    else:
        joined = joined.with_columns(
            _work_floor=pl.when(~past).then(pl.col("_work_floor"))  # unverified: as published
        )
    return joined.drop("_start")


def as_number(expr: pl.Expr) -> pl.Expr:
    """A decimal as short text: trailing zeros dropped (1.0000 -> 1, 0.8100 -> 0.81)."""
    text = expr.cast(pl.String)
    return (
        pl.when(text.str.contains(r"\."))
        .then(text.str.strip_chars_end("0").str.strip_chars_end("."))
        .otherwise(text)
    )
