"""The close's guarantees (../shared/spec/close.md, "Guarantees" and "Adjustment cycles").

- Two users racing on one month from two processes: one wins, the other is refused with
  "changed by someone else, run it again"; never a duplicate claim (SQLite, PostgreSQL).
- A process killed inside a lock or an export leaves the month as it was.
- Hypothesis: any short sequence of close commands and data corrections keeps the
  store's invariants, and a refused command changes nothing.
- Adjustment cycles end to end: late entries, corrected, erroneous and retired
  encounters, changed diagnoses; frequencies 1, 7 and 8 in the 837P and claims.csv.
- What was billed stays billed: an exported claim is history for later months.

The races are made certain, not likely: each racing process runs the real CLI
(``cli.main``) with ``close_transaction`` wrapped so that it waits at a file barrier
until every racer has read the month's version; only then do they all write.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from billing_engine.calendar import Month
from billing_engine.io.bundle import Bundle
from billing_engine.services.close import commands as cmd
from billing_engine.services.close import status as close_status
from billing_engine.services.close.evaluation import evaluate_from_store, store_fees
from billing_engine.services.close.export import export
from billing_engine.services.evaluation import evaluate
from billing_engine.store import Store
from billing_engine.store import close as closedb
from billing_engine.store.close import CHANGED_BY_SOMEONE_ELSE, CloseRefused
from billing_engine.store.close_models import CLOSE_TABLES
from tests.close_support import MONTH, open_store, practice_bundle
from tests.x12_check import assert_valid_837p

M = Month.parse(MONTH)
REPO = Path(__file__).resolve().parents[1]
RACE_TIMEOUT = 120  # seconds a racing process may take (two cores shared by many)
RACE_PATIENCE = 60  # seconds a racer waits at the barrier for the others
# an export that waits for another's commit never reaches the barrier meanwhile:
# the one at the barrier goes on alone after this many seconds
NUMBERING_PATIENCE = 2  # below SQLite's busy timeout (5 s), which the waiting export spends
KILLED_BY_SIGKILL = -9

# Runs the real CLI; close_transaction waits until every racer has read its version.
RACER = """
import contextlib, sys, time
from pathlib import Path
import billing_engine.store.close as closedb

barrier, me, racers = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
point, patience = sys.argv[4], float(sys.argv[5])

def wait_for_everyone():
    (barrier / me).touch()
    give_up = time.monotonic() + patience
    while len(list(barrier.iterdir())) < racers and time.monotonic() < give_up:
        time.sleep(0.01)

if point == "close_transaction":  # every racer has read the month's version
    real_transaction = closedb.close_transaction

    @contextlib.contextmanager
    def after_everyone_read(engine, month):
        wait_for_everyone()
        with real_transaction(engine, month) as connection:
            yield connection

    closedb.close_transaction = after_everyone_read
else:  # every racer has read the store's last control number, in its transaction
    real_number = closedb.max_control_number

    def after_everyone_numbered(connection):
        number = real_number(connection)
        wait_for_everyone()
        return number

    closedb.max_control_number = after_everyone_numbered
sys.argv = ["billing", *sys.argv[6:]]
from cli.main import main
main()
"""

# Runs a close command and SIGKILLs itself inside its transaction, at update_cycle
# (lock: after the claims are inserted; export: after the batches are), having noted
# how many claims / batches the open transaction then held.
KILLED = """
import os, signal, sys
from pathlib import Path
import sqlalchemy as sa
import billing_engine.store.close as closedb
from billing_engine.calendar import Month
from billing_engine.store import Store

url, action, out, note = sys.argv[1:5]
table = "claims" if action == "lock" else "export_batches"

def killed(connection, *args, **kwargs):
    held = connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
    Path(note).write_text(str(held))
    os.kill(os.getpid(), signal.SIGKILL)

closedb.update_cycle = killed
store = Store.open(url)
if action == "lock":
    from billing_engine.services.close.commands import lock
    lock(store, Month.parse("2025-12"), user="killed")
else:
    from billing_engine.services.close.export import export
    export(store, Month.parse("2025-12"), user="killed", out=Path(out))
"""


# -- reading the store -------------------------------------------------------------------


TABLES = {
    t.name: t
    for t in (
        closedb.MONTHS,
        closedb.CYCLES,
        closedb.LINES,
        closedb.GAPS,
        closedb.CLAIMS,
        closedb.CLAIM_LINES,
        closedb.BATCHES,
        closedb.AUDIT,
    )
}


def _frame(store: Store, name: str) -> pl.DataFrame:
    with store.engine.connect() as c:
        return closedb.rows_of(TABLES[name], sa.true(), c)


def _dump(store: Store) -> dict[str, list[tuple[str, ...]]]:
    """Every close table's rows as sorted text tuples: equal dumps, equal stores."""
    out = {}
    for name in CLOSE_TABLES:
        rows = _frame(store, name).rows()
        out[name] = sorted(tuple(str(v) for v in row) for row in rows)
    return out


def _audit(store: Store) -> list[tuple[str, ...]]:
    rows = _frame(store, "audit_log").sort("entry_id").rows()
    return [tuple(str(v) for v in row) for row in rows]


