#!/usr/bin/env python
"""Benchmark finance's workbook on a synthetic practice (see bench/README.md).

    python bench/workbook_bench.py --patients 100000 [--from 2025-01] [--to 2025-12]

1. The bundle comes from ``run_bench.ensure_bundle`` (``billing synth``, kept under
   ``bench/data``; its last month is ``--to``). It is imported once into a SQLite store
   (``billing import``; timed and reported, not part of the workbook).
2. ``billing report excel --from F --to T --out FILE.xlsx --db sqlite:///...`` runs
   ``--runs`` times (default 1: the machine is shared) as a child process, reaped with
   ``os.wait4`` so its own peak RSS is measured, with its wall time.
3. Prints the times, the peak RSS and the workbook's size and sheets' rows, and writes
   ``bench/results/workbook-latest.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run_bench import finish, import_store, measure, range_arguments


def sheet_rows(path: Path) -> dict[str, int]:
    """Rows of each sheet, read from the sheets' ``<dimension>`` without loading them."""
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True)
    try:
        return {sheet.title: int(sheet.max_row or 0) for sheet in book.worksheets}
    finally:
        book.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    range_arguments(parser, 100_000)
    args = parser.parse_args(argv)

    store = import_store(args.patients, args.seed, args.last, "workbook-bench-")
    work, url, billing = store.work, store.url, store.billing
    input_rows, import_seconds = store.input_rows, store.import_seconds
    out = work / "finance.xlsx"
    runs: list[dict[str, float]] = []
    for number in range(1, args.runs + 1):
        command = [
            *billing, "report", "excel", "--from", args.first, "--to", args.last,
            "--out", str(out), "--db", url,
        ]  # fmt: skip
        seconds, rss_mb = measure(command, work / f"report{number}.log")
        runs.append({"wall_s": seconds, "peak_rss_mb": rss_mb})
        print(f"run {number}: {seconds:.2f} s, {rss_mb:.0f} MB", flush=True)
    median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    rows = sheet_rows(out)
    with zipfile.ZipFile(out) as archive:
        unpacked = sum(info.file_size for info in archive.infolist())
    result = {
        "patients": args.patients,
        "from": args.first,
        "to": args.last,
        "input_rows": input_rows,
        "import_s": import_seconds,
        "runs": runs,
        "median": median,
        "workbook_mb": out.stat().st_size / 2**20,
        "unpacked_mb": unpacked / 2**20,
        "sheet_rows": rows,
    }
    print(json.dumps({k: result[k] for k in ("median", "workbook_mb", "sheet_rows")}, indent=2))
    finish(result, "workbook-latest.json", store, args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
