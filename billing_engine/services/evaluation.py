"""Evaluate a month with the shipped rulebook (``code_rules``), or a variant of it.

The engine (``engine.pipeline.evaluate``) is handed its rulebook; this is where the
commands and tests get the shipped one, with optional replacements: other parameters
(a test's overrides, next year's draft), fewer families, another fee library.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from billing_engine.calendar import Month
from billing_engine.engine import explain as engine_explain
from billing_engine.engine import partitions, pipeline
from billing_engine.engine.explain import Explanation
from billing_engine.engine.family import FamilyEvaluator
from billing_engine.engine.pipeline import EvaluationResult
from billing_engine.engine.rulebook import Rulebook
from billing_engine.io.bundle import Bundle
from billing_engine.params.parameters import ParameterSet
from billing_engine.pricing.fees import FeeLibrary
from code_rules.rulebook import shipped_parameters, shipped_rulebook

__all__ = [
    "DEFAULT_PARTITION_PATIENTS",
    "DEFAULT_WORKERS",
    "EvaluationResult",
    "default_parameters",
    "evaluate",
    "explain",
    "family_names",
    "rulebook",
]

# Patients per part when a practice is evaluated in parts (engine.partitions): above it
# a bundle is split by patient, each part evaluated alone and the results joined, so
# memory follows the part, not the practice. 0: never split. Each part costs its
# pipeline's thousands of queries whatever its size: at a million patients (2 cores)
# parts of 200,000 took 72.9 s / 6.6 GB, of 100,000 87.5 s / 6.3 GB, of 250,000
# 72.9 s / 7.1 GB (bench/README.md, "Scale run").
DEFAULT_PARTITION_PATIENTS = 200_000

# Parts evaluated at once, in threads of this process (polars works outside the GIL,
# so a second part fills the core the first leaves idle between its many small
# queries): two, or one on a one-core machine. Each adds a part's memory. A bundle
# evaluated in one part has its code families evaluated that many at once instead
# (100k patients: 3.73 s vs 4.09 s one family at a time, bench/README.md).
DEFAULT_WORKERS = min(2, os.cpu_count() or 1)


def family_names() -> tuple[str, ...]:
    """The shipped code families, in evaluation order (``--families`` choices)."""
    return tuple(shipped_rulebook().families)


def default_parameters() -> ParameterSet:
    """The parameters shipped in ``code_rules`` (loaded once per process)."""
    return shipped_parameters()


def rulebook(
    *,
    params: ParameterSet | None = None,
    families: Mapping[str, FamilyEvaluator] | None = None,
    fees: FeeLibrary | None = None,
) -> Rulebook:
    """The shipped rulebook, with `params`, `families` or `fees` in place of its own."""
    book = shipped_rulebook()
    if params is not None:
        book = book.with_parameters(params)
    if families is not None:
        book = book.with_families(families)
    if fees is not None:
        book = book.with_fees(fees)
    return book


def evaluate(
    bundle: Bundle,
    month: Month,
    as_of: dt.date | None = None,
    *,
    params: ParameterSet | None = None,
    settings: Mapping[str, Any] | None = None,
    families: Mapping[str, FamilyEvaluator] | None = None,
    fees: FeeLibrary | None = None,
    apply_deductible: bool = False,
    only: frozenset[str] | None = None,
    partition_patients: int = DEFAULT_PARTITION_PATIENTS,
    workers: int = DEFAULT_WORKERS,
) -> EvaluationResult:
    """``engine.pipeline.evaluate`` under the shipped rulebook (see ``rulebook``).

    `only` keeps just the named families. A bundle of more than `partition_patients`
    patients is evaluated in patient parts of at most that many (``engine.partitions``),
    `workers` of them at a time: the same result, with memory set by the parts in hand.
    A bundle evaluated whole has its code families evaluated `workers` at a time.
    Each run keeps its own parameter record, so parts in threads share nothing mutable.
    """
    book = rulebook(params=params, families=families, fees=fees)
    if only is not None:
        book = book.only(only)
    count = partitions.partition_count(bundle["patients"].height, partition_patients)

    def run(part: Bundle, family_threads: int = 1) -> EvaluationResult:
        return pipeline.evaluate(
            part,
            month,
            as_of,
            rulebook=book,
            settings=settings,
            apply_deductible=apply_deductible,
            family_threads=family_threads,
        )

    if count == 1:  # one part: its families share the workers (parts would, else)
        return run(bundle, family_threads=workers)
    cut = partitions.Partitioned.of(bundle, count)
    if workers <= 1:
        return partitions.merge([run(part) for part in cut.parts()], bundle)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="part") as pool:
        results = list(pool.map(lambda k: run(cut.part(k)), range(count)))  # in part order
    return partitions.merge(results, bundle)


def explain(
    bundle: Bundle,
    month: Month,
    patient_id: str,
    code: str | None = None,
    *,
    as_of: dt.date | None = None,
    settings: Mapping[str, Any] | None = None,
    fees: FeeLibrary | None = None,
) -> Explanation:
    """One patient's month explained: `bundle` narrowed to the patient, evaluated with
    the shipped rulebook (and `fees`, the library ``billing evaluate`` would use)."""
    mine = bundle.for_patients([patient_id])
    book = rulebook(fees=fees)
    result = pipeline.evaluate(mine, month, as_of, rulebook=book, settings=settings)
    return engine_explain.build(result, book, patient_id, code, bundle=mine)
