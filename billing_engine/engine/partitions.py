"""Patient partitions: every rule is per patient, so a bundle may be evaluated in parts.

Nothing the engine decides looks across patients: a claim line, a gap, a conflict or
a yearly limit depends on one patient's rows (and on the practice-wide tables:
practitioners, payers, fee schedules, contracts). So the bundle is split by patient
(``split``: a hash of ``patient_id``, the same split every time within one polars
version), each part evaluated with the same pipeline, and the parts' results joined
(``merge``): the outputs are those of the whole bundle, row for row, after the
outputs' own sort. Peak memory is then set by the part's size, not the practice's.

What is computed over all patients, once, after the parts: the revenue by payer (a sum
of the joined lines), the capitation members (counted over the whole bundle), the input
row counts.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace

import polars as pl

from billing_engine.engine.family import RuleSetResult
from billing_engine.engine.frames import capitation_frame, revenue_frame
from billing_engine.engine.pipeline import EvaluationResult
from billing_engine.io.bundle import Bundle
from billing_engine.params.period import UsedValue

PATIENT_KEY = "patient_id"
_PART = "_partition"
HASH_SEED = 20_260_101  # fixed: the same patient always falls in the same part


def partition_count(patients: int, partition_patients: int) -> int:
    """How many parts hold `patients` patients at most `partition_patients` each
    (``0`` or a practice that fits: one part, the unpartitioned run)."""
    if partition_patients <= 0 or patients <= partition_patients:
        return 1
    return math.ceil(patients / partition_patients)


def partition_of(count: int) -> pl.Expr:
    """The part (0 to `count` - 1) of each row's patient: a seeded hash of the id."""
    return (pl.col(PATIENT_KEY).hash(seed=HASH_SEED) % count).cast(pl.UInt32).alias(_PART)


@dataclass(frozen=True)
class Partitioned:
    """A bundle whose patient-keyed tables carry each row's part, ready to be cut.

    Cutting filters on the precomputed part column, so the hash runs once per table
    however many parts are taken; ``part(k)`` returns one part as a bundle of its own.
    """

    bundle: Bundle
    count: int
    keyed: dict[str, pl.DataFrame]  # patient-keyed tables with the part column

    @classmethod
    def of(cls, bundle: Bundle, count: int) -> Partitioned:
        keyed = {
            name: frame.with_columns(partition_of(count))
            for name, frame in bundle.tables.items()
            if PATIENT_KEY in frame.columns
        }
        return cls(bundle, count, keyed)

    def part(self, index: int) -> Bundle:
        if not 0 <= index < self.count:
            raise IndexError(f"part {index} of {self.count}")
        tables = dict(self.bundle.tables)
        for name, frame in self.keyed.items():
            tables[name] = frame.filter(pl.col(_PART) == index).drop(_PART)
        return replace(self.bundle, tables=tables)

    def parts(self) -> Iterator[Bundle]:
        for index in range(self.count):
            yield self.part(index)


def split(bundle: Bundle, count: int) -> list[Bundle]:
    """`bundle` as `count` bundles, each with a disjoint set of patients (the tables
    without ``patient_id`` are in every part)."""
    return list(Partitioned.of(bundle, count).parts())


def merge(results: Sequence[EvaluationResult], bundle: Bundle) -> EvaluationResult:
    """The result of the whole `bundle` from the results of its parts.

    Row tables are joined and sorted as the pipeline sorts them (claim lines, gaps); the
    revenue and capitation are computed again over all patients; parameters used and
    those carried unverified are the union of the parts'.
    """
    if not results:
        raise ValueError("no partition results to merge")
    first = results[0]
    lines = _concat(r.claim_lines for r in results).sort(
        "patient_id", "date_of_service", "code", maintain_order=True
    )
    gaps = _concat(r.gaps for r in results).sort(
        "patient_id", "period_start", "code", "billing_practitioner_id", maintain_order=True
    )
    used: dict[str, UsedValue] = {}
    unverified: dict[str, dt.date] = {}
    for result in results:
        used.update(result.parameters_used)
        unverified.update(result.unverified_parameters)
    return replace(
        first,
        claim_lines=lines,
        gaps=gaps,
        revenue_by_payer=revenue_frame(lines, bundle),
        capitation=capitation_frame(bundle, first.month),
        priced_lines=_concat(r.priced_lines for r in results),
        outcomes=_concat(r.outcomes for r in results),
        rule_sets=_merge_rule_sets(results),
        time_entries=_concat(r.time_entries for r in results),
        parameters_used=used,
        input_row_counts=bundle.row_counts(),
        source=bundle.source,
        unverified_parameters=dict(sorted(unverified.items())),
    )


def _concat(frames: Iterable[pl.DataFrame]) -> pl.DataFrame:
    return pl.concat(list(frames), how="diagonal_relaxed")


def _merge_rule_sets(results: Sequence[EvaluationResult]) -> tuple[RuleSetResult, ...]:
    merged: dict[str, list[RuleSetResult]] = {}
    for result in results:
        for rule_set in result.rule_sets:
            merged.setdefault(rule_set.name, []).append(rule_set)
    return tuple(
        replace(
            sets[0],
            facts=_concat(s.facts for s in sets),
            outcomes=_concat(s.outcomes for s in sets),
        )
        for sets in merged.values()
    )
