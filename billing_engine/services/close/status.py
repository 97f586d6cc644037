"""``billing close status`` and ``billing close log``: reading commands, no transaction.

Late entries: rows imported (or retired by a snapshot) after the later of the month's
last lock and its current cycle's evaluation, whose date of service falls in the month
(encounters by ``date``, claims history and discharges by their dates), with the
patient-months they touch. ``billing close start`` on the month picks them up.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.engine import Connection

from billing_engine.calendar import Month
from billing_engine.services.close.base import Outcome
from billing_engine.store import Store
from billing_engine.store import close as closedb
from billing_engine.store.connect import as_utc

# interchange tables whose rows have a date of service, and that column
DATED_TABLES = (
    ("encounters", "date"),
    ("claims_history", "date_of_service"),
    ("discharges", "discharge_date"),
)


def late_entries(connection: Connection, month: Month, since: dt.datetime) -> dict[str, Any]:
    """Rows of ``month`` imported or retired after ``since``; per table and patients."""
    tables: dict[str, int] = {}
    patients: set[str] = set()
    for name, column in DATED_TABLES:
        rows = closedb.changed_patients(connection, name, column, month.start, month.end, since)
        if rows:
            tables[name] = len(rows)
            patients.update(rows)
    return {"rows": sum(tables.values()), "tables": tables, "patient_months": len(patients)}


def _month_status(connection: Connection, row: dict[str, Any]) -> dict[str, Any]:
    month, cycle = row["month"], row["cycle"]
    lines = closedb.line_sums_by_status(connection, month, cycle)
    by_status = {r[0]: r[1] for r in lines}
    claims = closedb.claim_sums_by_status(connection, month, cycle)
    live = [r for r in claims if r[0] != "voided"]
    cycle_row = closedb.cycle_row(connection, month, cycle) or {}
    evaluated = cycle_row.get("evaluated_at")
    marks = [m for m in (row["last_locked_at"], evaluated) if m is not None]
    since = max(as_utc(m) for m in marks)
    approved = [r for r in lines if r[0] == "approved"]
    return {
        "month": month,
        "state": row["state"],
        "cycle": cycle,
        "lines": by_status,
        "nothing_to_review": cycle > 1 and not by_status,
        "claims": sum(int(r[1]) for r in live),
        "totals": {
            "claimed_charge": _money(sum((r[4] or 0) for r in live)),
            "claimed_allowed": _money(sum((r[2] or 0) for r in live)),
            "claimed_payer": _money(sum((r[3] or 0) for r in live)),
            "approved_allowed": _money(sum((r[2] or 0) for r in approved)),
            "approved_payer": _money(sum((r[3] or 0) for r in approved)),
        },
        "late_entries": late_entries(connection, Month.parse(month), since),
        "late_since": since.isoformat(),
    }


def _money(value: Any) -> str:
    return f"{value:.2f}" if value else "0.00"


def status(store: Store, month: Month | None = None) -> Outcome:
    with store.engine.connect() as connection:
        rows = closedb.months(connection, None if month is None else str(month))
        months = [_month_status(connection, r) for r in rows]
    if not months:
        which = f" for {month}" if month is not None else ""
        return Outcome(f"no close{which} yet: run billing close start YYYY-MM", {"months": []})
    return Outcome("\n".join(_describe(m) for m in months), {"months": months})


def _describe(m: dict[str, Any]) -> str:
    counts = ", ".join(f"{n:,} {s}" for s, n in sorted(m["lines"].items())) or "no lines"
    t = m["totals"]
    text = (
        f"{m['month']}  {m['state']:<8} cycle {m['cycle']}  lines: {counts}; "
        f"claims {m['claims']:,} (charge {t['claimed_charge']}, allowed {t['claimed_allowed']}, "
        f"payer {t['claimed_payer']})"
    )
    if m["nothing_to_review"]:
        text += "\n  nothing to review in this cycle"
    late = m["late_entries"]
    if late["rows"]:
        parts = ", ".join(f"{n:,} {table}" for table, n in late["tables"].items())
        text += (
            f"\n  late entries: {late['rows']:,} rows imported since {m['late_since'][:19]}Z "
            f"({parts}), touching {late['patient_months']:,} patient-months: run "
            f"billing close start {m['month']}"
        )
    return text


def log(store: Store, month: Month | None = None) -> Outcome:
    with store.engine.connect() as connection:
        rows = closedb.audit_rows(connection, None if month is None else str(month))
    entries = [
        {
            "at": as_utc(r["at"]).isoformat().replace("+00:00", "Z"),
            "user": r["user"],
            "action": r["action"],
            "month": r["month"],
            "cycle": r["cycle"],
            "ids": r["ids"],
            "reason": r["reason"],
            "detail": r["detail"],
        }
        for r in rows
    ]
    lines = [
        f"{e['at'][:19]}Z  {e['user']:<12} {e['action']:<10} {e['month']} c{e['cycle']}  "
        f"{len(e['ids'])} ids" + (f"  reason: {e['reason']}" if e["reason"] else "")
        for e in entries
    ]
    return Outcome("\n".join(lines) or "the audit log is empty", {"entries": entries})
