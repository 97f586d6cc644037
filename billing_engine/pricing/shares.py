"""Who pays what of a priced line (FEE-2): the payer kind's coinsurance (none where the
code's family waives cost sharing), the Part B deductible only when asked, Medicare's
program share reduced by sequestration, and secondary coverage taking over the
patient's share. For every priced line ``payer + patient + secondary + sequestration =
allowed``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING

import polars as pl

from billing_engine.errors import ConfigError, ParameterNotVerified
from billing_engine.intervals import active_on
from billing_engine.io.bundle import Bundle
from billing_engine.params.parameters import ParameterSet
from billing_engine.params.period import PeriodParameters
from billing_engine.pricing.allowed import PRICE_COLUMNS
from billing_engine.pricing.money import CALC, MONEY, dec, exact, round_cents
from billing_engine.pricing.pfs import ROW, as_of_date

if TYPE_CHECKING:
    pass


SHARE_COLUMNS = (
    "payer_amount", "patient_amount", "secondary_payer_id", "secondary_amount",
    "sequestration_amount",
)  # fmt: skip


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
    """ROW, secondary_payer_id: secondary coverage of an allowed kind active on the DOS."""
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
        lines.select(ROW, "patient_id", "payer_id", "date_of_service")
        .join(coverages, on="patient_id", how="inner")
        .filter((pl.col("_secondary") != pl.col("payer_id")) & active_on("date_of_service"))
        .sort("rank", "_secondary")
        .group_by(ROW)
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
        lines.with_row_index(ROW)
        .join(kinds, on="payer_id", how="left")
        .join(_cost_sharing(period), on="kind", how="left")
    )
    for name, column in (
        ("pricing.sequestration_rate", "_seq_rate"),
        ("pricing.part_b_deductible", "_deductible"),
    ):
        frame = as_of_date(
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
    frame = frame.sort("patient_id", "date_of_service", "code", ROW).with_columns(
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
        on=ROW,
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
    return frame.sort(ROW).select(lines.columns + [c for c in SHARE_COLUMNS
                                                    if c not in lines.columns])  # fmt: skip
