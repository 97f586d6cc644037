"""End to end through the ``billing`` command (click's CliRunner) on small CSV bundles.

Every bundle starts from the ``base`` of tests/rule_cases/ccm.yaml (one Medicare patient
P1 with two chronic conditions, a CCM consent naming DR_A, an established care plan and
a 2024 visit with DR_A) plus care-management entries for March 2025. Output columns are
checked against the contract as docs/interchange.md states it.
"""

from __future__ import annotations

import copy
import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from billing_engine.calendar import Month
from billing_engine.errors import ConfigError
from billing_engine.io.ingest import read_bundle
from billing_engine.services.evaluation import evaluate
from billing_engine.store import Store
from cli.main import billing
from tests.scenario_io import write_scenario_bundle

ROOT = Path(__file__).resolve().parents[1]
RULE_CASES = ROOT / "tests" / "rule_cases" / "ccm.yaml"
INTERCHANGE = ROOT / "docs" / "interchange.md"
MONEY = ("allowed_amount", "payer_amount", "patient_amount")
OUTPUTS = ("claim_lines", "gaps", "revenue_by_payer")

# 25 staff minutes on 03-04 (99490 dated 03-04), 10 of the practitioner's own on 03-06
# (99491 considered, short), 5 minutes by the non-clinical scheduler (never counted).
ENTRIES: list[dict[str, Any]] = [
    {"encounter_id": "E1", "date": "2025-03-04", "minutes": 25},
    {"encounter_id": "E2", "date": "2025-03-06", "minutes": 10, "performer_id": "DR_A"},
    {"encounter_id": "E3", "date": "2025-03-07", "minutes": 5, "performer_id": "CLERK"},
]
SHORT_ENTRIES: list[dict[str, Any]] = [{"encounter_id": "E1", "date": "2025-03-04", "minutes": 15}]


def contract_columns(output: str) -> list[str]:
    """The columns docs/interchange.md lists for `<output>.csv`, in their order."""
    text = INTERCHANGE.read_text(encoding="utf-8")
    section = text.split(f"### {output}.csv", 1)[1]
    names = re.search(r"`([^`]+)`", section)
    assert names, f"no column list under '### {output}.csv' in {INTERCHANGE}"
    return [name.strip() for name in names.group(1).split(",")]


def write_bundle(folder: Path, entries: list[dict[str, Any]]) -> Path:
    doc = yaml.safe_load(RULE_CASES.read_text(encoding="utf-8"))
    tables: dict[str, list[dict[str, Any]]] = copy.deepcopy(doc["base"])
    defaults = doc["defaults"]["encounters"]
    tables["encounters"] += [{**defaults, **entry} for entry in entries]
    write_scenario_bundle(tables, folder)
    return folder


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return write_bundle(tmp_path / "bundle", ENTRIES)


