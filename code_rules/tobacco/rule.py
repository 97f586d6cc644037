"""Tobacco cessation counseling: 99406 (intermediate) and 99407 (intensive).

Every code, threshold, window and list comes from ``parameters.yaml`` beside this file;
the requirements in plain words are in ``README.md``. One rule set, ``tobacco.session``:
one candidate per ``tobacco_counseling`` encounter dated in the month (documented failed
attempts are not sessions), billed under the encounter's billing practitioner, else its
performer. The session's minutes pick the code: up to the intermediate maximum it is
99406 (a gap when too short), above it 99407. Period and date of service: the visit date.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from billing_engine.engine import facts as nz
from billing_engine.engine.context import EvalContext
from billing_engine.engine.family import (
    RuleSetResult,
    coverage_criterion,
    evidence_list,
    payer_pays_criterion,
    run_rule_set,
)
from billing_engine.engine.kernel import STATUS_BLOCKED, CodeRule, Criterion

FAMILY = "tobacco"
KIND = "tobacco_counseling"
CALENDAR_YEAR = "calendar_year"
RULE_IDS = ("TOB-T1", "TOB-F1", "TOB-E1", "TOB-S1", "TOB-X1", "TOB-$")
EMPTY_IDS = pl.lit([], dtype=pl.List(pl.String))


def family_codes(ctx: EvalContext) -> list[str]:
    p = ctx.params
    return [p.as_str("tobacco.intermediate.code"), p.as_str("tobacco.intensive.code")]


def _sessions(ctx: EvalContext) -> pl.DataFrame:
    """The month's counseling sessions with performer, billing practitioner and POS."""
    p = ctx.params
    sessions = ctx.bundle["encounters"].filter(
        (pl.col("kind") == KIND)
        & ctx.in_month("date")
        & (pl.col("outcome").is_null() | (pl.col("outcome") != "attempt_failed"))
    )
    sessions = sessions.with_columns(
        billing_practitioner_id=pl.coalesce("billing_practitioner_id", "performer_id"),
        place_of_service=pl.col("place_of_service").fill_null(
            p.as_str("tobacco.default_place_of_service")
        ),
        minutes=pl.col("minutes").cast(pl.Int64),
    )
    sessions = nz.with_practitioner(ctx, sessions, "performer_id", "performer")
    sessions = nz.with_practitioner(ctx, sessions, "billing_practitioner_id", "bp")
    return sessions.select(
        "encounter_id",
        "patient_id",
        "date",
        "minutes",
        "performer_id",
        "performer_credential",
        "billing_practitioner_id",
        "bp_credential",
        "place_of_service",
    )


def _window_start(ctx: EvalContext) -> pl.Expr:
    """First day of the frequency window that ends on the session's date."""
    p = ctx.params
    if p.as_str("tobacco.window") == CALENDAR_YEAR:
        return pl.date(pl.col("date").dt.year(), 1, 1)
    months = p.as_int("tobacco.window_months")
    return pl.col("date").dt.offset_by(f"-{months}mo").dt.offset_by("1d")


def _with_claims(ctx: EvalContext, facts: pl.DataFrame) -> pl.DataFrame:
    """Sessions already in claims history (not denied, any NPI): in the window before
    the session's date (``prior_sessions``) and on its date (``same_day_claims``)."""
    claims = nz.billed_claims(ctx, family_codes(ctx)).select(
        "patient_id",
        "units",
        "billing_npi",
        claim_date=pl.col("date_of_service"),
        claim_id=pl.concat_str(
            pl.lit("claim:"), pl.col("code"), pl.lit("@"), pl.col("date_of_service").cast(pl.String)
        ),
    )
    joined = (
        facts.select("encounter_id", "patient_id", "date", "window_start")
        .join(claims, on="patient_id", how="inner")
        .filter(
            (pl.col("claim_date") >= pl.col("window_start"))
            & (pl.col("claim_date") <= pl.col("date"))
        )
    )
    before = pl.col("claim_date") < pl.col("date")
    summary = joined.group_by("encounter_id").agg(
        prior_sessions=pl.col("units").filter(before).sum().cast(pl.Int64),
        prior_session_ids=pl.col("claim_id").filter(before).unique().sort(),
        same_day_claims=pl.col("units").filter(~before).sum().cast(pl.Int64),
        same_day_claim_npis=pl.col("billing_npi").filter(~before).unique().sort(),
    )
    return facts.join(summary, on="encounter_id", how="left").with_columns(
        pl.col("prior_sessions", "same_day_claims").fill_null(0),
        pl.col("prior_session_ids", "same_day_claim_npis").fill_null(EMPTY_IDS),
    )


