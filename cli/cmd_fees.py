"""CLI commands: ``billing fees import-pfs | import-gpci | list``.

Import the CMS physician fee schedule files (the Relative Value File and the GPCIs by
locality, in their original CMS layout) into the store, and list what is stored.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click
import polars as pl

from cli.options import db_option

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group("fees")
def fees_group() -> None:
    """Import CMS fee files (RVUs, GPCIs) into the store; list the imported releases."""


@fees_group.command("import-pfs")
@click.argument("file", type=_FILE)
@click.option(
    "--year", type=int, required=True, help="Fee schedule year; the file's title must name it."
)
@click.option(
    "--effective-from",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    metavar="DATE",
    help="First date of service these values apply to (YYYY-MM-DD, inside --year); "
    "default: January 1 of --year.",
)
@click.option(
    "--qp",
    is_flag=True,
    help="The values are for qualifying APM participants (the QP conversion factor).",
)
@db_option
def import_pfs_command(
    file: Path, year: int, effective_from: dt.datetime | None, qp: bool, db_url: str | None
) -> None:
    """Import FILE, the CMS National Physician Fee Schedule Relative Value File (PPRRVU).

    CSV in the original CMS layout (or the same layout in .xlsx). Replaces every stored
    RVU row of the same year, effective date and QP flag, in one transaction.
    """
    from billing_engine.io.cms_pfs import read_pfs
    from billing_engine.store import Store

    effective = effective_from.date() if effective_from is not None else None
    frame = read_pfs(file, year, effective, qp)
    with Store.open(db_url) as store:
        count = store.import_pfs(frame)
        location = store.url
    shown_date = frame.get_column("effective_from")[0].isoformat()
    kind = "QP" if qp else "non-QP"
    click.echo(
        f"imported {count} RVU rows for {year} (effective {shown_date}, {kind}) "
        f"from {file} into {location}"
    )
    click.echo(f"conversion factor in the file: {_conversion_factors(frame)}")
    click.echo(f"release: {frame.get_column('release')[0]}")


def _conversion_factors(frame: pl.DataFrame) -> str:
    """The file's conversion factor(s), most rows first (``32.3465``)."""
    counts = (
        frame.group_by("conv_factor").len().sort(["len", "conv_factor"], descending=[True, False])
    )
    factors = [str(v) for v in counts.get_column("conv_factor").to_list()]
    if len(factors) == 1:
        return factors[0]
    rows = counts.get_column("len").to_list()
    return ", ".join(f"{f} ({n} rows)" for f, n in zip(factors, rows, strict=True))


@fees_group.command("import-gpci")
@click.argument("file", type=_FILE)
@click.option("--year", type=int, required=True, help="GPCI year; the file's title must name it.")
@db_option
def import_gpci_command(file: Path, year: int, db_url: str | None) -> None:
    """Import FILE, the CMS GPCIs by Medicare locality (Addendum E).

    CSV in the original CMS layout (or the same layout in .xlsx). Replaces every stored
    GPCI of the same year, in one transaction.
    """
    from billing_engine.io.cms_gpci import read_gpci
    from billing_engine.store import Store

    frame = read_gpci(file, year)
    with Store.open(db_url) as store:
        count = store.import_gpci(frame)
        location = store.url
    click.echo(f"imported {count} GPCI localities for {year} from {file} into {location}")
    click.echo(f"release: {frame.get_column('release')[0]}")


def format_releases(releases: list[dict[str, Any]]) -> list[str]:
    """One line per stored release, under a header."""
    header = (
        f"{'kind':<6}{'year':<6}{'effective':<12}{'qp':<8}{'rows':>7}  {'imported at':<22}release"
    )
    lines = [header]
    for r in releases:
        effective = r["effective_from"].isoformat() if r["effective_from"] else "-"
        qp = "-" if r["qp"] is None else ("QP" if r["qp"] else "non-QP")
        imported = r["imported_at"].strftime("%Y-%m-%d %H:%M:%SZ")
        lines.append(
            f"{r['kind']:<6}{r['year']:<6}{effective:<12}{qp:<8}{r['rows']:>7}  {imported:<22}"
            f"{r['release']} ({r['source_file']})"
        )
    return lines


@fees_group.command("list")
@db_option
def list_command(db_url: str | None) -> None:
    """List the shipped fee releases and those imported into the store (which win)."""
    from billing_engine.errors import StoreMissing
    from billing_engine.store import Store
    from code_rules.rulebook import shipped_fees as shipped

    click.echo("shipped with the engine (code_rules/pricing/data):")
    for kind, year, effective_from, qp, release, source_file, rows in (
        shipped().releases().iter_rows()
    ):
        variant = (
            "" if kind == "gpci" else f" effective {effective_from}, {'QP' if qp else 'non-QP'}"
        )
        click.echo(f"  {kind:<5}{year}{variant}: {rows} rows, {release} ({source_file})")
    try:
        store = Store.open(db_url, create=False)  # listing never creates a store
    except StoreMissing as exc:
        click.echo(f"no fee files imported: {exc}")
        return
    with store:
        releases = store.fee_releases()
        location = store.url
    if not releases:
        click.echo(f"no fee files imported into {location}")
        return
    click.echo(f"imported into {location} (replace the shipped release of the same year):")
    for line in format_releases(releases):
        click.echo(line)


COMMANDS: list[click.Command] = [fees_group]
