"""The explanation of one patient's month: every code considered, every criterion.

A small view model built from an ``EvaluationResult``; ``reports/templates/
explain.txt.j2`` renders it. Nothing here decides anything: it reads the criterion
columns the rules wrote and the outcomes after conflict resolution.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import polars as pl

from billing_engine.evaluate import EvaluationResult
from billing_engine.family import PERIOD_START_COLUMN
from billing_engine.params import ParameterSet
from billing_engine.rules import considered_column, criterion_column


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


def build(
    result: EvaluationResult, params: ParameterSet, patient_id: str, code: str | None = None
) -> Explanation:
    codes: list[CodeView] = []
    outcomes = result.outcomes.filter(pl.col("patient_id") == patient_id)
    for rule_set in result.rule_sets:
        rows = rule_set.facts.filter(pl.col("patient_id") == patient_id)
        for rule in rule_set.rules:
            if code and rule.code != code:
                continue
            for row in rows.filter(pl.col(considered_column(rule))).to_dicts():
                match = outcomes.filter(
                    (pl.col("rule_key") == rule.key)
                    & (pl.col("billing_practitioner_id").eq_missing(row["billing_practitioner_id"]))
                    & (pl.col("payer_id").eq_missing(row.get("payer_id")))
                )
                if row.get(PERIOD_START_COLUMN) is not None:
                    match = match.filter(pl.col("period_start") == row[PERIOD_START_COLUMN])
                outcome = match.to_dicts()[0] if match.height else None
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
                    )
                )
    entries = [
        EntryView(
            e["encounter_id"],
            _show(e["date"]),
            _show(e["program"]),
            _show(e["performer_id"]),
            _show(e["role"]),
            _show(e["minutes"]),
            "counted" if e["excluded"] is None else f"not counted: {e['excluded']}",
        )
        for e in result.time_entries.filter(pl.col("patient_id") == patient_id)
        .sort("date", "encounter_id")
        .to_dicts()
    ]
    settings = []
    for setting in sorted(params.settings(), key=lambda p: p.name):
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
