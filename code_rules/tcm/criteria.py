"""TCM criteria: what one code of one discharge x practitioner needs, in the order their
reasons take precedence (the auditor's page; the joins are in facts*.py)."""

from __future__ import annotations

import polars as pl

from billing_engine.engine import facts as nz
from billing_engine.engine import primitives as pr
from billing_engine.engine.context import EvalContext
from billing_engine.engine.kernel import STATUS_BLOCKED, STATUS_SHORT, Criterion
from code_rules.parameters_typed import typed
from code_rules.tcm.codes import (
    BILL_AND_FLAG,
    COST_SHARING_RULE_IDS,
    NURSING_FACILITY,
    Alternative,
)


def destinations(ctx: EvalContext) -> list[str]:
    """Community dispositions (TCM-E2), the nursing facility per the setting."""
    tcm = typed(ctx.params).tcm
    community = tcm.community_destinations
    if tcm.nursing_facility_is_community:
        community = [*community, NURSING_FACILITY]
    return community


def alive(ctx: EvalContext) -> Criterion:
    tcm = typed(ctx.params).tcm
    flag = tcm.death_policy == BILL_AND_FLAG
    after_visit = pl.col("f2f_date").is_not_null() & (pl.col("death_date") > pl.col("f2f_date"))
    return Criterion(
        "alive_through_period",
        f"the patient did not die before the {tcm.period_days}-day period ended",
        ~pl.col("died_in_period") | (pl.lit(flag) & after_visit),
        "patient_died",
        ("TCM-D2", "BIZ-4"),
        detail=pl.format(
            "the patient died on {}, within the period ending {}: report the visit as an E/M",
            pl.col("death_date"),
            pl.col("period_end"),
        ),
        shows=("death_date", "period_end"),
    )


def contact(ctx: EvalContext) -> Criterion:
    window = typed(ctx.params).tcm.contact
    n = window.business_days
    attempts = window.min_failed_attempts
    open_ = pl.lit(ctx.as_of) <= pl.col("contact_deadline")
    return Criterion(
        "interactive_contact",
        f"interactive contact within {n} business days after the discharge "
        f"(or {attempts} documented attempts)",
        pl.col("contact_met"),
        "contact_late",
        ("TCM-C1", "BIZ-1", "BIZ-2"),
        status=pl.when(open_).then(pl.lit(STATUS_SHORT)).otherwise(pl.lit(STATUS_BLOCKED)),
        detail=pl.format(
            "no interactive contact by {} ({} business days after the {} discharge); "
            "{} failed attempt(s), {} needed",
            pl.col("contact_deadline"),
            pl.lit(n),
            pl.col("discharge_date"),
            pl.col("attempts_failed"),
            pl.lit(attempts),
        ),
        deadline=pl.when(open_).then(pl.col("contact_deadline")),
        shows=("contact_deadline", "contacts_completed", "attempts_failed", "contact_ids"),
    )


