"""The arithmetic of one care manager's month: capacity, break-even and a caseload's net.

Pure functions over ``Rates`` (what the practice's months measured, per patient-month)
and ``Assumptions`` (cost, capacity and collection figures with their sources in
``code_rules/roi/parameters.yaml``). Money is Decimal, rounded to cents only at the end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from billing_engine.services.revenue import MONTHS_PER_YEAR

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Rates:
    """Measured per patient-month (one caseload patient in one month)."""

    conversion: Decimal  # share of patient-months that reached a billable code
    billed_per_billable_month: Decimal  # payer + patient share per billable patient-month
    pmpm_per_patient_month: Decimal  # PMPM capitation per caseload patient-month
    minutes_per_patient_month: Decimal  # minutes logged per caseload patient-month


@dataclass(frozen=True)
class Assumptions:
    """Assumed figures of one FTE (each a parameter of ``roi.*`` or a staffing value)."""

    annual_salary: Decimal
    benefits_rate: Decimal
    fte: Decimal
    working_minutes_per_fte_month: int
    documentation_minutes_per_counted_minute: Decimal
    collection_rate: Decimal


def cents(value: Decimal) -> Decimal:
    """Rounded half up to the cent."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def of_cents(value_cents: int) -> Decimal:
    """Whole cents as dollars."""
    return Decimal(value_cents) / 100


def ratio(num: Decimal, den: Decimal) -> Decimal:
    """num / den, 0 when den is 0 (a rate of nothing)."""
    return num / den if den else Decimal(0)


def monthly_cost(a: Assumptions) -> Decimal:
    """Salary and benefits of one month at the FTE."""
    return a.annual_salary * (1 + a.benefits_rate) * a.fte / MONTHS_PER_YEAR


def revenue_per_patient(r: Rates, a: Assumptions) -> Decimal:
    """Expected collections and PMPM one caseload patient brings a month."""
    return r.conversion * r.billed_per_billable_month * a.collection_rate + (
        r.pmpm_per_patient_month
    )


def minutes_per_patient(r: Rates, a: Assumptions) -> Decimal:
    """Working minutes one caseload patient takes a month, documentation included."""
    return r.minutes_per_patient_month * (1 + a.documentation_minutes_per_counted_minute)


def capacity_caseload(r: Rates, a: Assumptions) -> int | None:
    """The most patients the FTE can carry a month (None: the patients take no time)."""
    per_patient = minutes_per_patient(r, a)
    if per_patient <= 0:
        return None
    return math.floor(Decimal(a.working_minutes_per_fte_month) * a.fte / per_patient)


def break_even_caseload(r: Rates, a: Assumptions) -> int | None:
    """The smallest caseload whose month nets zero or more (None: a patient brings
    nothing, so no caseload pays for a salary)."""
    return break_even_for_cost(monthly_cost(a), r, a)


def break_even_for_cost(cost: Decimal, r: Rates, a: Assumptions) -> int | None:
    """The smallest caseload whose month's revenue covers `cost` (a month of one or more
    care managers; None: a patient brings nothing)."""
    if cost <= 0:
        return 0
    per_patient = revenue_per_patient(r, a)
    if per_patient <= 0:
        return None
    return math.ceil(cost / per_patient)


@dataclass(frozen=True)
class ScenarioRow:
    caseload: int
    revenue: Decimal
    cost: Decimal
    net: Decimal
    minutes_needed: int
    capacity_minutes: int
    within_capacity: bool
    billable_patient_months: Decimal


def scenario(caseload: int, r: Rates, a: Assumptions) -> ScenarioRow:
    """One month of the FTE at `caseload` patients."""
    revenue = cents(caseload * revenue_per_patient(r, a))
    cost = cents(monthly_cost(a))
    needed = math.ceil(caseload * minutes_per_patient(r, a))
    capacity = math.floor(Decimal(a.working_minutes_per_fte_month) * a.fte)
    return ScenarioRow(
        caseload=caseload,
        revenue=revenue,
        cost=cost,
        net=revenue - cost,
        minutes_needed=needed,
        capacity_minutes=capacity,
        within_capacity=needed <= capacity,
        billable_patient_months=caseload * r.conversion,
    )


def scenarios(first: int, last: int, step: int, r: Rates, a: Assumptions) -> list[ScenarioRow]:
    """`scenario` at every `step` from `first` through `last` (and `last` itself)."""
    if step < 1 or last < first:
        raise ValueError(f"caseload range {first}..{last} step {step} is empty")
    loads = list(range(first, last + 1, step))
    if loads[-1] != last:
        loads.append(last)
    return [scenario(c, r, a) for c in loads]
