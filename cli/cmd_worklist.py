"""``billing worklist``: the care manager's list of the month's open work, from the store."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from billing_engine.calendar import Month
from cli.cmd_evaluate import _date, _month, _settings, load_bundle, settings_option
from cli.options import (
    allow_unverified_option,
    db_option,
    fee_library,
    with_allow_unverified,
)

FORMATS = ("table", "csv", "json", "html")  # reports.worklist.FORMATS (imported lazily)


@click.command("worklist")
@click.argument("month", callback=_month)
@click.option(
    "--as-of",
    "as_of",
    callback=_date,
    help="Date the list is made for (default: today); decides what is still open.",
)
@click.option("--care-manager", "care_manager", help="Only this care manager's patients.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of the terminal.",
)
@settings_option
@allow_unverified_option
@db_option
def worklist_command(
    month: Month,
    as_of: dt.date | None,
    care_manager: str | None,
    fmt: str,
    out: Path | None,
    settings_path: Path | None,
    allow_unverified: bool,
    db_url: str | None,
) -> None:
    """Each care manager's open work for MONTH (YYYY-MM): per patient and program the
    code in reach, minutes still needed, deadline, business days left, blockers and
    amount; the patients already billable are listed apart as done.

    Reads the store (--db) as ``billing evaluate`` does, exported claims as history.
    """
    from billing_engine.io.safe_files import replace_file
    from billing_engine.services.evaluation import evaluate
    from billing_engine.services.worklist import worklist
    from reports.worklist import render

    day = as_of or dt.date.today()  # the clock is read here, never in the engine
    data, _ = load_bundle(None, db_url, None, month)
    result = evaluate(
        data,
        month,
        day,
        settings=with_allow_unverified(_settings(settings_path), allow_unverified),
        fees=fee_library(db_url),
    )
    frame = worklist(result, data, care_manager)
    title = f"Worklist {month}, as of {day.isoformat()}"
    if care_manager is not None:
        title += f", care manager {care_manager}"
    text = render(frame, fmt, title=title)
    if out is None:
        click.echo(text, nl=False)
        return
    replace_file(out, text.encode("utf-8"))
    click.echo(f"wrote {out} ({frame.height} row(s))")


COMMANDS: list[click.Command] = [worklist_command]
