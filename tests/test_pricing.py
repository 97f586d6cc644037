"""Pricing (FEE-1, FEE-2): allowed amounts from the CMS files, contracts and shares.

Checks from reference section 1.1/4 and issue 4: 99490 in 2025 is $60.49 at national
rates and $56.23 at the Alabama locality (10112-0); 2026 uses $33.4009 (non-QP) or
$33.5675 (QP); CY2024 changes conversion factor on 2024-03-09; Medicare pays 80 % less
2 % sequestration (66.13 -> 52.90 -> 51.84) and the patient 20 % unless waived.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from billing_engine.engine.kernel import OUTCOME_SCHEMA
from billing_engine.io.bundle import Bundle
from billing_engine.io.cms_pfs import PFS_SCHEMA
from billing_engine.pricing.allowed import fee_gaps, price_lines
from billing_engine.pricing.fees import FeeLibrary
from billing_engine.pricing.money import MONEY
from billing_engine.pricing.shares import split_shares
from billing_engine.services.evaluation import default_parameters
from code_rules.rulebook import shipped_fees as shipped

D = Decimal
PARAMS = default_parameters()


def practitioner(**kw: Any) -> dict[str, Any]:
    return {"practitioner_id": "DR_A", "npi": "1234567893", "credential": "MD", **kw}


def bundle(
    *,
    practitioners: list[dict[str, Any]] | None = None,
    payers: list[dict[str, Any]] | None = None,
    coverages: list[dict[str, Any]] | None = None,
    fee_schedule: list[dict[str, Any]] | None = None,
) -> Bundle:
    frames = {
        "practitioners": pl.DataFrame(practitioners or [practitioner()]),
        "payers": pl.DataFrame(
            payers or [{"payer_id": "MCR", "name": "Medicare", "kind": "medicare"}]
        ),
        "patients": pl.DataFrame({"patient_id": ["P1"], "birth_date": [dt.date(1950, 1, 1)]}),
    }
    if coverages:
        frames["coverages"] = pl.DataFrame(coverages)
    if fee_schedule:
        frames["fee_schedule"] = pl.DataFrame(fee_schedule).with_columns(
            pl.col("amount").cast(pl.Decimal(18, 4))
        )
    return Bundle.from_frames(frames)


def line(
    code: str = "99490",
    day: dt.date = dt.date(2025, 3, 15),
    *,
    payer: str = "MCR",
    family: str = "ccm",
    units: int = 1,
    pos: str = "11",
    patient: str = "P1",
) -> dict[str, Any]:
    return {
        "patient_id": patient,
        "payer_id": payer,
        "billing_practitioner_id": "DR_A",
        "code": code,
        "family": family,
        "units": units,
        "date_of_service": day,
        "place_of_service": pos,
    }


def lines(*rows: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(list(rows)).with_columns(pl.col("units").cast(pl.Int64))


def priced(
    frame: pl.DataFrame,
    data: Bundle,
    fees: FeeLibrary | None = None,
    settings: dict[str, Any] | None = None,
    *,
    deductible: bool = False,
) -> pl.DataFrame:
    days = frame["date_of_service"]
    start, end = days.min(), days.max()
    assert isinstance(start, dt.date) and isinstance(end, dt.date)
    period = PARAMS.for_period(start, end, settings)
    result = price_lines(frame, data, PARAMS, period, fees or shipped())
    return split_shares(result.lines, data, PARAMS, period, apply_deductible=deductible)


def amounts(frame: pl.DataFrame, column: str = "allowed_amount") -> list[str | None]:
    return [None if v is None else str(v) for v in frame[column].to_list()]


def library_2026_and_2024() -> FeeLibrary:
    """99490 and 99211 relative values as the reference gives them (section 4)."""
    rows = [
        # year, effective_from, code, work, nf_pe, f_pe, mp, file CF
        (2026, dt.date(2026, 1, 1), "99490", "1.00", "0.91", "0.45", "0.07", "33.4009"),
        (2024, dt.date(2024, 1, 1), "99211", "0.18", "0.51", "0.07", "0.01", "32.7442"),
        (2027, dt.date(2027, 1, 1), "99490", "1.00", "0.91", "0.45", "0.07", "34.0000"),
    ]
    frame = pl.DataFrame(
        {
            "year": [r[0] for r in rows],
            "effective_from": [r[1] for r in rows],
            "qp": [False] * len(rows),
            "hcpcs": [r[2] for r in rows],
            "modifier": [""] * len(rows),
            "status": ["A"] * len(rows),
            "work_rvu": [r[3] for r in rows],
            "nf_pe_rvu": [r[4] for r in rows],
            "nf_na": [""] * len(rows),
            "f_pe_rvu": [r[5] for r in rows],
            "f_na": [""] * len(rows),
            "mp_rvu": [r[6] for r in rows],
            "conv_factor": [r[7] for r in rows],
            "release": ["test release"] * len(rows),
            "source_file": ["test.csv"] * len(rows),
        }
    ).with_columns(pl.col(c).cast(t) for c, t in PFS_SCHEMA.items())
    return shipped().overlay(FeeLibrary(frame, shipped().gpcis.head(0)))


# ------------------------------------------------------------------ allowed amounts


def test_99490_in_2025_at_national_rates_is_60_49() -> None:
    assert amounts(priced(lines(line()), bundle())) == ["60.49"]


def test_99490_in_2025_at_the_alabama_locality_is_56_23() -> None:
    data = bundle(practitioners=[practitioner(medicare_locality="10112-0")])
    assert amounts(priced(lines(line()), data)) == ["56.23"]


def test_a_facility_place_of_service_is_paid_with_the_facility_pe_rvu() -> None:
    # 99490 2025 facility total RVU 1.48 x 32.3465 = 47.87 (reference section 4)
    assert amounts(priced(lines(line(pos="22")), bundle())) == ["47.87"]


def test_each_reference_2025_national_fee_is_reproduced_from_the_cms_file() -> None:
    expected = {
        "99490": "60.49", "99439": "45.93", "99491": "82.16", "99437": "57.58",
        "99487": "131.65", "99489": "70.52", "G0506": "60.81", "99495": "201.20",
        "99496": "272.68", "99211": "22.64", "G0447": "31.70", "G0473": "11.97",
        "99406": "13.91", "99407": "26.52", "97802": "35.58", "97803": "31.05",
        "G0402": "160.76", "G0438": "160.44", "G0439": "126.47",
    }  # fmt: skip
    frame = priced(lines(*(line(code) for code in expected)), bundle())
    assert dict(zip(frame["code"], amounts(frame), strict=True)) == expected


def test_units_multiply_the_exact_fee_and_round_once() -> None:
    # 99439 x2: 2 x 1.42 x 32.3465 = 91.86406 -> 91.86 (not 2 x 45.93 = 91.86 by luck:
    # check a code whose rounding differs) 99211 x3 = 3 x 0.70 x 32.3465 = 67.92765 -> 67.93
    assert amounts(priced(lines(line("99211", units=3)), bundle())) == ["67.93"]


def test_in_2026_a_qp_practitioner_gets_the_qp_conversion_factor() -> None:
    fees = library_2026_and_2024()
    day = dt.date(2026, 3, 15)
    non_qp = priced(lines(line(day=day)), bundle(), fees)
    qp = priced(lines(line(day=day)), bundle(practitioners=[practitioner(qp=True)]), fees)
    assert amounts(non_qp) == ["66.13"]  # 1.98 x 33.4009
    assert amounts(qp) == ["66.46"]  # 1.98 x 33.5675


def test_the_2024_conversion_factor_changes_on_march_9() -> None:
    fees = library_2026_and_2024()
    frame = priced(
        lines(line("99211", dt.date(2024, 3, 8)), line("99211", dt.date(2024, 3, 9))),
        bundle(),
        fees,
    )
    assert amounts(frame) == ["22.92", "23.30"]  # 0.70 x 32.7442 ; 0.70 x 33.2875


def test_a_year_past_the_parameters_uses_the_conversion_factor_of_the_cms_file() -> None:
    # 2027 has no parameter conversion factor: the loaded file's CONV FACTOR applies.
    fees = library_2026_and_2024()
    data = bundle()
    period = PARAMS.for_period(dt.date(2026, 12, 1), dt.date(2026, 12, 31))
    result = price_lines(lines(line(day=dt.date(2027, 1, 5))), data, PARAMS, period, fees)
    assert amounts(result.lines) == ["67.32"]  # 1.98 x 34.0000


def test_a_year_without_loaded_fees_leaves_the_amount_empty_with_a_reason() -> None:
    # no fee data at all (no year to estimate from); see the fee_estimated tests for a
    # year missing beside others
    data = bundle()
    period = PARAMS.for_period(dt.date(2024, 5, 1), dt.date(2024, 5, 31))
    empty = FeeLibrary.empty()
    result = price_lines(lines(line(day=dt.date(2024, 5, 10))), data, PARAMS, period, empty)
    assert amounts(result.lines) == [None]
    assert result.missing["_fee_missing"].to_list() == [
        "no 2024 PFS relative values loaded for 99490"
    ]


def test_an_unpriced_line_becomes_an_info_gap_fee_not_found() -> None:
    data = bundle()
    period = PARAMS.for_period(dt.date(2024, 5, 1), dt.date(2024, 5, 31))
    frame = lines(line(day=dt.date(2024, 5, 10))).with_columns(
        pl.lit(None, dtype=t).alias(c)
        for c, t in OUTCOME_SCHEMA.items()
        if c not in ("patient_id", "payer_id", "billing_practitioner_id", "code", "family",
                     "units", "date_of_service", "place_of_service")
    )  # fmt: skip
    result = price_lines(frame, data, PARAMS, period, FeeLibrary.empty())
    gaps = fee_gaps(result.missing, list(OUTCOME_SCHEMA))
    assert gaps.select("status", "reason", "rule").rows() == [("info", "fee_not_found", "FEE-1")]


def test_a_locality_missing_from_the_gpci_file_is_not_priced_at_national_rates() -> None:
    data = bundle(practitioners=[practitioner(medicare_locality="99999-9")])
    period = PARAMS.for_period(dt.date(2025, 3, 1), dt.date(2025, 3, 31))
    result = price_lines(lines(line()), data, PARAMS, period, shipped())
    assert amounts(result.lines) == [None]
    assert "locality 99999-9" in str(result.missing["_fee_missing"][0])


def test_a_code_the_pfs_does_not_pay_is_not_priced_by_the_pfs() -> None:
    # T1016 has status I in the PFS file: a Medicare-basis payer has no fee for it.
    data = bundle()
    period = PARAMS.for_period(dt.date(2025, 3, 1), dt.date(2025, 3, 31))
    result = price_lines(lines(line("T1016", family="medicaid")), data, PARAMS, period, shipped())
    assert amounts(result.lines) == [None]
    assert str(result.missing["_fee_missing"][0]).startswith("PFS status I for T1016")


# ------------------------------------------------------------------ payer contracts


def test_percent_of_medicare_is_applied_before_the_single_rounding() -> None:
    data = bundle(
        payers=[{"payer_id": "COM", "kind": "commercial", "fee_basis": "percent_of_medicare:110"}]
    )
    assert amounts(priced(lines(line(payer="COM")), data)) == ["66.54"]


def test_a_fee_schedule_row_overrides_the_fee_basis_on_its_dates_only() -> None:
    data = bundle(
        payers=[{"payer_id": "COM", "kind": "commercial", "fee_basis": "percent_of_medicare:110"}],
        fee_schedule=[
            {"payer_id": "COM", "code": "99490", "effective_from": dt.date(2025, 1, 1),
             "effective_to": dt.date(2025, 6, 30), "amount": "55.00"},
            {"payer_id": "COM", "code": "99490", "effective_from": dt.date(2025, 7, 1),
             "amount": "58.25"},
        ],
    )  # fmt: skip
    frame = priced(
        lines(
            line(payer="COM", day=dt.date(2025, 6, 30)),
            line(payer="COM", day=dt.date(2025, 7, 1), units=2),
        ),
        data,
    )
    assert amounts(frame) == ["55.00", "116.50"]


def test_a_schedule_payer_without_a_row_for_the_code_has_no_fee() -> None:
    data = bundle(payers=[{"payer_id": "COM", "kind": "commercial"}])
    period = PARAMS.for_period(dt.date(2025, 3, 1), dt.date(2025, 3, 31))
    result = price_lines(lines(line(payer="COM")), data, PARAMS, period, shipped())
    assert amounts(result.lines) == [None]
    assert "no fee_schedule row of payer COM for 99490" in str(result.missing["_fee_missing"][0])


# ------------------------------------------------------------------ who pays what


def test_medicare_pays_80_percent_less_2_percent_sequestration_and_the_patient_20() -> None:
    fees = library_2026_and_2024()
    frame = priced(lines(line(day=dt.date(2026, 3, 15))), bundle(), fees)
    row = frame.row(0, named=True)
    assert (row["allowed_amount"], row["payer_amount"], row["patient_amount"]) == (
        D("66.13"), D("51.84"), D("13.23"),
    )  # fmt: skip
    assert row["sequestration_amount"] == D("1.06")


def test_waived_preventive_services_cost_the_patient_nothing() -> None:
    frame = priced(
        lines(
            line("G0439", family="wellness"),
            line("99406", family="tobacco"),
            line("G0447", family="obesity"),
            line("97803", family="mnt"),
        ),
        bundle(),
    )
    assert set(frame["patient_amount"].to_list()) == {D("0.00")}
    # G0439: 126.47, all program share, less 2 %: 126.47 - 2.53
    assert frame.filter(pl.col("code") == "G0439")["payer_amount"].to_list() == [D("123.94")]


def test_medicaid_secondary_coverage_picks_up_the_patient_share() -> None:
    data = bundle(
        payers=[
            {"payer_id": "MCR", "kind": "medicare"},
            {"payer_id": "MCD", "kind": "medicaid", "state": "MI"},
        ],
        coverages=[
            {"patient_id": "P1", "payer_id": "MCR", "start_date": dt.date(2020, 1, 1), "rank": 1},
            {"patient_id": "P1", "payer_id": "MCD", "start_date": dt.date(2020, 1, 1), "rank": 2},
        ],
    )
    row = priced(lines(line()), data).row(0, named=True)
    assert row["secondary_payer_id"] == "MCD"
    assert (row["patient_amount"], row["secondary_amount"]) == (D("0.00"), D("12.10"))


def test_secondary_amount_is_blank_without_a_secondary_and_zero_only_when_it_pays_nothing() -> None:
    medicaid = {"payer_id": "MCD", "kind": "medicaid", "state": "MI"}
    alone = priced(lines(line()), bundle(payers=[{"payer_id": "MCR", "kind": "medicare"},
                                                 medicaid]))  # fmt: skip
    assert alone.select("secondary_payer_id", "secondary_amount").row(0) == (None, None)
    data = bundle(
        payers=[{"payer_id": "MCR", "kind": "medicare"}, medicaid],
        coverages=[
            {"patient_id": "P1", "payer_id": "MCR", "start_date": dt.date(2020, 1, 1), "rank": 1},
            {"patient_id": "P1", "payer_id": "MCD", "start_date": dt.date(2020, 1, 1), "rank": 2},
        ],
    )
    # the AWV waives cost sharing: the secondary exists and picks up 0.00
    both = priced(lines(line(), line("G0439", family="wellness")), data).sort("code")
    assert both.select("code", "secondary_payer_id", "secondary_amount").rows() == [
        ("99490", "MCD", D("12.10")), ("G0439", "MCD", D("0.00")),
    ]  # fmt: skip


def test_the_deductible_is_charged_only_when_asked_and_only_once_a_year() -> None:
    # 99495 is 201.20 in 2025; the 2025 deductible is 257.
    rows = lines(*(line("99495", dt.date(2025, m, 10), family="tcm") for m in (2, 3)))
    without = priced(rows, bundle())
    assert amounts(without, "patient_amount") == ["40.24", "40.24"]
    with_it = priced(rows, bundle(), deductible=True)
    # Feb: all 201.20 is deductible; Mar: 55.80 deductible + 20 % of 145.40 (29.08);
    # Medicare: 80 % of 145.40 = 116.32 less 2.33 sequestration
    assert amounts(with_it, "patient_amount") == ["201.20", "84.88"]
    assert amounts(with_it, "payer_amount") == ["0.00", "113.99"]
    waived = priced(lines(line("G0439", dt.date(2025, 2, 10), family="wellness")), bundle(),
                    deductible=True)  # fmt: skip
    assert amounts(waived, "patient_amount") == ["0.00"]


def test_the_cost_sharing_setting_changes_a_payer_kind() -> None:
    data = bundle(payers=[{"payer_id": "COM", "kind": "commercial", "fee_basis": "medicare_pfs"}])
    table = dict(PARAMS.get("pricing.cost_sharing_by_payer_kind").values[-1].value)
    table["commercial"] = {"coinsurance": "0.10", "sequestration": False, "deductible": False}
    frame = priced(
        lines(line(payer="COM")), data, settings={"pricing.cost_sharing_by_payer_kind": table}
    )
    assert amounts(frame, "patient_amount") == ["6.05"]  # 60.49 - round(54.441)


@settings(max_examples=60, deadline=None)
@given(
    codes=st.lists(
        st.sampled_from(["99490", "99439", "99495", "99496", "99211", "G0439", "99406"]),
        min_size=1,
        max_size=6,
    ),
    units=st.integers(min_value=1, max_value=4),
    pos=st.sampled_from(["11", "22", "02", "10"]),
    locality=st.sampled_from([None, "10112-0", "1182-18", "2102-1"]),
    kind=st.sampled_from(["medicare", "medicare_advantage", "commercial"]),
    secondary=st.booleans(),
    deductible=st.booleans(),
    days=st.lists(st.integers(min_value=1, max_value=365), min_size=6, max_size=6),
)
def test_payer_patient_secondary_and_sequestration_add_up_to_the_allowed_amount(
    codes: list[str],
    units: int,
    pos: str,
    locality: str | None,
    kind: str,
    secondary: bool,
    deductible: bool,
    days: list[int],
) -> None:
    families = {"G0439": "wellness", "99406": "tobacco", "99495": "tcm", "99496": "tcm",
                "99211": "nurse_visit"}  # fmt: skip
    data = bundle(
        practitioners=[practitioner(medicare_locality=locality)],
        payers=[
            {"payer_id": "PAY", "kind": kind, "fee_basis": "medicare_pfs"},
            {"payer_id": "MCD", "kind": "medicaid", "state": "MI"},
        ],
        coverages=[
            {"patient_id": "P1", "payer_id": "MCD", "start_date": dt.date(2020, 1, 1), "rank": 2}
        ]
        if secondary
        else None,
    )
    rows = lines(
        *(
            line(code, dt.date(2025, 1, 1) + dt.timedelta(days=day - 1), payer="PAY",
                 family=families.get(code, "ccm"), units=units, pos=pos)
            for code, day in zip(codes, days, strict=False)
        )
    )  # fmt: skip
    frame = priced(rows, data, deductible=deductible)
    assert frame["allowed_amount"].null_count() == 0
    for row in frame.iter_rows(named=True):
        # blank secondary_amount exactly when the line has no secondary coverage
        assert (row["secondary_amount"] is None) == (row["secondary_payer_id"] is None), row
        assert (row["secondary_payer_id"] is not None) == secondary, row
        parts = [row["payer_amount"], row["patient_amount"], row["sequestration_amount"],
                 row["secondary_amount"] or D(0)]  # blank counts as 0  # fmt: skip
        assert all(p >= 0 for p in parts), row
        assert sum(parts) == row["allowed_amount"], row
        assert row["allowed_amount"].as_tuple().exponent == -2
    assert frame.schema["allowed_amount"] == MONEY


# ------------------------------------------------------------------ 2026 fees, estimates

LOCALITIES = [
    practitioner(practitioner_id="DR_N"),
    practitioner(practitioner_id="DR_AL", medicare_locality="10112-0"),
    practitioner(practitioner_id="DR_LA", medicare_locality="1182-18"),
    practitioner(practitioner_id="DR_QP", qp=True),
]


def by_practitioner(
    day: dt.date,
    fees: FeeLibrary | None = None,
    settings: dict[str, Any] | None = None,
    *,
    allow_unverified: bool = False,
) -> tuple[pl.DataFrame, Any]:
    data = bundle(practitioners=LOCALITIES)
    frame = pl.concat(
        lines(line(day=day)).with_columns(billing_practitioner_id=pl.lit(p["practitioner_id"]))
        for p in LOCALITIES
    )
    period = PARAMS.for_period(day.replace(day=1), day, settings, allow_unverified=allow_unverified)
    return price_lines(frame, data, PARAMS, period, fees or shipped()), period


def test_99490_in_2026_is_priced_from_the_shipped_2026_cms_values() -> None:
    result, _ = by_practitioner(dt.date(2026, 3, 15))
    # national, Alabama (work GPCI 0.988 floored to 1.0), Los Angeles, QP national
    assert amounts(result.lines) == ["66.13", "61.32", "72.28", "66.46"]
    assert result.estimated.is_empty() and result.missing.is_empty()
    sources = result.lines["fee_source"].to_list()
    assert all("2026 National Physician Fee Schedule Relative Value File July Release" in s
               for s in sources)  # fmt: skip
    assert "GPCI 10112-0 1/0.875/0.566 x CF 33.4009" in sources[1]
    assert "CF 33.5675 (QP)" in sources[3]


def test_the_2025_checks_still_hold_beside_the_2026_data() -> None:
    result, _ = by_practitioner(dt.date(2025, 3, 15))
    assert amounts(result.lines)[:2] == ["60.49", "56.23"]


def test_turning_the_work_gpci_floor_off_prices_alabama_2026_with_its_own_work_gpci() -> None:
    result, _ = by_practitioner(dt.date(2026, 3, 15), settings={"pricing.work_gpci_floor": None})
    # (0.988 + 0.91 x 0.875 + 0.07 x 0.566) x 33.4009 = 60.92; Los Angeles is above 1.0
    assert amounts(result.lines) == ["66.13", "60.92", "72.28", "66.46"]


def test_the_floor_parameter_reproduces_the_floored_column_of_the_2026_gpci_file() -> None:
    import csv
    from pathlib import Path

    path = Path(__file__).resolve().parent / "data" / "shared" / "reference" / "cms_gpci_2026.csv"
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    floor = D(str(PARAMS.get("pricing.work_gpci_floor").at(dt.date(2026, 1, 1)).value))
    assert len(rows) == 109
    for row in rows:
        without = D(row["2026 PW GPCI (without 1.0 Floor)"])
        assert max(without, floor) == D(row["2026 PW GPCI (with 1.0 Floor)"]), row


def test_a_year_without_a_cms_file_is_an_estimate_from_the_latest_rvus() -> None:
    result, _ = by_practitioner(dt.date(2024, 5, 10))
    # 2026 RVUs (1.98 national) x the 2024 conversion factor from March 9 (33.2875)
    assert amounts(result.lines)[0] == "65.91"
    assert result.estimated.height == 4
    detail = str(result.estimated["_fee_estimated"][0])
    assert "no 2024 CMS fee file" in detail
    assert "2026 National Physician Fee Schedule Relative Value File July Release" in detail
    assert "the 2024 conversion factor (33.2875)" in detail
    assert "estimate" in str(result.lines["fee_source"][0])


def test_a_2027_line_is_estimated_with_the_carried_forward_conversion_factor() -> None:
    result, period = by_practitioner(dt.date(2027, 1, 15), allow_unverified=True)
    assert amounts(result.lines) == ["66.13", "61.32", "72.28", "66.46"]
    detail = str(result.estimated["_fee_estimated"][0])
    assert "no 2027 CMS fee file: estimated from the 2026 RVUs" in detail
    assert "last verified conversion factor, carried forward (33.4009)" in detail
    assert "pricing.conversion_factor" in period.unverified


def test_real_cms_data_for_the_year_wins_over_an_estimate() -> None:
    # the 2027 row of the test library carries its own CONV FACTOR (34.0000)
    fees = library_2026_and_2024()
    result, _ = by_practitioner(dt.date(2027, 1, 5), fees, allow_unverified=True)
    assert amounts(result.lines)[0] == "67.32"
    assert result.estimated["billing_practitioner_id"].to_list() == ["DR_AL", "DR_LA"]
    assert "the 2026 GPCIs of" in str(result.estimated["_fee_estimated"][0])


def test_an_estimated_line_becomes_an_info_gap_fee_estimated() -> None:
    result, _ = by_practitioner(dt.date(2024, 5, 10))
    frame = result.estimated.with_columns(
        pl.lit(None, dtype=t).alias(c)
        for c, t in OUTCOME_SCHEMA.items()
        if c not in result.estimated.columns
    )
    gaps = fee_gaps(frame.head(0), list(OUTCOME_SCHEMA), frame)
    assert set(gaps.select("status", "reason", "rule").rows()) == {
        ("info", "fee_estimated", "FEE-1")
    }
    assert gaps.height == 4
