"""Evaluating in patient parts gives the outputs of the whole bundle (engine.partitions).

Every rule is per patient, so a bundle split by patient, each part evaluated alone and
the results joined must equal the unpartitioned run: checked on the demo month (frame
for frame) and on every public scenario (the written CSV files byte for byte), and for
the Ray engine on a local Ray runtime. By the same premise a family whose candidates are
a few patients' visits of the month reads only their rows (``EvalContext.narrowed_to``):
checked against the same families reading everyone's. A bundle evaluated in one part
has its families evaluated two at a time in threads (``pipeline.evaluate``'s
``family_threads``): checked against one at a time, and on every public scenario, whose
runs in parts evaluate each part's families one at a time.
"""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner

from billing_engine.calendar import Month
from billing_engine.engine import partitions
from billing_engine.engine.context import EvalContext, Memo
from billing_engine.engine.pipeline import EvaluationResult
from billing_engine.io.bundle import Bundle
from billing_engine.services.evaluation import evaluate
from billing_engine.synth.practice import generate_practice
from cli.main import billing
from tests.scenario_io import write_scenario_bundle
from tests.test_scenarios import _load

MONTH = Month.parse("2025-12")
OUTPUT_FRAMES = ("claim_lines", "gaps", "revenue_by_payer", "capitation")
ROW_FRAMES = ("priced_lines", "outcomes", "time_entries")


@pytest.fixture(scope="module")
def demo() -> Bundle:
    return generate_practice(600)


