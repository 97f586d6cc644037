"""Read CMS Addendum E, the geographic practice cost indices (GPCIs) by Medicare locality.

The file has a title line, a one-row header (``Medicare Administrative Contractor (MAC),
State,Locality Number,Locality Name,2025 PW GPCI (with 1.0 Floor),2025 PE GPCI,2025 MP
GPCI``), the localities, then footnote lines (``*Work GPCI reflects a 1.5 floor in Alaska
...``) that the locality names point to with ``*`` / ``**`` markers.

``read_gpci`` turns it into a frame with exactly ``GPCI_COLUMNS`` (types in
``GPCI_SCHEMA``; the cells and checks are ``billing_engine.io.cms_cells``');
``read_gpci_table`` reads back the normalized CSV it is written to.
"""

from __future__ import annotations

from collections.abc import Callable
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

GPCI_COLUMNS = (
    "year",
    "locality",
    "mac",
    "state",
    "locality_number",
    "locality_name",
    "pw_gpci",
    "pe_gpci",
    "mp_gpci",
    "footnote",
    "release",
    "source_file",
)

GPCI_SCHEMA: dict[str, pl.DataType] = {
    "year": pl.Int32(),
    "locality": pl.String(),
    "mac": pl.String(),
    "state": pl.String(),
    "locality_number": pl.Int32(),
    "locality_name": pl.String(),
    "pw_gpci": DECIMAL,
    "pe_gpci": DECIMAL,
    "mp_gpci": DECIMAL,
    "footnote": pl.String(),
    "release": pl.String(),
    "source_file": pl.String(),
}
assert tuple(GPCI_SCHEMA) == GPCI_COLUMNS

# normalized column -> (name shown in messages, test on the upper-case header cell)
GPCI_SOURCE_COLUMNS: dict[str, tuple[str, Callable[[str], bool]]] = {
    "mac": (
        "Medicare Administrative Contractor (MAC)",
        lambda h: h == "MAC" or h.startswith("MEDICARE ADMINISTRATIVE CONTRACTOR"),
    ),
    "state": ("State", lambda h: h == "STATE"),
    "locality_number": ("Locality Number", lambda h: h == "LOCALITY NUMBER"),
    "locality_name": ("Locality Name", lambda h: h == "LOCALITY NAME"),
    # the unfloored work GPCI when the file has both (2026: "... (without 1.0 Floor)" and
    # "... (with 1.0 Floor)"); pricing applies pricing.work_gpci_floor by date of service
    "pw_gpci": ("PW GPCI", lambda h: "PW GPCI" in h and "WITH 1.0 FLOOR" not in h),
    "pe_gpci": ("PE GPCI", lambda h: "PE GPCI" in h),
    "mp_gpci": ("MP GPCI", lambda h: "MP GPCI" in h),
}
GPCI_DECIMALS = ("pw_gpci", "pe_gpci", "mp_gpci")

_MARKED_NAME = r"^(.*?)\s*(\*+)$"


