"""``billing synth`` (write a synthetic practice) and ``billing demo`` (the whole pipeline).

``billing demo`` generates the deterministic demo practice (2,000 patients, 3 billing
practitioners, 4 care managers; see ``billing_engine.synth.practice``), writes it as a CSV bundle,
reads it back through the normal import checks, imports it into the store, evaluates
the window's last month (``--end-month``, default 2025-12), writes the outputs and
prints a short summary. Default folders: ``demo-bundle`` next to the database file
(the current folder when the database is not a SQLite file) and ``demo-output`` next
to the bundle.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from pathlib import Path
from typing import Any, Protocol

import click
import polars as pl

from billing_engine.calendar import Month
from billing_engine.errors import ConfigError
from billing_engine.pricing.money import MONEY
from cli.options import allow_unverified_option, db_option, login_name, with_allow_unverified

DEFAULT_END_MONTH = "2025-12"
SYNTH_MARKER = ".billing-synth"  # marks a folder billing synth wrote
DEMO_MARKER = ".billing-demo"  # marks a bundle folder billing demo wrote
DEMO_PATIENTS = 2000
CLOSE_MINUTES = 10  # a short gap needing at most this many minutes is "close"
CLOSE_SHOWN = 10  # patients listed under "close to a threshold"


class EvaluationFrames(Protocol):
    """What ``summarize`` reads from an evaluation result."""

    @property
    def claim_lines(self) -> pl.DataFrame: ...

    @property
    def gaps(self) -> pl.DataFrame: ...

    @property
    def revenue_by_payer(self) -> pl.DataFrame: ...


def _month(_ctx: click.Context, _param: click.Parameter, value: str) -> Month:
    try:
        return Month.parse(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from exc


def format_counts(counts: dict[str, int]) -> list[str]:
    """Rows per table, one line each, and the total."""
    width = max([len(name) for name in counts] + [5])
    lines = [f"  {name:<{width}} {rows:>10,}" for name, rows in counts.items()]
    lines.append(f"  {'total':<{width}} {sum(counts.values()):>10,}")
    return lines


def summarize(result: EvaluationFrames) -> str:
    """Claim lines by code, gaps by reason and the patients close to a time threshold
    (minutes logged, a few short: ``pricing.short_and_started``)."""
    from billing_engine.pricing.potential import short_and_started

    lines_frame = result.claim_lines
    gaps = result.gaps
    out: list[str] = []

    out.append(f"Claim lines by code ({lines_frame.height} lines):")
    if lines_frame.is_empty():
        out.append("  (none)")
    else:
        by_code = (
            lines_frame.with_columns(pl.col("units").cast(pl.Int64, strict=False).fill_null(0))
            .group_by("code")
            .agg(lines=pl.len(), units=pl.col("units").sum())
            .sort("code")
        )
        out.append(f"  {'code':<8}{'lines':>7}{'units':>7}")
        for code, count, units in by_code.iter_rows():
            out.append(f"  {code:<8}{count:>7}{units:>7}")
        out.append(f"  {'total':<8}{lines_frame.height:>7}{int(by_code['units'].sum()):>7}")

    out.append(f"Gaps by reason ({gaps.height} gaps):")
    if gaps.is_empty():
        out.append("  (none)")
    else:
        by_reason = (
            gaps.group_by("reason")
            .agg(gaps=pl.len())
            .sort(["gaps", "reason"], descending=[True, False])
        )
        width = max(6, *(len(str(r)) for r in by_reason["reason"]))
        for reason, count in by_reason.iter_rows():
            out.append(f"  {reason!s:<{width}} {count:>6}")

    if "minutes_logged" not in gaps.columns:
        gaps = gaps.with_columns(minutes_logged=pl.lit(None, dtype=pl.Int64))
    close = (
        gaps.with_columns(pl.col("minutes_needed", "minutes_logged").cast(pl.Int64, strict=False))
        .filter(
            short_and_started()
            & pl.col("minutes_needed").is_not_null()
            & (pl.col("minutes_needed") > 0)
            & (pl.col("minutes_needed") <= CLOSE_MINUTES)
        )
        .sort(["patient_id", "minutes_needed", "code"])
        .unique(subset=["patient_id"], keep="first", maintain_order=True)
        if not gaps.is_empty()
        else pl.DataFrame(
            schema={"patient_id": pl.String, "code": pl.String, "minutes_needed": pl.Int64}
        )
    )
    out.append(
        f"Patients close to a threshold (started, short by {CLOSE_MINUTES} minutes or less): "
        f"{close.height}"
    )
    for patient_id, code, needed in (
        close.head(CLOSE_SHOWN).select("patient_id", "code", "minutes_needed").iter_rows()
    ):
        out.append(f"  {patient_id}  {code:<6} {needed:>3} min needed")
    if close.height > CLOSE_SHOWN:
        out.append(f"  ... and {close.height - CLOSE_SHOWN} more")
    out.extend(_revenue_lines(result))
    return "\n".join(out)


def _revenue_lines(result: EvaluationFrames) -> list[str]:
    """Revenue by payer (the TOTAL rows, then the GRAND TOTAL) and the money left on the
    table: the short gaps within reach (``gaps.potential_amount``, set only on short
    gaps that logged work has started: ``pricing.potential.potential_amounts``)."""
    from billing_engine.engine.frames import GRAND_TOTAL, TOTAL
    from billing_engine.pricing.potential import short_and_started

    revenue = result.revenue_by_payer
    totals = revenue.filter(pl.col("code") == TOTAL)
    out = ["Revenue by payer (allowed / payer / patient, dollars):"]
    if totals.is_empty():
        return [*out, "  (none)"]
    grand = revenue.filter(pl.col("code") == GRAND_TOTAL)
    if grand.is_empty():  # a table written before grand totals: add them up here
        grand = totals.select(
            pl.col("lines").sum(),
            *[pl.col(c).cast(MONEY).sum() for c in ("allowed_amount", "payer_amount",
                                                    "patient_amount")],
        )  # fmt: skip
    names = totals.select("payer_id", "payer_name").rows()
    width = max(len(GRAND_TOTAL), *(len(str(n or p)) for p, n in names))
    shown = totals.with_columns(pl.col("^.*_amount$").cast(pl.String).fill_null(""))
    for payer, name, lines, allowed, paid, patient, unpriced in shown.select(
        "payer_id", "payer_name", "lines", "allowed_amount", "payer_amount", "patient_amount",
        "unpriced_lines",
    ).iter_rows():  # fmt: skip
        text = f"  {name or payer!s:<{width}} {lines:>5} lines {allowed:>11} {paid:>11} "
        text += f"{patient:>10}"
        out.append(text + (f"  ({unpriced} without a fee)" if unpriced else ""))
    lines_all, allowed_all, paid_all, patient_all = (
        grand.with_columns(pl.col("^.*_amount$").cast(pl.String).fill_null(""))
        .select("lines", "allowed_amount", "payer_amount", "patient_amount")
        .row(0)
    )
    out.append(f"  {'GRAND TOTAL':<{width}} {lines_all:>5} lines {allowed_all!s:>11} "
               f"{paid_all!s:>11} {patient_all!s:>10}")  # fmt: skip
    gaps = result.gaps
    if "minutes_logged" not in gaps.columns:
        gaps = gaps.with_columns(minutes_logged=pl.lit(None, dtype=pl.Int64))
    short = gaps.filter(pl.col("status") == "short").with_columns(
        pl.col("minutes_needed", "minutes_logged").cast(pl.Int64, strict=False),
        pl.col("potential_amount").cast(MONEY),
    )
    valued = short.filter(pl.col("potential_amount").is_not_null())
    not_started = short.filter(~short_and_started()).height
    out.append(
        f"Money left on the table (allowed amount, if closed, of the {valued.height} short "
        f"gaps within reach: work started): {valued['potential_amount'].sum()}"
    )
    others = short.height - valued.height - not_started
    out.append(
        f"  not counted: {not_started} short gaps with nothing logged yet (not started)"
        + (f"; {others} started but without a fee or only an alternative" if others else "")
    )
    return out


force_option = click.option(
    "--force",
    is_flag=True,
    help="Write into a non-empty folder this command did not make (its files are replaced).",
)


def demo_folder(db_url: str) -> Path:
    """The folder the demo writes into by default: next to a SQLite database file,
    else the current folder."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(db_url)
    except ArgumentError:
        return Path.cwd()
    database = url.database
    if url.get_backend_name() == "sqlite" and database and database != ":memory:":
        return Path(database).expanduser().resolve().parent
    return Path.cwd()


