"""The explanation of one patient's month: every code considered, every criterion.

A small view model built from an ``EvaluationResult``; ``reports/templates/
explain.txt.j2`` renders it. Nothing here decides anything: it reads the criterion
columns the rules wrote, the outcomes after conflict resolution and the priced lines
(amounts and ``fee_source``). Given the bundle, it also says how many minutes of each
time entry counted under the shared time rules (``entry_minutes``: "5 of 7 counted
(2 min during visit E123)") and lists only the settings the explained codes read (their
families evaluated alone, plus pricing); without it, every setting the run read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import polars as pl

from billing_engine.engine.context import EvalContext
from billing_engine.engine.facts import time_entries, visit_intervals
from billing_engine.engine.family import PERIOD_START_COLUMN
from billing_engine.engine.kernel import considered_column, criterion_column
from billing_engine.engine.pipeline import EvaluationResult, evaluate
from billing_engine.engine.rulebook import Rulebook
from billing_engine.io.bundle import Bundle
from billing_engine.params.parameters import ParameterSet

AMOUNTS = (
    ("allowed", "allowed_amount"), ("payer", "payer_amount"), ("patient", "patient_amount"),
    ("secondary", "secondary_amount"), ("sequestration", "sequestration_amount"),
)  # fmt: skip


@dataclass(frozen=True)
class Value:
    name: str
    value: str


@dataclass(frozen=True)
class CriterionView:
    name: str
    description: str
    passed: bool
    rules: str
    values: list[Value]


@dataclass(frozen=True)
class ParameterView:
    name: str
    value: str
    sources: str
    overridden: bool


@dataclass(frozen=True)
class CodeView:
    code: str
    description: str
    billing_practitioner_id: str
    payer_id: str
    result: str
    criteria: list[CriterionView]
    parameters: list[ParameterView]
    rules: str
    evidence: str
    amounts: str = ""  # a priced claim line: "allowed 60.49, payer 47.42, ..."
    fee_source: str = ""  # how the allowed amount was found


@dataclass(frozen=True)
class EntryView:
    encounter_id: str
    date: str
    program: str
    performer_id: str
    role: str
    minutes: str
    fate: str


@dataclass(frozen=True)
class Explanation:
    patient_id: str
    month: str
    as_of: str
    rule_set_version: str
    source: str
    code_filter: str | None
    codes: list[CodeView]
    entries: list[EntryView]
    settings: list[ParameterView]


def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "-"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _result_text(outcome: dict[str, Any]) -> str:
    if outcome["is_line"]:
        dos = _show(outcome["date_of_service"])
        return f"CLAIM LINE: {outcome['units']} unit(s), date of service {dos}"
    text = f"GAP {outcome['status']} / {outcome['reason']}"
    if outcome.get("detail"):
        text += f": {outcome['detail']}"
    if outcome.get("minutes_needed") is not None:
        text += f"; {outcome['minutes_needed']} more minute(s) needed"
    if outcome.get("deadline") is not None:
        text += f" by {_show(outcome['deadline'])}"
    return text


def _parameters(
    result: EvaluationResult, params: ParameterSet, names: tuple[str, ...]
) -> list[ParameterView]:
    views = []
    for name in names:
        used = result.parameters_used.get(name)
        dated = params.get(name).carried(result.month.start)  # as used (--allow-unverified)
        value = used.value if used else dated.value
        views.append(
            ParameterView(
                name, _show(value), ", ".join(dated.sources), bool(used and used.overridden)
            )
        )
    return views


def _amounts(line: dict[str, Any]) -> tuple[str, str]:
    """'allowed 60.49, payer 47.42, patient 12.10, sequestration 0.97' and the fee source."""
    if line.get("allowed_amount") is None:
        return "no fee: amounts empty (see the fee_not_found gap)", "-"
    parts = []
    for label, column in AMOUNTS:
        if line.get(column) is None:
            continue  # no secondary coverage: no secondary amount
        who = f" ({line['secondary_payer_id']})" if column == "secondary_amount" else ""
        parts.append(f"{label}{who} {line[column]}")
    return ", ".join(parts), _show(line.get("fee_source"))


def entry_minutes(ctx: EvalContext, patient_id: str) -> pl.DataFrame:
    """encounter_id, counted (minutes), lost (text): how much of each entry counted.

    Follows the shared time rules (``facts.daily_minutes``, staff and practitioner
    pool): a timed entry loses the minutes during a face-to-face or separately billed
    visit (TIME-6, when ``common.exclude_time_during_visits``), those counted toward a
    program earlier in ``common.program_minute_priority`` (TIME-5) and those another
    entry of the same program and billing practitioner already counts (overlap counted
    once: the earlier entry keeps them). Untimed entries count whole; excluded entries 0.
    """
    entries = time_entries(ctx).filter(pl.col("patient_id") == patient_id)
    key = ["patient_id", "program", "billing_practitioner_id", "date"]
    timed = entries.filter(
        pl.col("excluded").is_null() & (pl.col("minutes") > 0) & pl.col("start_min").is_not_null()
    )
    priority = ctx.params.as_strs("common.program_minute_priority")
    rank = pl.col("program").replace_strict(
        priority, list(range(len(priority))), default=None, return_dtype=pl.Int32
    )
    minutes = (
        timed.select(
            *key,
            "encounter_id",
            "start_min",
            _rank=rank,
            minute=pl.int_ranges("start_min", pl.col("start_min") + pl.col("minutes")),
        )
        .explode("minute")
        .with_columns(pl.col("minute").cast(pl.Int32))
    )
    day_minute = ["patient_id", "date", "minute"]
    if ctx.params.as_bool("common.exclude_time_during_visits"):
        visits = (
            visit_intervals(ctx)
            .filter(pl.col("patient_id") == patient_id)
            .with_columns(minute=pl.int_ranges("start_min", "end_min"))
            .explode("minute")
            .with_columns(pl.col("minute").cast(pl.Int32))
            .group_by(day_minute)
            .agg(pl.col("visit_id").min())
        )
        minutes = minutes.join(visits, on=day_minute, how="left")
    else:
        minutes = minutes.with_columns(visit_id=pl.lit(None, dtype=pl.String))
    higher = (
        minutes.select(*day_minute, pl.col("_rank").alias("_other_rank"),
                       pl.col("program").alias("other_program"),
                       pl.col("encounter_id").alias("other_id"))
        .join(minutes.select(*day_minute, "_rank").unique(), on=day_minute)
        .filter(pl.col("_other_rank") < pl.col("_rank"))
        .sort("_other_rank", "other_id")
        .group_by(*day_minute, "_rank")
        .agg(pl.col("other_program").first(), pl.col("other_id").first())
    )  # fmt: skip
    minutes = minutes.join(higher, on=[*day_minute, "_rank"], how="left", nulls_equal=False)
    first = (
        minutes.sort("start_min", "encounter_id")
        .group_by(*key, "minute", maintain_order=True)
        .agg(pl.col("encounter_id").first().alias("first_id"))
    )
    minutes = minutes.join(first, on=[*key, "minute"], how="left", nulls_equal=True)
    why = (
        pl.when(pl.col("visit_id").is_not_null())
        .then(pl.format("during visit {}", pl.col("visit_id")))
        .when(pl.col("other_id").is_not_null())
        .then(pl.format("counted toward {} ({})", pl.col("other_program"), pl.col("other_id")))
        .when(pl.col("first_id") != pl.col("encounter_id"))
        .then(pl.format("overlapping {}, counted once", pl.col("first_id")))
    )
    lost = (
        minutes.with_columns(why=why)
        .filter(pl.col("why").is_not_null())
        .group_by("encounter_id", "why")
        .agg(n=pl.len(), at=pl.col("minute").min())
        .sort("encounter_id", "at")
        .group_by("encounter_id", maintain_order=True)
        .agg(
            lost_minutes=pl.col("n").sum().cast(pl.Int64),
            lost=pl.format("{} min {}", pl.col("n"), pl.col("why")).str.join("; "),
        )
    )
    return (
        entries.select("encounter_id", "minutes", "excluded")
        .join(lost, on="encounter_id", how="left")
        .select(
            "encounter_id",
            counted=pl.when(pl.col("excluded").is_null())
            .then(pl.col("minutes").fill_null(0) - pl.col("lost_minutes").fill_null(0))
            .otherwise(0)
            .cast(pl.Int64),
            lost=pl.col("lost"),
        )
    )


def _fate(entry: dict[str, Any], counted: dict[str, dict[str, Any]]) -> str:
    if entry["excluded"] is not None:
        return f"not counted: {entry['excluded']}"
    seen = counted.get(entry["encounter_id"])
    if seen is None:
        return "counted"
    text = f"{seen['counted']} of {_show(entry['minutes'])} counted"
    return text + (f" ({seen['lost']})" if seen["lost"] else "")


def _settings_read(
    result: EvaluationResult,
    rulebook: Rulebook,
    bundle: Bundle | None,
    families: set[str],
) -> set[str]:
    """Names of the settings the explained codes read: their families evaluated alone."""
    names = {p.name for p in rulebook.parameters.settings()}
    if bundle is None:
        return names & set(result.parameters_used)
    if not families:
        return set()
    alone = evaluate(
        bundle,
        result.month,
        result.as_of,
        rulebook=rulebook.only(families),
        settings=result.settings,
    )
    return names & set(alone.parameters_used)


def build(
    result: EvaluationResult,
    rulebook: Rulebook,
    patient_id: str,
    code: str | None = None,
    *,
    bundle: Bundle | None = None,
) -> Explanation:
    """The explanation of `patient_id`'s month (only `code` when given), under the
    rulebook `result` was evaluated with.

    `bundle` (the one `result` was evaluated from) adds the minutes each time entry
    counted and narrows the settings to those the explained codes read.
    """
    params = rulebook.parameters
    codes: list[CodeView] = []
    families: set[str] = set()
    outcomes = result.outcomes.filter(pl.col("patient_id") == patient_id)
    priced = result.priced_lines.filter(pl.col("patient_id") == patient_id)
    for rule_set in result.rule_sets:
        rows = rule_set.facts.filter(pl.col("patient_id") == patient_id)
        for rule in rule_set.rules:
            if code and rule.code != code:
                continue
            for row in rows.filter(pl.col(considered_column(rule))).to_dicts():
                families.add(rule_set.family)
                same = (
                    (pl.col("rule_key") == rule.key)
                    & (pl.col("billing_practitioner_id").eq_missing(row["billing_practitioner_id"]))
                    & (pl.col("payer_id").eq_missing(row.get("payer_id")))
                )
                if row.get(PERIOD_START_COLUMN) is not None:
                    same = same & (pl.col("period_start") == row[PERIOD_START_COLUMN])
                match = outcomes.filter(same)
                outcome = match.to_dicts()[0] if match.height else None
                amounts, fee_source = "", ""
                if outcome and outcome["is_line"]:
                    line = priced.filter(same)
                    if line.height:
                        amounts, fee_source = _amounts(line.to_dicts()[0])
                criteria = [
                    CriterionView(
                        crit.name,
                        crit.description,
                        bool(row[criterion_column(rule, crit)]),
                        " ".join(crit.rules),
                        [Value(col, _show(row.get(col))) for col in crit.shows],
                    )
                    for crit in rule.criteria
                ]
                codes.append(
                    CodeView(
                        code=rule.code,
                        description=rule.description,
                        billing_practitioner_id=_show(row["billing_practitioner_id"]),
                        payer_id=_show(row.get("payer_id")),
                        result=_result_text(outcome) if outcome else "not evaluated",
                        criteria=criteria,
                        parameters=_parameters(result, params, rule.parameters),
                        rules=" ".join(rule.rules),
                        evidence=";".join(outcome["evidence"] or []) if outcome else "",
                        amounts=amounts,
                        fee_source=fee_source,
                    )
                )
    counted: dict[str, dict[str, Any]] = {}
    if bundle is not None:
        ctx = EvalContext(
            bundle=bundle,
            month=result.month,
            as_of=result.as_of,
            params=params.for_period(result.month.start, result.month.end, result.settings),
        )
        counted = {r["encounter_id"]: r for r in entry_minutes(ctx, patient_id).to_dicts()}
    entries = [
        EntryView(
            e["encounter_id"],
            _show(e["date"]),
            _show(e["program"]),
            _show(e["performer_id"]),
            _show(e["role"]),
            _show(e["minutes"]),
            _fate(e, counted),
        )
        for e in result.time_entries.filter(pl.col("patient_id") == patient_id)
        .sort("date", "encounter_id")
        .to_dicts()
    ]
    read = _settings_read(result, rulebook, bundle, families)
    settings = []
    for setting in sorted(params.settings(), key=lambda p: p.name):
        if setting.name not in read:
            continue
        dated = setting.carried(result.month.start)
        overridden = setting.name in result.settings
        value = result.settings[setting.name] if overridden else dated.value
        settings.append(
            ParameterView(setting.name, _show(value), ", ".join(dated.sources), overridden)
        )
    return Explanation(
        patient_id=patient_id,
        month=str(result.month),
        as_of=result.as_of.isoformat(),
        rule_set_version=result.rule_set_version,
        source=result.source,
        code_filter=code,
        codes=codes,
        entries=entries,
        settings=settings,
    )
