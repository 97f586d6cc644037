"""The parameter files and their loader: strict keys, a closed unit table, own sources.

- a repeated key in any YAML file the engine reads is refused with its file and line;
- every unit is in ``billing_engine.params.units.UNIT_TYPES`` and every value has its type;
- every source key a value cites is defined in the file's ``sources`` table, and every
  entry there is cited and, for the rules reference's ``SRC-...`` keys, says exactly
  what its section 8 says (the in-repo copy of ../shared/reference/medicare_rules.md).
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from billing_engine.errors import ConfigError
from billing_engine.io.ingest_limits import LIMITS_FILE, InputLimits
from billing_engine.io.strict_yaml import load_path
from billing_engine.params.conflict_table import load_table
from billing_engine.params.parameters import ParameterSet, load_settings_file
from billing_engine.params.period import PeriodParameters
from billing_engine.params.units import UNIT_TYPES
from code_rules.rulebook import shipped_conflicts, shipped_parameters
from tests.shared_data import COPY, RULES_REFERENCE

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "code_rules"
PARAMETER_FILES = sorted(RULES.rglob("parameters.yaml"))
SOURCED_FILES = [*PARAMETER_FILES, RULES / "conflicts.yaml"]

ONE_PARAMETER = """\
namespace: demo
description: one parameter
verified_through: 2025-12-31
parameters:
  threshold_minutes:
    description: Minutes needed.
    unit: {unit}
    {extra}
    values:
      - {{from: 2024-01-01, value: {value}, source: [SRC-DEMO]}}
