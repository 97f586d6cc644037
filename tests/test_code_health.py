"""Code-health meta-tests: they keep the conventions of docs (architecture.md) true.

- no literal CPT/HCPCS code in the machinery or the rule modules, no threshold-sized
  number in the rule modules (codes and thresholds live in parameters.yaml);
- every parameter has a description, a unit, a source on every dated value and a
  ``verified_through`` date, and cites rule ids and source keys that exist in the team's
  rules reference (the in-repo copy of ../shared/reference/medicare_rules.md);
- every reason code the engine can emit is in the reason table of docs/interchange.md;
- every CLI command and every documented setting is in README.md;
- every conflict group cites rules and sources;
- no implicit "now" and no row-wise Python (map_elements, iter_rows, apply) in the engine.

A file that breaks a convention today is listed in a ``KNOWN_*`` table with the reason;
its check is a strict xfail, so the marker has to go once the file is fixed.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.main import billing
from tests.shared_data import RULES_REFERENCE

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "billing_engine"
RULES = ROOT / "code_rules"
README = ROOT / "README.md"
INTERCHANGE = ROOT / "docs" / "interchange.md"
CONFLICTS = RULES / "conflicts.yaml"
REFERENCE = RULES_REFERENCE

# 5 digits (CPT, e.g. 99490) or a letter and 4 digits (HCPCS, e.g. G0506, T1016), alone.
CODE_RE = re.compile(r"(?<![\w.-])(\d{5}|[A-Z]\d{4})(?![\w.-])")
RULE_ID_RE = re.compile(r"^[A-Z][A-Z0-9]*-[A-Z0-9]+$")  # CCM-T1, TIME-2, G0506-1, E11-4
SOURCE_KEY_RE = re.compile(r"^SRC-[A-Z0-9-]+$")
SMALLEST_THRESHOLD = 5  # an int this large in a rule module is a threshold, cap or count
CLOCK_CALLS = {"today", "now", "utcnow"}
ROW_WISE = {"map_elements", "map_rows", "iter_rows", "apply"}


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


SYNTH = ENGINE / "synth"  # the demo practice: not the engine, it knows codes to make data


def engine_modules() -> list[Path]:
    """Every module of the engine: billing_engine/ but the synthetic practice."""
    return sorted(p for p in ENGINE.rglob("*.py") if SYNTH not in p.parents)


def engine_data_files() -> list[Path]:
    """The engine's data files (YAML, CSV, templates): no code or fee may hide there."""
    return sorted(
        p
        for p in ENGINE.rglob("*")
        if p.suffix in {".yaml", ".yml", ".csv", ".json", ".j2", ".mako"} and SYNTH not in p.parents
    )


def rule_modules() -> list[Path]:
    """Every module of a code family (code_rules/<family>/*.py)."""
    families = [p.parent for p in RULES.glob("*/rule.py")]
    return sorted(p for family in families for p in family.glob("*.py"))


def code_rules_modules() -> list[Path]:
    """Every module under code_rules/ except the value-set builder scripts."""
    return sorted(p for p in RULES.rglob("*.py") if not p.name.startswith("build_"))


def parameter_files() -> list[Path]:
    return sorted(RULES.rglob("parameters.yaml"))


def file_params(paths: Iterable[Path], known: dict[str, str]) -> list[Any]:
    """One pytest param per file; files in `known` are strict xfails with their reason."""
    out = []
    for path in paths:
        name = rel(path)
        marks = [pytest.mark.xfail(strict=True, reason=known[name])] if name in known else []
        out.append(pytest.param(path, id=name, marks=marks))
    return out


