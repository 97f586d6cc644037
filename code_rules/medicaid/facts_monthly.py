"""Facts of the monthly case-management codes (states whose rules bill a program per
month): per patient x program x billing practitioner x payer, the month's counted
minutes and contacts, the day the state's monthly minimum was met and the claims of the
monthly code this month.
"""

from __future__ import annotations

import polars as pl

from billing_engine.engine import facts as nz
from billing_engine.engine.context import EvalContext
from code_rules.medicaid.facts_common import (
    EMPTY_IDS,
    case_claims,
    with_diagnoses,
    with_monthly_code,
    with_t_code_pays,
)
from code_rules.medicaid.facts_days import day_facts
from code_rules.medicaid.state_table import MONTHLY, case_codes

MONTH_KEYS = ["patient_id", "program", "billing_practitioner_id", "payer_id"]


def monthly_facts(ctx: EvalContext) -> pl.DataFrame:
    """Per patient x program x billing practitioner x payer of the monthly states: the
    month's counted minutes and contacts, and the day the monthly minimum was met."""
    keys = MONTH_KEYS
    days = day_facts(ctx).filter(pl.col("unit") == MONTHLY).sort(*keys, "date")
    met = (pl.col("contacts").cum_sum().over(keys) >= pl.col("monthly_min_contacts")) & (
        pl.col("counted_minutes").cum_sum().over(keys) >= pl.col("monthly_min_minutes")
    )
    firsts = [
        "payer_kind",
        "payer_state",
        "state_key",
        "unit_rule",
        "billing_credentials",
        "monthly_min_contacts",
        "monthly_min_minutes",
        "bp_credential",
        "bp_npi",
    ]
    facts = (
        days.with_columns(_met=met)
        .group_by(keys, maintain_order=True)
        .agg(
            *[pl.col(c).first() for c in firsts],
            minutes_logged=pl.col("minutes_logged").sum(),
            counted_minutes=pl.col("counted_minutes").sum(),
            dual_minutes=pl.col("dual_minutes").sum(),
            contacts=pl.col("contacts").sum(),
            shared_counted_minutes=pl.col("shared_counted_minutes").sum(),
            eligible_raw_minutes=pl.col("eligible_raw_minutes").sum(),
            eligible_ids=pl.col("eligible_ids").explode().drop_nulls().sort(),
            ineligible_credentials=pl.col("ineligible_credentials")
            .explode()
            .drop_nulls()
            .unique()
            .sort(),
            met_date=pl.col("date").filter(pl.col("_met")).first(),
            first_date=pl.col("date").first(),
        )
    )
    facts = with_monthly_code(ctx, facts)
    claims = case_claims(ctx)
    billed = (
        facts.select("patient_id", "billing_practitioner_id", "code", "bp_npi")
        .join(claims, on=["patient_id", "code"], how="inner")
        .group_by("patient_id", "billing_practitioner_id", "code")
        .agg(
            own_claims=(pl.col("billing_npi") == pl.col("bp_npi")).any(),
            other_claims=pl.col("billing_npi")
            .filter(pl.col("billing_npi") != pl.col("bp_npi").fill_null(""))
            .unique()
            .sort(),
        )
    )
    facts = facts.join(
        billed, on=["patient_id", "billing_practitioner_id", "code"], how="left", nulls_equal=True
    ).with_columns(
        pl.col("own_claims").fill_null(False),
        pl.col("other_claims").fill_null(EMPTY_IDS),
        reference_date=pl.coalesce("met_date", "first_date"),
    )
    facts = with_t_code_pays(ctx, facts, case_codes(ctx), "reference_date")
    return nz.monthly_place_of_service(ctx, with_diagnoses(ctx, facts), "eligible_ids")
