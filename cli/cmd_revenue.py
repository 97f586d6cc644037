"""``billing revenue``: revenue over a range of months, by payer, code and month."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

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
    warn_unverified,
)
from cli.options import (
    allow_unverified_option,
    apply_deductible_option,
    db_option,
    fee_library,
    with_allow_unverified,
)

if TYPE_CHECKING:
    from billing_engine.services.revenue import RevenueReport

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
@allow_unverified_option
@apply_deductible_option
@db_option
def revenue_command(
    bundle: Path | None,
    first: Month,
    last: Month,
    out: Path | None,
    as_of: dt.date | None,
    settings_path: Path | None,
    allow_unverified: bool,
    apply_deductible: bool,
    db_url: str | None,
) -> None:
    """Revenue from --from to --to: totals by payer, code and month.

    Each month is evaluated as `billing evaluate` does. The month table adds the money
    left on the table (the allowed amount, if closed, of every `short` gap within reach:
    started by work logged in the month; short gaps with nothing logged are counted
    apart as not started) and PMPM capitation, which is reported beside fee-for-service,
    never added into it. Every table ends with a GRAND TOTAL row. Reads BUNDLE when
    given, else the store (--db).
    """
    from billing_engine.io.safe_files import check_output_folder
    from billing_engine.services.revenue import METRICS, months_between, revenue

    if out is not None:
        check_output_folder(out, _TABLE_FILES.values())
    data, _ = load_bundle(bundle, db_url, input_limits(settings_path))
    report = revenue(
        data,
        months_between(first, last),
        as_of=as_of,
        settings=with_allow_unverified(_settings(settings_path), allow_unverified),
        fees=fee_library(db_url),
        apply_deductible=apply_deductible,
    )
    warn_unverified(report)
    money = list(METRICS)
    click.echo(f"Revenue {first} to {last} (fee-for-service; amounts in dollars)")
    click.echo("By payer:")
    by_payer = report.table("by_payer")
    for line in _render(by_payer, ["payer_id", "payer_name", "lines", "units", *money]):
        click.echo(line)
    click.echo("By code:")
    for line in _render(report.table("by_code"), ["code", "lines", "units", *money]):
        click.echo(line)
    click.echo("By month:")
    for line in _render(
        report.table("by_month"),
        ["month", "lines", "allowed_amount", "payer_amount", "patient_amount",
         "capitation", "left_on_table", "within_reach_gaps", "not_started_gaps", "short_gaps"],
    ):  # fmt: skip
        click.echo(line)
    click.echo(
        "  left_on_table: allowed amount, if closed, of the short gaps within reach (started,\n"
        "  one per set of alternative codes); not_started_gaps have nothing logged and are\n"
        "  not counted; short_gaps counts every short gap"
    )
    if not report.capitation.is_empty():
        click.echo("Capitation (PMPM, beside fee-for-service):")
        for line in _render(
            report.table("capitation"), ["month", "payer_id", "name", "members", "pmpm", "amount"]
        ):
            click.echo(line)
    unpriced = int(report.by_month["unpriced_lines"].sum())
    if unpriced:
        click.echo(f"note: {unpriced} line(s) have no fee (see the fee_not_found gaps)")
    if out is not None:
        for path in write_revenue(report, out, first, last, as_of, data.source):
            click.echo(f"  wrote {path}")


def write_revenue(
    report: RevenueReport,
    out: Path,
    first: Month,
    last: Month,
    as_of: dt.date | None,
    source: str,
) -> list[Path]:
    """The report's tables as CSV files in the folder `out`, whole or not at all.

    Like ``billing evaluate --out``: a fresh run id in a last ``run_id`` column of every
    table, text neutralized, a ``manifest.json``, the previous folder replaced only once
    the new one is complete (``safe_files.publish_folder``).
    """
    from billing_engine.io.safe_files import MANIFEST, csv_output, publish_folder
    from billing_engine.services.evaluation import default_parameters
    from reports.outputs import software_version, with_run_id

    run_id = str(uuid.uuid4())
    files = [
        csv_output(filename, with_run_id(report.table(name), run_id))
        for name, filename in _TABLE_FILES.items()
    ]
    manifest = {
        "run_id": run_id,
        "command": "billing revenue",
        "from": str(first),
        "to": str(last),
        "as_of": as_of.isoformat() if as_of else None,
        "rule_set_version": default_parameters().version(),
        "source": source,
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "software_version": software_version(),
    }
    paths = publish_folder(out, files, manifest, replaceable=_TABLE_FILES.values())
    return [*paths, out / MANIFEST]


COMMANDS: list[click.Command] = [revenue_command]