def _month_row(store: Store) -> dict[str, Any]:
    with store.engine.connect() as c:
        row = closedb.month_row(c, MONTH)
    assert row is not None
    return row


def _ready_to_lock(url: str) -> None:
    with open_store(url) as s:
        cmd.start(s, M, user="prep")
        cmd.approve(s, M, user="prep", all_pending=True)


def _exported(url: str, out: Path) -> None:
    with open_store(url) as s:
        cmd.start(s, M, user="prep")
        cmd.approve(s, M, user="prep", all_pending=True)
        cmd.lock(s, M, user="prep")
        export(s, M, user="prep", out=out)


# -- 1. two real concurrent commands ------------------------------------------------------


def _race(
    tmp_path: Path,
    *commands: list[str],
    point: str = "close_transaction",
    patience: float = RACE_PATIENCE,
) -> list[subprocess.CompletedProcess[str]]:
    """Run each ``billing`` command in its own process, all reading before any writes
    (``point``: the read they all make first, see ``RACER``; ``patience``: how long a
    racer waits there for the others before it goes on alone)."""
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    racers = [
        subprocess.Popen(
            [
                *(sys.executable, "-c", RACER, str(barrier), f"racer{i}", str(len(commands))),
                *(point, str(patience), *args),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, args in enumerate(commands)
    ]
    done = []
    for p in racers:
        out, err = p.communicate(timeout=RACE_TIMEOUT)
        done.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    assert len(list(barrier.iterdir())) == len(commands), "a racer never reached its write"
    return done


def _close(month_args: list[str], url: str, user: str) -> list[str]:
    return ["close", *month_args, "--db", url, "--user", user]


def _one_won_one_was_told_to_run_it_again(
    runs: list[subprocess.CompletedProcess[str]],
) -> tuple[int, int]:
    codes = sorted(r.returncode for r in runs)
    shown = [(r.returncode, r.stdout[-300:], r.stderr[-600:]) for r in runs]
    assert codes == [0, 1], shown
    winner = next(i for i, r in enumerate(runs) if r.returncode == 0)
    loser = runs[1 - winner]
    assert CHANGED_BY_SOMEONE_ELSE in loser.stderr, shown
    assert "Traceback" not in loser.stderr, shown
    assert loser.stderr.strip().count("\n") == 0, "the refusal is one line"
    return winner, 1 - winner


def _claims_exactly_once(store: Store) -> pl.DataFrame:
    claims, lines = _frame(store, "claims"), _frame(store, "claim_lines")
    assert claims["claim_id"].n_unique() == claims.height
    assert lines.select("line_id").n_unique() == lines.height, "a line claimed twice"
    approved = cmd.review(store, M, status="approved")
    assert sorted(lines["line_id"]) == sorted(approved["line_id"])
    return claims


def test_two_locks_at_the_same_moment_make_one_set_of_claims_and_refuse_the_other(
    store_url: str, tmp_path: Path
) -> None:
    _ready_to_lock(store_url)
    runs = _race(
        tmp_path,
        _close(["lock", MONTH], store_url, "u1"),
        _close(["lock", MONTH], store_url, "u2"),
    )
    winner, _ = _one_won_one_was_told_to_run_it_again(runs)
    with Store.open(store_url) as s:
        claims = _claims_exactly_once(s)
        assert claims.height > 0 and set(claims["status"]) == {"locked"}
        assert _month_row(s)["state"] == "locked"
        entries = close_status.log(s, M).data["entries"]
        locks = [e for e in entries if e["action"] == "lock"]
        assert len(locks) == 1 and locks[0]["user"] == f"u{winner + 1}"


def test_approve_all_racing_a_lock_lets_one_of_them_through_and_refuses_the_other(
    store_url: str, tmp_path: Path
) -> None:
    _ready_to_lock(store_url)
    runs = _race(
        tmp_path,
        _close(["approve", MONTH, "--all"], store_url, "u1"),
        _close(["lock", MONTH], store_url, "u2"),
    )
    winner, _ = _one_won_one_was_told_to_run_it_again(runs)
    with Store.open(store_url) as s:
        actions = [e["action"] for e in close_status.log(s, M).data["entries"]]
        if winner == 0:  # the approve landed: the lock was refused, nothing claimed
            assert actions == ["start", "approve", "approve"]
            assert _month_row(s)["state"] == "open" and _frame(s, "claims").height == 0
        else:
            assert actions == ["start", "approve", "lock"]
            assert _month_row(s)["state"] == "locked"
            assert _claims_exactly_once(s).height > 0


def test_two_starts_of_a_new_month_at_once_open_one_cycle_and_refuse_the_other(
    store_url: str, tmp_path: Path
) -> None:
    with open_store(store_url):
        pass
    runs = _race(
        tmp_path,
        _close(["start", MONTH], store_url, "u1"),
        _close(["start", MONTH], store_url, "u2"),
    )
    winner, _ = _one_won_one_was_told_to_run_it_again(runs)
    with Store.open(store_url) as s:
        assert _frame(s, "close_cycles").height == 1
        entries = close_status.log(s, M).data["entries"]
        assert [(e["action"], e["user"]) for e in entries] == [("start", f"u{winner + 1}")]
        assert cmd.review(s, M)["line_id"].is_unique().all()


OTHER_MONTH = "2025-11"


def test_exports_of_two_months_at_once_both_go_through_with_their_own_control_numbers(
    store_url: str, tmp_path: Path
) -> None:
    """Both exports read the store's last control number before either commits (or, once
    the numbering waits for the other export's commit, one after the other)."""
    with open_store(store_url) as s:
        for month in (M, Month.parse(OTHER_MONTH)):
            cmd.start(s, month, user="prep")
            cmd.approve(s, month, user="prep", all_pending=True)
            cmd.lock(s, month, user="prep")
    runs = _race(
        tmp_path,
        _close(["export", MONTH, "--out", str(tmp_path / "dec")], store_url, "u1"),
        _close(["export", OTHER_MONTH, "--out", str(tmp_path / "nov")], store_url, "u2"),
        point="max_control_number",
        patience=NUMBERING_PATIENCE,
    )
    assert [r.returncode for r in runs] == [0, 0], [r.stderr[-600:] for r in runs]
    with Store.open(store_url) as s:
        batches = _frame(s, "export_batches")
        assert set(batches["month"]) == {MONTH, OTHER_MONTH}
        assert batches["control_number"].is_unique().all()
        assert set(_frame(s, "close_months")["state"]) == {"exported"}
    for folder in ("dec", "nov"):
        _x12_texts(tmp_path / folder)


# -- 2. a process killed in the middle -----------------------------------------------------


def _killed(url: str, action: str, tmp_path: Path) -> tuple[int, Path]:
    note, out = tmp_path / f"{action}.note", tmp_path / f"killed-{action}"
    run = subprocess.run(
        [sys.executable, "-c", KILLED, url, action, str(out), str(note)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=RACE_TIMEOUT,
        check=False,
    )
    assert run.returncode == KILLED_BY_SIGKILL, run.stderr[-2000:]
    return int(note.read_text()), out


def test_a_lock_killed_before_its_commit_leaves_the_month_open_and_can_run_again(
    store_url: str, tmp_path: Path
) -> None:
    _ready_to_lock(store_url)
    with Store.open(store_url) as s:
        before = _dump(s)
    held, _ = _killed(store_url, "lock", tmp_path)
    assert held > 0, "the kill came after the claims were inserted"
    with Store.open(store_url) as s:
        assert _dump(s) == before
        assert _month_row(s)["state"] == "open"
        outcome = cmd.lock(s, M, user="again")
        assert outcome.data["claims"] == held == _claims_exactly_once(s).height


def test_an_export_killed_before_its_commit_leaves_the_month_locked_and_can_run_again(
    store_url: str, tmp_path: Path
) -> None:
    _ready_to_lock(store_url)
    with Store.open(store_url) as s:
        cmd.lock(s, M, user="prep")
        before = _dump(s)
    held, out = _killed(store_url, "export", tmp_path)
    assert held > 0, "the kill came after the export batches were inserted"
    assert not out.exists() or not any(out.iterdir()), "no file before the commit"
    with Store.open(store_url) as s:
        assert _dump(s) == before
        assert _month_row(s)["state"] == "locked"
        assert _frame(s, "export_batches").height == 0
        export(s, M, user="again", out=tmp_path / "out")
        assert _month_row(s)["state"] == "exported"
        assert _frame(s, "export_batches").height == held
    for path in (tmp_path / "out").glob("*.x12"):
        assert_valid_837p(path.read_text())


# -- 3. invariants under any sequence of actions (Hypothesis) ----------------------------

HYPOTHESIS_PATIENTS = 80
LATE_MINUTES = 20
MAX_CLAIM_LINES = 50


PREPARED = ("fresh", "started", "approved", "locked", "exported", "adjusting", "adjusted")


def _corrected_below_thresholds(store: Store) -> None:
    """Correct the month so that one claim is voided (its only 99490 falls below 20
    minutes) and one replaced (its patient has a new chronic condition)."""
    voided = _claim_with_codes(store, ["99490"])
    alone = _claimed_close_line(store, voided, "99490")
    _import(store, encounters=_minutes_set(_encounters_of(store, alone), 1))
    lines = _frame(store, "claim_lines").filter(pl.col("claim_id") != voided)
    full = pl.col("icd10_codes").str.split(";").list.len() >= LINE_DIAGNOSES
    room = lines.group_by("claim_id").agg(
        (pl.col("code") == "99490").any().alias("ccm"), full.any().alias("full")
    )
    replaced = room.filter(pl.col("ccm") & ~pl.col("full")).sort("claim_id")["claim_id"][0]
    _import(store, conditions=_new_condition(store, _patient_of(store, replaced)))


def _open_adjustment_cycle(store: Store) -> None:
    _corrected_below_thresholds(store)
    cmd.start(store, M, user="prep")


def _lock_adjustment_cycle(store: Store) -> None:
    cmd.approve(store, M, user="prep", all_pending=True)
    cmd.lock(store, M, user="prep")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """SQLite stores copied per example, one per point of the close: nothing closed yet,
    cycle 1 started (lines pending), all approved, locked, exported; an adjustment
    cycle opened (a void and a replacement pending), and locked."""
    folder = tmp_path_factory.mktemp("prepared")
    paths = {name: folder / f"{name}.db" for name in PREPARED}
    with open_store(f"sqlite:///{paths['fresh']}", practice_bundle(HYPOTHESIS_PATIENTS)):
        pass
    steps: dict[str, Callable[[Store], object]] = {
        "started": lambda s: cmd.start(s, M, user="prep"),
        "approved": lambda s: cmd.approve(s, M, user="prep", all_pending=True),
        "locked": lambda s: cmd.lock(s, M, user="prep"),
        "exported": lambda s: export(s, M, user="prep", out=folder / "exported-out"),
        "adjusting": _open_adjustment_cycle,
        "adjusted": _lock_adjustment_cycle,
    }
    for before, (name, step) in zip(PREPARED, steps.items(), strict=False):
        shutil.copy(paths[before], paths[name])
        with Store.open(f"sqlite:///{paths[name]}") as s:
            step(s)
    return paths


def _month_encounters(store: Store) -> pl.DataFrame:
    encounters = store.load_bundle()["encounters"]
    in_month = pl.col("date").is_between(M.start, M.end)
    return encounters.filter(in_month & (pl.col("minutes") > 1)).sort("encounter_id")


LATE_FROM, LATE_EVERY = dt.datetime(2025, 12, 1, 19, 0), dt.timedelta(minutes=LATE_MINUTES)


def _late_time(step: int) -> dt.time:
    """The start of the ``step``-th late encounter: after hours, one after the other."""
    return (LATE_FROM + step * LATE_EVERY).time()


class _Actions:
    """The actions of the Hypothesis test; each one applied to one store."""

    def __init__(self, store: Store, folder: Path) -> None:
        self.store, self.folder, self.step = store, folder, 0

    def _line(self, index: int) -> list[str]:
        lines = cmd.review(self.store, M)["line_id"].to_list()
        # no lines: a line id that does not exist (the command must refuse it)
        return [lines[index % len(lines)]] if lines else ["L000000-1-999999"]

    def run(self, name: str, index: int) -> None:
        self.step += 1
        s, u = self.store, f"user{index % 3}"
        if name == "approve_all":
            cmd.approve(s, M, user=u, all_pending=True)
        elif name == "approve_one":
            cmd.approve(s, M, user=u, line_ids=self._line(index))
        elif name == "hold_one":
            cmd.hold(s, M, user=u, line_ids=self._line(index), reason="check the chart")
        elif name == "lock":
            cmd.lock(s, M, user=u)
        elif name == "reopen":
            cmd.reopen(s, M, user=u, reason="a second look")
        elif name == "start":
            cmd.start(s, M, user=u)
        elif name == "export":
            export(s, M, user=u, out=self.folder / f"export-{self.step}")
        elif name == "late_encounter":
            encounters = _month_encounters(s)
            late = encounters[index % encounters.height].with_columns(
                pl.lit(f"LATE{self.step}").alias("encounter_id"),
                pl.lit(LATE_MINUTES).cast(pl.Int64).alias("minutes"),
                # a time of its own: overlapping minutes are counted once
                pl.lit(_late_time(self.step)).alias("start_time"),
            )
            s.import_bundle(Bundle.from_frames({"encounters": late}))
        elif name == "minutes_down":  # the evidence of one close line (of any cycle)
            lines = _frame(s, "close_lines").sort("line_id")
            if lines.height:
                evidence = _encounters_of(s, lines.row(index % lines.height, named=True))
            else:  # no close yet: any encounter of the month
                encounters = _month_encounters(s)
                evidence = encounters[index % encounters.height]
            if evidence.height:
                corrected = evidence.with_columns((pl.col("minutes") // 3).clip(1))
                s.import_bundle(Bundle.from_frames({"encounters": corrected}))
        else:  # pragma: no cover - the strategy draws only the names above
            raise AssertionError(name)


ACTIONS = (
    "approve_all",
    "approve_one",
    "hold_one",
    "lock",
    "reopen",
    "start",
    "export",
    "late_encounter",
    "minutes_down",
)


class _Seen:
    """What earlier steps saw: the audit log, every claim id, the voided ids, the files."""

    def __init__(self) -> None:
        self.audit: list[tuple[str, ...]] = []
        self.claims: dict[str, str] = {}
        self.validated: set[str] = set()


def _check_invariants(store: Store, seen: _Seen) -> None:
    claims, lines = _frame(store, "claims"), _frame(store, "claim_lines")
    # claim ids unique, never deleted, a voided one stays voided
    assert claims["claim_id"].n_unique() == claims.height
    now = dict(zip(claims["claim_id"], claims["status"], strict=True))
    for claim_id, status in seen.claims.items():
        assert claim_id in now, f"claim {claim_id} disappeared"
        if status == "voided":
            assert now[claim_id] == "voided", f"voided claim {claim_id} came back"
    seen.claims = now
    live = claims.filter(pl.col("status") != "voided")
    # within a cycle a close line is in at most one live claim
    in_live = lines.join(live.select("claim_id", "cycle"), on="claim_id", suffix="_claim")
    twice = in_live.group_by("cycle_claim", "line_id").len().filter(pl.col("len") > 1)
    assert twice.height == 0, twice
    # claim totals are the sums of their lines; at most 50 lines a claim
    sums = lines.group_by("claim_id").agg(
        pl.col("charge").sum().alias("total_charge"),
        *[pl.col(a).sum() for a in ("allowed_amount", "payer_amount", "patient_amount")],
        pl.len().cast(pl.Int64).alias("line_count"),
    )
    columns = ["claim_id", "total_charge", "allowed_amount", "payer_amount", "patient_amount"]
    expected = sums.select(*columns, "line_count").sort("claim_id")
    assert claims.select(*columns, "line_count").sort("claim_id").equals(expected)
    assert (claims["line_count"] <= MAX_CLAIM_LINES).all()
    # a replacement or void names an exported original claim of the same month
    originals = claims.filter((pl.col("frequency") == "1") & (pl.col("status") == "exported"))
    known = set(zip(originals["claim_id"], originals["month"], strict=True))
    for r in claims.filter(pl.col("frequency").is_in(["7", "8"])).iter_rows(named=True):
        assert (r["original_claim_id"], r["month"]) in known, r
    assert claims.filter(pl.col("frequency") == "1")["original_claim_id"].is_null().all()
    # the month's state is its current cycle's
    months, cycles = _frame(store, "close_months"), _frame(store, "close_cycles")
    for m in months.iter_rows(named=True):
        assert m["state"] in ("open", "locked", "exported")
        current = cycles.filter((pl.col("month") == m["month"]) & (pl.col("cycle") == m["cycle"]))
        assert current["state"].to_list() == [m["state"]]
    # the audit log only grows
    audit = _audit(store)
    assert audit[: len(seen.audit)] == seen.audit, "an audit row changed or went away"
    seen.audit = audit
    for frequency in claims.filter(pl.col("status") == "exported")["frequency"].unique():
        event(f"exported frequency {frequency}")
    # every interchange written validates
    for batch in _frame(store, "export_batches").iter_rows(named=True):
        if batch["sha256"] not in seen.validated:
            assert_valid_837p(batch["content"])
            seen.validated.add(batch["sha256"])


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    base=st.sampled_from(PREPARED),
    steps=st.lists(
        st.tuples(st.sampled_from(ACTIONS), st.integers(0, 1_000)), min_size=1, max_size=8
    ),
)
def test_any_sequence_of_close_actions_keeps_the_invariants_and_a_refusal_changes_nothing(
    prepared: dict[str, Path], base: str, steps: list[tuple[str, int]]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "close.db"
        shutil.copy(prepared[base], db)
        with Store.open(f"sqlite:///{db}") as store:
            actions, seen = _Actions(store, Path(folder)), _Seen()
            _check_invariants(store, seen)
            for name, index in steps:
                before = _dump(store)
                try:
                    actions.run(name, index)
                    event(f"{name} done")
                except (CloseRefused, cmd.BadCloseInput):
                    event(f"{name} refused")
                    assert _dump(store) == before, f"refused {name} changed the store"
                _check_invariants(store, seen)


# -- 4. adjustment cycles end to end ---------------------------------------------------------


@pytest.fixture
def exported(store_url: str, tmp_path: Path) -> Iterator[Store]:
    """A store whose month is exported in cycle 1 (files in tmp_path/c1)."""
    _exported(store_url, tmp_path / "c1")
    with Store.open(store_url) as s:
        yield s


def _import(store: Store, *, snapshot: bool = False, **tables: pl.DataFrame) -> None:
    store.import_bundle(Bundle.from_frames(tables), snapshot=snapshot)


def _cycle_claims(store: Store, cycle: int) -> pl.DataFrame:
    claims = _frame(store, "claims")
    return claims.filter((pl.col("cycle") == cycle) & (pl.col("status") != "voided"))


def _lines_of_claim(store: Store, claim_id: str) -> pl.DataFrame:
    return _frame(store, "claim_lines").filter(pl.col("claim_id") == claim_id)


def _claimed_close_line(store: Store, claim_id: str, code: str) -> dict[str, Any]:
    line_id = _lines_of_claim(store, claim_id).filter(pl.col("code") == code)["line_id"].item()
    lines = _frame(store, "close_lines")
    return lines.filter(pl.col("line_id") == line_id).row(0, named=True)


def _encounters_of(store: Store, line: dict[str, Any]) -> pl.DataFrame:
    evidence = [e for e in line["evidence"].split(";") if e.startswith("E")]
    encounters = store.load_bundle()["encounters"]
    return encounters.filter(pl.col("encounter_id").is_in(evidence)).sort("encounter_id")


LINE_DIAGNOSES = 4  # ICD-10 codes a line carries at most (the SV1 diagnosis pointers)


def _claim_with_codes(store: Store, codes: list[str], *, room_for_a_diagnosis: bool = False) -> str:
    """The first cycle-1 claim whose lines are exactly ``codes`` (in any order); with
    ``room_for_a_diagnosis`` one whose lines carry fewer ICD-10 codes than they can."""
    lines = _frame(store, "claim_lines").filter(pl.col("cycle") == 1)
    if room_for_a_diagnosis:
        full = lines.filter(pl.col("icd10_codes").str.split(";").list.len() >= LINE_DIAGNOSES)
        lines = lines.join(full.select("claim_id"), on="claim_id", how="anti")
    grouped = lines.group_by("claim_id").agg(pl.col("code").sort()).sort("claim_id")
    found = grouped.filter(pl.col("code") == pl.lit(sorted(codes), pl.List(pl.String)))
    assert found.height, f"the practice has no claim of {codes}"
    return str(found["claim_id"][0])


def _adjust_and_export(store: Store, out: Path) -> cmd.Outcome:
    """start (an adjustment cycle), approve all, lock, export to ``out``."""
    opened = cmd.start(store, M, user="adj")
    assert opened.data["state"] == "open" and opened.data["cycle"] == 2, opened.summary
    cmd.approve(store, M, user="adj", all_pending=True)
    cmd.lock(store, M, user="adj")
    return export(store, M, user="adj", out=out)


def _csv_rows(out: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((out / "claims.csv").read_text())))


def _x12_texts(out: Path) -> dict[str, str]:
    texts = {p.name: p.read_text() for p in sorted(out.glob("837p-*.x12"))}
    for text in texts.values():
        assert_valid_837p(text)
    return texts


def _segments_of_claim(texts: dict[str, str], claim_id: str) -> list[str]:
    """The segments of one claim's 2300 loop and its lines, up to the next claim."""
    for text in texts.values():
        segments = [seg.strip() for seg in text.split("~")]
        starts = [i for i, seg in enumerate(segments) if seg.startswith(f"CLM*{claim_id}*")]
        if starts:
            rest = segments[starts[0] :]
            ends = [i for i, seg in enumerate(rest[1:], 1) if seg.startswith(("CLM*", "HL*"))]
            return rest[: ends[0] if ends else len(rest)]
    raise AssertionError(f"claim {claim_id} is in no 837P")


def _frequency_in_clm(segments: list[str]) -> str:
    return segments[0].split("*")[5].split(":")[2]


LATE_DAY, LATE_TIME = dt.date(2025, 12, 29), dt.time(17, 0)


def test_a_late_encounter_that_makes_a_short_99490_billable_is_billed_as_a_new_claim(
    exported: Store, tmp_path: Path
) -> None:
    gaps = _frame(exported, "close_gaps").filter(
        (pl.col("code") == "99490") & (pl.col("status") == "short") & (pl.col("minutes_logged") > 0)
    )
    gap = gaps.sort("patient_id").row(0, named=True)
    first = next(e for e in gap["evidence"].split(";") if e.startswith("E"))
    source = exported.load_bundle()["encounters"].filter(pl.col("encounter_id") == first)
    late = source.with_columns(
        pl.lit("LATE-1").alias("encounter_id"),
        pl.lit(gap["minutes_needed"]).cast(pl.Int64).alias("minutes"),
        # a time of its own: overlapping minutes are counted once
        pl.lit(LATE_DAY).alias("date"),
        pl.lit(LATE_TIME).alias("start_time"),
    )
    _import(exported, encounters=late)
    month = close_status.status(exported, M).data["months"][0]
    assert month["late_entries"]["rows"] == 1 and month["state"] == "exported"
    opened = cmd.start(exported, M, user="adj")
    lines = cmd.review(exported, M)
    mine = lines.filter((pl.col("patient_id") == gap["patient_id"]) & (pl.col("code") == "99490"))
    assert mine["kind"].to_list() == ["new"], opened.summary
    cmd.approve(exported, M, user="adj", all_pending=True)
    cmd.lock(exported, M, user="adj")
    export(exported, M, user="adj", out=tmp_path / "c2")
    claim_id = (
        _frame(exported, "claim_lines")
        .filter(pl.col("line_id") == mine["line_id"].item())["claim_id"]
        .item()
    )
    claim = _frame(exported, "claims").filter(pl.col("claim_id") == claim_id).row(0, named=True)
    assert claim["frequency"] == "1" and claim["original_claim_id"] is None
    texts = _x12_texts(tmp_path / "c2")
    segments = _segments_of_claim(texts, claim_id)
    assert _frequency_in_clm(segments) == "1"
    assert not any(seg.startswith("REF*F8") for seg in segments)


def _minutes_set(encounters: pl.DataFrame, total: int) -> pl.DataFrame:
    """``encounters`` corrected so that their minutes add up to ``total`` (each >= 1)."""
    n = encounters.height
    minutes = [max(total - (n - 1), 1)] + [1] * (n - 1)
    return encounters.with_columns(pl.Series("minutes", minutes, dtype=pl.Int64))


def _void_of(store: Store, original: str, cycle: int = 2) -> dict[str, Any]:
    claims = _cycle_claims(store, cycle).filter(pl.col("original_claim_id") == original)
    assert claims.height == 1, claims
    return claims.row(0, named=True)


def test_a_claim_whose_only_99490_falls_below_its_threshold_is_voided_with_frequency_8(
    exported: Store, tmp_path: Path
) -> None:
    original = _claim_with_codes(exported, ["99490"])
    line = _claimed_close_line(exported, original, "99490")
    _import(exported, encounters=_minutes_set(_encounters_of(exported, line), 1))
    cmd.start(exported, M, user="adj")
    voids = cmd.review(exported, M).filter(pl.col("adjusts_claim_id") == original)
    assert voids["kind"].to_list() == ["void"]
    _adjust_rest_and_export(exported, tmp_path / "c2")
    void = _void_of(exported, original)
    assert void["frequency"] == "8"
    _assert_refers_to_original(tmp_path / "c2", void["claim_id"], original, "8")


def _adjust_rest_and_export(store: Store, out: Path) -> None:
    cmd.approve(store, M, user="adj", all_pending=True)
    cmd.lock(store, M, user="adj")
    export(store, M, user="adj", out=out)


def _assert_refers_to_original(out: Path, claim_id: str, original: str, frequency: str) -> None:
    segments = _segments_of_claim(_x12_texts(out), claim_id)
    assert _frequency_in_clm(segments) == frequency
    assert f"REF*F8*{original}" in segments
    rows = [r for r in _csv_rows(out) if r["claim_id"] == claim_id]
    assert rows and {(r["frequency"], r["original_claim_id"]) for r in rows} == {
        (frequency, original)
    }


def test_a_claim_that_keeps_some_lines_after_a_correction_is_replaced_with_frequency_7(
    exported: Store, tmp_path: Path
) -> None:
    original = _claim_with_codes(exported, ["99439", "99490"])
    line = _claimed_close_line(exported, original, "99439")
    # 25 minutes: 99490 (20) stays, 99439 (40) goes
    _import(exported, encounters=_minutes_set(_encounters_of(exported, line), 25))
    cmd.start(exported, M, user="adj")
    adjusting = cmd.review(exported, M).filter(pl.col("adjusts_claim_id") == original)
    assert adjusting.select("kind", "code").rows() == [("void", "99439")]
    _adjust_rest_and_export(exported, tmp_path / "c2")
    replacement = _void_of(exported, original)
    assert replacement["frequency"] == "7"
    assert _lines_of_claim(exported, replacement["claim_id"])["code"].to_list() == ["99490"]
    assert replacement["line_count"] == 1
    _assert_refers_to_original(tmp_path / "c2", replacement["claim_id"], original, "7")


NEW_CONDITION = "E11.9"  # type 2 diabetes: a chronic condition the patient lacked


def _patient_of(store: Store, claim_id: str) -> str:
    claims = _frame(store, "claims").filter(pl.col("claim_id") == claim_id)
    return str(claims["patient_id"].item())


def _new_condition(store: Store, patient: str) -> pl.DataFrame:
    conditions = store.load_bundle()["conditions"]
    mine = conditions.filter(pl.col("patient_id") == patient)
    assert NEW_CONDITION not in mine["icd10"].to_list()
    return conditions.head(1).with_columns(
        pl.lit(patient).alias("patient_id"),
        pl.lit(NEW_CONDITION).alias("icd10"),
        pl.lit(dt.date(2015, 3, 1)).alias("onset_date"),
        pl.lit(None, pl.Date).alias("resolved_date"),
        pl.lit(True).alias("chronic"),
    )


def test_a_new_chronic_condition_replaces_the_claim_with_its_full_corrected_set(
    exported: Store, tmp_path: Path
) -> None:
    original = _claim_with_codes(exported, ["99439", "99490"], room_for_a_diagnosis=True)
    before = _lines_of_claim(exported, original)
    added = _new_condition(exported, _patient_of(exported, original))
    _import(exported, conditions=added)
    cmd.start(exported, M, user="adj")
    adjusting = cmd.review(exported, M).filter(pl.col("adjusts_claim_id") == original)
    assert set(adjusting["kind"]) == {"replace"}
    assert all(NEW_CONDITION in codes for codes in adjusting["icd10_codes"])
    _adjust_rest_and_export(exported, tmp_path / "c2")
    replacement = _void_of(exported, original)
    assert replacement["frequency"] == "7"
    after = _lines_of_claim(exported, replacement["claim_id"])
    assert sorted(after["code"]) == sorted(before["code"])  # the full set, corrected
    assert all(NEW_CONDITION in codes for codes in after["icd10_codes"])
    _assert_refers_to_original(tmp_path / "c2", replacement["claim_id"], original, "7")


@pytest.mark.parametrize("how", ["entered_in_error", "retired_by_a_snapshot"])
def test_an_erroneous_or_retired_encounter_voids_the_claim_it_supported(
    exported: Store, tmp_path: Path, how: str
) -> None:
    original = _claim_with_codes(exported, ["99490"])
    evidence = _encounters_of(exported, _claimed_close_line(exported, original, "99490"))
    if how == "entered_in_error":
        marked = evidence.with_columns(pl.lit("entered_in_error").alias("status"))
        _import(exported, encounters=marked)
    else:
        everything = exported.load_bundle()["encounters"]
        kept = everything.join(evidence.select("encounter_id"), on="encounter_id", how="anti")
        _import(exported, snapshot=True, encounters=kept)
    late = close_status.status(exported, M).data["months"][0]["late_entries"]
    assert late["tables"].get("encounters") == evidence.height
    cmd.start(exported, M, user="adj")
    voids = cmd.review(exported, M).filter(pl.col("adjusts_claim_id") == original)
    assert voids["kind"].to_list() == ["void"]
    _adjust_rest_and_export(exported, tmp_path / "c2")
    void = _void_of(exported, original)
    assert void["frequency"] == "8"
    _assert_refers_to_original(tmp_path / "c2", void["claim_id"], original, "8")


def test_start_on_an_exported_month_without_a_difference_has_nothing_to_review(
    exported: Store,
) -> None:
    before = _dump(exported)
    outcome = cmd.start(exported, M, user="adj")
    assert "nothing to review" in outcome.summary
    assert _month_row(exported)["state"] == "exported" and _month_row(exported)["cycle"] == 1
    after = _dump(exported)
    assert after["claims"] == before["claims"] and after["close_lines"] == before["close_lines"]


def test_a_line_held_in_cycle_1_is_billed_in_the_next_cycle_as_new_once_approved(
    store_url: str, tmp_path: Path
) -> None:
    with open_store(store_url) as s:
        cmd.start(s, M, user="amy")
        held = cmd.review(s, M).row(0, named=True)
        cmd.hold(s, M, user="amy", line_ids=[held["line_id"]], reason="chart unsigned")
        cmd.approve(s, M, user="amy", all_pending=True)
        cmd.lock(s, M, user="amy")
        export(s, M, user="amy", out=tmp_path / "c1")
        assert held["line_id"] not in _frame(s, "claim_lines")["line_id"].to_list()
        _adjust_and_export(s, tmp_path / "c2")
        cycle_2 = _frame(s, "close_lines").filter(pl.col("cycle") == 2)
        assert cycle_2.select("kind", "patient_id", "code").rows() == [
            ("new", held["patient_id"], held["code"])
        ]
        claims = _cycle_claims(s, 2)
        assert claims["frequency"].to_list() == ["1"]
        _x12_texts(tmp_path / "c2")


def test_a_replacement_claim_never_mixes_two_billing_practitioners(
    exported: Store, tmp_path: Path
) -> None:
    claims = _cycle_claims(exported, 1)
    claim_id = _claim_with_codes(exported, ["G0447", "G0447"])  # two visits, two dates
    claim = claims.filter(pl.col("claim_id") == claim_id).row(0, named=True)
    last = _lines_of_claim(exported, claim_id).sort("date_of_service").row(-1, named=True)
    encounters = _encounters_of(exported, _claimed_close_line_by_id(exported, last["line_id"]))
    billing = sorted(set(claims["billing_practitioner_id"]))
    other = next(p for p in billing if p != claim["billing_practitioner_id"])
    moved = encounters.with_columns(
        pl.lit(other).alias("billing_practitioner_id"), pl.lit(other).alias("performer_id")
    )
    _import(exported, encounters=moved)
    _adjust_and_export(exported, tmp_path / "c2")
    for c in _cycle_claims(exported, 2).iter_rows(named=True):
        npis = set(_lines_of_claim(exported, c["claim_id"])["billing_npi"])
        assert len(npis) == 1, (c["claim_id"], c["frequency"], npis)


def _claimed_close_line_by_id(store: Store, line_id: str) -> dict[str, Any]:
    lines = _frame(store, "close_lines")
    return lines.filter(pl.col("line_id") == line_id).row(0, named=True)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_exporting_a_cycle_again_writes_byte_identical_files_that_validate(
    exported: Store, tmp_path: Path
) -> None:
    export(exported, M, user="later", out=tmp_path / "again")
    assert _files(tmp_path / "again") == _files(tmp_path / "c1")
    _x12_texts(tmp_path / "again")
    # and so for an adjustment cycle
    original = _claim_with_codes(exported, ["99490"])
    line = _claimed_close_line(exported, original, "99490")
    _import(exported, encounters=_minutes_set(_encounters_of(exported, line), 1))
    _adjust_and_export(exported, tmp_path / "c2")
    export(exported, M, user="later", out=tmp_path / "c2-again")
    assert _files(tmp_path / "c2-again") == _files(tmp_path / "c2")
    _x12_texts(tmp_path / "c2-again")


def test_an_exported_once_per_lifetime_code_is_history_for_a_later_month(
    exported: Store,
) -> None:
    claimed = _frame(exported, "claim_lines").filter(pl.col("code") == "G0402")
    assert claimed.height, "the practice bills an IPPE (G0402) in the month"
    line = _frame(exported, "close_lines").filter(pl.col("line_id") == claimed["line_id"][0])
    line_row = line.row(0, named=True)
    again = _encounters_of(exported, line_row).with_columns(
        pl.lit(dt.date(2026, 1, 14)).alias("date"),
        (pl.col("encounter_id") + "-AGAIN").alias("encounter_id"),
    )
    _import(exported, encounters=again)
    january = Month.parse("2026-01")
    patient = pl.col("patient_id") == line_row["patient_id"]
    ippe = patient & (pl.col("code") == "G0402")
    # without the exported claim as history the IPPE would be billed again
    plain = evaluate(exported.load_bundle(), january, None, fees=store_fees(exported))
    assert plain.claim_lines.filter(ippe).height == 1
    _, result = evaluate_from_store(exported, january, None)
    assert result.claim_lines.filter(ippe).height == 0
    refused = result.gaps.filter(ippe).row(0, named=True)
    assert refused["reason"] == "frequency_limit_reached"
    assert "G0402@" in (refused["detail"] or "")
    assert exported.load_bundle()["claims_history"].filter(ippe).height == 0
