"""The what-ifs of one FTE-month: the sensitivity table (tornado) and the capacity
table, over the measured ``Rates`` and the assumed ``Assumptions`` (``model``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import polars as pl

from billing_engine.services.roi import model
from billing_engine.services.roi.model import Assumptions, Rates, cents, of_cents, ratio
from billing_engine.services.roi.report import CAPACITY_COLUMNS, SENSITIVITY_COLUMNS

ONE = Decimal(1)
ZERO = Decimal(0)
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class MedicareSplit:
    """The billed amount per billable patient-month of Medicare and of other payers, and
    the Medicare share of billable patient-months (for the payer-mix factor)."""

    share: Decimal
    medicare_rate: Decimal
    other_rate: Decimal


def medicare_split(totals: Mapping[str, Any]) -> MedicareSplit:
    billable = Decimal(totals.get("billable_patient_months", 0) or 0)
    on_medicare = Decimal(totals.get("medicare_billable_months", 0) or 0)
    billed = of_cents(int(totals.get("payer_cents", 0) or 0) + int(totals.get("patient_cents", 0)
                                                                 or 0))  # fmt: skip
    medicare = of_cents(int(totals.get("medicare_cents", 0) or 0))
    blended = ratio(billed, billable)
    others = billable - on_medicare
    return MedicareSplit(
        share=ratio(on_medicare, billable),
        medicare_rate=ratio(medicare, on_medicare) if on_medicare else blended,
        other_rate=ratio(billed - medicare, others) if others else blended,
    )


def _variant_net(r: Rates, a: Assumptions) -> tuple[Decimal, int | None]:
    """Net of one FTE-month at her full capacity, and the break-even caseload."""
    capacity = model.capacity_caseload(r, a)
    net = model.scenario(capacity or 0, r, a).net
    return net, model.break_even_caseload(r, a)


def sensitivity(r: Rates, a: Assumptions, split: MedicareSplit, swing: Decimal) -> pl.DataFrame:
    """The tornado: net of one FTE-month at full capacity (``capacity_caseload`` of the
    moved figures) with each factor moved down and up by `swing` (the Medicare share by
    that many points, rates capped at 1), largest swing first."""
    low, high = ONE - swing, ONE + swing

    def mix(share: Decimal) -> Rates:
        share = min(max(share, ZERO), ONE)
        rate = share * split.medicare_rate + (ONE - share) * split.other_rate
        return replace(r, billed_per_billable_month=rate)

    doc = a.documentation_minutes_per_counted_minute
    share = split.share
    # (factor, base, low, high, model at the low value, model at the high value)
    factors: list[tuple[str, str, str, str, tuple[Rates, Assumptions], tuple[Rates, Assumptions]]]
    factors = [
        ("conversion", f"{r.conversion:.3f}", f"{r.conversion * low:.3f}",
         f"{min(r.conversion * high, ONE):.3f}",
         (replace(r, conversion=r.conversion * low), a),
         (replace(r, conversion=min(r.conversion * high, ONE)), a)),
        ("documentation overhead (minutes per counted minute)", f"{doc:.2f}",
         f"{doc * low:.2f}", f"{doc * high:.2f}",
         (r, replace(a, documentation_minutes_per_counted_minute=doc * low)),
         (r, replace(a, documentation_minutes_per_counted_minute=doc * high))),
        ("Medicare share of billable patient-months", f"{share:.3f}",
         f"{max(share - swing, ZERO):.3f}", f"{min(share + swing, ONE):.3f}",
         (mix(share - swing), a), (mix(share + swing), a)),
        ("fee level", "1.00", f"{low:.2f}", f"{high:.2f}",
         (replace(r, billed_per_billable_month=r.billed_per_billable_month * low), a),
         (replace(r, billed_per_billable_month=r.billed_per_billable_month * high), a)),
        ("salary", f"{a.annual_salary:.2f}", f"{cents(a.annual_salary * low)}",
         f"{cents(a.annual_salary * high)}",
         (r, replace(a, annual_salary=a.annual_salary * low)),
         (r, replace(a, annual_salary=a.annual_salary * high))),
        ("collection rate", f"{a.collection_rate:.3f}", f"{a.collection_rate * low:.3f}",
         f"{min(a.collection_rate * high, ONE):.3f}",
         (r, replace(a, collection_rate=a.collection_rate * low)),
         (r, replace(a, collection_rate=min(a.collection_rate * high, ONE)))),
    ]  # fmt: skip
    rows = []
    for name, base, low_value, high_value, at_low, at_high in factors:
        net_low, be_low = _variant_net(*at_low)
        net_high, be_high = _variant_net(*at_high)
        rows.append({
            "factor": name, "base_value": base, "low_value": low_value,
            "high_value": high_value, "net_low": net_low, "net_high": net_high,
            "swing": abs(net_high - net_low), "break_even_low": be_low,
            "break_even_high": be_high,
        })  # fmt: skip
    return pl.DataFrame(rows, schema=SENSITIVITY_COLUMNS, orient="row").sort(
        "swing", "factor", descending=[True, False]
    )


def capacity_table(r: Rates, a: Assumptions, steps: Sequence[int]) -> pl.DataFrame:
    """Patients one FTE carries at each of `steps` minutes per patient-month and at the
    measured minutes, documentation included."""
    rows = []
    working = Decimal(a.working_minutes_per_fte_month) * a.fte
    overhead = ONE + a.documentation_minutes_per_counted_minute
    for minutes, kind in [*((Decimal(s), "assumed") for s in steps),
                          (r.minutes_per_patient_month, "measured")]:  # fmt: skip
        with_doc = minutes * overhead
        rows.append({
            "minutes_per_patient_month": round(float(minutes), 1), "kind": kind,
            "minutes_with_documentation": round(float(with_doc), 1),
            "patients_per_fte": math.floor(working / with_doc) if with_doc else None,
        })  # fmt: skip
    return pl.DataFrame(rows, schema=CAPACITY_COLUMNS, orient="row")
