"""The rule framework: a code's requirements as named criteria over a facts frame.

A family builds one facts frame per period (one row per candidate, e.g. patient x
billing practitioner) and a list of ``CodeRule``. ``apply_rules`` evaluates them in
order over the whole frame; a rule may refer to earlier rules' results through the
columns ``<rule key>:line`` (add-ons are considered only when their base is billed).

Null means not met: a criterion whose expression is null for a row fails (a missing
consent is a gap, never a pass). The first failing criterion, in the order listed,
names the gap's reason, status, detail, shortfall and deadline.

The result is one *outcome* row per considered code and candidate, either a claim
line (``is_line``) or a gap. Conflict resolution and output formatting work on those.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from billing_engine.errors import ConfigError

STATUS_BLOCKED = "blocked"
STATUS_SHORT = "short"
STATUS_SUPPRESSED = "suppressed"
STATUS_INFO = "info"

# Columns every outcome frame has, in this order.
OUTCOME_SCHEMA: dict[str, pl.DataType] = {
    "patient_id": pl.String(),
    "billing_practitioner_id": pl.String(),
    "payer_id": pl.String(),
    "code": pl.String(),
    "family": pl.String(),
    "rule_key": pl.String(),
    "alternative": pl.String(),
    "base_key": pl.String(),
    "is_line": pl.Boolean(),
    "units": pl.Int64(),
    "date_of_service": pl.Date(),
    "place_of_service": pl.String(),
    "icd10_codes": pl.List(pl.String()),
    "period_start": pl.Date(),
    "period_end": pl.Date(),
    "status": pl.String(),
    "reason": pl.String(),
    "detail": pl.String(),
    "minutes_logged": pl.Int64(),
    "minutes_needed": pl.Int64(),
    "deadline": pl.Date(),
    "evidence": pl.List(pl.String()),
    "rule": pl.String(),
    "parameters": pl.String(),
}


def empty_outcomes() -> pl.DataFrame:
    return pl.DataFrame(schema=OUTCOME_SCHEMA)


@dataclass(frozen=True)
class Criterion:
    """One named requirement of a code.

    ``met`` is a boolean expression over the facts frame (null = not met). When this is
    the first criterion that fails, the gap takes ``reason``, ``status`` (default
    blocked), ``detail`` (default the description), ``minutes_needed`` and
    ``deadline``. ``shows`` names fact columns ``billing explain`` prints beside it.
    """

    name: str
    description: str
    met: pl.Expr
    reason: str
    rules: tuple[str, ...] = ()
    status: pl.Expr | None = None
    detail: pl.Expr | None = None
    minutes_needed: pl.Expr | None = None
    deadline: pl.Expr | None = None
    shows: tuple[str, ...] = ()


@dataclass(frozen=True)
class CodeRule:
    """A billable code: when it is considered, its criteria, and what its line says."""

    key: str  # stable id, e.g. "ccm.staff.base"
    code: str  # the HCPCS/CPT code, read from the family's parameters
    family: str
    considered: pl.Expr
    criteria: tuple[Criterion, ...]
    units: pl.Expr
    date_of_service: pl.Expr
    evidence: pl.Expr  # list[str]
    rules: tuple[str, ...]
    alternative: str = ""  # member of a precedence group (see code_rules/conflicts.yaml)
    base_key: str | None = None  # for add-ons: the key of the base code's rule
    minutes_logged: pl.Expr = field(default_factory=lambda: pl.lit(None, dtype=pl.Int64))
    place_of_service: pl.Expr = field(default_factory=lambda: pl.lit(None, dtype=pl.String))
    icd10_codes: pl.Expr = field(default_factory=lambda: pl.lit(None, dtype=pl.List(pl.String)))
    parameters: tuple[str, ...] = ()  # names of the parameters the rule used
    description: str = ""

    def fact_columns(self) -> tuple[str, ...]:
        """The facts columns this rule reads, found in its own expressions (an earlier
        rule's ``<key>:line`` column included): what its family's facts must hold."""
        exprs = [
            self.considered,
            self.units,
            self.date_of_service,
            self.evidence,
            self.minutes_logged,
            self.place_of_service,
            self.icd10_codes,
        ]
        for crit in self.criteria:
            exprs.append(crit.met)
            exprs.extend(
                e
                for e in (crit.status, crit.detail, crit.minutes_needed, crit.deadline)
                if e is not None
            )
        names = {name for e in exprs for name in e.meta.root_names()}
        names.update(name for crit in self.criteria for name in crit.shows)
        return tuple(sorted(names))


def _col(rule: CodeRule, name: str) -> str:
    return f"{rule.key}:{name}"


def criterion_column(rule: CodeRule, criterion: Criterion) -> str:
    return _col(rule, criterion.name)


def considered_column(rule: CodeRule) -> str:
    return _col(rule, "considered")


def line_column(rule: CodeRule) -> str:
    return _col(rule, "line")


def _first_failing(rule: CodeRule, pick: str, default: pl.Expr) -> pl.Expr:
    """The attribute `pick` of the first failing criterion (a pl.when chain)."""
    chain: Any = None  # polars' When/Then builder types are not public
    for crit in rule.criteria:
        value = getattr(crit, pick)
        if pick == "reason":
            value = pl.lit(crit.reason)
        elif pick == "detail" and value is None:
            value = pl.lit(crit.description)
        elif value is None:
            value = default
        failed = ~pl.col(criterion_column(rule, crit))
        chain = (pl if chain is None else chain).when(failed).then(value)
    if chain is None:
        return default
    result: pl.Expr = chain.otherwise(default)
    return result


def apply_rules(
    facts: pl.DataFrame,
    rules: Sequence[CodeRule],
    identity: Sequence[str],
    period_start: pl.Expr,
    period_end: pl.Expr,
    parameters_text: dict[str, str],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Evaluate `rules` in order over `facts`.

    Returns the facts frame with every rule's criterion columns (for explain) and the
    outcome frame (``OUTCOME_SCHEMA``) of all considered codes. `identity` must
    contain patient_id, billing_practitioner_id and payer_id columns of `facts`.
    `parameters_text` maps rule key -> "name=value;..." of the parameters it used.
    """
    outcomes: list[pl.DataFrame] = []
    for rule in rules:
        missing = [c for c in rule.fact_columns() if c not in facts.columns]
        if missing:
            raise ConfigError(
                f"rule {rule.key} ({rule.code}) reads facts its family does not build: "
                + ", ".join(missing)
            )
        checks = [
            crit.met.fill_null(False).alias(criterion_column(rule, crit)) for crit in rule.criteria
        ]
        facts = facts.with_columns(
            rule.considered.fill_null(False).alias(considered_column(rule)), *checks
        )
        all_met = pl.all_horizontal(
            [pl.lit(True), *[pl.col(criterion_column(rule, c)) for c in rule.criteria]]
        )
        facts = facts.with_columns(
            (pl.col(considered_column(rule)) & all_met).alias(line_column(rule))
        )
        is_line = pl.col(line_column(rule))

        def gap_only(e: pl.Expr, is_line: pl.Expr = is_line) -> pl.Expr:
            return pl.when(is_line).then(None).otherwise(e)

        def line_only(e: pl.Expr, is_line: pl.Expr = is_line) -> pl.Expr:
            return pl.when(is_line).then(e).otherwise(None)

        out = facts.filter(pl.col(considered_column(rule))).select(
            *[pl.col(c) for c in identity],
            code=pl.lit(rule.code),
            family=pl.lit(rule.family),
            rule_key=pl.lit(rule.key),
            alternative=pl.lit(rule.alternative or None, dtype=pl.String),
            base_key=pl.lit(rule.base_key, dtype=pl.String),
            is_line=is_line,
            units=line_only(rule.units).cast(pl.Int64),
            date_of_service=line_only(rule.date_of_service).cast(pl.Date),
            place_of_service=rule.place_of_service.cast(pl.String),
            icd10_codes=rule.icd10_codes.cast(pl.List(pl.String)),
            period_start=period_start,
            period_end=period_end,
            status=gap_only(_first_failing(rule, "status", pl.lit(STATUS_BLOCKED))),
            reason=gap_only(_first_failing(rule, "reason", pl.lit(None, dtype=pl.String))),
            detail=gap_only(_first_failing(rule, "detail", pl.lit(None, dtype=pl.String))),
            minutes_logged=rule.minutes_logged.cast(pl.Int64),
            minutes_needed=gap_only(
                _first_failing(rule, "minutes_needed", pl.lit(None, dtype=pl.Int64))
            ).cast(pl.Int64),
            deadline=gap_only(_first_failing(rule, "deadline", pl.lit(None, dtype=pl.Date))).cast(
                pl.Date
            ),
            evidence=rule.evidence.cast(pl.List(pl.String)),
            rule=pl.lit(" ".join(rule.rules)),
            parameters=pl.lit(parameters_text.get(rule.key, "")),
        )
        outcomes.append(out.select([pl.col(c).cast(t) for c, t in OUTCOME_SCHEMA.items()]))
    if not outcomes:
        return facts, empty_outcomes()
    return facts, pl.concat(outcomes)
