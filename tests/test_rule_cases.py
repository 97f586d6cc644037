"""Per-code rule cases from tests/rule_cases/*.yaml, each named as a sentence.

Every case is written as a real CSV bundle, read back through the importer (so each
case is also a valid bundle) and evaluated for its month. See the header of
tests/rule_cases/ccm.yaml for the format.

A case evaluates only the families under test: the file's ``family:`` (a name, a list
or ``all``; default: the file's stem), or the case's own ``families:``. Conflicts are
still resolved. A case's ``parameters:`` override rule parameters (name -> value, over
the whole verified span) and ``settings:`` the settings. Lines and gaps are compared
exactly: every produced gap must be matched by one expected gap on the keys it gives,
one to one (``exact_info: false`` leaves unexpected ``info`` gaps out). A case whose
``suspected_bug:`` says why the engine is believed wrong is a strict xfail.
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
from billing_engine.engine.family import FamilyEvaluator
from billing_engine.errors import ParameterNotVerified
from billing_engine.io.ingest import read_bundle
from billing_engine.services.evaluation import EvaluationResult, default_parameters, evaluate
from code_rules.registry import FAMILIES
from tests.scenario_io import write_scenario_bundle

CASES = Path(__file__).with_name("rule_cases")
DEFAULT_PATIENT = "P1"
ALL_FAMILIES = "all"
TEST_CASE_SOURCE = "rule case"


def _cases() -> list[Any]:
    params = []
    for path in sorted(CASES.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for case in doc["cases"]:
            doc.setdefault("family", path.stem)
            # a suspected engine bug: the case states the rule and fails until it is fixed
            bug = case.get("suspected_bug")
            marks = [pytest.mark.xfail(reason=bug, strict=True)] if bug else []
            params.append(pytest.param(doc, case, id=f"{path.stem}: {case['name']}", marks=marks))
    return params


def families_under_test(doc: dict[str, Any], case: dict[str, Any]) -> dict[str, FamilyEvaluator]:
    """The evaluators a case runs: its ``families:``, else its file's ``family:``."""
    named = case.get("families", doc.get("family", ALL_FAMILIES))
    if named == ALL_FAMILIES:
        return dict(FAMILIES)
    names = [named] if isinstance(named, str) else list(named)
    unknown = [name for name in names if name not in FAMILIES]
    assert not unknown, f"unknown families {unknown}; known: {sorted(FAMILIES)}"
    return {name: FAMILIES[name] for name in names}


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
    overrides = case.get("parameters")
    params = default_parameters()
    if overrides:
        params = params.with_values(overrides, source=TEST_CASE_SOURCE)
    return evaluate(
        read_bundle(folder),
        Month.parse(str(case["month"])),
        dt.date.fromisoformat(str(as_of)) if as_of else None,
        params=params,
        settings=case.get("settings"),
        families=families_under_test(doc, case),
    )


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _matches(row: dict[str, Any], expected: dict[str, Any]) -> bool:
    return all(_text(row.get(key)) == _text(value) for key, value in expected.items())


def one_to_one(wanted: list[dict[str, Any]], rows: list[dict[str, Any]]) -> dict[int, int] | None:
    """A matching of every wanted entry to its own row (wanted -> row index), or None.

    Entries give only some keys, so one may fit several rows: augmenting paths find a
    matching whenever one exists (a greedy pick could take the row another needs).
    """
    fits = [[j for j, row in enumerate(rows) if _matches(row, want)] for want in wanted]
    owner: dict[int, int] = {}  # row -> wanted

    def place(i: int, seen: set[int]) -> bool:
        for j in fits[i]:
            if j not in seen:
                seen.add(j)
                if j not in owner or place(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    if not all(place(i, set()) for i in range(len(wanted))):
        return None
    return {i: j for j, i in owner.items()}


def _shown(gap: dict[str, Any]) -> str:
    keys = ("code", "status", "reason", "minutes_needed", "minutes_logged", "period_start")
    return "{" + ", ".join(f"{k}: {_text(gap[k])}" for k in keys if gap.get(k) is not None) + "}"


def assert_gaps_exact(
    wanted: list[dict[str, Any]], gaps: list[dict[str, Any]], *, exact_info: bool
) -> None:
    """Each produced gap is matched by exactly one expected gap, and each expected by one."""
    matching = one_to_one(wanted, gaps)
    produced = "\n  ".join(map(_shown, gaps)) or "(none)"
    assert matching is not None, f"expected gaps {wanted} not all matched; produced:\n  {produced}"
    matched = set(matching.values())
    extra = [
        gap
        for j, gap in enumerate(gaps)
        if j not in matched and (exact_info or gap["status"] != "info")
    ]
    shown = "\n  ".join(map(_shown, extra))
    assert not extra, f"gaps produced but not expected:\n  {shown}\nproduced:\n  {produced}"


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
    wanted_gaps = [{"patient_id": DEFAULT_PATIENT, **gap} for gap in expect.get("gaps") or []]
    assert_gaps_exact(wanted_gaps, gaps, exact_info=case.get("exact_info", True))
