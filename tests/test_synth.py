"""The synthetic practice generator, its CSV writer and the demo summary."""

from __future__ import annotations

import datetime as dt
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from billing_engine.io.bundle import Bundle
from billing_engine.io.schema import BILLING_CREDENTIALS, TABLES, ColType
from billing_engine.synth.practice import (
    OTHER_PRACTICE_NPI,
    generate_practice,
    make_npi,
    npi_check_digit,
    npi_is_valid,
    write_bundle_csv,
)
from cli.cmd_demo import demo_folder, summarize

HAS_INGEST = importlib.util.find_spec("billing_engine.io.ingest") is not None
DEMO_END = dt.date(2025, 12, 31)

# (table, earlier, later): the later date may not precede the earlier one
DATE_ORDER = (
    ("coverages", "start_date", "end_date"),
    ("discharges", "admit_date", "discharge_date"),
    ("conditions", "onset_date", "resolved_date"),
    ("consents", "obtained_date", "revoked_date"),
)


@pytest.fixture(scope="module")
def demo() -> Bundle:
    return generate_practice(2000)


def schema_problems(bundle: Bundle) -> list[str]:
    """Everything in `bundle` that docs/interchange.md (as schema.TABLES) forbids."""
    problems: list[str] = []
    for name, table in TABLES.items():
        frame = bundle[name]
        if list(frame.columns) != list(table.column_names):
            problems.append(f"{name}: columns {frame.columns}")
            continue
        for column in table.columns:
            values = frame[column.name]
            if values.dtype != column.dtype:
                problems.append(f"{name}.{column.name}: dtype {values.dtype}")
            if column.required and values.null_count():
                problems.append(f"{name}.{column.name}: {values.null_count()} empty")
            if column.required_when is not None:
                other, when = column.required_when
                missing = frame.filter(pl.col(other).is_in(when) & values.is_null()).height
                if missing:
                    problems.append(f"{name}.{column.name}: {missing} empty where required")
            if column.enum:
                bad = set(values.drop_nulls().unique().to_list()) - set(column.enum)
                if bad:
                    problems.append(f"{name}.{column.name}: unknown values {sorted(bad)}")
            if column.item_enum:
                items = set(values.explode().drop_nulls().unique().to_list())
                if items - set(column.item_enum):
                    problems.append(f"{name}.{column.name}: unknown items")
            if column.min_value is not None and (values < column.min_value).any():
                problems.append(f"{name}.{column.name}: below {column.min_value}")
            if column.type == ColType.NPI:
                bad_npis = [n for n in values.drop_nulls().to_list() if not npi_is_valid(n)]
                if bad_npis:
                    problems.append(f"{name}.{column.name}: invalid NPIs {bad_npis}")
        for key in (table.key, table.natural_key):
            if key and frame.select(key).is_duplicated().any():
                problems.append(f"{name}: duplicate {key}")
        for ref in table.references:
            targets = bundle[ref.table][ref.target]
            unknown = frame.filter(
                pl.col(ref.column).is_not_null() & ~pl.col(ref.column).is_in(targets.implode())
            )
            if unknown.height:
                problems.append(f"{name}.{ref.column}: {unknown.height} unknown references")
    for name, earlier, later in DATE_ORDER:
        frame = bundle[name]
        if frame.filter(pl.col(later) < pl.col(earlier)).height:
            problems.append(f"{name}: {later} before {earlier}")
    practitioners = bundle["practitioners"]
    billing_ids = set(
        pl.concat(
            [
                bundle["encounters"]["billing_practitioner_id"],
                bundle["consents"]["billing_practitioner_id"],
            ]
        )
        .drop_nulls()
        .to_list()
    )
    without_npi = practitioners.filter(
        pl.col("practitioner_id").is_in(sorted(billing_ids)) & pl.col("npi").is_null()
    )
    if without_npi.height:
        problems.append(f"billing practitioners without NPI: {without_npi['practitioner_id']}")
    return problems


def test_the_same_seed_gives_an_identical_bundle() -> None:
    first = generate_practice(400, seed=11)
    second = generate_practice(400, seed=11)
    for name in TABLES:
        assert first[name].equals(second[name]), name


def test_a_different_seed_gives_a_different_bundle() -> None:
    first = generate_practice(400, seed=11)
    other = generate_practice(400, seed=12)
    assert not first["patients"].equals(other["patients"])
    assert not first["encounters"].equals(other["encounters"])


def test_every_column_enum_key_and_reference_follows_the_schema(demo: Bundle) -> None:
    assert schema_problems(demo) == []


def test_small_and_other_windows_follow_the_schema_too() -> None:
    assert schema_problems(generate_practice(25, seed=3)) == []
    assert schema_problems(generate_practice(300, seed=5, end_month="2026-03", months=6)) == []


