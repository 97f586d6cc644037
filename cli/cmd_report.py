"""``billing report``: the views made for a reader (``excel``: finance's workbook;
``html``: the month's close report, in ``cli/cmd_report_html.py``)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from billing_engine.calendar import Month
from cli.cmd_evaluate import (
    _date,
    _month,
    _settings,
    input_limits,
    load_bundle,
    settings_option,
    warn_unverified,
)
from cli.cmd_report_html import html_command

if TYPE_CHECKING:
    from billing_engine.io.bundle import Bundle
    from billing_engine.pricing.fees import FeeLibrary
    from billing_engine.services.finance import FinanceBook
    from billing_engine.store import Store

from cli.options import (
    allow_unverified_option,
    apply_deductible_option,
    db_option,
    fee_library,
    login_name,
    with_allow_unverified,
)


@click.group("report")
def report_group() -> None:
    """Reports for the people who read them: finance's Excel workbook, the close report."""


@report_group.command("excel")
@click.option("--from", "first", required=True, callback=_month, help="First month, YYYY-MM.")
@click.option("--to", "last", required=True, callback=_month, help="Last month, YYYY-MM.")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The workbook to write (.xlsx); replaced only once complete.",
)
@click.option(
    "--as-of",
    "as_of",
    callback=_date,
    help="Evaluate every month as of this date (default: each month's last day).",
)
@click.option("--user", default=None, help="Who makes it (default: the login name).")
@settings_option
@allow_unverified_option
@apply_deductible_option
@db_option
def excel_command(
    first: Month,
    last: Month,
    out: Path,
    as_of: dt.date | None,
    user: str | None,
    settings_path: Path | None,
    allow_unverified: bool,
    apply_deductible: bool,
    db_url: str | None,
) -> None:
    """Finance's workbook of the store's months --from to --to.

    Sheets: Summary (month x payer: lines, units, allowed, payer and patient shares,
    PMPM, money left on the table, and a chart of allowed by payer and month), By code,
    By care manager, Claim lines, Gaps, Claims and adjustments (when the store has a
    close for these months) and Sources (rule-set version, fee releases, parameter
    values, run ids, who made it when). Each month is evaluated as `billing evaluate
    --db` evaluates it.
    """
    if out.suffix.lower() != ".xlsx":
        raise click.BadParameter("the workbook's name must end in .xlsx", param_hint="--out")
    from billing_engine.services.revenue import months_between
    from billing_engine.store import Store
    from cli.progress import steps

    months = months_between(first, last)
    names = ["read the store", f"evaluate {len(months)} month(s)", "write the workbook"]
    with steps(names) as progress:
        progress.step(names[0])
        data, store_url = load_bundle(None, db_url, input_limits(settings_path))
        with Store.open(db_url, create=False) as store:
            made = store_workbook(
                store, data, store_url, first, last, out,
                as_of=as_of, made_by=user or login_name(),
                settings=with_allow_unverified(_settings(settings_path), allow_unverified),
                fees=fee_library(db_url), apply_deductible=apply_deductible,
                steps=lambda: progress.step(names[1]),
                writing=lambda: progress.step(names[2]),
            )  # fmt: skip
    warn_unverified(made.book.revenue)
    click.echo(
        f"{first} to {last}: {made.book.claim_lines.height} claim line(s), "
        f"{made.book.gaps.height} gap(s) (run {made.run_id})"
    )
    click.echo(f"  wrote {out} ({', '.join(made.titles)})")


@dataclass(frozen=True)
class MadeWorkbook:
    book: FinanceBook
    run_id: str
    titles: list[str]


def store_workbook(
    store: Store,
    data: Bundle,
    store_url: str | None,
    first: Month,
    last: Month,
    out: Path,
    *,
    as_of: dt.date | None,
    made_by: str,
    settings: dict[str, Any],
    fees: FeeLibrary,
    apply_deductible: bool = False,
    steps: Callable[[], None] = lambda: None,
    writing: Callable[[], None] = lambda: None,
) -> MadeWorkbook:
    """Finance's workbook of the store's months `first`..`last` written to `out` (the
    command's and the web app's one way to make it)."""
    from billing_engine.params.parameters import ALLOW_UNVERIFIED
    from billing_engine.services.evaluation import default_parameters
    from billing_engine.services.finance import (
        claimed_lines,
        claims_and_adjustments,
        finance_book,
    )
    from billing_engine.services.revenue import months_between
    from reports.outputs import software_version
    from reports.workbook import WorkbookSources, write_finance_workbook

    months = months_between(first, last)
    claimed = claimed_lines(store)
    claims = claims_and_adjustments(store, months)
    stored_releases = store.fee_releases()
    wanted = {str(m) for m in months}
    runs = [r for r in store.runs() if r["month"] in wanted]
    steps()
    book = finance_book(
        data, months, as_of=as_of, settings=settings, fees=fees,
        apply_deductible=apply_deductible, claimed=claimed,
    )  # fmt: skip
    sources = WorkbookSources(
        run_id=str(uuid.uuid4()),
        made_at=dt.datetime.now(dt.UTC),
        made_by=made_by,
        software_version=software_version(),
        first=first,
        last=last,
        as_of=as_of,
        data_source=data.source,
        store=store_url,
        rule_set_version=default_parameters().version(),
        fee_releases=fee_releases(stored_releases),
        runs=runs,
        notes={
            "apply_deductible": str(apply_deductible).lower(),
            "allow_unverified": str(settings.get(ALLOW_UNVERIFIED) is True).lower(),
        },
    )
    writing()
    titles = write_finance_workbook(out, book, sources, claims)
    return MadeWorkbook(book, sources.run_id, titles)


def fee_releases(stored: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The shipped fee releases then the store's (which replace a shipped year), each
    with its ``origin``."""
    from code_rules.rulebook import shipped_fees

    shipped = [
        {"origin": "shipped", **row, "imported_at": None}
        for row in shipped_fees().releases().iter_rows(named=True)
    ]
    return [*shipped, *({"origin": "store", **r} for r in stored)]


report_group.add_command(html_command)

COMMANDS: list[click.Command] = [report_group]
