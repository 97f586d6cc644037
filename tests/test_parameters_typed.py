"""The typed parameter accessor (code_rules/parameters_typed.py, generated).

It must be what ``python -m code_rules.build_accessor`` writes from today's
parameters.yaml files, have a reader for every parameter that returns the shipped value
with the type of its unit, and read through PeriodParameters (so ``used`` records it).
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from billing_engine.errors import ConfigError
from billing_engine.params.parameter import Parameter
from billing_engine.params.parameters import ParameterSet
from billing_engine.params.period import PeriodParameters
from billing_engine.params.units import UNIT_TYPES
from code_rules import build_accessor, parameters_typed
from code_rules.parameters_typed import CcmStaff, typed
from code_rules.rulebook import shipped_parameters

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ROOT / "code_rules" / "parameters_typed.py"
PYTHON_TYPE: dict[str, type | tuple[type, ...]] = {
    "int": int,
    "str": str,
    "bool": bool,
    "strs": list,
    "ints": list,
    "float": float,
    "decimal": Decimal,
    "optional_decimal": (Decimal, type(None)),
    "mapping": dict,
    "bands": list,
}


@pytest.fixture(scope="module")
def shipped() -> ParameterSet:
    return shipped_parameters()


def _on_last_value(params: ParameterSet, param: Parameter) -> PeriodParameters:
    day = param.values[-1].start
    return params.for_period(day, day)


def _reader_of(period: PeriodParameters, name: str) -> tuple[object, str]:
    """The namespace object holding `name`'s reader, and the reader's attribute name."""
    *path, key = name.split(".")
    node: object = typed(period)
    for part in path:
        node = getattr(node, part)
    return node, key


def _expected(param: Parameter) -> Any:
    value = param.values[-1].value
    kind = UNIT_TYPES[param.unit].kind
    if kind in ("decimal", "optional_decimal"):
        return None if value is None else Decimal(str(value))
    if kind == "float":
        return float(value)
    if kind == "bands":
        return [(float(low), str(code)) for low, code in value]
    if kind == "mapping":
        return value or {}
    return value


def test_the_generated_accessor_is_what_the_parameter_files_generate_today(
    shipped: ParameterSet,
) -> None:
    assert build_accessor.render(shipped) == GENERATED.read_text(encoding="utf-8"), (
        "code_rules/parameters_typed.py is stale: run python -m code_rules.build_accessor"
    )


def test_every_parameter_has_a_reader_returning_its_shipped_value_with_its_units_type(
    shipped: ParameterSet,
) -> None:
    names = [p.name for p in shipped]
    assert len(names) > 100
    for param in shipped:
        period = _on_last_value(shipped, param)
        node, key = _reader_of(period, param.name)
        value = getattr(node, key)
        assert value == _expected(param), param.name
        kind = UNIT_TYPES[param.unit].kind
        if kind == "choice":
            assert value in param.choices, param.name
        else:
            assert isinstance(value, PYTHON_TYPE[kind]), (param.name, type(value))
        assert param.name in period.used, param.name
        # the name, as a constant for CodeRule.parameters, and written out for grep
        assert getattr(type(node), key.upper()) == param.name
        assert f'("{param.name}")' in GENERATED.read_text(encoding="utf-8")


def test_a_sample_read_is_typed_and_recorded_in_used(shipped: ParameterSet) -> None:
    period = shipped.for_period(dt.date(2025, 12, 1), dt.date(2025, 12, 31))
    rp = typed(period)
    assert period.used == {}
    minutes = rp.ccm.staff.threshold_minutes
    assert minutes == 20
    assert type(minutes) is int
    assert period.used["ccm.staff.threshold_minutes"].value == 20
    assert rp.pricing.medicare_share == Decimal("0.80")
    assert rp.ccm.initiating_visit.accept_level1_visit is False
    assert rp.common.date_of_service_rule == "threshold_met"
    assert set(period.used) == {
        "ccm.staff.threshold_minutes",
        "pricing.medicare_share",
        "ccm.initiating_visit.accept_level1_visit",
        "common.date_of_service_rule",
    }
    assert CcmStaff.THRESHOLD_MINUTES == "ccm.staff.threshold_minutes"


def test_a_setting_override_is_what_the_typed_reader_returns(shipped: ParameterSet) -> None:
    period = shipped.for_period(
        dt.date(2025, 12, 1),
        dt.date(2025, 12, 31),
        {"common.date_of_service_rule": "month_end", "medicaid.unit_rule_override": None},
    )
    rp = typed(period)
    assert rp.common.date_of_service_rule == "month_end"
    assert rp.medicaid.unit_rule_override is None
    assert period.used["common.date_of_service_rule"].overridden


def test_staff_practitioner_and_complex_ccm_share_the_timed_code_protocol() -> None:
    members = {
        name
        for name in vars(parameters_typed.CcmTimedCode)
        if not name.startswith("_") and name.islower()
    }
    assert members == {
        "base_code",
        "addon_code",
        "threshold_minutes",
        "addon_step_minutes",
        "addon_max_units",
    }
    for cls in (
        parameters_typed.CcmStaff,
        parameters_typed.CcmPractitioner,
        parameters_typed.CcmComplex,
    ):
        assert members <= set(vars(cls)), cls
        assert {m.upper() for m in members} <= set(vars(cls)), cls


def _write_params(root: Path, unit: str, value: str) -> Path:
    family = root / "fam"
    family.mkdir()
    path = family / "parameters.yaml"
    path.write_text(
        "namespace: fam\n"
        "verified_through: 2026-12-31\n"
        "parameters:\n"
        "  visit.length:\n"
        "    description: How long.\n"
        f"    unit: {unit}\n"
        "    values:\n"
        f"      - {{from: 2024-01-01, value: {value}, source: [SRC-X]}}\n"
        "sources:\n"
        "  SRC-X: {title: A test source, address: tests/test_parameters_typed.py}\n",
        encoding="utf-8",
    )
    return path


def test_an_unknown_unit_fails_the_build_naming_the_file_and_the_parameter(
    tmp_path: Path,
) -> None:
    path = _write_params(tmp_path, "furlong", "3")
    with pytest.raises(ConfigError) as caught:  # the loader refuses it before the build
        build_accessor.render(ParameterSet.load([tmp_path]), shapes={})
    message = str(caught.value)
    assert str(path) in message
    assert "fam.visit.length" in message
    assert "'furlong'" in message
    assert "UNIT_TYPES" in message


def test_a_value_not_of_its_units_type_fails_the_build(tmp_path: Path) -> None:
    _write_params(tmp_path, "minute", "'twenty'")
    with pytest.raises(ConfigError, match=r"fam\.visit\.length.*'twenty'"):
        build_accessor.render(ParameterSet.load([tmp_path]), shapes={})


def test_a_small_parameter_file_generates_a_nested_typed_reader(tmp_path: Path) -> None:
    _write_params(tmp_path, "minute", "20")
    text = build_accessor.render(ParameterSet.load([tmp_path]), shapes={})
    assert "class FamVisit:" in text
    assert 'LENGTH: Final = "fam.visit.length"' in text
    assert 'return self._p.as_int("fam.visit.length")' in text
    assert "self.visit: Final = FamVisit(p)" in text


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is not installed")
def test_the_generated_accessor_is_ruff_clean() -> None:
    for args in (["format", "--check"], ["check"]):
        done = subprocess.run(
            ["ruff", *args, str(GENERATED)], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
