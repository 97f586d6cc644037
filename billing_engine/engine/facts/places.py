"""Places of service and specialties, from the practitioner, the encounters or the setting."""

from __future__ import annotations

import polars as pl

from billing_engine.engine.context import EvalContext

# Where a monthly line's place of service came from (CCM-POS), in the order tried.
POS_FROM_PRACTITIONER = "practitioner"
POS_FROM_ENCOUNTERS = "encounters"
POS_FROM_SETTING = "setting"


def _blank_to_null(expr: pl.Expr) -> pl.Expr:
    return expr.str.strip_chars().replace("", None)


def practitioner_specialties(ctx: EvalContext) -> pl.DataFrame:
    """practitioner_id -> ``specialty`` compared as one group (trimmed, lower case; blank
    is null). Free text and CMS specialty codes are compared as given, never mapped."""
    return ctx.bundle["practitioners"].select(
        "practitioner_id",
        specialty=_blank_to_null(pl.col("specialty")).str.to_lowercase(),
    )


def same_specialty(left: str, right: str) -> pl.Expr:
    """Two practitioners' specialties count as one group: equal, or either one blank (the
    conservative reading: an unknown specialty may be the same one)."""
    return pl.col(left).is_null() | pl.col(right).is_null() | (pl.col(left) == pl.col(right))


def practitioner_places_of_service(ctx: EvalContext, id_column: str, name: str) -> pl.DataFrame:
    """`id_column` -> `name`: the practitioner's own ``place_of_service`` (blank is null)."""
    return ctx.bundle["practitioners"].select(
        pl.col("practitioner_id").alias(id_column),
        _blank_to_null(pl.col("place_of_service")).alias(name),
    )


def with_visit_place_of_service(ctx: EvalContext, frame: pl.DataFrame) -> pl.DataFrame:
    """A visit's ``place_of_service``: its own, else its billing practitioner's
    ``place_of_service``, else ``common.monthly_place_of_service``."""
    own = practitioner_places_of_service(ctx, "billing_practitioner_id", "_bp_pos")
    return (
        frame.join(own, on="billing_practitioner_id", how="left")
        .with_columns(
            place_of_service=pl.coalesce(
                _blank_to_null(pl.col("place_of_service")),
                "_bp_pos",
                pl.lit(ctx.params.as_str("common.monthly_place_of_service")),
            )
        )
        .drop("_bp_pos")
    )


def monthly_place_of_service(
    ctx: EvalContext, facts: pl.DataFrame, counted: str, name: str = "place_of_service"
) -> pl.DataFrame:
    """The place of service of a monthly line (CCM-POS: where the billing practitioner
    would see the patient face to face), for every row of `facts` at once.

    Tried in order: the billing practitioner's ``place_of_service``; else the one place
    of service that every encounter in the list column `counted` (the ids whose minutes
    count toward the line) names, blanks ignored; else ``common.monthly_place_of_service``.
    Adds `name`, ``<name>_source`` (``POS_FROM_*``) and ``<name>_evidence``
    (``practitioner:<id>`` when the practitioner's row gave it, else null).
    """
    setting = ctx.params.as_str("common.monthly_place_of_service")
    indexed = facts.drop(
        [c for c in (name, f"{name}_source", f"{name}_evidence") if c in facts.columns]
    ).with_row_index("_pos_row")
    # only the counted encounters' places are trimmed (not every encounter's)
    encounter_pos = ctx.bundle["encounters"].lazy().select("encounter_id", "place_of_service")
    agreed = (
        indexed.lazy()
        .select("_pos_row", pl.col(counted).alias("encounter_id"))
        .explode("encounter_id")
        .join(encounter_pos, on="encounter_id", how="inner")
        .select("_pos_row", _pos=_blank_to_null(pl.col("place_of_service")))
        .filter(pl.col("_pos").is_not_null())
        .group_by("_pos_row")
        .agg(_places=pl.col("_pos").unique())
        .filter(pl.col("_places").list.len() == 1)
        .select("_pos_row", _encounters_pos=pl.col("_places").list.first())
        .collect()
    )
    own = practitioner_places_of_service(ctx, "billing_practitioner_id", "_bp_pos")
    from_bp = pl.col("_bp_pos").is_not_null()
    return (
        indexed.join(agreed, on="_pos_row", how="left")
        .join(own, on="billing_practitioner_id", how="left")
        .sort("_pos_row")
        .with_columns(
            pl.coalesce("_bp_pos", "_encounters_pos", pl.lit(setting)).alias(name),
            pl.when(from_bp)
            .then(pl.lit(POS_FROM_PRACTITIONER))
            .when(pl.col("_encounters_pos").is_not_null())
            .then(pl.lit(POS_FROM_ENCOUNTERS))
            .otherwise(pl.lit(POS_FROM_SETTING))
            .alias(f"{name}_source"),
            pl.when(from_bp)
            .then(pl.concat_str(pl.lit("practitioner:"), pl.col("billing_practitioner_id")))
            .alias(f"{name}_evidence"),
        )
        .drop("_pos_row", "_bp_pos", "_encounters_pos")
    )
