"""``billing evaluate`` and ``billing explain``."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from billing_engine.calendar import Month
from billing_engine.errors import BillingError, ConfigError, StoreMissing
from billing_engine.io.bundle import Bundle
from billing_engine.io.ingest_limits import InputLimits, split_settings
from cli.options import (
    allow_unverified_option,
    apply_deductible_option,
    db_option,
    fee_library,
    login_name,
    with_allow_unverified,
)

if TYPE_CHECKING:
    from billing_engine.services.evaluation import EvaluationResult


def _month(_ctx: click.Context, _param: click.Parameter, value: str) -> Month:
    try:
        return Month.parse(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from exc


def _date(_ctx: click.Context, _param: click.Parameter, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"expected YYYY-MM-DD, got {value!r}") from exc


def _settings(path: Path | None) -> dict[str, Any]:
    """The settings file's evaluation settings (its ``ingest.*`` input limits left out)."""
    return split_settings(_settings_file(path))[1]


def _settings_file(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    from billing_engine.params.parameters import load_settings_file

    return load_settings_file(path)


def input_limits(path: Path | None) -> InputLimits:
    """The input limits a bundle is read with: the shipped ones, with the file's ``ingest.*``."""
    return split_settings(_settings_file(path))[0]


def load_bundle(
    bundle_path: Path | None,
    db: str | None,
    limits: InputLimits | None = None,
    month: Month | None = None,
) -> tuple[Bundle, str | None]:
    """The bundle from a folder/workbook, or from the store when no path is given.

    Returns the bundle and the store URL it came from (password hidden; None for a
    path). A store that does not exist or holds no patients is refused
    (``StoreMissing``, exit code 2): reading never creates a store nor reports an
    empty month for one. ``limits`` are the input limits a bundle path is read with
    (default: the shipped ones). With ``month``, a bundle from the store also holds the
    lines of the close's exported claims of the other months as claims history (what
    was billed stays billed; ``billing_engine.services.close.evaluation``).
    """
    if bundle_path is not None:
        from billing_engine.io.ingest import read_bundle

        return read_bundle(bundle_path, limits), None
    from billing_engine.store import Store

    with Store.open(db, create=False) as store:
        if month is not None:
            from billing_engine.services.close.evaluation import store_bundle

            data = store_bundle(store, month)
        else:
            data = store.load_bundle()
        if data["patients"].is_empty():
            raise StoreMissing(
                f"the store {store.url} holds no patients; import a bundle first "
                "(billing import BUNDLE --db URL) or name another store with --db"
            )
        return data, store.url


bundle_argument = click.argument(
    "bundle", required=False, type=click.Path(exists=True, path_type=Path)
)
month_option = click.option(
    "--month", required=True, callback=_month, help="Calendar month to evaluate, YYYY-MM."
)
as_of_option = click.option(
    "--as-of",
    "as_of",
    callback=_date,
    help="Date the evaluation is made (default: the month's last day); decides short vs blocked.",
)
settings_option = click.option(
    "--settings",
    "settings_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help=(
        "YAML file of documented settings to override (name: value); ingest.* names set "
        "the input limits a BUNDLE is read with."
    ),
)


def _count_option(name: str, least: int, help_text: str) -> Callable[[Any], Any]:
    """An optional whole-number option of at least `least` (None when not given)."""
    return click.option(name, type=click.IntRange(min=least), default=None, help=help_text)


@click.command("evaluate")
@bundle_argument
@month_option
@click.option(
    "--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder."
)
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True
)
@as_of_option
@settings_option
@allow_unverified_option
@apply_deductible_option
@db_option
@click.option(
    "--families",
    "families",
    default=None,
    metavar="NAMES",
    help="Evaluate only these code families, comma-separated (e.g. ccm,tcm; default: all).",
)
@_count_option(
    "--partition-patients",
    0,
    "Evaluate in patient parts of at most this many patients (default 200000; "
    "0: one part). Same outputs; memory follows the part.",
)
@_count_option(
    "--workers",
    1,
    "Patient parts evaluated at once by the local engine, in threads (default: 2, "
    "or 1 on a one-core machine); a practice evaluated in one part has its code "
    "families evaluated that many at once. Each adds a part's memory.",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="local: the parts in this process, --workers at a time; ray: the parts as Ray "
    "Data tasks (the 'ray' extra; RAY_ADDRESS names a cluster, else a local runtime starts).",
)
def evaluate_command(
    bundle: Path | None,
    month: Month,
    out: Path,
    fmt: str,
    as_of: dt.date | None,
    settings_path: Path | None,
    allow_unverified: bool,
    apply_deductible: bool,
    db_url: str | None,
    families: str | None,
    partition_patients: int | None,
    workers: int | None,
    engine: str,
) -> None:
    """Evaluate one month: claim lines, gaps and revenue by payer.

    BUNDLE is a folder of CSV or Parquet files or an .xlsx workbook; without it the
    store (--db) is evaluated and the run is recorded there.
    """
    from billing_engine.io.safe_files import check_output_folder
    from billing_engine.services.evaluation import DEFAULT_PARTITION_PATIENTS, evaluate
    from cli.progress import steps
    from reports.outputs import EVALUATE_FILES, write_outputs

    check_output_folder(out, EVALUATE_FILES)
    only = family_selection(families)
    per_part = DEFAULT_PARTITION_PATIENTS if partition_patients is None else partition_patients
    names = ["read the bundle", f"evaluate {month}", "write the outputs"]
    with steps(names) as progress:
        progress.step(names[0])
        data, store_url = load_bundle(bundle, db_url, input_limits(settings_path), month)
        progress.step(names[1])
        settings = with_allow_unverified(_settings(settings_path), allow_unverified)
        run: Callable[..., EvaluationResult] = evaluate
        local: dict[str, int] = {} if workers is None else {"workers": workers}
        if engine == "ray":  # the same parts, as Ray Data tasks (Ray sets their number)
            from billing_engine.services.ray_engine import evaluate_on_ray as run

            local = {}
        result = run(
            data,
            month,
            as_of,
            settings=settings,
            fees=fee_library(db_url),
            apply_deductible=apply_deductible,
            only=only,
            partition_patients=per_part,
            **local,
        )
        progress.step(names[2])
        run_id = str(uuid.uuid4())
        created_at = dt.datetime.now(dt.UTC)
        paths = write_outputs(
            result, out, fmt, run_id=run_id, created_at=created_at, store=store_url
        )
        if store_url is not None:
            record_run(db_url, result, run_id, out)
    if store_url is not None:
        click.echo(f"run {run_id} recorded")
    warn_unverified(result)
    click.echo(
        f"{month}: {result.claim_lines.height} claim line(s), {result.gaps.height} gap(s) "
        f"(rule set {result.rule_set_version}, run {run_id})"
    )
    for path in paths:
        click.echo(f"  wrote {path}")
    click.echo(f"  wrote {out / 'manifest.json'}")


