"""Corrections that correct: snapshot imports, entered-in-error encounters, coverage
corrections, claim ids, incremental bundles checked against the store, and two processes
migrating one fresh PostgreSQL schema at once.

Bundles start from the ``base`` of tests/rule_cases/ccm.yaml (Medicare patient P1 with
two chronic conditions, a CCM consent naming DR_A, a care plan, a 2024 visit with DR_A);
E1 adds 25 staff minutes on 2025-03-04, so March 2025 bills 99490.
"""

from __future__ import annotations

import copy
import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner, Result

from billing_engine.calendar import Month
from billing_engine.errors import BundleInvalid
from billing_engine.io.bundle import Bundle
from billing_engine.io.ingest import read_bundle
from billing_engine.services.evaluation import evaluate
from billing_engine.store import Store, StoreError
from billing_engine.store.models import INTERCHANGE_TABLES
from cli.main import billing
from tests.scenario_io import write_scenario_bundle

ROOT = Path(__file__).resolve().parents[1]
RULE_CASES = ROOT / "tests" / "rule_cases" / "ccm.yaml"
MARCH = Month.parse("2025-03")
E1 = {"encounter_id": "E1", "date": "2025-03-04", "minutes": 25}
D = dt.date


def base_tables(*entries: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    doc = yaml.safe_load(RULE_CASES.read_text(encoding="utf-8"))
    tables: dict[str, list[dict[str, Any]]] = copy.deepcopy(doc["base"])
    defaults = doc["defaults"]["encounters"]
    tables["encounters"] += [{**defaults, **entry} for entry in entries]
    return tables


def encounter(**values: Any) -> dict[str, Any]:
    doc = yaml.safe_load(RULE_CASES.read_text(encoding="utf-8"))
    return {**doc["defaults"]["encounters"], **values}


def write(folder: Path, tables: dict[str, list[dict[str, Any]]]) -> Path:
    write_scenario_bundle(tables, folder)
    return folder


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(billing, [str(a) for a in args])


def import_ok(*args: str | Path) -> Result:
    result = invoke("import", *args)
    assert result.exit_code == 0, result.output
    return result


def billed_codes(store_url: str) -> list[str]:
    with Store.open(store_url) as store:
        result = evaluate(store.load_bundle(), MARCH)
    return sorted(result.claim_lines["code"].to_list())


def summary_row(result: Result, table: str) -> list[str]:
    rows = [line.split() for line in result.output.splitlines() if line.startswith(table)]
    assert len(rows) == 1, result.output
    return rows[0][1:]


# --------------------------------------------------------------------------- snapshot


def test_a_removed_encounter_stops_billing_after_a_snapshot_import(
    store_url: str, tmp_path: Path
) -> None:
    import_ok(write(tmp_path / "first", base_tables(E1)), "--db", store_url)
    assert billed_codes(store_url) == ["99490"]

    # the EHR's next full export no longer holds E1 (it was logged on the wrong patient)
    corrected = import_ok(write(tmp_path / "fixed", base_tables()), "--snapshot", "--db", store_url)
    assert "retired" in corrected.output.splitlines()[1]
    assert summary_row(corrected, "encounters") == ["0", "0", "1", "1"]  # V0 unchanged, E1
    assert summary_row(corrected, "total")[-1] == "1"
    assert billed_codes(store_url) == []

    with Store.open(store_url) as store:
        assert store.load_bundle()["encounters"]["encounter_id"].to_list() == ["V0"]
        retired = store.retired_rows("encounters")
        assert retired["encounter_id"].to_list() == ["E1"]  # kept in the database
        assert retired["retired_at"].null_count() == 0
        counts = store.imports()[-1]["table_counts"]
    assert counts["encounters"]["retired"] == 1
    assert counts["patients"]["retired"] == 0


def test_a_snapshot_leaves_absent_tables_alone_and_a_retired_row_can_return(
    store_url: str, tmp_path: Path
) -> None:
    import_ok(write(tmp_path / "first", base_tables(E1)), "--db", store_url)
    only_encounters = {"encounters": base_tables()["encounters"]}
    import_ok(write(tmp_path / "snap", only_encounters), "--snapshot", "--db", store_url)
    with Store.open(store_url) as store:
        loaded = store.load_bundle()
    assert loaded["patients"]["patient_id"].to_list() == ["P1"]  # not in the bundle: kept
    assert loaded["coverages"].height == 1
    assert billed_codes(store_url) == []

    back = import_ok(write(tmp_path / "again", base_tables(E1)), "--db", store_url)
    assert summary_row(back, "encounters")[:3] == ["0", "1", "1"]  # E1 current again
    assert "1 retired row(s) current again" in back.output
    assert billed_codes(store_url) == ["99490"]
    with Store.open(store_url) as store:
        assert store.retired_rows("encounters").height == 0


def test_a_snapshot_that_fails_changes_nothing(store_url: str, tmp_path: Path) -> None:
    bundle = read_bundle(write(tmp_path / "first", base_tables(E1)))
    with Store.open(store_url) as store:
        store.import_bundle(bundle)
        before = store.load_bundle()
        # a second open coverage of P1 with MCR: refused inside the transaction
        frames = dict(bundle.tables)
        frames["coverages"] = pl.concat(
            [frames["coverages"], frames["coverages"].with_columns(start_date=D(2016, 1, 1))]
        )
        frames["encounters"] = frames["encounters"].head(1)  # would retire E1
        with pytest.raises(StoreError, match="overlaps"):
            store.import_bundle(Bundle.from_frames(frames), snapshot=True)
        after = store.load_bundle()
        assert store.retired_rows("encounters").height == 0
        assert len(store.imports()) == 1
    for name in ("encounters", "coverages"):
        assert after[name].equals(before[name])


# --------------------------------------------------------------------------- entered in error


def test_an_encounter_entered_in_error_stops_the_line_and_explain_shows_it(
    store_url: str, tmp_path: Path
) -> None:
    import_ok(write(tmp_path / "first", base_tables(E1)), "--db", store_url)
    # an incremental feed voids E1: no patients, practitioners or consents again
    voided = {"encounters": [encounter(**E1, status="entered_in_error")]}
    result = import_ok(write(tmp_path / "void", voided), "--db", store_url)
    assert summary_row(result, "encounters") == ["0", "1", "0"]
    assert billed_codes(store_url) == []

    explained = invoke("explain", "--month", "2025-03", "--patient", "P1", "--db", store_url)
    assert explained.exit_code == 0, explained.output
    entry = [line for line in explained.output.splitlines() if line.strip().startswith("E1 ")]
    assert len(entry) == 1 and "entered_in_error" in entry[0], explained.output


def test_an_initiating_visit_entered_in_error_does_not_count() -> None:
    tables = base_tables(E1)
    assert evaluate(_bundle(tables), MARCH).claim_lines["code"].to_list() == ["99490"]
    for row in tables["encounters"]:
        if row["encounter_id"] == "V0":  # the 2024 visit that initiates CCM
            row["status"] = "entered_in_error"
    result = evaluate(_bundle(tables), MARCH)
    assert result.claim_lines.is_empty()
    assert result.input_row_counts["encounters"] == 2  # the row is kept, not counted


def _bundle(tables: dict[str, list[dict[str, Any]]]) -> Bundle:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        return read_bundle(write(Path(folder) / "b", tables))


# --------------------------------------------------------------------------- coverages


def test_a_corrected_coverage_start_date_is_refused_incrementally_and_works_as_a_snapshot(
    store_url: str, tmp_path: Path
) -> None:
    import_ok(write(tmp_path / "first", base_tables(E1)), "--db", store_url)
    corrected = {"coverages": [{"patient_id": "P1", "payer_id": "MCR", "start_date": "2015-05-01"}]}
    folder = write(tmp_path / "corrected", corrected)

    refused = invoke("import", folder, "--db", store_url)
    assert refused.exit_code == 2
    assert "coverages.csv, row 2, column start_date" in refused.output
    assert "overlaps the stored coverage 2015-04-01 to open" in refused.output
    assert "--snapshot" in refused.output and "end_date" in refused.output

    import_ok(folder, "--snapshot", "--db", store_url)
    with Store.open(store_url) as store:
        current = store.load_bundle()["coverages"]
        assert current["start_date"].to_list() == [D(2015, 5, 1)]
        assert store.retired_rows("coverages")["start_date"].to_list() == [D(2015, 4, 1)]


def test_ending_the_stored_coverage_in_an_incremental_bundle_accepts_the_next_one(
    store_url: str, tmp_path: Path
) -> None:
    import_ok(write(tmp_path / "first", base_tables(E1)), "--db", store_url)
    switch = {
        "coverages": [
            {
                "patient_id": "P1",
                "payer_id": "MCR",
                "start_date": "2015-04-01",
                "end_date": "2025-02-28",
            },
            {"patient_id": "P1", "payer_id": "MCR", "start_date": "2025-03-01"},
        ]
    }
    import_ok(write(tmp_path / "switch", switch), "--db", store_url)
    with Store.open(store_url) as store:
        assert store.load_bundle()["coverages"].height == 2
    assert billed_codes(store_url) == ["99490"]


def test_overlapping_coverages_of_one_patient_and_payer_in_a_bundle_are_refused(
    tmp_path: Path,
) -> None:
    tables = base_tables(E1)
    tables["coverages"].append({"patient_id": "P1", "payer_id": "MCR", "start_date": "2020-01-01"})
    with pytest.raises(BundleInvalid) as refused:
        read_bundle(write(tmp_path / "b", tables))
    (issue,) = refused.value.issues
    assert (issue.file, issue.row, issue.column) == ("coverages.csv", 3, "start_date")
    assert "overlaps the coverage at row 2 (2015-04-01 to open)" in issue.problem
    # ending the first one the day before is a clean switch
    tables["coverages"][0]["end_date"] = "2019-12-31"
    assert read_bundle(write(tmp_path / "ok", tables))["coverages"].height == 2


# --------------------------------------------------------------------------- claims history

CLAIM = {"patient_id": "P1", "code": "99490", "date_of_service": "2025-01-31"}


def _claims(*rows: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    tables = base_tables(E1)
    tables["claims_history"] = [
        {**CLAIM, "billing_npi": "1234567893", "payer_id": "MCR", **row} for row in rows
    ]
    return tables


def test_a_denied_claim_and_its_paid_resubmission_with_claim_ids_are_two_records(
    store_url: str, tmp_path: Path
) -> None:
    tables = _claims({"status": "denied", "claim_id": "C-1"}, {"status": "paid", "claim_id": "C-2"})
    result = import_ok(write(tmp_path / "b", tables), "--db", store_url)
    assert summary_row(result, "claims_history") == ["2", "0", "0"]
    with Store.open(store_url) as store:
        claims = store.load_bundle()["claims_history"]
    assert claims.select("claim_id", "status").rows() == [("C-1", "denied"), ("C-2", "paid")]


def test_a_claim_without_claim_id_keeps_its_stored_key(store_url: str, tmp_path: Path) -> None:
    import_ok(write(tmp_path / "b", _claims({"status": "paid"})), "--db", store_url)
    again = import_ok(write(tmp_path / "b2", _claims({"status": "paid"})), "--db", store_url)
    assert summary_row(again, "claims_history") == ["0", "0", "1"]
    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as connection:
            keys = connection.execute(sa.select(INTERCHANGE_TABLES["claims_history"].c.row_key))
            assert keys.scalars().all() == ["P1|99490|2025-01-31|1234567893"]
    finally:
        engine.dispose()


def test_two_different_claims_without_claim_ids_are_refused_naming_both_rows(
    tmp_path: Path,
) -> None:
    tables = _claims({"status": "denied"}, {"status": "paid"})
    with pytest.raises(BundleInvalid) as refused:
        read_bundle(write(tmp_path / "b", tables))
    (issue,) = refused.value.issues
    assert (issue.file, issue.row, issue.column) == ("claims_history.csv", 3, "patient_id")
    assert "as row 2 but other values" in issue.problem
    assert "claim_id" in issue.problem
    # an exact repeat is one claim
    same = _claims({"status": "paid"}, {"status": "paid"})
    assert read_bundle(write(tmp_path / "same", same))["claims_history"].height == 2


# --------------------------------------------------------------------------- incremental


def test_an_incremental_bundle_of_late_encounters_is_accepted_and_an_unknown_patient_refused(
    store_url: str, tmp_path: Path
) -> None:
    import_ok(write(tmp_path / "first", base_tables()), "--db", store_url)
    assert billed_codes(store_url) == []
    late = {"encounters": [encounter(**E1)]}  # names stored P1, RN1 and DR_A
    result = import_ok(write(tmp_path / "late", late), "--db", store_url)
    assert summary_row(result, "encounters") == ["1", "0", "0"]
    assert billed_codes(store_url) == ["99490"]

    unknown = {
        "encounters": [encounter(encounter_id="E9", date="2025-03-05", minutes=5, patient_id="P9")]
    }
    refused = invoke("import", write(tmp_path / "unknown", unknown), "--db", store_url)
    assert refused.exit_code == 2
    assert (
        "encounters.csv, row 2, column patient_id: unknown patient_id 'P9'"
        " (not in patients nor in the store)"
    ) in refused.output


def test_a_snapshot_of_patients_does_not_count_the_stored_ones(
    store_url: str, tmp_path: Path
) -> None:
    import_ok(write(tmp_path / "first", base_tables()), "--db", store_url)
    tables = {
        "patients": [{"patient_id": "P2", "birth_date": "1951-01-01"}],
        "encounters": [encounter(**E1)],  # P1 would be retired by this snapshot
    }
    refused = invoke("import", write(tmp_path / "snap", tables), "--snapshot", "--db", store_url)
    assert refused.exit_code == 2
    assert "unknown patient_id 'P1'" in refused.output


def test_a_snapshot_may_not_retire_a_patient_that_stored_rows_still_name(
    store_url: str, tmp_path: Path
) -> None:
    import_ok(write(tmp_path / "first", base_tables(E1)), "--db", store_url)
    patients = {"patients": [{"patient_id": "P2", "birth_date": "1951-01-01"}]}
    refused = invoke("import", write(tmp_path / "snap", patients), "--snapshot", "--db", store_url)
    assert refused.exit_code == 2
    assert (
        "patients.csv, column patient_id: this snapshot no longer holds patient_id 'P1'"
        " that stored encounters rows still name"
    ) in refused.output
    assert billed_codes(store_url) == ["99490"]  # nothing was retired


def test_a_refused_incremental_bundle_does_not_create_a_sqlite_store(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    late = {"encounters": [encounter(**E1)]}
    refused = invoke("import", write(tmp_path / "late", late), "--db", f"sqlite:///{db}")
    assert refused.exit_code == 2
    assert "patients.csv: required table is missing" in refused.output  # the store is empty
    assert "performer_id 'RN1' (not in practitioners nor in the store)" in refused.output
    assert not db.exists()


# --------------------------------------------------------------------------- concurrency


@pytest.mark.postgres
def test_two_processes_importing_into_a_fresh_postgresql_schema_both_succeed(
    pg_schema_url: str, tmp_path: Path
) -> None:
    folder = write(tmp_path / "bundle", base_tables(E1))
    command = [sys.executable, "-c", "from cli.main import main; main()", "import", str(folder)]
    runs = [
        subprocess.Popen(
            [*command, "--db", pg_schema_url],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outcomes = [run.communicate(timeout=120) for run in runs]
    for run, (out, err) in zip(runs, outcomes, strict=True):
        assert run.returncode == 0, out + err
    engine = sa.create_engine(pg_schema_url)
    try:
        with engine.connect() as connection:
            versions = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
            assert len(versions.all()) == 1
            schema = connection.execute(sa.text("SELECT current_schema()")).scalar_one()
            tables = sa.inspect(connection).get_table_names(schema=schema)
            assert set(INTERCHANGE_TABLES) <= set(tables)
    finally:
        engine.dispose()
    with Store.open(pg_schema_url) as store:
        assert store.load_bundle().row_counts()["encounters"] == 2  # imported twice, once
        assert len(store.imports()) == 2
    assert billed_codes(pg_schema_url) == ["99490"]
