"""The outputs of ``billing roi``: CSV and JSON rows, the workbook, the HTML page.

Money goes out as 2-decimal strings in CSV and JSON (exact; never a float), as numbers
with a currency format in the workbook. The page is self-contained like the close
report (styles inline, charts as SVG text drawn by matplotlib, no script, no link out)
and labels every figure measured or assumed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path

import polars as pl
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from billing_engine.io.safe_files import csv_bytes
from billing_engine.services.roi.report import (
    ASSUMED,
    MEASURED,
    MEASURED_KINDS,
    TEAM,
    RoiReport,
)
from reports.close_report import (
    BLUE,
    CHART_RC,
    GREEN,
    GREY,
    ORANGE,
    RED,
    _figure,
    _floats,
    _rows,
    _svg,
    money,
    publish_page,
)
from reports.outputs import software_version
from reports.workbook import write_tables_workbook

TEMPLATE = "roi.html.j2"
SHEETS = ("measured", "scenarios", "sensitivity", "assumptions", "capacity", "columns")
# the measured columns the page's table and the terminal summary show
SUMMARY_COLUMNS = ("care_manager_id", "role", "months", "caseload", "conversion",
                   "minutes_logged", "minutes_counted", "minutes_stranded", "lines",
                   "allowed_amount", "expected_collections", "pmpm_amount", "cost", "net",
                   "roi_pct", "break_even_caseload")  # fmt: skip


def money_as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Every Decimal column as its 2-decimal text (null stays null)."""
    return frame.with_columns(
        pl.col(name).cast(pl.String)
        for name, dtype in frame.schema.items()
        if isinstance(dtype, pl.Decimal)
    )


def rows_csv(frame: pl.DataFrame) -> str:
    """The frame as CSV text, money as 2-decimal strings, text that begins like a
    formula neutralized (``safe_files.csv_bytes``, the one CSV writer)."""
    return csv_bytes(frame).decode("utf-8")


def rows_json(frame: pl.DataFrame) -> str:
    """The frame as a JSON list of row objects, money as 2-decimal strings."""
    return json.dumps(money_as_text(frame).to_dicts(), indent=1) + "\n"


def column_kinds() -> pl.DataFrame:
    """column, kind: what each measured column is (measured, assumed or both)."""
    return pl.DataFrame(
        {"column": list(MEASURED_KINDS), "kind": list(MEASURED_KINDS.values())},
        schema={"column": pl.String, "kind": pl.String},
    )


def write_roi_workbook(path: Path, report: RoiReport) -> list[str]:
    """The sheets measured, scenarios, sensitivity, assumptions (and capacity, columns)."""
    frames = (report.measured, report.scenarios, report.sensitivity, report.assumptions,
              report.capacity, column_kinds())  # fmt: skip
    return write_tables_workbook(path, list(zip(SHEETS, frames, strict=True)))


# --------------------------------------------------------------------------- charts


def net_by_caseload_chart(report: RoiReport) -> Markup:
    """Net of one FTE-month by caseload, break-even and capacity marked."""
    fig, ax = _figure()
    frame = report.scenarios
    loads = frame["caseload"].to_list()
    ax.plot(loads, _floats(frame["net"]), color=BLUE, marker="o", markersize=3, label="net")
    ax.plot(loads, _floats(frame["revenue"]), color=GREEN, linewidth=1, label="revenue")
    ax.plot(loads, _floats(frame["cost"]), color=GREY, linewidth=1, linestyle="--",
            label="cost")  # fmt: skip
    ax.axhline(0, color="#000000", linewidth=0.6)
    if report.break_even_caseload is not None:
        ax.axvline(report.break_even_caseload, color=ORANGE, linestyle=":",
                   label=f"break-even ({report.break_even_caseload})")  # fmt: skip
    ax.axvline(report.capacity_caseload, color=RED, linestyle="-.",
               label=f"capacity ({report.capacity_caseload})")  # fmt: skip
    ax.set_xlabel("caseload (patients a month, one FTE)")
    ax.set_ylabel("dollars a month")
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _svg(fig)


def tornado_chart(report: RoiReport) -> Markup:
    """The sensitivity table as a tornado: net at each factor's low and high value."""
    frame = report.sensitivity.reverse()  # the largest swing on top
    fig, ax = _figure()
    if frame.is_empty():
        ax.text(0.5, 0.5, "no factors", ha="center", transform=ax.transAxes)
        return _svg(fig)
    names = frame["factor"].to_list()
    low, high = _floats(frame["net_low"]), _floats(frame["net_high"])
    base = float(report.reference_net)
    ax.barh(names, [v - base for v in low], left=base, color=ORANGE, label="factor low")
    ax.barh(names, [v - base for v in high], left=base, color=BLUE, label="factor high")
    ax.axvline(base, color="#000000", linewidth=0.8)
    ax.set_xlabel("net of one FTE-month at capacity ($)")
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    return _svg(fig)


