"""Medicaid HCPCS T-codes: case management, targeted case management and nursing.

Every code, unit length, unit rule and cap comes from ``parameters.yaml`` beside this
file; the requirements in plain words are in ``README.md``. T-codes are state-defined
(TCODE-2): the Medicaid payer's state selects a row of the state table (``default`` for
any state not listed), which says whether a program bills per 15 minutes (T1016 / T1017)
or per month (T2022 / T2023), how minutes become units, the caps and whose minutes count.

Three rule sets:

- ``medicaid.daily``: one candidate per patient x program x billing practitioner x date
  of service with case-management time logged (15-minute codes; units on the day's
  total counted minutes, interchange semantics 9). Period and date of service = the day.
- ``medicaid.monthly``: one candidate per patient x program x billing practitioner x
  payer for the month, for states whose rules bill the program monthly. Date of service
  = the day the state's monthly minimum was met.
- ``medicaid.nursing``: one candidate per nurse visit of a Medicaid-primary patient in a
  state whose table enables the nursing codes (T1001 / T1002 / T1003; off by default).

The payer of a T-code is the patient's active Medicaid coverage of any rank (a dual
eligible's Medicaid behind Medicare), else the primary coverage, which then does not
pay (TCODE-1). Minutes counted for a Medicare care-management program of the same
patient are not counted again (TCODE-3).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from billing_engine.engine import facts as nz
from billing_engine.engine.context import EvalContext
from billing_engine.engine.family import (
    RuleSetResult,
    coverage_criterion,
    evidence_list,
    not_billed_by_other_criterion,
    payer_pays_criterion,
    run_rule_set,
)
from billing_engine.engine.kernel import STATUS_BLOCKED, STATUS_SHORT, CodeRule, Criterion
from billing_engine.errors import ConfigError

FAMILY = "medicaid"

# Parameter prefixes of the two case-management programs.
CASE_MANAGEMENT, TARGETED = "case_management", "targeted"
PREFIXES = (CASE_MANAGEMENT, TARGETED)

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

DAY_KEYS = ["patient_id", "program", "billing_practitioner_id", "date"]
PATIENT_DAY = ["patient_id", "date"]
EMPTY_IDS = pl.lit([], dtype=pl.List(pl.String))

RULE_IDS = ("TCODE-1", "TCODE-2", "TCODE-3", "TIME-1", "TIME-4", "TIME-5", "TIME-6", "TIME-7")
NURSING_RULE_IDS = ("TCODE-1", "TCODE-2", "TIME-1")


# --------------------------------------------------------------------------- state table


def programs(ctx: EvalContext) -> dict[str, str]:
    """Encounter program -> parameter prefix (case_management -> case_management, ...)."""
    return {ctx.params.as_str(f"medicaid.{prefix}.program"): prefix for prefix in PREFIXES}


def case_codes(ctx: EvalContext) -> list[str]:
    """The case-management codes: per 15 minutes and monthly, of both programs."""
    p = ctx.params
    return [p.as_str(f"medicaid.{x}.{kind}_code") for x in PREFIXES for kind in ("unit", "monthly")]


def nursing_codes(ctx: EvalContext) -> list[str]:
    p = ctx.params
    return [p.as_str(f"medicaid.nursing.{n}_code") for n in ("assessment", "rn", "lpn")]


def _config_error(where: str, problem: str) -> ConfigError:
    return ConfigError(f"medicaid state rules, {where}: {problem}")


def unit_rules(ctx: EvalContext) -> dict[str, tuple[int, int]]:
    """Unit rule name -> (first_unit_minutes, later_unit_minutes), validated."""
    raw = ctx.params["medicaid.unit_rules"]
    if not isinstance(raw, Mapping) or not raw:
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


def _merge(base: Mapping[str, Any], extra: Mapping[str, Any], where: str) -> dict[str, Any]:
    """State table `extra` merged over `base`: state, then program, then field."""
    if not isinstance(extra, Mapping):
        raise _config_error(where, f"must be a mapping of state -> rules, got {extra!r}")
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


def _check_field(where: str, field: str, value: Any, rules: Mapping[str, Any]) -> None:
    def whole(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    problem = None
    if field == "unit" and value not in UNIT_KINDS:
        problem = f"must be one of {list(UNIT_KINDS)}"
    elif field == "unit_rule" and value not in rules:
        problem = f"must be one of the unit rules {sorted(rules)}"
    elif field in INT_OR_NULL and value is not None and not (whole(value) and value >= 1):
        problem = "must be null (no cap) or a whole number >= 1"
    elif field in NON_NEGATIVE_INT and not (whole(value) and value >= 0):
        problem = "must be a whole number >= 0"
    elif field in STR_LIST and not (
        isinstance(value, list) and all(isinstance(v, str) for v in value)
    ):
        problem = "must be a list of strings"
    if problem:
        raise _config_error(where, f"{field} {problem}, got {value!r}")


def state_table(ctx: EvalContext) -> pl.DataFrame:
    """The effective rules: one row per state (and ``default``) and encounter program.

    ``medicaid.state_rules`` with the setting ``medicaid.state_overrides`` merged over it;
    a state's program entry is completed from ``default``. A malformed table raises
    ConfigError naming the state, program and field.
    """
    return ctx.memo.frame("medicaid.state_table", lambda: _state_table(ctx))


def _state_table(ctx: EvalContext) -> pl.DataFrame:
    p = ctx.params
    rules = unit_rules(ctx)
    shipped = p["medicaid.state_rules"]
    if not isinstance(shipped, Mapping):
        raise _config_error("medicaid.state_rules", "must be a mapping of state -> rules")
    table = _merge(shipped, p["medicaid.state_overrides"] or {}, "medicaid.state_overrides")
    override = p["medicaid.unit_rule_override"]
    if override is not None and override not in rules:
        raise _config_error("medicaid.unit_rule_override", f"unknown unit rule {override!r}")
    default = table.get(DEFAULT_STATE)
    if not isinstance(default, Mapping):
        raise _config_error(DEFAULT_STATE, "the table needs a 'default' entry")
    names = programs(ctx)
    rows: list[dict[str, Any]] = []
    for state, entry in table.items():
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
        for program in names:
            where = f"{state} {program}"
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
            rows.append(
                {
                    "state_key": state,
                    "program": program,
                    **{f: spec[f] for f in PROGRAM_FIELDS},
                    "unit_rule": rule,
                    "first_unit_minutes": rules[rule][0],
                    "later_unit_minutes": rules[rule][1],
                    NURSE_FLAG: nurse,
                }
            )
    schema: dict[str, Any] = {
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
    frame = pl.DataFrame(rows, schema=schema)
    return frame


def with_state_rules(ctx: EvalContext, frame: pl.DataFrame) -> pl.DataFrame:
    """Join the state table's row for the frame's ``payer_state`` and ``program``."""
    table = state_table(ctx)
    states = table.get_column("state_key").unique().to_list()
    return frame.with_columns(
        state_key=pl.when(pl.col("payer_state").is_in(states))
        .then(pl.col("payer_state"))
        .otherwise(pl.lit(DEFAULT_STATE))
    ).join(table, on=["state_key", "program"], how="left")


# --------------------------------------------------------------------------- payer


def with_medicaid_payer(ctx: EvalContext, frame: pl.DataFrame, date_column: str) -> pl.DataFrame:
    """Adds ``payer_id``, ``payer_kind`` and ``payer_state``: the active coverage on the date
    whose payer kind pays T-codes (any rank, lowest rank first), else the primary coverage.

    A proposed shared helper: ``nz.primary_coverage`` with a preferred list of payer kinds.
    """
    kinds = ctx.params.as_strs("medicaid.paying_payer_kinds")
    cov = ctx.bundle["coverages"].select(
        "patient_id", "payer_id", "start_date", "end_date", pl.col("rank").fill_null(1)
    )
    payers = ctx.bundle["payers"].select(
        "payer_id", pl.col("kind").alias("payer_kind"), pl.col("state").alias("payer_state")
    )
    indexed = frame.with_row_index("_cov_row")
    matched = (
        indexed.select("_cov_row", "patient_id", date_column)
        .join(cov, on="patient_id", how="inner")
        .filter(
            (pl.col("start_date") <= pl.col(date_column))
            & (pl.col("end_date").is_null() | (pl.col("end_date") >= pl.col(date_column)))
        )
        .join(payers, on="payer_id", how="left")
        .with_columns(_not_paying=~pl.col("payer_kind").is_in(kinds).fill_null(False))
        .sort(
            "_cov_row", "_not_paying", "rank", "start_date", descending=[False, False, False, True]
        )
        .unique(subset=["_cov_row"], keep="first")
        .select("_cov_row", "payer_id", "payer_kind", "payer_state")
    )
    return indexed.join(matched, on="_cov_row", how="left").sort("_cov_row").drop("_cov_row")


def with_pays(ctx: EvalContext, facts: pl.DataFrame, codes: list[str], date: str) -> pl.DataFrame:
    """``pays:<code>`` for each code (payer_codes rows, else the T-code payer kinds)."""
    kinds = ctx.params.as_strs("medicaid.paying_payer_kinds")
    for code in codes:
        frame = facts.with_columns(_code=pl.lit(code))
        facts = facts.with_columns(
            nz.payer_pays(ctx, frame, "_code", date, kinds).alias(f"pays:{code}")
        )
    return facts


def with_diagnoses(ctx: EvalContext, facts: pl.DataFrame) -> pl.DataFrame:
    """``icd10_codes``: up to 4 of the patient's conditions active in the month."""
    conditions = (
        ctx.bundle["conditions"]
        .filter(
            (pl.col("onset_date").is_null() | (pl.col("onset_date") <= ctx.end))
            & (pl.col("resolved_date").is_null() | (pl.col("resolved_date") >= ctx.start))
        )
        .sort("patient_id", "onset_date", "icd10", nulls_last=False)
        .unique(subset=["patient_id", "icd10"], keep="first", maintain_order=True)
        .group_by("patient_id", maintain_order=True)
        .agg(icd10_codes=pl.col("icd10").head(nz.MAX_CLAIM_DIAGNOSES))
    )
    return facts.join(conditions, on="patient_id", how="left")


