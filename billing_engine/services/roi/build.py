"""``billing roi``'s report: the measured rows per care manager and TEAM, their costs, the
model of one FTE over caseloads, the sensitivity table and every assumption with its
source.

Who is a care manager: the staffing file's rows when one is given, else every performer
whose credential ``roi.role_by_credential`` maps to a role. A care manager's months are
her staffed months of the range (staffing file) or the months she logged work in. Cost
is salary x (1 + benefits) x FTE / 12 for each of those months.

The per-care-manager figures are a handful of rows, so they are worked out in Decimal
one row at a time; everything over lines and encounters is in ``measure``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import polars as pl

from billing_engine.calendar import Month
from billing_engine.errors import ConfigError
from billing_engine.io.bundle import Bundle
from billing_engine.params.period import PeriodParameters
from billing_engine.pricing.fees import FeeLibrary
from billing_engine.services.evaluation import default_parameters
from billing_engine.services.revenue import MONTHS_PER_YEAR
from billing_engine.services.roi import model
from billing_engine.services.roi.measure import (
    MonthsMeasured,
    group_totals,
    largest_remainder,
    line_shares,
    measure_months,
    patient_months,
)
from billing_engine.services.roi.model import Assumptions, Rates, cents, of_cents, ratio
from billing_engine.services.roi.report import (
    ASSUMPTION_COLUMNS,
    MEASURED_COLUMNS,
    SCENARIO_COLUMNS,
    TEAM,
    RoiReport,
)
from billing_engine.services.roi.whatif import (
    MedicareSplit,
    capacity_table,
    medicare_split,
    sensitivity,
)
from code_rules.parameters_typed import Roi, typed

HUNDRED = Decimal(100)
ONE = Decimal(1)
ZERO = Decimal(0)
STAFFING_FILE = "staffing file"
COMMAND_LINE = "command line"


@dataclass(frozen=True)
class OtherValue:
    """The other ways a care manager is paid for (optional inputs, never in net)."""

    quality_incentive: Decimal | None = None  # dollars over the range, for the team
    visits_freed: Decimal | None = None  # physician visits freed per FTE-month
    visit_rate: Decimal | None = None  # what one such visit pays


@dataclass(frozen=True)
class ModelRange:
    first: int | None = None  # default roi.model_caseload_min
    last: int | None = None  # default roi.model_caseload_max
    step: int = 10


def roi_report(
    bundle: Bundle,
    months: Sequence[Month],
    *,
    staffing: pl.DataFrame | None = None,
    staffing_label: str = STAFFING_FILE,
    role: str | None = None,
    caseloads: ModelRange = ModelRange(),
    other: OtherValue = OtherValue(),
    as_of: dt.date | None = None,
    settings: Mapping[str, Any] | None = None,
    fees: FeeLibrary | None = None,
) -> RoiReport:
    """The ROI report of `months` (see the module docstring)."""
    params = default_parameters()
    period = params.for_period(months[0].start, months[-1].end, settings)
    roi = typed(period).roi
    measured = measure_months(bundle, months, as_of=as_of, settings=settings, fees=fees)
    staff = care_managers(bundle, staffing, roi, months)
    if role is not None and role not in set(staff["role"].to_list()):
        known = ", ".join(sorted(set(staff["role"].to_list()))) or "none"
        raise ConfigError(f"--role {role}: no care manager has that role (roles here: {known})")
    shares = line_shares(measured.lines, measured.encounters)
    medicare = _medicare_payers(bundle, roi)
    ids = pl.col("care_manager_id")
    counted = staff_months(staffing if staffing is not None else staff, months)
    each = group_totals(patient_months(measured, shares, counted, ids, medicare))
    team = group_totals(patient_months(measured, shares, counted, pl.lit(TEAM), medicare))
    rows = _measured_rows(staff, each, team, roi, other)
    # the model: one FTE at the rates of the role's care managers, or the team's
    role_staff = staff.filter(pl.col("role") == role) if role else staff
    role_months = counted.join(role_staff, on="care_manager_id", how="semi")
    modelled = (
        group_totals(patient_months(measured, shares, role_months, pl.lit(role), medicare))
        if role
        else team
    )
    totals = modelled.row(0, named=True) if not modelled.is_empty() else {}
    rates = rates_of(totals)
    assumptions = _fte_assumptions(role_staff, roi)
    first = caseloads.first if caseloads.first is not None else roi.model_caseload_min
    last = caseloads.last if caseloads.last is not None else roi.model_caseload_max
    scenario_rows = model.scenarios(first, last, caseloads.step, rates, assumptions)
    capacity = model.capacity_caseload(rates, assumptions)
    reference = capacity if capacity is not None else last
    split = medicare_split(totals)
    revenue = measured.revenue
    practice_allowed = _sum(revenue.lines, "allowed_amount")
    team_allowed = rows.filter(ids == TEAM)["allowed_amount"].sum() if rows.height else ZERO
    return RoiReport(
        months=tuple(months),
        measured=rows,
        scenarios=pl.DataFrame(
            [vars(s) for s in scenario_rows], schema=SCENARIO_COLUMNS, orient="row"
        ).with_columns(pl.col("billable_patient_months").round(1)),
        sensitivity=sensitivity(rates, assumptions, split, roi.sensitivity_swing),
        assumptions=_assumptions(
            period,
            params,
            roi,
            staff,
            staffing_label if staffing is not None else None,
            rates,
            split,
            other,
            months,
        ),
        capacity=capacity_table(rates, assumptions, roi.capacity_minutes_per_patient_month),
        role=role,
        reference_caseload=reference,
        break_even_caseload=model.break_even_caseload(rates, assumptions),
        capacity_caseload=capacity if capacity is not None else 0,
        practice_allowed=practice_allowed,
        not_attributed_allowed=practice_allowed - Decimal(team_allowed or 0),
        practice_pmpm=_sum(revenue.capitation, "amount"),
        staffing_given=staffing is not None,
        reference_net=model.scenario(reference, rates, assumptions).net,
        notes=tuple(
            _notes(staff, each, staffing is not None) + _outside_notes(measured, staff, counted)
        ),
    )


def _sum(frame: pl.DataFrame, column: str) -> Decimal:
    if frame.is_empty():
        return ZERO
    total = frame[column].sum()
    return Decimal(total) if total is not None else ZERO


def _medicare_payers(bundle: Bundle, roi: Roi) -> list[str]:
    payers = bundle["payers"]
    return payers.filter(pl.col("kind").is_in(roi.medicare_payer_kinds))["payer_id"].to_list()


def care_managers(
    bundle: Bundle, staffing: pl.DataFrame | None, roi: Roi, months: Sequence[Month]
) -> pl.DataFrame:
    """care_manager_id, care_manager_name, role, annual_salary, benefits_rate, fte,
    staffed_months (null: the months she worked), cost_source."""
    practitioners = bundle["practitioners"]
    names = practitioners.select("practitioner_id", "name").rename(
        {"practitioner_id": "care_manager_id", "name": "care_manager_name"}
    )
    salaries = {k: str(v) for k, v in roi.default_annual_salary.items()}
    if staffing is None:
        roles = {str(k): str(v) for k, v in roi.role_by_credential.items()}
        staff = practitioners.filter(pl.col("credential").is_in(list(roles))).select(
            pl.col("practitioner_id").alias("care_manager_id"),
            role=pl.col("credential").replace_strict(roles, return_dtype=pl.String),
        )
        return (
            staff.join(names, on="care_manager_id", how="left")
            .with_columns(
                annual_salary=pl.col("role")
                .replace_strict(salaries, default=None, return_dtype=pl.String)
                .cast(pl.Decimal(18, 2)),
                benefits_rate=pl.lit(float(roi.benefits_rate)),
                fte=pl.lit(1.0),
                staffed_months=pl.lit(None, pl.Int64),
                cost_source=pl.lit(
                    "assumed: default salary of the role (roi.default_annual_salary), FTE 1"
                ),
            )
            .select(_STAFF_COLUMNS)
            .sort("care_manager_id")
        )
    staffed = staff_months(staffing, months).group_by("care_manager_id").len("staffed")
    return (
        staffing.join(names, on="care_manager_id", how="left")
        .join(staffed, on="care_manager_id", how="left")
        .with_columns(
            benefits_rate=pl.col("benefits_rate").fill_null(float(roi.benefits_rate)),
            staffed_months=pl.col("staffed").fill_null(0).cast(pl.Int64),
            cost_source=pl.lit(STAFFING_FILE),
        )
        .select(_STAFF_COLUMNS)
        .sort("care_manager_id")
    )


def staff_months(staff: pl.DataFrame, months: Sequence[Month]) -> pl.DataFrame:
    """care_manager_id, month: each month of the range a care manager counts in: the
    months her staffing row's start_date..end_date overlaps (open ends: every month;
    without those columns, every month of the range)."""
    calendar = pl.DataFrame(
        {"month": [str(m) for m in months], "_start": [m.start for m in months],
         "_end": [m.end for m in months]},
        schema={"month": pl.String, "_start": pl.Date, "_end": pl.Date},
    )  # fmt: skip
    people = staff.select(
        "care_manager_id",
        *(
            pl.col(c) if c in staff.columns else pl.lit(None, pl.Date).alias(c)
            for c in ("start_date", "end_date")
        ),
    )
    return (
        people.join(calendar, how="cross")
        .filter(
            (pl.col("start_date").is_null() | (pl.col("start_date") <= pl.col("_end")))
            & (pl.col("end_date").is_null() | (pl.col("end_date") >= pl.col("_start")))
        )
        .select("care_manager_id", "month")
    )


_STAFF_COLUMNS = ("care_manager_id", "care_manager_name", "role", "annual_salary",
                  "benefits_rate", "fte", "staffed_months", "cost_source")  # fmt: skip


def _dec(value: float | Decimal | int) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def rates_of(totals: Mapping[str, Any]) -> Rates:
    """Per patient-month rates of one group's totals (``group_totals`` row; {} = none)."""
    patient = Decimal(totals.get("patient_months", 0) or 0)
    billable = Decimal(totals.get("billable_patient_months", 0) or 0)
    billed = of_cents(int(totals.get("payer_cents", 0) or 0) + int(totals.get("patient_cents", 0)
                                                                 or 0))  # fmt: skip
    return Rates(
        conversion=ratio(billable, patient),
        billed_per_billable_month=ratio(billed, billable),
        pmpm_per_patient_month=ratio(_dec(totals.get("pmpm", ZERO) or ZERO), patient),
        minutes_per_patient_month=ratio(Decimal(totals.get("minutes_logged", 0) or 0), patient),
    )