def care_manager_chart(report: RoiReport) -> Markup:
    """Per care manager: expected collections and PMPM against cost over the months."""
    frame = report.measured.filter(pl.col("care_manager_id") != TEAM)
    fig, ax = _figure()
    if frame.is_empty():
        ax.text(0.5, 0.5, "no care managers", ha="center", transform=ax.transAxes)
        return _svg(fig)
    ids = frame["care_manager_id"].to_list()
    positions = list(range(len(ids)))
    width = 0.38
    revenue = [a + b for a, b in zip(_floats(frame["expected_collections"]),
                                     _floats(frame["pmpm_amount"]), strict=True)]  # fmt: skip
    ax.bar([p - width / 2 for p in positions], revenue, width, color=GREEN,
           label="expected collections + PMPM (measured)")  # fmt: skip
    ax.bar(
        [p + width / 2 for p in positions],
        _floats(frame["cost"]),
        width,
        color=GREY,
        label="cost (assumed)" if not report.staffing_given else "cost (staffing file)",
    )
    ax.set_xticks(positions, ids)
    ax.set_ylabel("dollars over the months")
    ax.legend(frameon=False, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1),
              ncol=2)  # fmt: skip
    return _svg(fig)


# --------------------------------------------------------------------------- page


def _kind_of(column: str) -> str:
    return MEASURED_KINDS.get(column, MEASURED)


def render_roi_html(report: RoiReport, *, created_at: dt.datetime, source: str) -> str:
    """The ROI page as HTML text."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plt.rc_context(dict(CHART_RC)):
        charts = {
            "net": net_by_caseload_chart(report),
            "tornado": tornado_chart(report),
            "care_managers": care_manager_chart(report),
        }
    env = Environment(
        loader=PackageLoader("reports", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    measured = report.measured.select(SUMMARY_COLUMNS)
    money_columns = _money_columns(report)
    team = report.measured.filter(pl.col("care_manager_id") == TEAM)
    team_row = team.row(0, named=True) if team.height else {}
    return env.get_template(TEMPLATE).render(
        first=str(report.months[0]),
        last=str(report.months[-1]),
        created_at=created_at.isoformat(timespec="seconds"),
        software_version=software_version(),
        source=source,
        role=report.role or "the whole team",
        break_even=report.break_even_caseload,
        capacity=report.capacity_caseload,
        reference=report.reference_caseload,
        practice_allowed=money(report.practice_allowed),
        not_attributed=money(report.not_attributed_allowed),
        team={
            k: money(v) if k in money_columns else ("" if v is None else str(v))
            for k, v in team_row.items()
        },
        columns=[{"name": c, "kind": _kind_of(c)} for c in SUMMARY_COLUMNS],
        measured=_rows(measured, money_columns),
        other=_rows(_other_value(report), money_columns),
        scenarios=_rows(report.scenarios, money_columns),
        sensitivity=_rows(report.sensitivity, money_columns),
        assumptions=_rows(report.assumptions),
        capacity_rows=_rows(report.capacity),
        notes=report.notes,
        staffing_given=report.staffing_given,
        measured_label=MEASURED,
        assumed_label=ASSUMED,
        charts=charts,
    )


OTHER_VALUE_COLUMNS = ("care_manager_id", "net", "quality_incentives", "shifted_work_value",
                       "net_with_other_value")  # fmt: skip


def _other_value(report: RoiReport) -> pl.DataFrame:
    """The optional inputs' columns, or no rows when none was given."""
    frame = report.measured.select(OTHER_VALUE_COLUMNS)
    given = frame.filter(pl.col("net_with_other_value").is_not_null())
    return frame if given.height else frame.clear()


def _money_columns(report: RoiReport) -> Sequence[str]:
    frames = (report.measured, report.scenarios, report.sensitivity)
    return sorted({n for f in frames for n, t in f.schema.items() if isinstance(t, pl.Decimal)})


def write_roi_html(report: RoiReport, out: Path, *, created_at: dt.datetime, source: str) -> Path:
    """Write the page to `out` (UTF-8), replacing it only once written whole."""
    return publish_page(out, render_roi_html(report, created_at=created_at, source=source))
