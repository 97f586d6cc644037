"""The care manager's screens: her worklist and a patient's month (timeline, explain)."""

from __future__ import annotations

import datetime as dt

import polars as pl
from flask import Blueprint, abort, render_template, request

from billing_engine.services.worklist import DONE, OPEN, WORKLIST_COLUMNS
from cli.web.common import ADMIN, BILLING, CARE_MANAGER, current, month_arg, roles, state, today

bp = Blueprint("screens", __name__)

SORTS = {
    "deadline": ("deadline", False),
    "minutes": ("minutes_needed", False),
    "amount": ("amount", True),
    "patient": ("patient_id", False),
}
PAGE_ROWS = 200  # worklist rows a page shows; the rest are a "next page" away
TIMELINE_COLUMNS = ("date", "start_time", "kind", "program", "minutes", "performer_id",
                    "contact_mode", "outcome")  # fmt: skip


def _as_of() -> dt.date:
    text = request.args.get("as_of")
    if not text:
        return today()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        abort(400)


def _visible(frame: pl.DataFrame) -> pl.DataFrame:
    """Her own rows for a care manager; every row (or one care manager's) for others."""
    user = current()
    if user.role == CARE_MANAGER:
        return frame.filter(pl.col("care_manager_id") == user.care_manager_id)
    chosen = request.args.get("care_manager")
    return frame.filter(pl.col("care_manager_id") == chosen) if chosen else frame


def _rows(frame: pl.DataFrame) -> list[dict[str, object]]:
    return frame.select(WORKLIST_COLUMNS).with_columns(pl.all().cast(pl.String)).to_dicts()


@bp.get("/worklist")
@roles(CARE_MANAGER, BILLING, ADMIN)
def worklist() -> str:
    month = month_arg()
    as_of = _as_of()
    view = state().month_view(month, as_of)
    frame = _visible(view.worklist)
    query = request.args.get("q", "").strip()
    if query:
        frame = frame.filter(pl.col("patient_id").str.contains(query, literal=True))
    status = request.args.get("status", OPEN)
    if status in (OPEN, DONE):
        frame = frame.filter(pl.col("status") == status)
    sort = request.args.get("sort", "deadline")
    column, descending = SORTS.get(sort, SORTS["deadline"])
    frame = frame.sort(column, descending=descending, nulls_last=True)
    try:
        page = max(int(request.args.get("page", "1")), 1)
    except ValueError:
        abort(400)
    pages = max((frame.height + PAGE_ROWS - 1) // PAGE_ROWS, 1)
    page = min(page, pages)
    context = {
        "month": str(month),
        "as_of": as_of.isoformat(),
        "rows": _rows(frame.slice((page - 1) * PAGE_ROWS, PAGE_ROWS)),
        "total": frame.height,
        "page": page,
        "pages": pages,
        "care_manager": request.args.get("care_manager", ""),
        "status": status,
        "sort": sort,
        "q": query,
        "care_managers": sorted(
            v for v in view.worklist["care_manager_id"].unique().to_list() if v is not None
        ),
    }
    if request.headers.get("HX-Request"):
        return render_template("worklist_rows.html", **context)
    return render_template("worklist.html", **context)


@bp.get("/patients/<patient_id>")
@roles(CARE_MANAGER, BILLING, ADMIN)
def patient(patient_id: str) -> str:
    month = month_arg()
    as_of = _as_of()
    view = state().month_view(month, as_of)
    rows = view.worklist.filter(pl.col("patient_id") == patient_id)
    user = current()
    mine = rows.filter(pl.col("care_manager_id") == user.care_manager_id)
    if user.role == CARE_MANAGER and mine.is_empty():
        abort(404)  # not hers: the same answer as a patient that does not exist
    if view.bundle["patients"].filter(pl.col("patient_id") == patient_id).is_empty():
        abort(404)
    from billing_engine.services.evaluation import explain
    from reports import render

    encounters = (
        view.bundle["encounters"]
        .filter(
            (pl.col("patient_id") == patient_id) & pl.col("date").is_between(month.start, month.end)
        )
        .sort("date", "start_time", nulls_last=True)
        .select(TIMELINE_COLUMNS)
        .with_columns(pl.all().cast(pl.String))
    )
    explained = explain(view.bundle, month, patient_id, as_of=as_of, fees=state().fees())
    return render_template(
        "patient.html",
        patient_id=patient_id,
        month=str(month),
        as_of=as_of.isoformat(),
        rows=_rows(rows if user.role != CARE_MANAGER else mine),
        timeline=encounters.to_dicts(),
        explanation=render("explain.txt.j2", x=explained),
    )
