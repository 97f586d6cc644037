"""``billing close``: the monthly close (``../shared/spec/close.md``).

Every subcommand takes ``--db URL`` (or ``BILLING_DB``), ``--user NAME`` (default: the
login name) and ``--json``; it prints a short human summary, or the same as one JSON
object. Exit codes: 0 done, 1 refused (one line, nothing changed), 2 bad input.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from billing_engine.calendar import Month
from billing_engine.errors import ConfigError
from cli.options import allow_unverified_option, db_option, login_name, with_allow_unverified

LINE_STATUSES = ("pending", "approved", "held")


def _month(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Month | None:
    if value is None:
        return None
    try:
        return Month.parse(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from exc


user_option = click.option(
    "--user", "user", default=None, help="Who runs it (default: the login name)."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
month_argument = click.argument("month", callback=_month, metavar="YYYY-MM")


def _print(outcome: Any, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(outcome.data, indent=2, default=str))
    else:
        click.echo(outcome.summary)


def _store(db_url: str | None, create: bool = False) -> Any:
    from billing_engine.store import Store

    return Store.open(db_url, create=create)


def _run(
    db_url: str | None,
    as_json: bool,
    action: Callable[..., Any],
    step_names: tuple[str, ...] = (),
) -> None:
    """Open the store, run ``action`` (with a progress bar of ``step_names`` on a
    terminal: ``action`` then takes the bar's ``step`` as ``progress``), print after."""
    from cli.progress import steps

    if not step_names:  # a quick command: no bar
        with _store(db_url) as store:
            outcome = action(store)
    else:
        with _store(db_url) as store, steps(step_names) as progress:
            outcome = action(store, progress.step)
    _print(outcome, as_json)


@click.group("close")
def close_group() -> None:
    """The monthly close: start, review, approve, hold, lock, export, reopen, status, log."""


@close_group.command("start")
@month_argument
@click.option(
    "--as-of",
    "as_of",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="Evaluate as of this date (default: the month's last day).",
)
@allow_unverified_option
@db_option
@user_option
@json_option
def start_command(
    month: Month,
    as_of: dt.datetime | None,
    allow_unverified: bool,
    db_url: str | None,
    user: str | None,
    as_json: bool,
) -> None:
    """Evaluate MONTH from the store and save its lines (pending) and gaps.

    Again while open: re-evaluate (unchanged lines keep their decisions). On an exported
    month: open the adjustment cycle (new / replace / void).
    """
    from billing_engine.services.close import commands

    day = as_of.date() if as_of else None
    from billing_engine.services.close.start import STEPS

    settings = with_allow_unverified({}, allow_unverified)
    _run(
        db_url,
        as_json,
        lambda s, step: commands.start(
            s, month, user=user or login_name(), as_of=day, settings=settings, progress=step
        ),
        STEPS,
    )


@close_group.command("review")
@month_argument
@click.option("--status", type=click.Choice(LINE_STATUSES), default=None)
@click.option("--patient", default=None, help="Only this patient's lines.")
@click.option("--code", default=None, help="Only lines of this code.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the lines to this CSV file instead of printing them.",
)
@db_option
@json_option
def review_command(
    month: Month, status: str | None, patient: str | None, code: str | None,
    out: Path | None, db_url: str | None, as_json: bool,
) -> None:  # fmt: skip
    """List the current cycle's lines: line_id, status, hold_reason, edit_failures, ..."""
    from billing_engine.io.safe_files import csv_bytes
    from billing_engine.services.close import commands

    with _store(db_url) as store:
        frame = commands.review(store, month, status=status, patient=patient, code=code)
    if out is not None:
        from billing_engine.io.safe_files import replace_file

        replace_file(out, csv_bytes(frame))
        click.echo(f"{month}: {frame.height:,} lines written to {out}")
    elif as_json:
        click.echo(
            json.dumps({"month": str(month), "lines": frame.to_dicts()}, indent=2, default=str)
        )
    else:
        click.echo(review_table(frame))
        click.echo(f"{frame.height:,} lines")


REVIEW_SHOWN = (  # column, header, width
    ("line_id", "line", 17), ("status", "status", 8), ("hold_reason", "hold reason", 28),
    ("patient_id", "patient", 10), ("code", "code", 6), ("units", "units", 5),
    ("date_of_service", "date", 10), ("allowed_amount", "allowed", 9),
)  # fmt: skip


def review_table(frame: Any) -> str:
    """The lines as an aligned table for the terminal (every column: --out FILE.csv)."""

    def cell(value: object, width: int) -> str:
        text = "" if value is None else str(value)
        return text[: width - 1] + "…" if len(text) > width else text.ljust(width)

    header = "  ".join(cell(title, width) for _, title, width in REVIEW_SHOWN)
    names = [name for name, _, _ in REVIEW_SHOWN]
    widths = [width for _, _, width in REVIEW_SHOWN]
    rows = [
        "  ".join(cell(v, w) for v, w in zip(row, widths, strict=True)).rstrip()
        for row in frame.select(names).rows()
    ]
    return "\n".join([header.rstrip(), *rows])


@close_group.command("approve")
@month_argument
@click.option("--all", "all_pending", is_flag=True, help="Every pending line.")
@click.option("--line", "line_ids", multiple=True, help="A line id (repeatable).")
@click.option("--patient", default=None)
@click.option("--code", default=None)
@db_option
@user_option
@json_option
def approve_command(
    month: Month, all_pending: bool, line_ids: tuple[str, ...], patient: str | None,
    code: str | None, db_url: str | None, user: str | None, as_json: bool,
) -> None:  # fmt: skip
    """pending or held -> approved (--all takes only pending lines)."""
    from billing_engine.services.close import commands

    _run(
        db_url,
        as_json,
        lambda s: commands.approve(
            s,
            month,
            user=user or login_name(),
            all_pending=all_pending,
            line_ids=line_ids,
            patient=patient,
            code=code,
        ),
    )


@close_group.command("hold")
@month_argument
@click.option("--line", "line_ids", multiple=True, required=True, help="A line id (repeatable).")
@click.option("--reason", required=True, help="Why the line is held (required).")
@db_option
@user_option
@json_option
def hold_command(
    month: Month, line_ids: tuple[str, ...], reason: str, db_url: str | None,
    user: str | None, as_json: bool,
) -> None:  # fmt: skip
    """-> held, with the reason."""
    from billing_engine.services.close import commands

    _run(
        db_url,
        as_json,
        lambda s: commands.hold(
            s, month, user=user or login_name(), line_ids=line_ids, reason=reason
        ),
    )


@close_group.command("lock")
@month_argument
@db_option
@user_option
@json_option
def lock_command(month: Month, db_url: str | None, user: str | None, as_json: bool) -> None:
    """Run the claim edits, hold the lines that fail them, number the claims."""
    from billing_engine.services.close import commands

    _run(db_url, as_json, lambda s: commands.lock(s, month, user=user or login_name()))


@close_group.command("export")
@month_argument
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for claims.csv, 837p-<payer>.x12 and manifest.json.",
)
@db_option
@user_option
@json_option
def export_command(
    month: Month, out: Path, db_url: str | None, user: str | None, as_json: bool
) -> None:
    """Write the cycle's claim files; locked -> exported (again: the same bytes)."""
    from billing_engine.services.close import export

    _run(
        db_url,
        as_json,
        lambda s, step: export.export(s, month, user=user or login_name(), out=out, progress=step),
        export.STEPS,
    )


