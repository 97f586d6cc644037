"""The store: migrations, imports (round trip, idempotence, updates, rollback), runs, CLI."""

from __future__ import annotations

import datetime as dt
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner
from polars.testing import assert_frame_equal

from billing_engine.io.bundle import Bundle
from billing_engine.io.schema import TABLES
from billing_engine.store import (
    Store,
    StoreError,
    bulk,
    bundles,
    codec,
    default_db_url,
    display_url,
    whole_store,
)
from billing_engine.store.models import INTERCHANGE_TABLES, metadata

D = dt.date


def _full_bundle() -> Bundle:
    """Every interchange table with rows, incl. lists, times, decimals and extra columns."""
    frames = {
        "practitioners": pl.DataFrame(
            {
                "practitioner_id": ["MD1", "RN1"],
                "name": ["Dr. A", "Nurse B"],
                "npi": ["1234567893", None],
                "credential": ["MD", "RN"],
                "primary_care": [True, None],
                "qp": [False, False],
                "medicare_locality": ["10112-0", None],
                "team": ["north", "south"],  # extra column (text)
            }
        ),
        "patients": pl.DataFrame(
            {
                "patient_id": ["P1", "P2", "P3"],
                "birth_date": [D(1950, 1, 2), D(1948, 5, 6), D(1939, 12, 31)],
                "sex": ["F", "M", None],
                "first_name": ["Ann", "Bob", "Cy"],
                "last_name": ["Lee", "Ng", "Oz"],
                "zip": ["02134", "10001", None],
                "part_b_start": [D(2015, 1, 1), None, D(2004, 12, 1)],
                "qmb": [True, False, None],
                "death_date": [None, None, D(2025, 2, 3)],
                "mrn": ["M-1", None, "M-3"],  # extra column (text, with a null)
                "visits": [3, 1, None],  # extra column (integer)
            }
        ),
        "payers": pl.DataFrame(
            {
                "payer_id": ["MCR", "MCD"],
                "name": ["Medicare", "State Medicaid"],
                "kind": ["medicare", "medicaid"],
                "state": [None, "NY"],
                "fee_basis": [None, "percent_of_medicare:110"],
            }
        ),
        "coverages": pl.DataFrame(
            {
                "patient_id": ["P1", "P2"],
                "payer_id": ["MCR", "MCD"],
                "start_date": [D(2020, 1, 1), D(2021, 3, 1)],
                "end_date": [None, D(2026, 1, 1)],
                "rank": [1, 2],
                "member_id": ["A1", None],
            }
        ),
        "fee_schedule": pl.DataFrame(
            {
                "payer_id": ["MCD", "MCD"],
                "code": ["T1016", "99490"],
                "modifier": [None, "GT"],
                "effective_from": [D(2025, 1, 1), D(2025, 1, 1)],
                "effective_to": [None, D(2025, 12, 31)],
                "amount": [Decimal("12.3456"), Decimal("60.49")],
            },
            schema_overrides={"amount": pl.Decimal(18, 4)},
        ),
        "payer_codes": pl.DataFrame(
            {
                "payer_id": ["MCD"],
                "code": ["99439"],
                "covered": [False],
                "effective_from": [None],
                "effective_to": [None],
            },
            schema_overrides={"effective_from": pl.Date, "effective_to": pl.Date},
        ),
        "conditions": pl.DataFrame(
            {
                "patient_id": ["P1", "P1", "P2"],
                "icd10": ["E11.9", "I10", "f32a"],
                "onset_date": [D(2019, 4, 1), None, None],
                "resolved_date": [None, None, D(2024, 1, 1)],
                "chronic": [None, True, False],
            }
        ),
        "consents": pl.DataFrame(
            {
                "consent_id": ["C1"],
                "patient_id": ["P1"],
                "program": ["ccm"],
                "obtained_date": [D(2025, 1, 5)],
                "method": ["verbal"],
                "billing_practitioner_id": ["MD1"],
                "revoked_date": [None],
            },
            schema_overrides={"revoked_date": pl.Date},
        ),
        "care_plans": pl.DataFrame(
            {
                "care_plan_id": ["CP1"],
                "patient_id": ["P1"],
                "program": ["ccm"],
                "date": [D(2025, 1, 6)],
                "action": ["established"],
            }
        ),
        "encounters": pl.DataFrame(
            {
                "encounter_id": ["E1", "E2", "E3"],
                "patient_id": ["P1", "P1", "P2"],
                "date": [D(2025, 3, 3), D(2025, 3, 4), D(2025, 3, 5)],
                "start_time": [dt.time(9, 30), None, dt.time(23, 59)],
                "minutes": [25, 0, 15],
                "performer_id": ["RN1", "MD1", "RN1"],
                "billing_practitioner_id": ["MD1", "MD1", None],
                "kind": ["care_management", "office_visit", "care_management"],
                "program": ["ccm", None, "case_management"],
                "contact_mode": ["phone", "in_person", None],
                "mdm": [None, "moderate", None],
                "cpt": [None, ["99214", "G0506"], []],
                "activities": [["care_coordination", "education"], None, ["x"]],
                "place_of_service": ["11", "11", None],
                "outcome": ["completed", None, "attempt_failed"],
                "source_system": ["ehr", "ehr", "log"],  # extra column
            }
        ),
        "discharges": pl.DataFrame(
            {
                "discharge_id": ["DC1"],
                "patient_id": ["P2"],
                "admit_date": [D(2025, 2, 1)],
                "discharge_date": [D(2025, 2, 5)],
                "setting": ["inpatient_acute"],
                "disposition": ["home"],
            }
        ),
        "measurements": pl.DataFrame(
            {
                "patient_id": ["P1", "P1"],
                "date": [D(2025, 1, 1), D(2025, 1, 1)],
                "kind": ["bmi", "weight_kg"],
                "value": [31.25, 88.4],
            }
        ),
        "referrals": pl.DataFrame(
            {
                "referral_id": ["R1"],
                "patient_id": ["P1"],
                "date": [D(2025, 1, 10)],
                "referring_practitioner_id": ["MD1"],
                "service": ["mnt"],
                "reason": ["initial"],
            }
        ),
        "claims_history": pl.DataFrame(
            {
                "patient_id": ["P1"],
                "code": ["G0438"],
                "units": [1],
                "date_of_service": [D(2024, 6, 1)],
                "billing_npi": ["1234567893"],
                "payer_id": ["MCR"],
                "status": ["paid"],
            }
        ),
    }
    return Bundle.from_frames(frames, source="test bundle")