# --------------------------------------------------------------------------- minutes


def _interval_frame(entries: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    return entries.filter(pl.col("start_min").is_not_null()).select(
        *keys,
        start_min=pl.col("start_min").cast(pl.Int32),
        end_min=(pl.col("start_min") + pl.col("minutes")).cast(pl.Int32),
    )


def _overlap(pieces: pl.DataFrame, blocks: pl.DataFrame, on: list[str], name: str) -> pl.DataFrame:
    """Per DAY_KEYS: minutes of the merged `pieces` inside the merged `blocks` (joined `on`)."""
    joined = pieces.join(
        blocks.select(*on, b_start=pl.col("start_min"), b_end=pl.col("end_min")),
        on=on,
        how="inner",
    )
    return joined.group_by(DAY_KEYS).agg(
        (pl.min_horizontal("end_min", "b_end") - pl.max_horizontal("start_min", "b_start"))
        .clip(lower_bound=0)
        .sum()
        .cast(pl.Int64)
        .alias(name)
    )


def _higher_programs(ctx: EvalContext) -> dict[str, list[str]]:
    """Our program -> the programs that keep a minute logged to both
    (``common.program_minute_priority``: Medicare programs before case management)."""
    priority = ctx.params.as_strs("common.program_minute_priority")
    return {
        program: priority[: priority.index(program)] if program in priority else []
        for program in programs(ctx)
    }


def _counted_all(ctx: EvalContext) -> pl.DataFrame:
    """Every care-management entry of the month that the shared time rules count."""
    return nz.time_entries(ctx).filter(pl.col("excluded").is_null() & (pl.col("minutes") > 0))


def higher_program_time(ctx: EvalContext) -> pl.DataFrame:
    """Per patient, day and our program: counted minutes of the programs that take
    precedence over it (``higher_minutes``: timed entries as their interval union, plus
    untimed entries) and whether any of those has no start_time (``higher_untimed``)."""
    counted = _counted_all(ctx)
    parts = []
    for program, higher in _higher_programs(ctx).items():
        mine = counted.filter(pl.col("program").is_in(higher))
        merged = nz.merge_intervals(_interval_frame(mine, PATIENT_DAY), PATIENT_DAY)
        timed = merged.group_by(PATIENT_DAY).agg(
            timed=(pl.col("end_min") - pl.col("start_min")).sum().cast(pl.Int64)
        )
        untimed = (
            mine.filter(pl.col("start_min").is_null())
            .group_by(PATIENT_DAY)
            .agg(untimed=pl.col("minutes").sum().cast(pl.Int64))
        )
        parts.append(
            timed.join(untimed, on=PATIENT_DAY, how="full", coalesce=True).select(
                *PATIENT_DAY,
                program=pl.lit(program),
                higher_minutes=pl.col("timed").fill_null(0) + pl.col("untimed").fill_null(0),
                higher_untimed=pl.col("untimed").is_not_null(),
            )
        )
    return pl.concat(parts)


def _blocks(ctx: EvalContext) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Merged blocking intervals: (visits per patient and day; visits united with the
    timed minutes of higher-priority programs per patient, day and our program)."""
    schema = {"patient_id": pl.String, "date": pl.Date, "start_min": pl.Int32, "end_min": pl.Int32}
    visits = pl.DataFrame(schema=schema)
    if ctx.params.as_bool("common.exclude_time_during_visits"):
        visits = nz.visit_intervals(ctx).select(
            *PATIENT_DAY, pl.col("start_min", "end_min").cast(pl.Int32)
        )
    counted = _counted_all(ctx)
    parts = []
    for program, higher in _higher_programs(ctx).items():
        timed = _interval_frame(counted.filter(pl.col("program").is_in(higher)), PATIENT_DAY)
        parts.append(pl.concat([visits, timed]).with_columns(program=pl.lit(program)))
    keys = [*PATIENT_DAY, "program"]
    union = nz.merge_intervals(pl.concat(parts), keys).drop("piece")
    return nz.merge_intervals(visits, PATIENT_DAY).drop("piece"), union


def day_minutes(ctx: EvalContext, entries: pl.DataFrame) -> pl.DataFrame:
    """Per DAY_KEYS: counted minutes of the eligible entries (``eligible`` column).

    The shared time rules, on the entries the state accepts: timed entries count as
    their interval union (TIME-5), less minutes inside a face-to-face or separately
    billed service (TIME-6, setting common.exclude_time_during_visits) and less minutes
    of the same patient and day logged to a program earlier in
    common.program_minute_priority (TCODE-3: Medicare care management first; setting
    medicaid.dual_eligible_overlap for entries without start_time); untimed entries add
    their minutes. Columns: ``counted_minutes``, ``dual_minutes`` (removed by TCODE-3).
    """
    eligible = entries.filter(pl.col("eligible"))
    pieces = nz.merge_intervals(_interval_frame(eligible, DAY_KEYS), DAY_KEYS)
    visits, union = _blocks(ctx)
    timed = pieces.group_by(DAY_KEYS).agg(
        piece_minutes=(pl.col("end_min") - pl.col("start_min")).sum().cast(pl.Int64)
    )
    untimed = (
        eligible.filter(pl.col("start_min").is_null())
        .group_by(DAY_KEYS)
        .agg(untimed_minutes=pl.col("minutes").sum().cast(pl.Int64))
    )
    keys = [*PATIENT_DAY, "program"]
    days = (
        timed.join(untimed, on=DAY_KEYS, how="full", coalesce=True, nulls_equal=True)
        .join(
            _overlap(pieces, visits, PATIENT_DAY, "visit_overlap"),
            on=DAY_KEYS,
            how="left",
            nulls_equal=True,
        )
        .join(
            _overlap(pieces, union, keys, "union_overlap"),
            on=DAY_KEYS,
            how="left",
            nulls_equal=True,
        )
        .join(higher_program_time(ctx), on=keys, how="left")
    )
    same_day = ctx.params.as_str("medicaid.dual_eligible_overlap") == "same_day"
    untimed_any = pl.col("untimed_minutes").is_not_null() | pl.col("higher_untimed").fill_null(
        False
    )
    interval = pl.col("union_overlap").fill_null(0) - pl.col("visit_overlap").fill_null(0)
    presumed = pl.max_horizontal(interval, pl.col("higher_minutes").fill_null(0))
    dual = pl.when(pl.lit(same_day) & untimed_any).then(presumed).otherwise(interval)
    before = (
        pl.col("piece_minutes").fill_null(0)
        - pl.col("visit_overlap").fill_null(0)
        + pl.col("untimed_minutes").fill_null(0)
    )
    return days.select(
        *DAY_KEYS,
        counted_minutes=(before - dual).clip(lower_bound=0).cast(pl.Int64),
        dual_minutes=pl.min_horizontal(dual, before).clip(lower_bound=0).cast(pl.Int64),
    )


def units_expr(minutes: str, unit: int) -> pl.Expr:
    """Units of `minutes` under the row's unit rule (first_unit_minutes /
    later_unit_minutes columns): 0 below the first unit's minutes, else 1 plus a unit
    for each full unit reached with later_unit_minutes to spare."""
    later = ((pl.col(minutes) - pl.col("later_unit_minutes")) // unit).clip(lower_bound=0)
    return (
        pl.when(pl.col(minutes) >= pl.col("first_unit_minutes"))
        .then(later + 1)
        .otherwise(0)
        .cast(pl.Int64)
    )


# --------------------------------------------------------------------------- day facts


def _entries(ctx: EvalContext) -> pl.DataFrame:
    return nz.time_entries(ctx).filter(pl.col("program").is_in(list(programs(ctx))))


def _days(ctx: EvalContext, entries: pl.DataFrame) -> pl.DataFrame:
    """One row per DAY_KEYS with logged time, its payer and the state's rules."""
    days = entries.group_by(DAY_KEYS).agg(
        minutes_logged=pl.col("minutes").sum().cast(pl.Int64),
        logged_ids=pl.col("encounter_id").sort(),
    )
    days = with_medicaid_payer(ctx, days, "date")
    return with_state_rules(ctx, days)


