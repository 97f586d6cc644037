"""Wellness-family checks the YAML rule cases cannot express.

The YAML cases evaluate every family at once, so a month outside the range only shows
the first parameter refused; here each wellness parameter's own range is checked.
"""

from __future__ import annotations

import datetime as dt

import pytest

from billing_engine.errors import ParameterNotVerified
from billing_engine.services.evaluation import default_parameters

FIRST = dt.date(2011, 1, 1)
LAST = dt.date(2026, 12, 31)


def wellness_names() -> list[str]:
    return sorted(p.name for p in default_parameters() if p.name.startswith("wellness."))


def test_the_wellness_family_declares_its_three_codes() -> None:
    period = default_parameters().for_period(FIRST, FIRST)
    codes = {
        str(period[p.name])
        for p in default_parameters()
        if p.name.startswith("wellness.") and p.unit == "HCPCS code"
    }
    assert codes == {"G0402", "G0438", "G0439"}


@pytest.mark.parametrize("name", wellness_names())
def test_every_wellness_parameter_is_verified_from_2011_through_2026(name: str) -> None:
    param = default_parameters().get(name)
    assert param.at(FIRST).value is not None
    assert param.at(LAST).value is not None
    with pytest.raises(ParameterNotVerified):
        param.at(FIRST - dt.timedelta(days=1))
    with pytest.raises(ParameterNotVerified):
        param.at(LAST + dt.timedelta(days=1))
