"""Reading and validating interchange bundles (docs/interchange.md)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path

import openpyxl
import polars as pl
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from scenario_io import write_scenario_bundle
from shared_data import SCENARIOS

from billing_engine.errors import BundleInvalid, InputIssue
from billing_engine.io.bundle import Bundle
from billing_engine.io.cells import valid_npi
from billing_engine.io.checks import may_repeat
from billing_engine.io.ingest import read_bundle, validate_frames
from billing_engine.io.readers import read_raw
from billing_engine.io.schema import TABLES, ColType

Rows = list[dict[str, object]]


def valid_tables() -> dict[str, Rows]:
    """A small bundle using every table and every column type, with no problem in it."""
    return {
        "practitioners": [
            {
                "practitioner_id": "DR_A",
                "name": "Dr A",
                "npi": "1234567893",
                "credential": "MD",
                "primary_care": True,
                "qp": False,
                "medicare_locality": "10112-0",
            },
            {"practitioner_id": "RN1", "name": "RN One", "credential": "RN"},
            {"practitioner_id": "RD1", "name": "RD One", "npi": "9876543213", "credential": "RD"},
        ],
        "patients": [
            {
                "patient_id": "P01",
                "birth_date": "1951-02-01",
                "sex": "F",
                "zip": "02134",
                "part_b_start": "2016-05-01",
                "qmb": True,
            },
            {"patient_id": "P02", "birth_date": "1948-12-31", "death_date": "2025-04-02"},
        ],
        "payers": [
            {"payer_id": "MCR", "name": "Medicare", "kind": "medicare"},
            {"payer_id": "MCD", "name": "Medicaid AL", "kind": "medicaid", "state": "AL"},
            {"payer_id": "COM", "name": "Acme", "kind": "commercial", "fee_basis": "schedule"},
        ],
        "coverages": [
            {"patient_id": "P01", "payer_id": "MCR", "start_date": "2016-05-01", "rank": 1},
            {
                "patient_id": "P01",
                "payer_id": "MCD",
                "start_date": "2020-01-01",
                "end_date": "2025-12-31",
                "rank": 2,
                "member_id": "AL-77",
            },
            {"patient_id": "P02", "payer_id": "COM", "start_date": "2024-01-01"},
        ],
        "fee_schedule": [
            {
                "payer_id": "COM",
                "code": "99490",
                "effective_from": "2025-01-01",
                "effective_to": "2025-12-31",
                "amount": "55.25",
            }
        ],
        "payer_codes": [
            {"payer_id": "COM", "code": "99491", "covered": False, "effective_from": "2025-01-01"}
        ],
        "conditions": [
            {"patient_id": "P01", "icd10": "E11.9", "chronic": True},
            {"patient_id": "P01", "icd10": "I10", "onset_date": "2010-01-01"},
            {
                "patient_id": "P02",
                "icd10": "J45909",
                "onset_date": "2020-01-01",
                "resolved_date": "2021-06-30",
            },
        ],
        "consents": [
            {
                "consent_id": "C1",
                "patient_id": "P01",
                "program": "ccm",
                "obtained_date": "2025-01-10",
                "method": "verbal",
                "billing_practitioner_id": "DR_A",
            }
        ],
        "care_plans": [
            {
                "care_plan_id": "CP1",
                "patient_id": "P01",
                "program": "ccm",
                "date": "2025-01-10",
                "action": "established",
            }
        ],
        "encounters": [
            {
                "encounter_id": "E01",
                "patient_id": "P01",
                "date": "2024-11-05",
                "minutes": 25,
                "performer_id": "DR_A",
                "billing_practitioner_id": "DR_A",
                "kind": "office_visit",
                "contact_mode": "in_person",
                "mdm": "moderate",
                "cpt": "99214;G0506",
                "place_of_service": "11",
            },
            {
                "encounter_id": "E02",
                "patient_id": "P01",
                "date": "2025-03-04",
                "start_time": "09:30",
                "minutes": 12,
                "performer_id": "RN1",
                "billing_practitioner_id": "DR_A",
                "kind": "care_management",
                "program": "ccm",
                "contact_mode": "phone",
                "activities": "medication_reconciliation; care_coordination",
                "outcome": "completed",
            },
            {
                "encounter_id": "E03",
                "patient_id": "P02",
                "date": "2025-03-05",
                "start_time": "14:05",
                "minutes": 0,
                "performer_id": "RD1",
                "kind": "mnt",
                "contact_mode": "group",
                "outcome": "attempt_failed",
            },
        ],
        "discharges": [
            {
                "discharge_id": "D1",
                "patient_id": "P02",
                "admit_date": "2025-02-01",
                "discharge_date": "2025-02-05",
                "setting": "inpatient_acute",
                "disposition": "home",
            }
        ],
        "measurements": [
            {"patient_id": "P02", "date": "2025-03-01", "kind": "bmi", "value": 31.5},
            {"patient_id": "P02", "date": "2025-03-01", "kind": "weight_kg", "value": 90},
        ],
        "referrals": [
            {
                "referral_id": "R1",
                "patient_id": "P02",
                "date": "2025-02-20",
                "referring_practitioner_id": "DR_A",
                "service": "mnt",
                "reason": "initial",
            }
        ],
        "claims_history": [
            {
                "patient_id": "P01",
                "code": "99490",
                "units": 1,
                "date_of_service": "2025-01-31",
                "billing_npi": "1234567893",
                "payer_id": "MCR",
                "status": "paid",
            }
        ],
    }


def core_tables() -> dict[str, Rows]:
    """The smallest valid bundle: one practitioner, one patient, one encounter."""
    tables = valid_tables()
    return {name: tables[name] for name in ("practitioners", "patients", "encounters")}


def write_csv(folder: Path, table: str, text: str | bytes) -> None:
    data = text.encode("utf-8") if isinstance(text, str) else text
    (folder / f"{table}.csv").write_bytes(data)


def issues_of(path: Path) -> list[InputIssue]:
    with pytest.raises(BundleInvalid) as refused:
        read_bundle(path)
    return refused.value.issues


def issues_for(tmp_path: Path, tables: Mapping[str, Rows]) -> list[InputIssue]:
    write_scenario_bundle(tables, tmp_path)
    return issues_of(tmp_path)


def located(issues: Sequence[InputIssue]) -> set[tuple[str, int | None, str | None]]:
    return {(i.file, i.row, i.column) for i in issues}


def the_issue(issues: Sequence[InputIssue]) -> InputIssue:
    assert len(issues) == 1, [str(i) for i in issues]
    return issues[0]


def native_cell(table: str, column: str, value: object) -> object:
    """A cell as a spreadsheet would hold it: real dates, times, numbers and booleans."""
    if not isinstance(value, str) or column not in TABLES[table].column_names:
        return value
    kind = TABLES[table].column(column).type
    if kind == ColType.DATE:
        return dt.date.fromisoformat(value)
    if kind == ColType.TIME:
        return dt.time.fromisoformat(value)
    if kind in (ColType.NPI, ColType.DECIMAL):
        return float(value)  # an NPI or an amount typed as a number
    return value


def write_workbook(
    tables: Mapping[str, Rows], book: Path, extra_sheets: Sequence[str] = ()
) -> None:
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for name in extra_sheets:
        workbook.create_sheet(name).append(["anything", "here"])
    for name, rows in tables.items():
        sheet = workbook.create_sheet(name)
        header = list(dict.fromkeys(key for row in rows for key in row))
        sheet.append(header)
        for row in rows:
            sheet.append([native_cell(name, key, row.get(key)) for key in header])
    workbook.save(book)


# --------------------------------------------------------------------------- reading


def test_a_valid_csv_bundle_is_read_with_every_column_typed_as_the_schema_declares(
    tmp_path: Path,
) -> None:
    write_scenario_bundle(valid_tables(), tmp_path)
    bundle = read_bundle(tmp_path)
    assert isinstance(bundle, Bundle)
    assert bundle.source == str(tmp_path)
    for name, table in TABLES.items():
        assert bundle[name].schema == pl.Schema(table.polars_schema()), name
    assert bundle.row_counts()["encounters"] == 3
    encounters = bundle["encounters"]
    assert encounters["date"].to_list() == [
        dt.date(2024, 11, 5),
        dt.date(2025, 3, 4),
        dt.date(2025, 3, 5),
    ]
    assert encounters["minutes"].to_list() == [25, 12, 0]
    assert bundle["fee_schedule"]["amount"].to_list() == [Decimal("55.25")]
    assert bundle["measurements"]["value"].to_list() == [31.5, 90.0]
    assert bundle["coverages"]["rank"].to_list() == [1, 2, None]
    assert bundle["patients"]["zip"].to_list() == ["02134", None]


def test_booleans_accept_any_case_and_empty_cells_become_null(tmp_path: Path) -> None:
    tables = core_tables()
    tables["practitioners"] = [
        {"practitioner_id": "DR_A", "npi": "1234567893", "credential": "MD", "qp": "TRUE"},
        {"practitioner_id": "RN1", "credential": "RN", "qp": "False"},
        {"practitioner_id": "RD1", "credential": "RD", "qp": ""},
    ]
    bundle = read_bundle(write_and_return(tables, tmp_path))
    assert bundle["practitioners"]["qp"].to_list() == [True, False, None]


def write_and_return(tables: Mapping[str, Rows], folder: Path) -> Path:
    write_scenario_bundle(tables, folder)
    return folder


def test_lists_are_split_on_semicolons_with_items_stripped_and_empty_items_dropped(
    tmp_path: Path,
) -> None:
    tables = core_tables()
    tables["encounters"][0]["cpt"] = " 99214 ;; G0506 ;"
    tables["encounters"][1]["activities"] = ";"
    bundle = read_bundle(write_and_return(tables, tmp_path))
    assert bundle["encounters"]["cpt"].to_list() == [["99214", "G0506"], None, None]
    assert bundle["encounters"]["activities"].to_list() == [None, None, None]


def test_times_are_read_from_hh_mm_on_a_24_hour_clock(tmp_path: Path) -> None:
    tables = core_tables()
    tables["encounters"][0]["start_time"] = "00:00"
    tables["encounters"][2]["start_time"] = "23:59"
    bundle = read_bundle(write_and_return(tables, tmp_path))
    assert bundle["encounters"]["start_time"].to_list() == [
        dt.time(0, 0),
        dt.time(9, 30),
        dt.time(23, 59),
    ]


def test_cells_are_stripped_and_icd10_codes_are_uppercased_but_not_reformatted(
    tmp_path: Path,
) -> None:
    tables = core_tables()
    tables["encounters"][0]["kind"] = "  office_visit "
    tables["conditions"] = [
        {"patient_id": "P01", "icd10": " e11.9 "},
        {"patient_id": "P01", "icd10": "E1165"},
        {"patient_id": "P01", "icd10": "Z68.41"},
    ]
    bundle = read_bundle(write_and_return(tables, tmp_path))
    assert bundle["encounters"]["kind"][0] == "office_visit"
    assert bundle["conditions"]["icd10"].to_list() == ["E11.9", "E1165", "Z68.41"]


@pytest.mark.parametrize("blank", ["\t", "\u00a0", "\u3000", "\r"])
def test_a_cell_ending_in_any_white_space_is_stripped_whatever_else_the_file_holds(
    tmp_path: Path, blank: str
) -> None:
    tables = core_tables()
    tables["encounters"][0]["kind"] = "office_visit" + blank
    tables["encounters"][1]["cpt"] = blank + "99214;" + blank + "G0506"
    bundle = read_bundle(write_and_return(tables, tmp_path))
    assert bundle["encounters"]["kind"][0] == "office_visit"
    assert bundle["encounters"]["cpt"][1].to_list() == ["99214", "G0506"]


def test_a_file_without_white_space_is_read_tidy_and_its_lists_still_drop_empty_items(
    tmp_path: Path,
) -> None:
    tables = core_tables()
    tables["encounters"][0]["cpt"] = ";99214;;G0506;"
    tables["encounters"][1]["activities"] = "medication_reconciliation;;care_coordination"
    folder = write_and_return(tables, tmp_path)
    assert "encounters" in read_raw(folder).tidy
    bundle = read_bundle(folder)
    assert bundle["encounters"]["cpt"][0].to_list() == ["99214", "G0506"]
    assert bundle["encounters"]["activities"][1].to_list() == [
        "medication_reconciliation",
        "care_coordination",
    ]


def test_extra_columns_are_kept_as_text_after_the_spec_columns(tmp_path: Path) -> None:
    tables = core_tables()
    tables["encounters"][0]["note"] = " called twice "
    tables["encounters"][1]["site"] = "12"
    bundle = read_bundle(write_and_return(tables, tmp_path))
    encounters = bundle["encounters"]
    spec = list(TABLES["encounters"].column_names)
    assert encounters.columns == [*spec, "note", "site"]
    assert encounters["note"].to_list() == ["called twice", None, None]
    assert encounters["site"].dtype == pl.String
    assert encounters["site"].to_list() == [None, "12", None]


def test_a_missing_optional_table_is_an_empty_frame_with_the_declared_schema(
    tmp_path: Path,
) -> None:
    bundle = read_bundle(write_and_return(core_tables(), tmp_path))
    for name in ("payers", "coverages", "fee_schedule", "claims_history", "discharges"):
        assert bundle[name].height == 0
        assert bundle[name].schema == pl.Schema(TABLES[name].polars_schema())


def test_a_missing_optional_column_is_an_empty_column_of_its_type(tmp_path: Path) -> None:
    tables = core_tables()
    for row in tables["encounters"]:
        row.pop("start_time", None)
    bundle = read_bundle(write_and_return(tables, tmp_path))
    assert bundle["encounters"]["start_time"].dtype == pl.Time
    assert bundle["encounters"]["start_time"].null_count() == 3


def test_files_whose_name_is_not_a_table_are_ignored(tmp_path: Path) -> None:
    write_scenario_bundle(core_tables(), tmp_path)
    (tmp_path / "notes.csv").write_text("this,is\nnot,a table,at all\n", encoding="utf-8")
    (tmp_path / "README.txt").write_text("hello", encoding="utf-8")
    (tmp_path / "encounters.bak").write_text("junk", encoding="utf-8")
    assert read_bundle(tmp_path).row_counts()["encounters"] == 3


def test_a_byte_order_mark_and_entirely_empty_rows_are_tolerated_without_shifting_rows(
    tmp_path: Path,
) -> None:
    write_scenario_bundle(core_tables(), tmp_path)
    write_csv(
        tmp_path,
        "patients",
        "\ufeffpatient_id,birth_date\nP01,1951-02-01\n\n , \nP02,19480101\n",
    )
    issue = the_issue(issues_of(tmp_path))
    assert (issue.file, issue.row, issue.column) == ("patients.csv", 5, "birth_date")


def test_the_same_bundle_as_parquet_files_reads_to_equal_frames(tmp_path: Path) -> None:
    tables = valid_tables()
    tables["encounters"][0]["note"] = "kept"
    from_csv = read_bundle(write_and_return(tables, tmp_path / "csv"))
    parquet = tmp_path / "parquet"
    parquet.mkdir()
    for name, frame in from_csv.tables.items():
        frame.write_parquet(parquet / f"{name}.parquet")
    from_parquet = read_bundle(parquet)
    for name in TABLES:
        assert_frame_equal(from_parquet[name], from_csv[name])


def test_parquet_columns_of_any_type_are_read_like_their_csv_text(tmp_path: Path) -> None:
    write_scenario_bundle(core_tables(), tmp_path)
    (tmp_path / "encounters.csv").unlink()
    pl.DataFrame(
        {
            "encounter_id": ["E1", "E2"],
            "patient_id": ["P01", "P02"],
            "date": [dt.datetime(2025, 3, 4, 10, 15), dt.datetime(2025, 3, 5)],
            "minutes": [20.0, 7.0],
            "performer_id": ["RN1", "RN1"],
            "kind": pl.Series(["nurse_visit", "nurse_visit"], dtype=pl.Categorical),
            "cpt": [["99211"], []],
        }
    ).write_parquet(tmp_path / "encounters.parquet")
    encounters = read_bundle(tmp_path)["encounters"]
    assert encounters["date"].to_list() == [dt.date(2025, 3, 4), dt.date(2025, 3, 5)]
    assert encounters["minutes"].to_list() == [20, 7]
    assert encounters["kind"].to_list() == ["nurse_visit", "nurse_visit"]
    assert encounters["cpt"].to_list() == [["99211"], None]


def test_the_same_bundle_as_one_xlsx_workbook_reads_to_equal_frames(tmp_path: Path) -> None:
    tables = valid_tables()
    tables["encounters"][0]["note"] = "kept"
    from_csv = read_bundle(write_and_return(tables, tmp_path / "csv"))
    book = tmp_path / "book.xlsx"
    write_workbook(tables, book, extra_sheets=["Instructions"])
    from_xlsx = read_bundle(book)
    for name in TABLES:
        assert_frame_equal(from_xlsx[name], from_csv[name])


def test_workbook_cells_typed_as_numbers_dates_and_booleans_read_as_their_text(
    tmp_path: Path,
) -> None:
    tables = core_tables()
    tables["encounters"][1]["minutes"] = 12.0
    tables["encounters"][1]["start_time"] = dt.time(9, 30)
    tables["encounters"][1]["date"] = dt.datetime(2025, 3, 4, 0, 0)
    tables["practitioners"][0]["npi"] = 1234567893
    tables["practitioners"][0]["primary_care"] = True
    book = tmp_path / "book.xlsx"
    write_workbook(tables, book)
    bundle = read_bundle(book)
    assert bundle["encounters"]["minutes"].to_list() == [25, 12, 0]
    assert bundle["encounters"]["date"][1] == dt.date(2025, 3, 4)
    assert bundle["practitioners"]["npi"][0] == "1234567893"
    assert bundle["practitioners"]["primary_care"][0] is True


def test_workbook_issues_name_the_sheet_and_the_row_a_spreadsheet_shows(tmp_path: Path) -> None:
    tables = core_tables()
    tables["encounters"][2]["minutes"] = "ten"
    book = tmp_path / "book.xlsx"
    write_workbook(tables, book)
    issue = the_issue(issues_of(book))
    assert (issue.file, issue.row, issue.column) == ("book.xlsx[encounters]", 4, "minutes")
    assert issue.problem == "not a whole number"
    assert issue.value == "ten"


def test_workbook_rows_keep_their_sheet_numbers_across_empty_rows(tmp_path: Path) -> None:
    book = tmp_path / "book.xlsx"
    write_workbook(core_tables(), book)
    workbook = openpyxl.load_workbook(book)
    sheet = workbook["patients"]
    sheet["A6"], sheet["B6"] = "P03", "31/12/1948"
    workbook.save(book)
    issue = the_issue(issues_of(book))
    assert (issue.file, issue.row, issue.column) == ("book.xlsx[patients]", 6, "birth_date")


def test_a_workbook_without_an_encounters_sheet_is_refused(tmp_path: Path) -> None:
    tables = core_tables()
    del tables["encounters"]
    book = tmp_path / "book.xlsx"
    write_workbook(tables, book)
    issue = the_issue(issues_of(book))
    assert (issue.file, issue.row, issue.column) == ("book.xlsx[encounters]", None, None)


def test_parquet_issues_use_the_spreadsheet_row_convention(tmp_path: Path) -> None:
    write_scenario_bundle(core_tables(), tmp_path)
    (tmp_path / "patients.csv").unlink()
    pl.DataFrame(
        {"patient_id": ["P01", "P02"], "birth_date": ["1951-02-01", "not yet"]}
    ).write_parquet(tmp_path / "patients.parquet")
    issue = the_issue(issues_of(tmp_path))
    assert (issue.file, issue.row, issue.column) == ("patients.parquet", 3, "birth_date")


def test_validate_frames_types_text_frames_given_in_memory() -> None:
    raw = {
        "patients": (
            "patients",
            pl.DataFrame({"patient_id": ["P1"], "birth_date": ["2000-01-31"]}),
        ),
        "encounters": (
            "encounters",
            pl.DataFrame(
                {
                    "encounter_id": ["E1"],
                    "patient_id": ["P9"],
                    "date": ["2025-01-01"],
                    "minutes": ["5"],
                    "performer_id": ["X"],
                    "kind": ["nurse_visit"],
                }
            ),
        ),
        "unrelated": ("unrelated", pl.DataFrame({"a": ["b"]})),
    }
    frames, issues = validate_frames(raw)
    assert set(frames) == {"patients", "encounters"}
    assert frames["patients"]["birth_date"].to_list() == [dt.date(2000, 1, 31)]
    assert [(i.file, i.row, i.column, i.problem) for i in issues] == [
        ("encounters", 2, "patient_id", "unknown patient_id 'P9' (not in patients)"),
        ("encounters", 2, "performer_id", "unknown performer_id 'X' (not in practitioners)"),
    ]


def test_typed_frames_passed_back_through_validate_frames_come_out_unchanged(
    tmp_path: Path,
) -> None:
    bundle = read_bundle(write_and_return(valid_tables(), tmp_path))
    frames, issues = validate_frames({name: (name, frame) for name, frame in bundle.tables.items()})
    assert issues == []
    for name in TABLES:
        assert_frame_equal(frames[name], bundle[name])


def test_a_parquet_column_of_an_unsupported_type_is_refused(tmp_path: Path) -> None:
    write_scenario_bundle(core_tables(), tmp_path)
    (tmp_path / "patients.csv").unlink()
    pl.DataFrame(
        {
            "patient_id": ["P01", "P02"],
            "birth_date": [dt.date(1951, 2, 1), dt.date(1948, 12, 31)],
            "address": [{"zip": "02134"}, {"zip": "35203"}],
        }
    ).write_parquet(tmp_path / "patients.parquet")
    issue = the_issue(issues_of(tmp_path))
    assert (issue.file, issue.row, issue.column) == ("patients.parquet", None, "address")
    assert issue.problem.startswith("unsupported column type Struct")


# --------------------------------------------------------------------------- refusals


def test_a_bundle_without_patients_or_encounters_is_refused_naming_each_missing_table(
    tmp_path: Path,
) -> None:
    tables = core_tables()
    del tables["patients"], tables["encounters"]
    issues = issues_for(tmp_path, tables)
    assert [(i.file, i.row, i.column) for i in issues] == [
        ("encounters.csv", None, None),
        ("patients.csv", None, None),
    ]
    assert all(i.problem == "required table is missing" for i in issues)


def test_a_path_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    issue = the_issue(issues_of(tmp_path / "nowhere"))
    assert issue.problem == "no such file or folder"


def test_a_single_csv_file_is_not_a_bundle(tmp_path: Path) -> None:
    write_scenario_bundle(core_tables(), tmp_path)
    issue = the_issue(issues_of(tmp_path / "patients.csv"))
    assert issue.problem.startswith("not a bundle")


def test_each_missing_required_column_is_reported_once_without_a_row(tmp_path: Path) -> None:
    tables = core_tables()
    for row in tables["encounters"]:
        del row["minutes"], row["kind"]
    issues = issues_for(tmp_path, tables)
    assert located(issues) == {
        ("encounters.csv", None, "minutes"),
        ("encounters.csv", None, "kind"),
    }
    assert {i.problem for i in issues} == {"required column is missing"}


def test_an_empty_required_value_is_reported_at_its_row_and_column(tmp_path: Path) -> None:
    tables = core_tables()
    tables["encounters"][1]["performer_id"] = ""
    tables["patients"][1]["birth_date"] = None
    issues = issues_for(tmp_path, tables)
    assert located(issues) == {
        ("encounters.csv", 3, "performer_id"),
        ("patients.csv", 3, "birth_date"),
    }
    assert {i.problem for i in issues} == {"required value is empty"}


@pytest.mark.parametrize(
    ("table", "row", "column", "problem"),
    [
        ("encounters", 1, "program", "required when kind is care_management"),
        ("encounters", 0, "cpt", "required when kind is office_visit"),
        ("payers", 1, "state", "required when kind is medicaid"),
    ],
)
def test_a_conditionally_required_value_is_refused_only_where_its_condition_holds(
    tmp_path: Path, table: str, row: int, column: str, problem: str
) -> None:
    tables = valid_tables()
    tables[table][row][column] = ""
    issue = the_issue(issues_for(tmp_path, tables))
    assert (issue.file, issue.row, issue.column, issue.problem) == (
        f"{table}.csv",
        row + 2,
        column,
        problem,
    )


def test_a_conditionally_required_column_absent_from_the_header_is_reported_per_row(
    tmp_path: Path,
) -> None:
    tables = core_tables()
    for row in tables["encounters"]:
        row.pop("program", None)
    issue = the_issue(issues_for(tmp_path, tables))
    assert (issue.file, issue.row, issue.column) == ("encounters.csv", 3, "program")


@pytest.mark.parametrize(
    ("table", "column", "value", "problem"),
    [
        ("patients", "birth_date", "2025-02-30", "not a date (expected YYYY-MM-DD)"),
        ("patients", "birth_date", "03/04/1950", "not a date (expected YYYY-MM-DD)"),
        ("patients", "birth_date", "1950-3-4", "not a date (expected YYYY-MM-DD)"),
        ("patients", "birth_date", "1950-03-04T00:00", "not a date (expected YYYY-MM-DD)"),
        ("encounters", "start_time", "9:30", "not a time (expected HH:MM, 24-hour)"),
        ("encounters", "start_time", "24:00", "not a time (expected HH:MM, 24-hour)"),
        ("encounters", "start_time", "09:30 PM", "not a time (expected HH:MM, 24-hour)"),
        ("encounters", "minutes", "12.5", "not a whole number"),
        ("encounters", "minutes", "ten", "not a whole number"),
        ("encounters", "minutes", "-5", "minutes must be 0 or more"),
        ("coverages", "rank", "0", "rank must be 1 or more"),
        ("patients", "qmb", "yes", "not true/false"),
        ("fee_schedule", "amount", "$55", "not a decimal number (at most 4 decimal places)"),
        ("fee_schedule", "amount", "55.123456", "not a decimal number (at most 4 decimal places)"),
        ("fee_schedule", "amount", "-1", "amount must be 0 or more"),
        ("measurements", "value", "thirty", "not a number"),
        ("measurements", "value", "nan", "not a number"),
        ("conditions", "icd10", "E11.", "not an ICD-10-CM code (e.g. E11.9 or E119)"),
        ("conditions", "icd10", "11.9", "not an ICD-10-CM code (e.g. E11.9 or E119)"),
        ("conditions", "icd10", "E1", "not an ICD-10-CM code (e.g. E11.9 or E119)"),
        ("conditions", "icd10", "E11.12345", "not an ICD-10-CM code (e.g. E11.9 or E119)"),
        ("practitioners", "npi", "1234567890", "NPI check digit is wrong"),
        ("practitioners", "npi", "123456789", "NPI must be exactly 10 digits"),
        ("practitioners", "npi", "12345678AB", "NPI must be exactly 10 digits"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_with_a_message_for_billing_staff(
    tmp_path: Path, table: str, column: str, value: str, problem: str
) -> None:
    tables = valid_tables()
    tables[table][0][column] = value
    issue = the_issue(issues_for(tmp_path, tables))
    assert (issue.file, issue.row, issue.column) == (f"{table}.csv", 2, column)
    assert issue.problem == problem
    assert issue.value == value


@pytest.mark.parametrize(
    ("table", "column", "value"),
    [
        ("patients", "birth_date", "2024-02-29"),
        ("patients", "birth_date", "1900-01-01"),
        # decades ahead only where an end may be open (ingest.latest_date, ingest_limits.yaml)
        ("coverages", "end_date", "2099-12-31"),
    ],
)
def test_real_calendar_dates_are_accepted(
    tmp_path: Path, table: str, column: str, value: str
) -> None:
    tables = valid_tables()
    tables[table][0][column] = value
    bundle = read_bundle(write_and_return(tables, tmp_path))
    assert bundle[table][column][0] == dt.date.fromisoformat(value)


def test_an_unknown_enum_value_is_refused_listing_the_allowed_values(tmp_path: Path) -> None:
    tables = core_tables()
    tables["encounters"][1]["contact_mode"] = "telepathy"
    issue = the_issue(issues_for(tmp_path, tables))
    assert (issue.file, issue.row, issue.column) == ("encounters.csv", 3, "contact_mode")
    assert issue.problem == "unknown value; expected one of: in_person, phone, video, portal, group"
    assert issue.value == "telepathy"


def test_enum_values_are_case_sensitive(tmp_path: Path) -> None:
    tables = core_tables()
    tables["practitioners"][0]["credential"] = "md"
    issue = the_issue(issues_for(tmp_path, tables))
    assert (issue.column, issue.value) == ("credential", "md")


def test_list_items_outside_a_declared_vocabulary_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    encounters = TABLES["encounters"]
    activities = dataclasses.replace(
        encounters.column("activities"), item_enum=("care_coordination", "education")
    )
    columns = tuple(activities if c.name == "activities" else c for c in encounters.columns)
    monkeypatch.setitem(TABLES, "encounters", dataclasses.replace(encounters, columns=columns))
    tables = core_tables()
    tables["encounters"][1]["activities"] = "education; juggling;care_coordination;magic"
    issue = the_issue(issues_for(tmp_path, tables))
    assert (issue.file, issue.row, issue.column) == ("encounters.csv", 3, "activities")
    assert (
        issue.problem == "unknown item(s) juggling, magic; expected: care_coordination, education"
    )


def test_a_billing_practitioner_without_an_npi_is_reported_on_the_practitioners_file(
    tmp_path: Path,
) -> None:
    tables = core_tables()
    tables["practitioners"][0]["npi"] = ""
    issue = the_issue(issues_for(tmp_path, tables))
    assert (issue.file, issue.row, issue.column) == ("practitioners.csv", 2, "npi")
    assert issue.problem.startswith("billing practitioner has no NPI")
    assert "encounters.csv, row 2" in issue.problem


def test_a_practitioner_named_as_billing_practitioner_only_on_a_consent_needs_an_npi(
    tmp_path: Path,
) -> None:
    tables = core_tables()
    tables["patients"] = valid_tables()["patients"]
    tables["consents"] = valid_tables()["consents"]
    tables["consents"][0]["billing_practitioner_id"] = "RN1"
    issue = the_issue(issues_for(tmp_path, tables))
    assert (issue.file, issue.row, issue.column) == ("practitioners.csv", 3, "npi")
    assert "consents.csv, row 2" in issue.problem


def test_practitioners_who_never_bill_need_no_npi(tmp_path: Path) -> None:
    tables = core_tables()
    assert "npi" not in tables["practitioners"][1]
    bundle = read_bundle(write_and_return(tables, tmp_path))
    assert bundle["practitioners"]["npi"][1] is None


def luhn_check_digit(base: str) -> int:
    """CMS NPI check digit: Luhn over '80840' + the 9-digit base (reference implementation)."""
    total = 0
    for position, char in enumerate(reversed("80840" + base)):
        digit = int(char) * (2 if position % 2 == 0 else 1)
        total += digit - 9 if digit > 9 else digit
    return (10 - total % 10) % 10


@settings(deadline=None)
@given(st.lists(st.text(alphabet="0123456789", min_size=9, max_size=9), min_size=1, max_size=50))
def test_npi_check_digits_agree_with_the_cms_luhn_definition(bases: list[str]) -> None:
    good = [b + str(luhn_check_digit(b)) for b in bases]
    bad = [b + str((luhn_check_digit(b) + 1 + i % 9) % 10) for i, b in enumerate(bases)]
    frame = pl.DataFrame({"npi": [*good, *bad, "123456789", "12345678901", None]})
    result = frame.select(valid_npi(pl.col("npi")))["npi"].to_list()
    assert result == [True] * len(good) + [False] * len(bad) + [False, False, None]


def test_the_cms_example_npi_is_valid() -> None:
    assert luhn_check_digit("123456789") == 3
    frame = pl.DataFrame({"npi": ["1234567893", "1234567894"]})
    assert frame.select(valid_npi(pl.col("npi")))["npi"].to_list() == [True, False]


def test_every_repeat_of_a_key_after_the_first_is_refused_naming_the_key(tmp_path: Path) -> None:
    tables = core_tables()
    tables["encounters"].extend([dict(tables["encounters"][0]), dict(tables["encounters"][0])])
    issues = issues_for(tmp_path, tables)
    assert located(issues) == {
        ("encounters.csv", 5, "encounter_id"),
        ("encounters.csv", 6, "encounter_id"),
    }
    assert {i.problem for i in issues} == {"duplicate encounter_id 'E01' (first at row 2)"}
    assert {i.value for i in issues} == {"E01"}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", None]), st.sampled_from([1, 2, None]))))
def test_the_hash_gate_never_lets_a_repeated_key_pass(
    rows: list[tuple[str | None, int | None]],
) -> None:
    frame = pl.DataFrame(rows, schema={"k": pl.String, "n": pl.Int64}, orient="row").lazy()
    whole = [r for r in rows if r[0] is not None]
    if len(set(whole)) < len(whole):  # a repeat among the rows whose "k" is given
        assert may_repeat(frame, [pl.col("k"), pl.col("n")], [pl.col("k")])
    keyed = [r for r in rows if None not in r]
    if len(set(keyed)) < len(keyed):
        assert may_repeat(frame, [pl.col("k"), pl.col("n")])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", "ab", "", None])), st.booleans())
def test_a_single_key_sorted_or_not_never_passes_the_gate_with_a_repeat(
    keys: list[str | None], ordered: bool
) -> None:
    if ordered:  # an export sorted by its ids takes the neighbours' comparison
        keys = sorted(keys, key=lambda k: (k is None, k or ""))
    frame = pl.DataFrame({"k": keys}, schema={"k": pl.String}).lazy()
    given_keys = [k for k in keys if k is not None]
    repeated = len(set(given_keys)) < len(given_keys)
    if repeated:
        assert may_repeat(frame, [pl.col("k")])
    elif ordered:  # sorted distinct ids: no hash is needed to say so
        assert not may_repeat(frame, [pl.col("k")])


def test_an_encounter_for_an_unknown_patient_is_refused_with_file_row_and_column(
    tmp_path: Path,
) -> None:
    tables = core_tables()
    tables["encounters"][2]["patient_id"] = "P99"
    issue = the_issue(issues_for(tmp_path, tables))
    assert (issue.file, issue.row, issue.column) == ("encounters.csv", 4, "patient_id")
    assert issue.problem == "unknown patient_id 'P99' (not in patients)"
    assert issue.value == "P99"


@pytest.mark.parametrize(
    ("table", "column", "target"),
    [
        ("encounters", "performer_id", "practitioners"),
        ("encounters", "billing_practitioner_id", "practitioners"),
        ("consents", "billing_practitioner_id", "practitioners"),
        ("coverages", "payer_id", "payers"),
        ("claims_history", "payer_id", "payers"),
        ("referrals", "referring_practitioner_id", "practitioners"),
        ("care_plans", "patient_id", "patients"),
    ],
)
def test_every_declared_reference_must_name_an_existing_row(
    tmp_path: Path, table: str, column: str, target: str
) -> None:
    tables = valid_tables()
    tables[table][0][column] = "NOPE"
    issue = the_issue(issues_for(tmp_path, tables))
    assert (issue.file, issue.row, issue.column) == (f"{table}.csv", 2, column)
    assert issue.problem == f"unknown {column} 'NOPE' (not in {target})"


def test_references_to_an_absent_optional_table_are_all_broken(tmp_path: Path) -> None:
    tables = core_tables()
    del tables["practitioners"]
    issues = issues_for(tmp_path, tables)
    assert {i.problem for i in issues if i.column == "performer_id"} == {
        "unknown performer_id 'DR_A' (not in practitioners)",
        "unknown performer_id 'RN1' (not in practitioners)",
        "unknown performer_id 'RD1' (not in practitioners)",
    }


@pytest.mark.parametrize(
    ("table", "earlier", "later"),
    [
        ("coverages", "start_date", "end_date"),
        ("discharges", "admit_date", "discharge_date"),
        ("conditions", "onset_date", "resolved_date"),
        ("fee_schedule", "effective_from", "effective_to"),
        ("payer_codes", "effective_from", "effective_to"),
    ],
)
def test_an_end_date_before_its_start_date_is_refused(
    tmp_path: Path, table: str, earlier: str, later: str
) -> None:
    tables = valid_tables()
    tables[table][0][earlier] = "2025-03-10"
    tables[table][0][later] = "2025-03-09"
    issue = the_issue(issues_for(tmp_path, tables))
    assert (issue.file, issue.row, issue.column) == (f"{table}.csv", 2, later)
    assert issue.problem == f"{later} is before {earlier} (2025-03-10)"


def test_an_end_date_equal_to_its_start_date_is_accepted(tmp_path: Path) -> None:
    tables = valid_tables()
    tables["discharges"][0]["discharge_date"] = tables["discharges"][0]["admit_date"]
    assert read_bundle(write_and_return(tables, tmp_path))["discharges"].height == 1


def test_every_problem_in_every_file_is_reported_sorted_by_file_row_and_column(
    tmp_path: Path,
) -> None:
    tables = valid_tables()
    tables["patients"][1]["birth_date"] = "yesterday"
    tables["encounters"][2]["minutes"] = "-1"
    tables["encounters"][2]["kind"] = "visit"
    tables["encounters"][0]["date"] = "2024-13-01"
    del tables["care_plans"][0]["action"]
    issues = issues_for(tmp_path, tables)
    assert [(i.file, i.row, i.column) for i in issues] == [
        ("care_plans.csv", None, "action"),
        ("encounters.csv", 2, "date"),
        ("encounters.csv", 4, "kind"),
        ("encounters.csv", 4, "minutes"),
        ("patients.csv", 3, "birth_date"),
    ]
    refused = BundleInvalid(str(tmp_path), issues)
    assert "5 input error(s)" in refused.report()


def test_a_file_that_is_not_utf8_is_refused_naming_the_row(tmp_path: Path) -> None:
    write_scenario_bundle(core_tables(), tmp_path)
    write_csv(tmp_path, "patients", b"patient_id,birth_date\nP01,1951-02-01\nP\xe902,1948-12-31\n")
    issue = the_issue(issues_of(tmp_path))
    assert (issue.file, issue.row) == ("patients.csv", 3)
    assert "UTF-8" in issue.problem


def test_a_row_with_more_cells_than_the_header_is_refused(tmp_path: Path) -> None:
    write_scenario_bundle(core_tables(), tmp_path)
    write_csv(tmp_path, "patients", "patient_id,birth_date\nP01,1951-02-01,x\nP02,1948-12-31\n")
    issue = the_issue(issues_of(tmp_path))
    assert (issue.file, issue.row) == ("patients.csv", 2)
    assert issue.problem == "row has 3 cells but the header 2"


def test_a_column_named_twice_in_the_header_is_refused(tmp_path: Path) -> None:
    write_scenario_bundle(core_tables(), tmp_path)
    write_csv(
        tmp_path,
        "patients",
        "patient_id,birth_date,patient_id\nP01,1951-02-01,P01\nP02,1948-12-31,P02\n",
    )
    issue = the_issue(issues_of(tmp_path))
    assert (issue.file, issue.row, issue.column) == ("patients.csv", 1, "patient_id")
    assert issue.problem == "column appears more than once in the header"


def test_values_in_a_column_without_a_header_are_refused_and_empty_ones_ignored(
    tmp_path: Path,
) -> None:
    write_scenario_bundle(core_tables(), tmp_path)
    write_csv(tmp_path, "patients", "patient_id,birth_date,\nP01,1951-02-01,\nP02,1948-12-31,\n")
    assert read_bundle(tmp_path)["patients"].height == 2
    write_csv(tmp_path, "patients", "patient_id,,birth_date\nP01,x,1951-02-01\nP02,,1948-12-31\n")
    issue = the_issue(issues_of(tmp_path))
    assert (issue.file, issue.row, issue.problem) == (
        "patients.csv",
        1,
        "a column with values has no header",
    )


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    write_scenario_bundle(core_tables(), tmp_path)
    write_csv(tmp_path, "patients", "")
    issue = the_issue(issues_of(tmp_path))
    assert (issue.file, issue.problem) == ("patients.csv", "file is empty (no header row)")


def test_a_table_given_both_as_csv_and_parquet_is_refused(tmp_path: Path) -> None:
    write_scenario_bundle(core_tables(), tmp_path)
    pl.read_csv(tmp_path / "patients.csv", infer_schema=False).write_parquet(
        tmp_path / "patients.parquet"
    )
    issue = the_issue(issues_of(tmp_path))
    assert issue.file == "patients.parquet"
    assert issue.problem == "table given twice (also patients.csv)"


def test_a_damaged_workbook_is_refused(tmp_path: Path) -> None:
    book = tmp_path / "book.xlsx"
    book.write_bytes(b"not a zip file")
    issue = the_issue(issues_of(book))
    assert issue.file == "book.xlsx"
    assert issue.problem.startswith("cannot read the workbook")


def test_an_issue_names_file_row_and_column_when_printed() -> None:
    issue = InputIssue("encounters.csv", 4, "patient_id", "unknown patient_id 'P99'", "P99")
    assert (
        str(issue)
        == "encounters.csv, row 4, column patient_id: unknown patient_id 'P99' (value 'P99')"
    )


# --------------------------------------------------------------------------- scenarios


def public_scenarios() -> list[dict[str, object]]:
    loaded = yaml.safe_load(SCENARIOS.read_text(encoding="utf-8"))
    return list(loaded) if isinstance(loaded, list) else []


def test_every_public_scenario_bundle_is_accepted(tmp_path: Path) -> None:
    scenarios = public_scenarios()
    assert scenarios, f"no scenarios in {SCENARIOS}"
    refused: list[str] = []
    for scenario in scenarios:
        folder = tmp_path / re.sub(r"[^A-Za-z0-9_-]", "_", str(scenario["id"]))
        tables = scenario["tables"]
        assert isinstance(tables, dict)
        write_scenario_bundle(tables, folder)
        try:
            bundle = read_bundle(folder)
        except BundleInvalid as error:
            refused.append(error.report())
            continue
        for name, rows in tables.items():
            assert bundle[name].height == len(rows), (scenario["id"], name)
    assert not refused, "\n".join(refused)


def test_the_scenario_writer_writes_booleans_empty_cells_and_numbers_as_text(
    tmp_path: Path,
) -> None:
    write_scenario_bundle(
        {"t": [{"a": True, "b": 1}, {"a": False, "c": 2.5}, {"a": None, "b": [1, "x"]}]},
        tmp_path,
    )
    assert (tmp_path / "t.csv").read_text(encoding="utf-8") == (
        "a,b,c\ntrue,1,\nfalse,,2.5\n,1;x,\n"
    )