def _classified(entries: pl.DataFrame, days: pl.DataFrame) -> pl.DataFrame:
    """Entries with ``counted`` (the shared time rules let them count) and ``eligible``
    (and their performer's credential is one the state accepts)."""
    return (
        entries.join(
            days.select(*DAY_KEYS, "staff_credentials", "contact_modes"),
            on=DAY_KEYS,
            how="left",
            nulls_equal=True,
        )
        .with_columns(
            counted=pl.col("excluded").is_null() & (pl.col("minutes") > 0),
        )
        .with_columns(
            eligible=pl.col("counted")
            & pl.col("staff_credentials")
            .list.contains(pl.col("performer_credential"))
            .fill_null(False),
        )
    )


def _entry_facts(ctx: EvalContext, entries: pl.DataFrame) -> pl.DataFrame:
    """Per DAY_KEYS: shared-rule and eligible minutes, ids and contacts."""
    ordered = entries.sort("start_min", "encounter_id", nulls_last=True)
    eligible = pl.col("eligible")
    return ordered.group_by(DAY_KEYS).agg(
        shared_counted_minutes=pl.col("minutes").filter(pl.col("counted")).sum().cast(pl.Int64),
        eligible_raw_minutes=pl.col("minutes").filter(eligible).sum().cast(pl.Int64),
        eligible_ids=pl.col("encounter_id").filter(eligible).sort(),
        ineligible_credentials=pl.col("performer_credential")
        .filter(pl.col("counted") & ~eligible)
        .unique()
        .sort(),
        contacts=(
            eligible
            & (pl.col("outcome").is_null() | (pl.col("outcome") != nz.EXCLUDED_FAILED_ATTEMPT))
            & pl.col("contact_modes").list.contains(pl.col("contact_mode")).fill_null(False)
        )
        .sum()
        .cast(pl.Int64),
    )