def _sorted(name: str, frame: pl.DataFrame) -> pl.DataFrame:
    spec = TABLES[name]
    return frame.sort(list(spec.identity), nulls_last=True)


def _assert_bundles_equal(actual: Bundle, expected: Bundle) -> None:
    for name in TABLES:
        assert_frame_equal(_sorted(name, actual[name]), _sorted(name, expected[name]))


def _stored_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored interchange row, bookkeeping columns included, for before/after checks."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return {
                name: sorted(connection.execute(sa.select(table)).all(), key=repr)
                for name, table in INTERCHANGE_TABLES.items()
            }
    finally:
        engine.dispose()


def test_a_bundle_round_trips_through_the_store_for_every_table(store_url: str) -> None:
    bundle = _full_bundle()
    with Store.open(store_url) as store:
        summary = store.import_bundle(bundle)
        loaded = store.load_bundle()
    assert {n: c.inserted for n, c in summary.tables.items()} == bundle.row_counts()
    assert summary.updated == summary.unchanged == 0
    _assert_bundles_equal(loaded, bundle)
    # extra columns come back after the spec columns, with their types
    assert loaded["patients"].columns[-2:] == ["mrn", "visits"]
    assert loaded["patients"].schema["visits"] == pl.Int64
    assert loaded["encounters"].filter(pl.col("encounter_id") == "E3")["cpt"].to_list() == [[]]


def test_bulk_written_rows_read_back_through_sqlalchemys_own_types(store_url: str) -> None:
    """The bulk path (COPY, plain tuples) stores what SQLAlchemy's types would: its own
    result processors read every kind of value back unchanged."""
    bundle = _full_bundle()
    with Store.open(store_url) as store:
        summary = store.import_bundle(bundle)
    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as connection:
            fees = INTERCHANGE_TABLES["fee_schedule"]
            amounts = connection.execute(sa.select(fees.c.amount)).scalars().all()
            encounters = INTERCHANGE_TABLES["encounters"]
            times = (
                connection.execute(
                    sa.select(encounters.c.start_time).order_by(encounters.c.encounter_id)
                )
                .scalars()
                .all()
            )
            people = INTERCHANGE_TABLES["patients"]
            qmb = (
                connection.execute(sa.select(people.c.qmb).order_by(people.c.patient_id))
                .scalars()
                .all()
            )
            stamps = connection.execute(sa.select(people.c.imported_at)).scalars().all()
    finally:
        engine.dispose()
    assert sorted(amounts) == [Decimal("12.3456"), Decimal("60.4900")]
    assert times == [dt.time(9, 30), None, dt.time(23, 59)]
    assert qmb == [True, False, None]
    assert {s.replace(tzinfo=None) for s in stamps} == {summary.created_at.replace(tzinfo=None)}


def test_a_coverage_overlapping_a_stored_one_is_refused_by_the_store_itself(
    store_url: str,
) -> None:
    """The store's own backstop (ingest refuses such a bundle first): the import is
    rolled back whole."""
    first = _full_bundle()
    with Store.open(store_url) as store:
        store.import_bundle(first)
        before = _stored_rows(store_url)
        overlapping = pl.DataFrame(
            {
                "patient_id": ["P1"],
                "payer_id": ["MCR"],
                "start_date": [D(2023, 6, 1)],
                "end_date": [None],
            },
            schema_overrides={"end_date": pl.Date},
        )
        with pytest.raises(StoreError, match="patient P1 with payer MCR from 2023-06-01"):
            store.import_bundle(Bundle.from_frames({"coverages": overlapping}))
        assert _stored_rows(store_url) == before
        assert len(store.imports()) == 1