def family_selection(text: str | None) -> frozenset[str] | None:
    """The families named by ``--families`` (None: all); an unknown name is refused."""
    if text is None:
        return None
    from billing_engine.services.evaluation import family_names

    known = family_names()
    names = frozenset(n.strip() for n in text.split(",") if n.strip())
    unknown = sorted(names - set(known))
    if unknown or not names:
        raise click.BadParameter(
            f"unknown family {', '.join(unknown) or '(none given)'}; the families are "
            + ", ".join(known),
            param_hint="--families",
        )
    return names


def record_run(db_url: str | None, result: EvaluationResult, run_id: str, out: Path) -> None:
    """Record the evaluated run in the store, under the run id its outputs carry.

    Called only once the outputs are in place (a recorded run always has outputs); a
    failure here says so and names the outputs, whose manifest holds the run id.
    """
    from billing_engine.store import Store

    try:
        with Store.open(db_url, create=False) as store:
            store.record_run(
                month=str(result.month),
                as_of=result.as_of,
                rule_set_version=result.rule_set_version,
                input_row_counts=dict(result.input_row_counts),
                line_count=result.claim_lines.height,
                gap_count=result.gaps.height,
                source=result.source,
                run_id=run_id,
                allow_unverified=result.allow_unverified,
                unverified_parameters=list(result.unverified_parameters),
            )
    except BillingError as exc:
        raise BillingError(
            f"the outputs of run {run_id} are in {out}, but the run was not recorded: {exc}"
        ) from exc


def warn_unverified(result: Any) -> None:
    """One line on stderr when the run carried unverified values forward."""
    if result.unverified_parameters:
        click.echo(
            f"warning: {len(result.unverified_parameters)} parameter(s) used past their "
            "verified date (--allow-unverified); the lines carry info gaps "
            "parameters_unverified",
            err=True,
        )


@click.command("explain")
@bundle_argument
@month_option
@click.option("--patient", "patient_id", required=True, help="Patient id.")
@click.option("--code", help="Only this code.")
@as_of_option
@settings_option
@allow_unverified_option
@db_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "html"]),
    default="text",
    show_default=True,
    help="text: the terminal explanation; html: the audit pack (consents, care plans, the "
    "month's timeline, every criterion, the rule texts and source documents), one page.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file instead of the terminal.",
)
def explain_command(
    bundle: Path | None,
    month: Month,
    patient_id: str,
    code: str | None,
    as_of: dt.date | None,
    settings_path: Path | None,
    allow_unverified: bool,
    db_url: str | None,
    fmt: str,
    out: Path | None,
) -> None:
    """Why a patient's month bills what it bills: every criterion, value, parameter and row.

    Reads BUNDLE when given, else the store (--db). --format html writes the audit pack:
    the patient's month as an auditor asks for it (PHI included: it is shown only in the
    file or page asked for, never logged).
    """
    from billing_engine.io.safe_files import replace_file
    from billing_engine.services.audit_pack import build_audit_pack
    from billing_engine.services.evaluation import explain
    from reports import render
    from reports.audit_pack import render_audit_pack

    data, _ = load_bundle(bundle, db_url, input_limits(settings_path), month)
    if data["patients"].filter(data["patients"]["patient_id"] == patient_id).is_empty():
        raise ConfigError(f"patient {patient_id!r} is not in {data.source}")
    settings = with_allow_unverified(_settings(settings_path), allow_unverified)
    fees = fee_library(db_url)  # the fees `billing evaluate` would use
    if fmt == "html":
        pack = build_audit_pack(
            data, month, patient_id, code, as_of=as_of, settings=settings, fees=fees
        )
        text = render_audit_pack(pack, made_at=dt.datetime.now(dt.UTC), made_by=login_name())
    else:
        view = explain(data, month, patient_id, code, as_of=as_of, settings=settings, fees=fees)
        text = render("explain.txt.j2", x=view)
    if out is None:
        click.echo(text, nl=False)
    else:
        replace_file(out, text.encode("utf-8"))
        click.echo(f"wrote {out}")


COMMANDS: list[click.Command] = [evaluate_command, explain_command]