@click.command("synth")
@click.option(
    "--patients",
    type=click.IntRange(min=1),
    default=DEMO_PATIENTS,
    show_default=True,
    help="Number of patients.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write <table>.csv into (created if missing).",
)
@click.option("--seed", type=int, default=7, show_default=True, help="Random seed.")
@click.option(
    "--end-month",
    default=DEFAULT_END_MONTH,
    show_default=True,
    callback=_month,
    help="Last month of the generated activity, YYYY-MM.",
)
@click.option(
    "--months",
    type=click.IntRange(1, 60),
    default=12,
    show_default=True,
    help="Months of activity, ending with --end-month.",
)
@force_option
def synth_command(
    patients: int, out: Path, seed: int, end_month: Month, months: int, force: bool
) -> None:
    """Write a deterministic synthetic practice as a CSV bundle.

    The same --patients, --seed, --end-month and --months always give the same files.
    A non-empty folder that billing synth did not write (it leaves a .billing-synth
    marker) is refused unless --force.
    """
    from billing_engine.io.safe_files import claim_folder
    from billing_engine.synth.parts import PART_PATIENTS, write_practice_in_parts
    from billing_engine.synth.practice import generate_practice, write_bundle_csv

    claim_folder(out, SYNTH_MARKER, "billing synth", force=force)
    started = time.perf_counter()
    from cli.progress import steps

    if patients > PART_PATIENTS:  # drawn and written a part at a time: bounded memory
        with steps([f"generate and write {patients:,} patients"]) as progress:
            progress.step(f"generate and write {patients:,} patients")
            counts = write_practice_in_parts(patients, out, seed, str(end_month), months)
        generated = written = time.perf_counter()
    else:
        names = [f"generate {patients:,} patients", "write the CSV bundle"]
        with steps(names) as progress:
            progress.step(names[0])
            bundle = generate_practice(patients, seed=seed, end_month=str(end_month), months=months)
            progress.step(names[1])
            generated = time.perf_counter()
            counts = write_bundle_csv(bundle, out)
        written = time.perf_counter()
    click.echo(f"wrote {out} ({patients:,} patients, seed {seed}, {months} months to {end_month})")
    for line in format_counts(counts):
        click.echo(line)
    click.echo(
        f"generated in {generated - started:.2f} s, written in {written - generated:.2f} s "
        f"(total {written - started:.2f} s)"
    )


