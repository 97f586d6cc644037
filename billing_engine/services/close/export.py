"""``billing close export``: claims.csv, one 837P per payer, manifest.json.

At the first export of a cycle each payer's interchange gets the next control number
of the store (ISA13 = GS06 = ST02), is rendered from the locked claims and the bundle
as it is then, and is kept in ``export_batches`` with the time and user of the export;
the month becomes ``exported`` in that one transaction. Files are written only after
the commit, from what is stored: a re-export (or an export killed after its commit)
writes the same bytes. Each file is written to a temporary name and renamed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy.engine import Connection

from billing_engine.calendar import Month
from billing_engine.io import x12_837p as x12
from billing_engine.io.bundle import Bundle
from billing_engine.io.safe_files import csv_bytes, replace_file
from billing_engine.services.close import commands as cmd
from billing_engine.services.close.edits import CLAIM_TABLES, claim_context, practice_row
from billing_engine.store import Store
from billing_engine.store import close as closedb
from billing_engine.store.connect import as_utc

CLAIMS_CSV = "claims.csv"
MANIFEST = "manifest.json"
CLAIMS_CSV_COLUMNS = (
    "claim_id",
    "frequency",
    "original_claim_id",
    "cycle",
    "payer_id",
    "patient_id",
    "member_id",
    "billing_npi",
    "rendering_npi",
    "code",
    "modifiers",
    "units",
    "charge",
    "date_of_service",
    "place_of_service",
    "icd10_codes",
    "allowed_amount",
    "payer_amount",
    "patient_amount",
    "line_id",
)
# SBR09 from the payer's kind when the bundle gives none (close.md, bundle additions)
FILING_INDICATOR = {
    "medicare": "MB",
    "medicare_advantage": "16",
    "medicaid": "MC",
    "commercial": "CI",
    "self_pay": "ZZ",
}
DEFAULT_POS = "11"
MAX_DIAGNOSES = 12
MAX_POINTERS = 4


def file_name(payer_id: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in payer_id)
    return f"837p-{safe}.x12"


def _claims_of_cycle(connection: Connection, month: str, cycle: int) -> pl.DataFrame:
    where = (closedb.CLAIMS.c.month == month) & (closedb.CLAIMS.c.cycle == cycle)
    return closedb.rows_of(
        closedb.CLAIMS, where & (closedb.CLAIMS.c.status != "voided"), connection
    )


def _claim_lines_of(connection: Connection, claim_ids: list[str]) -> pl.DataFrame:
    frames = [
        closedb.rows_of(
            closedb.CLAIM_LINES,
            closedb.CLAIM_LINES.c.claim_id.in_(claim_ids[i : i + 5_000]),
            connection,
        )
        for i in range(0, max(len(claim_ids), 1), 5_000)
    ]
    return pl.concat(frames).sort("claim_id", "line_number")


STEPS = ("render the 837P files", "write the claim files")


def export(
    store: Store,
    month: Month,
    *,
    user: str,
    out: Path,
    progress: Callable[[str], None] | None = None,
) -> cmd.Outcome:
    """Write the current cycle's claim files; ``locked`` -> ``exported`` the first time."""
    note = progress or (lambda _step: None)
    key = str(month)
    with store.engine.connect() as connection:
        row = cmd.month_state(connection, key)
    cmd.refuse_unless(row, (cmd.LOCKED, cmd.EXPORTED), "export (lock it first)")
    cycle = int(row["cycle"])
    refuse_another_cycles_folder(out, key, cycle)
    first = row["state"] == cmd.LOCKED
    if first:
        note(STEPS[0])
        bundle = store.load_bundle(CLAIM_TABLES)
        at = closedb.utc_now()
        with closedb.close_transaction(store.engine, key) as tx:
            closedb.bump_version(tx, key, row["version"], at, state=cmd.EXPORTED)
            claims = _claims_of_cycle(tx, key, cycle)
            lines = _claim_lines_of(tx, claims["claim_id"].to_list())
            number = closedb.max_control_number(tx)
            batches = []
            for payer_id in sorted(claims["payer_id"].unique().to_list()):
                number += 1
                payer_claims = claims.filter(pl.col("payer_id") == payer_id)
                text = render_payer_file(payer_claims, lines, bundle, number, at)
                batches.append(_batch(key, cycle, payer_id, number, payer_claims, text))
            if batches:
                closedb.insert_frame(tx, closedb.BATCHES, pl.DataFrame(batches))
            closedb.set_claims_status(tx, key, cycle, cmd.LOCKED, cmd.EXPORTED)
            closedb.update_cycle(
                tx, key, cycle, state=cmd.EXPORTED, exported_at=at, exported_by=user
            )
            closedb.audit(
                tx,
                at=at,
                user=user,
                action="export",
                month=key,
                cycle=cycle,
                ids=[b["file_name"] for b in batches],
                detail={"claims": claims.height, "files": len(batches)},
            )
    note(STEPS[1])
    with store.engine.connect() as connection:
        written = write_files(connection, key, cycle, out)
        if not first:
            closedb.audit(
                connection,
                at=closedb.utc_now(),
                user=user,
                action="re-export",
                month=key,
                cycle=cycle,
                ids=[p.name for p in written],
                detail={"out": str(out)},
            )
            connection.commit()
    manifest = json.loads((out / MANIFEST).read_text())
    summary = (
        f"{key}: cycle {cycle} {'exported' if first else 're-exported (same bytes)'} to {out}: "
        f"{manifest['claims']:,} claims, {manifest['lines']:,} lines, "
        f"charge {manifest['total_charge']}; files: {', '.join(p.name for p in written)}"
    )
    return cmd.Outcome(
        summary, {"month": key, "cycle": cycle, "state": cmd.EXPORTED, "out": str(out), **manifest}
    )