def _sorted(frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    flat = [c for c in columns if not frame[c].dtype.is_nested()]
    return frame.select(columns).sort(flat, nulls_last=True)


def _assert_same(whole: EvaluationResult, parts: EvaluationResult) -> None:
    for name in OUTPUT_FRAMES:
        assert getattr(parts, name).equals(getattr(whole, name)), name
    for name in ROW_FRAMES:
        mine, theirs = getattr(whole, name), getattr(parts, name)
        assert _sorted(theirs, mine.columns).equals(_sorted(mine, mine.columns)), name
    assert parts.parameters_used == whole.parameters_used
    assert parts.input_row_counts == whole.input_row_counts


def test_every_patient_falls_in_exactly_one_part(demo: Bundle) -> None:
    cut = partitions.split(demo, 5)
    ids = [p["patients"]["patient_id"].to_list() for p in cut]
    assert sorted(i for part in ids for i in part) == sorted(demo["patients"]["patient_id"])
    for part in cut:
        mine = set(part["patients"]["patient_id"])
        assert set(part["encounters"]["patient_id"]) <= mine
        assert part["practitioners"].equals(demo["practitioners"])


def test_the_part_count_follows_the_patients_per_part() -> None:
    assert partitions.partition_count(100_000, 100_000) == 1
    assert partitions.partition_count(100_001, 100_000) == 2
    assert partitions.partition_count(1_000_000, 100_000) == 10
    assert partitions.partition_count(5, 0) == 1


def test_the_demo_month_in_seven_parts_equals_the_whole_run(demo: Bundle) -> None:
    whole = evaluate(demo, MONTH, partition_patients=0)
    parts = evaluate(demo, MONTH, partition_patients=90)
    assert partitions.partition_count(demo["patients"].height, 90) == 7
    _assert_same(whole, parts)
    assert [r.name for r in parts.rule_sets] == [r.name for r in whole.rule_sets]


@pytest.mark.parametrize("workers", [1, 3])
def test_the_parts_give_the_whole_run_one_at_a_time_or_in_threads(
    demo: Bundle, workers: int
) -> None:
    whole = evaluate(demo, MONTH, partition_patients=0)
    _assert_same(whole, evaluate(demo, MONTH, partition_patients=90, workers=workers))


def test_the_families_evaluated_two_at_once_give_the_run_one_at_a_time(demo: Bundle) -> None:
    alone = evaluate(demo, MONTH, partition_patients=0, workers=1)
    together = evaluate(demo, MONTH, partition_patients=0, workers=2)
    _assert_same(alone, together)
    assert [r.name for r in together.rule_sets] == [r.name for r in alone.rule_sets]
    for mine, theirs in zip(alone.rule_sets, together.rule_sets, strict=True):
        assert theirs.outcomes.equals(mine.outcomes), mine.name


def test_the_parameters_used_are_listed_by_name_whatever_the_threads(demo: Bundle) -> None:
    result = evaluate(demo, MONTH, partition_patients=0, workers=2)
    assert list(result.parameters_used) == sorted(result.parameters_used)


def test_a_shared_frame_asked_for_by_two_threads_at_once_is_built_once() -> None:
    memo, builds, started = Memo(), [], threading.Barrier(2)

    def build() -> pl.DataFrame:
        builds.append(threading.current_thread().name)
        time.sleep(0.05)  # the other thread asks while this one builds
        return pl.DataFrame({"x": [1]})

    def ask() -> pl.DataFrame:
        started.wait()
        return memo.frame("minutes", build)

    got: list[pl.DataFrame] = []
    threads = [threading.Thread(target=lambda: got.append(ask())) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(builds) == 1
    assert len(got) == 2 and got[0] is got[1]


def test_a_frame_built_from_one_another_thread_is_building_waits_for_it_without_deadlock() -> None:
    memo, inner_started = Memo(), threading.Event()

    def inner() -> pl.DataFrame:
        inner_started.set()
        time.sleep(0.05)
        return pl.DataFrame({"day": [1]})

    def outer() -> pl.DataFrame:
        assert inner_started.wait(timeout=10)  # the other thread is building "daily"
        return memo.frame("daily", inner).with_columns(month=pl.lit(12))

    first = threading.Thread(target=lambda: memo.frame("daily", inner))
    first.start()
    result = memo.frame("monthly", outer)  # waits for "daily", holding only "monthly"
    first.join(timeout=10)
    assert not first.is_alive()
    assert result.columns == ["day", "month"]


def _unnarrowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Families read the whole bundle: ``EvalContext.narrowed_to`` keeps every row."""
    monkeypatch.setattr(EvalContext, "narrowed_to", lambda ctx, _patients: ctx)


def test_a_context_narrowed_to_patients_keeps_only_their_rows(demo: Bundle) -> None:
    ids = demo["patients"]["patient_id"].head(40).to_frame()
    narrowed = demo.narrowed_to(ids)
    for name, frame in narrowed.tables.items():
        if "patient_id" in frame.columns:
            assert set(frame["patient_id"]) <= set(ids["patient_id"]), name
            kept = demo[name].filter(pl.col("patient_id").is_in(ids["patient_id"].implode()))
            assert frame.equals(kept), name
        else:
            assert frame.equals(demo[name]), name


def test_families_narrowed_to_the_months_patients_give_the_unnarrowed_run(
    demo: Bundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    narrowed = evaluate(demo, MONTH, partition_patients=0)
    _unnarrowed(monkeypatch)
    _assert_same(evaluate(demo, MONTH, partition_patients=0), narrowed)


@pytest.mark.parametrize("scenario", [pytest.param(s, id=str(s["id"])) for s in _load()])
def test_a_public_scenario_evaluated_narrowed_or_not_writes_the_same_files(
    scenario: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_scenario_bundle(scenario["tables"], tmp_path / "bundle")
    month = str(scenario["month"])
    narrowed = _evaluate_cli(tmp_path / "bundle", month, tmp_path / "narrowed")
    _unnarrowed(monkeypatch)
    assert _evaluate_cli(tmp_path / "bundle", month, tmp_path / "whole") == narrowed


def test_only_the_named_families_are_evaluated(demo: Bundle) -> None:
    ccm = evaluate(demo, MONTH, only=frozenset({"ccm"}))
    everything = evaluate(demo, MONTH)
    assert {r.family for r in ccm.rule_sets} == {"ccm"}
    wanted = everything.claim_lines.filter(
        pl.col("rule").is_in(ccm.claim_lines["rule"].unique().implode())
    )
    assert ccm.claim_lines.height >= wanted.height > 0


def _evaluate_cli(bundle: Path, month: str, out: Path, *extra: str) -> dict[str, bytes]:
    args = ["evaluate", str(bundle), "--month", month, "--out", str(out), *extra]
    result = CliRunner().invoke(billing, args)
    assert result.exit_code == 0, result.output
    run_id = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["run_id"]
    return {
        p.name: p.read_bytes().replace(run_id.encode(), b"RUN") for p in sorted(out.glob("*.csv"))
    }


@pytest.mark.parametrize("scenario", [pytest.param(s, id=str(s["id"])) for s in _load()])
def test_a_public_scenario_one_patient_per_part_writes_the_same_files(
    scenario: dict[str, Any], tmp_path: Path
) -> None:
    write_scenario_bundle(scenario["tables"], tmp_path / "bundle")
    month = str(scenario["month"])
    whole = _evaluate_cli(tmp_path / "bundle", month, tmp_path / "whole")
    parts = _evaluate_cli(
        tmp_path / "bundle", month, tmp_path / "parts", "--partition-patients", "1"
    )
    assert parts == whole


def test_an_unknown_family_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        billing, ["evaluate", str(tmp_path), "--month", "2025-12", "--out", str(out),
                  "--families", "ccm,psychic"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "unknown family psychic" in result.output
    assert "tobacco" in result.output


needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason="the 'ray' extra is not installed"
)


@needs_ray
def test_the_ray_engine_on_a_local_runtime_equals_the_in_process_run(demo: Bundle) -> None:
    from billing_engine.services.ray_engine import evaluate_on_ray, start_ray

    ray: Any = start_ray(cpus=2)
    try:
        on_ray = evaluate_on_ray(demo, MONTH, parts=3)
    finally:
        ray.shutdown()
    whole = evaluate(demo, MONTH, partition_patients=0)
    _assert_same(whole, on_ray)


def test_a_practice_written_in_parts_reads_back_whole_with_unique_ids(tmp_path: Path) -> None:
    from billing_engine.io.ingest import read_bundle
    from billing_engine.synth.parts import write_practice_in_parts

    counts = write_practice_in_parts(250, tmp_path / "b", part=100)
    bundle = read_bundle(tmp_path / "b")  # every key, reference and cell checked
    assert bundle["patients"].height == counts["patients"] == 250
    assert bundle["encounters"]["encounter_id"].is_unique().all()
    first = generate_practice(100)
    assert bundle["patients"].head(100)["patient_id"].equals(first["patients"]["patient_id"])
    assert bundle["practitioners"].height == first["practitioners"].height
    assert not list((tmp_path / "b").glob(".*.part"))
