#!/usr/bin/env python
"""Benchmark ``billing evaluate`` on a synthetic practice (see bench/README.md).

    python bench/run_bench.py --patients 100000 [--month 2025-12] [--runs 3] [--keep]

1. Generates the bundle with ``billing synth`` into ``bench/data/p<N>`` (``p<N>-s<seed>``
   for a seed other than 7), unless that folder already holds the bundle for the same
   patients, seed and month (``.synth.json`` records them).
2. Runs ``billing evaluate <bundle> --month <month> --out bench/results/...`` as a child
   process ``--runs`` times; each child is reaped with ``os.wait4`` so its own peak RSS
   (``ru_maxrss``) is measured, with its wall time.
3. Prints run, wall seconds, peak RSS (MB), input rows (all CSV rows) and rows/s, plus
   the medians, and writes ``bench/results/latest.json``.

Exit status: 1 if a run fails, or with ``--check`` if a median misses a target.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / "data"
RESULTS_DIR = BENCH_DIR / "results"
MARKER = ".synth.json"
DEFAULT_SEED = 7
TARGET_WALL_SECONDS = 15.0
TARGET_RSS_MB = 3072.0  # 3 GB


@dataclass(frozen=True)
class Run:
    run: int
    wall_seconds: float
    peak_rss_mb: float
    input_rows: int
    rows_per_second: float


def billing_command() -> list[str]:
    """The ``billing`` CLI of this interpreter (same as the installed entry point)."""
    return [sys.executable, "-m", "cli.main"]


def data_folder(patients: int, seed: int) -> Path:
    name = f"p{patients}" if seed == DEFAULT_SEED else f"p{patients}-s{seed}"
    return DATA_DIR / name


def csv_row_counts(folder: Path) -> dict[str, int]:
    """Data rows per ``<table>.csv`` (lines minus the header; the generator writes no
    line breaks inside cells)."""
    counts: dict[str, int] = {}
    for path in sorted(folder.glob("*.csv")):
        with path.open("rb") as handle:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
        counts[path.stem] = max(lines - 1, 0)
    return counts


def generator_version() -> str:
    """A digest of the generator's source and vocabulary: a change regenerates the data."""
    spec = importlib.util.find_spec("billing_engine.synth")
    if spec is None or spec.origin is None:
        return "unknown"
    digest = hashlib.sha256()
    for source in sorted(Path(spec.origin).parent.glob("*.*")):  # its modules and vocabulary
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def ensure_bundle(patients: int, seed: int, month: str) -> tuple[Path, float | None]:
    """The bundle folder, generated unless already there; returns (folder, synth seconds)."""
    folder = data_folder(patients, seed)
    marker = folder / MARKER
    wanted: dict[str, object] = {
        "patients": patients,
        "seed": seed,
        "end_month": month,
        "generator": generator_version(),
    }
    if marker.exists():
        recorded = json.loads(marker.read_text())
        if {k: recorded.get(k) for k in wanted} == wanted:
            print(f"bundle: {folder} (already generated)")
            return folder, None
        marker.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    command = [
        *billing_command(),
        "synth",
        "--patients",
        str(patients),
        "--seed",
        str(seed),
        "--end-month",
        month,
        "--out",
        str(folder),
        "--force",  # the bench's own data folder, regenerated in place
    ]
    print(f"bundle: generating {folder} ...", flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    marker.write_text(json.dumps({**wanted, "row_counts": csv_row_counts(folder)}, indent=2) + "\n")
    print(f"bundle: generated in {seconds:.1f} s")
    return folder, seconds


def measure(command: list[str], log: Path) -> tuple[float, float]:
    """Run `command`; return (wall seconds, peak RSS in MB of that child)."""
    with log.open("wb") as output:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    if process.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-20:]
        raise RuntimeError(
            f"{' '.join(command)} exited with {process.returncode}:\n" + "\n".join(tail)
        )
    # ru_maxrss: kilobytes on Linux, bytes on macOS
    divisor = 1024 * 1024 if sys.platform == "darwin" else 1024
    return wall, usage.ru_maxrss / divisor


def range_arguments(parser: argparse.ArgumentParser, patients: int) -> None:
    """--patients, --seed, --from, --to, --runs and --keep of the range benchmarks."""
    parser.add_argument("--patients", type=int, default=patients, help=f"default: {patients}")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--from", dest="first", default="2025-01")
    parser.add_argument("--to", dest="last", default="2025-12")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the store and outputs")


@dataclass(frozen=True)
class ImportedStore:
    """The synthetic bundle imported into a new SQLite store in a scratch folder."""

    work: Path
    url: str
    billing: list[str]
    input_rows: int
    import_seconds: float