def _with_tobacco_use(ctx: EvalContext, facts: pl.DataFrame) -> pl.DataFrame:
    """``tobacco_icd10``: tobacco-use conditions active on the session date."""
    prefixes = ctx.params.as_strs("tobacco.diagnosis_prefixes")
    return facts.with_columns(
        tobacco_icd10=nz.conditions_on_date(ctx, facts, "date", prefixes=prefixes)
    )


def session_facts(ctx: EvalContext) -> pl.DataFrame:
    facts = _sessions(ctx).with_columns(window_start=_window_start(ctx))
    facts = _with_claims(ctx, facts)
    facts = _with_tobacco_use(ctx, facts)
    facts = nz.primary_coverage(ctx, facts, "date")
    kinds = ctx.params.as_strs("common.payer_kinds_paying_by_default")
    for code in family_codes(ctx):
        frame = facts.with_columns(_code=pl.lit(code))
        facts = facts.with_columns(
            nz.payer_pays(ctx, frame, "_code", "date", kinds).alias(f"pays:{code}")
        )
    return facts


def _practitioner_criteria(ctx: EvalContext) -> list[Criterion]:
    allowed = ctx.params.as_strs("tobacco.practitioner_credentials")
    return [
        Criterion(
            "performer_qualified",
            "counseled face to face by a physician or other Medicare-recognized practitioner",
            pl.col("performer_credential").is_in(allowed),
            "practitioner_not_qualified",
            ("TOB-S1",),
            shows=("performer_id", "performer_credential"),
        ),
        Criterion(
            "billing_practitioner_qualified",
            "billed by a physician or other Medicare-recognized practitioner",
            pl.col("bp_credential").is_in(allowed),
            "practitioner_not_qualified",
            ("TOB-S1",),
            shows=("billing_practitioner_id", "bp_credential"),
        ),
    ]


def _tobacco_use_criterion() -> Criterion:
    return Criterion(
        "tobacco_use",
        "a tobacco-use diagnosis is active on the session's date",
        pl.col("tobacco_icd10").list.len() > 0,
        "diagnosis_not_qualifying",
        ("TOB-E1",),
        detail=pl.lit("no active tobacco-use diagnosis (nicotine dependence, tobacco use) on file"),
        shows=("tobacco_icd10",),
    )


def _time_criterion(ctx: EvalContext) -> Criterion:
    """More than the minimum minutes. Blocked: a session's minutes cannot grow later."""
    more_than = ctx.params.as_int("tobacco.intermediate.more_than_minutes")
    needed = more_than + 1
    return Criterion(
        "time_threshold",
        f"more than {more_than} minutes of counseling in the session",
        pl.col("minutes") >= needed,
        "time_below_threshold",
        ("TOB-T1",),
        status=pl.lit(STATUS_BLOCKED),
        detail=pl.format(
            "{} minutes: {} minutes or fewer are part of the E/M and not billed separately",
            pl.col("minutes"),
            pl.lit(more_than),
        ),
        minutes_needed=(needed - pl.col("minutes")).clip(lower_bound=0).cast(pl.Int64),
        shows=("minutes",),
    )


def _not_already_billed_criterion() -> Criterion:
    return Criterion(
        "not_already_billed",
        "no cessation counseling already in claims history for the patient on this date",
        pl.col("same_day_claims") == 0,
        "already_billed",
        ("TOB-F1",),
        detail=pl.format(
            "counseling already billed on this date by NPI {}",
            pl.col("same_day_claim_npis").list.join(", "),
        ),
        shows=("same_day_claims", "same_day_claim_npis"),
    )


def _qualifying_criteria(ctx: EvalContext, code: str) -> list[Criterion]:
    """Every criterion of `code` but the session limit, in order of precedence."""
    return [
        *_practitioner_criteria(ctx),
        coverage_criterion(),
        payer_pays_criterion(code),
        _tobacco_use_criterion(),
        _time_criterion(ctx),
        _not_already_billed_criterion(),
    ]


