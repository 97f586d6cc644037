"""``billing report html``: the month's close report as one self-contained HTML page."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from billing_engine.calendar import Month
from cli.cmd_evaluate import _date, _month, _settings, load_bundle, settings_option
from cli.options import allow_unverified_option, db_option, fee_library, with_allow_unverified


@click.command("html")
@click.argument("month", callback=_month, metavar="YYYY-MM")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The HTML file to write (replaced whole).",
)
@click.option(
    "--as-of",
    "as_of",
    callback=_date,
    help="Evaluate as of this date (default: each month's last day).",
)
@settings_option
@allow_unverified_option
@db_option
def html_command(
    month: Month,
    out: Path,
    as_of: dt.date | None,
    settings_path: Path | None,
    allow_unverified: bool,
    db_url: str | None,
) -> None:
    """The close report of MONTH from the store: totals, revenue by payer and code, gaps
    by reason with the money behind them, CCM minutes against the thresholds, the last
    12 months, and the close's holds, claims and adjustments. One file, no network."""
    from billing_engine.services.close_report_data import close_report_data
    from billing_engine.store import Store
    from cli.progress import steps
    from reports.close_report import write_close_report

    names = ["read the store", "evaluate the month and its trend", "draw the page"]
    with steps(names) as progress:
        progress.step(names[0])
        data, _ = load_bundle(None, db_url, month=month)
        settings = with_allow_unverified(_settings(settings_path), allow_unverified)
        progress.step(names[1])
        with Store.open(db_url, create=False) as store:
            report = close_report_data(
                data, month, as_of=as_of, settings=settings, fees=fee_library(db_url),
                store=store,
            )  # fmt: skip
        progress.step(names[2])
        path = write_close_report(report, out, created_at=dt.datetime.now(dt.UTC))
    click.echo(f"wrote {path}")
