"""The frames of a care-manager ROI report: what the terminal, CSV/JSON, workbook and
HTML outputs show (the writers live in ``reports.roi``; nothing here knows a format).

Money columns are ``Decimal(18, 2)``; every figure is either measured (from the
store's months) or assumed (a parameter of ``code_rules/roi/parameters.yaml``, a
staffing file value or a command-line input), and ``assumptions`` lists each assumed
value with its source.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import polars as pl

from billing_engine.calendar import Month

TEAM = "TEAM"  # the row that adds up every care manager

MONEY_DTYPE = pl.Decimal(18, 2)

# one row per care manager, then TEAM (columns after break_even_caseload are additions)
MEASURED_COLUMNS: dict[str, pl.DataType | type[pl.DataType]] = {
    "care_manager_id": pl.String,
    "months": pl.Int64,  # months of the range she worked (or was staffed)
    "caseload": pl.Float64,  # patients worked per month, mean over her months
    "billable_patient_months": pl.Int64,  # patient-months with a line attributed to her
    "conversion": pl.Float64,  # billable_patient_months / patient_months
    "minutes_logged": pl.Int64,
    "minutes_counted": pl.Int64,  # on a billed line's evidence
    "minutes_stranded": pl.Int64,  # valid, on no billed line (below a threshold, over a cap)
    "lines": pl.Int64,  # lines with a share attributed to her
    "allowed_amount": MONEY_DTYPE,  # her share of the lines' allowed amounts
    "expected_collections": MONEY_DTYPE,  # (payer + patient share) x collection rate
    "pmpm_amount": MONEY_DTYPE,  # PMPM capitation of her enrolled members
    "cost": MONEY_DTYPE,  # salary x (1 + benefits) x FTE over her months
    "net": MONEY_DTYPE,  # expected_collections + pmpm_amount - cost
    "roi_pct": pl.Float64,  # net / cost x 100 (null without cost)
    "break_even_caseload": pl.Int64,  # patients a month at which net is 0 (null: never)
    "care_manager_name": pl.String,
    "role": pl.String,
    "fte": pl.Float64,
    "cost_source": pl.String,  # "staffing file" or "assumed (default salary)"
    "enrolled": pl.Float64,  # caseload patients with consent, mean per month
    "patient_months": pl.Int64,
    "minutes_excluded": pl.Int64,  # before consent, inpatient days, failed attempts, ...
    "payer_amount": MONEY_DTYPE,
    "patient_amount": MONEY_DTYPE,
    "revenue_per_billable_patient_month": MONEY_DTYPE,  # expected collections + PMPM
    "monthly_cost": MONEY_DTYPE,  # cost of one month at her FTE
    "months_to_recover": pl.Float64,  # hiring cost / mean monthly net (null: never)
    "quality_incentives": MONEY_DTYPE,  # optional input, never in net
    "shifted_work_value": MONEY_DTYPE,  # optional input, never in net
    "net_with_other_value": MONEY_DTYPE,  # net + the two optional columns
}

MEASURED = "measured"  # from the store's months
ASSUMED = "assumed"  # a parameter, a staffing value or a command-line input
BOTH = "measured x assumed"  # a measured figure put through an assumed one

# what each measured column is: every figure labelled measured or assumed
MEASURED_KINDS: dict[str, str] = {
    "care_manager_id": MEASURED, "months": MEASURED, "caseload": MEASURED,
    "billable_patient_months": MEASURED, "conversion": MEASURED,
    "minutes_logged": MEASURED, "minutes_counted": MEASURED, "minutes_stranded": MEASURED,
    "lines": MEASURED, "allowed_amount": MEASURED, "expected_collections": BOTH,
    "pmpm_amount": MEASURED, "cost": ASSUMED, "net": BOTH, "roi_pct": BOTH,
    "break_even_caseload": BOTH, "care_manager_name": MEASURED, "role": ASSUMED,
    "fte": ASSUMED, "cost_source": ASSUMED, "enrolled": MEASURED,
    "patient_months": MEASURED, "minutes_excluded": MEASURED, "payer_amount": MEASURED,
    "patient_amount": MEASURED, "revenue_per_billable_patient_month": BOTH,
    "monthly_cost": ASSUMED, "months_to_recover": BOTH, "quality_incentives": ASSUMED,
    "shifted_work_value": ASSUMED, "net_with_other_value": BOTH,
}  # fmt: skip

# `billing roi model`: one row per caseload (one FTE, one month)
SCENARIO_COLUMNS: dict[str, pl.DataType | type[pl.DataType]] = {
    "caseload": pl.Int64,
    "revenue": MONEY_DTYPE,  # expected collections + PMPM of the caseload
    "cost": MONEY_DTYPE,  # one FTE-month
    "net": MONEY_DTYPE,
    "minutes_needed": pl.Int64,  # caseload x minutes per patient-month x (1 + overhead)
    "capacity_minutes": pl.Int64,  # working minutes of one FTE-month
    "within_capacity": pl.Boolean,
    "billable_patient_months": pl.Float64,
}

# the tornado: net of one FTE-month at the reference caseload, each factor low / high
SENSITIVITY_COLUMNS: dict[str, pl.DataType | type[pl.DataType]] = {
    "factor": pl.String,
    "base_value": pl.String,
    "low_value": pl.String,
    "high_value": pl.String,
    "net_low": MONEY_DTYPE,
    "net_high": MONEY_DTYPE,
    "swing": MONEY_DTYPE,  # |net_high - net_low|; rows sorted by it, largest first
    "break_even_low": pl.Int64,
    "break_even_high": pl.Int64,
}

# how many patients one FTE carries at a number of minutes per patient-month
CAPACITY_COLUMNS: dict[str, pl.DataType | type[pl.DataType]] = {
    "minutes_per_patient_month": pl.Float64,
    "kind": pl.String,  # "measured" (the range's own minutes) or "assumed" (a step)
    "minutes_with_documentation": pl.Float64,  # x (1 + documentation overhead)
    "patients_per_fte": pl.Int64,  # working minutes of an FTE-month / the line above
}

ASSUMPTION_COLUMNS: dict[str, pl.DataType | type[pl.DataType]] = {
    "name": pl.String,
    "value": pl.String,
    "unit": pl.String,
    "kind": pl.String,  # "assumed" or "measured"
    "source": pl.String,
}


@dataclass(frozen=True)
class RoiReport:
    """Everything an ROI output shows (see the column tables above)."""

    months: tuple[Month, ...]
    measured: pl.DataFrame  # MEASURED_COLUMNS: care managers, then TEAM
    scenarios: pl.DataFrame  # SCENARIO_COLUMNS
    sensitivity: pl.DataFrame  # SENSITIVITY_COLUMNS
    assumptions: pl.DataFrame  # ASSUMPTION_COLUMNS
    capacity: pl.DataFrame  # CAPACITY_COLUMNS
    role: str | None  # the role modelled (None: the whole team's rates)
    reference_caseload: int  # where the tornado is taken (one FTE)
    break_even_caseload: int | None  # of one FTE at the modelled rates (None: never)
    capacity_caseload: int  # the most patients one FTE can carry a month
    # the practice's totals over the months, as `billing revenue` reports them, and the
    # part no care manager's minutes stand behind (practitioners' own visits, ...)
    practice_allowed: Decimal
    not_attributed_allowed: Decimal
    practice_pmpm: Decimal
    staffing_given: bool
    reference_net: Decimal = Decimal(0)  # net of one FTE-month at the reference caseload
    notes: tuple[str, ...] = ()  # what a reader should know (defaults used, no work, ...)