def _assumed(roi: Roi, salary: Decimal, benefits: Decimal, fte: Decimal) -> Assumptions:
    return Assumptions(
        annual_salary=salary,
        benefits_rate=benefits,
        fte=fte,
        working_minutes_per_fte_month=roi.working_minutes_per_fte_month,
        documentation_minutes_per_counted_minute=roi.documentation_minutes_per_counted_minute,
        collection_rate=roi.collection_rate,
    )


def _fte_assumptions(staff: pl.DataFrame, roi: Roi) -> Assumptions:
    """One FTE at the FTE-weighted mean salary and benefits of `staff` (the default
    high-risk care manager's when nobody is staffed)."""
    weighted = staff.filter(pl.col("annual_salary").is_not_null())
    if weighted.is_empty() or not weighted["fte"].sum():
        default = _dec(roi.default_annual_salary["high_risk_care_manager"])
        return _assumed(roi, default, roi.benefits_rate, ONE)
    weight = sum(_dec(f) for f in weighted["fte"].to_list())
    salary = sum(_dec(s) * _dec(f) for s, f in weighted.select("annual_salary", "fte").rows())
    benefits = sum(_dec(b) * _dec(f) for b, f in weighted.select("benefits_rate", "fte").rows())
    return _assumed(roi, cents(_dec(salary) / weight), _dec(benefits) / weight, ONE)