def import_store(patients: int, seed: int, last: str, prefix: str) -> ImportedStore:
    """``ensure_bundle`` (last month `last`) imported with ``billing import``, timed."""
    import tempfile

    bundle, _ = ensure_bundle(patients, seed, last)
    input_rows = sum(csv_row_counts(bundle).values())
    work = Path(tempfile.mkdtemp(prefix=prefix))
    billing = billing_command()
    url = f"sqlite:///{work / 'store.db'}"
    seconds, rss_mb = measure([*billing, "import", str(bundle), "--db", url], work / "import.log")
    print(f"import: {seconds:.2f} s, {rss_mb:.0f} MB", flush=True)
    return ImportedStore(work, url, billing, input_rows, seconds)


def finish(result: dict[str, object], name: str, store: ImportedStore, keep: bool) -> None:
    """Write ``bench/results/<name>`` (with the machine), then keep or remove the store."""
    result["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform()}
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / name).write_text(json.dumps(result, indent=2) + "\n")
    if keep:
        print(f"kept {store.work}")
    else:
        shutil.rmtree(store.work, ignore_errors=True)


def print_table(runs: list[Run], median: Run) -> None:
    header = f"{'run':>6} {'wall s':>8} {'peak RSS MB':>12} {'input rows':>12} {'rows/s':>10}"
    print(header)
    print("-" * len(header))
    for r in [*runs, median]:
        label = "median" if r is median else str(r.run)
        print(
            f"{label:>6} {r.wall_seconds:>8.2f} {r.peak_rss_mb:>12.1f} "
            f"{r.input_rows:>12,} {r.rows_per_second:>10,.0f}"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "Benchmark billing evaluate.").strip().splitlines()[0]
    )
    parser.add_argument("--patients", type=int, default=100_000, help="default: 100000")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="default: 7")
    parser.add_argument("--month", default="2025-12", help="month evaluated (and end month)")
    parser.add_argument("--runs", type=int, default=3, help="evaluate runs (default: 3)")
    parser.add_argument("--keep", action="store_true", help="keep each run's output folder and log")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when a median misses its target"
    )
    args = parser.parse_args(argv)
    if args.patients < 1 or args.runs < 1:
        parser.error("--patients and --runs must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    folder, synth_seconds = ensure_bundle(args.patients, args.seed, args.month)
    row_counts = csv_row_counts(folder)
    input_rows = sum(row_counts.values())
    results = RESULTS_DIR / f"{folder.name}-{args.month}"
    results.mkdir(parents=True, exist_ok=True)

    runs: list[Run] = []
    for number in range(1, args.runs + 1):
        out = results / f"run{number}"
        shutil.rmtree(out, ignore_errors=True)
        command = [
            *billing_command(),
            "evaluate",
            str(folder),
            "--month",
            args.month,
            "--out",
            str(out),
        ]
        try:
            wall, rss = measure(command, results / f"run{number}.log")
        except RuntimeError as exc:
            print(exc, file=sys.stderr)
            return 1
        runs.append(Run(number, wall, rss, input_rows, input_rows / wall))
        print(f"run {number}: {wall:.2f} s, {rss:.0f} MB", flush=True)
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)
            (results / f"run{number}.log").unlink(missing_ok=True)
    if not args.keep:
        with_contents = any(results.iterdir())
        if not with_contents:
            results.rmdir()

    wall_median = statistics.median(r.wall_seconds for r in runs)
    median = Run(
        0,
        wall_median,
        statistics.median(r.peak_rss_mb for r in runs),
        input_rows,
        input_rows / wall_median,
    )
    print()
    print(f"billing evaluate {folder} --month {args.month}  ({args.patients:,} patients)")
    print_table(runs, median)
    wall_ok = median.wall_seconds <= TARGET_WALL_SECONDS
    rss_ok = median.peak_rss_mb <= TARGET_RSS_MB
    print(
        f"targets: wall <= {TARGET_WALL_SECONDS:.0f} s: {'ok' if wall_ok else 'MISSED'}; "
        f"peak RSS <= {TARGET_RSS_MB:.0f} MB: {'ok' if rss_ok else 'MISSED'} "
        f"({os.cpu_count()} CPUs)"
    )

    report = {
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "patients": args.patients,
        "seed": args.seed,
        "month": args.month,
        "bundle": str(folder),
        "synth_seconds": synth_seconds,
        "input_rows": input_rows,
        "input_row_counts": row_counts,
        "runs": [asdict(r) for r in runs],
        "median": {k: v for k, v in asdict(median).items() if k != "run"},
        "targets": {
            "wall_seconds": TARGET_WALL_SECONDS,
            "peak_rss_mb": TARGET_RSS_MB,
            "wall_ok": wall_ok,
            "rss_ok": rss_ok,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    latest = RESULTS_DIR / "latest.json"
    latest.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {latest}")
    if args.check and not (wall_ok and rss_ok):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
