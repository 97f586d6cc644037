"""Every public acceptance scenario, run through the real `billing evaluate` command.

The scenarios are the in-repo copy of ../shared/scenarios/public.yaml
(tests/data/shared/scenarios/, checked against the original by test_shared_copies.py),
compared as its README.md says: claim lines exactly (patient, code,
units), each expected gap matched by at least one gap row, amounts to the cent.
A scenario that needs a code no registered family evaluates is expected to fail,
naming the code; it passes unchanged once that family lands.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from billing_engine.calendar import Month
from billing_engine.services.evaluation import default_parameters
from cli.main import billing
from code_rules.registry import FAMILIES
from tests.scenario_io import write_scenario_bundle
from tests.shared_data import SCENARIOS

FAMILY_MISSING = "no registered code family evaluates code {}"


def _load() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = yaml.safe_load(SCENARIOS.read_text(encoding="utf-8"))
    return data


def implemented_codes(month: str) -> set[str]:
    """Codes the registered families bill, read from their parameters for the month."""
    m = Month.parse(month)
    period = default_parameters().for_period(m.start, m.end)
    codes = set()
    for name in FAMILIES:
        for param in default_parameters():
            if param.name.startswith(f"{name}.") and param.unit == "HCPCS code":
                codes.add(str(period[param.name]))
    return codes


def _params() -> list[Any]:
    out = []
    for scenario in _load():
        expected = {
            row["code"] for key in ("lines", "gaps") for row in scenario["expect"].get(key) or []
        }
        missing = sorted(expected - implemented_codes(str(scenario["month"])))
        marks = []
        if missing:
            marks.append(
                pytest.mark.xfail(reason=FAMILY_MISSING.format(", ".join(missing)), strict=True)
            )
        out.append(pytest.param(scenario, id=scenario["id"], marks=marks))
    return out


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("scenario", _params())
def test_public_scenario_produces_the_expected_lines_and_gaps(
    scenario: dict[str, Any], tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle"
    out = tmp_path / "out"
    write_scenario_bundle(scenario["tables"], bundle)
    month = str(scenario["month"])
    result = CliRunner().invoke(
        billing, ["evaluate", str(bundle), "--month", month, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    lines = _read_csv(out / "claim_lines.csv")
    gaps = _read_csv(out / "gaps.csv")
    expect = scenario["expect"]
    got = Counter((r["patient_id"], r["code"], int(r["units"])) for r in lines)
    want = Counter(
        (r["patient_id"], str(r["code"]), int(r["units"])) for r in expect.get("lines") or []
    )
    problems = []
    if got != want:
        problems.append(f"lines: got {sorted(got.elements())}, expected {sorted(want.elements())}")
    for gap in expect.get("gaps") or []:

        def matches(row: dict[str, str], gap: dict[str, Any] = gap) -> bool:
            same = (row["patient_id"], row["code"], row["reason"]) == (
                gap["patient_id"],
                str(gap["code"]),
                gap["reason"],
            )
            if "status" in gap:
                same = same and row["status"] == gap["status"]
            if "minutes_needed" in gap:
                same = same and row["minutes_needed"] == str(gap["minutes_needed"])
            return same

        if not any(matches(row) for row in gaps):
            shown = [
                (r["patient_id"], r["code"], r["status"], r["reason"], r["minutes_needed"])
                for r in gaps
            ]
            problems.append(f"gap {gap} not found among {shown}")
    for amount in expect.get("amounts") or []:
        rows = [
            r
            for r in lines
            if (r["patient_id"], r["code"]) == (amount["patient_id"], str(amount["code"]))
        ]
        for column in ("allowed_amount", "payer_amount", "patient_amount"):
            if column in amount and (not rows or rows[0][column] != str(amount[column])):
                problems.append(f"amount {amount} != {[r[column] for r in rows]} ({column})")
    if problems and scenario.get("confidence") == "L":
        pytest.xfail("rule marked [L] (uncertain): " + "; ".join(problems))
    assert not problems, f"{scenario['id']}: {scenario['name']}\n" + "\n".join(problems)
