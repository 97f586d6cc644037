"""Transitional care management: 99495 (moderate MDM, visit within 14 days) and 99496
(high MDM, visit within 7 days).

Every code, window and list comes from ``parameters.yaml`` beside this file; the
requirements in plain words are in ``README.md``. One rule set, ``tcm.discharge``: one
candidate per discharge x billing practitioner.

- The practitioners of a discharge are those whose face-to-face visit (an office visit
  billed under them, else performed by them) falls in the discharge's 30-day period,
  each with their first such visit (a visit on a discharge-day-management date of the
  same practitioner only when there is no other). A discharge without a visit yet has
  one candidate: the practitioner its contacts are billed under (or none).
- A visit belongs to the latest discharge on or before it: a discharge's visit window
  ends the day before the next qualifying discharge of the patient (a readmission).
- Both codes of one discharge have the period discharge date .. discharge + 29, so the
  precedence table (code_rules/conflicts.yaml) settles high over moderate and one
  practitioner per period.
- One TCM per 30 days (TCM-P1): a discharge inside the period of an earlier discharge
  whose TCM the engine bills (whatever the month of its visit), or whose period holds a
  TCM claim of claims history, does not start a second TCM.
- The month evaluated shows the discharges whose face-to-face visit falls in it, and,
  while no visit is known, those whose visit window overlaps it (``visit_pending``
  until the window closes, then ``visit_late``). Encounters dated after
  max(as-of, month end) are not known yet.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl

from billing_engine.calendar import add_business_days_expr, federal_holidays
from billing_engine.engine import facts as nz
from billing_engine.engine.context import EvalContext
from billing_engine.engine.family import (
    RuleSetResult,
    coverage_criterion,
    evidence_list,
    payer_pays_criterion,
    run_rule_set,
)
from billing_engine.engine.kernel import (
    STATUS_BLOCKED,
    STATUS_INFO,
    STATUS_SHORT,
    CodeRule,
    Criterion,
    line_column,
)

FAMILY = "tcm"
HIGH, MODERATE = "high", "moderate"
ALTERNATIVES = (HIGH, MODERATE)  # most specific first
CONTACT_KIND = "tcm_contact"
FAILED = "attempt_failed"
DAY = pl.duration(days=1)
RULE_IDS = (
    "TCM-E1",
    "TCM-E2",
    "TCM-C1",
    "TCM-F1",
    "TCM-M1",
    "TCM-P1",
    "TCM-D1",
    "TCM-D2",
    "TCM-X1",
    "TCM-S1",
    "BIZ-1",
    "BIZ-2",
    "BIZ-3",
    "BIZ-4",
)
SHARED_PARAMETERS = (
    "tcm.period_days",
    "tcm.qualifying_settings",
    "tcm.community_destinations",
    "tcm.nursing_facility_is_community",
    "tcm.contact.business_days",
    "tcm.contact.min_failed_attempts",
    "tcm.contact.day_counting",
    "tcm.contact.holidays",
    "tcm.visit.day_counting",
    "tcm.discharge_day_management_codes",
    "tcm.death_policy",
)


def _empty_list() -> pl.Expr:
    return pl.lit([], dtype=pl.List(pl.String))


def horizon(ctx: EvalContext) -> dt.date:
    """The last date whose encounters are known: max(as-of, the month's end)."""
    return max(ctx.as_of, ctx.end)


def family_codes(ctx: EvalContext) -> list[str]:
    return [ctx.params.as_str(f"tcm.{alt}.code") for alt in ALTERNATIVES]


def _holidays(ctx: EvalContext, discharges: pl.DataFrame) -> tuple[dt.date, ...]:
    """Non-business days besides weekends, per the setting (BIZ-2)."""
    choice = ctx.params.as_str("tcm.contact.holidays")
    if choice == "none" or discharges.is_empty():
        return ()
    years = pl.col("discharge_date").dt.year()
    first, last = discharges.select(years.min().alias("first"), years.max() + 1).row(0)
    return federal_holidays(int(first), int(last), observed=choice == "federal_observed")


def _destinations(ctx: EvalContext) -> list[str]:
    p = ctx.params
    destinations = p.as_strs("tcm.community_destinations")
    if p.as_bool("tcm.nursing_facility_is_community"):
        destinations = [*destinations, "nursing_facility"]
    return destinations


def _encounters(ctx: EvalContext) -> pl.DataFrame:
    """Encounters known by the horizon; ``enc_bp`` = billing practitioner else performer."""
    return (
        ctx.bundle["encounters"]
        .filter(pl.col("date") <= horizon(ctx))
        .with_columns(
            enc_bp=pl.coalesce("billing_practitioner_id", "performer_id"),
            failed=(pl.col("outcome") == FAILED).fill_null(False),
        )
    )


def discharge_facts(ctx: EvalContext) -> pl.DataFrame:
    """Every discharge known by the horizon with its period, windows and deadlines."""
    p = ctx.params
    period_days = p.as_int("tcm.period_days")
    settings = p.as_strs("tcm.qualifying_settings")
    all_discharges = ctx.bundle["discharges"].filter(pl.col("discharge_date") <= horizon(ctx))
    qualifying = all_discharges.filter(pl.col("setting").is_in(settings)).select(
        "patient_id", next_discharge=pl.col("discharge_date")
    )
    following = (
        all_discharges.select("discharge_id", "patient_id", "discharge_date")
        .join(qualifying, on="patient_id", how="inner")
        .filter(pl.col("next_discharge") > pl.col("discharge_date"))
        .group_by("discharge_id")
        .agg(pl.col("next_discharge").min())
    )
    frame = all_discharges.join(following, on="discharge_id", how="left").with_columns(
        period_end=pl.col("discharge_date") + pl.duration(days=period_days - 1)
    )
    frame = frame.with_columns(
        window_end=pl.min_horizontal("period_end", pl.col("next_discharge") - DAY)
    )
    shift = 1 if p.as_str("tcm.visit.day_counting") == "discharge_day_is_day_one" else 0
    for alt in ALTERNATIVES:
        within = p.as_int(f"tcm.{alt}.visit_within_days") - shift
        frame = frame.with_columns(
            (pl.col("discharge_date") + pl.duration(days=within)).alias(f"last_{alt}_date")
        )
    holidays = _holidays(ctx, frame)
    n = p.as_int("tcm.contact.business_days")
    deadline = add_business_days_expr(pl.col("discharge_date"), n, holidays)
    if p.as_str("tcm.contact.day_counting") == "discharge_day_is_day_one":
        deadline = (
            pl.when(pl.col("discharge_date").dt.is_business_day(holidays=list(holidays)))
            .then(add_business_days_expr(pl.col("discharge_date"), n - 1, holidays))
            .otherwise(deadline)
        )
    return frame.with_columns(contact_deadline=deadline)


def _contacts(ctx: EvalContext, discharges: pl.DataFrame, enc: pl.DataFrame) -> pl.DataFrame:
    """Per discharge: timely contacts and failed attempts (TCM-C1, BIZ-1), and the
    practitioner the discharge's contacts are billed under."""
    p = ctx.params
    billers = p.as_strs("common.billing_credentials")
    staff = p.as_strs("common.clinical_staff_credentials")
    contacts = nz.with_practitioner(
        ctx, enc.filter(pl.col("kind") == CONTACT_KIND), "performer_id", "performer"
    ).filter(pl.col("performer_credential").is_in([*billers, *staff]))
    joined = (
        discharges.select("discharge_id", "patient_id", "discharge_date", "window_end")
        .join(
            contacts.select(
                "patient_id",
                "encounter_id",
                pl.col("date").alias("contact_on"),
                "failed",
                pl.coalesce(
                    "billing_practitioner_id",
                    pl.when(pl.col("performer_credential").is_in(billers)).then(
                        pl.col("performer_id")
                    ),
                ).alias("contact_bp"),
            ),
            on="patient_id",
            how="inner",
        )
        .filter(pl.col("contact_on").is_between(pl.col("discharge_date"), pl.col("window_end")))
        .join(discharges.select("discharge_id", "contact_deadline"), on="discharge_id")
        .with_columns(timely=pl.col("contact_on") <= pl.col("contact_deadline"))
        .sort("contact_on", "encounter_id")
    )
    return joined.group_by("discharge_id").agg(
        contacts_completed=(pl.col("timely") & ~pl.col("failed")).sum().cast(pl.Int64),
        attempts_failed=(pl.col("timely") & pl.col("failed")).sum().cast(pl.Int64),
        contact_ids=pl.col("encounter_id").filter(pl.col("timely")),
        contact_date=pl.col("contact_on").filter(pl.col("timely") & ~pl.col("failed")).first(),
        contact_bp=pl.col("contact_bp").drop_nulls().first(),
    )


def _discharge_day_management(ctx: EvalContext, enc: pl.DataFrame) -> pl.DataFrame:
    """(patient_id, practitioner_id, date) of discharge-day management (TCM-X1): claims
    history under the practitioner's NPI, or an encounter coded with it under them."""
    codes = ctx.params.as_strs("tcm.discharge_day_management_codes")
    claims = (
        nz.billed_claims(ctx, codes, through=horizon(ctx))
        .filter(pl.col("claim_practitioner_id").is_not_null())
        .select(
            "patient_id",
            pl.col("claim_practitioner_id").alias("billing_practitioner_id"),
            pl.col("date_of_service").alias("f2f_date"),
        )
    )
    coded = enc.filter(
        ~pl.col("failed") & pl.col("cpt").list.eval(pl.element().is_in(codes)).list.any()
    ).select(
        "patient_id",
        pl.col("enc_bp").alias("billing_practitioner_id"),
        pl.col("date").alias("f2f_date"),
    )
    return pl.concat([claims, coded]).unique().with_columns(f2f_on_ddm=pl.lit(True))


def _visits(ctx: EvalContext, discharges: pl.DataFrame, enc: pl.DataFrame) -> pl.DataFrame:
    """Per discharge and practitioner: the face-to-face visit (TCM-F1, TCM-X1)."""
    p = ctx.params
    excluded = [
        *p.as_strs("tcm.visit.nonqualifying_codes"),
        *p.as_strs("tcm.discharge_day_management_codes"),
    ]
    qualifies = (
        pl.col("cpt").is_null()
        | (pl.col("cpt").list.len() == 0)
        | pl.col("cpt").list.eval(~pl.element().is_in(excluded)).list.any()
    )
    visits = enc.filter(
        pl.col("kind").is_in(p.as_strs("tcm.visit.kinds")) & ~pl.col("failed") & qualifies
    ).select(
        "patient_id",
        pl.col("enc_bp").alias("billing_practitioner_id"),
        pl.col("encounter_id").alias("f2f_id"),
        pl.col("date").alias("f2f_date"),
        pl.col("place_of_service").alias("f2f_place_of_service"),
    )
    return (
        discharges.select("discharge_id", "patient_id", "discharge_date", "window_end")
        .join(visits, on="patient_id", how="inner")
        .filter(pl.col("f2f_date").is_between(pl.col("discharge_date"), pl.col("window_end")))
        .join(
            _discharge_day_management(ctx, enc),
            on=["patient_id", "billing_practitioner_id", "f2f_date"],
            how="left",
        )
        .with_columns(pl.col("f2f_on_ddm").fill_null(False))
        .sort("discharge_id", "billing_practitioner_id", "f2f_on_ddm", "f2f_date", "f2f_id")
        .unique(subset=["discharge_id", "billing_practitioner_id"], keep="first")
        .select(
            "discharge_id",
            "billing_practitioner_id",
            "f2f_id",
            "f2f_date",
            "f2f_place_of_service",
            "f2f_on_ddm",
        )
    )


def _with_mdm(ctx: EvalContext, facts: pl.DataFrame, enc: pl.DataFrame) -> pl.DataFrame:
    """TCM's MDM (interchange semantics 11): the highest ``mdm`` on encounters billed
    under the practitioner from the discharge date through the visit (or, without a
    visit yet, through the horizon)."""
    order = ctx.params.as_strs("common.mdm_rank")
    ranks = pl.DataFrame({"mdm": order, "mdm_rank": list(range(1, len(order) + 1))})
    recorded = (
        enc.filter(pl.col("mdm").is_not_null() & ~pl.col("failed"))
        .join(ranks, on="mdm", how="inner")
        .select(
            "patient_id",
            pl.col("enc_bp").alias("billing_practitioner_id"),
            pl.col("date").alias("mdm_on"),
            "mdm_rank",
            pl.col("encounter_id").alias("mdm_id"),
        )
    )
    through = pl.coalesce("f2f_date", pl.min_horizontal("window_end", pl.lit(horizon(ctx)))).alias(
        "mdm_through"
    )
    found = (
        facts.select("_row", "patient_id", "billing_practitioner_id", "discharge_date", through)
        .join(recorded, on=["patient_id", "billing_practitioner_id"], how="inner")
        .filter(pl.col("mdm_on").is_between(pl.col("discharge_date"), pl.col("mdm_through")))
        .group_by("_row")
        .agg(pl.col("mdm_rank").max(), mdm_ids=pl.col("mdm_id").sort())
    )
    return (
        facts.join(found, on="_row", how="left")
        .with_columns(pl.col("mdm_ids").fill_null(_empty_list()))
        .with_columns(
            mdm_level=pl.col("mdm_rank").replace_strict(
                ranks["mdm_rank"], ranks["mdm"], default=None, return_dtype=pl.String
            )
        )
    )


def _with_medication_reconciliation(
    ctx: EvalContext, facts: pl.DataFrame, enc: pl.DataFrame
) -> pl.DataFrame:
    """The first medication reconciliation of the patient from the discharge date."""
    activity = ctx.params.as_str("tcm.medication_reconciliation_activity")
    done = enc.filter(~pl.col("failed") & pl.col("activities").list.contains(activity)).select(
        "patient_id", pl.col("date").alias("med_rec_date"), pl.col("encounter_id").alias("med_id")
    )
    found = (
        facts.select("_row", "patient_id", "discharge_date", "window_end")
        .join(done, on="patient_id", how="inner")
        .filter(pl.col("med_rec_date").is_between(pl.col("discharge_date"), pl.col("window_end")))
        .sort("med_rec_date", "med_id")
        .group_by("_row")
        .agg(pl.col("med_rec_date").first(), med_rec_id=pl.col("med_id").first())
    )
    return facts.join(found, on="_row", how="left")


def _with_claims(ctx: EvalContext, facts: pl.DataFrame) -> pl.DataFrame:
    """TCM claims of claims history in the period (TCM-P1). A claim's own period starts
    at the latest discharge of the patient at most period_days - 1 days before its date
    of service (else at the date of service); it blocks a discharge inside that period
    and any discharge whose period holds the claim."""
    period_days = ctx.params.as_int("tcm.period_days")
    reach = pl.duration(days=period_days - 1)
    claims = (
        nz.billed_claims(ctx, family_codes(ctx), through=dt.date.max)
        .with_row_index("_claim")
        .select(
            "_claim",
            "patient_id",
            "billing_npi",
            pl.col("date_of_service").alias("claim_on"),
            pl.format("claim:{}@{}", pl.col("code"), pl.col("date_of_service")).alias("claim_id"),
        )
    )
    starts = (
        claims.join(
            ctx.bundle["discharges"].select("patient_id", "discharge_date"),
            on="patient_id",
            how="inner",
        )
        .filter(
            pl.col("claim_on").is_between(
                pl.col("discharge_date"), pl.col("discharge_date") + reach
            )
        )
        .group_by("_claim")
        .agg(claim_start=pl.col("discharge_date").max())
    )
    claims = claims.join(starts, on="_claim", how="left").with_columns(
        claim_start=pl.coalesce("claim_start", "claim_on")
    )
    hits = (
        facts.select("_row", "patient_id", "discharge_date", "period_end", "bp_npi")
        .join(claims, on="patient_id", how="inner")
        .filter(
            pl.col("discharge_date").is_between(
                pl.col("claim_start"), pl.col("claim_start") + reach
            )
            | pl.col("claim_on").is_between(pl.col("discharge_date"), pl.col("period_end"))
        )
        .group_by("_row")
        .agg(
            other_claims=pl.col("claim_id")
            .filter(pl.col("billing_npi") != pl.col("bp_npi").fill_null(""))
            .unique()
            .sort(),
            own_claims=pl.col("claim_id")
            .filter(pl.col("billing_npi") == pl.col("bp_npi"))
            .unique()
            .sort(),
        )
    )
    return facts.join(hits, on="_row", how="left").with_columns(
        pl.col("other_claims", "own_claims").fill_null(_empty_list())
    )


def _with_icd10(ctx: EvalContext, facts: pl.DataFrame) -> pl.DataFrame:
    """Up to four conditions active on the reference date, longest-standing first."""
    active = (
        facts.select("_row", "patient_id", "reference_date")
        .join(ctx.bundle["conditions"], on="patient_id", how="inner")
        .filter(
            (pl.col("onset_date").is_null() | (pl.col("onset_date") <= pl.col("reference_date")))
            & (
                pl.col("resolved_date").is_null()
                | (pl.col("resolved_date") >= pl.col("reference_date"))
            )
        )
        .sort("_row", "onset_date", "icd10", nulls_last=False)
        .group_by("_row", maintain_order=True)
        .agg(icd10_codes=pl.col("icd10").unique(maintain_order=True).head(4))
    )
    return facts.join(active, on="_row", how="left").with_columns(
        pl.col("icd10_codes").fill_null(_empty_list())
    )


def _candidates(ctx: EvalContext, discharges: pl.DataFrame, enc: pl.DataFrame) -> pl.DataFrame:
    """One row per discharge x practitioner with a visit, else per discharge (contacts'
    practitioner, or none)."""
    visits = _visits(ctx, discharges, enc)
    contacts = _contacts(ctx, discharges, enc)
    without_visit = (
        discharges.select("discharge_id")
        .join(visits.select("discharge_id").unique(), on="discharge_id", how="anti")
        .join(contacts.select("discharge_id", "contact_bp"), on="discharge_id", how="left")
        .select("discharge_id", pl.col("contact_bp").alias("billing_practitioner_id"))
    )
    rows = pl.concat([visits, without_visit], how="diagonal_relaxed")
    return (
        rows.join(discharges, on="discharge_id", how="inner")
        .join(contacts.drop("contact_bp"), on="discharge_id", how="left")
        .with_columns(
            pl.col("contacts_completed", "attempts_failed").fill_null(0),
            pl.col("contact_ids").fill_null(_empty_list()),
            pl.col("f2f_on_ddm").fill_null(False),
        )
        .sort("patient_id", "discharge_date", "discharge_id", "billing_practitioner_id")
        .with_row_index("_row")
    )


def all_facts(ctx: EvalContext) -> pl.DataFrame:
    """Facts for every discharge known by the horizon (before the month is selected)."""
    p = ctx.params
    discharges = discharge_facts(ctx)
    enc = _encounters(ctx)
    facts = _candidates(ctx, discharges, enc)
    facts = nz.with_practitioner(ctx, facts, "billing_practitioner_id", "bp")
    facts = _with_mdm(ctx, facts, enc)
    facts = _with_medication_reconciliation(ctx, facts, enc)
    facts = facts.join(
        ctx.bundle["patients"].select("patient_id", "death_date"), on="patient_id", how="left"
    )
    facts = _with_claims(ctx, facts)
    facts = facts.with_columns(
        date=pl.col("discharge_date"),  # the period's start: `billing explain` matches on it
        reference_date=pl.coalesce("f2f_date", "discharge_date"),
        place_of_service=pl.coalesce(
            "f2f_place_of_service", pl.lit(p.as_str("tcm.default_place_of_service"))
        ),
        contact_met=(pl.col("contacts_completed") >= 1)
        | (pl.col("attempts_failed") >= p.as_int("tcm.contact.min_failed_attempts")),
        f2f_day=(pl.col("f2f_date") - pl.col("discharge_date")).dt.total_days(),
        died_in_period=pl.col("death_date").is_not_null()
        & (pl.col("death_date") <= pl.col("period_end")),
    )
    facts = _with_icd10(ctx, facts)
    facts = nz.primary_coverage(ctx, facts, "reference_date")
    kinds = p.as_strs("common.payer_kinds_paying_by_default")
    for code in family_codes(ctx):
        frame = facts.with_columns(_code=pl.lit(code))
        facts = facts.with_columns(
            nz.payer_pays(ctx, frame, "_code", "reference_date", kinds).alias(f"pays:{code}")
        )
    return facts.with_columns(
        earlier_tcm=_empty_list(), other_tcm_bps=_empty_list(), own_tcm=pl.lit(False)
    )


# --------------------------------------------------------------------------- criteria


def _alive(ctx: EvalContext) -> Criterion:
    flag = ctx.params.as_str("tcm.death_policy") == "bill_and_flag"
    after_visit = pl.col("f2f_date").is_not_null() & (pl.col("death_date") > pl.col("f2f_date"))
    return Criterion(
        "alive_through_period",
        "the patient did not die before the 30-day period ended",
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


def _contact(ctx: EvalContext) -> Criterion:
    p = ctx.params
    n = p.as_int("tcm.contact.business_days")
    attempts = p.as_int("tcm.contact.min_failed_attempts")
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


def _criteria(ctx: EvalContext, alt: str) -> list[Criterion]:
    """Criteria of one code, in the order their reasons take precedence."""
    p = ctx.params
    code = p.as_str(f"tcm.{alt}.code")
    billers = p.as_strs("common.billing_credentials")
    level = p.as_str(f"tcm.{alt}.min_mdm")
    last = pl.col(f"last_{alt}_date")
    last_open = pl.min_horizontal(last, pl.col("window_end"))
    within = p.as_int(f"tcm.{alt}.visit_within_days")
    no_visit = pl.col("f2f_date").is_null()
    return [
        Criterion(
            "discharge_setting",
            "discharged from an inpatient, SNF, rehabilitation, observation or "
            "partial-hospitalization setting",
            pl.col("setting").is_in(p.as_strs("tcm.qualifying_settings")),
            "setting_not_qualifying",
            ("TCM-E1",),
            detail=pl.format("discharged from {}, not a TCM setting", pl.col("setting")),
            shows=("discharge_id", "setting"),
        ),
        Criterion(
            "community_destination",
            "discharged to a community setting (home, domiciliary, assisted living, "
            "nursing facility per the setting)",
            pl.col("disposition").is_in(_destinations(ctx)),
            "setting_not_qualifying",
            ("TCM-E2",),
            detail=pl.format("discharged to {}, not a community setting", pl.col("disposition")),
            shows=("disposition",),
        ),
        _alive(ctx),
        Criterion(
            "billing_practitioner_qualified",
            "the face-to-face visit is billed under a physician or NPP",
            no_visit | pl.col("bp_credential").is_in(billers),
            "practitioner_not_qualified",
            ("TCM-S1",),
            shows=("billing_practitioner_id", "bp_credential"),
        ),
        coverage_criterion(shows=("reference_date", "payer_id")),
        payer_pays_criterion(code),
        Criterion(
            "not_billed_by_other",
            "no other practitioner billed TCM for this 30-day period",
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
        Criterion(
            "not_already_billed",
            "no TCM already billed for this 30-day period (claims history, or an earlier "
            "discharge's TCM: a readmission does not start another)",
            (pl.col("own_claims").list.len() == 0) & ~pl.col("own_tcm"),
            "already_billed",
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
                    "inside the 30-day period of discharge {}, whose TCM is billed: "
                    "a readmission does not start another",
                    pl.col("earlier_tcm").list.join(", "),
                )
            ),
            shows=("own_claims", "earlier_tcm"),
        ),
        _contact(ctx),
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
            shows=("f2f_id", "f2f_date", "f2f_day", f"last_{alt}_date"),
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


def _all_met(criteria: Sequence[Criterion]) -> pl.Expr:
    return pl.all_horizontal([pl.lit(True), *[c.met.fill_null(False) for c in criteria]])


def _considered(ctx: EvalContext, alt: str, criteria: Sequence[Criterion]) -> pl.Expr:
    """Gap code (interchange semantics 8): 99496 when the MDM so far is high, else
    99495; both are considered when the high MDM came with a visit (or an as-of date)
    past the 7-day window but inside the 14-day one, and a code whose criteria are all
    met is always considered (the precedence table picks one)."""
    high = nz.mdm_rank_of(ctx, ctx.params.as_str("tcm.high.min_mdm"))
    rank = pl.col("mdm_rank").fill_null(0)
    if alt == HIGH:
        return rank >= high
    when = pl.coalesce("f2f_date", pl.lit(ctx.as_of))
    between = (when > pl.col(f"last_{HIGH}_date")) & (when <= pl.col(f"last_{alt}_date"))
    return (rank < high) | between | _all_met(criteria)


def discharge_rules(ctx: EvalContext) -> list[CodeRule]:
    p = ctx.params
    rules: list[CodeRule] = []
    evidence = evidence_list("discharge_id", "contact_ids", "f2f_id", "med_rec_id", "mdm_ids")
    for alt in ALTERNATIVES:
        criteria = _criteria(ctx, alt)
        rules.append(
            CodeRule(
                key=f"tcm.{alt}",
                code=p.as_str(f"tcm.{alt}.code"),
                family=FAMILY,
                considered=_considered(ctx, alt, criteria),
                criteria=tuple(criteria),
                units=pl.lit(1),
                date_of_service=pl.col("f2f_date"),
                evidence=evidence,
                rules=RULE_IDS,
                alternative=f"tcm.{alt}",
                place_of_service=pl.col("place_of_service"),
                icd10_codes=pl.col("icd10_codes"),
                parameters=(
                    f"tcm.{alt}.code",
                    f"tcm.{alt}.visit_within_days",
                    f"tcm.{alt}.min_mdm",
                    *SHARED_PARAMETERS,
                ),
                description=f"transitional care management, {alt} MDM",
            )
        )
    if p.as_str("tcm.death_policy") == "bill_and_flag":
        rules += _death_flags(ctx, rules)
    return rules


def _death_flags(ctx: EvalContext, billed: Sequence[CodeRule]) -> list[CodeRule]:
    """With death_policy bill_and_flag: an info gap beside a line whose period ends in
    death, for review or void (TCM-D2)."""
    flags = []
    higher: pl.Expr = pl.lit(False)
    for rule in billed:
        is_line = pl.col(line_column(rule))
        flags.append(
            CodeRule(
                key=f"{rule.key}.death_review",
                code=rule.code,
                family=FAMILY,
                considered=is_line & ~higher & pl.col("died_in_period"),
                criteria=(
                    Criterion(
                        "death_review",
                        "the period did not end in death (flag for review)",
                        pl.lit(False),
                        "patient_died",
                        ("TCM-D2",),
                        status=pl.lit(STATUS_INFO),
                        detail=pl.format(
                            "billed at the visit, but the patient died on {} within the period "
                            "ending {}: review or void",
                            pl.col("death_date"),
                            pl.col("period_end"),
                        ),
                        shows=("death_date", "period_end"),
                    ),
                ),
                units=pl.lit(1),
                date_of_service=pl.col("f2f_date"),
                evidence=rule.evidence,
                rules=("TCM-D2",),
                place_of_service=rule.place_of_service,
                icd10_codes=rule.icd10_codes,
                parameters=("tcm.death_policy",),
                description=f"{rule.description}: death in the period",
            )
        )
        higher = higher | is_line
    return flags


# --------------------------------------------------------------------------- one per period


def _with_periods_billed(
    ctx: EvalContext, facts: pl.DataFrame, rules: Sequence[CodeRule]
) -> pl.DataFrame:
    """TCM-P1 across discharges and months: which discharges the engine bills.

    A discharge "bills" when one of its rows meets every criterion of a code (claims
    history included, the one-per-period check not yet). A discharge inside the period
    of an earlier discharge that bills, and is not itself blocked, is blocked; this is
    settled earliest first (a small fixed-point iteration over the discharges, not the
    rows). A practitioner's row is also blocked when another practitioner bills the
    same discharge with a visit in an earlier month.
    """
    period_days = ctx.params.as_int("tcm.period_days")
    met = [_all_met(r.criteria) for r in rules if r.alternative]
    rows = facts.select(
        "_row",
        "discharge_id",
        "patient_id",
        "discharge_date",
        "billing_practitioner_id",
        "f2f_date",
        would=pl.any_horizontal(met),
    )
    billing = (
        rows.filter(pl.col("would"))
        .group_by("discharge_id")
        .agg(bps=pl.col("billing_practitioner_id").drop_nulls().unique().sort())
    )
    discharges = (
        rows.select("discharge_id", "patient_id", "discharge_date")
        .unique()
        .join(billing, on="discharge_id", how="left")
        .with_columns(would=pl.col("bps").is_not_null())
        .sort("discharge_id")
    )
    pairs = (
        discharges.select("discharge_id", "patient_id", "discharge_date")
        .join(
            discharges.select(
                "patient_id",
                pl.col("discharge_id").alias("earlier_id"),
                pl.col("discharge_date").alias("earlier_date"),
            ),
            on="patient_id",
            how="inner",
        )
        .filter(
            (pl.col("earlier_date") < pl.col("discharge_date"))
            & (
                pl.col("discharge_date")
                <= pl.col("earlier_date") + pl.duration(days=period_days - 1)
            )
        )
        .select("discharge_id", "earlier_id")
    )
    blocked = discharges.select("discharge_id", blocked=pl.lit(False))
    effective = pairs.head(0).with_columns(bps=pl.lit(None, dtype=pl.List(pl.String)))
    for _ in range(discharges.height + 1):
        starts = discharges.join(blocked, on="discharge_id").filter(
            pl.col("would") & ~pl.col("blocked")
        )
        effective = pairs.join(
            starts.select(pl.col("discharge_id").alias("earlier_id"), "bps"),
            on="earlier_id",
            how="inner",
        )
        now = (
            discharges.select("discharge_id")
            .join(
                effective.select("discharge_id").unique().with_columns(hit=pl.lit(True)),
                on="discharge_id",
                how="left",
            )
            .select("discharge_id", blocked=pl.col("hit").fill_null(False))
        )
        if now.equals(blocked):
            break
        blocked = now
    earlier = effective.group_by("discharge_id").agg(
        earlier_tcm=pl.col("earlier_id").unique().sort(),
        earlier_bps=pl.col("bps")
        .list.explode(keep_nulls=False, empty_as_null=False)
        .unique()
        .sort(),
    )
    same = (
        rows.filter(pl.col("would") & (pl.col("f2f_date") < ctx.start))
        .select("discharge_id", pl.col("billing_practitioner_id").alias("same_bp"))
        .join(rows.select("_row", "discharge_id", "billing_practitioner_id"), on="discharge_id")
        .filter(pl.col("same_bp") != pl.col("billing_practitioner_id").fill_null(""))
        .group_by("_row")
        .agg(same_bps=pl.col("same_bp").unique().sort())
    )
    empty = _empty_list()
    mine = pl.col("billing_practitioner_id")
    return (
        facts.drop("earlier_tcm", "other_tcm_bps", "own_tcm")
        .join(earlier, on="discharge_id", how="left")
        .join(same, on="_row", how="left")
        .with_columns(pl.col("earlier_tcm", "earlier_bps", "same_bps").fill_null(empty))
        .with_columns(
            own_tcm=mine.is_not_null() & pl.col("earlier_bps").list.contains(mine).fill_null(False),
            other_tcm_bps=pl.concat_list(
                pl.col("earlier_bps").list.set_difference(pl.concat_list(mine.fill_null(""))),
                "same_bps",
            )
            .list.unique()
            .list.sort(),
        )
        .drop("earlier_bps", "same_bps")
    )


def in_month(ctx: EvalContext) -> pl.Expr:
    """The discharges this month shows: visit in the month, or no visit yet and the
    visit window overlapping the month."""
    last = pl.min_horizontal(
        pl.max_horizontal([pl.col(f"last_{alt}_date") for alt in ALTERNATIVES]),
        pl.col("window_end"),
    )
    pending = (
        pl.col("f2f_date").is_null() & (pl.col("discharge_date") <= ctx.end) & (last >= ctx.start)
    )
    return ctx.in_month("f2f_date").fill_null(False) | pending


def evaluate(ctx: EvalContext) -> Sequence[RuleSetResult]:
    rules = discharge_rules(ctx)
    facts = all_facts(ctx)
    facts = _with_periods_billed(ctx, facts, rules)
    facts = facts.filter(in_month(ctx))
    period = (pl.col("discharge_date"), pl.col("period_end"))
    return [run_rule_set(ctx, FAMILY, "tcm.discharge", facts, rules, period=period)]
