"""MNT checks the YAML rule cases cannot express: the family's own verified date range
(the whole engine's range is narrower, so a YAML case cannot reach the MNT edges) and
the settings' choices."""

from __future__ import annotations

import datetime as dt

import pytest

from billing_engine.errors import ConfigError, ParameterNotVerified
from billing_engine.services.evaluation import default_parameters


def mnt_parameter_names() -> list[str]:
    return sorted(p.name for p in default_parameters() if p.name.startswith("mnt."))


def test_the_mnt_icd10_lists_start_with_icd10_cm_itself() -> None:
    params = default_parameters()
    diabetes = params.get("mnt.diabetes_icd10_prefixes")
    assert "E11" in diabetes.at(dt.date(2015, 10, 1)).value
    with pytest.raises(ParameterNotVerified, match="2015-09-30"):
        diabetes.at(dt.date(2015, 9, 30))


@pytest.mark.parametrize("name", mnt_parameter_names())
def test_every_mnt_parameter_is_verified_through_the_end_of_2026_and_not_after(name: str) -> None:
    param = default_parameters().get(name)
    param.at(dt.date(2026, 12, 31))
    with pytest.raises(ParameterNotVerified, match="2027-01-01"):
        param.at(dt.date(2027, 1, 1))


def test_every_billable_mnt_code_is_one_hcpcs_code_parameter() -> None:
    period = default_parameters().for_period(dt.date(2025, 1, 1), dt.date(2025, 1, 31))
    codes = {
        str(period[p.name])
        for p in default_parameters()
        if p.name.startswith("mnt.") and p.unit == "HCPCS code"
    }
    assert codes == {"97802", "97803", "97804", "G0270", "G0271"}


def test_an_mnt_setting_outside_its_choices_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"mnt\.unit_rounding"):
        default_parameters().for_period(
            dt.date(2025, 1, 1), dt.date(2025, 1, 31), {"mnt.unit_rounding": "round_up"}
        )
