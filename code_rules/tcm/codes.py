"""TCM's names: the family, its rule ids, its two codes and the helpers every part shares.

The two codes (99496 high MDM, 99495 moderate MDM) have the same parameters under
``tcm.high.*`` and ``tcm.moderate.*``: ``TcmCode`` is their shape, ``Alternative`` one
code with the columns of the facts that are its own (``last_<key>_date``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import polars as pl

from billing_engine.engine.context import EvalContext
from billing_engine.engine.kernel import Criterion
from code_rules.parameters_typed import Tcm, TcmContact, TcmVisit, typed

FAMILY = "tcm"
RULE_SET = "tcm.discharge"
CONTACT_KIND = "tcm_contact"  # interchange encounters.kind
FAILED = "attempt_failed"  # interchange encounters.outcome
DAY_ONE = "discharge_day_is_day_one"  # tcm.contact / tcm.visit day_counting
BILL_AND_FLAG = "bill_and_flag"  # tcm.death_policy
NO_HOLIDAYS, FEDERAL_OBSERVED = "none", "federal_observed"  # tcm.contact.holidays
NURSING_FACILITY = "nursing_facility"  # interchange discharges.disposition
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
COST_SHARING_RULE_IDS = ("TCM-$",)  # what the coverage and payer checks feed
SHARED_PARAMETERS = (
    Tcm.PERIOD_DAYS,
    Tcm.QUALIFYING_SETTINGS,
    Tcm.COMMUNITY_DESTINATIONS,
    Tcm.NURSING_FACILITY_IS_COMMUNITY,
    TcmContact.BUSINESS_DAYS,
    TcmContact.MIN_FAILED_ATTEMPTS,
    TcmContact.DAY_COUNTING,
    TcmContact.HOLIDAYS,
    TcmVisit.DAY_COUNTING,
    Tcm.DISCHARGE_DAY_MANAGEMENT_CODES,
    Tcm.DEATH_POLICY,
)


class TcmCode(Protocol):
    """One TCM code's parameters: ``tcm.high`` and ``tcm.moderate``."""

    @property
    def CODE(self) -> str: ...  # noqa: N802

    @property
    def code(self) -> str: ...

    @property
    def VISIT_WITHIN_DAYS(self) -> str: ...  # noqa: N802

    @property
    def visit_within_days(self) -> int: ...

    @property
    def MIN_MDM(self) -> str: ...  # noqa: N802

    @property
    def min_mdm(self) -> str: ...


@dataclass(frozen=True)
class Alternative:
    """One TCM code: rule key and alternative ``tcm.<key>``, facts ``last_<key>_date``."""

    key: str
    code: TcmCode

    @property
    def last_date(self) -> str:
        """The facts column of the last day of this code's visit window."""
        return f"last_{self.key}_date"


def alternatives(ctx: EvalContext) -> tuple[Alternative, Alternative]:
    """High then moderate MDM: the most specific first."""
    tcm = typed(ctx.params).tcm
    return Alternative("high", tcm.high), Alternative("moderate", tcm.moderate)


def family_codes(ctx: EvalContext) -> list[str]:
    return [alt.code.code for alt in alternatives(ctx)]


def horizon(ctx: EvalContext) -> dt.date:
    """The last date whose encounters are known: max(as-of, the month's end)."""
    return max(ctx.as_of, ctx.end)


def empty_list() -> pl.Expr:
    return pl.lit([], dtype=pl.List(pl.String))


def all_met(criteria: Sequence[Criterion]) -> pl.Expr:
    """Every criterion met (a null is not met)."""
    return pl.all_horizontal([pl.lit(True), *[c.met.fill_null(False) for c in criteria]])
