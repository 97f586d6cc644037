"""Read the CMS National Physician Fee Schedule Relative Value File (``PPRRVUyy``).

The file has a few title lines, a header whose column names are spread over several
rows (``WORK`` above ``RVU``, ``NON-FAC`` / ``NA`` / ``INDICATOR`` ...) ending with the
row that starts ``HCPCS,MOD,DESCRIPTION,...``, then one row per HCPCS code and modifier.

``read_pfs`` turns it into a frame with exactly ``PFS_COLUMNS`` (types in ``PFS_SCHEMA``;
the cells and checks are ``billing_engine.io.cms_cells``'); ``read_pfs_table`` reads back
the normalized CSV it is written to.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from billing_engine.errors import FeeFileError
from billing_engine.io.cms_cells import (
    DECIMAL,
    Problem,
    check_year,
    data_frame,
    decimal_problems,
    duplicate_problem,
    find_title,
    first_problem,
    is_blank,
    non_negative_numbers,
    normal,
    raise_first,
    read_cells,
    read_fee_table,
)

PFS_COLUMNS = (
    "year",
    "effective_from",
    "qp",
    "hcpcs",
    "modifier",
    "status",
    "work_rvu",
    "nf_pe_rvu",
    "nf_na",
    "f_pe_rvu",
    "f_na",
    "mp_rvu",
    "conv_factor",
    "release",
    "source_file",
)

PFS_SCHEMA: dict[str, pl.DataType] = {
    "year": pl.Int32(),
    "effective_from": pl.Date(),
    "qp": pl.Boolean(),
    "hcpcs": pl.String(),
    "modifier": pl.String(),
    "status": pl.String(),
    "work_rvu": DECIMAL,
    "nf_pe_rvu": DECIMAL,
    "nf_na": pl.String(),
    "f_pe_rvu": DECIMAL,
    "f_na": pl.String(),
    "mp_rvu": DECIMAL,
    "conv_factor": DECIMAL,
    "release": pl.String(),
    "source_file": pl.String(),
}
assert tuple(PFS_SCHEMA) == PFS_COLUMNS

# normalized column -> the (joined, upper-case) header name in the CMS RVU file
PFS_SOURCE_COLUMNS: dict[str, str] = {
    "hcpcs": "HCPCS",
    "modifier": "MOD",
    "status": "STATUS CODE",
    "work_rvu": "WORK RVU",
    "nf_pe_rvu": "NON-FAC PE RVU",
    "nf_na": "NON-FAC NA INDICATOR",
    "f_pe_rvu": "FACILITY PE RVU",
    "f_na": "FACILITY NA INDICATOR",
    "mp_rvu": "MP RVU",
    "conv_factor": "CONV FACTOR",
}
PFS_DECIMALS = ("work_rvu", "nf_pe_rvu", "f_pe_rvu", "mp_rvu", "conv_factor")
NA_VALUES = ("", "NA")


def read_pfs(
    path: Path, year: int, effective_from: dt.date | None = None, qp: bool = False
) -> pl.DataFrame:
    """The CMS RVU file as a frame with ``PFS_COLUMNS``.

    ``effective_from`` (default January 1 of ``year``) must lie inside ``year``; the
    first 4-digit year of the file's title line must be ``year``. ``qp`` marks the
    conversion factor as the one for qualifying APM participants.
    """
    path = Path(path)
    effective = effective_from or dt.date(year, 1, 1)
    if effective.year != year:
        raise FeeFileError(
            path.name,
            None,
            "effective_from",
            f"effective date {effective.isoformat()} is outside {year}",
        )
    cells = read_cells(path)
    header = next(
        (i for i, row in enumerate(cells.rows) if row and normal(row[0]) == "HCPCS"), None
    )
    if header is None:
        raise FeeFileError(
            cells.name, None, "HCPCS", "no header row starting with HCPCS (not a CMS RVU file?)"
        )
    # the "RELEASED mm/dd/yyyy" line belongs to the title, not to the column names
    released_at = next(
        (
            (i, " ".join(cell.split()))
            for i in range(header)
            for cell in cells.rows[i]
            if normal(cell).startswith("RELEASED")
        ),
        None,
    )
    top = header
    while top > 0 and not is_blank(cells.rows[top - 1]):
        top -= 1
    if released_at is not None:
        top = max(top, released_at[0] + 1)
    width = max(len(cells.rows[i]) for i in range(top, header + 1))
    names = [
        normal(" ".join(row[j] for row in cells.rows[top : header + 1] if j < len(row)))
        for j in range(width)
    ]
    positions: dict[str, int] = {}
    for column, source in PFS_SOURCE_COLUMNS.items():
        if source not in names:
            raise FeeFileError(
                cells.name, cells.lines[header], source, "required column is missing"
            )
        positions[column] = names.index(source)

    title, _, title_line = find_title(cells, top)
    check_year(cells, title, title_line, year)
    released = released_at[1] if released_at is not None else None
    release = f"{title}; {released}" if released else title

    frame = data_frame(cells, header + 1, positions)
    frame = frame.filter(~pl.all_horizontal(pl.col(c) == "" for c in positions))
    if frame.height == 0:
        raise FeeFileError(cells.name, cells.lines[header], None, "no data rows below the header")

    hcpcs = PFS_SOURCE_COLUMNS["hcpcs"]
    problems: list[Problem | None] = [
        first_problem(frame, pl.col("hcpcs") == "", "hcpcs", hcpcs, "HCPCS code is empty"),
        *decimal_problems(frame, {c: PFS_SOURCE_COLUMNS[c] for c in PFS_DECIMALS}),
        *(
            first_problem(
                frame,
                ~pl.col(c).is_in(NA_VALUES),
                c,
                PFS_SOURCE_COLUMNS[c],
                "must be blank or NA",
            )
            for c in ("nf_na", "f_na")
        ),
        duplicate_problem(
            frame.with_columns(pl.col("hcpcs").str.to_uppercase(), pl.col("modifier")),
            ["hcpcs", "modifier"],
            "hcpcs",
            hcpcs,
            "HCPCS+MOD",
        ),
    ]
    raise_first(cells.name, problems)

    frame = non_negative_numbers(frame, PFS_DECIMALS)
    return frame.select(
        pl.lit(year, dtype=pl.Int32()).alias("year"),
        pl.lit(effective, dtype=pl.Date()).alias("effective_from"),
        pl.lit(qp, dtype=pl.Boolean()).alias("qp"),
        pl.col("hcpcs").str.to_uppercase(),
        pl.col("modifier").str.to_uppercase(),
        pl.col("status").str.to_uppercase(),
        "work_rvu",
        "nf_pe_rvu",
        pl.col("nf_na"),
        "f_pe_rvu",
        pl.col("f_na"),
        "mp_rvu",
        "conv_factor",
        pl.lit(release, dtype=pl.String()).alias("release"),
        pl.lit(cells.name, dtype=pl.String()).alias("source_file"),
    )


def read_pfs_table(path: Path) -> pl.DataFrame:
    """A normalized RVU table written from ``read_pfs`` (CSV), typed as ``PFS_SCHEMA``."""
    return read_fee_table(path, PFS_SCHEMA)


def empty_pfs_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=PFS_SCHEMA)
