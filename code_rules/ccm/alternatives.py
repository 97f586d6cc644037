"""Chronic care management: the three monthly code pairs (staff, the practitioner's own,
complex), what each counts and the add-on units it bills; shared by ``facts.py`` (the
dates each code's minutes were reached) and ``rule.py`` (the criteria).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from billing_engine.engine import facts as nz
from billing_engine.engine.context import EvalContext
from code_rules.parameters_typed import CcmTimedCode, typed

ANYONES_MINUTES = "clinical-staff and practitioner minutes"


@dataclass(frozen=True)
class Alternative:
    """One monthly CCM code pair (base + add-on): its parameters and the minutes it counts."""

    key: str  # rule keys ccm.<key>.base / ccm.<key>.addon, facts <key>_base_date / _addon_date
    code: CcmTimedCode  # ccm.<key>.*: the codes, threshold, add-on step and cap
    pool: str  # the time entries whose minutes count (nz.POOL_*)
    minutes: str  # the facts column of those minutes
    what: str  # those minutes, in words
    rule_ids: tuple[str, ...]
    payer_rule_ids: tuple[str, ...]  # what coverage and payer pays feed: cost sharing


def alternatives(ctx: EvalContext) -> tuple[Alternative, Alternative, Alternative]:
    """Staff, the practitioner's own and complex CCM, in the order their rules are listed."""
    ccm = typed(ctx.params).ccm
    staff = Alternative(
        key="staff",
        code=ccm.staff,
        pool=nz.POOL_ALL,
        minutes="staff_minutes",
        what=ANYONES_MINUTES,
        rule_ids=("CCM-T1", "CCM-U1", "TIME-2"),
        payer_rule_ids=("CCM-$",),
    )
    practitioner = Alternative(
        key="practitioner",
        code=ccm.practitioner,
        pool=nz.POOL_PRACTITIONER,
        minutes="practitioner_minutes",
        what="the billing practitioner's own minutes",
        rule_ids=("CCMP-T1", "CCMP-U1"),
        payer_rule_ids=("CCMP-$",),
    )
    complex_ccm = Alternative(
        key="complex",
        code=ccm.complex,
        pool=nz.POOL_ALL,
        minutes="staff_minutes",
        what=ANYONES_MINUTES,
        rule_ids=("CCCM-T1", "CCCM-M1", "CCCM-U1"),
        payer_rule_ids=("CCM-$",),
    )
    return staff, practitioner, complex_ccm


def family_codes(ctx: EvalContext) -> list[str]:
    """Every monthly CCM code, base and add-on, in the order of the alternatives."""
    return [code for alt in alternatives(ctx) for code in (alt.code.base_code, alt.code.addon_code)]


def addon_units(alt: Alternative) -> pl.Expr:
    """Add-on units: one per full step of minutes beyond the threshold, capped."""
    code = alt.code
    threshold = code.threshold_minutes
    step = code.addon_step_minutes
    cap = code.addon_max_units
    full_steps = ((pl.col(alt.minutes) - threshold) // step).clip(lower_bound=0)
    return pl.min_horizontal(full_steps, pl.lit(cap)).cast(pl.Int64)