@pytest.fixture
def short_bundle(tmp_path: Path) -> Path:
    return write_bundle(tmp_path / "short", SHORT_ENTRIES)


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(billing, [str(a) for a in args])


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def without_run_id(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """A written CSV file as ``read_csv`` gives it, its last column ``run_id`` dropped."""
    header, rows = read_csv(path)
    assert header[-1] == "run_id", header
    return header[:-1], [{k: v for k, v in row.items() if k != "run_id"} for row in rows]


def evaluate_ok(*args: str | Path) -> Result:
    result = invoke("evaluate", *args)
    assert result.exit_code == 0, result.output
    return result


def one_line_error(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {result.stderr!r}"
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.output
    return lines[0]


# --------------------------------------------------------------------------- evaluate


def test_evaluate_writes_the_contract_tables_with_their_columns_first_and_capitation(
    bundle: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = evaluate_ok(bundle, "--month", "2025-03", "--out", out)
    written = sorted(p.name for p in out.iterdir())
    expected_files = [f"{name}.csv" for name in OUTPUTS] + ["capitation.csv", "manifest.json"]
    assert written == sorted(expected_files)
    for name in OUTPUTS:
        header, _ = read_csv(out / f"{name}.csv")
        expected = contract_columns(name)
        assert header[: len(expected)] == expected, f"{name}.csv: {header}"
        assert f"{name}.csv" in result.output
    assert "claim line(s)" in result.output


def test_evaluate_bills_the_month_and_reports_the_gaps(bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    evaluate_ok(bundle, "--month", "2025-03", "--out", out)
    _, lines = read_csv(out / "claim_lines.csv")
    assert [(r["patient_id"], r["code"], r["units"]) for r in lines] == [("P1", "99490", "1")]
    line = lines[0]
    assert line["date_of_service"] == "2025-03-04"
    assert line["billing_npi"] == "1234567893"
    assert line["period_start"] == "2025-03-01" and line["period_end"] == "2025-03-31"
    assert set(line["evidence"].split(";")) >= {"E1", "E2", "C1", "CP1"}  # not the clerk's E3
    _, gaps = read_csv(out / "gaps.csv")
    by_code = {g["code"]: g for g in gaps}
    assert by_code["99439"]["minutes_needed"] == "5"  # 35 counted, 40 for the add-on
    assert by_code["99491"]["minutes_needed"] == "20"  # 10 of the practitioner's own, 30 needed
    assert {g["status"] for g in gaps} == {"short"}


def test_a_priced_line_carries_its_amounts_and_revenue_totals_them(
    bundle: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    evaluate_ok(bundle, "--month", "2025-03", "--out", out)
    _, lines = read_csv(out / "claim_lines.csv")
    # 99490, March 2025, national: 60.49; Medicare 80 % (48.39) less 2 % (0.97); patient 20 %
    assert [lines[0][c] for c in MONEY] == ["60.49", "47.42", "12.10"]
    assert lines[0]["sequestration_amount"] == "0.97"
    assert lines[0]["fee_source"].startswith("PFS 2025 non-facility RVU 1/0.81/0.06")
    _, revenue = read_csv(out / "revenue_by_payer.csv")
    assert [(r["code"], r["lines"], r["units"], r["allowed_amount"]) for r in revenue] == [
        ("99490", "1", "1", "60.49"),
        ("TOTAL", "1", "1", "60.49"),
        ("GRAND TOTAL", "1", "1", "60.49"),
    ]
    assert (revenue[-1]["payer_id"], revenue[-1]["payer_name"]) == ("GRAND TOTAL", "all payers")


def test_a_line_without_a_fee_keeps_empty_amounts_never_zero_and_says_why(
    bundle: Path, tmp_path: Path
) -> None:
    # A commercial payer on the default `schedule` basis with no fee_schedule row.
    (bundle / "payers.csv").write_text(
        "payer_id,name,kind\nMCR,Plan without a fee schedule,commercial\n", encoding="utf-8"
    )
    out = tmp_path / "out"
    evaluate_ok(bundle, "--month", "2025-03", "--out", out)
    for name in ("claim_lines", "revenue_by_payer"):
        _, rows = read_csv(out / f"{name}.csv")
        assert rows, f"{name}.csv has no rows"
        for row in rows:
            assert [row[c] for c in MONEY] == ["", "", ""], f"{name}.csv: {row}"
    _, gaps = read_csv(out / "gaps.csv")
    fee_gaps = [g for g in gaps if g["reason"] == "fee_not_found"]
    assert [(g["code"], g["status"]) for g in fee_gaps] == [("99490", "info")]
    assert "no fee_schedule row of payer MCR for 99490" in fee_gaps[0]["detail"]
    _, revenue = read_csv(out / "revenue_by_payer.csv")
    assert [r["unpriced_lines"] for r in revenue] == ["1", "1", "1"]


def test_json_format_writes_one_document_with_the_three_tables(
    bundle: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    evaluate_ok(bundle, "--month", "2025-03", "--out", out, "--format", "json")
    assert sorted(p.name for p in out.iterdir()) == ["evaluation.json", "manifest.json"]
    document = json.loads((out / "evaluation.json").read_text(encoding="utf-8"))
    assert document["month"] == "2025-03"
    for name in OUTPUTS:
        rows = document[name]
        assert isinstance(rows, list) and rows, name
        expected = contract_columns(name)
        assert list(rows[0])[: len(expected)] == expected, name
    assert [(r["code"], r["units"]) for r in document["claim_lines"]] == [("99490", 1)]
    assert document["claim_lines"][0]["allowed_amount"] == "60.49"


def test_as_of_after_the_month_end_turns_short_gaps_blocked(
    short_bundle: Path, tmp_path: Path
) -> None:
    during, after = tmp_path / "during", tmp_path / "after"
    evaluate_ok(short_bundle, "--month", "2025-03", "--out", during)
    evaluate_ok(short_bundle, "--month", "2025-03", "--out", after, "--as-of", "2025-04-02")
    gap_during = {g["code"]: g for g in read_csv(during / "gaps.csv")[1]}["99490"]
    gap_after = {g["code"]: g for g in read_csv(after / "gaps.csv")[1]}["99490"]
    assert (gap_during["status"], gap_during["deadline"]) == ("short", "2025-03-31")
    assert (gap_after["status"], gap_after["deadline"]) == ("blocked", "")
    assert gap_during["minutes_needed"] == gap_after["minutes_needed"] == "5"


def test_a_settings_file_moves_the_date_of_service_to_the_month_end(
    bundle: Path, tmp_path: Path
) -> None:
    settings = tmp_path / "settings.yaml"
    settings.write_text("common.date_of_service_rule: month_end\n", encoding="utf-8")
    default, month_end = tmp_path / "default", tmp_path / "month_end"
    evaluate_ok(bundle, "--month", "2025-03", "--out", default)
    evaluate_ok(bundle, "--month", "2025-03", "--out", month_end, "--settings", settings)
    assert read_csv(default / "claim_lines.csv")[1][0]["date_of_service"] == "2025-03-04"
    assert read_csv(month_end / "claim_lines.csv")[1][0]["date_of_service"] == "2025-03-31"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("common.no_such_setting: 1\n", "unknown parameter 'common.no_such_setting'"),
        ("ccm.staff.threshold_minutes: 10\n", "not a setting"),
        ("common.date_of_service_rule: weekly\n", "must be one of"),
    ],
    ids=["unknown name", "rule parameter", "value not among the choices"],
)
def test_an_invalid_setting_is_a_one_line_error_with_exit_code_1(
    bundle: Path, tmp_path: Path, content: str, message: str
) -> None:
    settings = tmp_path / "settings.yaml"
    settings.write_text(content, encoding="utf-8")
    out = tmp_path / "out"
    result = invoke("evaluate", bundle, "--month", "2025-03", "--out", out, "--settings", settings)
    assert result.exit_code == 1
    assert message in one_line_error(result)
    assert not out.exists()


@pytest.mark.parametrize("month", ["2025-13", "2025-3", "March"])
def test_a_malformed_month_is_a_usage_error(bundle: Path, tmp_path: Path, month: str) -> None:
    result = invoke("evaluate", bundle, "--month", month, "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert "Invalid value for '--month'" in result.output
    assert "YYYY-MM" in result.output


def test_a_broken_bundle_exits_2_naming_file_row_and_column(tmp_path: Path) -> None:
    broken = write_bundle(
        tmp_path / "broken",
        [*ENTRIES, {"encounter_id": "E9", "patient_id": "P9", "date": "2025-03-05", "minutes": 5}],
    )
    out = tmp_path / "out"
    result = invoke("evaluate", broken, "--month", "2025-03", "--out", out)
    assert result.exit_code == 2
    # header = row 1, V0 = row 2, E1-E3 = rows 3-5, E9 = row 6
    assert "encounters.csv, row 6, column patient_id" in result.stderr
    assert "P9" in result.stderr
    assert "Traceback" not in result.output
    assert not out.exists()


def test_debug_re_raises_the_engine_error(bundle: Path, tmp_path: Path) -> None:
    settings = tmp_path / "settings.yaml"
    settings.write_text("common.no_such_setting: 1\n", encoding="utf-8")
    args: list[str | Path] = ["evaluate", bundle, "--month", "2025-03", "--out", tmp_path / "out"]
    plain = invoke(*args, "--settings", settings)
    debug = invoke("--debug", *args, "--settings", settings)
    assert isinstance(plain.exception, SystemExit)
    assert isinstance(debug.exception, ConfigError)
    assert "no_such_setting" in str(debug.exception)


# --------------------------------------------------------------------------- explain


def criterion_names(bundle: Path, code: str) -> list[str]:
    """The criteria the engine checks for `code` (read from the evaluated rules)."""
    result = evaluate(read_bundle(bundle), Month.parse("2025-03"))
    rules = [rule for rs in result.rule_sets for rule in rs.rules if rule.code == code]
    assert len(rules) == 1, [r.key for r in rules]
    return [criterion.name for criterion in rules[0].criteria]


def code_section(text: str, code: str) -> str:
    sections = re.split(r"^(?=== )", text, flags=re.MULTILINE)
    matching = [s for s in sections if s.startswith(f"== {code} ")]
    assert len(matching) == 1, f"{len(matching)} sections for {code} in:\n{text}"
    return matching[0]


def test_explain_prints_criteria_parameters_with_sources_and_time_entries(
    bundle: Path,
) -> None:
    result = invoke("explain", bundle, "--month", "2025-03", "--patient", "P1")
    assert result.exit_code == 0, result.output
    text = result.output
    assert "Patient P1 - 2025-03" in text
    base = code_section(text, "99490")
    names = criterion_names(bundle, "99490")
    assert len(names) > 5
    for name in names:  # every criterion of 99490, each passed (it is billed)
        assert re.search(rf"^\s+\[pass\] {name}:", base, flags=re.MULTILINE), name
    assert "result: CLAIM LINE" in base
    for code in ("99439", "99491"):  # short: the time criterion fails
        section = code_section(text, code)
        assert re.search(r"^\s+\[FAIL\] time_threshold:", section, flags=re.MULTILINE), code
        assert "GAP short / time_below_threshold" in section
    assert "ccm.staff.threshold_minutes = 20" in base
    assert "SRC-CCM-MLN-2015" in base  # the parameter's source
    entries = {line.split()[0]: line for line in text.splitlines() if re.match(r"^\s+E\d\s", line)}
    assert set(entries) == {"E1", "E2", "E3"}
    assert entries["E1"].rstrip().endswith("counted")
    assert entries["E2"].rstrip().endswith("counted")
    assert "not counted: not_clinical_staff_or_billing_practitioner" in entries["E3"]
    assert "common.date_of_service_rule = threshold_met" in text  # settings in force


def test_explain_with_a_code_shows_only_that_code(bundle: Path) -> None:
    result = invoke("explain", bundle, "--month", "2025-03", "--patient", "P1", "--code", "99490")
    assert result.exit_code == 0, result.output
    shown = re.findall(r"^== (\S+) ", result.output, flags=re.MULTILINE)
    assert shown == ["99490"]
    assert "result: CLAIM LINE: 1 unit(s), date of service 2025-03-04" in result.output


def test_explain_for_an_unknown_patient_is_a_one_line_error(bundle: Path) -> None:
    result = invoke("explain", bundle, "--month", "2025-03", "--patient", "NOPE")
    assert result.exit_code == 1
    assert "NOPE" in one_line_error(result)


# --------------------------------------------------------------------------- the store


def test_evaluate_from_the_store_matches_the_bundle_and_records_a_run(
    bundle: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    imported = invoke("import", bundle, "--db", url)
    assert imported.exit_code == 0, imported.output
    assert "encounters" in imported.output
    from_store, from_bundle = tmp_path / "store_out", tmp_path / "bundle_out"
    result = evaluate_ok("--month", "2025-03", "--out", from_store, "--db", url)
    evaluate_ok(bundle, "--month", "2025-03", "--out", from_bundle)
    assert re.search(r"run \S+ recorded", result.output)
    with Store.open(url) as store:
        runs = store.runs()
    assert len(runs) == 1
    assert runs[0]["month"] == "2025-03"
    assert runs[0]["line_count"] == 1
    assert runs[0]["input_row_counts"]["encounters"] == 4
    for name in ("claim_lines", "gaps"):  # the same but for each run's own run_id
        assert without_run_id(from_store / f"{name}.csv") == without_run_id(
            from_bundle / f"{name}.csv"
        )
        assert {row["run_id"] for row in read_csv(from_store / f"{name}.csv")[1]} <= {
            runs[0]["run_id"]
        }


def test_evaluating_a_bundle_path_records_no_run(bundle: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    assert invoke("import", bundle, "--db", url).exit_code == 0
    result = evaluate_ok(bundle, "--month", "2025-03", "--out", tmp_path / "out", "--db", url)
    assert "recorded" not in result.output
    with Store.open(url) as store:
        assert store.runs() == []


def test_explain_reads_the_store_without_a_bundle(bundle: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    assert invoke("import", bundle, "--db", url).exit_code == 0
    result = invoke("explain", "--month", "2025-03", "--patient", "P1", "--db", url)
    assert result.exit_code == 0, result.output
    assert "== 99490 " in result.output