def test_nothing_is_dated_after_the_window_or_after_a_patients_death(demo: Bundle) -> None:
    for name, frame in demo.tables.items():
        for column, dtype in frame.schema.items():
            if dtype == pl.Date and frame[column].drop_nulls().len():
                assert frame[column].max() <= DEMO_END, f"{name}.{column}"  # type: ignore[operator]
    died = demo["patients"].filter(pl.col("death_date").is_not_null())
    assert died.height > 0
    late = (
        demo["encounters"]
        .join(died, on="patient_id")
        .filter(pl.col("date") >= pl.col("death_date"))
    )
    assert late.height == 0


def test_row_counts_scale_with_the_number_of_patients() -> None:
    small = generate_practice(500).row_counts()
    large = generate_practice(2000).row_counts()
    assert small["patients"] == 500
    assert large["patients"] == 2000
    for fixed in ("practitioners", "payers", "fee_schedule"):
        assert small[fixed] == large[fixed]
    for scaled in ("coverages", "conditions", "consents", "encounters", "claims_history"):
        assert 3.0 < large[scaled] / small[scaled] < 5.0, scaled


def test_npi_check_digits_use_the_luhn_rule_over_the_80840_prefix() -> None:
    assert npi_check_digit("123456789") == "3"  # CMS's example NPI 1234567893
    assert make_npi("123456789") == "1234567893"
    assert npi_is_valid("1234567893")
    assert not npi_is_valid("1234567894")
    assert not npi_is_valid("123456789")
    assert npi_is_valid(OTHER_PRACTICE_NPI)
    with pytest.raises(ValueError, match="9 digits"):
        npi_check_digit("12345")


def test_the_demo_practice_has_the_specified_staff_and_payer_mix(demo: Bundle) -> None:
    practitioners = demo["practitioners"]
    credentials = practitioners["credential"].to_list()
    billing = practitioners.filter(pl.col("credential").is_in(BILLING_CREDENTIALS))
    assert sorted(billing["credential"]) == ["DO", "MD", "NP"]
    assert billing["primary_care"].to_list() == [True, True, True]
    assert sorted(c for c in credentials if c in ("RN", "LPN", "MA", "LCSW")) == [
        "LCSW",
        "LPN",
        "RN",
        "RN",
    ]
    assert "RD" in credentials and "NONCLINICAL" in credentials
    primary = demo["coverages"].filter(pl.col("rank") == 1).unique("patient_id", keep="first")
    mix = dict(primary.group_by("payer_id").len().iter_rows())
    kinds = dict(demo["payers"].select("payer_id", "kind").iter_rows())
    share = {kinds[p]: count / 2000 for p, count in mix.items()}
    assert 0.45 < share["medicare"] < 0.65
    assert 0.12 < share["medicare_advantage"] < 0.28
    assert 0.05 < share["medicaid"] < 0.15
    assert 0.10 < share["commercial"] < 0.25  # includes pre-Medicare commercial coverage
    duals = demo["coverages"].filter(pl.col("rank") == 2)
    assert duals.height > 0 and set(duals["payer_id"]) == {"MCD-MI"}


def test_the_demo_month_has_ccm_time_around_the_twenty_minute_threshold(demo: Bundle) -> None:
    entries = demo["encounters"].filter(
        (pl.col("program") == "ccm")
        & (pl.col("date") >= dt.date(2025, 12, 1))
        & (pl.col("performer_id") != "SC01")
        & pl.col("outcome").is_null()
    )
    monthly = entries.group_by("patient_id").agg(pl.col("minutes").sum())["minutes"]
    assert 300 < monthly.len() < 500
    assert 15 <= monthly.median() <= 45  # type: ignore[operator]
    assert monthly.max() <= 150  # type: ignore[operator]
    close = monthly.filter((monthly >= 10) & (monthly < 20)).len()
    assert close >= 40  # patients close to 99490's threshold
    per_day = entries.group_by("patient_id", "date").len()
    assert (per_day["len"] > 1).any()  # several entries on one day (some overlapping)
    assert entries["mdm"].is_in(["moderate", "high"]).any()