def refuse_another_cycles_folder(out: Path, month: str, cycle: int) -> None:
    """A folder holding another cycle's claim files is not written into: its 837P files
    would sit beside this cycle's and be sent twice."""
    manifest = out / MANIFEST
    if not manifest.is_file():
        stale = sorted(p.name for p in out.glob("837p-*.x12")) if out.is_dir() else []
        if stale:
            raise cmd.BadCloseInput(
                f"{out} holds claim files without a manifest ({', '.join(stale[:3])}); "
                "export into an empty folder"
            )
        return
    try:
        held = json.loads(manifest.read_text())
        same = held.get("month") == month and held.get("cycle") == cycle
    except (OSError, ValueError, AttributeError):
        same = False
    if not same:
        raise cmd.BadCloseInput(
            f"{out} holds the claim files of another close ({manifest}); "
            f"export {month} cycle {cycle} into another folder"
        )


def _batch(
    month: str, cycle: int, payer_id: str, number: int, claims: pl.DataFrame, text: str
) -> dict[str, Any]:
    return {
        "month": month,
        "cycle": cycle,
        "payer_id": payer_id,
        "control_number": number,
        "file_name": file_name(payer_id),
        "sha256": _sha256(text.encode()),
        "claims": claims.height,
        "lines": int(claims["line_count"].sum()),
        "total_charge": claims["total_charge"].sum(),
        "content": text,
    }


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write(path: Path, data: bytes) -> None:
    replace_file(path, data)  # a new file renamed over the old: never half written


