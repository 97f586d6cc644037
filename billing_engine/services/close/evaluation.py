"""A month evaluated from the store, as the close (and ``billing evaluate --db``) sees it.

The stored bundle, with the lines of exported claims of OTHER months added to
``claims_history`` (item 7 of the close: what was billed stays billed — frequency
limits, lifetime codes and "already billed this period" read them without a
re-import). The month's own claims are left out: the month is compared with them
instead (adjustment cycles). A history row already imported with the same patient,
code, date, NPI and claim id (a remittance of our own claim) is not added twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import polars as pl

from billing_engine.calendar import Month
from billing_engine.engine.pipeline import EvaluationResult
from billing_engine.io.bundle import Bundle
from billing_engine.io.schema import TABLES
from billing_engine.pricing.fees import FeeLibrary
from billing_engine.services.close.claimed import as_claims_history, carried_lines
from billing_engine.services.evaluation import evaluate
from billing_engine.store import Store
from code_rules.rulebook import shipped_fees

HISTORY_KEY = ("patient_id", "code", "date_of_service", "billing_npi", "claim_id")


def with_claimed_history(bundle: Bundle, claimed: pl.DataFrame) -> Bundle:
    """``bundle`` with ``claimed`` (claims_history rows) added where not already held."""
    if not claimed.height:
        return bundle
    history = bundle["claims_history"]
    schema = TABLES["claims_history"].polars_schema()
    added = claimed.select(pl.col(c).cast(t) for c, t in schema.items()).join(
        history.select(HISTORY_KEY), on=list(HISTORY_KEY), how="anti", nulls_equal=True
    )
    extra = [c for c in history.columns if c not in schema]
    added = added.with_columns(pl.lit(None).alias(c) for c in extra)
    merged = pl.concat([history, added.select(history.columns)], how="vertical_relaxed")
    return replace(bundle, tables={**bundle.tables, "claims_history": merged})


def store_bundle(store: Store, month: Month) -> Bundle:
    """The stored bundle plus the exported claims of every month but ``month``."""
    bundle = store.load_bundle()
    with store.engine.connect() as connection:
        carried = carried_lines(connection)
    others = carried.filter(pl.col("month") != str(month))
    return with_claimed_history(bundle, as_claims_history(others))


def store_fees(store: Store) -> FeeLibrary:
    rvus, gpcis = store.fee_tables()
    return shipped_fees().overlay(FeeLibrary(rvus, gpcis))


def evaluate_from_store(
    store: Store,
    month: Month,
    as_of: dt.date | None,
    settings: Mapping[str, Any] | None = None,
) -> tuple[Bundle, EvaluationResult]:
    """The month evaluated from the store (``store_bundle``) with the store's fees."""
    bundle = store_bundle(store, month)
    return bundle, evaluate(bundle, month, as_of, settings=settings, fees=store_fees(store))