sources:
  SRC-DEMO: {{title: A demo page, address: https://example.org/demo}}
"""


def _write(tmp_path: Path, text: str, name: str = "parameters.yaml") -> Path:
    path = tmp_path / "rules" / "demo" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _one_parameter(
    tmp_path: Path, unit: str = "minute", value: str = "20", extra: str = ""
) -> Path:
    text = ONE_PARAMETER.format(unit=unit, value=value, extra=extra or "rules: [CCM-T1]")
    return _write(tmp_path, text)


def _load(tmp_path: Path) -> ParameterSet:
    return ParameterSet.load([tmp_path / "rules"])


# --------------------------------------------------------------------------- duplicate keys


def test_a_parameter_file_repeating_a_key_is_refused_naming_the_file_line_and_key(
    tmp_path: Path,
) -> None:
    text = ONE_PARAMETER.format(unit="minute", value="20", extra="description: Again.")
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        _load(tmp_path)
    message = str(err.value)
    assert str(path) in message
    assert "line 8" in message  # the second `description:`
    assert "duplicate key 'description'" in message
    assert "first at line 6" in message


def test_two_dated_values_with_a_repeated_key_in_one_flow_mapping_are_refused(
    tmp_path: Path,
) -> None:
    _one_parameter(tmp_path, value="20, value: 25")
    with pytest.raises(ConfigError, match=r"line 10: duplicate key 'value'"):
        _load(tmp_path)


def test_a_parameter_defined_twice_in_one_file_is_refused(tmp_path: Path) -> None:
    text = ONE_PARAMETER.replace(
        "parameters:\n",
        "parameters:\n  threshold_minutes:\n    description: first\n    unit: minute\n"
        "    values: [{{from: 2024-01-01, value: 1, source: [SRC-DEMO]}}]\n",
    ).format(unit="minute", value="20", extra="")
    _write(tmp_path, text)
    with pytest.raises(ConfigError, match=r"line 9: duplicate key 'threshold_minutes'"):
        _load(tmp_path)


READERS: dict[str, tuple[str, Callable[[Path], object]]] = {
    "settings": (
        "common.allow_unverified: false\ncommon.allow_unverified: true\n",
        load_settings_file,
    ),
    "conflicts": (
        "verified_through: 2026-12-31\nprecedence: []\naddons: []\nverified_through: 2027-12-31\n",
        load_table,
    ),
    "ingest limits": (
        "limits:\n  max_cell_chars: {value: 10}\n  max_cell_chars: {value: 20}\n",
        lambda p: InputLimits.load(path=p),
    ),
}


@pytest.mark.parametrize("reader", sorted(READERS))
def test_every_yaml_reader_of_the_engine_refuses_a_repeated_key(
    tmp_path: Path, reader: str
) -> None:
    text, read = READERS[reader]
    path = tmp_path / "file.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"line \d: duplicate key") as err:
        read(path)
    assert str(path) in str(err.value)


def test_a_merge_key_may_still_be_overridden_by_an_explicit_key(tmp_path: Path) -> None:
    path = tmp_path / "merge.yaml"
    path.write_text("base: &b {a: 1, b: 2}\nx:\n  <<: *b\n  a: 3\n", encoding="utf-8")
    assert load_path(path)["x"] == {"a": 3, "b": 2}


# --------------------------------------------------------------------------- units and types


def test_a_parameter_with_a_unit_outside_the_unit_table_is_refused(tmp_path: Path) -> None:
    path = _one_parameter(tmp_path, unit="minutes")
    unknown = r"demo\.threshold_minutes: unknown unit 'minutes'"
    with pytest.raises(ConfigError, match=unknown) as err:
        _load(tmp_path)
    assert str(path) in str(err.value)


def test_a_parameter_without_a_unit_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, ONE_PARAMETER.replace("    unit: {unit}\n", "").format(value=20, extra=""))
    with pytest.raises(ConfigError, match=r"demo\.threshold_minutes: missing 'unit'"):
        _load(tmp_path)


@pytest.mark.parametrize(
    ("unit", "value", "extra"),
    [
        ("minute", '"20"', ""),  # a quoted number is text
        ("minute", "20.5", ""),
        ("count", "true", ""),  # true is not 1
        ("boolean", "1", ""),
        ("fraction", "0.80", ""),  # an amount must be quoted to stay exact
        ("fraction", '"eighty percent"', ""),
        ("HCPCS code", "99490", ""),  # an unquoted code is a number
        ("HCPCS code list", '["99490", 99439]', ""),
        ("choice", "weekly", "choices: [threshold_met, month_end]"),
        ("[kg/m2, ICD-10-CM code] list", '[[30.0, "Z68.30", 1]]', ""),
    ],
)
def test_a_value_that_does_not_have_its_units_type_is_refused(
    tmp_path: Path, unit: str, value: str, extra: str
) -> None:
    path = _one_parameter(tmp_path, unit=f'"{unit}"', value=value, extra=extra)
    with pytest.raises(ConfigError, match=r"demo\.threshold_minutes: value from 2024-01-01") as err:
        _load(tmp_path)
    assert str(path) in str(err.value)
    assert repr(unit) in str(err.value)


@pytest.mark.parametrize(
    ("unit", "value", "extra"),
    [
        ("minute", "20", ""),
        ("kg", "3", ""),  # a whole number is a number of kilograms
        ("fraction", '"0.80"', ""),
        ("work GPCI (null = no floor)", "null", ""),
        ("choice", "month_end", "choices: [threshold_met, month_end]"),
        ("[kg/m2, ICD-10-CM code] list", '[[30.0, "Z68.30"], [31, "Z68.31"]]', ""),
    ],
)
def test_a_value_of_its_units_type_loads(tmp_path: Path, unit: str, value: str, extra: str) -> None:
    _one_parameter(tmp_path, unit=f'"{unit}"', value=value, extra=extra)
    assert _load(tmp_path).get("demo.threshold_minutes").unit == unit


def test_every_type_of_the_unit_table_is_read_by_a_period_getter() -> None:
    for unit, kind in UNIT_TYPES.items():
        assert callable(getattr(PeriodParameters, kind.getter)), kind
        assert unit == unit.strip()


def test_every_unit_of_the_table_is_used_by_a_shipped_parameter() -> None:
    used = {p.unit for p in shipped_parameters()}
    assert set(UNIT_TYPES) == used, "units in the table that no parameter uses"


# --------------------------------------------------------------------------- sources


def test_a_value_citing_a_source_the_file_does_not_define_is_refused(tmp_path: Path) -> None:
    text = ONE_PARAMETER.format(unit="minute", value="20", extra="").replace(
        "source: [SRC-DEMO]", "source: [SRC-DEMO, SRC-ELSEWHERE]"
    )
    path = _write(tmp_path, text)
    with pytest.raises(
        ConfigError, match=r"demo\.threshold_minutes: .*'SRC-ELSEWHERE' is not defined"
    ) as err:
        _load(tmp_path)
    assert str(path) in str(err.value)


def test_a_conflict_citing_a_source_the_file_does_not_define_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "conflicts.yaml"
    path.write_text(
        "verified_through: 2026-12-31\nprecedence: []\n"
        "addons:\n  - {addon: a.addon, base: a.base, rules: [X-1], sources: [SRC-NOWHERE]}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"addon a\.addon: source 'SRC-NOWHERE' is not defined"):
        load_table(path)


def test_a_source_entry_without_an_address_is_refused(tmp_path: Path) -> None:
    text = ONE_PARAMETER.format(unit="minute", value="20", extra="").replace(
        ", address: https://example.org/demo", ""
    )
    _write(tmp_path, text)
    with pytest.raises(ConfigError, match=r"source 'SRC-DEMO' needs a 'title' and an 'address'"):
        _load(tmp_path)


def test_a_parameter_carries_the_entries_of_the_sources_it_cites(tmp_path: Path) -> None:
    _one_parameter(tmp_path)
    params = _load(tmp_path)
    (entry,) = params.get("demo.threshold_minutes").source_details
    assert (entry.key, entry.title, entry.address) == (
        "SRC-DEMO",
        "A demo page",
        "https://example.org/demo",
    )
    assert params.source("SRC-DEMO") == entry


# --------------------------------------------------------------------------- shipped files


def test_every_shipped_yaml_file_loads() -> None:
    params = shipped_parameters()
    assert {Path(p.file) for p in params} == set(PARAMETER_FILES)
    assert shipped_conflicts().groups
    assert InputLimits.load(path=LIMITS_FILE)


def _cited(doc: Any) -> Iterator[str]:
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key in ("source", "sources") and isinstance(value, list):
                yield from value
            elif key != "sources":
                yield from _cited(value)
    elif isinstance(doc, list):
        for item in doc:
            yield from _cited(item)


def _reference_sources() -> dict[str, dict[str, str]]:
    text = RULES_REFERENCE.read_text(encoding="utf-8")
    rows = re.findall(
        r"^\|\s*`(SRC-[^`]+)`\s*\|([^|]*)\|([^|]*)\|([^|]*)\|\s*$",
        text[text.index("## 8. Sources") :],
        flags=re.MULTILINE,
    )
    return {
        key: {"title": title.strip(), "year": year.strip(), "address": address.strip()}
        for key, title, year, address in rows
    }


@pytest.mark.parametrize("path", SOURCED_FILES, ids=lambda p: str(p.relative_to(RULES)))
def test_each_shipped_source_entry_is_cited_and_matches_the_rules_reference(path: Path) -> None:
    doc = load_path(path)
    table = doc.get("sources") or {}
    cited = set(_cited(doc))
    assert set(table) == cited, f"uncited entries: {sorted(set(table) - cited)}"
    reference = _reference_sources()
    for key, entry in table.items():
        if key.startswith("SRC-"):
            assert key in reference, f"{key} is not in the rules reference's section 8"
            assert entry == reference[key], f"{key} differs from the rules reference"
            continue
        assert entry["title"] and entry["address"], key
        address = str(entry["address"])
        if address.startswith("docs/"):
            assert (ROOT / address).is_file(), f"{key}: {address} is not in the repository"
        elif address.startswith("../shared/"):
            copy = COPY / address.removeprefix("../shared/")
            assert copy.is_file(), f"{key}: no in-repo copy of {address}"


def test_a_source_key_means_the_same_in_every_file() -> None:
    seen: dict[str, tuple[Path, object]] = {}
    for path in SOURCED_FILES:
        for key, entry in (load_path(path).get("sources") or {}).items():
            first = seen.setdefault(key, (path, entry))
            assert first[1] == entry, f"{key}: {path} and {first[0]} differ"