def _with_npi(ctx: EvalContext, facts: pl.DataFrame) -> pl.DataFrame:
    return nz.with_practitioner(ctx, facts, "billing_practitioner_id", "bp")


def day_facts(ctx: EvalContext) -> pl.DataFrame:
    """Every patient x program x billing practitioner x day with case-management time,
    with its payer, state rules, minutes, units and claims history (all programs and
    unit kinds; the rules pick theirs)."""
    return ctx.memo.frame("medicaid.days", lambda: _day_facts(ctx))


def _day_facts(ctx: EvalContext) -> pl.DataFrame:
    entries = _entries(ctx)
    days = _days(ctx, entries)
    classified = _classified(entries, days)
    facts = (
        days.join(_entry_facts(ctx, classified), on=DAY_KEYS, how="left", nulls_equal=True)
        .join(day_minutes(ctx, classified), on=DAY_KEYS, how="left", nulls_equal=True)
        .with_columns(
            pl.col("shared_counted_minutes", "eligible_raw_minutes", "contacts").fill_null(0),
            pl.col("counted_minutes", "dual_minutes").fill_null(0),
            pl.col("eligible_ids", "ineligible_credentials").fill_null(EMPTY_IDS),
        )
    )
    facts = nz.monthly_place_of_service(ctx, _with_npi(ctx, facts), "eligible_ids")
    return facts


# --------------------------------------------------------------------------- criteria