def _measured_rows(
    staff: pl.DataFrame,
    each: pl.DataFrame,
    team: pl.DataFrame,
    roi: Roi,
    other: OtherValue,
) -> pl.DataFrame:
    """MEASURED_COLUMNS rows: every care manager, then TEAM."""
    by_id = {row["group"]: row for row in each.iter_rows(named=True)}
    team_totals = team.row(0, named=True) if not team.is_empty() else {}
    ids = staff["care_manager_id"].to_list()
    weights = [int(by_id.get(i, {}).get("patient_months", 0) or 0) for i in ids]
    quality_shares = (
        split_cents(other.quality_incentive, weights)
        if other.quality_incentive is not None
        else [None] * len(ids)
    )
    rows: list[dict[str, Any]] = []
    for person, quality in zip(staff.iter_rows(named=True), quality_shares, strict=True):
        totals = by_id.get(person["care_manager_id"], {})
        worked = int(totals.get("months_worked", 0) or 0)
        months = person["staffed_months"] if person["staffed_months"] is not None else worked
        salary = _dec(person["annual_salary"] or ZERO)
        a = _assumed(roi, salary, _dec(person["benefits_rate"]), _dec(person["fte"]))
        shifted = (
            cents(other.visits_freed * other.visit_rate * a.fte * months)
            if other.visits_freed is not None and other.visit_rate is not None
            else None
        )
        rows.append(_row(person, totals, months, model.monthly_cost(a), a, roi, quality, shifted))
    staff_rows = rows[:]
    cost = sum((_dec(r["monthly_cost"]) for r in staff_rows), ZERO)
    team_person = {
        "care_manager_id": TEAM,
        "care_manager_name": "all care managers",
        "role": None,
        "fte": float(sum(_dec(r["fte"]) for r in staff_rows)),
        "cost_source": ", ".join(sorted(set(staff["cost_source"].to_list()))),
    }
    months = max((r["months"] for r in staff_rows), default=0)
    team_row = _row(
        team_person, team_totals, months, cost, _assumed(roi, ZERO, ZERO, ONE), roi,
        _sum_optional(staff_rows, "quality_incentives"),
        _sum_optional(staff_rows, "shifted_work_value"),
    )  # fmt: skip
    team_row["cost"] = sum((r["cost"] for r in staff_rows), ZERO)
    _finish(team_row, cost, roi)
    rows.append(team_row)
    return pl.DataFrame(rows, schema=MEASURED_COLUMNS, orient="row")


