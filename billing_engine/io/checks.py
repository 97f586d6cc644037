"""The checks of a bundle's work frames, each issue with its file, row and column.

Per cell (type, required, enum, limits), per table (duplicate keys, conflicting
duplicates, date order) and across tables (references, against the bundle then the
store; billing NPIs; coverage overlaps; events within a patient's life). Each check is
a frame and an expression over it (never a Python loop over rows); ``collect_issues``
gathers the rows where they hold. A message never shows the value of a PHI column.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import NamedTuple

import polars as pl

from billing_engine.errors import InputIssue
from billing_engine.io.cells import HELD, NPI_RE, TYPED, echoable, held_problem, typed_col
from billing_engine.io.ingest_limits import MAX_VALUE_LIMITS, PREFIX, InputLimits
from billing_engine.io.overlap import OTHER, overlapping_coverages
from billing_engine.io.readers import ROW
from billing_engine.io.schema import TABLES, ColType, Column, Table

_TYPE_PROBLEMS: dict[ColType, str] = {
    ColType.DATE: "not a date (expected YYYY-MM-DD)",
    ColType.TIME: "not a time (expected HH:MM, 24-hour)",
    ColType.INT: "not a whole number",
    ColType.BOOL: "not true/false",
    ColType.DECIMAL: "not a decimal number (at most 4 decimal places)",
    ColType.FLOAT: "not a number",
    ColType.ICD10: "not an ICD-10-CM code (e.g. E11.9 or E119)",
}

# (table, earlier date column, later date column): the later one may not precede the earlier.
DATE_ORDER: tuple[tuple[str, str, str], ...] = (
    ("coverages", "start_date", "end_date"),
    ("discharges", "admit_date", "discharge_date"),
    ("conditions", "onset_date", "resolved_date"),
    ("fee_schedule", "effective_from", "effective_to"),
    ("payer_codes", "effective_from", "effective_to"),
    ("capitation", "effective_from", "effective_to"),
    ("attributions", "start_date", "end_date"),
    ("patients", "birth_date", "death_date"),
)

# (table, date column) of what happens to a patient: never before birth nor after death.
PATIENT_EVENT_DATES: tuple[tuple[str, str], ...] = (
    ("encounters", "date"),
    ("consents", "obtained_date"),
    ("care_plans", "date"),
    ("discharges", "admit_date"),
    ("discharges", "discharge_date"),
    ("measurements", "date"),
    ("referrals", "date"),
)

# (table, column) whose practitioner must have an NPI because it bills under it.
BILLING_PRACTITIONER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("encounters", "billing_practitioner_id"),
    ("consents", "billing_practitioner_id"),
)

# Tables where two rows of the same identity (natural key, plus the optional key columns
# where given) must agree: rows that differ are refused, naming both (a denied claim and
# its paid resubmission are two claims: they need their claim_ids). Exact repeats collapse.
CONFLICTING_DUPLICATES: tuple[str, ...] = ("claims_history",)

StoredRows = Callable[[str, Sequence[str]], pl.DataFrame]
"""The current stored rows of a table, ``columns`` only, typed per the schema (list
columns excepted): what an incremental bundle is checked against besides itself. Given
by the caller (``billing import`` reads the store), so ingest never imports the store."""


class Check(NamedTuple):
    """Rows of ``frame`` where ``bad`` holds are issues with ``problem`` and ``value``.

    ``phi``: the column is protected health information; the value is never printed and
    ``problem`` must not contain it.
    """

    frame: pl.LazyFrame
    file: str
    column: str
    bad: pl.Expr
    problem: pl.Expr
    value: pl.Expr
    phi: bool = False


def missing_column_issues(label: str, table: Table, present: set[str]) -> list[InputIssue]:
    return [
        InputIssue(label, None, c.name, "required column is missing")
        for c in table.columns
        if c.required and c.name not in present
    ]


def table_checks(
    table: Table, label: str, frame: pl.LazyFrame, present: set[str], limits: InputLimits
) -> list[Check]:
    checks = []
    for column in table.columns:
        held = pl.col(column.name + HELD)
        rules = _cell_rules(table, column, present, limits)
        found = _first_problem(rules)
        problem = pl.when(held).then(held_problem(table, column.name, limits)).otherwise(found)
        value = pl.when(echoable(column.name, limits)).then(pl.col(column.name))
        # a cell is bad where a rule holds: the same rows as a problem found, without
        # building the problem text for every row
        bad = pl.any_horizontal(held, *(condition for condition, _ in rules))
        checks.append(Check(frame, label, column.name, bad, problem, value, column.phi))
    for name in sorted(present - {ROW, *table.column_names}):  # extra columns are kept too
        problem = held_problem(table, name, limits)
        no_value = pl.lit(None, pl.String)
        checks.append(Check(frame, label, name, pl.col(name + HELD), problem, no_value))
    checks.extend(_duplicate_key_checks(table, label, frame))
    checks.extend(_conflicting_duplicate_checks(table, label, frame))
    checks.extend(_date_order_checks(table, label, frame))
    return checks


def _cell_rules(
    table: Table, column: Column, present: set[str], limits: InputLimits
) -> list[tuple[pl.Expr, pl.Expr]]:
    """(condition, problem) of each cell rule of a column, the first that applies wins.

    A held cell (``_held``) is not these rules': its problem is ``held_problem``'s.
    """
    text, typed = pl.col(column.name), typed_col(column.name)
    empty = typed.is_null() if column.type == ColType.LIST else text.is_null()
    rules: list[tuple[pl.Expr, pl.Expr]] = []
    if column.required and column.name in present:
        rules.append((empty, pl.lit("required value is empty")))
    elif column.required_when is not None and column.required_when[0] in table.column_names:
        other, values = column.required_when
        rules.append(
            (
                empty & typed_col(other).is_in(values),
                pl.concat_str(pl.lit(f"required when {other} is "), typed_col(other)),
            )
        )
    rules.append((text.is_not_null() & typed.is_null() & ~empty, _type_problem(column)))
    if column.min_value is not None:
        rules.append(
            (typed < column.min_value, pl.lit(f"{column.name} must be {column.min_value} or more"))
        )
    most = limits.max_value(table.name, column.name)
    if most is not None:
        setting = PREFIX + MAX_VALUE_LIMITS[(table.name, column.name)]
        rules.append((typed > most, pl.lit(f"{column.name} must be {most} or less ({setting})")))
    if column.type == ColType.LIST and column.item_enum:
        unknown = typed.list.eval(pl.element().filter(~pl.element().is_in(column.item_enum)))
        rules.append(
            (
                unknown.list.len() > 0,
                pl.concat_str(
                    pl.lit("unknown item(s) "),
                    unknown.list.join(", "),
                    pl.lit("; expected: " + ", ".join(column.item_enum)),
                ),
            )
        )
    return rules


def _first_problem(rules: Sequence[tuple[pl.Expr, pl.Expr]]) -> pl.Expr:
    """Each cell's problem: the first rule that applies (null when the cell is fine)."""
    found: pl.Expr = pl.lit(None, dtype=pl.String)
    for condition, problem in reversed(rules):
        found = pl.when(condition).then(problem).otherwise(found)
    return found


