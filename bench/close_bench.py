#!/usr/bin/env python
"""Benchmark the monthly close on a synthetic practice (see bench/README.md).

    python bench/close_bench.py --patients 100000 [--month 2025-12] [--runs 3]
    python bench/close_bench.py --patients 100000 --db postgresql+psycopg://host/db

1. The bundle comes from ``run_bench.ensure_bundle`` (``billing synth``, kept under
   ``bench/data``). It is imported once into a SQLite store (``billing import``; timed and
   reported, not part of the close); each run starts from a copy of that file. With
   ``--db`` (PostgreSQL) the database is emptied and the bundle imported before each run.
2. Each run is the whole close, each step a child process as a billing office types it:
   ``billing close start M``, ``approve M --all``, ``lock M``, ``export M --out DIR``;
   wall time and peak RSS (``os.wait4``) per step, and the total start -> export.
3. Prints a table and the medians, writes ``bench/results/close-latest.json``.

Target (issue 12): the full close (start -> export) of the 100,000-patient practice in
at most 60 s on this 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run_bench import billing_command, ensure_bundle, measure

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
STEPS = ("start", "approve", "lock", "export")
TARGET_SECONDS = 60.0


def _reset_postgres(url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP SCHEMA public CASCADE"))
        connection.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


def _step(name: str, month: str, out: Path) -> list[str]:
    return {
        "start": ["close", "start", month],
        "approve": ["close", "approve", month, "--all"],
        "lock": ["close", "lock", month],
        "export": ["close", "export", month, "--out", str(out)],
    }[name]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--month", default="2025-12")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--db", default=None, help="a PostgreSQL URL (emptied each run)")
    args = parser.parse_args(argv)

    bundle, _ = ensure_bundle(args.patients, args.seed, args.month)
    work = Path(tempfile.mkdtemp(prefix="close-bench-"))
    billing = billing_command()
    template = work / "imported.db"
    import_seconds: float | None = None
    if args.db is None:
        import_seconds, _ = measure(
            [*billing, "import", str(bundle), "--db", f"sqlite:///{template}"], work / "import.log"
        )
    runs: list[dict[str, float]] = []
    for number in range(1, args.runs + 1):
        if args.db is None:
            store = work / f"run{number}.db"
            shutil.copyfile(template, store)
            url = f"sqlite:///{store}"
        else:
            _reset_postgres(args.db)
            url = args.db
            import_seconds, _ = measure(
                [*billing, "import", str(bundle), "--db", url], work / "import.log"
            )
        run: dict[str, float] = {}
        for name in STEPS:
            command = [*billing, *_step(name, args.month, work / f"claims{number}"), "--db", url]
            seconds, rss_mb = measure(command, work / f"{name}{number}.log")
            run[f"{name}_s"] = seconds
            run[f"{name}_mb"] = rss_mb
        run["total_s"] = sum(run[f"{n}_s"] for n in STEPS)
        runs.append(run)
        print(
            f"run {number}: "
            + "  ".join(f"{n} {run[f'{n}_s']:.2f} s / {run[f'{n}_mb']:.0f} MB" for n in STEPS)
            + f"  total {run['total_s']:.2f} s",
            flush=True,
        )
    median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(
        "median: "
        + "  ".join(f"{n} {median[f'{n}_s']:.2f} s" for n in STEPS)
        + f"  total {median['total_s']:.2f} s (target <= {TARGET_SECONDS:.0f} s); "
        + f"peak {max(median[f'{n}_mb'] for n in STEPS):.0f} MB"
        + (f"; import {import_seconds:.2f} s" if import_seconds is not None else "")
    )
    claims = work / f"claims{args.runs}" / "manifest.json"
    manifest = json.loads(claims.read_text()) if claims.is_file() else {}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "close-latest.json").write_text(
        json.dumps(
            {
                "patients": args.patients,
                "month": args.month,
                "store": "postgresql" if args.db else "sqlite",
                "runs": runs,
                "median": median,
                "import_s": import_seconds,
                "claims": manifest.get("claims"),
                "lines": manifest.get("lines"),
                "machine": {"cpus": shutil.os.cpu_count(), "platform": platform.platform()},
            },
            indent=2,
        )
    )
    shutil.rmtree(work, ignore_errors=True)
    return 0 if median["total_s"] <= TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