def test_reimporting_the_same_bundle_changes_nothing(store_url: str) -> None:
    bundle = _full_bundle()
    with Store.open(store_url) as store:
        store.import_bundle(bundle)
        before = _stored_rows(store_url)
        again = store.import_bundle(bundle)
        assert again.inserted == again.updated == 0
        assert {n: c.unchanged for n, c in again.tables.items()} == bundle.row_counts()
        assert _stored_rows(store_url) == before  # imported_at untouched, no duplicates
        _assert_bundles_equal(store.load_bundle(), bundle)
        assert [i["inserted"] for i in store.imports()] == [sum(bundle.row_counts().values()), 0]


def test_a_newer_export_updates_changed_records_and_keeps_absent_ones(store_url: str) -> None:
    with Store.open(store_url) as store:
        store.import_bundle(_full_bundle())
        newer = Bundle.from_frames(
            {
                "patients": pl.DataFrame(
                    {
                        "patient_id": ["P1", "P4"],
                        "birth_date": [D(1950, 1, 2), D(1960, 7, 8)],
                        "zip": ["02135", None],  # P1 moved
                        "first_name": ["Ann", "Di"],
                        "last_name": ["Lee", "Po"],
                        "sex": ["F", None],
                        "part_b_start": [D(2015, 1, 1), None],
                        "qmb": [True, None],
                        "mrn": ["M-1", "M-4"],
                        "visits": [3, 0],
                    }
                ),
                # same natural key written differently (E119 = E11.9): an update, not a new row
                "conditions": pl.DataFrame(
                    {
                        "patient_id": ["P1"],
                        "icd10": ["e119"],
                        "onset_date": [D(2019, 4, 1)],
                        "chronic": [True],
                    }
                ),
                "encounters": _full_bundle()["encounters"].with_columns(
                    minutes=pl.when(pl.col("encounter_id") == "E1").then(35).otherwise("minutes")
                ),
            }
        )
        summary = store.import_bundle(newer)
        loaded = store.load_bundle()

    assert (summary.tables["patients"].inserted, summary.tables["patients"].updated) == (1, 1)
    assert summary.tables["patients"].unchanged == 0
    assert (summary.tables["conditions"].inserted, summary.tables["conditions"].updated) == (0, 1)
    enc = summary.tables["encounters"]
    assert (enc.inserted, enc.updated, enc.unchanged) == (0, 1, 2)

    patients = loaded["patients"]
    assert patients["patient_id"].to_list() == ["P1", "P2", "P3", "P4"]  # P2, P3 kept
    assert patients.filter(pl.col("patient_id") == "P1")["zip"].item() == "02135"
    conditions = loaded["conditions"]
    assert conditions.height == 3
    updated = conditions.filter(pl.col("onset_date") == D(2019, 4, 1))
    assert updated.select("icd10", "chronic").row(0) == ("e119", True)
    minutes = loaded["encounters"].filter(pl.col("encounter_id") == "E1")["minutes"].item()
    assert minutes == 35
    assert loaded["payers"].height == 2  # tables absent from the newer export are kept