def _practitioner_criteria() -> list[Criterion]:
    return [
        Criterion(
            "billing_practitioner_known",
            "the time is billed under a known billing practitioner",
            pl.col("billing_practitioner_id").is_not_null(),
            "practitioner_not_qualified",
            ("TCODE-2",),
            detail=pl.lit("no billing practitioner: set billing_practitioner_id on the entries"),
            shows=("billing_practitioner_id",),
        ),
        Criterion(
            "billing_practitioner_qualified",
            "the billing practitioner's credential may bill the state's T-code",
            pl.col("billing_credentials").list.contains(pl.col("bp_credential")),
            "practitioner_not_qualified",
            ("TCODE-2",),
            shows=("bp_credential", "state_key"),
        ),
    ]


def _staff_criterion() -> Criterion:
    return Criterion(
        "staff_eligible",
        "minutes were furnished by staff whose credential the state accepts",
        (pl.col("shared_counted_minutes") == 0) | (pl.col("eligible_raw_minutes") > 0),
        "practitioner_not_qualified",
        ("TCODE-2", "TIME-4"),
        detail=pl.format(
            "the state's rules ({}) do not accept minutes by {}",
            pl.col("state_key"),
            pl.col("ineligible_credentials").list.join(", "),
        ),
        shows=("ineligible_credentials", "state_key"),
    )


def _payer_criteria(code: str) -> list[Criterion]:
    return [
        coverage_criterion(shows=("payer_id", "payer_kind", "payer_state")),
        payer_pays_criterion(code),
    ]


# --------------------------------------------------------------------------- daily rules


def _claims(ctx: EvalContext) -> pl.DataFrame:
    return (
        nz.claims_in_month(ctx, case_codes(ctx))
        .with_columns(pl.col("units").fill_null(1))
        .select("patient_id", "code", "units", "date_of_service", "billing_npi")
    )


def _with_unit_code(ctx: EvalContext, facts: pl.DataFrame, kind: str) -> pl.DataFrame:
    names = programs(ctx)
    codes = [ctx.params.as_str(f"medicaid.{names[n]}.{kind}_code") for n in names]
    return facts.with_columns(
        code=pl.col("program").replace_strict(list(names), codes, return_dtype=pl.String)
    )


def _with_day_claims(ctx: EvalContext, facts: pl.DataFrame) -> pl.DataFrame:
    """Claims of the day's code this month: same day by this NPI, units that day, in month."""
    claims = _claims(ctx)
    indexed = facts.select("patient_id", "code", "date", "bp_npi").with_row_index("_row")
    joined = (
        indexed.join(claims, on=["patient_id", "code"], how="inner")
        .group_by("_row")
        .agg(
            same_day_own=(
                (pl.col("date_of_service") == pl.col("date"))
                & (pl.col("billing_npi") == pl.col("bp_npi"))
            ).any(),
            claimed_units_day=pl.col("units")
            .filter(pl.col("date_of_service") == pl.col("date"))
            .sum(),
            claimed_units_month=pl.col("units").sum(),
        )
    )
    return (
        facts.with_row_index("_row")
        .join(joined, on="_row", how="left")
        .drop("_row")
        .with_columns(
            pl.col("same_day_own").fill_null(False),
            pl.col("claimed_units_day", "claimed_units_month").fill_null(0).cast(pl.Int64),
        )
    )


def _greedy(units: pl.Expr, cap: pl.Expr, group: list[str]) -> tuple[pl.Expr, pl.Expr]:
    """(units before this row in `group`, units this row may still bill under `cap`),
    filling the cap in row order; a null cap bills everything."""
    cumulative = units.cum_sum().over(group)
    before = cumulative - units
    capped = pl.min_horizontal(cumulative, cap) - pl.min_horizontal(before, cap)
    return before, pl.when(cap.is_null()).then(units).otherwise(capped)


def daily_facts(ctx: EvalContext) -> pl.DataFrame:
    """The days of states billing per 15 minutes, with units after the caps."""
    unit = ctx.params.as_int("medicaid.unit_minutes")
    facts = day_facts(ctx).filter(pl.col("unit") == PER_UNIT)
    facts = _with_unit_code(ctx, facts, "unit")
    facts = _with_day_claims(ctx, facts)
    facts = with_pays(ctx, facts, case_codes(ctx), "date")
    facts = with_diagnoses(ctx, facts)
    pays = pl.coalesce(
        *[pl.when(pl.col("code") == code).then(pl.col(f"pays:{code}")) for code in case_codes(ctx)]
    )
    ready = (
        pl.col("billing_practitioner_id").is_not_null()
        & pl.col("billing_credentials").list.contains(pl.col("bp_credential")).fill_null(False)
        & pl.col("payer_id").is_not_null()
        & pays.fill_null(False)
        & ~pl.col("same_day_own")
        & (pl.col("counted_minutes") >= pl.col("first_unit_minutes"))
    )
    facts = facts.sort("patient_id", "program", "date", "billing_practitioner_id").with_columns(
        raw_units=units_expr("counted_minutes", unit),
        day_cap_left=(pl.col("max_units_per_day") - pl.col("claimed_units_day")).clip(
            lower_bound=0
        ),
        month_cap_left=(pl.col("max_units_per_month") - pl.col("claimed_units_month")).clip(
            lower_bound=0
        ),
    )
    facts = facts.with_columns(ready_units=pl.when(ready).then(pl.col("raw_units")).otherwise(0))
    day_before, day_units = _greedy(
        pl.col("ready_units"), pl.col("day_cap_left"), ["patient_id", "program", "date"]
    )
    facts = facts.with_columns(units_day_before=day_before, day_units=day_units)
    month_before, units = _greedy(
        pl.col("day_units"), pl.col("month_cap_left"), ["patient_id", "program"]
    )
    return facts.with_columns(units_month_before=month_before, units=units)


