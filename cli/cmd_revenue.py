"""``billing revenue``: revenue over a range of months, by payer, code and month."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
import polars as pl

from billing_engine.calendar import Month
from cli.cmd_evaluate import (
    _date,
    _month,
    _settings,
    bundle_argument,
    input_limits,
    load_bundle,
    settings_option,
)
from cli.options import apply_deductible_option, db_option, fee_library

_TABLE_FILES = {
    "by_payer": "revenue_by_payer_range.csv",
    "by_code": "revenue_by_code.csv",
    "by_month": "revenue_by_month.csv",
    "capitation": "capitation_by_month.csv",
}


def _render(frame: pl.DataFrame, columns: list[str]) -> list[str]:
    """A plain text table: text left-aligned, numbers and money right-aligned."""
    shown = frame.select(columns).with_columns(pl.all().cast(pl.String).fill_null(""))
    widths = {c: max(len(c), *(len(v) for v in shown[c].to_list())) for c in columns}
    numeric = {c for c, t in frame.select(columns).schema.items() if t.is_numeric()}

    def cell(column: str, value: str) -> str:
        width = widths[column]
        return value.rjust(width) if column in numeric else value.ljust(width)

    lines = ["  " + "  ".join(cell(c, c) for c in columns)]
    for row in zip(*(shown[c].to_list() for c in columns), strict=True):
        lines.append("  " + "  ".join(cell(c, v) for c, v in zip(columns, row, strict=True)))
    return lines


@click.command("revenue")
@bundle_argument
@click.option("--from", "first", required=True, callback=_month, help="First month, YYYY-MM.")
@click.option("--to", "last", required=True, callback=_month, help="Last month, YYYY-MM.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write the tables as CSV files to this folder.",
)
@click.option(
    "--as-of",
    "as_of",
    callback=_date,
    help="Evaluate every month as of this date (default: each month's last day).",
)
@settings_option
@apply_deductible_option
@db_option
def revenue_command(
    bundle: Path | None,
    first: Month,
    last: Month,
    out: Path | None,
    as_of: dt.date | None,
    settings_path: Path | None,
    apply_deductible: bool,
    db_url: str | None,
) -> None:
    """Revenue from --from to --to: totals by payer, code and month.

    Each month is evaluated as `billing evaluate` does. The month table adds the money
    left on the table (the allowed amount of every `short` gap if it were closed) and
    PMPM capitation, which is reported beside fee-for-service, never added into it.
    Reads BUNDLE when given, else the store (--db).
    """
    from billing_engine.revenue import METRICS, months_between, revenue

    data, store_url = load_bundle(bundle, db_url, input_limits(settings_path))
    report = revenue(
        data,
        months_between(first, last),
        as_of=as_of,
        settings=_settings(settings_path),
        fees=fee_library(store_url or db_url),
        apply_deductible=apply_deductible,
    )
    money = list(METRICS)
    click.echo(f"Revenue {first} to {last} (fee-for-service; amounts in dollars)")
    click.echo("By payer:")
    for line in _render(report.by_payer, ["payer_id", "payer_name", "lines", "units", *money]):
        click.echo(line)
    click.echo("By code:")
    for line in _render(report.by_code, ["code", "lines", "units", *money]):
        click.echo(line)
    click.echo("By month:")
    for line in _render(
        report.by_month,
        ["month", "lines", "allowed_amount", "payer_amount", "patient_amount",
         "capitation", "left_on_table", "short_gaps"],
    ):  # fmt: skip
        click.echo(line)
    if not report.capitation.is_empty():
        click.echo("Capitation (PMPM, beside fee-for-service):")
        for line in _render(
            report.capitation, ["month", "payer_id", "name", "members", "pmpm", "amount"]
        ):
            click.echo(line)
    unpriced = int(report.by_month["unpriced_lines"].sum())
    if unpriced:
        click.echo(f"note: {unpriced} line(s) have no fee (see the fee_not_found gaps)")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for name, filename in _TABLE_FILES.items():
            frame: pl.DataFrame = getattr(report, name)
            frame.write_csv(out / filename)
            click.echo(f"  wrote {out / filename}")


COMMANDS: list[click.Command] = [revenue_command]
