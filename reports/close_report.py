"""The close report: one self-contained HTML page for a month (``billing report html``).

The page carries everything it shows: styles in a ``<style>`` element, charts as SVG
text drawn by matplotlib (Agg backend, text kept as text: ``svg.fonttype: none``) and
inlined, no script and no link to anything outside the file, so it opens offline and
prints. The frames come from ``services.close_report_data``; this module only turns
them into text and pictures.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from billing_engine.services.close_report_data import CloseReportData
from reports.outputs import software_version

TEMPLATE = "close_report.html.j2"
CHART_WIDTH_IN = 7.0  # inches; the page scales SVGs to its column
CHART_HEIGHT_IN = 3.2
BIN_MINUTES = 5  # width of a bar of the minutes histogram
BAR_FILL = 0.9  # a bar's share of its bin (a gap between bars)
TICK_MINUTES = 10  # a labelled tick every so many minutes (the last bar is "top+")
# colours (Okabe-Ito: readable by colour-blind readers)
BLUE, ORANGE, GREEN, GREY, RED = "#0072B2", "#E69F00", "#009E73", "#999999", "#D55E00"
OTHER_CODES = "other codes"
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
           "#000000")  # fmt: skip
_SVG_START = re.compile(r"<svg\b")
# keys typed Any: matplotlib types rcParams keys as literals
CHART_RC: Mapping[Any, Any] = {
    "svg.fonttype": "none",  # text stays text: smaller, searchable, selectable
    "svg.hashsalt": "close-report",  # the same data draws the same bytes
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def money(value: Decimal | None) -> str:
    """Dollars with thousands separators and cents (-$1.00 below zero); an empty cell
    for no amount."""
    if value is None:
        return ""
    return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"


def _svg(figure: Any) -> Markup:
    """The figure as inline SVG text (the XML prolog and DOCTYPE dropped)."""
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    match = _SVG_START.search(text)
    return Markup(text[match.start() :] if match else text)


def _figure(height: float = CHART_HEIGHT_IN) -> tuple[Any, Any]:
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(CHART_WIDTH_IN, height))


def _floats(series: pl.Series) -> list[float]:
    return [float(v) if v is not None else 0.0 for v in series.to_list()]


def payer_code_chart(by_payer_code: pl.DataFrame) -> Markup:
    """Allowed amount by payer, each bar stacked by code."""
    fig, ax = _figure()
    if by_payer_code.is_empty():
        ax.text(0.5, 0.5, "no claim lines", ha="center", transform=ax.transAxes)
        return _svg(fig)
    wide = (
        by_payer_code.with_columns(pl.col("allowed_amount").cast(pl.Float64).fill_null(0.0))
        .pivot(on="code", index="payer_id", values="allowed_amount", aggregate_function="sum")
        .fill_null(0.0)
    )
    codes = [c for c in wide.columns if c != "payer_id"]
    # the biggest codes by name, in the palette's colours; the rest together, in grey
    ranked = sorted(codes, key=lambda c: (-float(wide[c].sum()), c))
    shown, rest = ranked[: len(PALETTE)], ranked[len(PALETTE) :]
    if rest:
        wide = wide.with_columns(pl.sum_horizontal(rest).alias(OTHER_CODES)).drop(rest)
    codes = [*shown, *([OTHER_CODES] if rest else [])]
    # the biggest payer on top, as in the table below the chart
    wide = wide.with_columns(_total=pl.sum_horizontal(codes)).sort(
        ["_total", "payer_id"], descending=[True, False]
    )
    payers = wide["payer_id"].to_list()
    left = [0.0] * len(payers)
    for i, code in enumerate(codes):
        values = _floats(wide[code])
        colour = GREY if code == OTHER_CODES else PALETTE[i % len(PALETTE)]
        ax.barh(payers, values, left=left, label=code, color=colour)
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.set_xlabel("allowed amount ($)")
    ax.invert_yaxis()
    ax.legend(title="code", fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return _svg(fig)


def gaps_chart(gaps_by_reason: pl.DataFrame) -> Markup:
    """The money behind each gap reason (the short gaps within reach carry it)."""
    fig, ax = _figure()
    frame = gaps_by_reason.head(12)
    reasons = frame["reason"].to_list()
    amounts = _floats(frame["potential_amount"])
    bars = ax.barh(reasons, amounts, color=ORANGE)
    labels = [f"{n} gaps" for n in frame["gaps"].to_list()]
    ax.bar_label(bars, labels=labels, padding=3, fontsize=7)
    ax.set_xlabel("allowed amount if closed ($)")
    ax.invert_yaxis()
    return _svg(fig)


def minutes_chart(data: CloseReportData) -> Markup:
    """Patients by staff CCM minutes counted; the thresholds as lines, the bars just
    below a threshold (within ``near_minutes``) highlighted."""
    fig, ax = _figure()
    thresholds = data.thresholds.minutes
    minutes = data.minutes
    top = max(thresholds) + data.near_minutes
    # the last bar collects everything past the top threshold
    shown = minutes.with_columns(
        bin=(pl.col("minutes").clip(upper_bound=top) // BIN_MINUTES) * BIN_MINUTES
    )
    bins = (
        shown.group_by("bin")
        .agg(
            open=(~pl.col("blocked")).sum(),
            blocked=pl.col("blocked").sum(),
            near=pl.col("near").any(),
        )
        .sort("bin")
    )
    colours = [ORANGE if near else BLUE for near in bins["near"].to_list()]
    edges = bins["bin"].to_list()
    width = BIN_MINUTES * BAR_FILL
    ax.bar(edges, bins["open"].to_list(), width=width, align="edge", color=colours)
    ax.bar(
        edges,
        bins["blocked"].to_list(),
        bottom=bins["open"].to_list(),
        width=width,
        align="edge",
        color=GREY,
    )
    from matplotlib.patches import Patch

    keys = [
        Patch(color=BLUE, label="patients"),
        Patch(color=ORANGE, label=f"{data.near_minutes} min or fewer below a threshold"),
        Patch(color=GREY, label="blocked (minutes cannot fix it)"),
    ]
    ax.legend(
        handles=keys,
        frameon=False,
        fontsize=7,
        loc="lower left",
        bbox_to_anchor=(0.0, 1.02),
        ncols=len(keys),
    )
    for threshold in thresholds:
        ax.axvline(threshold, color=RED, linestyle="--", linewidth=1)
        ax.annotate(
            f"{threshold} min",
            (threshold, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -10),
            textcoords="offset points",
            color=RED,
            fontsize=7,
        )
    ticks = [*range(0, top, TICK_MINUTES), top]
    ax.set_xticks(ticks, [*(str(t) for t in ticks[:-1]), f"{top}+"])
    ax.set_xlabel(f"{data.thresholds.base_code} minutes counted ({BIN_MINUTES}-minute bars)")
    ax.set_ylabel("patients")
    return _svg(fig)


def trend_chart(trend: pl.DataFrame) -> Markup:
    """Allowed amount billed and money left on the table, month by month."""
    fig, ax = _figure()
    months = trend["month"].to_list()
    ax.plot(months, _floats(trend["allowed_amount"]), marker="o", color=BLUE, label="allowed")
    ax.plot(
        months,
        _floats(trend["left_on_table"]),
        marker="s",
        color=ORANGE,
        label="left on the table",
    )
    ax.set_ylabel("$")
    ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    ax.set_ylim(bottom=0)
    ax.legend(frameon=False, fontsize=8)
    return _svg(fig)


def _rows(frame: pl.DataFrame, money_columns: Sequence[str] = ()) -> list[dict[str, str]]:
    """The frame as rows of text cells, money formatted."""
    out: list[dict[str, str]] = []
    for row in frame.iter_rows(named=True):
        out.append(
            {
                k: money(v) if k in money_columns else ("" if v is None else str(v))
                for k, v in row.items()
            }
        )
    return out


_MONEY = ("allowed_amount", "payer_amount", "patient_amount", "potential_amount",
          "left_on_table", "total_charge")  # fmt: skip


def render_close_report(data: CloseReportData, *, created_at: dt.datetime) -> str:
    """The close report page for ``data`` as HTML text."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plt.rc_context(dict(CHART_RC)):
        charts = {
            "payer_code": payer_code_chart(data.by_payer_code),
            "gaps": gaps_chart(data.gaps_by_reason),
            "minutes": minutes_chart(data),
            "trend": trend_chart(data.trend),
        }
    env = Environment(
        loader=PackageLoader("reports", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    totals = data.totals.row(0, named=True)
    close = data.close
    return env.get_template(TEMPLATE).render(
        month=str(data.month),
        as_of=data.as_of.isoformat(),
        created_at=created_at.isoformat(timespec="seconds"),
        rule_set_version=data.rule_set_version,
        software_version=software_version(),
        source=data.source,
        totals={k: money(v) if k in _MONEY else str(v) for k, v in totals.items()},
        by_payer=_rows(data.by_payer, _MONEY),
        by_code=_rows(data.by_code, _MONEY),
        gaps=_rows(data.gaps_by_reason, _MONEY),
        thresholds=data.thresholds.minutes,
        base_code=data.thresholds.base_code,
        addon_code=data.thresholds.addon_code,
        near_minutes=data.near_minutes,
        near=_rows(data.minutes.filter(pl.col("near")).sort("short_by", "patient_id"), _MONEY),
        trend=_rows(data.trend, _MONEY),
        close=None
        if close is None
        else {
            "state": close.state,
            "cycle": close.cycle,
            "lines": _rows(close.lines, _MONEY),
            "holds": _rows(close.holds, _MONEY),
            "claims": _rows(close.claims, _MONEY),
            "adjustments": _rows(close.adjustments, _MONEY),
        },
        charts=charts,
    )


def write_close_report(data: CloseReportData, out: Path, *, created_at: dt.datetime) -> Path:
    """Write the page to ``out`` (UTF-8), replacing it only once written whole."""
    return publish_page(out, render_close_report(data, created_at=created_at))


def publish_page(out: Path, text: str) -> Path:
    """Write `text` to `out` (UTF-8), replacing it only once written whole."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(out)
    return out