def _type_problem(column: Column) -> pl.Expr:
    if column.type == ColType.NPI:
        digits = pl.col(column.name).str.contains(NPI_RE)
        return (
            pl.when(digits)
            .then(pl.lit("NPI check digit is wrong"))
            .otherwise(pl.lit("NPI must be exactly 10 digits"))
        )
    if column.type == ColType.ENUM:
        return pl.lit("unknown value; expected one of: " + ", ".join(column.enum))
    if column.pattern:
        return pl.lit("unknown value; expected " + column.pattern_hint)
    return pl.lit(_TYPE_PROBLEMS.get(column.type, "invalid value"))


def rises_strictly(frame: pl.LazyFrame, key: pl.Expr) -> bool:
    """Whether `key` has no null and rises strictly from row to row (one comparison of
    neighbours: 0.05 s for the 11 M encounter ids of a sorted export)."""
    whole, rising = (
        frame.select(
            (key.null_count() == 0).alias("whole"), (key > key.shift(1)).all().alias("rising")
        )
        .collect()
        .row(0)
    )
    return bool(whole and rising)


def may_repeat(
    frame: pl.LazyFrame, keys: Sequence[pl.Expr], whole: Sequence[pl.Expr] | None = None
) -> bool:
    """Whether `keys` may repeat among the rows where `whole` (default: the keys) is
    not null.

    False only when a single key rises strictly from row to row (an export sorted by
    its ids: one comparison of neighbours, 0.05 s for 11 M encounter ids against 0.65 s
    for their hashes), or when the keys' hashes are all distinct (equal keys hash
    alike): counting distinct 64-bit hashes is several times cheaper than finding the
    repeated keys themselves, which is done only when this is true (a repeat, or a hash
    collision).
    """
    rows = frame.filter(pl.all_horizontal(k.is_not_null() for k in (whole or keys)))
    if len(keys) == 1 and rises_strictly(rows, keys[0]):
        return False
    hashed = keys[0].hash() if len(keys) == 1 else pl.struct(keys).hash()
    return bool(rows.select(hashed.n_unique() < pl.len()).collect().item())


