"""ParameterSet.with_values: a copy with some values replaced (rule cases' `parameters:`)."""

from __future__ import annotations

import datetime as dt

import pytest

from billing_engine.errors import ConfigError
from billing_engine.services.evaluation import default_parameters

THRESHOLD = "ccm.staff.threshold_minutes"
MARCH = (dt.date(2025, 3, 1), dt.date(2025, 3, 31))


def test_a_copy_with_a_new_value_reads_it_and_names_its_source() -> None:
    shipped = default_parameters()
    changed = shipped.with_values({THRESHOLD: 25}, source="rule case")
    period = changed.for_period(*MARCH)
    assert period[THRESHOLD] == 25
    assert period.used[THRESHOLD].sources == ("rule case",)


def test_the_original_parameter_set_is_left_unchanged() -> None:
    shipped = default_parameters()
    before = shipped.for_period(*MARCH)[THRESHOLD]
    shipped.with_values({THRESHOLD: before + 5}, source="rule case")
    assert shipped.for_period(*MARCH)[THRESHOLD] == before


def test_the_new_value_keeps_the_parameter_s_verified_span() -> None:
    shipped = default_parameters()
    changed = shipped.with_values({THRESHOLD: 25}, source="rule case")
    assert changed.get(THRESHOLD).verified_through == shipped.get(THRESHOLD).verified_through
    assert changed.get(THRESHOLD).values[0].start == shipped.get(THRESHOLD).values[0].start


def test_a_changed_value_changes_the_rule_set_version() -> None:
    shipped = default_parameters()
    changed = shipped.with_values({THRESHOLD: 25}, source="rule case")
    assert changed.version() != shipped.version()


def test_an_unknown_parameter_cannot_be_given_a_value() -> None:
    with pytest.raises(ConfigError, match="unknown parameter"):
        default_parameters().with_values({"ccm.no_such_parameter": 1}, source="rule case")