def write_files(connection: Connection, month: str, cycle: int, out: Path) -> list[Path]:
    """Write the cycle's files from the store; the same store gives the same bytes."""
    out.mkdir(parents=True, exist_ok=True)
    cycle_row = closedb.cycle_row(connection, month, cycle)
    assert cycle_row is not None
    stored = closedb.batches(connection, month, cycle)
    claims = _claims_of_cycle(connection, month, cycle)
    lines = _claim_lines_of(connection, claims["claim_id"].to_list()) if claims.height else None
    paths: list[Path] = []
    files: list[dict[str, Any]] = []
    for batch in stored:
        data = batch["content"].encode()
        _write(out / batch["file_name"], data)
        paths.append(out / batch["file_name"])
        files.append(
            {
                "name": batch["file_name"],
                "sha256": _sha256(data),
                "payer_id": batch["payer_id"],
                "control_number": batch["control_number"],
                "claims": batch["claims"],
                "lines": batch["lines"],
                "total_charge": f"{Decimal(batch['total_charge']):.2f}",
            }
        )
    csv_bytes = claims_csv(claims, lines)
    _write(out / CLAIMS_CSV, csv_bytes)
    files.insert(0, {"name": CLAIMS_CSV, "sha256": _sha256(csv_bytes)})
    paths.insert(0, out / CLAIMS_CSV)
    exported_at = as_utc(cycle_row["exported_at"])
    manifest = {
        "month": month,
        "cycle": cycle,
        "run_id": cycle_row["run_id"],
        "rule_set_version": cycle_row["rule_set_version"],
        "exported_by": cycle_row["exported_by"],
        "exported_at": exported_at.isoformat().replace("+00:00", "Z"),
        "claims": claims.height,
        "lines": 0 if lines is None else lines.height,
        "total_charge": f"{(claims['total_charge'].sum() if claims.height else Decimal(0)):.2f}",
        "files": files,
    }
    _write(out / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    paths.append(out / MANIFEST)
    return paths


def claims_csv(claims: pl.DataFrame, lines: pl.DataFrame | None) -> bytes:
    """``claims.csv``: one row per service line, claims and lines in id order."""
    if lines is None or not claims.height:
        return ",".join(CLAIMS_CSV_COLUMNS).encode() + b"\n"
    heads = claims.select(CLAIMS_CSV_COLUMNS[: CLAIMS_CSV_COLUMNS.index("code")])
    rows = (
        lines.drop("billing_npi", "month", "cycle", strict=False)
        .join(heads, on="claim_id")
        .sort("claim_id", "line_number")
        .with_columns(
            pl.col(c).cast(pl.Decimal(18, 2)).cast(pl.String)
            for c in ("charge", "allowed_amount", "payer_amount", "patient_amount")
        )
    )
    blank_as_empty = pl.col(pl.String).replace("", None)  # "" and null both print empty
    return csv_bytes(rows.select(CLAIMS_CSV_COLUMNS).with_columns(blank_as_empty))


# -- the 837P of one payer ---------------------------------------------------------------


def render_payer_file(
    claims: pl.DataFrame, lines: pl.DataFrame, bundle: Bundle, number: int, at: dt.datetime
) -> str:
    """The 837P interchange of one payer's claims (rendered once, at the first export)."""
    practice = practice_row(bundle)
    context = claim_context(_claim_dates(claims, lines), bundle)
    practitioners = {r["practitioner_id"]: r for r in bundle["practitioners"].iter_rows(named=True)}
    by_claim: dict[str, list[dict[str, Any]]] = {}
    for line in lines.sort("claim_id", "line_number").iter_rows(named=True):
        by_claim.setdefault(line["claim_id"], []).append(line)
    out: list[x12.Claim] = []
    for claim, ctx in zip(
        claims.sort("claim_id").iter_rows(named=True),
        context.sort("line_id").iter_rows(named=True),
        strict=True,
    ):
        out.append(_claim(claim, ctx, by_claim[claim["claim_id"]], practitioners, practice))
    return x12.render_837p(
        x12.Interchange(
            sender_id=practice["submitter_id"] or practice["tin"] or "",
            receiver_id=practice["receiver_id"] or "",
            control_number=number,
            created=at,
            submitter=x12.Party(
                id=practice["submitter_id"] or practice["tin"] or "",
                name=practice["submitter_name"] or practice["name"] or "",
                contact_name=practice["contact_name"] or "",
                contact_phone=practice["contact_phone"] or practice["phone"] or "",
            ),
            receiver=x12.Party(
                id=practice["receiver_id"] or "", name=practice["receiver_name"] or ""
            ),
            billing_provider=x12.BillingProvider(
                name=practice["name"] or "",
                npi=practice["npi"] or "",
                tin=practice["tin"] or "",
                taxonomy=practice["taxonomy"] or "",
                address=x12.Address(
                    line1=practice["address1"] or "",
                    line2=practice["address2"],
                    city=practice["city"] or "",
                    state=practice["state"] or "",
                    zip=practice["zip"] or "",
                ),
                phone=practice["phone"] or "",
            ),
            claims=tuple(out),
        )
    )


def _claim_dates(claims: pl.DataFrame, lines: pl.DataFrame) -> pl.DataFrame:
    first_dates = lines.group_by("claim_id").agg(pl.col("date_of_service").min())
    return (
        claims.select("claim_id", "patient_id", "payer_id")
        .join(first_dates, on="claim_id")
        .rename({"claim_id": "line_id"})
    )


def _claim(
    claim: dict[str, Any],
    ctx: dict[str, Any],
    lines: list[dict[str, Any]],
    practitioners: dict[str, dict[str, Any]],
    practice: dict[str, str | None],
) -> x12.Claim:
    diagnoses: list[str] = []
    for codes in (line["icd10_codes"] for line in lines):
        for raw in (codes or "").split(";"):
            code = raw.replace(".", "").strip().upper()
            if code and code not in diagnoses and len(diagnoses) < MAX_DIAGNOSES:
                diagnoses.append(code)
    claim_pos = lines[0]["place_of_service"] or DEFAULT_POS
    services = []
    for r in lines:
        codes = [c.replace(".", "").strip().upper() for c in (r["icd10_codes"] or "").split(";")]
        pointers = tuple(diagnoses.index(c) + 1 for c in codes if c in diagnoses)[:MAX_POINTERS]
        services.append(
            x12.ServiceLine(
                code=r["code"],
                modifiers=tuple(m for m in (r["modifiers"] or "").split(";") if m),
                charge=r["charge"],
                units=int(r["units"]),
                date_of_service=r["date_of_service"],
                diagnosis_pointers=pointers or (1,),
                line_id=r["line_id"],
                place_of_service=(r["place_of_service"] or DEFAULT_POS)
                if (r["place_of_service"] or DEFAULT_POS) != claim_pos
                else None,
            )
        )
    address = x12.Address(
        line1=ctx["address1"] or "",
        line2=ctx["address2"],
        city=ctx["city"] or "",
        state=ctx["state"] or "",
        zip=ctx["zip"] or "",
    )
    subscriber = x12.Person(
        last_name=ctx["last_name"] or "",
        first_name=ctx["first_name"] or "",
        birth_date=ctx["birth_date"],
        sex=_sex(ctx["sex"]),
        address=address,
        member_id=ctx["member_id"] or "",
    )
    rendering = None
    practitioner = practitioners.get(claim["billing_practitioner_id"] or "")
    if (
        practitioner is not None
        and claim["rendering_npi"]
        and claim["rendering_npi"] != practice["npi"]
    ):
        rendering = x12.Provider(
            npi=claim["rendering_npi"],
            last_name=practitioner.get("last_name")
            or (practitioner.get("name") or "").split(" ")[-1],
            first_name=practitioner.get("first_name") or "",
            taxonomy=practitioner.get("taxonomy") or "",
        )
    return x12.Claim(
        claim_id=claim["claim_id"],
        frequency=claim["frequency"],
        place_of_service=claim_pos,
        diagnoses=tuple(diagnoses),
        subscriber=subscriber,
        payer=x12.Payer(
            name=ctx["payer_name"] or claim["payer_id"],
            payer_id=ctx["x12_payer_id"] or "",
            claim_filing_indicator=ctx["claim_filing_indicator"]
            or FILING_INDICATOR.get(ctx["kind"] or "", "ZZ"),
        ),
        lines=tuple(services),
        original_claim_id=claim["original_claim_id"],
        group_number=ctx["group_number"] or "",
        relationship=ctx["relationship"] or "self",
        rendering=rendering,
    )


def _sex(value: str | None) -> str:
    text = (value or "").strip().upper()[:1]
    return text if text in ("M", "F") else "U"