def _duplicate_key_checks(table: Table, label: str, frame: pl.LazyFrame) -> list[Check]:
    if not table.key:
        return []
    keys = [typed_col(k) for k in table.key]
    if not may_repeat(frame, keys):
        return []
    key_text = pl.concat_str(keys, separator="/")
    repeated = (
        frame.filter(pl.all_horizontal(k.is_not_null() for k in keys))
        .filter(pl.struct(keys).is_duplicated())  # (a struct hashes faster than one column)
        .with_columns(pl.col(ROW).min().over(keys).alias("__first__"))
    )
    problem = pl.concat_str(
        pl.lit(f"duplicate {'/'.join(table.key)} '"),
        key_text,
        pl.lit("' (first at row "),
        pl.col("__first__").cast(pl.String),
        pl.lit(")"),
    )
    bad = pl.col("__first__") != pl.col(ROW)
    return [Check(repeated, label, table.key[0], bad, problem, key_text)]


def _date_order_checks(table: Table, label: str, frame: pl.LazyFrame) -> list[Check]:
    """The later date may not precede the earlier; a PHI earlier date is not shown."""
    checks = []
    for name, earlier, later in DATE_ORDER:
        if name != table.name:
            continue
        problem = (
            pl.lit(f"{later} is before {earlier}")
            if table.column(earlier).phi
            else pl.concat_str(
                pl.lit(f"{later} is before {earlier} ("), pl.col(earlier), pl.lit(")")
            )
        )
        bad = typed_col(later) < typed_col(earlier)
        phi = table.column(later).phi
        checks.append(Check(frame, label, later, bad, problem, pl.col(later), phi))
    return checks


def _conflicting_duplicate_checks(table: Table, label: str, frame: pl.LazyFrame) -> list[Check]:
    """Rows of a ``CONFLICTING_DUPLICATES`` table whose identity repeats an earlier row's
    with other values, reported on the later row naming the first."""
    if table.name not in CONFLICTING_DUPLICATES:
        return []
    identity = [typed_col(c).alias(c) for c in table.identity]
    natural = [typed_col(k) for k in table.natural_key]
    if not may_repeat(frame, identity, natural):
        return []
    content = pl.struct([typed_col(c) for c in table.column_names]).hash()
    first = pl.col(ROW).sort_by(ROW).first().over(identity)
    first_content = content.sort_by(ROW).first().over(identity)
    # only rows whose identity repeats can differ from their first: the window runs on them
    repeated = frame.filter(pl.all_horizontal(k.is_not_null() for k in natural)).filter(
        pl.struct(identity).is_duplicated()
    )
    repeated = repeated.with_columns(__first__=first, __differs__=content != first_content)
    named = "/".join(table.natural_key)
    optional = " or ".join(table.optional_key)
    problem = pl.concat_str(
        pl.lit(f"same {named} as row "),
        pl.col("__first__").cast(pl.String),
        pl.lit(f" but other values: two different records need their own {optional}"),
    )
    value = pl.concat_str([typed_col(k).cast(pl.String) for k in table.natural_key], separator="/")
    return [Check(repeated, label, table.natural_key[0], pl.col("__differs__"), problem, value)]


