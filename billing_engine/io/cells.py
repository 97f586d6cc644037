"""Text cells to typed values: each spec column parsed, each unsafe cell held.

A raw table (text cells, see ``billing_engine.io.readers``) becomes a work frame: its
cells stripped, empty cells null, each spec column parsed as ``<name>__typed__`` (null
where empty or invalid) and each cell flagged ``<name>__held__`` when it is unsafe (a NUL
character) or beyond an input limit (``billing_engine.io.ingest_limits``).
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from billing_engine.errors import InputIssue
from billing_engine.io.ingest_limits import ID_SUFFIX, OPEN_ENDED_DATES, PREFIX, InputLimits
from billing_engine.io.readers import FIRST_DATA_ROW, ROW
from billing_engine.io.schema import DECIMAL_DTYPE, ColType, Column, Table

TYPED = "__typed__"  # suffix of the parsed copy of a column during validation
HELD = "__held__"  # suffix of a column's flag: the cell is unsafe or beyond a limit

_UNTIDY_RE = r"^\s|\s$"  # a cell str.strip_chars would change
_DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_TIME_RE = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
_INT_RE = r"^-?[0-9]+$"
_DECIMAL_RE = r"^-?([0-9]{1,14}(\.[0-9]{0,4})?|\.[0-9]{1,4})$"
_FLOAT_RE = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
NPI_RE = r"^[0-9]{10}$"
# letter, digit, alphanumeric, then an optional dot and up to 4 alphanumerics
_ICD10_RE = r"^[A-Z][0-9][A-Z0-9](\.[A-Z0-9]{1,4}|[A-Z0-9]{0,4})$"


def valid_npi(npi: pl.Expr) -> pl.Expr:
    """True where the text is 10 digits whose last is the Luhn check digit over 80840 + 9 digits.

    CMS: double every other digit of the 9-digit base starting with the first, sum the
    digits of the results and of the other digits, add 24 (the 80840 prefix's share); the
    check digit brings the total to a multiple of 10. Null in, null out.
    """
    number = pl.when(npi.str.contains(NPI_RE)).then(npi).cast(pl.Int64, strict=False)
    total: pl.Expr = pl.lit(24, dtype=pl.Int64)
    for position in range(10):
        digit = (number // 10 ** (9 - position)) % 10
        if position < 9 and position % 2 == 0:
            digit = pl.when(digit * 2 > 9).then(digit * 2 - 9).otherwise(digit * 2)
        total = total + digit
    return npi.str.contains(NPI_RE) & (total % 10 == 0)


def typed_col(name: str) -> pl.Expr:
    return pl.col(name + TYPED)


def with_row_numbers(frame: pl.DataFrame) -> pl.DataFrame:
    if ROW in frame.columns:
        return frame.with_columns(pl.col(ROW).cast(pl.Int64))
    return frame.with_row_index(ROW, offset=FIRST_DATA_ROW).with_columns(pl.col(ROW).cast(pl.Int64))


def stringify(label: str, frame: pl.DataFrame) -> tuple[pl.DataFrame, list[InputIssue]]:
    """Turn every (non-ROW) column into text the way a CSV export would write it.

    Dates become ISO dates (datetimes keep their date), times HH:MM, booleans true/false,
    whole floats whole numbers, lists ';'-joined. Columns of other kinds are reported.
    """
    issues: list[InputIssue] = []
    exprs: list[pl.Expr] = []
    for name, dtype in frame.schema.items():
        if name == ROW:
            exprs.append(pl.col(ROW))
            continue
        expr = _as_text(pl.col(name), dtype)
        if expr is None:
            problem = (
                f"unsupported column type {dtype.base_type()!s}"
                " (use text, numbers, dates, times or booleans)"
            )
            issues.append(InputIssue(label, None, name, problem))
        else:
            exprs.append(expr.alias(name))
    return frame.select(exprs), issues


def _as_text(col: pl.Expr, dtype: pl.DataType) -> pl.Expr | None:
    if dtype == pl.String:
        return col
    if dtype == pl.Datetime:
        return col.dt.date().cast(pl.String)
    if dtype == pl.Time:
        return col.dt.to_string("%H:%M")
    if dtype == pl.Boolean:
        return pl.when(col).then(pl.lit("true")).when(~col).then(pl.lit("false"))
    if dtype.is_float():
        whole = col.is_finite() & (col == col.round(0)) & (col.abs() < 1e15)
        return (
            pl.when(whole)
            .then(col.cast(pl.Int64, strict=False).cast(pl.String))
            .otherwise(col.cast(pl.String))
        )
    if isinstance(dtype, pl.List) and (dtype.inner == pl.String or dtype.inner.is_numeric()):
        return col.list.eval(pl.element().cast(pl.String)).list.join(";")
    if dtype.is_numeric() or dtype in (pl.Date, pl.Null, pl.Categorical) or dtype == pl.Enum:
        return col.cast(pl.String)
    return None


def _normalize(frame: pl.DataFrame, cells: Sequence[str], tidy: bool = False) -> pl.DataFrame:
    """Strip every cell, make empty cells null and drop rows that are entirely empty.

    Only the columns holding a cell to strip or an empty cell are rewritten, and rows
    filtered only when one is empty: a tidy column is kept as it is, not copied (at a
    million patients a copy of the encounters' text is gigabytes). ``tidy``: the source
    is known to hold no cell with white space to strip; only empty cells are looked for.
    """
    if not cells:
        return frame.clear()
    empty = [pl.col(c).str.len_bytes() == 0 for c in cells]
    untidy = frame.select(
        (e if tidy else (pl.col(c).str.contains(_UNTIDY_RE) | e)).any()
        for c, e in zip(cells, empty, strict=True)
    ).row(0)
    fix = [c for c, found in zip(cells, untidy, strict=True) if found]
    if fix:
        frame = frame.with_columns(pl.col(fix).str.strip_chars()).with_columns(
            pl.when(pl.col(c).str.len_bytes() > 0).then(pl.col(c)).alias(c) for c in fix
        )
    filled = pl.any_horizontal(pl.col(c).is_not_null() for c in cells)
    if not frame.select(filled.all()).item():
        frame = frame.filter(filled)
    return frame


def parse_table(
    table: Table,
    text: pl.DataFrame,
    limits: InputLimits,
    nul_check: bool = True,
    tidy: bool = False,
) -> pl.DataFrame:
    """Normalized text cells plus each spec column parsed as ``<name>__typed__``.

    Spec columns absent from the source are added as empty text first; a parsed value
    is null where the text is empty or invalid. Every cell also gets ``<name>__held__``:
    true where it is unsafe or beyond an input limit (``_held``). Such a cell has no
    parsed value either, so its only issue is its own, never a broken reference, a
    duplicate or a date order echoing it. ``nul_check=False``: the source is known to
    hold no NUL character; ``tidy``: no cell with white space to strip (``_normalize``).
    """
    cells = [c for c in text.columns if c != ROW]
    missing = [pl.lit(None, dtype=pl.String).alias(c) for c in table.column_names if c not in cells]
    names = [*cells, *(c for c in table.column_names if c not in cells)]
    work = (
        _normalize(text, cells, tidy)
        .lazy()
        .with_columns(missing)
        .with_columns(_parse(c, tidy).alias(c.name + TYPED) for c in table.columns)
        .with_columns(_held(table, name, limits, nul_check).alias(name + HELD) for name in names)
        .collect()
    )
    # only the columns with a held cell are rewritten: elsewhere the parsed column stays
    # as parsed (a plain text column shares its text's buffers: no copy of the cells)
    held = work.select(pl.col(c.name + HELD).any() for c in table.columns).row(0)
    rewrite = [c for c, any_held in zip(table.columns, held, strict=True) if any_held]
    if not rewrite:
        return work
    return work.with_columns(
        pl.when(~pl.col(c.name + HELD)).then(typed_col(c.name)).alias(c.name + TYPED)
        for c in rewrite
    )


def _held(table: Table, name: str, limits: InputLimits, nul_check: bool = True) -> pl.Expr:
    """True where a cell is unsafe or beyond a limit (``held_problem`` says which).

    Evaluated on every cell: two string kernels per column, and two date comparisons
    on the parsed value of a date column.
    """
    rules = _held_rules(table, name, limits, nul_check=nul_check)
    return pl.any_horizontal(c for c, _ in rules).fill_null(False)


def held_problem(table: Table, name: str, limits: InputLimits) -> pl.Expr:
    """The problem of a held cell (only evaluated on the rows found held)."""
    found: pl.Expr = pl.lit(None, dtype=pl.String)
    for condition, problem in reversed(_held_rules(table, name, limits, parsed=True)):
        found = pl.when(condition).then(pl.lit(problem)).otherwise(found)  # first rule wins
    return found


def echoable(name: str, limits: InputLimits) -> pl.Expr:
    """Whether a cell may be shown in a message: never a NUL character, a huge cell or id."""
    text = pl.col(name)
    longest = limits.max_cell_chars
    if _is_id(name):
        longest = min(longest, limits.max_id_chars)
    return ~text.str.contains("\x00", literal=True) & (text.str.len_chars() <= longest)


def _held_rules(
    table: Table, name: str, limits: InputLimits, parsed: bool = False, nul_check: bool = True
) -> list[tuple[pl.Expr, str]]:
    """(condition, problem): a NUL character, a cell or id too long, a date beyond the limits.

    Date conditions use the parsed date (``parsed``: parse the text again, for rows whose
    parsed value has been nulled). ``nul_check=False`` leaves the NUL search out.
    """
    text = pl.col(name)
    length = text.str.len_chars()
    nul = "contains a NUL character (byte 0), which cannot be stored; remove it"
    rules = [(text.str.contains("\x00", literal=True), nul)] if nul_check else []
    if _is_id(name):
        limit = limits.max_id_chars
        rules.append(
            (length > limit, f"id is longer than {limit} characters ({PREFIX}max_id_chars)")
        )
    limit = limits.max_cell_chars
    rules.append(
        (length > limit, f"cell is longer than {limit} characters ({PREFIX}max_cell_chars)")
    )
    if name in table.column_names and table.column(name).type == ColType.DATE:
        date = _parse(table.column(name)) if parsed else typed_col(name)
        first, last = limits.earliest_date, limits.latest_date
        earliest = f"date before {first}, the earliest accepted ({PREFIX}earliest_date)"
        rules.append((date < first, earliest))
        if (table.name, name) not in OPEN_ENDED_DATES:
            latest = f"date after {last}, the latest accepted ({PREFIX}latest_date)"
            rules.append((date > last, latest))
    return rules


def _is_id(name: str) -> bool:
    return name.endswith(ID_SUFFIX)


def _parse(column: Column, tidy: bool = False) -> pl.Expr:
    """The typed value of a text column: null where the text is empty or invalid.

    ``tidy``: the source holds no white space (``_normalize``), so list items need no strip.
    """
    text = pl.col(column.name)
    parsed: pl.Expr
    match column.type:
        case ColType.DATE:
            parsed = pl.when(text.str.contains(_DATE_RE)).then(
                text.str.to_date("%Y-%m-%d", strict=False)
            )
        case ColType.TIME:
            parsed = pl.when(text.str.contains(_TIME_RE)).then(
                text.str.to_time("%H:%M", strict=False)
            )
        case ColType.INT:
            parsed = pl.when(text.str.contains(_INT_RE)).then(text.cast(pl.Int64, strict=False))
        case ColType.BOOL:
            lower = text.str.to_lowercase()
            parsed = (
                pl.when(lower == "true")
                .then(pl.lit(True))
                .when(lower == "false")
                .then(pl.lit(False))
            )
        case ColType.DECIMAL:
            parsed = pl.when(text.str.contains(_DECIMAL_RE)).then(
                text.cast(DECIMAL_DTYPE, strict=False)
            )
        case ColType.FLOAT:
            number = text.cast(pl.Float64, strict=False)
            parsed = pl.when(text.str.contains(_FLOAT_RE) & number.is_finite()).then(number)
        case ColType.LIST:
            items = text.str.split(";")
            if not tidy:
                items = items.list.eval(pl.element().str.strip_chars())
            items = items.list.eval(pl.element().filter(pl.element().str.len_bytes() > 0))
            parsed = pl.when(items.list.len() > 0).then(items)
        case ColType.ENUM if column.enum:
            parsed = pl.when(text.is_in(column.enum)).then(text)
        case ColType.NPI:
            parsed = pl.when(valid_npi(text)).then(text)
        case ColType.ICD10:
            upper = text.str.to_uppercase()
            parsed = pl.when(upper.str.contains(_ICD10_RE)).then(upper)
        case ColType.STR if column.pattern:
            parsed = pl.when(text.str.contains(column.pattern)).then(text)
        case _:
            parsed = text
    return parsed.cast(column.dtype)


def typed_output(table: Table, work: pl.DataFrame) -> pl.DataFrame:
    spec = set(table.column_names)
    extras = [
        c
        for c in work.columns
        if c != ROW and c not in spec and not c.endswith(TYPED) and not c.endswith(HELD)
    ]
    # the columns themselves, renamed (no expression engine: nothing is computed or copied)
    return pl.DataFrame(
        [
            *(work.get_column(c + TYPED).alias(c) for c in table.column_names),
            *(work.get_column(c) for c in extras),
        ]
    )
