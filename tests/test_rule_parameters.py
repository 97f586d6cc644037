"""The parameters a claim line names are ones the evaluation really read.

Each rule lists the parameters its line reports (``CodeRule.parameters``, written with
the generated name constants of ``code_rules/parameters_typed.py``); this holds every
such list to what the parameter object recorded while the month was evaluated, so a
list cannot name a parameter that does not exist or that the rules no longer read.
"""

from __future__ import annotations

import polars as pl

from billing_engine.calendar import Month
from billing_engine.services.evaluation import evaluate
from billing_engine.synth.practice import generate_practice


def test_every_parameter_a_rule_reports_was_read_by_the_evaluation() -> None:
    result = evaluate(generate_practice(600, seed=5, end_month="2025-12"), Month(2025, 12))
    read = set(result.parameters_used)
    stale = sorted(
        f"{rule.key}: {name}"
        for rule_set in result.rule_sets
        for rule in rule_set.rules
        for name in rule.parameters
        if name not in read
    )
    assert not stale, "rules report parameters the evaluation never read:\n" + "\n".join(stale)


def test_every_line_reports_the_values_of_its_rule_s_parameters() -> None:
    result = evaluate(generate_practice(600, seed=5, end_month="2025-12"), Month(2025, 12))
    lines = result.claim_lines.filter(pl.col("parameters") != "")
    assert lines.height > 0
    used = result.parameters_used
    for text in lines["parameters"].unique().to_list():
        for pair in text.split(";"):
            name = pair.split("=", 1)[0]
            assert name in used, f"{name} is on a line but was not read"
