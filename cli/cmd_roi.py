"""``billing roi``: does a care manager pay for herself, measured from the store's months;
``billing roi model``: one FTE's revenue, cost and net over a caseload range."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from billing_engine.calendar import Month
from cli.cmd_close import _month as _optional_month
from cli.cmd_evaluate import _date, _settings, load_bundle, settings_option
from cli.cmd_revenue import _render
from cli.options import allow_unverified_option, db_option, fee_library, with_allow_unverified

if TYPE_CHECKING:
    from billing_engine.services.roi.build import ModelRange, OtherValue
    from billing_engine.services.roi.report import RoiReport

FORMATS = ("table", "csv", "json")
_CASELOAD_RE = re.compile(r"^\s*(\d+)\s*(?:\.\.\s*(\d+)\s*)?$")


def _dollars(_ctx: click.Context, param: click.Parameter, value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        amount = Decimal(value.replace(",", "").lstrip("$"))
    except InvalidOperation:
        raise click.BadParameter(f"expected an amount in dollars, got {value!r}") from None
    if amount < 0 or not amount.is_finite():
        raise click.BadParameter(f"{param.name} cannot be negative, got {value!r}")
    return amount


def _caseloads(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    match = _CASELOAD_RE.match(value)
    if not match:
        raise click.BadParameter(
            f"expected FIRST..LAST (e.g. 40..250) or one number, got {value!r}"
        )
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) else first
    if last < first:
        raise click.BadParameter(f"the range ends ({last}) before it starts ({first})")
    return first, last


_from = click.option("--from", "first", callback=_optional_month,
                     help="First month, YYYY-MM (default: 12 months ending with the last "
                          "month holding an encounter).")  # fmt: skip
_to = click.option("--to", "last", callback=_optional_month, help="Last month, YYYY-MM.")
_staffing = click.option(
    "--staffing",
    "staffing_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV: care_manager_id, role, annual_salary, benefits_rate, fte, start_date, "
    "end_date. Without it, default salaries by role are assumed (and the output says so).",
)
_format = click.option(
    "--format",
    "output_format",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="table: a summary for reading; csv / json: the rows only, on standard output.",
)
_out = click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the workbook (sheets measured, scenarios, sensitivity, assumptions).",
)
_html = click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a self-contained HTML page with the charts.",
)
_role = click.option(
    "--role",
    help="Model one FTE at the rates of this role's care managers (default: the team's).",
)
_as_of = click.option("--as-of", "as_of", callback=_date,
                      help="Evaluate every month as of this date (default: each month's "
                           "last day).")  # fmt: skip


def _common(f: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        (
            _from,
            _to,
            _staffing,
            _role,
            _format,
            _out,
            _html,
            _as_of,
            settings_option,
            allow_unverified_option,
            db_option,
        )
    ):
        f = option(f)
    return f


@click.group("roi", invoke_without_command=True)
@_common
@click.option("--quality-incentive", "quality_incentive", callback=_dollars, metavar="DOLLARS",
              help="Quality incentives earned over the months (the team's), shared by "
                   "caseload; reported in its own column, never in net.")  # fmt: skip
@click.option("--visits-freed", "visits_freed", callback=_dollars, metavar="N",
              help="Physician visits a care manager frees per FTE-month (with "
                   "--visit-rate); reported in its own column, never in net.")  # fmt: skip
@click.option("--visit-rate", "visit_rate", callback=_dollars, metavar="DOLLARS",
              help="What one freed visit pays (with --visits-freed).")  # fmt: skip
@click.pass_context
def roi_command(ctx: click.Context, /, quality_incentive: Decimal | None,
                visits_freed: Decimal | None, visit_rate: Decimal | None,
                **options: Any) -> None:  # fmt: skip
    """What each care manager brings in against what she costs, from --from to --to.

    Each month is evaluated as `billing revenue` does; a line's amount is shared among
    the care managers whose minutes it stands on, by minutes. Cost comes from --staffing
    or from documented default salaries (the output says which). Every assumption is
    listed with its value and source (--out, --html). `billing roi model` models one
    FTE over a caseload range.
    """
    if ctx.invoked_subcommand is not None:
        return
    if (visits_freed is None) != (visit_rate is None):
        raise click.UsageError("--visits-freed and --visit-rate go together")
    from billing_engine.services.roi.build import ModelRange, OtherValue

    other = OtherValue(quality_incentive, visits_freed, visit_rate)
    _run(options, ModelRange(), other, model_only=False)


@roi_command.command("model")
@_common
@click.option(
    "--caseload",
    "caseloads",
    callback=_caseloads,
    metavar="FIRST..LAST",
    help="Caseloads to model (default: roi.model_caseload_min..max, 40..250).",
)
@click.option("--step", type=click.IntRange(min=1), default=10, show_default=True,
              help="Caseload step.")  # fmt: skip
def model_command(caseloads: tuple[int, int] | None, step: int, **options: Any) -> None:
    """Revenue, cost and net of one FTE-month per caseload, at the measured rates.

    The rates (conversion, revenue per billable patient-month, minutes per patient-month)
    come from --from..--to (default: the last 12 months with encounters); salary from
    --staffing or the role's default. Shows where she breaks even and where she runs
    out of time, and the sensitivity table.
    """
    from billing_engine.services.roi.build import ModelRange, OtherValue

    first, last = caseloads if caseloads else (None, None)
    _run(options, ModelRange(first, last, step), OtherValue(), model_only=True)


def _run(options: dict[str, Any], caseloads: ModelRange, other: OtherValue,
         *, model_only: bool) -> None:  # fmt: skip
    from billing_engine.services.revenue import months_between
    from billing_engine.services.roi.build import default_range, known_roles, roi_report
    from billing_engine.services.roi.staffing import read_staffing

    first: Month | None = options["first"]
    last: Month | None = options["last"]
    if (first is None) != (last is None):
        raise click.UsageError("give both --from and --to, or neither")
    if first is None and not model_only:
        raise click.UsageError("billing roi needs --from YYYY-MM and --to YYYY-MM")
    db_url = options["db_url"]
    data, _ = load_bundle(None, db_url)
    months = months_between(first, last) if first and last else default_range(data)
    settings = with_allow_unverified(_settings(options["settings_path"]),
                                     options["allow_unverified"])  # fmt: skip
    staffing_path: Path | None = options["staffing_path"]
    staffing = (
        read_staffing(staffing_path, known_roles(months, settings)) if staffing_path else None
    )
    report = roi_report(
        data,
        months,
        staffing=staffing,
        staffing_label=staffing_path.name if staffing_path else "staffing file",
        role=options["role"],
        caseloads=caseloads,
        other=other,
        as_of=options["as_of"],
        settings=settings,
        fees=fee_library(db_url),
    )
    output_format = options["output_format"]
    if output_format != "table":
        from reports.roi import rows_csv, rows_json

        rows = report.scenarios if model_only else report.measured
        click.echo(rows_csv(rows) if output_format == "csv" else rows_json(rows), nl=False)
    elif model_only:
        _print_model(report)
    else:
        _print_measured(report)
    _write_files(report, options["out"], options["html_path"], data.source,
                 quiet=output_format != "table")  # fmt: skip


def _write_files(report: RoiReport, out: Path | None, html: Path | None, source: str,
                 *, quiet: bool) -> None:  # fmt: skip
    from reports.roi import write_roi_html, write_roi_workbook

    said = click.echo if not quiet else (lambda message: click.echo(message, err=True))
    if out is not None:
        titles = write_roi_workbook(out, report)
        said(f"  wrote {out} (sheets: {', '.join(titles)})")
    if html is not None:
        write_roi_html(report, html, created_at=dt.datetime.now(dt.UTC), source=source)
        said(f"  wrote {html}")


def _print_measured(report: RoiReport) -> None:
    from reports.roi import SUMMARY_COLUMNS

    first, last = report.months[0], report.months[-1]
    cost_note = "staffing file" if report.staffing_given else "ASSUMED (default salaries)"
    click.echo(f"Care-manager ROI {first} to {last} (amounts in dollars; revenue measured, "
               f"cost {cost_note})")  # fmt: skip
    for line in _render(report.measured, list(SUMMARY_COLUMNS)):
        click.echo(line)
    team = report.practice_allowed - report.not_attributed_allowed
    click.echo(
        f"Allowed over the months: {report.practice_allowed:,.2f} (as billing revenue) = "
        f"care managers {team:,.2f} + not attributed {report.not_attributed_allowed:,.2f} "
        "(on no counted care manager's minutes: practitioners' own work, staff without a "
        "staffing row or outside their staffed months)"
    )
    if report.practice_pmpm:
        click.echo(
            f"PMPM capitation over the months: {report.practice_pmpm:,.2f} (beside "
            "fee-for-service; pmpm_amount is each care manager's enrolled members')"
        )
    _print_fte(report)
    other = report.measured.select("quality_incentives", "shifted_work_value")
    if other.null_count().sum_horizontal()[0] < 2 * other.height:
        click.echo("Other value (inputs, never in net):")
        for line in _render(
            report.measured,
            ["care_manager_id", "net", "quality_incentives", "shifted_work_value",
             "net_with_other_value"],
        ):  # fmt: skip
            click.echo(line)
    click.echo("  measured: months, caseload, conversion, minutes, lines, allowed, pmpm; "
               "assumed: cost (salary x (1 + benefits) x FTE); both: expected collections "
               "(x collection rate), net, roi_pct, break-even")  # fmt: skip
    for note in report.notes:
        click.echo(f"note: {note}")


def _print_fte(report: RoiReport) -> None:
    who = f"role {report.role}" if report.role else "the team's rates"
    be = report.break_even_caseload
    even = (
        f"break-even caseload {be} patients a month"
        if be is not None
        else "no caseload breaks even (a patient-month brings nothing at the measured rates)"
    )
    room = (
        f"capacity {report.capacity_caseload} patients a month"
        if report.capacity_caseload
        else "capacity not measured (no minutes logged in the months)"
    )
    click.echo(f"One FTE at {who}: {even}; {room}")
    capacity = report.capacity
    steps = ", ".join(
        f"{m:g} min: {p if p is not None else '-'}"
        for m, p in capacity.select("minutes_per_patient_month", "patients_per_fte").rows()
    )
    click.echo(f"  patients one FTE carries at N minutes per patient-month (documentation "
               f"included; the last is measured): {steps}")  # fmt: skip


def _print_model(report: RoiReport) -> None:
    first, last = report.months[0], report.months[-1]
    click.echo(f"One FTE-month by caseload, at the rates measured {first} to {last} "
               "(amounts in dollars)")  # fmt: skip
    for line in _render(
        report.scenarios,
        ["caseload", "revenue", "cost", "net", "minutes_needed", "capacity_minutes",
         "within_capacity"],
    ):  # fmt: skip
        click.echo(line)
    _print_fte(report)
    click.echo(f"Sensitivity: net of one FTE-month at full capacity ({report.reference_caseload}"
               " patients), each factor moved down and up")  # fmt: skip
    for line in _render(
        report.sensitivity,
        ["factor", "base_value", "low_value", "high_value", "net_low", "net_high", "swing"],
    ):
        click.echo(line)
    for note in report.notes:
        click.echo(f"note: {note}")


COMMANDS: list[click.Command] = [roi_command]