def split_cents(amount: Decimal, weights: Sequence[int]) -> list[Decimal | None]:
    """`amount` shared by `weights` in whole cents as a line's amount is
    (``measure.largest_remainder``; ties: the earlier row), so the shares add up to
    `amount` exactly; equal shares when every weight is 0."""
    if not weights:
        return []
    count = len(weights)
    frame = pl.DataFrame(
        {
            "month": [""] * count,
            "line_no": [0] * count,
            "performer_id": [f"{i:09d}" for i in range(count)],
            "weight": list(weights) if any(weights) else [1] * count,
            "cents": [int(cents(amount) * HUNDRED)] * count,
        },
        schema={"month": pl.String, "line_no": pl.Int64, "performer_id": pl.String,
                "weight": pl.Int64, "cents": pl.Int64},
    )  # fmt: skip
    return [of_cents(c) for c in largest_remainder(frame, "cents").to_list()]


def _sum_optional(rows: Sequence[Mapping[str, Any]], column: str) -> Decimal | None:
    values = [r[column] for r in rows if r[column] is not None]
    return sum(values, ZERO) if values else None


def _per_month(count: object, months: int) -> float:
    return round(float(int(count or 0)) / months, 1) if months else 0.0  # type: ignore[call-overload]


def _row(
    person: Mapping[str, Any],
    totals: Mapping[str, Any],
    months: int,
    monthly: Decimal,
    a: Assumptions,
    roi: Roi,
    quality: Decimal | None,
    shifted: Decimal | None,
) -> dict[str, Any]:
    """One measured row (money in Decimal, rounded to cents)."""
    patient = int(totals.get("patient_months", 0) or 0)
    billable = int(totals.get("billable_patient_months", 0) or 0)
    payer = of_cents(int(totals.get("payer_cents", 0) or 0))
    patient_amount = of_cents(int(totals.get("patient_cents", 0) or 0))
    expected = cents((payer + patient_amount) * roi.collection_rate)
    pmpm = cents(_dec(totals.get("pmpm", ZERO) or ZERO))
    row: dict[str, Any] = {
        "care_manager_id": person["care_manager_id"],
        "months": months,
        "caseload": _per_month(patient, months),
        "billable_patient_months": billable,
        "conversion": round(patient and billable / patient, 3),
        "minutes_logged": int(totals.get("minutes_logged", 0) or 0),
        "minutes_counted": int(totals.get("minutes_counted", 0) or 0),
        "minutes_stranded": int(totals.get("minutes_stranded", 0) or 0),
        "lines": int(totals.get("lines", 0) or 0),
        "allowed_amount": of_cents(int(totals.get("allowed_cents", 0) or 0)),
        "expected_collections": expected,
        "pmpm_amount": pmpm,
        "cost": cents(monthly * months),
        "care_manager_name": person["care_manager_name"],
        "role": person["role"],
        "fte": person["fte"],
        "cost_source": person["cost_source"],
        "enrolled": _per_month(totals.get("enrolled_months"), months),
        "patient_months": patient,
        "minutes_excluded": int(totals.get("minutes_excluded", 0) or 0),
        "payer_amount": payer,
        "patient_amount": patient_amount,
        "revenue_per_billable_patient_month": cents(ratio(expected + pmpm, Decimal(billable))),
        "quality_incentives": quality,
        "shifted_work_value": shifted,
    }
    rates = rates_of(totals)
    row["break_even_caseload"] = model.break_even_for_cost(monthly, rates, a)
    _finish(row, monthly, roi)
    return row


