"""``billing explain``: how many minutes of each entry counted and why not, the line's
amounts and fee derivation, and only the settings the explained codes read."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner, Result

from cli.main import billing
from tests.scenario_io import write_ccm_case_bundle as write_bundle


def explain(folder: Path, *args: str) -> Result:
    result = CliRunner().invoke(
        billing, ["explain", str(folder), "--month", "2025-03", "--patient", "P1", *args]
    )
    assert result.exit_code == 0, result.output
    return result


def entry_line(text: str, encounter_id: str) -> str:
    lines = [line for line in text.splitlines() if re.match(rf"^\s+{encounter_id}\s", line)]
    assert len(lines) == 1, text
    return lines[0].strip()


def test_explain_says_how_many_minutes_of_an_entry_counted_and_which_visit_took_the_rest(
    tmp_path: Path,
) -> None:
    # E1 09:00-09:07 (7 min) overlaps the office visit V1 from 09:05: 5 of 7 count.
    folder = write_bundle(
        tmp_path / "b",
        [
            {"encounter_id": "E1", "date": "2025-03-04", "start_time": "09:00", "minutes": 7},
            {"encounter_id": "E2", "date": "2025-03-04", "start_time": "10:00", "minutes": 20},
            {"encounter_id": "E3", "date": "2025-03-04", "start_time": "10:10", "minutes": 15},
            {"encounter_id": "V1", "date": "2025-03-04", "start_time": "09:05", "minutes": 15,
             "performer_id": "DR_A", "kind": "office_visit", "program": None,
             "cpt": "99213"},
        ],
    )  # fmt: skip
    text = explain(folder).output
    assert entry_line(text, "E1").endswith("5 of 7 counted (2 min during visit V1)")
    assert entry_line(text, "E2").endswith("20 of 20 counted")
    # E3 10:10-10:25 overlaps E2 (10:00-10:20) for 10 minutes: counted once, by E2
    assert entry_line(text, "E3").endswith("5 of 15 counted (10 min overlapping E2, counted once)")


def test_explain_shows_the_lines_amounts_and_how_its_fee_was_found(tmp_path: Path) -> None:
    folder = write_bundle(tmp_path / "b", [{"encounter_id": "E1", "date": "2025-03-04",
                                            "minutes": 25}])  # fmt: skip
    text = explain(folder, "--code", "99490").output
    assert "amounts: allowed 60.49, payer 47.42, patient 12.10, sequestration 0.97" in text
    assert "secondary" not in text.split("amounts:")[1].splitlines()[0]  # no secondary coverage
    assert re.search(r"^\s+fee: PFS 2025 non-facility RVU 1/0.81/0.06 x GPCI national", text,
                     flags=re.MULTILINE)  # fmt: skip


def test_explain_names_the_secondary_payer_beside_its_amount(tmp_path: Path) -> None:
    folder = write_bundle(
        tmp_path / "b",
        [{"encounter_id": "E1", "date": "2025-03-04", "minutes": 25}],
        payers=[{"payer_id": "MCD", "name": "Medicaid", "kind": "medicaid", "state": "MI"}],
        coverages=[{"patient_id": "P1", "payer_id": "MCD", "start_date": "2015-04-01",
                    "rank": 2}],
    )  # fmt: skip
    text = explain(folder, "--code", "99490").output
    assert "patient 0.00, secondary (MCD) 12.10, sequestration 0.97" in text


def test_explain_prints_only_the_settings_the_explained_codes_read(tmp_path: Path) -> None:
    folder = write_bundle(tmp_path / "b", [{"encounter_id": "E1", "date": "2025-03-04",
                                            "minutes": 25}])  # fmt: skip
    text = explain(folder, "--code", "99490").output
    settings = text.split("Settings these codes read:")[1]
    assert "common.date_of_service_rule = threshold_met" in settings
    assert "pricing.cost_sharing_by_payer_kind" in settings  # the line was priced
    for other in ("tobacco.window", "tcm.death_policy", "mnt.unit_rounding", "obesity."):
        assert other not in settings, other


def test_explain_says_when_a_program_earlier_in_the_priority_took_the_minutes(
    tmp_path: Path,
) -> None:
    # The same 10:00-10:10 logged to CCM and to Medicaid case management: CCM comes
    # first in common.program_minute_priority and keeps the minutes.
    folder = write_bundle(
        tmp_path / "b",
        [
            {"encounter_id": "E1", "date": "2025-03-04", "start_time": "10:00", "minutes": 25},
            {"encounter_id": "E2", "date": "2025-03-04", "start_time": "10:00", "minutes": 10,
             "program": "case_management"},
        ],
    )  # fmt: skip
    text = explain(folder).output
    assert entry_line(text, "E1").endswith("25 of 25 counted")
    assert entry_line(text, "E2").endswith("0 of 10 counted (10 min counted toward ccm (E1))")
