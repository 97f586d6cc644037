"""Tobacco cessation counseling: 99406 (intermediate) and 99407 (intensive).

Every code, threshold, window and list comes from ``parameters.yaml`` beside this file;
the requirements in plain words are in ``README.md``. One rule set, ``tobacco.session``:
one candidate per ``tobacco_counseling`` encounter dated in the month (documented failed
attempts are not sessions), billed under the encounter's billing practitioner, else its
performer. The session's minutes pick the code: up to the intermediate maximum it is
99406 (a gap when too short), above it 99407. Period and date of service: the visit date.
The facts (the joins) are built in ``facts.py``; this file holds the criteria.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from billing_engine.engine import facts as nz
from billing_engine.engine import primitives as pr
from billing_engine.engine.context import EvalContext
from billing_engine.engine.family import RuleSetResult, evidence_list, run_rule_set
from billing_engine.engine.kernel import STATUS_BLOCKED, CodeRule, Criterion
from billing_engine.engine.primitives import Cap
from code_rules.parameters_typed import Tobacco, TobaccoIntensive, TobaccoIntermediate, typed
from code_rules.tobacco.facts import KIND, family_codes, session_facts

__all__ = ["FAMILY", "KIND", "evaluate", "family_codes", "session_facts", "session_rules"]

FAMILY = "tobacco"
RULE_IDS = ("TOB-T1", "TOB-F1", "TOB-E1", "TOB-S1", "TOB-X1", "TOB-$")
PAYER_RULE_IDS = ("TOB-$",)  # coverage and payer pays feed the waived cost sharing
WINDOW_PARAMETERS = (Tobacco.SESSIONS_PER_WINDOW, Tobacco.WINDOW, Tobacco.WINDOW_MONTHS)


def _practitioner_criteria(ctx: EvalContext) -> list[Criterion]:
    allowed = typed(ctx.params).tobacco.practitioner_credentials
    return [
        Criterion(
            "performer_qualified",
            "counseled face to face by a physician or other Medicare-recognized practitioner",
            pl.col("performer_credential").is_in(allowed),
            "practitioner_not_qualified",
            ("TOB-S1",),
            shows=("performer_id", "performer_credential"),
        ),
        pr.billing_practitioner_qualified_criterion(
            ("TOB-S1",),
            allowed,
            "billed by a physician or other Medicare-recognized practitioner",
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
    more_than = typed(ctx.params).tobacco.intermediate.more_than_minutes
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
    return pr.not_already_billed_criterion(
        pl.col("same_day_claims") == 0,
        "no cessation counseling already in claims history for the patient on this date",
        ("TOB-F1",),
        detail=pl.format(
            "counseling already billed on this date by NPI {}",
            pl.col("same_day_claim_npis").list.join(", "),
        ),
        shows=("same_day_claims", "same_day_claim_npis"),
    )


def _who_and_why(ctx: EvalContext, code: str) -> list[Criterion]:
    """Who counsels and bills, who pays `code`, and the tobacco use: both codes' first."""
    return [
        *_practitioner_criteria(ctx),
        pr.coverage_criterion(PAYER_RULE_IDS),
        pr.payer_pays_criterion(code, PAYER_RULE_IDS),
        _tobacco_use_criterion(),
    ]


def intermediate_criteria(ctx: EvalContext) -> list[Criterion]:
    """99406's criteria but the session limit: enough minutes, not already billed."""
    code = typed(ctx.params).tobacco.intermediate.code
    return [*_who_and_why(ctx, code), _time_criterion(ctx), _not_already_billed_criterion()]


def intensive_criteria(ctx: EvalContext) -> list[Criterion]:
    """99407's criteria but the session limit (its minutes already exceed 99406's)."""
    code = typed(ctx.params).tobacco.intensive.code
    return [*_who_and_why(ctx, code), _not_already_billed_criterion()]


def _with_earlier_sessions(ctx: EvalContext, facts: pl.DataFrame) -> pl.DataFrame:
    """``earlier_sessions``: the patient's sessions earlier in this evaluation (by date,
    then encounter_id) that meet every criterion of their own code but the limit."""
    tobacco = typed(ctx.params).tobacco

    def all_met(criteria: Sequence[Criterion]) -> pl.Expr:
        return pl.all_horizontal([pl.lit(True), *[c.met.fill_null(False) for c in criteria]])

    qualifies = (
        pl.when(pl.col("minutes") > tobacco.intermediate.up_to_minutes)
        .then(all_met(intensive_criteria(ctx)))
        .otherwise(all_met(intermediate_criteria(ctx)))
    )
    cap = Cap("session", tobacco.sessions_per_window, prior="prior_sessions")
    capped = pr.frequency_cap(
        facts,
        [cap],
        group=("patient_id",),
        order=("date", "encounter_id"),
        qualifies=qualifies,
        keep_order="sorted",
    )
    return capped.rename({"session_earlier": "earlier_sessions"}).drop(
        "session_prior",
        "session_used",
        "session_room",
        "session_within",
        "session_granted",
        "cap_rank",
    )


def _limit_criterion(ctx: EvalContext) -> Criterion:
    tobacco = typed(ctx.params).tobacco
    limit = tobacco.sessions_per_window
    window = tobacco.window.replace("_", " ")
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


def intermediate_rule(ctx: EvalContext) -> CodeRule:
    """99406: sessions up to the intermediate maximum (a gap when too short)."""
    intermediate = typed(ctx.params).tobacco.intermediate
    return _session_rule(
        "tobacco.intermediate",
        intermediate.code,
        pl.col("minutes") <= intermediate.up_to_minutes,
        [*intermediate_criteria(ctx), _limit_criterion(ctx)],
        (
            TobaccoIntermediate.CODE,
            TobaccoIntermediate.MORE_THAN_MINUTES,
            TobaccoIntermediate.UP_TO_MINUTES,
            *WINDOW_PARAMETERS,
        ),
        "tobacco cessation counseling, intermediate",
    )


def intensive_rule(ctx: EvalContext) -> CodeRule:
    """99407: sessions above the intermediate maximum."""
    tobacco = typed(ctx.params).tobacco
    return _session_rule(
        "tobacco.intensive",
        tobacco.intensive.code,
        pl.col("minutes") > tobacco.intermediate.up_to_minutes,
        [*intensive_criteria(ctx), _limit_criterion(ctx)],
        (TobaccoIntensive.CODE, TobaccoIntermediate.UP_TO_MINUTES, *WINDOW_PARAMETERS),
        "tobacco cessation counseling, intensive",
    )


def session_rules(ctx: EvalContext) -> list[CodeRule]:
    return [intermediate_rule(ctx), intensive_rule(ctx)]


def evaluate(ctx: EvalContext) -> Sequence[RuleSetResult]:
    ctx = ctx.narrowed_to(nz.patients_seen(ctx, [KIND]))  # the candidates: sessions of the month
    facts = _with_earlier_sessions(ctx, session_facts(ctx))
    visit = (pl.col("date"), pl.col("date"))
    return [run_rule_set(ctx, FAMILY, "tobacco.session", facts, session_rules(ctx), period=visit)]