def _finish(row: dict[str, Any], monthly: Decimal, roi: Roi) -> None:
    """net, roi_pct, monthly_cost, months_to_recover, net_with_other_value of a row."""
    net = row["expected_collections"] + row["pmpm_amount"] - row["cost"]
    row["net"] = net
    row["roi_pct"] = round(float(net / row["cost"] * HUNDRED), 1) if row["cost"] else None
    row["monthly_cost"] = cents(monthly)
    monthly_net = net / row["months"] if row["months"] else ZERO
    row["months_to_recover"] = (
        round(float(roi.hiring_cost / monthly_net), 1) if monthly_net > 0 else None
    )
    other = [v for v in (row["quality_incentives"], row["shifted_work_value"]) if v is not None]
    row["net_with_other_value"] = net + sum(other, ZERO) if other else None


def _source_text(params: Any, keys: Sequence[str]) -> str:
    parts = []
    for key in keys:
        try:
            source = params.source(key)
        except ConfigError:
            parts.append(key)
            continue
        parts.append(f"{source.title} ({source.address})" if source.address else source.title)
    return "; ".join(parts)


def _assumptions(
    period: PeriodParameters,
    params: Any,
    roi: Roi,
    staff: pl.DataFrame,
    staffing_label: str | None,
    rates: Rates,
    split: MedicareSplit,
    other: OtherValue,
    months: Sequence[Month],
) -> pl.DataFrame:
    """Every assumed value with its source, then the measured rates the model uses."""
    _ = roi.capacity_minutes_per_patient_month  # read, so it is listed
    rows: list[dict[str, str]] = []
    for name, used in sorted(period.used.items()):
        if not name.startswith("roi."):
            continue
        param = params.get(name)
        source = "settings file" if used.overridden else _source_text(params, used.sources)
        rows.append({"name": name, "value": _text(used.value), "unit": param.unit,
                     "kind": "assumed", "source": source})  # fmt: skip
    if staffing_label is not None:
        for person in staff.iter_rows(named=True):
            rows.append({
                "name": f"staffing {person['care_manager_id']}",
                "value": f"{person['role']}, salary {person['annual_salary']}, benefits "
                         f"{person['benefits_rate']}, FTE {person['fte']}, "
                         f"{person['staffed_months']} month(s) of the range",
                "unit": "staffing row", "kind": "assumed", "source": staffing_label,
            })  # fmt: skip
    inputs: tuple[tuple[str, Decimal | None, str], ...] = (
        ("quality incentive", other.quality_incentive, "dollars over the range"),
        ("visits freed", other.visits_freed, "physician visits per FTE-month"),
        ("visit rate", other.visit_rate, "dollars per visit"),
    )
    for label, given, unit in inputs:
        if given is not None:
            rows.append({"name": label, "value": str(given), "unit": unit, "kind": "assumed",
                         "source": COMMAND_LINE})  # fmt: skip
    measured_from = f"the store's months {months[0]} to {months[-1]} (as billing revenue)"
    for name, value, unit in (
        ("conversion", f"{rates.conversion:.4f}", "billable / caseload patient-months"),
        ("billed per billable patient-month", f"{cents(rates.billed_per_billable_month)}",
         "dollars (payer + patient share)"),
        ("PMPM per caseload patient-month", f"{cents(rates.pmpm_per_patient_month)}", "dollars"),
        ("minutes logged per caseload patient-month", f"{rates.minutes_per_patient_month:.1f}",
         "minutes"),
        ("Medicare share of billable patient-months", f"{split.share:.4f}", "fraction"),
    ):  # fmt: skip
        rows.append({"name": name, "value": value, "unit": unit, "kind": "measured",
                     "source": measured_from})  # fmt: skip
    return pl.DataFrame(rows, schema=ASSUMPTION_COLUMNS, orient="row")


