"""The audit pack (``billing explain --format html``): one patient's month as an auditor
asks for it, self-contained, with the rule texts and sources the codes cite."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from billing_engine.calendar import Month
from billing_engine.services.audit_pack import build_audit_pack
from cli.main import billing
from code_rules import build_rule_texts
from code_rules.rule_texts import rule_texts
from reports.audit_pack import inline_markdown
from tests.close_support import MONTH, practice_bundle

M = Month.parse(MONTH)


@pytest.fixture(scope="module")
def bundle():  # type: ignore[no-untyped-def]
    return practice_bundle(120)


def _ccm_patient(bundle) -> str:  # type: ignore[no-untyped-def]
    from billing_engine.services.evaluation import evaluate

    lines = evaluate(bundle, M).claim_lines
    return str(lines.filter(pl.col("code") == "99490")["patient_id"][0])


def test_the_shipped_rule_texts_are_what_the_rules_reference_gives() -> None:
    assert build_rule_texts.main(["--check"]) == 0
    texts = rule_texts()
    assert texts["rules"]["TIME-2"]["title"] == "CCM thresholds are absolute"
    assert texts["rules"]["BIZ-1"]["text"].startswith('For TCM, "within 2 business days"')
    assert texts["sources"]["SRC-AAFP-MIDPOINT"]["address"].startswith("https://")


def test_the_pack_holds_consent_care_plan_timeline_and_the_cited_rules(bundle) -> None:  # type: ignore[no-untyped-def]
    patient = _ccm_patient(bundle)
    pack = build_audit_pack(bundle, M, patient)
    assert pack.consents and {"obtained_date", "method", "billing_practitioner_id"} <= set(
        pack.consents[0]
    )
    assert pack.care_plans
    counted = [e for e in pack.timeline if e["kind"] == "care_management"]
    assert counted and all(e["counted"] for e in counted)
    cited = {r["id"] for r in pack.rules}
    assert {"CCM-C1", "CCM-D1", "TIME-2"} <= cited
    assert all(r["text"] for r in pack.rules)
    assert {s["key"] for s in pack.sources} >= {k for r in pack.rules for k in r["sources"]}


def test_the_cli_writes_one_self_contained_page(bundle, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from billing_engine.synth.practice import write_bundle_csv

    folder = tmp_path / "bundle"
    write_bundle_csv(bundle, folder)
    patient = _ccm_patient(bundle)
    out = tmp_path / "pack.html"
    result = CliRunner().invoke(
        billing,
        ["explain", str(folder), "--month", MONTH, "--patient", patient, "--format", "html",
         "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and f"patient {patient}" in page
    assert "Consents" in page and "Rules cited" in page and "Source documents" in page
    assert not re.search(r"<(script|link|img)\b", page)  # nothing loaded from anywhere
    first = bundle["patients"].filter(pl.col("patient_id") == patient)["last_name"][0]
    assert first in page and first not in result.output  # PHI in the file, not the console


def test_text_from_the_bundle_is_escaped_and_reference_marks_become_html(bundle) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    from reports.audit_pack import render_audit_pack

    patient = _ccm_patient(bundle)
    patients = bundle["patients"].with_columns(
        pl.when(pl.col("patient_id") == patient)
        .then(pl.lit("<script>alert(1)</script>"))
        .otherwise(pl.col("last_name"))
        .alias("last_name")
    )
    odd = replace(bundle, tables={**bundle.tables, "patients": patients})
    page = render_audit_pack(
        build_audit_pack(odd, M, patient), made_at=dt.datetime(2026, 1, 5, tzinfo=dt.UTC),
        made_by="auditor",
    )  # fmt: skip
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert (
        str(inline_markdown("a **b** `c` <d>")) == "a <strong>b</strong> <code>c</code> &lt;d&gt;"
    )


@pytest.mark.skipif(
    shutil.which("chromium") is None and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (CI installs it)",
)
def test_the_pack_renders_in_a_headless_browser(bundle, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    from reports.audit_pack import render_audit_pack

    page = tmp_path / "pack.html"
    pack = build_audit_pack(bundle, M, _ccm_patient(bundle))
    page.write_text(render_audit_pack(pack, made_at=dt.datetime.now(dt.UTC), made_by="t"))
    shot = tmp_path / "pack.png"
    subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
         "--window-size=1280,1600", page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    assert shot.stat().st_size > 10_000
