"""Reports for finance and the practice manager: the close report, the workbook, revenue
by payer over months, the care-manager ROI summary. Each is the command's own builder."""

from __future__ import annotations

import datetime as dt
import io
import tempfile
from pathlib import Path

import polars as pl
from flask import Blueprint, abort, render_template, request, send_file
from werkzeug.wrappers import Response

from billing_engine.calendar import Month
from billing_engine.errors import ConfigError
from billing_engine.services.close.evaluation import store_bundle
from billing_engine.services.revenue import months_between
from cli.web.common import ADMIN, BILLING, FINANCE, current, latest_month, roles, state

bp = Blueprint("reports", __name__)
READERS = (FINANCE, BILLING, ADMIN)
MAX_MONTHS = 24  # a web request evaluates each month: longer ranges belong to the command


def _range() -> tuple[Month, Month]:
    last_text = request.args.get("to")
    first_text = request.args.get("from")
    try:
        last = Month.parse(last_text) if last_text else latest_month()
        first = Month.parse(first_text) if first_text else last.shift(-2)
        months = months_between(first, last)
    except ConfigError:
        abort(400)
    if len(months) > MAX_MONTHS:
        abort(400)
    return first, last


@bp.get("/reports")
@roles(*READERS)
def index() -> str:
    first, last = _range()
    return render_template("reports.html", first=str(first), last=str(last))


@bp.get("/reports/close/<month_text>")
@roles(*READERS)
def close_report(month_text: str) -> str:
    from billing_engine.services.close_report_data import close_report_data
    from reports.close_report import render_close_report

    month = Month.parse(month_text)
    store = state().store
    data = close_report_data(store_bundle(store, month), month, fees=state().fees(),
                             store=store)  # fmt: skip
    return render_close_report(data, created_at=dt.datetime.now(dt.UTC))


@bp.get("/reports/workbook")
@roles(*READERS)
def workbook() -> Response:
    from cli.cmd_report import store_workbook

    first, last = _range()
    store = state().store
    with tempfile.TemporaryDirectory(prefix="billing-workbook-") as folder:
        out = Path(folder) / f"finance-{first}-{last}.xlsx"
        store_workbook(
            store, store.load_bundle(), store.url, first, last, out, as_of=None,
            made_by=current().username, settings={}, fees=state().fees(),
        )  # fmt: skip
        data = out.read_bytes()
    return send_file(
        io.BytesIO(data),
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        as_attachment=True,
        download_name=out.name,
    )


@bp.get("/reports/revenue")
@roles(*READERS)
def revenue() -> str:
    from billing_engine.services.revenue import revenue as revenue_over

    first, last = _range()
    store = state().store
    report = revenue_over(store.load_bundle(), months_between(first, last),
                          fees=state().fees())  # fmt: skip
    table = report.table("by_payer").with_columns(pl.all().cast(pl.String))
    months = report.table("by_month").with_columns(pl.all().cast(pl.String))
    return render_template("revenue.html", first=str(first), last=str(last),
                           by_payer=table.to_dicts(), by_month=months.to_dicts())  # fmt: skip


@bp.get("/reports/roi")
@roles(*READERS)
def roi() -> str:
    from billing_engine.services.roi.build import roi_report
    from reports.roi import SUMMARY_COLUMNS

    first, last = _range()
    store = state().store
    report = roi_report(store.load_bundle(), months_between(first, last),
                        fees=state().fees())  # fmt: skip
    rows = report.measured.select(SUMMARY_COLUMNS).with_columns(pl.all().cast(pl.String))
    return render_template(
        "roi.html", first=str(first), last=str(last), columns=SUMMARY_COLUMNS,
        rows=rows.to_dicts(), break_even=report.break_even_caseload,
        capacity=report.capacity_caseload, notes=report.notes,
        practice_allowed=report.practice_allowed,
        not_attributed=report.not_attributed_allowed,
    )  # fmt: skip