class Stored:
    """The caller's stored rows, asked once per table and columns, minus replaced tables."""

    def __init__(self, source: StoredRows, replaced: Collection[str]) -> None:
        self._source = source
        self._replaced = frozenset(replaced)
        self._cache: dict[tuple[str, tuple[str, ...]], pl.DataFrame] = {}

    def rows(self, table: str, columns: Sequence[str]) -> pl.DataFrame:
        spec = TABLES[table]
        if table in self._replaced:
            return pl.DataFrame(schema={c: spec.column(c).dtype for c in columns})
        key = (table, tuple(columns))
        if key not in self._cache:
            self._cache[key] = self._source(table, list(columns))
        return self._cache[key]

    @property
    def replaced(self) -> frozenset[str]:
        return self._replaced

    def holds(self, table: str) -> bool:
        spec = TABLES[table]
        return self.rows(table, spec.identity[:1]).height > 0


def cross_table_checks(
    work: Mapping[str, pl.DataFrame],
    labels: Mapping[str, str],
    skip: Collection[str],
    known: Stored | None = None,
) -> list[Check]:
    """References (against the bundle, then the store), billing NPIs, coverage overlaps.

    ``skip``: tables whose absence or unreadability is reported already (no reference
    into them is checked).
    """
    checks: list[Check] = []
    for name, frame in work.items():
        for ref in TABLES[name].references:
            if ref.table in skip:
                continue
            targets = _target_values(work, ref.table, ref.target)
            referencing = frame.lazy().filter(typed_col(ref.column).is_not_null())
            unknown = referencing.join(
                targets, left_on=ref.column + TYPED, right_on="target", how="anti"
            )
            where = f"not in {ref.table}"
            if known is not None:
                unknown = _not_stored(unknown.collect(), known, ref.column, ref.table, ref.target)
                where += " nor in the store"
            problem = pl.concat_str(
                pl.lit(f"unknown {ref.column} '"),
                pl.col(ref.column),
                pl.lit(f"' ({where})"),
            )
            # every row of unknown is bad: said by a column, as the probe of a literal
            # condition would hold even on no rows (and the frame be filtered again)
            every = typed_col(ref.column).is_not_null()
            checks.append(
                Check(unknown, labels[name], ref.column, every, problem, pl.col(ref.column))
            )
    checks.extend(_billing_npi_checks(work, labels))
    if known is not None:
        checks.extend(_snapshot_orphan_checks(work, labels, known))
    if "coverages" in work:
        checks.extend(_coverage_overlap_checks(work["coverages"], labels["coverages"], known))
    return checks


def _not_stored(
    unknown: pl.DataFrame, known: Stored, column: str, table: str, target: str
) -> pl.LazyFrame:
    """The rows of ``unknown`` whose reference no current stored row satisfies either."""
    if unknown.height == 0:
        return unknown.lazy()
    stored = known.rows(table, [target]).lazy().select(pl.col(target).alias("target"))
    return unknown.lazy().join(stored, left_on=column + TYPED, right_on="target", how="anti")