def criteria(ctx: EvalContext, alt: Alternative) -> list[Criterion]:
    """Criteria of one code, in the order their reasons take precedence."""
    rp = typed(ctx.params)
    code = alt.code.code
    billers = rp.common.billing_credentials
    level = alt.code.min_mdm
    days = rp.tcm.period_days
    last = pl.col(alt.last_date)
    last_open = pl.min_horizontal(last, pl.col("window_end"))
    within = alt.code.visit_within_days
    no_visit = pl.col("f2f_date").is_null()
    return [
        Criterion(
            "discharge_setting",
            "discharged from an inpatient, SNF, rehabilitation, observation or "
            "partial-hospitalization setting",
            pl.col("setting").is_in(rp.tcm.qualifying_settings),
            "setting_not_qualifying",
            ("TCM-E1",),
            detail=pl.format("discharged from {}, not a TCM setting", pl.col("setting")),
            shows=("discharge_id", "setting"),
        ),
        Criterion(
            "community_destination",
            "discharged to a community setting (home, domiciliary, assisted living, "
            "nursing facility per the setting)",
            pl.col("disposition").is_in(destinations(ctx)),
            "setting_not_qualifying",
            ("TCM-E2",),
            detail=pl.format("discharged to {}, not a community setting", pl.col("disposition")),
            shows=("disposition",),
        ),
        alive(ctx),
        pr.billing_practitioner_qualified_criterion(
            ("TCM-S1",),
            billers,
            "the face-to-face visit is billed under a physician or NPP",
            waived=no_visit,
            shows=("billing_practitioner_id", "bp_credential"),
        ),
        pr.coverage_criterion(COST_SHARING_RULE_IDS, ("reference_date", "payer_id")),
        pr.payer_pays_criterion(code, COST_SHARING_RULE_IDS),
        Criterion(
            "not_billed_by_other",
            f"no other practitioner billed TCM for this {days}-day period",
            (pl.col("other_claims").list.len() == 0) & (pl.col("other_tcm_bps").list.len() == 0),
            "billed_by_other_practitioner",
            ("TCM-P1",),
            detail=pl.when(pl.col("other_claims").list.len() > 0)
            .then(
                pl.format(
                    "TCM in this period billed under another NPI (claims history): {}",
                    pl.col("other_claims").list.join(", "),
                )
            )
            .otherwise(
                pl.format(
                    "TCM for this period is billed by practitioner {}",
                    pl.col("other_tcm_bps").list.join(", "),
                )
            ),
            shows=("other_claims", "other_tcm_bps", "earlier_tcm"),
        ),
        pr.not_already_billed_criterion(
            (pl.col("own_claims").list.len() == 0) & ~pl.col("own_tcm"),
            f"no TCM already billed for this {days}-day period (claims history, or an earlier "
            "discharge's TCM: a readmission does not start another)",
            ("TCM-P1",),
            detail=pl.when(pl.col("own_claims").list.len() > 0)
            .then(
                pl.format(
                    "TCM in this period already billed (claims history): {}",
                    pl.col("own_claims").list.join(", "),
                )
            )
            .otherwise(
                pl.format(
                    f"inside the {days}-day period of discharge {{}}, whose TCM is billed: "
                    "a readmission does not start another",
                    pl.col("earlier_tcm").list.join(", "),
                )
            ),
            shows=("own_claims", "earlier_tcm"),
        ),
        contact(ctx),
        Criterion(
            "visit_not_pending",
            "the face-to-face visit took place (or its window has closed)",
            ~no_visit | (pl.lit(ctx.as_of) > last_open),
            "visit_pending",
            ("TCM-F1", "BIZ-3"),
            status=pl.lit(STATUS_SHORT),
            detail=pl.format("face-to-face visit for {} due by {}", pl.lit(code), last_open),
            deadline=last_open,
            shows=("f2f_id", "f2f_date"),
        ),
        Criterion(
            "visit_in_window",
            f"face-to-face visit within {within} calendar days of the discharge",
            pl.col("f2f_date") <= last,
            "visit_late",
            ("TCM-F1", "BIZ-3"),
            detail=pl.when(no_visit)
            .then(pl.format("no face-to-face visit by {}", last_open))
            .otherwise(
                pl.format(
                    "face-to-face visit on {} (day {}); {} needs it by {}",
                    pl.col("f2f_date"),
                    pl.col("f2f_day"),
                    pl.lit(code),
                    last,
                )
            ),
            shows=("f2f_id", "f2f_date", "f2f_day", alt.last_date),
        ),
        Criterion(
            "medication_reconciliation",
            "medication reconciliation no later than the face-to-face visit",
            pl.col("med_rec_date") <= pl.col("f2f_date"),
            "medication_reconciliation_late",
            ("TCM-F1",),
            detail=pl.when(pl.col("med_rec_date").is_null())
            .then(pl.lit("no medication reconciliation documented since the discharge"))
            .otherwise(
                pl.format(
                    "medication reconciliation on {}, after the face-to-face visit on {}",
                    pl.col("med_rec_date"),
                    pl.col("f2f_date"),
                )
            ),
            shows=("med_rec_id", "med_rec_date"),
        ),
        Criterion(
            "not_on_discharge_management_day",
            "the face-to-face visit is not on the day of the practitioner's discharge-day "
            "management",
            ~pl.col("f2f_on_ddm"),
            "same_day_service",
            ("TCM-X1",),
            detail=pl.format(
                "discharge-day management billed by the practitioner on {}", pl.col("f2f_date")
            ),
            shows=("f2f_date", "f2f_on_ddm"),
        ),
        Criterion(
            "mdm",
            f"{level} or higher medical decision making from the discharge through the visit",
            pl.col("mdm_rank") >= nz.mdm_rank_of(ctx, level),
            "mdm_insufficient",
            ("TCM-M1",),
            detail=pl.format(
                "highest MDM from the discharge through the visit: {}; {} needs {}",
                pl.col("mdm_level").fill_null("none"),
                pl.lit(code),
                pl.lit(level),
            ),
            shows=("mdm_level", "mdm_ids"),
        ),
    ]