def test_the_demo_contains_each_kind_of_evidence_the_engine_reads(demo: Bundle) -> None:
    encounters = demo["encounters"]
    kinds = set(encounters["kind"])
    assert {
        "office_visit",
        "care_management",
        "awv",
        "nurse_visit",
        "tcm_contact",
        "tobacco_counseling",
    } <= kinds
    assert set(encounters["program"].drop_nulls()) >= {"ccm", "case_management"}
    cpt = encounters["cpt"].explode().drop_nulls()
    assert {"99213", "99214", "99215", "G0506", "G0439"} <= set(cpt)
    assert (encounters["performer_id"] == "SC01").any()
    assert (encounters["outcome"] == "attempt_failed").any()
    assert encounters["start_time"].null_count() < encounters.height
    december_other = demo["claims_history"].filter(
        (pl.col("billing_npi") == OTHER_PRACTICE_NPI)
        & (pl.col("date_of_service") >= dt.date(2025, 12, 1))
    )
    assert december_other.height > 0 and set(december_other["code"]) == {"99490"}
    consents = demo["consents"]
    assert consents["revoked_date"].null_count() < consents.height
    assert set(demo["care_plans"]["action"]) == {"established", "revised", "reviewed"}
    discharges = demo["discharges"]
    assert discharges.height > 0
    assert discharges["setting"].value_counts(sort=True)["setting"][0] == "inpatient_acute"
    assert set(demo["measurements"]["kind"]) == {"bmi", "weight_kg"}
    conditions = demo["conditions"]
    assert conditions["chronic"].null_count() > 0.9 * conditions.height
    assert conditions["chronic"].drop_nulls().len() > 0


def test_the_generator_refuses_impossible_arguments() -> None:
    with pytest.raises(ValueError, match="patients"):
        generate_practice(0)
    with pytest.raises(ValueError, match="months"):
        generate_practice(10, months=0)


def test_the_csv_writer_uses_the_interchange_formats(tmp_path: Path) -> None:
    bundle = generate_practice(200)
    counts = write_bundle_csv(bundle, tmp_path)
    assert counts == {name: n for name, n in bundle.row_counts().items() if n}
    assert sorted(p.stem for p in tmp_path.glob("*.csv")) == sorted(counts)
    encounters = pl.read_csv(tmp_path / "encounters.csv", infer_schema=False)
    times = encounters["start_time"].drop_nulls()
    assert times.str.contains(r"^\d{2}:\d{2}$").all()
    assert encounters["date"].str.contains(r"^\d{4}-\d{2}-\d{2}$").all()
    assert encounters["cpt"].drop_nulls().str.contains(";").any()
    practitioners = pl.read_csv(tmp_path / "practitioners.csv", infer_schema=False)
    assert set(practitioners["primary_care"].drop_nulls()) == {"true", "false"}


def test_the_csv_writer_removes_a_stale_file_for_a_table_that_is_now_empty(
    tmp_path: Path,
) -> None:
    (tmp_path / "payer_codes.csv").write_text("payer_id,code,covered\nMCR,99490,false\n")
    write_bundle_csv(generate_practice(20), tmp_path)
    assert not (tmp_path / "payer_codes.csv").exists()


@pytest.mark.skipif(not HAS_INGEST, reason="billing_engine.io.ingest (read_bundle) not written yet")
def test_the_csv_writer_round_trips_through_ingest(tmp_path: Path) -> None:
    from billing_engine.io.ingest import read_bundle

    bundle = generate_practice(300, seed=5)
    write_bundle_csv(bundle, tmp_path)
    read = read_bundle(tmp_path)
    for name in TABLES:
        assert read[name].equals(bundle[name]), name


def no_revenue() -> pl.DataFrame:
    money = pl.Decimal(18, 2)
    return pl.DataFrame(
        schema={
            "payer_id": pl.String, "payer_name": pl.String, "code": pl.String,
            "lines": pl.Int64, "allowed_amount": money, "payer_amount": money,
            "patient_amount": money, "unpriced_lines": pl.Int64,
        }
    )  # fmt: skip


@dataclass
class HandMadeResult:
    claim_lines: pl.DataFrame
    gaps: pl.DataFrame
    revenue_by_payer: pl.DataFrame = field(default_factory=no_revenue)