def test_a_first_import_written_a_row_per_slice_hashes_rows_as_a_later_import_does(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first import makes each slice's row digests as the slice is written (PostgreSQL:
    while psycopg's writer thread sends the slices before); a second import digests the
    whole table to compare it with the store. One row per slice: every boundary is hit,
    and the same bundle again must find every stored digest equal."""
    monkeypatch.setattr(bulk, "BULK_ROWS", 1)
    bundle = _full_bundle()
    with Store.open(store_url) as store:
        first = store.import_bundle(bundle)
        assert {n: c.inserted for n, c in first.tables.items()} == bundle.row_counts()
        again = store.import_bundle(bundle)
        assert again.inserted == again.updated == 0
        assert {n: c.unchanged for n, c in again.tables.items()} == bundle.row_counts()
        _assert_bundles_equal(store.load_bundle(), bundle)


def test_repeated_keys_in_one_bundle_keep_the_last_row(store_url: str) -> None:
    bundle = Bundle.from_frames(
        {
            "measurements": pl.DataFrame(
                {
                    "patient_id": ["P1", "P1"],
                    "date": [D(2025, 1, 1), D(2025, 1, 1)],
                    "kind": ["bmi", "bmi"],
                    "value": [30.0, 31.0],
                }
            )
        }
    )
    with Store.open(store_url) as store:
        counts = store.import_bundle(bundle).tables["measurements"]
        assert (counts.inserted, counts.duplicates) == (1, 1)
        assert store.load_bundle()["measurements"]["value"].to_list() == [31.0]


def _primary_keys(url: str) -> dict[str, dict[str, Any]]:
    engine = sa.create_engine(url)
    try:
        inspector = sa.inspect(engine)
        return {n: inspector.get_pk_constraint(n) for n in INTERCHANGE_TABLES}
    finally:
        engine.dispose()


def test_a_first_import_that_builds_primary_keys_after_its_rows_keeps_them_enforced(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From ``KEY_BUILT_AFTER_ROWS`` rows a first import into an empty PostgreSQL table
    drops its primary key and builds it after the COPY: the keys are there, named as the
    models name them, and a later import still updates rows by key."""
    monkeypatch.setattr(bulk, "KEY_BUILT_AFTER_ROWS", 1)
    bundle = _full_bundle()
    with Store.open(store_url) as store:
        keys_before = _primary_keys(store_url)
        store.import_bundle(bundle)
        assert _primary_keys(store_url) == keys_before
        renamed = bundle["practitioners"].with_columns(pl.col("name").str.to_uppercase())
        again = store.import_bundle(Bundle.from_frames({"practitioners": renamed}))
        assert again.tables["practitioners"].updated == renamed.height
        assert again.inserted == 0


@pytest.mark.postgres
def test_a_large_first_import_into_postgresql_leaves_its_tables_analyzed(
    pg_schema_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_url = pg_schema_url
    monkeypatch.setattr(bulk, "KEY_BUILT_AFTER_ROWS", 1)
    with Store.open(store_url) as store:
        store.import_bundle(_full_bundle())
    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as connection:
            analyzed = connection.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stats WHERE schemaname = current_schema() "
                    "AND tablename = 'patients' AND attname = 'patient_id'"
                )
            ).scalar_one()
    finally:
        engine.dispose()
    assert analyzed == 1  # a column's statistics exist only once ANALYZE has run


def test_stored_rows_come_back_in_key_order_after_an_update_moved_one_to_the_end(
    store_url: str,
) -> None:
    bundle = _full_bundle()
    with Store.open(store_url) as store:
        store.import_bundle(bundle)
        first = bundle["practitioners"].sort("practitioner_id").head(1)
        renamed = first.with_columns(pl.col("name").str.to_uppercase())
        store.import_bundle(Bundle.from_frames({"practitioners": renamed}))  # a new row version
        loaded = store.load_bundle()
    ids = loaded["practitioners"]["practitioner_id"].to_list()
    assert ids == sorted(ids)
    assert loaded["practitioners"]["name"].to_list()[0] == renamed["name"].item()