def _time_status(ctx: EvalContext, last_day: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(`short` while work dated on or after as-of can still land by `last_day`, deadline)."""
    open_ = pl.lit(ctx.as_of) <= last_day
    status = pl.when(open_).then(pl.lit(STATUS_SHORT)).otherwise(pl.lit(STATUS_BLOCKED))
    return status, pl.when(open_).then(last_day).otherwise(None)


def daily_rules(ctx: EvalContext) -> list[CodeRule]:
    p = ctx.params
    status, deadline = _time_status(ctx, pl.col("date"))
    rules: list[CodeRule] = []
    for program, prefix in programs(ctx).items():
        code = p.as_str(f"medicaid.{prefix}.unit_code")
        criteria = (
            *_practitioner_criteria(),
            *_payer_criteria(code),
            _staff_criterion(),
            Criterion(
                "not_already_billed",
                "this code is not already billed for the day under this NPI (claims history)",
                ~pl.col("same_day_own"),
                "already_billed",
                ("TCODE-2",),
                shows=("claimed_units_day",),
            ),
            Criterion(
                "daily_cap",
                "the state's daily unit cap is not used up by other lines of the day",
                pl.col("day_cap_left").is_null()
                | (pl.col("units_day_before") < pl.col("day_cap_left")),
                "frequency_limit_reached",
                ("TCODE-2",),
                detail=pl.format(
                    "{} unit(s) a day at most ({} rules)",
                    pl.col("max_units_per_day"),
                    pl.col("state_key"),
                ),
                shows=("max_units_per_day", "claimed_units_day", "units_day_before"),
            ),
            Criterion(
                "monthly_cap",
                "the state's monthly unit cap is not used up by claims or earlier days",
                pl.col("month_cap_left").is_null()
                | (pl.col("units_month_before") < pl.col("month_cap_left")),
                "frequency_limit_reached",
                ("TCODE-2",),
                detail=pl.format(
                    "{} unit(s) a month at most ({} rules); {} billed before this day",
                    pl.col("max_units_per_month"),
                    pl.col("state_key"),
                    pl.col("units_month_before") + pl.col("claimed_units_month"),
                ),
                shows=("max_units_per_month", "claimed_units_month", "units_month_before"),
            ),
            Criterion(
                "time_threshold",
                "the day's counted minutes reach the first unit under the state's unit rule",
                pl.col("counted_minutes") >= pl.col("first_unit_minutes"),
                "time_below_threshold",
                ("TCODE-2", "TIME-1"),
                status=status,
                detail=pl.format(
                    "{} of {} minutes counted on the day ({} unit rule; {} minute(s) left to "
                    "a program that takes precedence)",
                    pl.col("counted_minutes"),
                    pl.col("first_unit_minutes"),
                    pl.col("unit_rule"),
                    pl.col("dual_minutes"),
                ),
                minutes_needed=(pl.col("first_unit_minutes") - pl.col("counted_minutes"))
                .clip(lower_bound=0)
                .cast(pl.Int64),
                deadline=deadline,
                shows=("counted_minutes", "dual_minutes", "unit_rule", "raw_units"),
            ),
        )
        rules.append(
            CodeRule(
                key=f"medicaid.{prefix}.unit",
                code=code,
                family=FAMILY,
                considered=pl.col("program") == program,
                criteria=criteria,
                units=pl.col("units"),
                date_of_service=pl.col("date"),
                evidence=evidence_list("eligible_ids", "place_of_service_evidence"),
                rules=RULE_IDS,
                minutes_logged=pl.col("minutes_logged"),
                place_of_service=pl.col("place_of_service"),
                icd10_codes=pl.col("icd10_codes"),
                parameters=(
                    f"medicaid.{prefix}.unit_code",
                    "medicaid.unit_minutes",
                    "medicaid.unit_rule_override",
                    "medicaid.dual_eligible_overlap",
                    "common.monthly_place_of_service",
                ),
                description=f"{program}, per 15-minute unit on the day's minutes",
            )
        )
    return rules


# --------------------------------------------------------------------------- monthly rules


def monthly_facts(ctx: EvalContext) -> pl.DataFrame:
    """Per patient x program x billing practitioner x payer of the monthly states: the
    month's counted minutes and contacts, and the day the monthly minimum was met."""
    keys = ["patient_id", "program", "billing_practitioner_id", "payer_id"]
    days = day_facts(ctx).filter(pl.col("unit") == MONTHLY).sort(*keys, "date")
    met = (pl.col("contacts").cum_sum().over(keys) >= pl.col("monthly_min_contacts")) & (
        pl.col("counted_minutes").cum_sum().over(keys) >= pl.col("monthly_min_minutes")
    )
    firsts = [
        "payer_kind",
        "payer_state",
        "state_key",
        "unit_rule",
        "billing_credentials",
        "monthly_min_contacts",
        "monthly_min_minutes",
        "bp_credential",
        "bp_npi",
    ]
    facts = (
        days.with_columns(_met=met)
        .group_by(keys, maintain_order=True)
        .agg(
            *[pl.col(c).first() for c in firsts],
            minutes_logged=pl.col("minutes_logged").sum(),
            counted_minutes=pl.col("counted_minutes").sum(),
            dual_minutes=pl.col("dual_minutes").sum(),
            contacts=pl.col("contacts").sum(),
            shared_counted_minutes=pl.col("shared_counted_minutes").sum(),
            eligible_raw_minutes=pl.col("eligible_raw_minutes").sum(),
            eligible_ids=pl.col("eligible_ids").explode().drop_nulls().sort(),
            ineligible_credentials=pl.col("ineligible_credentials")
            .explode()
            .drop_nulls()
            .unique()
            .sort(),
            met_date=pl.col("date").filter(pl.col("_met")).first(),
            first_date=pl.col("date").first(),
        )
    )
    facts = _with_unit_code(ctx, facts, "monthly")
    claims = _claims(ctx)
    billed = (
        facts.select("patient_id", "billing_practitioner_id", "code", "bp_npi")
        .join(claims, on=["patient_id", "code"], how="inner")
        .group_by("patient_id", "billing_practitioner_id", "code")
        .agg(
            own_claims=(pl.col("billing_npi") == pl.col("bp_npi")).any(),
            other_claims=pl.col("billing_npi")
            .filter(pl.col("billing_npi") != pl.col("bp_npi").fill_null(""))
            .unique()
            .sort(),
        )
    )
    facts = facts.join(
        billed, on=["patient_id", "billing_practitioner_id", "code"], how="left", nulls_equal=True
    ).with_columns(
        pl.col("own_claims").fill_null(False),
        pl.col("other_claims").fill_null(EMPTY_IDS),
        reference_date=pl.coalesce("met_date", "first_date"),
    )
    facts = with_pays(ctx, facts, case_codes(ctx), "reference_date")
    return nz.monthly_place_of_service(ctx, with_diagnoses(ctx, facts), "eligible_ids")


def monthly_rules(ctx: EvalContext) -> list[CodeRule]:
    p = ctx.params
    status, deadline = _time_status(ctx, pl.lit(ctx.end))
    month_end = p.as_str("common.date_of_service_rule") == "month_end"
    dos = pl.lit(ctx.end) if month_end else pl.col("met_date")
    rules: list[CodeRule] = []
    for program, prefix in programs(ctx).items():
        code = p.as_str(f"medicaid.{prefix}.monthly_code")
        criteria = (
            *_practitioner_criteria(),
            *_payer_criteria(code),
            _staff_criterion(),
            not_billed_by_other_criterion(
                "no other NPI billed this monthly code for the patient this month", ("TCODE-2",)
            ),
            Criterion(
                "not_already_billed",
                "this monthly code is not already billed for the month (claims history)",
                ~pl.col("own_claims"),
                "already_billed",
                ("TCODE-2",),
                shows=("own_claims",),
            ),
            Criterion(
                "monthly_contacts",
                "the state's minimum of qualifying contacts in the month",
                pl.col("contacts") >= pl.col("monthly_min_contacts"),
                "time_below_threshold",
                ("TCODE-2",),
                status=status,
                detail=pl.format(
                    "{} of {} qualifying contact(s) this month ({} rules)",
                    pl.col("contacts"),
                    pl.col("monthly_min_contacts"),
                    pl.col("state_key"),
                ),
                deadline=deadline,
                shows=("contacts", "monthly_min_contacts"),
            ),
            Criterion(
                "monthly_minutes",
                "the state's minimum of counted minutes in the month",
                pl.col("counted_minutes") >= pl.col("monthly_min_minutes"),
                "time_below_threshold",
                ("TCODE-2",),
                status=status,
                detail=pl.format(
                    "{} of {} minutes counted this month ({} rules)",
                    pl.col("counted_minutes"),
                    pl.col("monthly_min_minutes"),
                    pl.col("state_key"),
                ),
                minutes_needed=(pl.col("monthly_min_minutes") - pl.col("counted_minutes"))
                .clip(lower_bound=0)
                .cast(pl.Int64),
                deadline=deadline,
                shows=("counted_minutes", "dual_minutes", "monthly_min_minutes"),
            ),
        )
        rules.append(
            CodeRule(
                key=f"medicaid.{prefix}.monthly",
                code=code,
                family=FAMILY,
                considered=pl.col("program") == program,
                criteria=criteria,
                units=pl.lit(1),
                date_of_service=dos,
                evidence=evidence_list("eligible_ids", "place_of_service_evidence"),
                rules=RULE_IDS,
                minutes_logged=pl.col("minutes_logged"),
                place_of_service=pl.col("place_of_service"),
                icd10_codes=pl.col("icd10_codes"),
                parameters=(
                    f"medicaid.{prefix}.monthly_code",
                    "medicaid.dual_eligible_overlap",
                    "common.monthly_place_of_service",
                ),
                description=f"{program}, per month (state minimum of contacts and minutes)",
            )
        )
    return rules


# --------------------------------------------------------------------------- nursing


def nursing_facts(ctx: EvalContext) -> pl.DataFrame:
    """Nurse visits of the month with the primary payer, its state's rules and the visit's
    credential class (RN / LPN) and assessment flag."""
    p = ctx.params
    unit = p.as_int("medicaid.unit_minutes")
    assessment = p.as_strs("medicaid.nursing.assessment_activities")
    ignored = p.as_strs("common.ignored_claim_statuses")
    visits = ctx.bundle["encounters"].filter(
        (pl.col("kind") == "nurse_visit")
        & ctx.in_month("date")
        & (pl.col("outcome").is_null() | (pl.col("outcome") != nz.EXCLUDED_FAILED_ATTEMPT))
    )
    visits = nz.with_practitioner(ctx, visits, "performer_id", "performer")
    visits = nz.with_practitioner(ctx, visits, "billing_practitioner_id", "bp")
    facts = nz.primary_coverage(ctx, visits, "date").join(
        ctx.bundle["payers"].select("payer_id", pl.col("state").alias("payer_state")),
        on="payer_id",
        how="left",
    )
    facts = with_state_rules(
        ctx, facts.with_columns(program=pl.lit(p.as_str("medicaid.case_management.program")))
    )
    history = (
        ctx.bundle["claims_history"]
        .filter(pl.col("status").is_null() | ~pl.col("status").is_in(ignored))
        .select("patient_id", "code", pl.col("date_of_service").alias("date"), "billing_npi")
    )
    billed = (
        facts.select("encounter_id", "patient_id", "date", "bp_npi")
        .join(history, on=["patient_id", "date"], how="inner")
        .filter(pl.col("billing_npi") == pl.col("bp_npi"))
        .group_by("encounter_id")
        .agg(billed_codes=pl.col("code").unique().sort())
    )
    facts = facts.join(billed, on="encounter_id", how="left").with_columns(
        pl.col("billed_codes").fill_null(EMPTY_IDS),
        visit_minutes=pl.col("minutes").cast(pl.Int64),
        is_assessment=pl.col("activities")
        .list.eval(pl.element().is_in(assessment))
        .list.any()
        .fill_null(False),
        is_rn=pl.col("performer_credential").is_in(p.as_strs("medicaid.nursing.rn_credentials")),
        is_lpn=pl.col("performer_credential").is_in(p.as_strs("medicaid.nursing.lpn_credentials")),
        medicaid_primary=pl.col("payer_kind")
        .is_in(p.as_strs("medicaid.paying_payer_kinds"))
        .fill_null(False),
    )
    facts = nz.with_visit_place_of_service(ctx, facts)
    facts = facts.with_columns(units=units_expr("visit_minutes", unit))
    facts = with_pays(ctx, facts, nursing_codes(ctx), "date")
    return with_diagnoses(ctx, facts)


def nursing_rules(ctx: EvalContext) -> list[CodeRule]:
    p = ctx.params
    enabled = pl.col(NURSE_FLAG).fill_null(False) & pl.col("medicaid_primary")
    variants = (
        ("assessment", pl.col("is_assessment") & (pl.col("is_rn") | pl.col("is_lpn"))),
        ("rn", ~pl.col("is_assessment") & pl.col("is_rn")),
        ("lpn", ~pl.col("is_assessment") & pl.col("is_lpn")),
    )
    rules: list[CodeRule] = []
    for name, which in variants:
        code = p.as_str(f"medicaid.nursing.{name}_code")
        timed = name != "assessment"
        criteria: list[Criterion] = [
            *_practitioner_criteria(),
            payer_pays_criterion(code),
            Criterion(
                "not_already_billed",
                "this code is not already billed for the visit's date under this NPI",
                ~pl.col("billed_codes").list.contains(code),
                "already_billed",
                ("TCODE-2",),
                shows=("billed_codes",),
            ),
        ]
        if timed:
            criteria.append(
                Criterion(
                    "time_threshold",
                    "the visit's minutes reach the first unit under the state's unit rule",
                    pl.col("visit_minutes") >= pl.col("first_unit_minutes"),
                    "time_below_threshold",
                    ("TCODE-2", "TIME-1"),
                    detail=pl.format(
                        "{} of {} minutes ({} unit rule)",
                        pl.col("visit_minutes"),
                        pl.col("first_unit_minutes"),
                        pl.col("unit_rule"),
                    ),
                    minutes_needed=(pl.col("first_unit_minutes") - pl.col("visit_minutes"))
                    .clip(lower_bound=0)
                    .cast(pl.Int64),
                    shows=("visit_minutes", "unit_rule"),
                )
            )
        rules.append(
            CodeRule(
                key=f"medicaid.nursing.{name}",
                code=code,
                family=FAMILY,
                considered=enabled & which,
                criteria=tuple(criteria),
                units=pl.col("units") if timed else pl.lit(1),
                date_of_service=pl.col("date"),
                evidence=evidence_list("encounter_id"),
                rules=NURSING_RULE_IDS,
                alternative="medicaid.nursing",
                minutes_logged=pl.col("visit_minutes"),
                place_of_service=pl.col("place_of_service"),
                icd10_codes=pl.col("icd10_codes"),
                parameters=(f"medicaid.nursing.{name}_code", "medicaid.unit_minutes"),
                description=f"Medicaid nursing ({name}) for a nurse visit",
            )
        )
    return rules


def evaluate(ctx: EvalContext) -> Sequence[RuleSetResult]:
    day = (pl.col("date"), pl.col("date"))
    return [
        run_rule_set(ctx, FAMILY, "medicaid.daily", daily_facts(ctx), daily_rules(ctx), period=day),
        run_rule_set(ctx, FAMILY, "medicaid.monthly", monthly_facts(ctx), monthly_rules(ctx)),
        run_rule_set(
            ctx, FAMILY, "medicaid.nursing", nursing_facts(ctx), nursing_rules(ctx), period=day
        ),
    ]
