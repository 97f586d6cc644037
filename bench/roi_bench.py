#!/usr/bin/env python
"""Benchmark the care-manager ROI on a synthetic practice (see bench/README.md).

    python bench/roi_bench.py --patients 10000 [--from 2025-01] [--to 2025-12] [--runs 1]

1. The bundle comes from ``run_bench.ensure_bundle`` (``billing synth``, kept under
   ``bench/data``; its last month is ``--to``), imported once into a SQLite store
   (timed and reported, not part of the ROI).
2. ``billing revenue --from F --to T`` and ``billing roi --from F --to T --format csv
   --out roi.xlsx`` run ``--runs`` times each, in turn, as child processes (wall time and
   the child's own peak RSS, ``os.wait4``). ROI evaluates every month as revenue does,
   so the difference is what attribution, the model and the workbook cost.
3. Prints the medians and the ratio, and writes ``bench/results/roi-latest.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run_bench import finish, import_store, measure, range_arguments


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    range_arguments(parser, 10_000)
    args = parser.parse_args(argv)

    store = import_store(args.patients, args.seed, args.last, "roi-bench-")
    work, url, billing = store.work, store.url, store.billing
    input_rows, import_seconds = store.input_rows, store.import_seconds
    span = ["--from", args.first, "--to", args.last, "--db", url]
    commands = {
        "revenue": [*billing, "revenue", *span],
        "roi": [*billing, "roi", *span, "--format", "csv", "--out", str(work / "roi.xlsx")],
    }
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in commands}
    for number in range(1, args.runs + 1):
        for name, command in commands.items():
            seconds, rss_mb = measure(command, work / f"{name}{number}.log")
            runs[name].append({"wall_s": seconds, "peak_rss_mb": rss_mb})
            print(f"{name} run {number}: {seconds:.2f} s, {rss_mb:.0f} MB", flush=True)
    median = {
        name: {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        for name, rows in runs.items()
    }
    ratio = median["roi"]["wall_s"] / median["revenue"]["wall_s"]
    result = {
        "patients": args.patients,
        "from": args.first,
        "to": args.last,
        "input_rows": input_rows,
        "import_s": import_seconds,
        "runs": runs,
        "median": median,
        "roi_over_revenue": ratio,
    }
    print(json.dumps({k: result[k] for k in ("median", "roi_over_revenue")}, indent=2))
    finish(result, "roi-latest.json", store, args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
