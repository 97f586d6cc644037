"""The close's claim files and commands as a billing office runs them: claims.csv, one
837P per payer (validated by pyx12), manifest.json, re-exports, the CLI's exit codes and
--json, and the demo's close."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from billing_engine.calendar import Month
from billing_engine.services.close import commands as cmd
from billing_engine.services.close import export as close_export
from billing_engine.store import Store
from billing_engine.store.close import CloseRefused
from cli.main import billing
from tests.close_support import MONTH, open_store
from tests.x12_check import assert_valid_837p

M = Month.parse(MONTH)


@pytest.fixture
def locked(store_url: str) -> Store:
    store = open_store(store_url)
    cmd.start(store, M, user="amy")
    cmd.approve(store, M, user="amy", all_pending=True)
    cmd.lock(store, M, user="amy")
    yield store
    store.close()


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_export_writes_claims_csv_an_837p_per_payer_and_a_manifest(
    locked: Store, tmp_path: Path
) -> None:
    outcome = close_export.export(locked, M, user="bo", out=tmp_path / "out")
    out = tmp_path / "out"
    rows = _rows(out / "claims.csv")
    approved = cmd.review(locked, M, status="approved")
    assert len(rows) == approved.height == outcome.data["lines"]
    payers = sorted({r["payer_id"] for r in rows})
    assert sorted(p.name for p in out.glob("*.x12")) == [f"837p-{p}.x12" for p in payers]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["exported_by"] == "bo" and manifest["cycle"] == 1
    for entry in manifest["files"]:
        data = (out / entry["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    with locked.engine.connect() as c:
        state = c.execute(sa.text("SELECT state FROM close_months")).scalar_one()
    assert state == "exported"


def test_every_837p_file_the_export_writes_passes_the_x12_validator(
    locked: Store, tmp_path: Path
) -> None:
    close_export.export(locked, M, user="bo", out=tmp_path)
    files = sorted(tmp_path.glob("837p-*.x12"))
    assert files
    for path in files:
        text = path.read_text()
        assert_valid_837p(text)
        assert "GS*HC*" in text and "*005010X222A1~" in text


def test_each_claim_in_the_837p_carries_its_id_total_and_lines(
    locked: Store, tmp_path: Path
) -> None:
    close_export.export(locked, M, user="bo", out=tmp_path)
    rows = _rows(tmp_path / "claims.csv")
    text = "".join(p.read_text() for p in tmp_path.glob("837p-*.x12"))
    claims: dict[str, float] = {}
    for r in rows:
        claims[r["claim_id"]] = claims.get(r["claim_id"], 0.0) + float(r["charge"])
    for claim_id, total in claims.items():
        segment = next(s for s in text.split("~\n") if s.startswith(f"CLM*{claim_id}*"))
        assert float(segment.split("*")[2]) == pytest.approx(total)
    assert text.count("LX*") == len(rows)
    assert {r["line_id"] for r in rows} <= {
        s.removeprefix("REF*6R*") for s in text.split("~\n") if s.startswith("REF*6R*")
    }


def test_exporting_the_same_cycle_again_writes_byte_identical_files(
    locked: Store, tmp_path: Path
) -> None:
    close_export.export(locked, M, user="bo", out=tmp_path / "a")
    again = close_export.export(locked, M, user="cy", out=tmp_path / "b")
    assert "same bytes" in again.summary
    first = {p.name: p.read_bytes() for p in (tmp_path / "a").iterdir()}
    second = {p.name: p.read_bytes() for p in (tmp_path / "b").iterdir()}
    assert first == second


def test_control_numbers_are_unique_across_every_file_of_the_store(
    locked: Store, tmp_path: Path
) -> None:
    close_export.export(locked, M, user="bo", out=tmp_path)
    with locked.engine.connect() as c:
        numbers = c.execute(sa.text("SELECT control_number FROM export_batches")).scalars().all()
    assert len(numbers) == len(set(numbers)) == len(list(tmp_path.glob("*.x12")))
    for path in tmp_path.glob("*.x12"):
        isa = path.read_text().split("~")[0].split("*")
        assert int(isa[13]) in numbers


def test_export_is_refused_on_an_open_month_and_into_another_cycles_folder(
    locked: Store, tmp_path: Path
) -> None:
    cmd.reopen(locked, M, user="amy", reason="recheck")
    with pytest.raises(CloseRefused, match="open"):
        close_export.export(locked, M, user="bo", out=tmp_path / "x")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "manifest.json").write_text('{"month": "2025-11", "cycle": 1}')
    cmd.lock(locked, M, user="amy")
    with pytest.raises(cmd.BadCloseInput, match="another close"):
        close_export.export(locked, M, user="bo", out=tmp_path / "other")


# -- the commands as a person types them -------------------------------------------------


def _billing(*args: object) -> Result:
    return CliRunner().invoke(billing, [str(a) for a in args])


def test_the_close_commands_run_end_to_end_from_the_command_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    open_store(url).close()
    db = ("--db", url, "--user", "amy")
    started = _billing("close", "start", MONTH, *db, "--json")
    assert started.exit_code == 0, started.output
    assert json.loads(started.output)["cycle"] == 1
    refused = _billing("close", "lock", MONTH, *db)
    assert refused.exit_code == 1 and "still pending" in refused.output
    assert _billing("close", "approve", MONTH, "--all", *db).exit_code == 0
    assert _billing("close", "lock", MONTH, *db).exit_code == 0
    exported = _billing("close", "export", MONTH, "--out", tmp_path / "claims", *db)
    assert exported.exit_code == 0, exported.output
    assert "exported" in exported.output and (tmp_path / "claims" / "claims.csv").is_file()
    status = json.loads(_billing("close", "status", MONTH, "--db", url, "--json").output)
    assert status["months"][0]["state"] == "exported"
    log = json.loads(_billing("close", "log", "--db", url, "--json").output)
    assert [e["action"] for e in log["entries"]] == ["start", "approve", "lock", "export"]
    assert {e["user"] for e in log["entries"]} == {"amy"}


def test_review_writes_the_lines_to_a_csv_file_with_status_columns_first(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    open_store(url).close()
    assert _billing("close", "start", MONTH, "--db", url).exit_code == 0
    out = tmp_path / "review.csv"
    result = _billing("close", "review", MONTH, "--db", url, "--out", out)
    assert result.exit_code == 0, result.output
    rows = _rows(out)
    assert list(rows[0])[:4] == ["line_id", "status", "hold_reason", "edit_failures"]
    assert {r["status"] for r in rows} == {"pending"}


def test_bad_input_to_a_close_command_exits_2_and_a_refusal_exits_1(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    open_store(url).close()
    assert _billing("close", "start", "2025-13", "--db", url).exit_code == 2
    assert _billing("close", "lock", MONTH, "--db", url).exit_code == 1  # no close yet
    assert _billing("close", "start", MONTH, "--db", url).exit_code == 0
    unknown = _billing("close", "hold", MONTH, "--line", "nope", "--reason", "x", "--db", url)
    assert unknown.exit_code == 2 and "no such line" in unknown.output
    no_reason = _billing("close", "hold", MONTH, "--line", "x", "--db", url)
    assert no_reason.exit_code == 2


def test_the_demo_runs_the_close_and_says_where_the_claim_files_are(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    result = _billing("demo", "--db", url, "--patients", "150")
    assert result.exit_code == 0, result.output
    assert "Monthly close of 2025-12:" in result.output
    folder = tmp_path / "demo-claims" / "2025-12-cycle1"
    assert f"Claim files in {folder}" in result.output
    assert "lines held" in result.output
    for path in folder.glob("837p-*.x12"):
        assert_valid_837p(path.read_text())
    with Store.open(url) as store, store.engine.connect() as c:
        state = c.execute(sa.text("SELECT state FROM close_months")).scalar_one()
    assert state == "exported"