@close_group.command("reopen")
@month_argument
@click.option("--reason", required=True, help="Why the lock is undone (required).")
@db_option
@user_option
@json_option
def reopen_command(
    month: Month, reason: str, db_url: str | None, user: str | None, as_json: bool
) -> None:
    """locked -> open; the lock's claim ids are voided, never reused."""
    from billing_engine.services.close import commands

    _run(
        db_url,
        as_json,
        lambda s: commands.reopen(s, month, user=user or login_name(), reason=reason),
    )


@close_group.command("status")
@click.argument("month", callback=_month, metavar="[YYYY-MM]", required=False)
@db_option
@json_option
def status_command(month: Month | None, db_url: str | None, as_json: bool) -> None:
    """Per month: state, cycle, lines by status, claims, totals and late entries."""
    from billing_engine.services.close import status

    _run(db_url, as_json, lambda s: status.status(s, month))


@close_group.command("log")
@click.argument("month", callback=_month, metavar="[YYYY-MM]", required=False)
@db_option
@json_option
def log_command(month: Month | None, db_url: str | None, as_json: bool) -> None:
    """The audit log: time (UTC), user, action, month, cycle, ids, reason."""
    from billing_engine.services.close import status

    _run(db_url, as_json, lambda s: status.log(s, month))


COMMANDS: list[click.Command] = [close_group]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(close_group())
