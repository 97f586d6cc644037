"""The audit pack: one patient's month as an auditor asks for it (``billing explain
--format html``).

Everything ``billing explain`` shows (each code's criteria with their values, the
parameters with their sources, the evidence, the amounts), and beside it: the patient,
the consents (date, method, the practitioner they name), the care plans, the timeline
of the month's encounters (performer, minutes and what of them counted), the text of
every rule the codes cite (the rules reference, as shipped in
``code_rules/rule_texts.yaml``) and the source documents those rules and parameters
cite. PHI (names, birth date, address) is shown here, in the file the user asked for,
and never written to a log.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from billing_engine.calendar import Month
from billing_engine.engine.explain import Explanation
from billing_engine.io.bundle import Bundle
from billing_engine.pricing.fees import FeeLibrary
from billing_engine.services.evaluation import explain
from code_rules.rule_texts import rule_texts

PATIENT_COLUMNS = ("patient_id", "first_name", "last_name", "birth_date", "sex", "address1",
                   "address2", "city", "state", "zip", "care_manager_id")  # fmt: skip
ENCOUNTER_COLUMNS = ("encounter_id", "date", "start_time", "kind", "program", "performer_id",
                     "minutes", "contact_mode", "outcome", "status", "cpt")  # fmt: skip


@dataclass(frozen=True)
class AuditPack:
    explanation: Explanation
    patient: dict[str, Any]
    consents: list[dict[str, Any]]
    care_plans: list[dict[str, Any]]
    timeline: list[dict[str, Any]]
    rules: list[dict[str, Any]]
    sources: list[dict[str, Any]]


def _named(frame: pl.DataFrame, bundle: Bundle, column: str) -> pl.DataFrame:
    """``frame`` with ``<column>_name`` and ``_credential`` from the practitioners table."""
    people = bundle["practitioners"].select(
        pl.col("practitioner_id").alias(column),
        pl.col("name").alias(f"{column}_name"),
        pl.col("credential").alias(f"{column}_credential"),
    )
    return frame.join(people, on=column, how="left")


def _cited_rules(view: Explanation) -> list[str]:
    ids: list[str] = []
    for code in view.codes:
        for text in [code.rules, *(c.rules for c in code.criteria)]:
            ids.extend(i for i in text.split() if i not in ids)
    return ids


def build_audit_pack(
    bundle: Bundle,
    month: Month,
    patient_id: str,
    code: str | None = None,
    *,
    as_of: dt.date | None = None,
    settings: Mapping[str, Any] | None = None,
    fees: FeeLibrary | None = None,
) -> AuditPack:
    """The audit pack of ``patient_id``'s ``month`` (only ``code`` when given)."""
    view = explain(bundle, month, patient_id, code, as_of=as_of, settings=settings, fees=fees)
    mine = bundle.for_patients([patient_id])
    patient = mine["patients"].select(PATIENT_COLUMNS).to_dicts()
    consents = _named(
        mine["consents"].sort("obtained_date", "consent_id"), bundle, "billing_practitioner_id"
    )
    # the month's encounters, and those outside it that a code cites (a TCM's contact)
    cited = {e for code in view.codes for e in code.evidence.split(";") if e}
    shown = pl.col("date").is_between(month.start, month.end) | pl.col("encounter_id").is_in(
        sorted(cited)
    )
    encounters = _named(
        mine["encounters"].filter(shown).sort("date", "start_time", "encounter_id"),
        bundle,
        "performer_id",
    ).with_columns(pl.col("cpt").list.join(";"), pl.col("start_time").dt.strftime("%H:%M"))
    fates = {e.encounter_id: e.fate for e in view.entries}
    timeline = [
        {**row, "counted": fates.get(row["encounter_id"], "")}
        for row in encounters.select(
            *ENCOUNTER_COLUMNS, "performer_id_name", "performer_id_credential"
        ).to_dicts()
    ]
    texts = rule_texts()
    rules = [
        {"id": rule_id, **texts["rules"].get(rule_id, {"title": "", "text": "(not in the "
         "rules reference)", "confidence": "", "sources": [], "section": ""})}
        for rule_id in _cited_rules(view)
    ]  # fmt: skip
    keys = sorted({key for rule in rules for key in rule["sources"]})
    sources = [{"key": key, **texts["sources"].get(key, {})} for key in keys]
    return AuditPack(
        explanation=view,
        patient=patient[0] if patient else {"patient_id": patient_id},
        consents=consents.to_dicts(),
        care_plans=mine["care_plans"].sort("date", "care_plan_id").to_dicts(),
        timeline=timeline,
        rules=rules,
        sources=sources,
    )
