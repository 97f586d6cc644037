"""Bad input that used to get through: NUL characters, implausible values, broken quoting,
PHI in messages, events outside a patient's life, uncached formulas and symlinks.

The limits are ``billing_engine/ingest_limits.yaml``'s (docs/interchange.md, "Input limits").
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

import openpyxl
import polars as pl
import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from billing_engine.errors import BundleInvalid, ConfigError, InputIssue
from billing_engine.io.ingest import read_bundle, validate_frames
from billing_engine.io.ingest_limits import LIMITS_FILE, InputLimits, default_limits
from billing_engine.io.schema import TABLES
from billing_engine.store import Store
from cli.main import billing
from tests.scenario_io import write_scenario_bundle
from tests.test_ingest import Rows, core_tables, valid_tables, write_workbook

INTERCHANGE = Path(__file__).resolve().parents[1] / "docs" / "interchange.md"
LIMITS = default_limits()


def issues_of(path: Path, limits: InputLimits | None = None) -> list[InputIssue]:
    with pytest.raises(BundleInvalid) as refused:
        read_bundle(path, limits)
    return refused.value.issues


def csv_bundle(tables: Mapping[str, Rows], folder: Path) -> Path:
    write_scenario_bundle(tables, folder)
    return folder


def the_issue(path: Path, limits: InputLimits | None = None) -> InputIssue:
    issues = issues_of(path, limits)
    assert len(issues) == 1, [str(i) for i in issues]
    return issues[0]


def where(issue: InputIssue) -> tuple[str, int | None, str | None]:
    return (issue.file, issue.row, issue.column)


def printed(path: Path) -> str:
    """Everything the CLI would print about the refused bundle."""
    with pytest.raises(BundleInvalid) as refused:
        read_bundle(path)
    return refused.value.report() + "\n" + repr(refused.value.issues)


def as_parquet(folder: Path, out: Path) -> Path:
    """The CSV bundle in ``folder`` as Parquet files of text columns."""
    out.mkdir()
    for file in folder.glob("*.csv"):
        pl.read_csv(file, infer_schema=False).write_parquet(out / f"{file.stem}.parquet")
    return out


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(billing, [str(a) for a in args])


# --------------------------------------------------------------------------- NUL


def test_a_nul_character_in_a_text_cell_is_refused_naming_file_row_and_column(
    tmp_path: Path,
) -> None:
    tables = core_tables()
    tables["practitioners"][1]["name"] = "RN\x00One"
    issue = the_issue(csv_bundle(tables, tmp_path))
    assert where(issue) == ("practitioners.csv", 3, "name")
    assert issue.problem == "contains a NUL character (byte 0), which cannot be stored; remove it"
    assert issue.value is None


def test_a_nul_character_in_an_extra_column_or_an_id_is_refused_without_a_broken_reference(
    tmp_path: Path,
) -> None:
    tables = core_tables()
    tables["encounters"][0]["note"] = "called\x00"
    tables["encounters"][1]["patient_id"] = "P01\x00"
    issues = issues_of(csv_bundle(tables, tmp_path))
    assert [where(i) for i in issues] == [
        ("encounters.csv", 2, "note"),
        ("encounters.csv", 3, "patient_id"),
    ]
    assert {i.problem for i in issues} == {
        "contains a NUL character (byte 0), which cannot be stored; remove it"
    }


def test_a_nul_character_in_a_parquet_bundle_is_refused_like_in_csv(tmp_path: Path) -> None:
    tables = core_tables()
    tables["patients"][0]["first_name"] = "Ann\x00"
    folder = csv_bundle(tables, tmp_path / "csv")
    from_csv = the_issue(folder)
    from_parquet = the_issue(as_parquet(folder, tmp_path / "parquet"))
    assert where(from_parquet) == ("patients.parquet", 2, "first_name")
    assert from_parquet.problem == from_csv.problem


def test_a_nul_character_is_refused_before_the_store_the_same_on_sqlite_and_postgresql(
    tmp_path: Path, store_url: str
) -> None:
    tables = core_tables()
    tables["practitioners"][1]["name"] = "RN\x00One"
    result = invoke("import", csv_bundle(tables, tmp_path / "bundle"), "--db", store_url)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[1:] == [
        "  practitioners.csv, row 3, column name: contains a NUL character (byte 0),"
        " which cannot be stored; remove it"
    ]
    with Store.open(store_url) as store:
        assert store.imports() == []
        assert store.load_bundle()["practitioners"].height == 0
    tables["practitioners"][1]["name"] = "RN One"
    fixed = invoke("import", csv_bundle(tables, tmp_path / "fixed"), "--db", store_url)
    assert fixed.exit_code == 0, fixed.output


# --------------------------------------------------------------------------- dates


def test_a_death_date_before_the_birth_date_is_refused_without_showing_either(
    tmp_path: Path,
) -> None:
    tables = valid_tables()
    tables["patients"].append(
        {"patient_id": "P03", "birth_date": "1940-05-07", "death_date": "1940-05-06"}
    )
    issue = the_issue(csv_bundle(tables, tmp_path))
    assert where(issue) == ("patients.csv", 4, "death_date")
    assert issue.problem == "death_date is before birth_date"
    shown = printed(tmp_path)
    assert "1940-05-06" not in shown
    assert "1940-05-07" not in shown


def test_an_encounter_before_the_patients_birth_is_refused_on_the_encounter_row(
    tmp_path: Path,
) -> None:
    tables = core_tables()
    tables["encounters"][0]["date"] = "1951-01-31"  # P01 is born 1951-02-01
    issue = the_issue(csv_bundle(tables, tmp_path))
    assert where(issue) == ("encounters.csv", 2, "date")
    assert issue.problem == "date is before the patient's birth_date"
    assert "1951-02-01" not in printed(tmp_path)


def test_an_encounter_after_the_patients_death_is_refused_and_one_on_the_day_accepted(
    tmp_path: Path,
) -> None:
    tables = core_tables()
    tables["encounters"][2]["date"] = "2025-04-03"  # P02 died 2025-04-02
    issue = the_issue(csv_bundle(tables, tmp_path / "after"))
    assert where(issue) == ("encounters.csv", 4, "date")
    assert issue.problem == "date is after the patient's death_date"
    assert "2025-04-02" not in printed(tmp_path / "after")
    tables["encounters"][2]["date"] = "2025-04-02"
    assert read_bundle(csv_bundle(tables, tmp_path / "on")).row_counts()["encounters"] == 3


def test_other_events_of_a_patient_after_death_are_refused_too(tmp_path: Path) -> None:
    tables = valid_tables()
    tables["measurements"][0]["date"] = "2025-05-01"
    tables["referrals"][0]["date"] = "1948-01-01"
    issues = issues_of(csv_bundle(tables, tmp_path))
    assert [(where(i), i.problem) for i in issues] == [
        (("measurements.csv", 2, "date"), "date is after the patient's death_date"),
        (("referrals.csv", 2, "date"), "date is before the patient's birth_date"),
    ]


@pytest.mark.parametrize(
    ("table", "row", "column", "value", "problem"),
    [
        ("encounters", 1, "date", "0001-01-01", "date before 1900-01-01"),
        ("encounters", 1, "date", "2090-03-04", "date after 2035-12-31"),
        ("coverages", 0, "start_date", "0001-01-01", "date before 1900-01-01"),
        ("fee_schedule", 0, "effective_from", "2090-01-01", "date after 2035-12-31"),
        ("claims_history", 0, "date_of_service", "1899-12-31", "date before 1900-01-01"),
    ],
)
def test_a_date_in_year_one_or_decades_ahead_is_refused_naming_the_limit(
    tmp_path: Path, table: str, row: int, column: str, value: str, problem: str
) -> None:
    tables = valid_tables()
    tables[table][row][column] = value
    if table == "fee_schedule":
        tables[table][row]["effective_to"] = ""
    issue = the_issue(csv_bundle(tables, tmp_path))
    assert where(issue) == (f"{table}.csv", row + 2, column)
    assert issue.problem.startswith(problem)
    assert "ingest." in issue.problem
    assert issue.value == value


def test_a_birth_date_in_year_one_is_refused_without_showing_it(tmp_path: Path) -> None:
    tables = core_tables()
    tables["patients"][0]["birth_date"] = "0001-01-01"
    issue = the_issue(csv_bundle(tables, tmp_path))
    assert where(issue) == ("patients.csv", 2, "birth_date")
    assert issue.problem == "date before 1900-01-01, the earliest accepted (ingest.earliest_date)"
    assert "0001-01-01" not in printed(tmp_path)


def test_an_open_end_date_far_ahead_is_accepted(tmp_path: Path) -> None:
    tables = valid_tables()
    tables["coverages"][1]["end_date"] = "9999-12-31"
    tables["fee_schedule"][0]["effective_to"] = "9999-12-31"
    bundle = read_bundle(csv_bundle(tables, tmp_path))
    assert bundle["coverages"]["end_date"][1] == dt.date(9999, 12, 31)


def test_the_dates_at_the_limits_are_accepted(tmp_path: Path) -> None:
    tables = valid_tables()
    tables["patients"][0]["birth_date"] = LIMITS.earliest_date.isoformat()
    tables["fee_schedule"][0]["effective_from"] = LIMITS.latest_date.isoformat()
    tables["fee_schedule"][0]["effective_to"] = ""
    assert read_bundle(csv_bundle(tables, tmp_path))["fee_schedule"].height == 1


def test_a_parquet_date_column_in_year_one_is_refused(tmp_path: Path) -> None:
    folder = csv_bundle(core_tables(), tmp_path)
    (folder / "patients.csv").unlink()
    pl.DataFrame(
        {"patient_id": ["P01", "P02"], "birth_date": [dt.date(1951, 2, 1), dt.date(1, 1, 1)]}
    ).write_parquet(folder / "patients.parquet")
    issue = the_issue(folder)
    assert where(issue) == ("patients.parquet", 3, "birth_date")
    assert issue.problem.startswith("date before 1900-01-01")


def test_a_workbook_date_decades_ahead_is_refused(tmp_path: Path) -> None:
    tables = core_tables()
    tables["encounters"][1]["date"] = "2090-03-04"
    book = tmp_path / "book.xlsx"
    write_workbook(tables, book)
    issue = the_issue(book)
    assert where(issue) == ("book.xlsx[encounters]", 3, "date")
    assert issue.problem.startswith("date after 2035-12-31")


# --------------------------------------------------------------------------- sizes


def test_an_encounter_of_a_hundred_million_minutes_is_refused_and_a_whole_day_accepted(
    tmp_path: Path,
) -> None:
    tables = core_tables()
    tables["encounters"][1]["minutes"] = 100_000_000
    issue = the_issue(csv_bundle(tables, tmp_path / "big"))
    assert where(issue) == ("encounters.csv", 3, "minutes")
    assert issue.problem == "minutes must be 1440 or less (ingest.max_encounter_minutes)"
    assert issue.value == "100000000"
    tables["encounters"][1]["minutes"] = LIMITS.max_encounter_minutes
    assert read_bundle(csv_bundle(tables, tmp_path / "day"))["encounters"]["minutes"][1] == 1440


def test_a_40_mb_cell_is_refused_without_being_echoed(tmp_path: Path) -> None:
    tables = core_tables()
    tables["practitioners"][2]["name"] = "x" * 40_000_000
    issue = the_issue(csv_bundle(tables, tmp_path))
    assert where(issue) == ("practitioners.csv", 4, "name")
    assert issue.problem == "cell is longer than 32767 characters (ingest.max_cell_chars)"
    assert issue.value is None
    assert len(str(issue)) < 200


def test_a_cell_one_character_over_the_limit_is_refused_and_one_at_it_accepted(
    tmp_path: Path,
) -> None:
    tables = core_tables()
    tables["encounters"][0]["note"] = "n" * LIMITS.max_cell_chars
    assert read_bundle(csv_bundle(tables, tmp_path / "at")).row_counts()["encounters"] == 3
    tables["encounters"][0]["note"] = "n" * (LIMITS.max_cell_chars + 1)
    issue = the_issue(csv_bundle(tables, tmp_path / "over"))
    assert where(issue) == ("encounters.csv", 2, "note")


def test_a_hundred_thousand_character_id_is_refused_once_and_never_echoed(
    tmp_path: Path,
) -> None:
    tables = core_tables()
    long_id = "P" * 100_000
    tables["encounters"][2]["patient_id"] = long_id
    issue = the_issue(csv_bundle(tables, tmp_path))
    assert where(issue) == ("encounters.csv", 4, "patient_id")
    assert issue.problem == "id is longer than 64 characters (ingest.max_id_chars)"
    assert long_id[:100] not in printed(tmp_path)


def test_an_id_of_64_characters_is_accepted(tmp_path: Path) -> None:
    tables = core_tables()
    long_id = "E" * LIMITS.max_id_chars
    tables["encounters"][0]["encounter_id"] = long_id
    assert read_bundle(csv_bundle(tables, tmp_path))["encounters"]["encounter_id"][0] == long_id


# --------------------------------------------------------------------------- limits


def test_the_limits_can_be_overridden_by_name(tmp_path: Path) -> None:
    tables = core_tables()
    tables["encounters"][0]["date"] = "2040-01-02"
    folder = csv_bundle(tables, tmp_path)
    assert the_issue(folder).problem.startswith("date after 2035-12-31")
    later = InputLimits.load({"ingest.latest_date": "2045-12-31"})
    assert read_bundle(folder, later)["encounters"]["date"][0] == dt.date(2040, 1, 2)
    strict = InputLimits.load({"ingest.latest_date": "2045-12-31", "ingest.max_id_chars": 2})
    assert {i.column for i in issues_of(folder, strict)} >= {"encounter_id", "patient_id"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ingest.max_cells": 5}, "unknown input limit 'ingest.max_cells'"),
        ({"ingest.max_id_chars": 0}, "must be a whole number of 1 or more"),
        ({"ingest.max_id_chars": True}, "must be a whole number of 1 or more"),
        ({"ingest.earliest_date": "1.1.1900"}, "must be a date"),
        ({"ingest.latest_date": "1899-01-01"}, "is before ingest.earliest_date"),
    ],
)
def test_a_wrong_limit_override_is_a_config_error(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        InputLimits.load(overrides)


def test_billing_import_and_evaluate_take_the_limits_from_the_settings_file(
    tmp_path: Path,
) -> None:
    tables = core_tables()
    tables["encounters"][1]["minutes"] = 1500
    folder = csv_bundle(tables, tmp_path / "bundle")
    refused = invoke("import", folder, "--db", f"sqlite:///{tmp_path / 'a.db'}")
    assert refused.exit_code == 2
    assert "encounters.csv, row 3, column minutes" in refused.stderr
    settings = tmp_path / "settings.yaml"
    settings.write_text(
        "ingest.max_encounter_minutes: 2880\ncommon.date_of_service_rule: month_end\n",
        encoding="utf-8",
    )
    imported = invoke(
        "import", folder, "--db", f"sqlite:///{tmp_path / 'b.db'}", "--settings", settings
    )
    assert imported.exit_code == 0, imported.output
    out = tmp_path / "out"
    evaluated = invoke(
        "evaluate", folder, "--month", "2025-03", "--out", out, "--settings", settings
    )
    assert evaluated.exit_code == 0, evaluated.output
    settings.write_text("ingest.max_encounter_minute: 2880\n", encoding="utf-8")
    wrong = invoke("evaluate", folder, "--month", "2025-03", "--out", out, "--settings", settings)
    assert wrong.exit_code == 1
    assert "unknown input limit 'ingest.max_encounter_minute'" in wrong.stderr


def test_every_limit_has_a_value_unit_description_and_rationale_and_is_documented() -> None:
    limits = yaml.safe_load(LIMITS_FILE.read_text(encoding="utf-8"))["limits"]
    docs = INTERCHANGE.read_text(encoding="utf-8")
    assert set(limits) == set(InputLimits.__dataclass_fields__)
    for name, spec in limits.items():
        for key in ("value", "unit", "description", "rationale"):
            assert spec.get(key) not in (None, ""), f"{name}: no {key}"
        assert f"ingest.{name}" in docs, f"ingest.{name} is not in docs/interchange.md"
        assert str(spec["value"]) in docs.replace(",", ""), f"{name}: default not documented"


# --------------------------------------------------------------------------- CSV quoting


def write_patients(folder: Path, text: str) -> Path:
    write_scenario_bundle(core_tables(), folder)
    (folder / "patients.csv").write_text(text, encoding="utf-8")
    return folder


def test_an_unbalanced_quote_is_reported_at_its_row_and_line_never_with_the_content(
    tmp_path: Path,
) -> None:
    folder = write_patients(
        tmp_path,
        "patient_id,first_name,birth_date\n"
        'P01,Ann,1951-02-01\nP02,"Maria Lopez,1948-12-31\nP03,Bob,1940-01-01\n',
    )
    issue = the_issue(folder)
    assert where(issue) == ("patients.csv", 3, None)
    assert issue.problem == "a quoted cell opened on line 3 is never closed (unbalanced quote)"
    shown = printed(folder)
    for content in ("Maria", "Lopez", "1948-12-31", "Bob", "1940-01-01"):
        assert content not in shown


def test_a_stray_quote_inside_a_cell_is_reported_at_its_row_without_the_content(
    tmp_path: Path,
) -> None:
    folder = write_patients(
        tmp_path,
        "patient_id,first_name,birth_date\n"
        'P01,"Ann ""Nan"" Lee",1951-02-01\nP02,Jo"hn,1948-12-31\n',
    )
    issue = the_issue(folder)
    assert where(issue) == ("patients.csv", 3, None)
    assert issue.problem.startswith("a stray quote on line 3")
    shown = printed(folder)
    assert 'Jo"hn' not in shown
    assert "1948-12-31" not in shown


def test_a_quoted_cell_over_several_lines_counts_as_one_row_before_a_broken_quote(
    tmp_path: Path,
) -> None:
    folder = write_patients(
        tmp_path,
        'patient_id,first_name,birth_date\nP01,"Ann\nMarie",1951-02-01\nP02,"Bo,1948-12-31\n',
    )
    issue = the_issue(folder)
    assert (issue.row, issue.problem) == (
        3,
        "a quoted cell opened on line 4 is never closed (unbalanced quote)",
    )


# --------------------------------------------------------------------------- PHI


def test_a_bad_birth_date_is_reported_without_its_value(tmp_path: Path) -> None:
    tables = core_tables()
    tables["patients"][0]["birth_date"] = "1950-13-45"
    issue = the_issue(csv_bundle(tables, tmp_path))
    assert where(issue) == ("patients.csv", 2, "birth_date")
    assert issue.problem == "not a date (expected YYYY-MM-DD)"
    assert str(issue) == "patients.csv, row 2, column birth_date: not a date (expected YYYY-MM-DD)"
    assert "1950-13-45" not in printed(tmp_path)


def test_a_bad_birth_date_in_a_workbook_is_reported_without_its_value(tmp_path: Path) -> None:
    book = tmp_path / "book.xlsx"
    write_workbook(core_tables(), book)
    workbook = openpyxl.load_workbook(book)
    workbook["patients"]["B3"] = "31/12/1948"
    workbook.save(book)
    with pytest.raises(BundleInvalid) as refused:
        read_bundle(book)
    assert "book.xlsx[patients], row 3, column birth_date" in refused.value.report()
    assert "31/12/1948" not in refused.value.report()


def test_a_bad_id_or_code_is_still_shown_with_its_value(tmp_path: Path) -> None:
    tables = core_tables()
    tables["encounters"][0]["kind"] = "visit"
    assert "(value 'visit')" in str(the_issue(csv_bundle(tables, tmp_path)))


def test_names_dates_of_birth_and_death_address_and_member_id_are_marked_phi() -> None:
    phi = {(t.name, c.name) for t in TABLES.values() for c in t.columns if c.phi}
    assert {
        ("patients", "first_name"),
        ("patients", "last_name"),
        ("patients", "birth_date"),
        ("patients", "death_date"),
        ("patients", "zip"),
        ("coverages", "member_id"),
    } <= phi
    address = re.compile(r"^(address\d*|city|street|phone|email|ssn|mbi)$")
    unmarked = [
        f"{t.name}.{c.name}"
        for t in TABLES.values()
        if t.name == "patients"
        for c in t.columns
        if address.match(c.name) and not c.phi
    ]
    assert not unmarked, f"patient address/contact columns must be phi=True: {unmarked}"


def test_a_phi_issue_given_in_memory_prints_neither_in_str_nor_in_repr() -> None:
    issue = InputIssue("patients.csv", 2, "last_name", "problem", "Lopez", phi=True)
    assert "Lopez" not in str(issue)
    assert "Lopez" not in repr(issue)
    assert "Lopez" in repr(InputIssue("encounters.csv", 2, "patient_id", "problem", "Lopez"))


def test_typed_frames_with_a_death_before_birth_are_refused_in_memory_too() -> None:
    patients = pl.DataFrame(
        {"patient_id": ["P1"], "birth_date": ["1950-01-02"], "death_date": ["1950-01-01"]}
    )
    _, issues = validate_frames({"patients": ("patients", patients)})
    assert [(i.file, i.row, i.column, i.problem) for i in issues if i.file == "patients"] == [
        ("patients", 2, "death_date", "death_date is before birth_date")
    ]


_DAYS = st.integers(min_value=0, max_value=3650).map(
    lambda n: dt.date(2016, 1, 1) + dt.timedelta(days=n)
)


@settings(max_examples=60, deadline=None)
@given(
    lives=st.lists(st.tuples(st.none() | _DAYS, st.none() | _DAYS), min_size=1, max_size=6),
    events=st.lists(st.tuples(st.integers(0, 5), _DAYS), max_size=12),
)
def test_every_event_outside_a_life_is_found_whichever_patients_the_join_meets(
    lives: list[tuple[dt.date | None, dt.date | None]], events: list[tuple[int, dt.date]]
) -> None:
    """The life check joins only the patients born after a table's first date or dead
    before its last; it finds what the join of every patient would."""
    patients = pl.DataFrame(
        {
            "patient_id": [f"P{i}" for i in range(len(lives))],
            "birth_date": [None if b is None else b.isoformat() for b, _ in lives],
            "death_date": [None if d is None else d.isoformat() for _, d in lives],
        },
        schema=dict.fromkeys(("patient_id", "birth_date", "death_date"), pl.String),
    )
    referrals = pl.DataFrame(
        {
            "referral_id": [f"R{i}" for i in range(len(events))],
            "patient_id": [f"P{p}" for p, _ in events],
            "date": [day.isoformat() for _, day in events],
        },
        schema=dict.fromkeys(("referral_id", "patient_id", "date"), pl.String),
    )
    _, issues = validate_frames(
        {"patients": ("patients", patients), "referrals": ("referrals", referrals)}
    )
    found = sorted((i.row, i.problem) for i in issues if "the patient's" in i.problem)
    expected = []
    for row, (p, day) in enumerate(events, start=2):
        if p >= len(lives):
            continue  # an unknown patient: reported as such, not as a life
        birth, death = lives[p]
        if birth is not None and day < birth:
            expected.append((row, "date is before the patient's birth_date"))
        elif death is not None and day > death:
            expected.append((row, "date is after the patient's death_date"))
    assert found == sorted(expected)


# --------------------------------------------------------------------------- workbooks


def rewrite_sheet(book: Path, sheet_part: str, old: bytes, new: bytes) -> None:
    """Replace bytes inside one worksheet part of an .xlsx file."""
    copy = book.with_suffix(".tmp")
    with zipfile.ZipFile(book) as source, zipfile.ZipFile(copy, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == sheet_part:
                assert old in data
                data = data.replace(old, new)
            target.writestr(item, data)
    copy.replace(book)


def formula_book(tmp_path: Path) -> Path:
    book = tmp_path / "book.xlsx"
    write_workbook(core_tables(), book)
    workbook = openpyxl.load_workbook(book)
    workbook["encounters"]["D3"] = "=D2-13"  # minutes of E02, computed, never calculated
    workbook.save(book)
    return book


def test_a_formula_without_a_cached_value_is_refused_naming_sheet_row_and_column(
    tmp_path: Path,
) -> None:
    issue = the_issue(formula_book(tmp_path))
    assert where(issue) == ("book.xlsx[encounters]", 3, "minutes")
    assert issue.problem == (
        "formula without a cached value; open and save the workbook in Excel or export values"
    )


def test_a_formula_with_a_cached_value_is_read_as_that_value(tmp_path: Path) -> None:
    book = formula_book(tmp_path)
    workbook = openpyxl.load_workbook(book)
    part = f"xl/worksheets/sheet{workbook.sheetnames.index('encounters') + 1}.xml"
    rewrite_sheet(book, part, b"<f>D2-13</f><v />", b"<f>D2-13</f><v>12</v>")
    assert read_bundle(book)["encounters"]["minutes"].to_list() == [25, 12, 0]


# --------------------------------------------------------------------------- symlinks


def test_a_bundle_file_linked_to_outside_the_bundle_is_refused(tmp_path: Path) -> None:
    folder = csv_bundle(core_tables(), tmp_path / "bundle")
    outside = tmp_path / "elsewhere.csv"
    (folder / "patients.csv").rename(outside)
    (folder / "patients.csv").symlink_to(outside)
    issue = the_issue(folder)
    assert where(issue) == ("patients.csv", None, None)
    assert issue.problem.startswith("a symbolic link to a file outside the bundle folder")


def test_a_bundle_file_linked_inside_the_bundle_is_read(tmp_path: Path) -> None:
    folder = csv_bundle(core_tables(), tmp_path / "bundle")
    (folder / "exports").mkdir()
    (folder / "patients.csv").rename(folder / "exports" / "patients-2025.csv")
    (folder / "patients.csv").symlink_to(Path("exports") / "patients-2025.csv")
    assert read_bundle(folder).row_counts()["patients"] == 2


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize("kind", ["csv", "parquet", "xlsx"])
def test_limit_and_life_problems_are_reported_alike_for_csv_parquet_and_xlsx(
    tmp_path: Path, kind: str
) -> None:
    tables = valid_tables()
    tables["encounters"][0]["minutes"] = 5000
    tables["encounters"][1]["date"] = "2090-03-04"
    tables["patients"].append(
        {"patient_id": "P03", "birth_date": "2000-01-02", "death_date": "2000-01-01"}
    )
    tables["consents"][0]["obtained_date"] = "1951-01-01"
    folder = csv_bundle(tables, tmp_path / "csv")
    path = {
        "csv": lambda: folder,
        "parquet": lambda: as_parquet(folder, tmp_path / "parquet"),
        "xlsx": lambda: tmp_path / "book.xlsx",
    }[kind]()
    if kind == "xlsx":
        write_workbook(tables, path)
    found = [(i.row, i.column, i.problem) for i in issues_of(path)]
    assert found == [
        (2, "obtained_date", "obtained_date is before the patient's birth_date"),
        (2, "minutes", "minutes must be 1440 or less (ingest.max_encounter_minutes)"),
        (3, "date", "date after 2035-12-31, the latest accepted (ingest.latest_date)"),
        (4, "death_date", "death_date is before birth_date"),
    ]
