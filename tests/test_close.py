"""The monthly close: states and refusals, review decisions, lock with claim edits, claims,
reopen, status and the audit log (../shared/spec/close.md), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from billing_engine.calendar import Month
from billing_engine.services.close import commands as cmd
from billing_engine.services.close import status as close_status
from billing_engine.services.close.evaluation import evaluate_from_store
from billing_engine.store import Store
from billing_engine.store.close import ChangedConcurrently, CloseRefused
from tests.close_support import MONTH, open_store, practice_bundle

M = Month.parse(MONTH)


@pytest.fixture
def store(store_url: str) -> Store:
    opened = open_store(store_url)
    yield opened
    opened.close()


def _claims(store: Store) -> pl.DataFrame:
    with store.engine.connect() as c:
        rows = c.execute(sa.text("SELECT * FROM claims ORDER BY claim_id")).mappings().all()
    return pl.DataFrame([dict(r) for r in rows], infer_schema_length=None)


def _claim_lines(store: Store) -> pl.DataFrame:
    with store.engine.connect() as c:
        rows = c.execute(sa.text("SELECT * FROM claim_lines")).mappings().all()
    return pl.DataFrame([dict(r) for r in rows], infer_schema_length=None)


def _month_state(store: Store) -> tuple[str, int]:
    with store.engine.connect() as c:
        row = c.execute(sa.text("SELECT state, cycle FROM close_months")).one()
    return str(row[0]), int(row[1])


def test_start_saves_every_claim_line_of_the_month_as_pending(store: Store) -> None:
    _, result = evaluate_from_store(store, M, None)
    outcome = cmd.start(store, M, user="amy")
    lines = cmd.review(store, M)
    assert lines.height == result.claim_lines.height == outcome.data["added"] > 0
    assert set(lines["status"]) == {"pending"}
    assert lines["line_id"].n_unique() == lines.height
    assert _month_state(store) == ("open", 1)


def test_a_close_line_keeps_the_evidence_rule_and_amounts_as_evaluated(store: Store) -> None:
    _, result = evaluate_from_store(store, M, None)
    cmd.start(store, M, user="amy")
    kept = cmd.review(store, M).sort("patient_id", "date_of_service", "code")
    evaluated = result.claim_lines.sort("patient_id", "date_of_service", "code")
    for column in ("evidence", "rule", "allowed_amount", "payer_amount", "code", "units"):
        assert kept[column].to_list() == evaluated[column].to_list(), column


def test_starting_again_while_open_keeps_each_lines_id_and_decision(store: Store) -> None:
    cmd.start(store, M, user="amy")
    first = cmd.review(store, M)
    some = first["line_id"].head(3).to_list()
    cmd.hold(store, M, user="amy", line_ids=some[:1], reason="chart unsigned")
    cmd.approve(store, M, user="amy", line_ids=some[1:])
    again = cmd.start(store, M, user="bob")
    assert again.data["kept"] == first.height and again.data["added"] == 0
    after = cmd.review(store, M)
    assert sorted(after["line_id"]) == sorted(first["line_id"])
    decided = dict(zip(after["line_id"], after["status"], strict=True))
    assert decided[some[0]] == "held" and decided[some[1]] == decided[some[2]] == "approved"


def test_a_line_no_longer_supported_is_dropped_when_started_again(store: Store) -> None:
    cmd.start(store, M, user="amy")
    line = cmd.review(store, M, code="99490").row(0, named=True)
    evidence = [e for e in line["evidence"].split(";") if e.startswith("E")]
    encounters = store.load_bundle()["encounters"].filter(pl.col("encounter_id").is_in(evidence))
    corrected = encounters.with_columns(pl.lit(1).cast(pl.Int64).alias("minutes"))
    store.import_bundle(_bundle_of(store, encounters=corrected))
    again = cmd.start(store, M, user="amy")
    assert line["line_id"] in again.data["dropped"]
    assert line["line_id"] not in cmd.review(store, M)["line_id"].to_list()


def _bundle_of(store: Store, **tables: pl.DataFrame) -> object:
    from billing_engine.io.bundle import Bundle

    return Bundle.from_frames(tables)


def test_lock_is_refused_while_a_line_is_pending_and_changes_nothing(store: Store) -> None:
    cmd.start(store, M, user="amy")
    with pytest.raises(CloseRefused, match="still pending"):
        cmd.lock(store, M, user="amy")
    assert _month_state(store) == ("open", 1)
    assert _claims(store).height == 0


def test_approve_all_takes_only_the_pending_lines(store: Store) -> None:
    cmd.start(store, M, user="amy")
    held = cmd.review(store, M)["line_id"][0]
    cmd.hold(store, M, user="amy", line_ids=[held], reason="check the consent")
    outcome = cmd.approve(store, M, user="amy", all_pending=True)
    lines = cmd.review(store, M)
    assert outcome.data["lines"] == lines.height - 1
    assert lines.filter(pl.col("line_id") == held)["status"].item() == "held"
    cmd.approve(store, M, user="amy", line_ids=[held])
    assert set(cmd.review(store, M)["status"]) == {"approved"}


def test_a_hold_needs_a_reason_and_a_line_that_exists(store: Store) -> None:
    cmd.start(store, M, user="amy")
    line = cmd.review(store, M)["line_id"][0]
    with pytest.raises(cmd.BadCloseInput, match="reason"):
        cmd.hold(store, M, user="amy", line_ids=[line], reason="  ")
    with pytest.raises(cmd.BadCloseInput, match="no such line"):
        cmd.hold(store, M, user="amy", line_ids=["L000000-1-999999"], reason="x")


def test_lock_numbers_claims_and_each_claim_totals_the_sum_of_its_lines(store: Store) -> None:
    cmd.start(store, M, user="amy")
    cmd.approve(store, M, user="amy", all_pending=True)
    outcome = cmd.lock(store, M, user="amy")
    claims, lines = _claims(store), _claim_lines(store)
    assert outcome.data["claims"] == claims.height > 0
    assert lines.height == cmd.review(store, M, status="approved").height
    sums = lines.group_by("claim_id").agg(pl.col("charge").sum(), pl.len().alias("n"))
    joined = claims.join(sums, on="claim_id")
    assert (joined["total_charge"] == joined["charge"]).all()
    assert (joined["line_count"] == joined["n"]).all()
    assert claims["claim_id"].n_unique() == claims.height
    assert set(claims["frequency"]) == {"1"}
    assert _month_state(store) == ("locked", 1)


def test_a_claim_is_one_patient_payer_and_billing_practitioner(store: Store) -> None:
    cmd.start(store, M, user="amy")
    cmd.approve(store, M, user="amy", all_pending=True)
    cmd.lock(store, M, user="amy")
    claims = _claims(store)
    keys = claims.select("patient_id", "payer_id", "billing_practitioner_id")
    assert keys.unique().height == claims.height


def test_a_line_that_fails_a_claim_edit_is_held_with_its_reason(store_url: str) -> None:
    bundle = practice_bundle()
    coverages = bundle["coverages"].with_columns(pl.lit(None, pl.String).alias("member_id"))
    defective = replace(bundle, tables={**bundle.tables, "coverages": coverages})
    with open_store(store_url, defective) as s:
        cmd.start(s, M, user="amy")
        cmd.approve(s, M, user="amy", all_pending=True)
        outcome = cmd.lock(s, M, user="amy")
        held = cmd.review(s, M, status="held")
        assert outcome.data["claims"] == 0
        assert held.height == outcome.data["held_by_edits"] > 0
        assert set(held["hold_reason"]) == {"edit:member_id_missing"}
        assert all("member_id_missing" in f for f in held["edit_failures"])


def test_start_is_refused_on_a_locked_month(store: Store) -> None:
    cmd.start(store, M, user="amy")
    cmd.approve(store, M, user="amy", all_pending=True)
    cmd.lock(store, M, user="amy")
    with pytest.raises(CloseRefused, match="locked"):
        cmd.start(store, M, user="amy")
    with pytest.raises(CloseRefused, match="locked"):
        cmd.approve(store, M, user="amy", all_pending=True)


def test_reopen_voids_the_locks_claim_ids_and_the_next_lock_never_reuses_them(
    store: Store,
) -> None:
    cmd.start(store, M, user="amy")
    cmd.approve(store, M, user="amy", all_pending=True)
    cmd.lock(store, M, user="amy")
    first = set(_claims(store)["claim_id"])
    reopened = cmd.reopen(store, M, user="amy", reason="wrong modifier")
    assert set(reopened.data["voided_claims"]) == first
    assert _month_state(store) == ("open", 1)
    cmd.lock(store, M, user="amy")
    claims = _claims(store)
    second = set(claims.filter(pl.col("status") == "locked")["claim_id"])
    assert second and not (second & first)
    assert set(claims.filter(pl.col("claim_id").is_in(list(first)))["status"]) == {"voided"}


def test_reopen_needs_a_locked_month_and_a_reason(store: Store) -> None:
    cmd.start(store, M, user="amy")
    with pytest.raises(CloseRefused, match="open"):
        cmd.reopen(store, M, user="amy", reason="x")
    with pytest.raises(cmd.BadCloseInput):
        cmd.reopen(store, M, user="amy", reason="")


def test_a_command_on_a_month_without_a_close_is_refused(store: Store) -> None:
    with pytest.raises(CloseRefused, match="no close yet"):
        cmd.lock(store, M, user="amy")


def test_the_audit_log_has_one_row_per_action_with_user_and_reason(store: Store) -> None:
    cmd.start(store, M, user="amy")
    line = cmd.review(store, M)["line_id"][0]
    cmd.hold(store, M, user="bob", line_ids=[line], reason="needs a signature")
    cmd.approve(store, M, user="amy", all_pending=True)
    cmd.lock(store, M, user="cy")
    cmd.reopen(store, M, user="dee", reason="fix a code")
    entries = close_status.log(store, M).data["entries"]
    assert [(e["action"], e["user"]) for e in entries] == [
        ("start", "amy"),
        ("hold", "bob"),
        ("approve", "amy"),
        ("lock", "cy"),
        ("reopen", "dee"),
    ]
    assert entries[1]["ids"] == [line] and entries[1]["reason"] == "needs a signature"
    assert entries[4]["reason"] == "fix a code"
    assert all(e["at"].endswith("Z") for e in entries)


def test_the_audit_log_refuses_updates_and_deletes(store: Store) -> None:
    cmd.start(store, M, user="amy")
    for statement in ("UPDATE audit_log SET reason = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.engine.begin() as c:
            c.execute(sa.text(statement))
    assert len(close_status.log(store, M).data["entries"]) == 1


def test_status_counts_lines_by_status_and_claims(store: Store) -> None:
    cmd.start(store, M, user="amy")
    cmd.approve(store, M, user="amy", all_pending=True)
    cmd.lock(store, M, user="amy")
    month = close_status.status(store, M).data["months"][0]
    claims = _claims(store)
    assert month["state"] == "locked" and month["claims"] == claims.height
    assert month["lines"] == {"approved": cmd.review(store, M).height}
    assert month["totals"]["claimed_allowed"] == f"{claims['allowed_amount'].sum():.2f}"


def test_status_shows_an_encounter_imported_after_the_lock_as_a_late_entry(
    store: Store,
) -> None:
    cmd.start(store, M, user="amy")
    cmd.approve(store, M, user="amy", all_pending=True)
    cmd.lock(store, M, user="amy")
    assert close_status.status(store, M).data["months"][0]["late_entries"]["rows"] == 0
    late = (
        store.load_bundle()["encounters"]
        .head(2)
        .with_columns(
            pl.format("LATE{}", pl.int_range(pl.len())).alias("encounter_id"),
            pl.lit(dt.date(2025, 12, 30)).alias("date"),
        )
    )
    store.import_bundle(_bundle_of(store, encounters=late))
    month = close_status.status(store, M).data["months"][0]
    patients = late["patient_id"].n_unique()
    assert month["late_entries"] == {
        "rows": 2,
        "tables": {"encounters": 2},
        "patient_months": patients,
    }
    assert "late entries: 2 rows" in close_status.status(store, M).summary


def test_a_command_that_lost_a_race_is_refused_and_changes_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    cmd.start(store, M, user="amy")
    cmd.approve(store, M, user="amy", all_pending=True)
    real_load = Store.load_bundle

    def load_then_someone_else_locks(self: Store, *args: object) -> object:
        monkeypatch.setattr(Store, "load_bundle", real_load)
        cmd.lock(store, M, user="bob")  # the other user's lock lands first
        cmd.reopen(store, M, user="bob", reason="the other user")
        return real_load(self, *args)

    monkeypatch.setattr(Store, "load_bundle", load_then_someone_else_locks)
    before = _claims(store)
    with pytest.raises(ChangedConcurrently, match="changed by someone else, run it again"):
        cmd.lock(store, M, user="amy")
    after = _claims(store)
    assert after.height == before.height + after.filter(pl.col("status") == "voided").height
    assert _month_state(store) == ("open", 1)


def test_the_same_store_file_holds_the_close_after_reopening_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'kept.db'}"
    with open_store(url) as s:
        cmd.start(s, M, user="amy")
    with Store.open(url) as s:
        assert close_status.status(s, M).data["months"][0]["state"] == "open"


# -- every transition of the state machine ------------------------------------------

TRANSITIONS = {
    # state before: {command: allowed}
    None: {"start": True, "approve": False, "hold": False, "lock": False, "export": False,
           "reopen": False},
    "open": {"start": True, "approve": True, "hold": True, "lock": True, "export": False,
             "reopen": False},
    "locked": {"start": False, "approve": False, "hold": False, "lock": False, "export": True,
               "reopen": True},
    "exported": {"start": True, "approve": False, "hold": False, "lock": False,
                 "export": True, "reopen": False},
}  # fmt: skip
AFTER = {
    ("open", "start"): "open",
    ("open", "approve"): "open",
    ("open", "hold"): "open",
    ("open", "lock"): "locked",
    ("locked", "export"): "exported",
    ("locked", "reopen"): "open",
    ("exported", "export"): "exported",
    (None, "start"): "open",
}


def _bring_to(store: Store, state: str | None, tmp: Path) -> None:
    if state is None:
        return
    cmd.start(store, M, user="amy")
    if state == "open":
        return
    cmd.approve(store, M, user="amy", all_pending=True)
    cmd.lock(store, M, user="amy")
    if state == "exported":
        from billing_engine.services.close import export as close_export

        close_export.export(store, M, user="amy", out=tmp / "first")


def _run(store: Store, command: str, tmp: Path) -> object:
    from billing_engine.services.close import export as close_export

    line = cmd.review(store, M)["line_id"][0] if command in ("approve", "hold") else None
    return {
        "start": lambda: cmd.start(store, M, user="bo"),
        "approve": lambda: cmd.approve(store, M, user="bo", line_ids=[line]),
        "hold": lambda: cmd.hold(store, M, user="bo", line_ids=[line], reason="why"),
        "lock": lambda: cmd.lock(store, M, user="bo"),
        "export": lambda: close_export.export(store, M, user="bo", out=tmp / "again"),
        "reopen": lambda: cmd.reopen(store, M, user="bo", reason="why"),
    }[command]()


@pytest.mark.parametrize(
    ("state", "command"),
    [(s, c) for s, commands in TRANSITIONS.items() for c in commands],
    ids=str,
)
def test_each_command_is_allowed_or_refused_in_each_month_state(
    state: str | None, command: str, tmp_path: Path
) -> None:
    with open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        _bring_to(store, state, tmp_path)
        if state is None and command in ("approve", "hold"):
            with pytest.raises(CloseRefused, match="no close yet"):
                cmd.review(store, M)
            return
        if (state, command) == ("open", "lock"):  # allowed once nothing is pending
            cmd.approve(store, M, user="amy", all_pending=True)
        log_before = len(close_status.log(store).data["entries"])
        if TRANSITIONS[state][command]:
            _run(store, command, tmp_path)
            expected = AFTER.get((state, command))
            if (state, command) == ("exported", "start"):  # the held-nothing demo: no diff
                expected = _month_state(store)[0]
            assert _month_state(store)[0] == expected
        else:
            with pytest.raises(CloseRefused):
                _run(store, command, tmp_path)
            assert len(close_status.log(store).data["entries"]) == log_before
            if state is not None:
                assert _month_state(store)[0] == state