def test_a_failed_first_import_that_dropped_a_primary_key_leaves_it_in_place(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "KEY_BUILT_AFTER_ROWS", 1)

    def fail(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk on fire")

    with Store.open(store_url) as store:
        keys_before = _primary_keys(store_url)
        monkeypatch.setattr(bulk, "insert_rows", fail)
        with pytest.raises(RuntimeError, match="disk on fire"):
            store.import_bundle(_full_bundle())
        assert _primary_keys(store_url) == keys_before
        assert store.imports() == []


@pytest.mark.parametrize("ids", [["E1", "E2", "E1"], ["E1", "E1", "E2"], ["E2", "E1", "E1"]])
def test_a_repeated_id_keeps_the_last_row_sorted_or_not(ids: list[str]) -> None:
    frame = pl.DataFrame({"encounter_id": ids, "patient_id": ["P1"] * 3, "minutes": [10, 20, 30]})
    rows, dropped = codec.to_store_frame(TABLES["encounters"], frame)
    last = {i: m for i, m in zip(ids, [10, 20, 30], strict=True)}
    assert dropped == 1
    assert dict(zip(rows["encounter_id"], rows["minutes"], strict=True)) == last


def test_a_failed_import_rolls_back_every_table(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _full_bundle()
    with Store.open(store_url) as store:
        store.import_bundle(first)
        before = _stored_rows(store_url)

        real = bundles.import_table
        calls: list[str] = []

        def fail_after_first_table(connection: Any, spec: Any, *args: Any) -> Any:
            calls.append(spec.name)
            if len(calls) > 1:
                raise RuntimeError("disk on fire")
            return real(connection, spec, *args)

        monkeypatch.setattr(bundles, "import_table", fail_after_first_table)
        changed = Bundle.from_frames(
            {
                name: frame.with_columns(pl.col(c).str.to_uppercase() for c in ["name"])
                if name == "practitioners"
                else frame
                for name, frame in first.tables.items()
            }
        )
        with pytest.raises(RuntimeError, match="disk on fire"):
            store.import_bundle(changed)
        assert calls == ["practitioners", "patients"]  # the first table was written
        assert _stored_rows(store_url) == before
        assert len(store.imports()) == 1
        _assert_bundles_equal(store.load_bundle(), first)


def test_a_failed_first_import_leaves_the_store_empty(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = _full_bundle()
    # a key column that cannot be stored makes the encounters table fail mid-import
    frames = dict(broken.tables)
    frames["encounters"] = frames["encounters"].with_columns(encounter_id=pl.lit(None, pl.String))
    with Store.open(store_url) as store:
        with pytest.raises(ValueError, match="encounters: 3 row"):
            store.import_bundle(Bundle(frames))
        assert all(frame.height == 0 for frame in store.load_bundle().tables.values())
        assert store.imports() == []


def test_evaluation_runs_are_recorded_and_listed(store_url: str) -> None:
    with Store.open(store_url) as store:
        assert store.runs() == []
        first = store.record_run(
            "2025-03", D(2025, 3, 31), "rules-1", {"patients": 3, "encounters": 3}, 4, 2, "a"
        )
        second = store.record_run("2025-04", D(2025, 4, 15), "rules-2", {}, 0, 7, "b")
        runs = store.runs()
    assert [r["run_id"] for r in runs] == [first, second]
    assert runs[0] | {"created_at": None} == {
        "run_id": first,
        "month": "2025-03",
        "as_of": D(2025, 3, 31),
        "created_at": None,
        "rule_set_version": "rules-1",
        "input_row_counts": {"patients": 3, "encounters": 3},
        "line_count": 4,
        "gap_count": 2,
        "source": "a",
        "allow_unverified": False,
        "unverified_parameters": [],
    }
    assert runs[0]["created_at"].tzinfo is not None
    assert runs[0]["created_at"] <= runs[1]["created_at"]


def test_a_run_month_must_be_year_and_month(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'x.db'}") as store:
        for month in ("2025-3", "March", "2025-13"):
            with pytest.raises(ValueError, match="YYYY-MM"):
                store.record_run(month, D(2025, 3, 31), "r", {}, 0, 0, "s")


def test_the_migrations_match_the_models(store_url: str) -> None:
    with Store.open(store_url) as store, store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_the_newest_migration_a_store_is_checked_against_is_alembics_head() -> None:
    from alembic.script import ScriptDirectory

    from billing_engine.store import connect

    scripts = ScriptDirectory.from_config(connect.alembic_config())
    assert scripts.get_current_head() == connect.HEAD_REVISION


def test_a_store_at_the_newest_migration_opens_without_loading_the_migration_tool(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with Store.open(url) as store:  # created and migrated
        store.import_bundle(_full_bundle())
    script = (
        "import sys\n"
        "from billing_engine.store import Store\n"
        f"with Store.open({url!r}, create=False) as store:\n"
        "    patients = store.load_bundle()['patients'].height\n"
        "print(patients, any(m.split('.')[0] == 'alembic' for m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == [str(_full_bundle()["patients"].height), "False"]


def test_reopening_a_store_keeps_its_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'kept.db'}"
    with Store.open(url) as store:
        store.import_bundle(_full_bundle())
    with Store.open(url) as store:  # migrations already at head: nothing happens
        _assert_bundles_equal(store.load_bundle(), _full_bundle())


def test_the_default_database_follows_billing_db_then_xdg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BILLING_DB", "sqlite:///elsewhere.db")
    assert default_db_url() == "sqlite:///elsewhere.db"
    monkeypatch.delenv("BILLING_DB")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_db_url() == f"sqlite:///{tmp_path / 'data' / 'billing-engine' / 'billing.db'}"
    assert (tmp_path / "data" / "billing-engine").is_dir()
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    expected = tmp_path / "home" / ".local" / "share" / "billing-engine" / "billing.db"
    assert default_db_url() == f"sqlite:///{expected}"


def test_an_unusable_database_raises_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open the database"):
        Store.open(f"sqlite:///{tmp_path / 'no' / 'such' / 'folder' / 'x.db'}")
    with pytest.raises(StoreError, match="unsupported database"):
        Store.open("mysql+pymysql://u:secret@localhost/x")


@pytest.mark.slow
def test_importing_100k_encounters_takes_seconds(tmp_path: Path) -> None:
    n_patients, n_encounters = 2_000, 100_000
    patients = pl.DataFrame({"i": pl.int_range(n_patients, eager=True)}).select(
        patient_id=pl.format("P{}", pl.col("i")),
        birth_date=pl.date(1940, 1, 1) + pl.duration(days=pl.col("i")),
    )
    encounters = pl.DataFrame({"i": pl.int_range(n_encounters, eager=True)}).select(
        encounter_id=pl.format("E{}", pl.col("i")),
        patient_id=pl.format("P{}", pl.col("i") % n_patients),
        date=pl.date(2025, 1, 1) + pl.duration(days=pl.col("i") % 365),
        start_time=pl.time(9, 0),
        minutes=(pl.col("i") % 40).cast(pl.Int64),
        performer_id=pl.lit("RN1"),
        kind=pl.lit("care_management"),
        program=pl.lit("ccm"),
        activities=pl.lit(["care_coordination", "education"]),
    )
    bundle = Bundle.from_frames({"patients": patients, "encounters": encounters})
    with Store.open(f"sqlite:///{tmp_path / 'big.db'}") as store:
        start = time.perf_counter()
        summary = store.import_bundle(bundle)
        first = time.perf_counter() - start
        start = time.perf_counter()
        again = store.import_bundle(bundle)
        second = time.perf_counter() - start
    assert summary.inserted == again.unchanged == n_patients + n_encounters
    assert first < 20, f"first import took {first:.1f}s"
    assert second < 10, f"re-import took {second:.1f}s"


# --------------------------------------------------------------------------- CLI


def _write_csv_bundle(folder: Path, *, broken: bool = False) -> Path:
    folder.mkdir()
    (folder / "practitioners.csv").write_text(
        "practitioner_id,name,npi,credential\nMD1,Dr A,1234567893,MD\nRN1,Nurse B,,RN\n"
    )
    birth = "" if broken else ",birth_date"
    rows = ["P1", "P2"] if broken else ["P1,1950-01-02", "P2,1948-05-06"]
    (folder / "patients.csv").write_text(f"patient_id{birth}\n" + "\n".join(rows) + "\n")
    (folder / "encounters.csv").write_text(
        "encounter_id,patient_id,date,start_time,minutes,performer_id,"
        "billing_practitioner_id,kind,program,activities\n"
        "E1,P1,2025-03-03,09:30,25,RN1,MD1,care_management,ccm,care_coordination;education\n"
        "E2,P2,2025-03-04,,20,RN1,MD1,care_management,ccm,\n"
    )
    return folder


def _invoke(*args: str) -> Any:
    from cli.main import billing

    return CliRunner().invoke(billing, list(args))


def test_billing_import_prints_a_summary_and_exits_0(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BILLING_DB", raising=False)
    bundle = _write_csv_bundle(tmp_path / "bundle")
    result = _invoke("import", str(bundle), "--db", store_url)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.split() == ["patients", "2", "0", "0"] for line in lines), result.output
    assert any(line.split() == ["encounters", "2", "0", "0"] for line in lines), result.output
    assert "imported" in lines[0]

    again = _invoke("import", str(bundle), "--db", store_url)
    assert again.exit_code == 0, again.output
    assert any(line.split() == ["total", "0", "0", "6"] for line in again.output.splitlines())
    with Store.open(store_url) as store:
        assert store.load_bundle().row_counts()["encounters"] == 2


def test_billing_import_reads_the_database_from_billing_db(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("BILLING_DB", url)
    result = _invoke("import", str(_write_csv_bundle(tmp_path / "bundle")))
    assert result.exit_code == 0, result.output
    assert url in result.output
    with Store.open(url) as store:
        assert store.load_bundle().row_counts()["patients"] == 2


def test_the_database_location_is_shown_without_its_password(tmp_path: Path) -> None:
    url = "postgresql+psycopg://u:hunter2@localhost:1/x"
    assert display_url(url) == "postgresql+psycopg://u:***@localhost:1/x"
    with pytest.raises(StoreError) as refused:  # nothing listens on port 1
        Store.open(url)
    assert "hunter2" not in str(refused.value)
    # a refused bundle never reaches the database, nor prints its URL
    result = _invoke("import", str(tmp_path), "--db", url)
    assert result.exit_code == 2
    assert "hunter2" not in result.output


def test_a_broken_bundle_exits_non_zero_and_writes_nothing(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BILLING_DB", raising=False)
    bundle = _write_csv_bundle(tmp_path / "bundle", broken=True)
    result = _invoke("import", str(bundle), "--db", store_url)
    assert result.exit_code != 0
    assert "birth_date" in result.output
    if store_url.startswith("sqlite"):
        assert not (tmp_path / "store.db").exists()  # the database was not even opened
    with Store.open(store_url) as store:
        assert all(frame.height == 0 for frame in store.load_bundle().tables.values())
        assert store.imports() == []


@contextmanager
def _file_store(path: Path) -> Iterator[sa.Engine]:
    """An engine on a SQLite file holding ``_full_bundle()``."""
    with Store.open(f"sqlite:///{path}") as store:
        store.import_bundle(_full_bundle())
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        yield engine
    finally:
        engine.dispose()


def test_a_sqlite_file_read_whole_by_connectorx_equals_the_cursors_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a folder with spaces" / "store.db"
    path.parent.mkdir()
    with _file_store(path) as engine:
        assert whole_store.sqlite_file(engine) == path.resolve()
        fast = bundles.load_bundle(engine, "fast")
        monkeypatch.setattr(whole_store, "_connectorx_reader", lambda: None)
        slow = bundles.load_bundle(engine, "cursor")
    for name in TABLES:  # same rows, same dtypes, same order
        assert_frame_equal(fast[name], slow[name])
    _assert_bundles_equal(fast, _full_bundle())


def test_a_large_sqlite_table_read_in_rowid_ranges_comes_back_as_the_cursor_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "store.db"
    pieces: list[int] = []
    original = whole_store._rowid_ranges

    def counted(*args: Any) -> list[sa.Select[Any]]:
        ranges = original(*args)
        pieces.append(len(ranges))
        return ranges

    with _file_store(path) as engine:
        monkeypatch.setattr(whole_store, "ROWID_RANGE_ROWS", 1)  # every table of 2+ rows in ranges
        monkeypatch.setattr(whole_store, "_rowid_ranges", counted)
        ranged = bundles.load_bundle(engine, "ranges")
        monkeypatch.setattr(whole_store, "_connectorx_reader", lambda: None)
        slow = bundles.load_bundle(engine, "cursor")
    assert max(pieces) > 1
    for name in TABLES:  # same rows, same dtypes, same order
        assert_frame_equal(ranged[name], slow[name])


def test_a_tables_rowid_range_is_found_at_the_b_trees_ends_without_scanning_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.db"
    asked: list[str] = []
    with _file_store(path):
        watch = sqlite3.connect(path)
        try:
            watch.set_trace_callback(asked.append)
            ranges = whole_store._rowid_ranges(watch, _patients_select()[0])
            watch.set_trace_callback(None)
            plans = [
                detail
                for statement in asked
                for *_, detail in watch.execute("EXPLAIN QUERY PLAN " + statement).fetchall()
            ]
        finally:
            watch.close()
    assert ranges and asked
    assert not [p for p in plans if p.startswith("SCAN") and p != "SCAN CONSTANT ROW"], plans
    assert any(p.startswith("SEARCH patients") for p in plans), plans


def test_each_table_of_a_whole_store_read_is_finished_once_as_soon_as_it_is_read(
    tmp_path: Path,
) -> None:
    finished: list[str] = []

    def finish(name: str, frame: pl.DataFrame) -> pl.DataFrame:
        finished.append(name)
        return frame.with_columns(pl.lit(name).alias("finished_by"))

    selects = {"patients": _patients_select(), "payers": _payers_select()}
    with _file_store(tmp_path / "store.db") as engine:
        frames = whole_store.read_whole_store(engine, selects, finish)
    assert finished == ["patients", "payers"]
    assert frames["payers"]["finished_by"].unique().to_list() == ["payers"]


def test_stored_rows_out_of_their_key_order_come_back_sorted_and_rows_in_order_as_they_are() -> (
    None
):
    spec = TABLES["payers"]
    stored = pl.DataFrame(
        {c: [None, None, None] for c in codec.stored_schema(spec)},
        schema=codec.stored_schema(spec),
    ).with_columns(pl.Series("payer_id", ["B", "C", "A"]))
    assert codec.from_frame(spec, stored)["payer_id"].to_list() == ["A", "B", "C"]
    in_order = stored.sort("payer_id")
    assert codec.from_frame(spec, in_order)["payer_id"].to_list() == ["A", "B", "C"]


def test_a_memory_database_or_a_sqlite_uri_is_not_read_by_another_connection() -> None:
    for url in ("sqlite://", "sqlite:///:memory:", "sqlite:///file:x.db?mode=ro&uri=true"):
        assert whole_store.sqlite_file(sa.create_engine(url)) is None
    assert whole_store.sqlite_file(sa.create_engine("postgresql+psycopg://u@h/db")) is None


def _rename_patient_on_read(
    path: Path, monkeypatch: pytest.MonkeyPatch, every_attempt: bool
) -> list[str]:
    """Commit a change from another connection while the first table is read (on every
    attempt, or the first only); returns the names committed, in order."""
    original = whole_store._read_arrow
    committed: list[str] = []

    def read_and_commit(*args: Any) -> pl.DataFrame | None:
        if every_attempt or not committed:
            name = f"Renamed {len(committed)}"
            with sqlite3.connect(path) as other:
                other.execute("UPDATE patients SET first_name = ? WHERE patient_id = 'P1'", [name])
            committed.append(name)
        return original(*args)

    monkeypatch.setattr(whole_store, "READ_THREADS", 1)
    monkeypatch.setattr(whole_store, "_read_arrow", read_and_commit)
    return committed


def test_a_commit_during_a_whole_store_read_makes_it_read_everything_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "store.db"
    with _file_store(path) as engine:
        committed = _rename_patient_on_read(path, monkeypatch, every_attempt=False)
        frames = whole_store.read_whole_store(
            engine, {"patients": _patients_select(), "payers": _payers_select()}
        )
    assert committed == ["Renamed 0"]
    assert "Renamed 0" in frames["patients"]["first_name"].to_list()


def test_a_store_changing_during_every_attempt_is_read_in_one_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "store.db"
    with _file_store(path) as engine:
        committed = _rename_patient_on_read(path, monkeypatch, every_attempt=True)
        loaded = bundles.load_bundle(engine, "changing")  # at last one transaction reads it
    assert len(committed) == whole_store.SNAPSHOT_ATTEMPTS * len(TABLES)
    names = loaded["patients"].filter(pl.col("patient_id") == "P1")["first_name"].to_list()
    assert names == [committed[-1]]


def _patients_select() -> tuple[sa.Select[Any], dict[str, pl.DataType]]:
    table = INTERCHANGE_TABLES["patients"]
    return sa.select(table.c.patient_id, table.c.first_name), {
        "patient_id": pl.String(),
        "first_name": pl.String(),
    }


def _payers_select() -> tuple[sa.Select[Any], dict[str, pl.DataType]]:
    table = INTERCHANGE_TABLES["payers"]
    return sa.select(table.c.payer_id), {"payer_id": pl.String()}


def test_items_made_ahead_by_a_thread_come_in_order_and_its_error_after_them() -> None:
    assert list(whole_store._made_ahead(iter(range(50)))) == list(range(50))

    def failing() -> Iterator[int]:
        yield 1
        yield 2
        raise StoreError("the server went away")

    received: list[int] = []
    with pytest.raises(StoreError, match="went away"):
        received.extend(whole_store._made_ahead(failing()))
    assert received == [1, 2]


def test_a_consumer_that_stops_early_stops_the_thread_making_items_ahead() -> None:
    made: list[int] = []

    def counted() -> Iterator[int]:
        for item in range(1_000):
            made.append(item)
            yield item

    ahead = whole_store._made_ahead(counted())
    assert [next(ahead) for _ in range(3)] == [0, 1, 2]
    ahead.close()  # joins the thread
    assert len(made) <= 3 + whole_store.AHEAD_ITEMS + 1


def test_a_whole_store_read_that_fails_on_a_table_raises_that_error_and_leaves_the_store_usable(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "COPY_OUT_BYTES", 1)  # a block a row: stopped inside a COPY
    monkeypatch.setattr(whole_store, "AHEAD_ITEMS", 1)

    def finish(name: str, frame: pl.DataFrame) -> pl.DataFrame:
        if name == "patients":  # the tables may come in either order (two connections)
            raise ValueError(f"cannot convert {name}")
        return frame

    with Store.open(store_url) as store:
        store.import_bundle(_full_bundle())
        selects = {"patients": _patients_select(), "payers": _payers_select()}
        with pytest.raises(ValueError, match="cannot convert patients"):
            whole_store.read_whole_store(store.engine, selects, finish)
        # its reading threads ended before its connections closed, not when collected
        assert not [t for t in threading.enumerate() if t.name == "made-ahead"]
        assert store.load_bundle()["patients"].height == _full_bundle()["patients"].height


def test_items_of_several_streams_made_ahead_keep_each_streams_order() -> None:
    letters, numbers = iter("abcdefgh"), iter(range(40))
    received = list(whole_store._made_ahead(letters, numbers))
    assert [x for x in received if isinstance(x, str)] == list("abcdefgh")
    assert [x for x in received if isinstance(x, int)] == list(range(40))


@pytest.mark.postgres
def test_a_postgresql_store_read_on_two_connections_equals_the_read_on_one(
    pg_schema_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Store.open(pg_schema_url) as store:
        store.import_bundle(_full_bundle())
        monkeypatch.setattr(whole_store, "READ_THREADS", 1)
        one = store.load_bundle()
        monkeypatch.setattr(whole_store, "READ_THREADS", 2)
        with store.engine.connect() as connection:
            selects = {n: (bundles._current(n, ["extra"]), {"extra": pl.String()}) for n in TABLES}
            groups = whole_store._by_size(connection, selects, 2)
        two = store.load_bundle()
    assert len(groups) == 2
    assert sorted(name for group in groups for name in group) == sorted(TABLES)
    for name in TABLES:
        assert_frame_equal(two[name], one[name])


@pytest.mark.postgres
def test_a_commit_while_a_postgresql_store_is_read_on_two_connections_is_seen_by_neither(
    pg_schema_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second connection takes the first's exported snapshot: a commit made after
    the first connection's snapshot began is in no table read."""
    original = whole_store._by_size
    engine = sa.create_engine(pg_schema_url)

    def size_then_commit(*args: Any) -> list[list[str]]:
        groups = original(*args)  # the first connection's snapshot is taken by now
        with engine.begin() as other:
            other.execute(sa.text("UPDATE patients SET first_name = 'Later'"))
            other.execute(sa.text("UPDATE payers SET name = 'Later'"))
        return groups

    try:
        with Store.open(pg_schema_url) as store:
            store.import_bundle(_full_bundle())
            monkeypatch.setattr(whole_store, "READ_THREADS", 2)
            monkeypatch.setattr(whole_store, "_by_size", size_then_commit)
            loaded = store.load_bundle()
            monkeypatch.setattr(whole_store, "_by_size", original)
            after = store.load_bundle()
    finally:
        engine.dispose()
    assert "Later" not in loaded["patients"]["first_name"].to_list()
    assert "Later" not in loaded["payers"]["name"].to_list()
    assert set(after["patients"]["first_name"].to_list()) == {"Later"}
    assert set(after["payers"]["name"].to_list()) == {"Later"}
