"""The Medicaid state table: which T-code a program bills in a state and on what terms.

T-codes are state-defined (TCODE-2): ``medicaid.state_rules`` (with the setting
``medicaid.state_overrides`` merged over it) has a row per state (``default`` for any
state not listed) and program, saying whether the program bills per 15 minutes or per
month, how minutes become units, the caps and whose minutes count. A malformed table is
a ConfigError naming the state, program and field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import polars as pl

from billing_engine.engine.context import EvalContext
from billing_engine.errors import ConfigError
from code_rules.parameters_typed import typed

FAMILY = "medicaid"

# Values of the state table's `unit` field.
PER_UNIT, MONTHLY = "per_15_minutes", "monthly"
UNIT_KINDS = (PER_UNIT, MONTHLY)
DEFAULT_STATE = "default"
NURSE_FLAG = "nurse_visit_codes"
STATE_RE = re.compile(r"^[A-Z]{2}$")

# Fields of one program's entry in the state table, and their kinds.
INT_OR_NULL = ("max_units_per_day", "max_units_per_month")
NON_NEGATIVE_INT = ("monthly_min_contacts", "monthly_min_minutes")
STR_LIST = ("staff_credentials", "billing_credentials", "contact_modes")
PROGRAM_FIELDS = ("unit", "unit_rule", *INT_OR_NULL, *STR_LIST, *NON_NEGATIVE_INT)


class CaseProgram(Protocol):
    """A case-management program's parameters: ``medicaid.case_management`` and
    ``medicaid.targeted`` (its encounter program, 15-minute code and monthly code)."""

    @property
    def PROGRAM(self) -> str: ...  # noqa: N802

    @property
    def program(self) -> str: ...

    @property
    def UNIT_CODE(self) -> str: ...  # noqa: N802

    @property
    def unit_code(self) -> str: ...

    @property
    def MONTHLY_CODE(self) -> str: ...  # noqa: N802

    @property
    def monthly_code(self) -> str: ...


@dataclass(frozen=True)
class Program:
    """One case-management program: the key of its rules and its parameters."""

    key: str  # rule keys medicaid.<key>.unit / medicaid.<key>.monthly
    params: CaseProgram


def case_programs(ctx: EvalContext) -> tuple[Program, Program]:
    """Case management and targeted case management, in the order their rules are listed."""
    medicaid = typed(ctx.params).medicaid
    return Program("case_management", medicaid.case_management), Program(
        "targeted", medicaid.targeted
    )


def programs(ctx: EvalContext) -> list[str]:
    """The encounter programs whose time bills a case-management T-code."""
    return [x.params.program for x in case_programs(ctx)]


def case_codes(ctx: EvalContext) -> list[str]:
    """The case-management codes: per 15 minutes and monthly, of both programs."""
    return [
        code for x in case_programs(ctx) for code in (x.params.unit_code, x.params.monthly_code)
    ]


def nursing_codes(ctx: EvalContext) -> list[str]:
    nursing = typed(ctx.params).medicaid.nursing
    return [nursing.assessment_code, nursing.rn_code, nursing.lpn_code]


def _config_error(where: str, problem: str) -> ConfigError:
    return ConfigError(f"medicaid state rules, {where}: {problem}")


def unit_rules(ctx: EvalContext) -> dict[str, tuple[int, int]]:
    """Unit rule name -> (first_unit_minutes, later_unit_minutes), validated."""
    raw = typed(ctx.params).medicaid.unit_rules
    if not raw:
        raise ConfigError("parameter 'medicaid.unit_rules' must be a non-empty mapping")
    out: dict[str, tuple[int, int]] = {}
    for name, spec in raw.items():
        values = []
        for field in ("first_unit_minutes", "later_unit_minutes"):
            value = spec.get(field) if isinstance(spec, Mapping) else None
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(
                    f"parameter 'medicaid.unit_rules': {name}.{field} must be a whole number "
                    f"of minutes >= 1, got {value!r}"
                )
            values.append(value)
        out[str(name)] = (values[0], values[1])
    return out


def _state_mapping(read: Callable[[], Mapping[str, Any]], where: str) -> Mapping[str, Any]:
    """A state table parameter, read through the typed accessor; one that is not a
    mapping is a ConfigError saying what it must be."""
    try:
        return read()
    except ConfigError as error:
        raise _config_error(where, f"must be a mapping of state -> rules ({error})") from error


def _merge(base: Mapping[str, Any], extra: Mapping[str, Any], where: str) -> dict[str, Any]:
    """State table `extra` merged over `base`: state, then program, then field."""
    merged: dict[str, Any] = {
        str(k): dict(v) if isinstance(v, Mapping) else v for k, v in base.items()
    }
    for state, entry in extra.items():
        if not isinstance(entry, Mapping):
            raise _config_error(f"{where} {state}", f"must be a mapping, got {entry!r}")
        target = merged.setdefault(str(state), {})
        if not isinstance(target, dict):
            raise _config_error(f"{where} {state}", f"must be a mapping, got {target!r}")
        for key, value in entry.items():
            if isinstance(value, Mapping) and isinstance(target.get(key), Mapping):
                target[key] = {**target[key], **value}
            else:
                target[key] = value
    return merged


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _field_problem(field: str, value: Any, rules: Mapping[str, Any]) -> str | None:
    """What is wrong with one field of a program's entry (None when it is well formed)."""
    if field == "unit" and value not in UNIT_KINDS:
        return f"must be one of {list(UNIT_KINDS)}"
    if field == "unit_rule" and value not in rules:
        return f"must be one of the unit rules {sorted(rules)}"
    if field in INT_OR_NULL and value is not None and not (_whole(value) and value >= 1):
        return "must be null (no cap) or a whole number >= 1"
    if field in NON_NEGATIVE_INT and not (_whole(value) and value >= 0):
        return "must be a whole number >= 0"
    if field in STR_LIST and not (
        isinstance(value, list) and all(isinstance(v, str) for v in value)
    ):
        return "must be a list of strings"
    return None