def read_gpci(path: Path, year: int) -> pl.DataFrame:
    """CMS Addendum E (GPCIs by locality) as a frame with ``GPCI_COLUMNS``.

    ``locality`` is ``MAC-locality number`` (``10112-0``), the interchange format of
    ``practitioners.medicare_locality``. ``locality_name`` loses its ``*`` markers and
    ``footnote`` holds the footnote text they point to ('' when none).
    """
    path = Path(path)
    cells = read_cells(path)
    header = next(
        (
            i
            for i, row in enumerate(cells.rows)
            if any(normal(cell) == "LOCALITY NUMBER" for cell in row)
        ),
        None,
    )
    if header is None:
        raise FeeFileError(
            cells.name,
            None,
            "Locality Number",
            "no header row with a 'Locality Number' column (not a CMS GPCI file?)",
        )
    header_cells = cells.rows[header]
    names = [normal(cell) for cell in header_cells]
    positions: dict[str, int] = {}
    shown: dict[str, str] = {}
    for column, (label, matches) in GPCI_SOURCE_COLUMNS.items():
        index = next((j for j, name in enumerate(names) if matches(name)), None)
        if index is None and column == "pw_gpci":  # a file with the floored column only
            index = next((j for j, name in enumerate(names) if "PW GPCI" in name), None)
        if index is None:
            raise FeeFileError(cells.name, cells.lines[header], label, "required column is missing")
        positions[column] = index
        shown[column] = " ".join(header_cells[index].split())

    has_title = any(not is_blank(row) for row in cells.rows[:header])
    if has_title:
        title, _, title_line = find_title(cells, header)
        check_year(cells, title, title_line, year)
    else:  # a re-export without the title line: the year is in the column names
        title = (
            f"CY {year} GPCIs by Medicare locality (no title line; work GPCI column: "
            f"{shown['pw_gpci']})"
        )
        check_year(cells, shown["pw_gpci"], cells.lines[header], year, shown["pw_gpci"])

    frame = data_frame(cells, header + 1, positions)
    frame = frame.filter(~pl.all_horizontal(pl.col(c) == "" for c in positions))
    # MAC numbers with or without leading zeros (01182 / 1182) key the same locality
    frame = frame.with_columns(pl.col("mac").str.replace(r"^0+(\d)", "$1"))
    # lines with text in the first column only are notes: "MAC Assignments as of ...",
    # "*Work GPCI reflects a 1.5 floor in Alaska ..."
    others = [c for c in positions if positions[c] != min(positions.values())]
    first = next(c for c in positions if c not in others)
    is_note = pl.all_horizontal(pl.col(c) == "" for c in others)
    notes = frame.filter(is_note)
    frame = frame.filter(~is_note)
    if frame.height == 0:
        raise FeeFileError(cells.name, cells.lines[header], None, "no data rows below the header")

    footnotes = (
        notes.select(pl.col(first).str.extract_groups(r"^(\*+)\s*(.*)$"))
        .unnest(first)
        .drop_nulls()
        .unique(subset="1", keep="first", maintain_order=True)
    )
    footnote_text: dict[str, str] = dict(
        zip(footnotes.get_column("1").to_list(), footnotes.get_column("2").to_list(), strict=True)
    )

    marked = pl.col("locality_name").str.extract_groups(_MARKED_NAME)
    frame = frame.with_columns(
        marked.struct.field("1").alias("__plain_name"),
        marked.struct.field("2").fill_null("").alias("__marker"),
    ).with_columns(
        pl.col("__marker")
        .replace_strict(footnote_text, default=None, return_dtype=pl.String())
        .alias("__footnote"),
        (pl.col("mac") + "-" + pl.col("locality_number").str.replace(r"^0+(\d)", "$1")).alias(
            "locality"
        ),
    )

    problems: list[Problem | None] = [
        first_problem(frame, pl.col("mac") == "", "mac", shown["mac"], "MAC number is empty"),
        first_problem(
            frame,
            ~pl.col("locality_number").str.contains(r"^\d{1,9}$"),
            "locality_number",
            shown["locality_number"],
            "locality number is not a whole number",
        ),
        first_problem(
            frame,
            # a re-export without the title and footnote lines keeps bare markers
            pl.lit(has_title) & (pl.col("__marker") != "") & pl.col("__footnote").is_null(),
            "locality_name",
            shown["locality_name"],
            "footnote marker has no footnote below the table",
        ),
        *decimal_problems(frame, {c: shown[c] for c in GPCI_DECIMALS}),
        duplicate_problem(
            frame, ["locality"], "locality_number", shown["locality_number"], "locality"
        ),
    ]
    raise_first(cells.name, problems)

    frame = non_negative_numbers(frame, GPCI_DECIMALS)
    return frame.select(
        pl.lit(year, dtype=pl.Int32()).alias("year"),
        "locality",
        "mac",
        pl.col("state").str.to_uppercase(),
        pl.col("locality_number").cast(pl.Int32()),
        pl.coalesce("__plain_name", "locality_name").alias("locality_name"),
        "pw_gpci",
        "pe_gpci",
        "mp_gpci",
        pl.col("__footnote").fill_null("").alias("footnote"),
        pl.lit(title, dtype=pl.String()).alias("release"),
        pl.lit(cells.name, dtype=pl.String()).alias("source_file"),
    )


def read_gpci_table(path: Path) -> pl.DataFrame:
    """A normalized GPCI table written from ``read_gpci`` (CSV), typed as ``GPCI_SCHEMA``."""
    return read_fee_table(path, GPCI_SCHEMA)


def empty_gpci_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=GPCI_SCHEMA)
