"""Per-code rule cases from tests/rule_cases/*.yaml, each named as a sentence.

Every case is written as a real CSV bundle, read back through the importer (so each
case is also a valid bundle) and evaluated for its month. See the header of
tests/rule_cases/ccm.yaml for the format.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from billing_engine.calendar import Month
from billing_engine.errors import ParameterNotVerified
from billing_engine.io.ingest import read_bundle
from billing_engine.services.evaluation import EvaluationResult, evaluate
from tests.scenario_io import write_scenario_bundle

CASES = Path(__file__).with_name("rule_cases")
DEFAULT_PATIENT = "P1"


def _cases() -> list[Any]:
    params = []
    for path in sorted(CASES.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for case in doc["cases"]:
            params.append(pytest.param(doc, case, id=f"{path.stem}: {case['name']}"))
    return params


def build_tables(doc: dict[str, Any], case: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    tables: dict[str, list[dict[str, Any]]] = copy.deepcopy(doc["base"])
    defaults = doc.get("defaults", {})
    counter = 0

    def complete(name: str, row: dict[str, Any]) -> dict[str, Any]:
        nonlocal counter
        counter += 1
        full = {**defaults.get(name, {}), **row}
        if name == "encounters":
            full.setdefault("encounter_id", f"E{counter}")
        return full

    for name, rows in (case.get("replace") or {}).items():
        tables[name] = [complete(name, row) for row in rows]
    for name, rows in (case.get("add") or {}).items():
        tables.setdefault(name, []).extend(complete(name, row) for row in rows)
    return {
        name: rows for name, rows in tables.items() if rows or name in ("patients", "encounters")
    }


def run_case(doc: dict[str, Any], case: dict[str, Any], folder: Path) -> EvaluationResult:
    write_scenario_bundle(build_tables(doc, case), folder)
    as_of = case.get("as_of")
    return evaluate(
        read_bundle(folder),
        Month.parse(str(case["month"])),
        dt.date.fromisoformat(str(as_of)) if as_of else None,
        settings=case.get("settings"),
    )


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _matches(row: dict[str, Any], expected: dict[str, Any]) -> bool:
    return all(_text(row.get(key)) == _text(value) for key, value in expected.items())


@pytest.mark.parametrize(("doc", "case"), _cases())
def test_rule_case(doc: dict[str, Any], case: dict[str, Any], tmp_path: Path) -> None:
    expect = case["expect"]
    if "error" in expect:
        with pytest.raises(ParameterNotVerified, match=expect["error"]):
            run_case(doc, case, tmp_path)
        return
    result = run_case(doc, case, tmp_path)
    lines = result.claim_lines.to_dicts()
    gaps = result.gaps.to_dicts()
    wanted = [{"patient_id": DEFAULT_PATIENT, **line} for line in expect.get("lines") or []]
    got_keys = Counter((r["patient_id"], r["code"], r["units"]) for r in lines)
    want_keys = Counter((w["patient_id"], str(w["code"]), int(w["units"])) for w in wanted)
    shown_gaps = [(g["code"], g["status"], g["reason"], g["minutes_needed"]) for g in gaps]
    assert got_keys == want_keys, f"lines {sorted(got_keys)}; gaps {shown_gaps}"
    for want in wanted:
        assert any(_matches(r, want) for r in lines), f"no line matches {want} in {lines}"
    for gap in expect.get("gaps") or []:
        want = {"patient_id": DEFAULT_PATIENT, **gap}
        assert any(_matches(g, want) for g in gaps), f"no gap matches {want} in {shown_gaps}"