def _check_field(where: str, field: str, value: Any, rules: Mapping[str, Any]) -> None:
    problem = _field_problem(field, value, rules)
    if problem:
        raise _config_error(where, f"{field} {problem}, got {value!r}")


def state_table(ctx: EvalContext) -> pl.DataFrame:
    """The effective rules: one row per state (and ``default``) and encounter program.

    ``medicaid.state_rules`` with the setting ``medicaid.state_overrides`` merged over it;
    a state's program entry is completed from ``default``. A malformed table raises
    ConfigError naming the state, program and field.
    """
    return ctx.memo.frame("medicaid.state_table", lambda: _state_table(ctx))


def _program_row(
    where: str,
    default: Mapping[str, Any],
    entry: Mapping[str, Any],
    program: str,
    rules: dict[str, tuple[int, int]],
    override: str | None,
) -> dict[str, Any]:
    """One state's rules for one program, completed from ``default`` and validated."""
    parts = [default.get(program) or {}, entry.get(program) or {}]
    if not all(isinstance(part, Mapping) for part in parts):
        raise _config_error(where, "a program's rules must be a mapping of field -> value")
    spec = {**parts[0], **parts[1]}
    unknown = set(spec) - set(PROGRAM_FIELDS)
    if unknown:
        raise _config_error(where, f"unknown fields {sorted(unknown)}")
    missing = [f for f in PROGRAM_FIELDS if f not in spec]
    if missing:
        raise _config_error(where, f"missing fields {missing} (in 'default')")
    for field in PROGRAM_FIELDS:
        _check_field(where, field, spec[field], rules)
    rule = override or spec["unit_rule"]
    return {
        "program": program,
        **{f: spec[f] for f in PROGRAM_FIELDS},
        "unit_rule": rule,
        "first_unit_minutes": rules[rule][0],
        "later_unit_minutes": rules[rule][1],
    }


def _state_rows(
    state: str,
    entry: Any,
    default: Mapping[str, Any],
    names: list[str],
    rules: dict[str, tuple[int, int]],
    override: str | None,
) -> list[dict[str, Any]]:
    """The rows of one state (or ``default``): one per program."""
    if state != DEFAULT_STATE and not STATE_RE.match(state):
        raise _config_error(state, "states are two capital letters (or 'default')")
    if not isinstance(entry, Mapping):
        raise _config_error(state, f"must be a mapping of program -> rules, got {entry!r}")
    unknown = set(entry) - {*names, NURSE_FLAG}
    if unknown:
        raise _config_error(state, f"unknown keys {sorted(unknown)}")
    nurse = entry.get(NURSE_FLAG, default.get(NURSE_FLAG))
    if not isinstance(nurse, bool):
        raise _config_error(state, f"{NURSE_FLAG} must be true or false, got {nurse!r}")
    return [
        {
            "state_key": state,
            **_program_row(f"{state} {program}", default, entry, program, rules, override),
            NURSE_FLAG: nurse,
        }
        for program in names
    ]


TABLE_SCHEMA: dict[str, Any] = {
    "state_key": pl.String,
    "program": pl.String,
    "unit": pl.String,
    "unit_rule": pl.String,
    **dict.fromkeys(INT_OR_NULL, pl.Int64),
    **dict.fromkeys(STR_LIST, pl.List(pl.String)),
    **dict.fromkeys(NON_NEGATIVE_INT, pl.Int64),
    "first_unit_minutes": pl.Int64,
    "later_unit_minutes": pl.Int64,
    NURSE_FLAG: pl.Boolean,
}


def _state_table(ctx: EvalContext) -> pl.DataFrame:
    medicaid = typed(ctx.params).medicaid
    rules = unit_rules(ctx)
    shipped = _state_mapping(lambda: medicaid.state_rules, "medicaid.state_rules")
    extra = _state_mapping(lambda: medicaid.state_overrides, "medicaid.state_overrides")
    table = _merge(shipped, extra, "medicaid.state_overrides")
    override = medicaid.unit_rule_override
    if override is not None and override not in rules:
        raise _config_error("medicaid.unit_rule_override", f"unknown unit rule {override!r}")
    default = table.get(DEFAULT_STATE)
    if not isinstance(default, Mapping):
        raise _config_error(DEFAULT_STATE, "the table needs a 'default' entry")
    names = programs(ctx)
    rows = [
        row
        for state, entry in table.items()
        for row in _state_rows(state, entry, default, names, rules, override)
    ]
    return pl.DataFrame(rows, schema=TABLE_SCHEMA)


def with_state_rules(ctx: EvalContext, frame: pl.DataFrame) -> pl.DataFrame:
    """Join the state table's row for the frame's ``payer_state`` and ``program``."""
    table = state_table(ctx)
    states = table.get_column("state_key").unique().to_list()
    return frame.with_columns(
        state_key=pl.when(pl.col("payer_state").is_in(states))
        .then(pl.col("payer_state"))
        .otherwise(pl.lit(DEFAULT_STATE))
    ).join(table, on=["state_key", "program"], how="left")