def _with_earlier_sessions(ctx: EvalContext, facts: pl.DataFrame) -> pl.DataFrame:
    """``earlier_sessions``: the patient's sessions earlier in this evaluation (by date,
    then encounter_id) that meet every criterion of their own code but the limit."""
    up_to = ctx.params.as_int("tobacco.intermediate.up_to_minutes")
    intermediate, intensive = family_codes(ctx)

    def all_met(code: str) -> pl.Expr:
        checks = [c.met.fill_null(False) for c in _qualifying_criteria(ctx, code)]
        return pl.all_horizontal([pl.lit(True), *checks])

    qualifies = (
        pl.when(pl.col("minutes") > up_to).then(all_met(intensive)).otherwise(all_met(intermediate))
    )
    return (
        facts.with_columns(_qualifies=qualifies.cast(pl.Int64))
        .sort("patient_id", "date", "encounter_id")
        .with_columns(
            earlier_sessions=(pl.col("_qualifies").cum_sum() - pl.col("_qualifies")).over(
                "patient_id"
            )
        )
        .drop("_qualifies")
    )


def _limit_criterion(ctx: EvalContext) -> Criterion:
    p = ctx.params
    limit = p.as_int("tobacco.sessions_per_window")
    window = p.as_str("tobacco.window").replace("_", " ")
    used = pl.col("prior_sessions") + pl.col("earlier_sessions")
    return Criterion(
        "session_limit",
        f"fewer than {limit} sessions already billed in the window ({window}) ending on "
        "the session's date",
        used < limit,
        "frequency_limit_reached",
        ("TOB-F1",),
        detail=pl.format(
            "{} sessions since {} ({} in claims history, {} earlier this month); at most {}",
            used,
            pl.col("window_start"),
            pl.col("prior_sessions"),
            pl.col("earlier_sessions"),
            pl.lit(limit),
        ),
        shows=("window_start", "prior_sessions", "earlier_sessions", "prior_session_ids"),
    )


def _session_rule(
    key: str,
    code: str,
    considered: pl.Expr,
    criteria: Sequence[Criterion],
    parameters: tuple[str, ...],
    description: str,
) -> CodeRule:
    return CodeRule(
        key=key,
        code=code,
        family=FAMILY,
        considered=considered,
        criteria=tuple(criteria),
        units=pl.lit(1),
        date_of_service=pl.col("date"),
        evidence=evidence_list("encounter_id"),
        rules=RULE_IDS,
        minutes_logged=pl.col("minutes"),
        place_of_service=pl.col("place_of_service"),
        icd10_codes=pl.col("tobacco_icd10"),
        parameters=parameters,
        description=description,
    )


def session_rules(ctx: EvalContext) -> list[CodeRule]:
    up_to = ctx.params.as_int("tobacco.intermediate.up_to_minutes")
    intermediate, intensive = family_codes(ctx)
    limit = _limit_criterion(ctx)
    window_names = ("tobacco.sessions_per_window", "tobacco.window", "tobacco.window_months")
    intensive_criteria = [
        c for c in _qualifying_criteria(ctx, intensive) if c.name != "time_threshold"
    ]
    return [
        _session_rule(
            "tobacco.intermediate",
            intermediate,
            pl.col("minutes") <= up_to,
            [*_qualifying_criteria(ctx, intermediate), limit],
            (
                "tobacco.intermediate.code",
                "tobacco.intermediate.more_than_minutes",
                "tobacco.intermediate.up_to_minutes",
                *window_names,
            ),
            "tobacco cessation counseling, intermediate",
        ),
        _session_rule(
            "tobacco.intensive",
            intensive,
            pl.col("minutes") > up_to,
            [*intensive_criteria, limit],
            ("tobacco.intensive.code", "tobacco.intermediate.up_to_minutes", *window_names),
            "tobacco cessation counseling, intensive",
        ),
    ]


def evaluate(ctx: EvalContext) -> Sequence[RuleSetResult]:
    facts = _with_earlier_sessions(ctx, session_facts(ctx))
    visit = (pl.col("date"), pl.col("date"))
    return [run_rule_set(ctx, FAMILY, "tobacco.session", facts, session_rules(ctx), period=visit)]
