"""The ROI model's arithmetic (billing_engine.services.roi.model), by hand and by property.

Assumption values and their sources: code_rules/roi/parameters.yaml (documentation
overhead from the AHRQ care management guide, ROI-AHRQ-CM-GUIDE; collection rate
MGMA, ROI-MGMA-NCR).
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from billing_engine.services.roi.model import (
    Assumptions,
    Rates,
    break_even_caseload,
    capacity_caseload,
    monthly_cost,
    scenario,
    scenarios,
)

RATES = Rates(
    conversion=Decimal("0.5"),
    billed_per_billable_month=Decimal("60.00"),
    pmpm_per_patient_month=Decimal("0"),
    minutes_per_patient_month=Decimal("20"),
)
ASSUMED = Assumptions(
    annual_salary=Decimal("60000"),
    benefits_rate=Decimal("0.2"),
    fte=Decimal("1"),
    working_minutes_per_fte_month=9000,
    documentation_minutes_per_counted_minute=Decimal("2.0"),
    collection_rate=Decimal("1"),
)


def test_a_hand_computed_month_gives_its_cost_capacity_and_break_even() -> None:
    # 60,000 x 1.2 / 12 = 6,000 a month; a patient brings 0.5 x 60 = 30; 6,000 / 30 = 200
    assert monthly_cost(ASSUMED) == Decimal("6000")
    assert break_even_caseload(RATES, ASSUMED) == 200
    # 20 minutes + 40 of documentation = 60 a patient; 9,000 / 60 = 150
    assert capacity_caseload(RATES, ASSUMED) == 150
    row = scenario(100, RATES, ASSUMED)
    assert (row.revenue, row.cost, row.net) == (Decimal("3000.00"), Decimal("6000.00"),
                                                Decimal("-3000.00"))  # fmt: skip
    assert (row.minutes_needed, row.capacity_minutes, row.within_capacity) == (6000, 9000, True)


def test_the_scenario_range_ends_on_its_last_caseload_even_off_the_step() -> None:
    rows = scenarios(40, 250, 100, RATES, ASSUMED)
    assert [r.caseload for r in rows] == [40, 140, 240, 250]
    assert [r.within_capacity for r in rows] == [True, True, False, False]


@given(
    low=st.decimals(min_value=0, max_value=1, places=3),
    high=st.decimals(min_value=0, max_value=1, places=3),
    caseload=st.integers(min_value=0, max_value=400),
)
def test_more_conversion_never_lowers_revenue(low: Decimal, high: Decimal, caseload: int) -> None:
    low, high = sorted((low, high))
    less = Rates(low, RATES.billed_per_billable_month, Decimal("0"), Decimal("20"))
    more = Rates(high, RATES.billed_per_billable_month, Decimal("0"), Decimal("20"))
    assert scenario(caseload, more, ASSUMED).revenue >= scenario(caseload, less, ASSUMED).revenue


@given(conversion=st.decimals(min_value=0, max_value=1, places=3))
def test_with_no_salary_the_break_even_caseload_is_zero_or_one(conversion: Decimal) -> None:
    free = Assumptions(Decimal("0"), Decimal("0.46"), Decimal("1"), 9360, Decimal("2"),
                       Decimal("0.95"))  # fmt: skip
    rates = Rates(conversion, Decimal("60"), Decimal("0"), Decimal("20"))
    assert break_even_caseload(rates, free) in (0, 1)


def test_a_patient_who_brings_nothing_never_breaks_even() -> None:
    nothing = Rates(Decimal("0"), Decimal("60"), Decimal("0"), Decimal("20"))
    assert break_even_caseload(nothing, ASSUMED) is None