def docstring_nodes(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                found.add(id(body[0].value))
    return found


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- reference


def reference_text() -> str:
    return REFERENCE.read_text(encoding="utf-8")


def reference_rule_ids(text: str) -> set[str]:
    """Rule ids the reference defines or names: any back-quoted rule-id-shaped token."""
    return {
        token
        for token in re.findall(r"`([A-Z][A-Z0-9]*-[A-Z0-9]+)`", text)
        if not token.startswith("SRC-")
    }


def reference_source_keys(text: str) -> set[str]:
    """Keys of the reference's sources table (section 8): rows starting | `SRC-...` |."""
    return set(re.findall(r"^\|\s*`(SRC-[A-Z0-9-]+)`\s*\|", text, flags=re.MULTILINE))


def citation_problems(where: str, rules: Iterable[str], sources: Iterable[str]) -> list[str]:
    """Rule ids and source keys that the reference does not know."""
    text = reference_text()
    known_rules, known_sources = reference_rule_ids(text), reference_source_keys(text)
    problems = [
        f"{where}: rule {rule} is not in {REFERENCE.name}"
        for rule in rules
        if RULE_ID_RE.match(str(rule)) and not str(rule).startswith("SRC-")
        if str(rule) not in known_rules
    ]
    problems += [
        f"{where}: source {source} is not in the sources table of {REFERENCE.name}"
        for source in sources
        if SOURCE_KEY_RE.match(str(source)) and str(source) not in known_sources
    ]
    return problems


def test_the_reference_readers_find_rule_ids_and_sources() -> None:
    text = reference_text()
    assert {"CCM-T1", "TIME-2", "G0506-1"} <= reference_rule_ids(text)
    assert "SRC-CCM-MLN-2015" in reference_source_keys(text)


# --------------------------------------------------------------------------- (a) literals

KNOWN_CODE_LITERALS: dict[str, str] = {}


def code_literals(path: Path, root: Path = ROOT) -> list[str]:
    """'file:line: code in string' for every code-shaped token of a non-docstring string."""
    tree = parse(path)
    docstrings = docstring_nodes(tree)
    return [
        f"{path.relative_to(root).as_posix()}:{node.lineno}: {m.group(0)!r} in {node.value[:60]!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        for m in CODE_RE.finditer(node.value)
    ]


@pytest.mark.parametrize(
    "path", file_params([*engine_modules(), *rule_modules()], KNOWN_CODE_LITERALS)
)
def test_no_literal_cpt_or_hcpcs_code_in_the_engine_or_rule_modules(path: Path) -> None:
    found = code_literals(path)
    assert not found, "codes belong in parameters.yaml:\n" + "\n".join(found)


@pytest.mark.parametrize("path", file_params(code_rules_modules(), {}))
def test_no_threshold_sized_number_in_a_rule_module(path: Path) -> None:
    found = [
        f"{rel(path)}:{node.lineno}: {node.value}"
        for node in ast.walk(parse(path))
        if isinstance(node, ast.Constant)
        and type(node.value) is int
        and node.value >= SMALLEST_THRESHOLD
    ]
    assert not found, "thresholds, caps and counts belong in parameters.yaml:\n" + "\n".join(found)


# Numbers of code shape in the engine's data files that are not codes, with what they are.
NOT_CODES = {
    ("billing_engine/io/ingest_limits.yaml", "32767"): "Excel's most characters in a cell",
}


@pytest.mark.parametrize("path", file_params(engine_data_files(), {}))
def test_no_cpt_or_hcpcs_code_in_the_engine_s_data_files(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    found = [
        f"{rel(path)}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)!r}"
        for m in CODE_RE.finditer(text)
        if (rel(path), m.group(0)) not in NOT_CODES
    ]
    assert not found, "codes belong in code_rules/:\n" + "\n".join(found)


def test_the_engine_scans_reach_every_stage() -> None:
    scanned = {p.parent.name for p in engine_modules()}
    assert {"io", "params", "engine", "pricing", "store", "services"} <= scanned
    assert not [p for p in engine_modules() if SYNTH in p.parents]


def test_the_code_literal_scan_finds_codes_and_skips_docstrings(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""Bills 99490 and G0506."""\n'
        'CODE = "99490"\nOTHER = "T1016"\nNOT_A_CODE = "E11.9"\nNPI = "1234567893"\n',
        encoding="utf-8",
    )
    found = [line.split(": ", 1)[1] for line in code_literals(sample, tmp_path)]
    assert found == ["'99490' in '99490'", "'T1016' in 'T1016'"]


# --------------------------------------------------------------------------- (b) parameters


def parameter_specs() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(where, the file's document, one parameter's spec) for every parameter."""
    for path in parameter_files():
        doc = load_yaml(path)
        for key, spec in (doc.get("parameters") or {}).items():
            yield f"{rel(path)}: {doc.get('namespace')}.{key}", doc, spec


def test_parameter_files_exist() -> None:
    assert parameter_files(), "no parameters.yaml under code_rules/"
    assert sum(1 for _ in parameter_specs()) > 10


@pytest.mark.parametrize("path", file_params(parameter_files(), {}))
def test_every_parameter_has_a_description_a_unit_sources_and_verified_through(
    path: Path,
) -> None:
    doc = load_yaml(path)
    problems = []
    for key, spec in (doc.get("parameters") or {}).items():
        where = f"{doc.get('namespace')}.{key}"
        if not str(spec.get("description") or "").strip():
            problems.append(f"{where}: no description")
        if not str(spec.get("unit") or "").strip():
            problems.append(f"{where}: no unit")
        if not (spec.get("verified_through") or doc.get("verified_through")):
            problems.append(f"{where}: no verified_through (parameter or file)")
        values = spec.get("values") or []
        if not values:
            problems.append(f"{where}: no dated values")
        for i, value in enumerate(values, start=1):
            if not value.get("from"):
                problems.append(f"{where}: value {i} has no 'from' date")
            if not value.get("source"):
                problems.append(f"{where}: value {i} ({value.get('from')}) has no source")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", file_params(parameter_files(), {}))
def test_every_parameter_cites_rules_and_sources_that_the_reference_knows(path: Path) -> None:
    doc = load_yaml(path)
    problems = []
    for key, spec in (doc.get("parameters") or {}).items():
        where = f"{rel(path)}: {doc.get('namespace')}.{key}"
        sources = [
            source
            for value in spec.get("values") or []
            for source in (
                [value["source"]] if isinstance(value.get("source"), str) else value.get("source")
            )
            or []
        ]
        problems += citation_problems(where, spec.get("rules") or [], sources)
    assert not problems, "\n".join(problems)


def test_settings_with_choices_default_to_one_of_their_choices() -> None:
    problems = [
        f"{where}: value {value.get('value')!r} not in {spec['choices']}"
        for where, _, spec in parameter_specs()
        if spec.get("choices")
        for value in spec.get("values") or []
        if value.get("value") not in spec["choices"]
    ]
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- (c) reasons


def documented_reasons() -> set[str]:
    text = INTERCHANGE.read_text(encoding="utf-8")
    section = text.split("## Reason codes", 1)[1]
    return set(re.findall(r"^\|\s*`([a-z_]+)`\s*\|", section, flags=re.MULTILINE))


def emitted_reasons(path: Path) -> dict[str, str]:
    """{reason: where} of the reason literals in a module: Criterion's 4th argument, any
    ``reason=`` keyword, and the reason argument of conflicts._suppress."""
    found: dict[str, str] = {}
    for node in ast.walk(parse(path)):
        if not isinstance(node, ast.Call):
            continue
        candidates: list[ast.expr] = [k.value for k in node.keywords if k.arg == "reason"]
        name = call_name(node)
        if name == "Criterion" and len(node.args) > 3:
            candidates.append(node.args[3])
        if name == "_suppress" and len(node.args) > 2:
            candidates.append(node.args[2])
        for value in candidates:
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                found.setdefault(value.value, f"{rel(path)}:{node.lineno}")
    return found


def all_emitted_reasons() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in [*sorted(ENGINE.rglob("*.py")), *sorted(RULES.rglob("*.py"))]:
        for reason, where in emitted_reasons(path).items():
            found.setdefault(reason, where)
    table = load_yaml(CONFLICTS)
    for group in [*(table.get("precedence") or []), *(table.get("history") or [])]:
        found.setdefault(str(group["reason"]), f"{rel(CONFLICTS)}: {group['id']}")
    return found


def test_every_reason_the_engine_can_emit_is_in_the_documented_reason_table() -> None:
    emitted = all_emitted_reasons()
    # the scan must see the reasons we know are there, or it proves nothing
    assert {"time_below_threshold", "consent_missing", "conflict", "add_on_without_base"} <= set(
        emitted
    ), sorted(emitted)
    documented = documented_reasons()
    missing = {reason: where for reason, where in emitted.items() if reason not in documented}
    assert not missing, "reasons not in docs/interchange.md's reason table:\n" + "\n".join(
        f"{where}: {reason}" for reason, where in sorted(missing.items())
    )


# --------------------------------------------------------------------------- (d, e) README


def readme_text() -> str:
    if not README.exists():
        pytest.fail(
            f"{rel(README)} does not exist: it must document every `billing` command and "
            "every setting (architecture.md, habit 7)"
        )
    return README.read_text(encoding="utf-8")


def test_every_cli_command_is_in_the_readme() -> None:
    commands = sorted(billing.commands)
    assert {"import", "evaluate", "explain"} <= set(commands)
    text = readme_text()
    missing = [name for name in commands if not re.search(rf"\bbilling {name}\b", text)]
    assert not missing, "README.md does not show: " + ", ".join(f"billing {n}" for n in missing)


def test_every_setting_is_in_the_readme() -> None:
    settings = sorted(
        f"{doc['namespace']}.{key}"
        for path in parameter_files()
        for doc in [load_yaml(path)]
        for key, spec in (doc.get("parameters") or {}).items()
        if spec.get("setting")
    )
    assert settings, "no setting: true parameter found"
    text = readme_text()
    missing = [name for name in settings if name not in text]
    assert not missing, "settings not documented in README.md: " + ", ".join(missing)


# --------------------------------------------------------------------------- (f) conflicts


def test_every_conflict_group_history_conflict_add_on_and_unit_cap_cites_rules_and_sources() -> (
    None
):
    table = load_yaml(CONFLICTS)
    assert table.get("verified_through"), "conflicts.yaml has no verified_through"
    entries = [(f"precedence {group.get('id')}", group) for group in table.get("precedence") or []]
    entries += [(f"history {item.get('id')}", item) for item in table.get("history") or []]
    entries += [(f"addon {addon.get('addon')}", addon) for addon in table.get("addons") or []]
    entries += [(f"mue {cap.get('code')}", cap) for cap in table.get("mue") or []]
    assert entries, "conflicts.yaml has no precedence group"
    problems = []
    for where, entry in entries:
        if not entry.get("rules"):
            problems.append(f"{where}: no rules")
        if not entry.get("sources"):
            problems.append(f"{where}: no sources")
        problems += citation_problems(
            f"{rel(CONFLICTS)}: {where}", entry.get("rules") or [], entry.get("sources") or []
        )
    for group in table.get("precedence") or []:
        if not group.get("order") or not group.get("reason"):
            problems.append(f"precedence {group.get('id')}: needs an order and a reason")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- (g) clock


def clock_modules() -> list[Path]:
    store = ENGINE / "store"
    engine = [p for p in ENGINE.rglob("*.py") if store not in p.parents]
    return sorted([*engine, *RULES.rglob("*.py")])


@pytest.mark.parametrize("path", file_params(clock_modules(), {}))
def test_no_implicit_now_in_the_engine_or_the_rules(path: Path) -> None:
    found = []
    for node in ast.walk(parse(path)):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        func = node.func
        receiver = ast.unparse(func.value)
        is_clock = func.attr in CLOCK_CALLS or (func.attr == "time" and receiver == "time")
        if is_clock:
            found.append(f"{rel(path)}:{node.lineno}: {receiver}.{func.attr}()")
    assert not found, "time must be explicit (pass dates in):\n" + "\n".join(found)


# --------------------------------------------------------------------------- (h) row-wise

KNOWN_ROW_WISE: dict[str, str] = {}
# Not rule logic over frames: openpyxl's worksheet rows are how a workbook is read at all,
# and the refused bundle's issue report becomes InputIssue objects once, at the boundary,
# from the frame of bad cells (never over the input rows themselves).
# The store deletes a fee release's old rows once per release (a handful), not per row.
# The 837P is text: the export builds one Claim object per claim (and its lines, and the
# practitioners it names) once, at the boundary where frames become the X12 file; no rule
# or amount is computed there (billing_engine/services/close/export.py).
# ROI works out its per-care-manager rows in Decimal one row per care manager (a handful:
# the rows are the report's own, after every line and encounter was summed in polars by
# services/roi/measure.py).
# SQLite's driver takes rows: the store's bulk write hands it plain tuples a block at a
# time, after polars shaped every value over whole columns (billing_engine/store/bulk.py).
ALLOWED_ROW_WISE = {
    ("billing_engine/store/bulk.py", "chunk.iter_rows"),
    ("billing_engine/services/roi/build.py", "each.iter_rows"),
    ("billing_engine/services/roi/build.py", "staff.iter_rows"),
    ("billing_engine/store/fees.py", "releases.iter_rows"),
    ("billing_engine/services/close/export.py", "bundle['practitioners'].iter_rows"),
    ("billing_engine/services/close/export.py", "lines.sort('claim_id', 'line_number').iter_rows"),
    ("billing_engine/services/close/export.py", "claims.sort('claim_id').iter_rows"),
    ("billing_engine/services/close/export.py", "context.sort('line_id').iter_rows"),
    ("billing_engine/io/readers.py", "sheet.iter_rows"),
    ("billing_engine/io/checks.py", "found.iter_rows"),
}


def row_wise_modules() -> list[Path]:
    return sorted([*engine_modules(), *RULES.rglob("*.py")])


@pytest.mark.parametrize("path", file_params(row_wise_modules(), KNOWN_ROW_WISE))
def test_no_row_wise_python_over_frames_in_the_engine_or_the_rules(path: Path) -> None:
    found = []
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Attribute) and node.attr in ROW_WISE:
            shown = f"{ast.unparse(node.value)}.{node.attr}"
            if (rel(path), shown) not in ALLOWED_ROW_WISE:
                found.append(f"{rel(path)}:{node.lineno}: {shown}")
    assert not found, "use whole-column polars expressions:\n" + "\n".join(found)