def _snapshot_orphan_checks(
    work: Mapping[str, pl.DataFrame], labels: Mapping[str, str], known: Stored
) -> list[Check]:
    """A snapshot may not retire a row that stored rows of a table it leaves alone still
    name (a snapshot of patients alone would leave their stored encounters billing)."""
    checks: list[Check] = []
    for name, spec in TABLES.items():
        if name in known.replaced:
            continue
        for ref in spec.references:
            if ref.table not in known.replaced or ref.table not in work:
                continue
            named = known.rows(name, [ref.column]).lazy().select(pl.col(ref.column)).drop_nulls()
            targets = _target_values(work, ref.table, ref.target)
            orphans = (
                named.join(targets, left_on=ref.column, right_on="target", how="anti")
                .unique()
                .sort(ref.column)
                .with_columns(pl.lit(None, dtype=pl.Int64).alias(ROW))
            )
            problem = pl.concat_str(
                pl.lit(f"this snapshot no longer holds {ref.target} '"),
                pl.col(ref.column),
                pl.lit(
                    f"' that stored {name} rows still name ({name} is not in the bundle):"
                    f" include {name} in the snapshot, or keep the row"
                ),
            )
            every = pl.col(ref.column).is_not_null()
            checks.append(
                Check(orphans, labels[ref.table], ref.target, every, problem, pl.lit(None))
            )
    return checks


_COVERAGE = ("patient_id", "payer_id", "start_date", "end_date")


def _coverage_overlap_checks(frame: pl.DataFrame, label: str, known: Stored | None) -> list[Check]:
    """Coverages of one patient and payer that overlap another row of the bundle (reported
    on the later row) or a stored coverage the bundle leaves in place."""
    typed = frame.select(pl.col(ROW), *(typed_col(c).alias(c) for c in _COVERAGE))
    ends = pl.col(OTHER + "end_date").cast(pl.String).fill_null("open")
    period = pl.concat_str(pl.col(OTHER + "start_date").cast(pl.String), pl.lit(" to "), ends)
    within = overlapping_coverages(typed, typed).filter(pl.col(ROW) > pl.col(OTHER + ROW))
    problem = pl.concat_str(
        pl.lit("overlaps the coverage at row "),
        pl.col(OTHER + ROW).cast(pl.String),
        pl.lit(" ("),
        period,
        pl.lit(") of the same patient_id and payer_id"),
    )
    value = pl.col("start_date").cast(pl.String)
    every = pl.col(ROW).is_not_null()  # every row of within (and of against)
    checks = [Check(within.lazy(), label, "start_date", every, problem, value)]
    if known is None or typed.height == 0:
        return checks
    stored = known.rows("coverages", _COVERAGE)
    # a stored coverage the bundle holds again (same key) is replaced by the bundle's row
    kept = stored.join(typed, on=["patient_id", "payer_id", "start_date"], how="anti")
    against = overlapping_coverages(typed, kept)
    problem = pl.concat_str(
        pl.lit("overlaps the stored coverage "),
        period,
        pl.lit(
            " of the same patient_id and payer_id: give that coverage its end_date in this"
            " bundle, or import the bundle as a snapshot (billing import --snapshot)"
        ),
    )
    checks.append(Check(against.lazy(), label, "start_date", every, problem, value))
    return checks


def patient_life_checks(work: Mapping[str, pl.DataFrame], labels: Mapping[str, str]) -> list[Check]:
    """A patient's events (``PATIENT_EVENT_DATES``) lie between birth and death, both included.

    Reported on the event's row; the messages never show the birth or death date (PHI).
    """
    if "patients" not in work:
        return []
    lives = (
        work["patients"]
        .lazy()
        .select(
            typed_col("patient_id").alias("__patient__"),
            typed_col("birth_date").alias("__birth__"),
            typed_col("death_date").alias("__death__"),
        )
        .drop_nulls("__patient__")
        .unique("__patient__")  # a repeated patient_id is reported already
        .collect()
        .lazy()
    )
    checks: list[Check] = []
    for table, column in PATIENT_EVENT_DATES:
        if table not in work:
            continue
        first, last = (
            work[table]
            .select(typed_col(column).min().alias("first"), typed_col(column).max().alias("last"))
            .row(0)
        )
        if first is None:  # no dated row
            continue
        # only a patient born after the table's first date or dead before its last can
        # have an event outside their life: the join meets those few, not everyone
        at_risk = lives.filter((pl.col("__birth__") > first) | (pl.col("__death__") < last))
        dated = (
            work[table]
            .lazy()
            .select(ROW, column, column + TYPED, "patient_id" + TYPED)
            .filter(typed_col(column).is_not_null())
            .join(at_risk, left_on="patient_id" + TYPED, right_on="__patient__")
        )
        before = typed_col(column) < pl.col("__birth__")
        after = typed_col(column) > pl.col("__death__")
        problem = (
            pl.when(before)
            .then(pl.lit(f"{column} is before the patient's birth_date"))
            .otherwise(pl.lit(f"{column} is after the patient's death_date"))
        )
        phi = TABLES[table].column(column).phi
        bad = (before | after).fill_null(False)
        checks.append(Check(dated, labels[table], column, bad, problem, pl.col(column), phi))
    return checks


