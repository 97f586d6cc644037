"""The billing office's close screen: status, lines by status, approve / hold, lock,
export (the claim files as one zip download), reopen, the adjustment cycle, the log.

Every action is the close command's own library function, run as the logged-in user,
so it is in the audit log under her name; a refusal is shown on the page as the
command would print it.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import polars as pl
from flask import Blueprint, render_template, request, send_file
from werkzeug.wrappers import Response

from billing_engine.calendar import Month
from billing_engine.errors import BillingError
from billing_engine.services.close import commands as cmd
from billing_engine.services.close import status as close_status
from billing_engine.services.close.export import export
from billing_engine.store.close import CloseRefused
from cli.web.common import ADMIN, BILLING, FINANCE, current, month_arg, roles, state, today

bp = Blueprint("close", __name__)
LINE_COLUMNS = ("line_id", "status", "hold_reason", "edit_failures", "kind", "patient_id",
                "code", "units", "date_of_service", "payer_id", "allowed_amount")  # fmt: skip
ACTORS = (BILLING, ADMIN)  # who changes a close (finance only reads it)


def _month_status(month: Month) -> dict[str, object] | None:
    months = close_status.status(state().store, month).data["months"]
    return months[0] if months else None


def _lines(month: Month, status: str | None) -> list[dict[str, object]]:
    try:
        frame = cmd.review(state().store, month, status=status or None)
    except CloseRefused:
        return []
    shown = frame.select(*(c for c in LINE_COLUMNS if c in frame.columns)).with_columns(
        pl.all().cast(pl.String)
    )
    return shown.to_dicts()


def _page(month: Month, *, message: str | None = None, error: str | None = None) -> str:
    status = request.values.get("status", "")
    context = {
        "month": str(month),
        "close": _month_status(month),
        "lines": _lines(month, status),
        "status": status,
        "message": message,
        "error": error,
        "can_act": current().role in ACTORS,
    }
    if request.headers.get("HX-Request"):
        return render_template("close_body.html", **context)
    return render_template("close.html", **context)


@bp.get("/close")
@roles(BILLING, ADMIN, FINANCE)
def screen() -> str:
    return _page(month_arg())


def _act(month_text: str, action: str) -> str:
    month = Month.parse(month_text)
    user = current().username
    store = state().store
    ids = request.form.getlist("line")
    reason = request.form.get("reason", "")
    try:
        if action == "start":
            outcome = cmd.start(store, month, user=user, as_of=today())
        elif action == "approve":
            every = request.form.get("all") == "pending"
            outcome = cmd.approve(store, month, user=user, all_pending=every, line_ids=ids)
        elif action == "hold":
            outcome = cmd.hold(store, month, user=user, line_ids=ids, reason=reason)
        elif action == "lock":
            outcome = cmd.lock(store, month, user=user)
        elif action == "reopen":
            outcome = cmd.reopen(store, month, user=user, reason=reason)
        else:
            return _page(month, error=f"unknown action {action}")
    except BillingError as exc:
        return _page(month, error=str(exc))
    state().forget()
    return _page(month, message=outcome.summary)


@bp.post("/close/<month_text>/<action>")
@roles(*ACTORS)
def act(month_text: str, action: str) -> str | Response:
    if action == "export":
        return _export(month_text)
    return _act(month_text, action)


def _export(month_text: str) -> str | Response:
    """Write the cycle's claim files and send them as one zip (claims.csv, the 837P
    files, manifest.json)."""
    month = Month.parse(month_text)
    with tempfile.TemporaryDirectory(prefix="billing-export-") as folder:
        out = Path(folder) / f"{month}"
        try:
            outcome = export(state().store, month, user=current().username, out=out)
        except BillingError as exc:
            return _page(month, error=str(exc))
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(out.rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(out).as_posix())
    state().forget()
    buffer.seek(0)
    cycle = outcome.data.get("cycle", "")
    return send_file(buffer, mimetype="application/zip", as_attachment=True,
                     download_name=f"claims-{month}-c{cycle}.zip")  # fmt: skip


@bp.get("/close/<month_text>/log")
@roles(BILLING, ADMIN, FINANCE)
def audit_log(month_text: str) -> str:
    month = Month.parse(month_text)
    entries = close_status.log(state().store, month).data["entries"]
    return render_template("close_log.html", month=str(month), entries=entries)
