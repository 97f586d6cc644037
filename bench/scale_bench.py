#!/usr/bin/env python
"""The scale run: one table of wall, CPU and peak RSS by practice size.

    python bench/scale_bench.py --sizes 10000,100000,300000,1000000 [--month 2025-12]
        [--ray-at 100000] [--no-ray] [--json bench/results/scale-latest.json]

For each size the synthetic bundle is generated once into bench/data/p<N> (cached, as
run_bench.ensure_bundle; past 100,000 patients ``billing synth`` draws it a part at a
time in bounded memory) and these run as child processes, each reaped with
``os.wait4`` so its own CPU time (user + system) and peak RSS are measured:

- ``read``: polars reading every CSV table of the bundle, nothing else (the floor);
- ``duckdb-ccm``: bench/duckdb_ccm.py, an analyst's DuckDB SQL for CCM alone (the peer);
- ``evaluate``: ``billing evaluate BUNDLE --month M`` (patient parts of 100,000);
- ``evaluate-ccm``: the same with ``--families ccm``;
- ``ray``: ``billing evaluate --engine ray`` (a local Ray runtime, its start included),
  at the ``--ray-at`` size only.

Ratios printed: evaluate / read, evaluate-ccm / duckdb-ccm, ray / evaluate.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_bench import RESULTS_DIR, billing_command, ensure_bundle

READ_FLOOR = (
    "import sys, pathlib, polars as pl\n"
    "n = sum(pl.read_csv(p, infer_schema_length=10000).height "
    "for p in sorted(pathlib.Path(sys.argv[1]).glob('*.csv')))\n"
    "print(n, 'rows')\n"
)


@dataclass(frozen=True)
class Measured:
    patients: int
    step: str
    wall_s: float
    cpu_s: float
    peak_rss_mb: float


def measure(command: list[str], log: Path) -> tuple[float, float, float]:
    with log.open("wb") as output:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise RuntimeError(f"{' '.join(command)} failed:\n" + "\n".join(tail))
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def steps(folder: Path, month: str, out: Path, with_ray: bool) -> dict[str, list[str]]:
    evaluate = [*billing_command(), "evaluate", str(folder), "--month", month]
    bench = Path(__file__).resolve().parent
    found = {
        "read": [sys.executable, "-c", READ_FLOOR, str(folder)],
        "duckdb-ccm": [sys.executable, str(bench / "duckdb_ccm.py"), str(folder), "--month", month],
        "evaluate": [*evaluate, "--out", str(out / "all")],
        "evaluate-ccm": [*evaluate, "--families", "ccm", "--out", str(out / "ccm")],
    }
    if with_ray:
        found["ray"] = [*evaluate, "--engine", "ray", "--out", str(out / "ray")]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,300000,1000000")
    parser.add_argument("--month", default="2025-12")
    parser.add_argument("--ray-at", type=int, default=100_000)
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "scale-latest.json")
    args = parser.parse_args(argv)
    rows: list[Measured] = []
    for patients in [int(s) for s in args.sizes.split(",")]:
        folder, _ = ensure_bundle(patients, 7, args.month)
        with tempfile.TemporaryDirectory(prefix="scale-") as temp:
            out = Path(temp)
            with_ray = not args.no_ray and patients == args.ray_at
            for step, command in steps(folder, args.month, out, with_ray).items():
                wall, cpu, rss = measure(command, out / f"{step}.log")
                rows.append(Measured(patients, step, wall, cpu, rss))
                print(f"{patients:>9,} {step:<13} {wall:7.2f} s  cpu {cpu:7.2f} s  "
                      f"{rss:8.0f} MB", flush=True)  # fmt: skip
                shutil.rmtree(out / step.removeprefix("evaluate-"), ignore_errors=True)
    print_table(rows)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    return 0


def print_table(rows: list[Measured]) -> None:
    by = {(r.patients, r.step): r for r in rows}
    print()
    print("| patients | step | wall s | CPU s | peak RSS MB |")
    print("|---:|---|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r.patients:,} | {r.step} | {r.wall_s:.2f} | {r.cpu_s:.2f} | {r.peak_rss_mb:,.0f} |"
        )
    print()
    print("| patients | evaluate / read | evaluate-ccm / duckdb-ccm | ray / evaluate |")
    print("|---:|---:|---:|---:|")
    for patients in sorted({r.patients for r in rows}):

        def ratio(a: str, b: str, p: int = patients) -> str:
            x, y = by.get((p, a)), by.get((p, b))
            return f"{x.wall_s / y.wall_s:.2f}" if x and y else "-"

        print(f"| {patients:,} | {ratio('evaluate', 'read')} | "
              f"{ratio('evaluate-ccm', 'duckdb-ccm')} | {ratio('ray', 'evaluate')} |")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
