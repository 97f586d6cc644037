"""Parameters past their verified date: the refusal, and the lines that used them.

A period whose last day is past a parameter's ``verified_through`` (a new year before
its values are verified and dated in ``code_rules/**/parameters.yaml``) is refused by
``check_period`` naming the parameters, the day they are unverified from and the way
out: ``--allow-unverified`` (setting ``common.allow_unverified``). With it the last
verified values are carried forward (``PeriodParameters.allow_unverified``) and
``unverified_gaps`` gives every claim line an ``info`` gap ``parameters_unverified``
whose detail names the carried parameters the line used: its rule's parameters and the
values of its family, the shared ones (``common``, ``pricing``) and the conflict table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path

import polars as pl

from billing_engine.errors import ParameterNotVerified
from billing_engine.params.parameter import Parameter
from billing_engine.params.parameters import ALLOW_UNVERIFIED, ParameterSet
from billing_engine.params.period import PeriodParameters

PARAMETERS_UNVERIFIED = "parameters_unverified"
CONFLICTS = "conflicts"  # code_rules/conflicts.yaml has one verified_through of its own
SHARED_NAMESPACES = ("common", "pricing")
FLAG = "--allow-unverified"


class PeriodNotVerified(ParameterNotVerified):
    """The period is past the verified date of some parameters; names every one."""

    def __init__(self, start: dt.date, end: dt.date, past: Mapping[str, dt.date]) -> None:
        self.start = start
        self.end = end
        self.past = dict(past)
        since = sorted({through + dt.timedelta(days=1) for through in past.values()})
        names = ", ".join(sorted(past))
        message = (
            f"{len(past)} parameter(s) not verified for {start.isoformat()}.."
            f"{end.isoformat()}: past their verified_through, unverified since "
            f"{', '.join(map(str, since))}. "
            f"Run with {FLAG} (setting {ALLOW_UNVERIFIED}: true) to carry the last "
            "verified values forward (each line is marked parameters_unverified), or add "
            "their values for the new dates with sources in code_rules/**/parameters.yaml "
            f"and raise verified_through (`billing params check {end.year}`). "
            f"Unverified: {names}"
        )
        Exception.__init__(self, message)
        self.parameter = names
        self.on = end


def past_verified(
    params: ParameterSet, end: dt.date, conflicts_through: dt.date | None = None
) -> dict[str, dt.date]:
    """name -> verified_through of every parameter (and the conflict table) before `end`."""
    past = {p.name: p.verified_through for p in params if end > p.verified_through}
    if conflicts_through is not None and end > conflicts_through:
        past[CONFLICTS] = conflicts_through
    return past


def check_period(
    params: ParameterSet, start: dt.date, end: dt.date, conflicts_through: dt.date | None
) -> None:
    past = past_verified(params, end, conflicts_through)
    if past:
        raise PeriodNotVerified(start, end, past)


VERIFIED = "verified"
CARRIED = "carried forward"
UNVERIFIED = "unverified"


def status(param: Parameter, end: dt.date) -> str:
    """Of a parameter through `end`: ``verified`` (a value in force and verified through
    `end`), ``carried forward`` (past verified_through: --allow-unverified would carry
    its last verified value) or ``unverified`` (no verified value to use)."""
    if not param.values or param.values[0].start > min(end, param.verified_through):
        return UNVERIFIED
    return VERIFIED if end <= param.verified_through else CARRIED


def _relative(path: str) -> str:
    """A parameter file's path from the repository root (code_rules/...)."""
    parts = Path(path).parts
    return "/".join(parts[parts.index("code_rules") :]) if "code_rules" in parts else path


def year_report(
    params: ParameterSet, year: int, conflicts_through: dt.date
) -> list[dict[str, str]]:
    """One row per parameter (and the conflict table) for calendar `year`: name, status,
    verified_through, from (the first day of its value), value source."""
    end = dt.date(year, 12, 31)
    rows: list[dict[str, str]] = []
    for param in sorted(params, key=lambda p: p.name):
        state = status(param, end)
        shown = param.carried(end) if state != UNVERIFIED else None
        rows.append(
            {
                "parameter": param.name,
                "status": state,
                "verified_through": param.verified_through.isoformat(),
                "value_from": shown.start.isoformat() if shown else "",
                "source": "; ".join(shown.sources) if shown else "",
                "file": _relative(param.file),
            }
        )
    rows.append(
        {
            "parameter": CONFLICTS,
            "status": VERIFIED if end <= conflicts_through else CARRIED,
            "verified_through": conflicts_through.isoformat(),
            "value_from": "",
            "source": "code_rules/conflicts.yaml",
            "file": "code_rules/conflicts.yaml",
        }
    )
    return rows


def unverified_gaps(
    lines: pl.DataFrame, period: PeriodParameters, outcome_columns: list[str]
) -> pl.DataFrame:
    """One ``info`` gap ``parameters_unverified`` per claim line that used carried values.

    `lines` are line outcomes (``rules.OUTCOME_SCHEMA``); the detail is computed once
    per distinct (family, rule parameters) pair and joined back.
    """
    unverified = dict(period.unverified)
    if not unverified or lines.is_empty():
        return lines.head(0).select(outcome_columns)
    names = pl.DataFrame(
        {"_name": list(unverified), "_through": list(unverified.values())},
        schema={"_name": pl.String(), "_through": pl.Date()},
    ).with_columns(_namespace=pl.col("_name").str.split(".").list.first())
    keys = (
        lines.select(
            _family=pl.col("family").fill_null(""), _params=pl.col("parameters").fill_null("")
        )
        .unique()
        .with_columns(
            _declared=pl.col("_params")
            .str.split(";")
            .list.eval(pl.element().str.split("=").list.first())
        )
    )
    used = keys.join(names, how="cross").filter(
        pl.col("_declared").list.contains(pl.col("_name"))
        | (pl.col("_name") == CONFLICTS)
        | pl.col("_namespace").is_in(SHARED_NAMESPACES)
        | (pl.col("_namespace") == pl.col("_family"))
    )
    details = (
        used.sort("_name")
        .group_by("_family", "_params", "_through")
        .agg(pl.col("_name").str.join(", "))
        .sort("_through")
        .group_by("_family", "_params", maintain_order=True)
        .agg(
            pl.format(
                "{} (verified through {})", pl.col("_name"), pl.col("_through").cast(pl.String)
            ).str.join("; ")
        )
        .select(
            "_family",
            "_params",
            _detail=pl.lit("carried forward past their verified date: ") + pl.col("_name"),
        )
    )
    return (
        lines.with_columns(
            _family=pl.col("family").fill_null(""), _params=pl.col("parameters").fill_null("")
        )
        .join(details, on=["_family", "_params"], how="inner")
        .with_columns(
            is_line=pl.lit(False),
            status=pl.lit("info"),
            reason=pl.lit(PARAMETERS_UNVERIFIED),
            detail=pl.col("_detail"),
            minutes_logged=pl.lit(None, dtype=pl.Int64),
            minutes_needed=pl.lit(None, dtype=pl.Int64),
            deadline=pl.lit(None, dtype=pl.Date),
        )
        .select(outcome_columns)
    )