def _target_values(work: Mapping[str, pl.DataFrame], table: str, column: str) -> pl.LazyFrame:
    if table not in work:
        return pl.LazyFrame(schema={"target": pl.String})
    return work[table].lazy().select(typed_col(column).alias("target")).drop_nulls().unique()


def _billing_npi_checks(work: Mapping[str, pl.DataFrame], labels: Mapping[str, str]) -> list[Check]:
    """A practitioner named as billing practitioner must have an NPI (reported on its row)."""
    if "practitioners" not in work:
        return []
    without = work["practitioners"].filter(pl.col("npi").is_null())
    if without.is_empty():  # the usual case: nobody's uses need finding
        return []
    ids = without.lazy().select(typed_col("practitioner_id").alias("practitioner"))
    named = [
        work[table]
        .lazy()
        .join(ids, left_on=typed_col(column), right_on="practitioner", how="semi")
        .group_by(typed_col(column).alias("practitioner"))
        .agg(pl.col(ROW).min().alias("at"))
        .drop_nulls("practitioner")
        .with_columns(
            pl.lit(labels[table]).alias("file"),
            pl.concat_str(pl.lit(f"{labels[table]}, row "), pl.col("at").cast(pl.String)).alias(
                "where"
            ),
        )
        for table, column in BILLING_PRACTITIONER_COLUMNS
        if table in work
    ]
    if not named:
        return []
    first_use = (
        pl.concat(named).group_by("practitioner").agg(pl.col("where").sort_by("at", "file").first())
    )
    lacking = without.lazy().join(
        first_use, left_on="practitioner_id" + TYPED, right_on="practitioner"
    )
    problem = pl.concat_str(
        pl.lit("billing practitioner has no NPI (named in "), pl.col("where"), pl.lit(")")
    )
    bad = pl.col("npi").is_null()  # every row of lacking
    return [Check(lacking, labels["practitioners"], "npi", bad, problem, pl.col("npi"))]


def collect_issues(checks: Sequence[Check]) -> list[InputIssue]:
    """Every issue the checks find, in check order.

    First one pass per frame asks which checks hold anywhere (a boolean per check);
    only those are then filtered for their rows and messages: a valid bundle costs one
    scan of each table, not one per check.
    """
    if not checks:
        return []
    by_frame: dict[int, list[int]] = {}
    for index, check in enumerate(checks):
        by_frame.setdefault(id(check.frame), []).append(index)
    probes = [  # one after another: in parallel they only contend for memory
        checks[indices[0]]
        .frame.select(checks[i].bad.fill_null(False).any().alias(str(i)) for i in indices)
        .collect()
        for indices in by_frame.values()
    ]
    held = sorted(
        int(name) for probe in probes for name, hit in probe.row(0, named=True).items() if hit
    )
    if not held:
        return []
    found = pl.concat(
        [
            check.frame.filter(check.bad).select(
                pl.lit(check.file).alias("file"),
                pl.col(ROW).cast(pl.Int64).alias("row"),
                pl.lit(check.column).alias("column"),
                check.problem.cast(pl.String).alias("problem"),
                check.value.cast(pl.String).alias("value"),
                pl.lit(check.phi).alias("phi"),
            )
            for check in (checks[i] for i in held)
        ]
    ).collect()
    return [InputIssue(*row) for row in found.iter_rows()]