@click.command("demo")
@db_option
@click.option(
    "--patients",
    type=click.IntRange(min=1),
    default=DEMO_PATIENTS,
    show_default=True,
    help="Patients in the demo practice.",
)
@click.option("--seed", type=int, default=7, show_default=True, help="Random seed.")
@click.option(
    "--end-month",
    default=DEFAULT_END_MONTH,
    show_default=True,
    callback=_month,
    help="Last month of the demo data; the month evaluated.",
)
@click.option(
    "--bundle",
    "bundle_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the demo bundle's CSV files (default: demo-bundle next to the database).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the outputs (default: demo-output next to the bundle).",
)
@click.option(
    "--claims",
    "claims_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the close's claim files (default: demo-claims next to the bundle).",
)
@force_option
@allow_unverified_option
def demo_command(
    db_url: str | None,
    patients: int,
    seed: int,
    end_month: Month,
    bundle_dir: Path | None,
    out_dir: Path | None,
    claims_dir: Path | None,
    force: bool,
    allow_unverified: bool,
) -> None:
    """Run the whole pipeline on a deterministic demo practice.

    Generates the practice (2,000 patients by default), writes it as a CSV bundle
    (default: a demo-bundle folder next to the SQLite database file, else in the current
    folder), reads it back through the import checks, imports it into the store,
    evaluates --end-month over everything the store then holds, records the run,
    writes the outputs (default: demo-output next to the bundle) and prints a summary.
    Then it runs the month's close end to end (start, approve every pending line, lock:
    the claim edits hold what a payer would reject, export) and prints where the claim
    files are (default: demo-claims/<month>-cycle<n> next to the bundle).
    A non-empty bundle folder the demo did not write (it leaves a .billing-demo marker)
    is refused unless --force; the outputs folder is replaced as a whole, as by
    billing evaluate, and may hold only outputs.
    """
    from billing_engine.io.ingest import read_bundle
    from billing_engine.io.safe_files import check_output_folder, claim_folder
    from billing_engine.pricing.fees import FeeLibrary
    from billing_engine.services.evaluation import evaluate
    from billing_engine.store import Store, default_db_url, display_url
    from billing_engine.synth.practice import generate_practice, write_bundle_csv
    from code_rules.rulebook import shipped_fees as shipped
    from reports.outputs import EVALUATE_FILES, write_outputs

    url = db_url or default_db_url()
    bundle_dir = bundle_dir or demo_folder(url) / "demo-bundle"
    out_dir = out_dir or bundle_dir.parent / "demo-output"
    claims_dir = claims_dir or bundle_dir.parent / "demo-claims"

    claim_folder(bundle_dir, DEMO_MARKER, "billing demo", force=force)
    check_output_folder(out_dir, EVALUATE_FILES)
    bundle = generate_practice(patients, seed=seed, end_month=str(end_month))
    counts = write_bundle_csv(bundle, bundle_dir)
    click.echo(f"wrote the demo bundle to {bundle_dir} ({sum(counts.values()):,} rows)")
    data = read_bundle(bundle_dir)
    with Store.open(url) as store:
        summary = store.import_bundle(data)
        click.echo(
            f"imported into {display_url(store.url)}: {summary.inserted:,} inserted, "
            f"{summary.updated:,} updated, {summary.unchanged:,} unchanged"
        )
        stored = store.load_bundle()
        if stored["patients"].height != data["patients"].height:
            click.echo(
                f"note: the store holds {stored['patients'].height:,} patients; "
                "all of them are evaluated"
            )
        rvus, gpcis = store.fee_tables()
        result = evaluate(
            stored,
            end_month,
            settings=with_allow_unverified({}, allow_unverified),
            fees=shipped().overlay(FeeLibrary(rvus, gpcis)),
        )
        run_id = str(uuid.uuid4())
        paths = write_outputs(
            result, out_dir, run_id=run_id, created_at=dt.datetime.now(dt.UTC), store=store.url
        )
        store.record_run(  # after the outputs are in place, under the id they carry
            month=str(end_month),
            as_of=end_month.end,
            rule_set_version=result.rule_set_version,
            input_row_counts=stored.row_counts(),
            line_count=result.claim_lines.height,
            gap_count=result.gaps.height,
            source=str(bundle_dir),
            run_id=run_id,
            allow_unverified=result.allow_unverified,
            unverified_parameters=list(result.unverified_parameters),
        )
    click.echo(
        f"evaluated {end_month} (rule set {result.rule_set_version}, run {run_id}); "
        f"outputs in {out_dir}: {', '.join(p.name for p in paths)}"
    )
    click.echo("")
    click.echo(summarize(result))
    click.echo("")
    with Store.open(url) as store:
        settings = with_allow_unverified({}, allow_unverified)
        click.echo(close_summary(store, end_month, claims_dir, settings))


def close_summary(store: Any, month: Month, claims_dir: Path, settings: dict[str, Any]) -> str:
    """Run the month's close end to end and say what it did."""
    from billing_engine.services.close.whole import close_month, held_lines

    done = close_month(store, month, user=login_name(), out_root=claims_dir, settings=settings)
    lines = [f"Monthly close of {month}:"]
    lines.extend(f"  {step.summary}" for step in done.steps)
    held = held_lines(store, month)
    reasons = ", ".join(f"{k.removeprefix('edit:')} {n}" for k, n in done.held_by_edits.items())
    lines.append(
        f"Claim files in {done.out}; {held:,} lines held"
        + (f" by the claim edits ({reasons})" if reasons else "")
        + f": see billing close review {month} --status held"
    )
    return "\n".join(lines)


COMMANDS: list[click.Command] = [synth_command, demo_command]
