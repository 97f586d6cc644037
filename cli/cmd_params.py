"""``billing params check YYYY``: which parameters are verified for a year."""

from __future__ import annotations

import json
from collections import Counter

import click

ORDER = ("verified", "carried forward", "unverified")


@click.group("params")
def params_group() -> None:
    """The engine's effective-dated parameters (code_rules/**/parameters.yaml)."""


@params_group.command("check")
@click.argument("year", type=click.IntRange(1900, 9998))
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def check_command(year: int, as_json: bool) -> None:
    """List each parameter's state for YEAR: verified through the year's end, carried
    forward (past its verified_through; --allow-unverified would use its last verified
    value) or unverified (no verified value to use), with verified_through and source.
    """
    from billing_engine.params.unverified import year_report
    from code_rules.rulebook import shipped_conflicts, shipped_parameters

    rows = year_report(shipped_parameters(), year, shipped_conflicts().verified_through)
    if as_json:
        click.echo(json.dumps({"year": year, "parameters": rows}, indent=2))
        return
    counts = Counter(row["status"] for row in rows)
    click.echo(
        f"{year}: "
        + ", ".join(f"{counts.get(state, 0)} {state}" for state in ORDER)
        + f" (of {len(rows)})"
    )
    shown = rows
    columns = ("parameter", "status", "verified_through", "source")
    widths = {c: max(len(c), *(len(row[c]) for row in shown)) for c in columns[:-1]}
    click.echo("  ".join(c.ljust(widths[c]) for c in columns[:-1]) + "  source")
    for row in shown:
        click.echo("  ".join(row[c].ljust(widths[c]) for c in columns[:-1]) + "  " + row["source"])
    if counts.get("carried forward"):
        click.echo(
            "carried forward: evaluating this year needs --allow-unverified (setting "
            "common.allow_unverified), or new dated values with sources and a later "
            "verified_through in their parameters.yaml"
        )


COMMANDS: list[click.Command] = [params_group]
