"""The care manager's worklist written for people: a terminal table, CSV, JSON, HTML.

The frame comes from ``billing_engine.services.worklist`` (columns ``WORKLIST_COLUMNS``);
this module only formats it. The terminal table has one section per care manager and
fits ``TABLE_WIDTH`` columns (cells cut with an ellipsis where they would not); the HTML
page (``templates/worklist.html.j2``) is self-contained and prints one care manager per
page.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from billing_engine.io.safe_files import csv_bytes
from billing_engine.services.worklist import DONE, OPEN, WORKLIST_COLUMNS
from reports import environment

FORMATS = ("table", "csv", "json", "html")
TABLE_WIDTH = 100  # a terminal's columns the table must fit
GAP = " "  # between the table's columns
ELLIPSIS = "…"
UNASSIGNED = "unassigned"  # the section of patients with no care manager found
TEMPLATE = "worklist.html.j2"


@dataclass(frozen=True)
class Column:
    """One column of the terminal table: its header, the frame's column, its widest
    cell and whether numbers are right-aligned."""

    header: str
    key: str
    width: int
    right: bool = False


TABLE_COLUMNS = (
    Column("patient", "patient_id", 10),
    Column("program", "program", 11),
    Column("code", "code", 11),
    Column("min", "minutes_counted", 3, right=True),
    Column("need", "minutes_needed", 4, right=True),
    Column("deadline", "deadline", 10),
    Column("days", "business_days_left", 4, right=True),
    Column("amount", "amount", 8, right=True),
    Column("contact", "last_contact", 10),
)
BLOCKERS = Column("blockers", "blockers", 0)  # takes the width the others leave


def _as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Every cell as text: dates ISO, amounts with 2 places, empty for null."""
    return frame.select(pl.all().cast(pl.String).fill_null(""))


def to_csv(frame: pl.DataFrame) -> str:
    """The worklist as CSV (``WORKLIST_COLUMNS``), text cells neutralized."""
    return csv_bytes(frame.select(WORKLIST_COLUMNS)).decode("utf-8")


def to_json(frame: pl.DataFrame) -> str:
    """The worklist as a JSON list of rows: dates ISO, amounts as decimal strings."""
    texts = {"deadline", "last_contact", "amount"}
    rows = frame.select(
        pl.col(c).cast(pl.String) if c in texts else pl.col(c) for c in WORKLIST_COLUMNS
    ).to_dicts()
    return json.dumps(rows, indent=2) + "\n"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + ELLIPSIS


def _line(cells: Sequence[str], columns: Sequence[Column]) -> str:
    parts = [
        _cut(cell, col.width).rjust(col.width)
        if col.right
        else _cut(cell, col.width).ljust(col.width)
        for cell, col in zip(cells, columns, strict=True)
    ]
    return GAP.join(parts).rstrip()


def _columns(width: int) -> tuple[Column, ...]:
    used = sum(c.width for c in TABLE_COLUMNS) + len(GAP) * len(TABLE_COLUMNS)
    return (*TABLE_COLUMNS, Column(BLOCKERS.header, BLOCKERS.key, max(width - used, 0)))


def _table_rows(frame: pl.DataFrame, columns: Sequence[Column]) -> list[str]:
    header = _line([c.header for c in columns], columns)
    rule = _line(["-" * c.width for c in columns], columns)
    text = _as_text(frame.select([c.key for c in columns]))
    return [header, rule, *(_line(row, columns) for row in text.iter_rows())]


def sections(frame: pl.DataFrame) -> list[tuple[str, pl.DataFrame]]:
    """The worklist split by care manager (unassigned last), in the frame's order."""
    owner = pl.col("care_manager_id").fill_null(UNASSIGNED)
    keyed = frame.with_columns(_owner=owner, _none=pl.col("care_manager_id").is_null())
    names = keyed.select("_owner", "_none").unique().sort("_none", "_owner")["_owner"]
    return [
        (name, keyed.filter(pl.col("_owner") == name).drop("_owner", "_none")) for name in names
    ]


def to_table(frame: pl.DataFrame, *, title: str, width: int = TABLE_WIDTH) -> str:
    """The worklist as text for a terminal of `width` columns: per care manager, the
    open work (by deadline, then amount) and apart the patients done for the month."""
    columns = _columns(width)
    lines = [_cut(title, width)]
    if frame.is_empty():
        return "\n".join([*lines, "", "nothing open and nothing billed"]) + "\n"
    for name, rows in sections(frame):
        opened = rows.filter(pl.col("status") == OPEN)
        done = rows.filter(pl.col("status") == DONE)
        lines += ["", _cut(f"{name}: {opened.height} open, {done.height} done", width)]
        if opened.height:
            lines += _table_rows(opened, columns)
        if done.height:
            lines += ["", "done this month (next threshold, if any):"]
            lines += _table_rows(done, columns)
    return "\n".join(lines) + "\n"


def html_view(frame: pl.DataFrame, *, title: str) -> dict[str, Any]:
    """The HTML page's view model: the title, the headers and one section per care manager."""
    view_sections = []
    for name, rows in sections(frame):
        text = _as_text(rows)
        view_sections.append(
            {
                "name": name,
                "open": text.filter(pl.col("status") == OPEN).to_dicts(),
                "done": text.filter(pl.col("status") == DONE).to_dicts(),
            }
        )
    return {"title": title, "sections": view_sections}


def to_html(frame: pl.DataFrame, *, title: str) -> str:
    """A print-friendly page (no external resources), one section per care manager."""
    template = environment().overlay(autoescape=True).get_template(TEMPLATE)
    return template.render(**html_view(frame, title=title))


def render(frame: pl.DataFrame, fmt: str, *, title: str) -> str:
    """The worklist in `fmt` (one of ``FORMATS``)."""
    if fmt == "csv":
        return to_csv(frame)
    if fmt == "json":
        return to_json(frame)
    if fmt == "html":
        return to_html(frame, title=title)
    return to_table(frame, title=title)
