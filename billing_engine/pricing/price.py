"""Price claim lines: the allowed amount, then who pays what (FEE-1, FEE-2).

Allowed amount per unit, in this order of precedence:

1. a ``fee_schedule`` row of the line's payer for the code and modifier in effect on the
   date of service (the contract: it overrides the payer's ``fee_basis``);
2. the payer's ``fee_basis``: ``medicare_pfs`` (default for Medicare and Medicare
   Advantage) or ``percent_of_medicare:NNN`` price from the Physician Fee Schedule:
   ``[(work RVU x work GPCI) + (PE RVU x PE GPCI) + (MP RVU x MP GPCI)] x CF`` (x NNN %),
   with the facility PE RVU when the place of service is a facility one, the GPCIs of the
   billing practitioner's ``medicare_locality`` (blank = national, all 1.000) and the
   conversion factor of the date of service and the practitioner's QP status;
3. otherwise (``schedule`` without a row, no RVUs loaded for the year, a status the PFS
   does not pay, an unknown locality) the line keeps empty amounts and an ``info`` gap
   ``fee_not_found`` says why: never a zero.

The amount is exact until it is multiplied by the units and rounded once to the cent.

Shares (``split_shares``): the payer kind's coinsurance (none where the code's family
waives cost sharing), the Part B deductible only when asked, Medicare's program share
reduced by sequestration, and secondary coverage taking over the patient's share. For
every priced line ``payer + patient + secondary + sequestration = allowed``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

import polars as pl

from billing_engine.errors import ConfigError, ParameterNotVerified
from billing_engine.io.bundle import Bundle
from billing_engine.params.parameter import Parameter
from billing_engine.params.parameters import ParameterSet
from billing_engine.params.period import PeriodParameters, UsedValue
from billing_engine.pricing.fees import FeeLibrary
from billing_engine.pricing.money import CALC, MONEY, dec, exact, round_cents

if TYPE_CHECKING:
    from billing_engine.params.conflict_table import ConflictTable

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
SHARE_COLUMNS = (
    "payer_amount", "patient_amount", "secondary_payer_id", "secondary_amount",
    "sequestration_amount",
)  # fmt: skip

_ROW = "_price_row"
_NATIONAL = "national"


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


def _timeline(param: Parameter, name: str) -> pl.DataFrame:
    """A dated parameter as (start, <name>) rows plus its verified end (for join_asof)."""
    return pl.DataFrame(
        {
            "_start": [v.start for v in param.values],
            name: [Decimal(str(v.value)) for v in param.values],
        },
        schema={"_start": pl.Date(), name: CALC},
    ).with_columns(**{f"{name}_through": pl.lit(param.verified_through, dtype=pl.Date)})


def _as_of_date(
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


def _schedule_amounts(lines: pl.DataFrame, bundle: Bundle) -> pl.DataFrame:
    """_ROW, sched_amount, sched_from: the payer's fee_schedule row in effect on the DOS."""
    schedule = bundle["fee_schedule"].select(
        "payer_id",
        "code",
        pl.col("modifier").fill_null(""),
        "effective_from",
        "effective_to",
        pl.col("amount").cast(CALC).alias("sched_amount"),
    )
    return (
        lines.select(_ROW, "payer_id", "code", "_modifier", "date_of_service")
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
        .group_by(_ROW)
        .agg(pl.col("sched_amount").last(), pl.col("effective_from").last().alias("sched_from"))
    )


