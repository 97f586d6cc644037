"""Evaluating from the store gives exactly what evaluating the bundle file gives."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

from billing_engine.calendar import Month
from billing_engine.io.ingest import read_bundle
from billing_engine.services.evaluation import evaluate
from billing_engine.store import Store
from billing_engine.synth.practice import generate_practice, write_bundle_csv
from reports.outputs import write_outputs


def test_the_store_and_the_bundle_file_evaluate_to_identical_outputs(
    store_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "bundle"
    write_bundle_csv(generate_practice(300, seed=11), folder)
    from_file = read_bundle(folder)
    with Store.open(store_url) as store:
        store.import_bundle(from_file)
        from_store = store.load_bundle()
    month = Month.parse("2025-12")
    stamp = {"run_id": str(uuid.uuid4()), "created_at": dt.datetime(2026, 1, 5, tzinfo=dt.UTC)}
    direct = write_outputs(evaluate(from_file, month), tmp_path / "direct", **stamp)
    stored = write_outputs(evaluate(from_store, month), tmp_path / "stored", **stamp)
    for a, b in zip(direct, stored, strict=True):
        assert a.name == b.name
        assert a.read_text(encoding="utf-8") == b.read_text(encoding="utf-8"), a.name
    assert "99490" in direct[0].read_text(encoding="utf-8")  # the practice bills something
