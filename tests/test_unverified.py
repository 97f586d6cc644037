"""The next year: parameters past their verified date (``billing_engine.params.unverified``).

Parameters are verified through 2026-12-31, so January 2027 is refused naming them,
since when, and ``--allow-unverified``; with it (or the setting common.allow_unverified)
the last verified values are carried forward, every affected line gets an ``info`` gap
``parameters_unverified`` naming what it used, and the run records them. Pricing a 2027
line without a 2027 CMS file is an estimate (``fee_estimated``).
"""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from billing_engine.calendar import Month
from billing_engine.errors import ParameterNotVerified
from billing_engine.io.ingest import read_bundle
from billing_engine.params.unverified import PeriodNotVerified
from billing_engine.services.evaluation import default_parameters, evaluate
from billing_engine.store import Store
from cli.main import billing
from tests.test_cli import write_bundle

JANUARY_2027 = Month.parse("2027-01")


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(billing, [str(a) for a in args])


def gaps_of(folder: Path) -> list[dict[str, str]]:
    with (folder / "gaps.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def lines_of(folder: Path) -> list[dict[str, str]]:
    with (folder / "claim_lines.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def january(tmp_path: Path) -> Path:
    """25 staff minutes on 2027-01-04: 99490 once the parameters are carried forward."""
    return write_bundle(
        tmp_path / "bundle", [{"encounter_id": "E1", "date": "2027-01-04", "minutes": 25}]
    )


def test_january_2027_is_refused_naming_the_parameters_the_date_and_the_flag(
    january: Path,
) -> None:
    with pytest.raises(PeriodNotVerified) as refused:
        evaluate(read_bundle(january), JANUARY_2027)
    message = str(refused.value)
    assert isinstance(refused.value, ParameterNotVerified)
    assert "unverified since 2027-01-01" in message
    assert "--allow-unverified" in message and "common.allow_unverified" in message
    for name in ("ccm.staff.threshold_minutes", "pricing.conversion_factor", "conflicts"):
        assert name in message
    assert "common.allow_unverified," not in message  # the setting itself never expires


def test_the_cli_refusal_is_one_line_with_exit_code_1(january: Path, tmp_path: Path) -> None:
    result = invoke("evaluate", january, "--month", "2027-01", "--out", tmp_path / "out")
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert "parameter(s) not verified for 2027-01-01..2027-01-31" in line
    assert "--allow-unverified" in line and "ccm.staff.base_code" in line
    assert not (tmp_path / "out").exists()


def test_with_allow_unverified_january_2027_bills_and_marks_every_line(
    january: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = invoke("evaluate", january, "--month", "2027-01", "--out", out, "--allow-unverified")
    assert result.exit_code == 0, result.output
    assert "parameters_unverified" in result.stderr
    lines = lines_of(out)
    assert [(r["code"], r["allowed_amount"]) for r in lines] == [("99490", "66.13")]
    marked = [g for g in gaps_of(out) if g["reason"] == "parameters_unverified"]
    assert [(g["patient_id"], g["code"], g["status"]) for g in marked] == [
        (lines[0]["patient_id"], "99490", "info")
    ]
    detail = marked[0]["detail"]
    assert detail.startswith("carried forward past their verified date: ")
    assert "(verified through 2026-12-31)" in detail
    # the line's own rule and family, the shared values, never another family's
    for name in ("ccm.staff.base_code", "common.billing_credentials", "pricing.conversion_factor"):
        assert name in detail
    assert "tcm." not in detail and "wellness." not in detail


def test_a_2027_line_without_a_2027_cms_file_is_an_estimate(january: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert (
        invoke(
            "evaluate", january, "--month", "2027-01", "--out", out, "--allow-unverified"
        ).exit_code
        == 0
    )
    (line,) = lines_of(out)
    assert "estimate" in line["fee_source"]
    (estimated,) = [g for g in gaps_of(out) if g["reason"] == "fee_estimated"]
    assert estimated["status"] == "info"
    assert (
        "2026 National Physician Fee Schedule Relative Value File July Release"
        in (estimated["detail"])
    )
    assert "33.4009" in estimated["detail"]


def test_the_manifest_says_the_run_priced_by_estimate_and_carried_parameters_forward(
    january: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert (
        invoke(
            "evaluate", january, "--month", "2027-01", "--out", out, "--allow-unverified"
        ).exit_code
        == 0
    )
    document = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    (estimated,) = [g for g in gaps_of(out) if g["reason"] == "fee_estimated"]
    assert document["fee_estimates"] == [estimated["detail"]]
    assert document["fee_estimated_lines"] == 1
    assert document["allow_unverified"] is True
    assert document["unverified_parameters"]["ccm.staff.threshold_minutes"] == "2026-12-31"
    assert document["unverified_parameters"]["conflicts"] == "2026-12-31"


def test_a_verified_month_has_no_estimates_nor_carried_parameters_in_its_manifest(
    january: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert invoke("evaluate", january, "--month", "2026-12", "--out", out).exit_code == 0
    document = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert document["fee_estimates"] == [] and document["fee_estimated_lines"] == 0
    assert document["allow_unverified"] is False and document["unverified_parameters"] == {}


def test_the_setting_means_the_same_as_the_flag(january: Path, tmp_path: Path) -> None:
    settings = tmp_path / "settings.yaml"
    settings.write_text("common.allow_unverified: true\n", encoding="utf-8")
    out = tmp_path / "out"
    result = invoke("evaluate", january, "--month", "2027-01", "--out", out, "--settings", settings)
    assert result.exit_code == 0, result.output
    assert any(g["reason"] == "parameters_unverified" for g in gaps_of(out))


def test_a_verified_month_has_no_parameters_unverified_gap_even_with_the_flag(
    tmp_path: Path,
) -> None:
    bundle = write_bundle(
        tmp_path / "b", [{"encounter_id": "E1", "date": "2026-03-04", "minutes": 25}]
    )
    result = evaluate(read_bundle(bundle), Month.parse("2026-03"),
                      settings={"common.allow_unverified": True})  # fmt: skip
    assert result.unverified_parameters == {}
    assert "parameters_unverified" not in result.gaps["reason"].to_list()
    assert result.claim_lines.select("code", "allowed_amount").rows() == [
        ("99490", Decimal("66.13"))
    ]
    assert "2026 National Physician Fee Schedule" in str(result.claim_lines["fee_source"][0])


def test_the_run_records_allow_unverified_and_the_parameters(january: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    assert invoke("import", january, "--db", url).exit_code == 0
    result = invoke(
        "evaluate", "--month", "2027-01", "--out", tmp_path / "out", "--db", url,
        "--allow-unverified",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with Store.open(url) as store:
        (run,) = store.runs()
    assert run["allow_unverified"] is True
    assert "pricing.conversion_factor" in run["unverified_parameters"]
    assert "conflicts" in run["unverified_parameters"]
    assert run["unverified_parameters"] == sorted(run["unverified_parameters"])


def test_a_run_within_the_verified_dates_records_no_unverified_parameters(
    tmp_path: Path,
) -> None:
    with Store.open(f"sqlite:///{tmp_path / 's.db'}") as store:
        store.record_run("2026-03", Month.parse("2026-03").end, "r", {}, 1, 0, "s")
        (run,) = store.runs()
    assert (run["allow_unverified"], run["unverified_parameters"]) == (False, [])


@pytest.mark.parametrize("command", ["explain", "revenue"])
def test_explain_and_revenue_take_allow_unverified(
    command: str, january: Path, tmp_path: Path
) -> None:
    args: list[str | Path] = (
        ["explain", january, "--month", "2027-01", "--patient", "P1"]
        if command == "explain"
        else ["revenue", january, "--from", "2027-01", "--to", "2027-01"]
    )
    refused = invoke(*args)
    assert refused.exit_code == 1 and "--allow-unverified" in refused.stderr
    allowed = invoke(*args, "--allow-unverified")
    assert allowed.exit_code == 0, allowed.output
    assert "99490" in allowed.output


def test_revenue_with_allow_unverified_warns_that_values_were_carried_forward(
    january: Path,
) -> None:
    allowed = invoke("revenue", january, "--from", "2027-01", "--to", "2027-01",
                     "--allow-unverified")  # fmt: skip
    assert allowed.exit_code == 0, allowed.output
    assert "used past their verified date (--allow-unverified)" in allowed.stderr
    verified = invoke("revenue", january, "--from", "2026-12", "--to", "2026-12")
    assert verified.exit_code == 0, verified.output
    assert "verified date" not in verified.stderr


# --------------------------------------------------------------------------- params check


def test_params_check_2026_lists_every_parameter_verified() -> None:
    result = invoke("params", "check", "2026")
    assert result.exit_code == 0, result.output
    count = sum(1 for _ in default_parameters()) + 1  # and the conflict table
    assert result.output.splitlines()[0] == (
        f"2026: {count} verified, 0 carried forward, 0 unverified (of {count})"
    )
    header = result.output.splitlines()[1].split()
    assert header == ["parameter", "status", "verified_through", "source"]
    row = next(r for r in result.output.splitlines() if r.startswith("pricing.conversion_factor "))
    assert row.split()[1:3] == ["verified", "2026-12-31"]
    assert "SRC-PBN-2026" in row


def test_params_check_2027_shows_what_would_be_carried_forward() -> None:
    result = invoke("params", "check", "2027")
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first.startswith("2027: 1 verified, ") and "carried forward" in first
    row = next(r for r in result.output.splitlines() if r.startswith("ccm.staff.threshold_minutes"))
    assert "carried forward  2026-12-31" in row
    assert "--allow-unverified" in result.output.splitlines()[-1]


def test_params_check_json_has_status_verified_through_and_source() -> None:
    result = invoke("params", "check", "2027", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["year"] == 2027
    rows = {r["parameter"]: r for r in doc["parameters"]}
    assert rows["pricing.conversion_factor"] == {
        "parameter": "pricing.conversion_factor",
        "status": "carried forward",
        "verified_through": "2026-12-31",
        "value_from": "2026-01-01",
        "source": "SRC-PBN-2026; SRC-AAMC-2026; SRC-HFM-2026",
        "file": "code_rules/pricing/parameters.yaml",
    }
    assert rows["common.allow_unverified"]["status"] == "verified"
    assert rows["conflicts"]["status"] == "carried forward"


def test_a_parameter_before_its_first_value_is_unverified() -> None:
    result = invoke("params", "check", "2014", "--json")
    rows = {r["parameter"]: r for r in json.loads(result.output)["parameters"]}
    assert rows["pricing.conversion_factor"]["status"] == "unverified"
    assert rows["pricing.conversion_factor"]["source"] == ""


def test_demo_takes_allow_unverified_and_records_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    args = ["demo", "--db", url, "--patients", "30", "--end-month", "2027-01"]
    assert invoke(*args).exit_code == 1
    result = invoke(*args, "--bundle", tmp_path / "b2", "--allow-unverified")
    assert result.exit_code == 0, result.output
    with Store.open(url) as store:
        run = store.runs()[-1]
    assert run["allow_unverified"] is True and run["unverified_parameters"]
