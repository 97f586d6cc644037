#!/usr/bin/env python
"""The scale run: one table of wall, CPU and peak RSS by practice size.

    python bench/scale_bench.py --sizes 10000,100000,300000,1000000 [--month 2025-12]
        [--ray-at 100000] [--no-ray] [--store-at 100000,1000000]
        [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/bench]
        [--json bench/results/scale-latest.json]

For each size the synthetic bundle is generated once into bench/data/p<N> (cached, as
run_bench.ensure_bundle; past 100,000 patients ``billing synth`` draws it a part at a
time in bounded memory) and these run as child processes, each reaped with
``os.wait4`` so its own CPU time (user + system) and peak RSS are measured:

- ``read``: polars reading every CSV table of the bundle, nothing else (the floor);
- ``duckdb-ccm``: bench/duckdb_ccm.py, an analyst's DuckDB SQL for CCM alone (the peer);
- ``evaluate``: ``billing evaluate BUNDLE --month M`` (patient parts of 200,000);
- ``evaluate-ccm``: the same with ``--families ccm``;
- ``ray``: ``billing evaluate --engine ray`` (a local Ray runtime, its start included),
  at the ``--ray-at`` size only;
- at the ``--store-at`` sizes: ``import-sqlite`` (``billing import`` into a fresh SQLite
  file), ``evaluate-sqlite`` (``billing evaluate --db`` of it), and with ``--pg-url``
  (a server database the run may empty) ``import-pg`` and ``evaluate-pg``.

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


def store_steps(folder: Path, month: str, out: Path, pg_url: str | None) -> dict[str, list[str]]:
    """Import into a fresh store, then evaluate from it (SQLite; PostgreSQL with a URL)."""
    billing = billing_command()
    stores = {"sqlite": f"sqlite:///{out / 'store.db'}"}
    if pg_url:
        stores["pg"] = pg_url
    found: dict[str, list[str]] = {}
    for name, url in stores.items():
        found[f"import-{name}"] = [*billing, "import", str(folder), "--db", url]
        found[f"evaluate-{name}"] = [
            *billing, "evaluate", "--db", url, "--month", month, "--out", str(out / name)
        ]  # fmt: skip
    return found


def empty_pg(url: str) -> None:
    """Drop every table of the bench database (its schema), so the import starts fresh."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP SCHEMA public CASCADE")
        connection.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,300000,1000000")
    parser.add_argument("--month", default="2025-12")
    parser.add_argument("--ray-at", type=int, default=100_000)
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--store-at", default="", help="sizes to import and evaluate from a store")
    parser.add_argument("--pg-url", default=None, help="PostgreSQL database to use (emptied!)")
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "scale-latest.json")
    args = parser.parse_args(argv)
    rows: list[Measured] = []
    for patients in [int(s) for s in args.sizes.split(",")]:
        folder, _ = ensure_bundle(patients, 7, args.month)
        with tempfile.TemporaryDirectory(prefix="scale-") as temp:
            out = Path(temp)
            with_ray = not args.no_ray and patients == args.ray_at
            planned = steps(folder, args.month, out, with_ray)
            if str(patients) in args.store_at.split(","):
                planned |= store_steps(folder, args.month, out, args.pg_url)
            for step, command in planned.items():
                if step == "import-pg":
                    empty_pg(args.pg_url)
                wall, cpu, rss = measure(command, out / f"{step}.log")
                rows.append(Measured(patients, step, wall, cpu, rss))
                print(f"{patients:>9,} {step:<13} {wall:7.2f} s  cpu {cpu:7.2f} s  "
                      f"{rss:8.0f} MB", flush=True)  # fmt: skip
                if step.startswith("evaluate"):
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
    print(
        "| patients | evaluate / read | evaluate-ccm / duckdb-ccm | ray / evaluate "
        "| evaluate-sqlite / evaluate | evaluate-pg / evaluate |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for patients in sorted({r.patients for r in rows}):

        def ratio(a: str, b: str, p: int = patients) -> str:
            x, y = by.get((p, a)), by.get((p, b))
            return f"{x.wall_s / y.wall_s:.2f}" if x and y else "-"

        cells = [
            ratio("evaluate", "read"),
            ratio("evaluate-ccm", "duckdb-ccm"),
            ratio("ray", "evaluate"),
            ratio("evaluate-sqlite", "evaluate"),
            ratio("evaluate-pg", "evaluate"),
        ]
        print(f"| {patients:,} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