def test_summarize_lists_lines_by_code_gaps_by_reason_and_patients_close_to_a_threshold() -> None:
    lines = pl.DataFrame(
        {
            "patient_id": ["P1", "P1", "P2", "P3"],
            "code": ["99490", "99439", "99490", "99496"],
            "units": [1, 2, 1, 1],
        }
    )
    gaps = pl.DataFrame(
        {
            "patient_id": ["P4", "P5", "P5", "P6", "P7", "P8"],
            "code": ["99490", "99439", "99490", "99490", "99487", "99490"],
            "status": ["short", "short", "short", "blocked", "blocked", "short"],
            "reason": [
                "time_below_threshold",
                "time_below_threshold",
                "time_below_threshold",
                "consent_missing",
                "care_plan_not_revised",
                "time_below_threshold",
            ],
            "minutes_needed": [3, 12, 8, None, None, 5],
            "minutes_logged": [17, 28, 12, 30, None, 0],  # P8: nothing logged, not started
            "potential_amount": ["60.49", "45.93", "60.49", None, None, None],
        }
    ).with_columns(pl.col("potential_amount").cast(pl.Decimal(18, 2)))
    revenue = pl.DataFrame(
        {
            "payer_id": ["MCR", "MCR", "MCD"],
            "payer_name": ["Medicare", "Medicare", None],
            "code": ["99490", "TOTAL", "TOTAL"],
            "lines": [3, 3, 1],
            "allowed_amount": ["166.91", "166.91", None],
            "payer_amount": ["130.86", "130.86", None],
            "patient_amount": ["33.38", "33.38", None],
            "unpriced_lines": [0, 0, 1],
        }
    ).with_columns(pl.col("^.*_amount$").cast(pl.Decimal(18, 2)))
    text = summarize(HandMadeResult(lines, gaps, revenue))
    assert text.splitlines() == [
        "Claim lines by code (4 lines):",
        "  code      lines  units",
        "  99439         1      2",
        "  99490         2      2",
        "  99496         1      1",
        "  total         4      5",
        "Gaps by reason (6 gaps):",
        "  time_below_threshold       4",
        "  care_plan_not_revised      1",
        "  consent_missing            1",
        "Patients close to a threshold (started, short by 10 minutes or less): 2",
        "  P4  99490    3 min needed",
        "  P5  99490    8 min needed",
        "Revenue by payer (allowed / payer / patient, dollars):",
        "  Medicare        3 lines      166.91      130.86      33.38",
        "  MCD             1 lines                                     (1 without a fee)",
        "  GRAND TOTAL     4 lines      166.91      130.86      33.38",
        "Money left on the table (allowed amount, if closed, of the 3 short gaps within "
        "reach: work started): 166.91",
        "  not counted: 1 short gaps with nothing logged yet (not started)",
    ]


def test_summarize_says_none_for_an_empty_result_and_truncates_long_lists() -> None:
    empty = HandMadeResult(
        pl.DataFrame(schema={"patient_id": pl.String, "code": pl.String, "units": pl.Int64}),
        pl.DataFrame(
            schema={
                "patient_id": pl.String,
                "code": pl.String,
                "status": pl.String,
                "reason": pl.String,
                "minutes_needed": pl.Int64,
            }
        ),
    )
    text = summarize(empty)
    assert "Claim lines by code (0 lines):\n  (none)" in text
    assert "Gaps by reason (0 gaps):\n  (none)" in text
    assert "(started, short by 10 minutes or less): 0" in text
    assert "Revenue by payer (allowed / payer / patient, dollars):\n  (none)" in text
    many = HandMadeResult(
        empty.claim_lines,
        pl.DataFrame(
            {
                "patient_id": [f"P{i:02d}" for i in range(14)],
                "code": ["99490"] * 14,
                "status": ["short"] * 14,
                "reason": ["time_below_threshold"] * 14,
                "minutes_needed": ["5"] * 14,  # text columns (as read from CSV) work too
                "minutes_logged": ["15"] * 14,
            }
        ),
    )
    shown = summarize(many).splitlines()
    more = shown.index("  ... and 4 more")
    assert shown[more - 1] == "  P09  99490    5 min needed"


def test_the_demo_folder_is_next_to_a_sqlite_database_file(tmp_path: Path) -> None:
    assert demo_folder(f"sqlite:///{tmp_path / 'billing.db'}") == tmp_path.resolve()
    assert demo_folder("sqlite://") == Path.cwd()
    assert demo_folder("postgresql+psycopg://u@localhost/db") == Path.cwd()


def test_the_synth_command_writes_the_bundle_and_prints_row_counts(tmp_path: Path) -> None:
    from cli.main import billing

    result = CliRunner().invoke(
        billing, ["synth", "--patients", "50", "--out", str(tmp_path / "b"), "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "patients" in result.output and "total" in result.output
    assert (tmp_path / "b" / "encounters.csv").exists()
    bad = CliRunner().invoke(billing, ["synth", "--out", str(tmp_path), "--end-month", "2025-13"])
    assert bad.exit_code == 2
    assert "--end-month" in bad.output


@pytest.mark.slow
@pytest.mark.skipif(
    not all(
        importlib.util.find_spec(m) is not None
        for m in (
            "billing_engine.io.ingest",
            "billing_engine.engine.pipeline",
            "billing_engine.engine.frames",
        )
    ),
    reason="ingest, evaluate or outputs not written yet",
)
def test_the_demo_command_runs_the_whole_pipeline(tmp_path: Path) -> None:
    from cli.main import billing

    db = f"sqlite:///{tmp_path / 'demo.db'}"
    result = CliRunner().invoke(billing, ["demo", "--db", db, "--patients", "300"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "demo-bundle" / "patients.csv").exists()
    assert (tmp_path / "demo-output" / "claim_lines.csv").exists()
    assert "Claim lines by code" in result.output
    assert "Patients close to a threshold" in result.output