def _pfs_amounts(
    lines: pl.DataFrame,
    bundle: Bundle,
    fees: FeeLibrary,
    params: ParameterSet,
    period: PeriodParameters,
) -> pl.DataFrame:
    """_ROW, pfs_unit (exact $ per unit, before any percentage), pfs_source, pfs_missing."""
    practitioners = bundle["practitioners"].select(
        pl.col("practitioner_id").alias("billing_practitioner_id"),
        pl.col("qp").fill_null(False).alias("_qp"),
        pl.col("medicare_locality").str.strip_chars().replace("", None).alias("_locality"),
    )
    facility_pos = period.as_strs("pricing.facility_places_of_service")
    payable = period.as_strs("pricing.payable_statuses")
    base = lines.select(_ROW, "code", "_modifier", "date_of_service", "place_of_service",
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
        base.select(_ROW, "code", "_modifier", "_year", "_rvu_year", "date_of_service", "_qp")
        .join(rvus, on=["code", "_modifier", "_rvu_year"], how="inner")
        .filter(
            (pl.col("effective_from") <= pl.col("date_of_service"))
            | (pl.col("_rvu_year") != pl.col("_year"))
        )
        .sort((pl.col("qp") == pl.col("_qp")), "effective_from")
        .group_by(_ROW)
        .agg(
            pl.all()
            .exclude(_ROW, "code", "_modifier", "_year", "_rvu_year", "date_of_service", "_qp")
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
        base.join(rvu, on=_ROW, how="left")
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
        priced = _as_of_date(priced, "date_of_service", params.get(name), column)
        if carry:  # the carried-forward value, where no CMS file gives the year's factor
            priced = priced.join(
                _as_of_date(
                    priced.select(_ROW, "date_of_service"),
                    "date_of_service",
                    params.get(name),
                    f"{column}_carried",
                    carry=True,
                    period=period,
                ).drop("date_of_service"),
                on=_ROW,
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
        _num(pl.col("work_rvu")),
        _num(pe),
        _num(pl.col("mp_rvu")),
        pl.col("_locality").fill_null(pl.lit(_NATIONAL)),
        _num(pl.col("pw_gpci")),
        _num(pl.col("pe_gpci")),
        _num(pl.col("mp_gpci")),
        _num(cf),
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
        _num(cf),
    )
    return priced.select(
        _ROW,
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


def _num(expr: pl.Expr) -> pl.Expr:
    """A decimal as short text: trailing zeros dropped (1.0000 -> 1, 0.8100 -> 0.81)."""
    text = expr.cast(pl.String)
    return (
        pl.when(text.str.contains(r"\."))
        .then(text.str.strip_chars_end("0").str.strip_chars_end("."))
        .otherwise(text)
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
    lines = lines.with_row_index(_ROW).with_columns(_modifier=pl.lit(""))
    basis = fee_basis(bundle["payers"])
    frame = lines.join(basis.drop("kind"), on="payer_id", how="left")
    frame = frame.join(_schedule_amounts(lines, bundle), on=_ROW, how="left")
    needs_pfs = frame.filter(pl.col("sched_amount").is_null() & (pl.col("basis") == BASIS_PFS))
    if needs_pfs.is_empty():
        pfs = pl.DataFrame(
            schema={_ROW: pl.UInt32(), "pfs_unit": CALC, "pfs_source": pl.String(),
                    "pfs_missing": pl.String(), "pfs_estimate": pl.String()}
        )  # fmt: skip
    else:
        pfs = _pfs_amounts(needs_pfs, bundle, fees, params, period)
    frame = frame.join(pfs, on=_ROW, how="left")
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
                _num(pl.col("sched_amount")),
            )
        )
        .when(percent.is_not_null())
        .then(pl.format("{}% of Medicare: {}", _num(percent), pl.col("pfs_source")))
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
    priced = frame.sort(_ROW).drop(
        _ROW, "_modifier", "basis", "percent", "sched_amount", "sched_from", "pfs_unit",
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


def _cost_sharing(period: PeriodParameters) -> pl.DataFrame:
    """kind, _coins, _seq_applies, _ded_applies from the cost-sharing setting."""
    table = period["pricing.cost_sharing_by_payer_kind"]
    if not isinstance(table, Mapping):
        raise ConfigError("pricing.cost_sharing_by_payer_kind must map payer kinds to terms")
    kinds, coins, seq, ded = [], [], [], []
    for kind, terms in table.items():
        if not isinstance(terms, Mapping) or "coinsurance" not in terms:
            raise ConfigError(
                f"pricing.cost_sharing_by_payer_kind.{kind} needs coinsurance, "
                "sequestration and deductible"
            )
        rate = Decimal(str(terms["coinsurance"]))
        if not Decimal(0) <= rate <= Decimal(1):
            raise ConfigError(f"pricing.cost_sharing_by_payer_kind.{kind}: coinsurance {rate}")
        kinds.append(str(kind))
        coins.append(rate)
        seq.append(bool(terms.get("sequestration", False)))
        ded.append(bool(terms.get("deductible", False)))
    return pl.DataFrame(
        {"kind": kinds, "_coins": coins, "_seq_applies": seq, "_ded_applies": ded},
        schema={"kind": pl.String(), "_coins": CALC, "_seq_applies": pl.Boolean(),
                "_ded_applies": pl.Boolean()},
    )  # fmt: skip


def waived_families(
    params: ParameterSet, families: list[str], on: dt.date, *, carry: bool = False
) -> list[str]:
    """Families whose ``<family>.cost_sharing_waived`` parameter is true on `on` (with
    `carry`, past its verified date: its last verified value)."""
    waived = []
    for family in families:
        name = f"{family}.cost_sharing_waived"
        try:
            param = params.get(name)
            value = (param.carried(on) if carry else param.at(on)).value
        except (ConfigError, ParameterNotVerified):
            continue
        if value is True:
            waived.append(family)
    return waived


def _secondary(lines: pl.DataFrame, bundle: Bundle, kinds: list[str]) -> pl.DataFrame:
    """_ROW, secondary_payer_id: secondary coverage of an allowed kind active on the DOS."""
    payers = bundle["payers"].select("payer_id", "kind")
    coverages = (
        bundle["coverages"]
        .with_columns(pl.col("rank").fill_null(1))
        .filter(pl.col("rank") >= 2)
        .join(payers, on="payer_id", how="inner")
        .filter(pl.col("kind").is_in(kinds))
        .select("patient_id", pl.col("payer_id").alias("_secondary"), "start_date", "end_date",
                "rank")
    )  # fmt: skip
    return (
        lines.select(_ROW, "patient_id", "payer_id", "date_of_service")
        .join(coverages, on="patient_id", how="inner")
        .filter(
            (pl.col("_secondary") != pl.col("payer_id"))
            & (pl.col("start_date") <= pl.col("date_of_service"))
            & (pl.col("end_date").is_null() | (pl.col("end_date") >= pl.col("date_of_service")))
        )
        .sort("rank", "_secondary")
        .group_by(_ROW)
        .agg(pl.col("_secondary").first().alias("secondary_payer_id"))
    )


def split_shares(
    lines: pl.DataFrame,
    bundle: Bundle,
    params: ParameterSet,
    period: PeriodParameters,
    *,
    apply_deductible: bool = False,
) -> pl.DataFrame:
    """Fill payer, patient, secondary and sequestration amounts of priced lines.

    Needs ``allowed_amount``, ``payer_id``, ``patient_id``, ``family``, ``code`` and
    ``date_of_service``. The deductible runs per patient and calendar year over the
    lines given, in date-of-service order (so give every month of a range at once).
    """
    if lines.is_empty():
        return lines.with_columns(
            **{c: pl.lit(None, dtype=PRICE_COLUMNS[c]) for c in SHARE_COLUMNS}
        )
    first = lines["date_of_service"].min()
    assert isinstance(first, dt.date)
    families = lines["family"].unique().drop_nulls().to_list()
    carry = period.allow_unverified
    waived = waived_families(params, families, first, carry=carry)
    kinds = bundle["payers"].select("payer_id", "kind")
    frame = (
        lines.with_row_index(_ROW)
        .join(kinds, on="payer_id", how="left")
        .join(_cost_sharing(period), on="kind", how="left")
    )
    for name, column in (
        ("pricing.sequestration_rate", "_seq_rate"),
        ("pricing.part_b_deductible", "_deductible"),
    ):
        frame = _as_of_date(
            frame, "date_of_service", params.get(name), column, carry=carry, period=period
        )
    is_waived = pl.col("family").is_in(waived)
    allowed = exact(pl.col("allowed_amount"))
    frame = frame.with_columns(
        _coins=pl.when(is_waived).then(dec(0)).otherwise(pl.col("_coins").fill_null(dec(0))),
        _seq=pl.when(pl.col("_seq_applies").fill_null(False))
        .then(pl.col("_seq_rate"))
        .otherwise(dec(0)),
        _ded_on=pl.lit(apply_deductible)
        & pl.col("_ded_applies").fill_null(False)
        & ~is_waived
        & pl.col("allowed_amount").is_not_null(),
    )
    if frame.filter(pl.col("_seq").is_null()).height:
        raise ParameterNotVerified(
            "pricing.sequestration_rate", first, "no value for some dates of service"
        )
    counted = pl.when(pl.col("_ded_on")).then(allowed).otherwise(dec(0))
    frame = frame.sort("patient_id", "date_of_service", "code", _ROW).with_columns(
        _before=(counted.cum_sum() - counted).over(
            "patient_id", pl.col("date_of_service").dt.year()
        )
    )
    remaining = (pl.col("_deductible").fill_null(dec(0)) - pl.col("_before")).clip(
        lower_bound=dec(0)
    )
    deductible = (
        pl.when(pl.col("_ded_on")).then(pl.min_horizontal(remaining, allowed)).otherwise(dec(0))
    )
    frame = frame.with_columns(_ded=deductible)
    after = allowed - pl.col("_ded")
    program = round_cents(after * (dec(1) - pl.col("_coins"))).cast(CALC)
    frame = frame.with_columns(_program=program)
    sequestration = round_cents(pl.col("_program") * pl.col("_seq")).cast(CALC)
    frame = frame.with_columns(_sequestration=sequestration)
    owed = allowed - pl.col("_program")  # deductible + coinsurance
    frame = frame.join(
        _secondary(frame, bundle, period.as_strs("pricing.secondary_payer_kinds")),
        on=_ROW,
        how="left",
    )
    has_secondary = pl.col("secondary_payer_id").is_not_null()
    priced = pl.col("allowed_amount").is_not_null()
    frame = frame.with_columns(
        payer_amount=pl.when(priced).then(pl.col("_program") - pl.col("_sequestration")),
        patient_amount=pl.when(priced).then(pl.when(has_secondary).then(dec(0)).otherwise(owed)),
        secondary_payer_id=pl.when(priced & has_secondary).then(pl.col("secondary_payer_id")),
        secondary_amount=pl.when(priced & has_secondary).then(owed),
        sequestration_amount=pl.when(priced).then(pl.col("_sequestration")),
    ).with_columns(pl.col(c).cast(MONEY) for c in SHARE_COLUMNS if c != "secondary_payer_id")
    return frame.sort(_ROW).select(lines.columns + [c for c in SHARE_COLUMNS
                                                    if c not in lines.columns])  # fmt: skip


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
    ``normalize.monthly_place_of_service``), else the monthly default. Other gaps
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