def _text(value: object) -> str:
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _notes(staff: pl.DataFrame, each: pl.DataFrame, staffing_given: bool) -> list[str]:
    notes = []
    if not staffing_given:
        notes.append(
            "cost is assumed: default salaries by role (roi.default_annual_salary) at FTE 1 "
            "for the months each logged work; give --staffing FILE.csv for the real figures"
        )
    idle = staff.join(each.rename({"group": "care_manager_id"}), on="care_manager_id",
                      how="anti")["care_manager_id"].to_list()  # fmt: skip
    if idle:
        notes.append(f"no work logged in the range by: {', '.join(idle)}")
    if staff.is_empty():
        notes.append("no care managers: no staffing file and no staff credential of "
                     "roi.role_by_credential among the performers")  # fmt: skip
    return notes


def known_roles(months: Sequence[Month], settings: Mapping[str, Any] | None) -> list[str]:
    """The roles a staffing file may name: those of ``roi.default_annual_salary``."""
    period = default_parameters().for_period(months[0].start, months[-1].end, settings)
    return sorted(str(k) for k in typed(period).roi.default_annual_salary)


def _outside_notes(
    measured: MonthsMeasured, staff: pl.DataFrame, counted: pl.DataFrame
) -> list[str]:
    """The minutes staffed care managers logged in months they are not staffed for
    (not attributed to them)."""
    outside = (
        measured.encounters.rename({"performer_id": "care_manager_id"})
        .join(staff, on="care_manager_id", how="semi")
        .join(counted, on=["care_manager_id", "month"], how="anti")
        .group_by("care_manager_id")
        .agg(pl.col("minutes").sum())
        .sort("care_manager_id")
    )
    if outside.is_empty():
        return []
    who = ", ".join(f"{i} ({m:,} min)" for i, m in outside.rows())
    return [f"work logged outside the staffed months is not attributed: {who}"]


def default_range(bundle: Bundle, months: int = MONTHS_PER_YEAR) -> list[Month]:
    """The `months` months that end with the last month holding an encounter."""
    last = bundle["encounters"]["date"].max()
    if not isinstance(last, dt.date):
        raise ConfigError("the store holds no encounters: give --from and --to")
    end = Month(last.year, last.month)
    return [end.shift(i - months + 1) for i in range(months)]


__all__ = [
    "ModelRange",
    "MonthsMeasured",
    "OtherValue",
    "default_range",
    "known_roles",
    "roi_report",
]
