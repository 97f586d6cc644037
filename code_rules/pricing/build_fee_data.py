"""Build the engine's shipped fee data from the CMS physician fee schedule files.

Sources: the CMS National Physician Fee Schedule Relative Value File (``PPRRVUyy``,
the January release of the year) and Addendum E of the final rule (GPCIs by Medicare
locality), both in their original CMS layout. They are read by
``billing_engine.io.cms_pfs`` / ``cms_gpci`` (the same reader as ``billing fees import-pfs`` /
``import-gpci``) and written as normalized CSV files next to this script:

- ``data/pfs_rvu_<year>.csv``: the RVU rows (``PFS_COLUMNS``) of the codes the engine
  references, i.e. every string in the parameter values under ``code_rules/`` that looks
  like a HCPCS code (``^(\\d{4}[0-9A-Z]|[A-Z]\\d{4})$``) and is in the file; rows without
  a modifier only (the global service);
- ``data/gpci_<year>.csv``: every locality (``GPCI_COLUMNS``);
- ``data/sources.yaml``: per written file its year, kind, release, the original file's
  name and sha256, the row count and the command that derived it.

Run from the repository root::

    python -m code_rules.pricing.build_fee_data --pfs PPRRVU.csv --gpci GPCI.csv --year 2025
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from billing_engine.errors import BillingError
from billing_engine.io.cms_gpci import read_gpci
from billing_engine.io.cms_pfs import read_pfs
from billing_engine.io.safe_files import write_csv
from billing_engine.io.strict_yaml import load_path
from code_rules.rulebook import shipped_parameters

DATA = Path(__file__).resolve().with_name("data")
SOURCES = DATA / "sources.yaml"
HCPCS = re.compile(r"^(\d{4}[0-9A-Z]|[A-Z]\d{4})$")
COMMAND = "python -m code_rules.pricing.build_fee_data"


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple | set):
        for item in value:
            yield from _strings(item)


def referenced_codes(parameters: Iterable[Any] | None = None) -> list[str]:
    """Every HCPCS-shaped string in the values of the engine's parameters, sorted."""
    found: set[str] = set()
    for parameter in parameters if parameters is not None else shipped_parameters():
        for dated in parameter.values:
            found.update(s.strip().upper() for s in _strings(dated.value))
    return sorted(code for code in found if HCPCS.match(code))


def build_pfs(source: Path, year: int, codes: Iterable[str]) -> pl.DataFrame:
    """The normalized RVU rows of ``codes`` without a modifier, sorted by code."""
    frame = read_pfs(source, year)
    return frame.filter(pl.col("hcpcs").is_in(list(codes)) & (pl.col("modifier") == "")).sort(
        "hcpcs"
    )


def build_gpci(source: Path, year: int) -> pl.DataFrame:
    """Every locality of the GPCI file, sorted by locality."""
    return read_gpci(source, year).sort("locality")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _shown(path: Path) -> str:
    """The path as typed from the repository root (relative when that is shorter)."""
    try:
        relative = os.path.relpath(path.resolve(), Path.cwd())
    except ValueError:  # another drive
        return str(path)
    return relative if len(relative) < len(str(path.resolve())) else str(path.resolve())


def _entry(kind: str, frame: pl.DataFrame, source: Path, year: int, command: str) -> dict[str, Any]:
    return {
        "year": year,
        "kind": kind,
        "release": frame["release"][0] if frame.height else "",
        "source_file": source.name,
        "source_sha256": sha256(source),
        "rows": frame.height,
        "command": command,
    }


def write(pfs: Path, gpci: Path, year: int, out: Path = DATA) -> dict[str, dict[str, Any]]:
    """Write both CSV files and update ``sources.yaml`` in ``out``; returns the entries."""
    codes = referenced_codes()
    pfs_frame = build_pfs(pfs, year, codes)
    gpci_frame = build_gpci(gpci, year)
    command = f"{COMMAND} --pfs {_shown(pfs)} --gpci {_shown(gpci)} --year {year}"

    out.mkdir(parents=True, exist_ok=True)
    pfs_name, gpci_name = f"pfs_rvu_{year}.csv", f"gpci_{year}.csv"
    write_csv(pfs_frame, out / pfs_name)
    write_csv(gpci_frame, out / gpci_name)

    sources_file = out / SOURCES.name
    doc: dict[str, Any] = {}
    if sources_file.is_file():
        doc = load_path(sources_file) or {}
    files: dict[str, dict[str, Any]] = dict(doc.get("files") or {})
    written = {
        pfs_name: _entry("pfs", pfs_frame, pfs, year, command),
        gpci_name: _entry("gpci", gpci_frame, gpci, year, command),
    }
    files.update(written)
    header = (
        "# Provenance of the fee data in this folder; written by\n"
        "# code_rules/pricing/build_fee_data.py (do not edit by hand).\n"
    )
    body = yaml.safe_dump(
        {"files": dict(sorted(files.items()))}, sort_keys=False, allow_unicode=True, width=1000
    )
    sources_file.write_text(header + body, encoding="utf-8")
    missing = sorted(set(codes) - set(pfs_frame["hcpcs"].to_list()))
    if missing:
        print(f"not in the RVU file (not priced from it): {', '.join(missing)}")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=COMMAND, description="Derive the shipped fee data from the CMS files."
    )
    parser.add_argument("--pfs", type=Path, required=True, help="CMS RVU file (PPRRVUyy .csv)")
    parser.add_argument("--gpci", type=Path, required=True, help="CMS GPCI file (Addendum E)")
    parser.add_argument("--year", type=int, required=True, help="the fee schedule year")
    args = parser.parse_args(argv)
    try:
        written = write(args.pfs, args.gpci, args.year)
    except BillingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, entry in written.items():
        print(f"wrote {entry['rows']} rows to {DATA / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
