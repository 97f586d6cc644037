"""The files of ``billing evaluate``: its tables (``engine.frames``) written as one folder.

CSV or JSON, each table with the run's id, formula-like text neutralized, and a
``manifest.json`` naming what the run's numbers rest on (docs/interchange.md, "Outputs").
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl

from billing_engine.engine.frames import FORMATS
from billing_engine.engine.pipeline import EvaluationResult
from billing_engine.errors import ConfigError
from billing_engine.io.safe_files import OutputFile, csv_output, publish_folder


def _text(frame: pl.DataFrame) -> pl.DataFrame:
    """Dates ISO, decimals with 2 places, everything else as is."""
    return frame.with_columns(
        [pl.col(c).cast(pl.String) for c, t in frame.schema.items() if t == pl.Date()]
    )


RUN_ID_COLUMN = "run_id"
EVALUATE_FILES = (
    "claim_lines.csv", "gaps.csv", "revenue_by_payer.csv", "capitation.csv",
    "evaluation.json",
)  # fmt: skip


def with_run_id(frame: pl.DataFrame, run_id: str) -> pl.DataFrame:
    """`frame` with the ``run_id`` column appended after its columns."""
    return frame.with_columns(pl.lit(run_id, dtype=pl.String).alias(RUN_ID_COLUMN))


def software_version() -> str:
    """The installed billing-engine version, or ``unknown``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("billing-engine")
    except PackageNotFoundError:
        return "unknown"


def write_outputs(
    result: EvaluationResult,
    out_dir: Path,
    fmt: str = "csv",
    *,
    run_id: str,
    created_at: dt.datetime,
    store: str | None = None,
) -> list[Path]:
    """Write the run's tables as the folder `out_dir`, whole or not at all.

    Every table carries `run_id` (a last ``run_id`` column in each CSV, a top-level
    ``run_id`` in ``evaluation.json``); text cells that begin like a formula are
    neutralized. The folder gets a ``manifest.json`` (run id, month, as-of, rule-set
    version, source, `store` the run is recorded in, `created_at`, rows, bytes and
    SHA-256 of every file) and replaces a previous outputs folder only once complete
    (``safe_files.publish_folder``). Returns the paths of the tables' files.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    tables = {
        "claim_lines": _text(result.claim_lines),
        "gaps": _text(result.gaps),
        "revenue_by_payer": _text(result.revenue_by_payer),
        "capitation": _text(result.capitation),
    }
    header = {
        "run_id": run_id,
        "month": str(result.month),
        "as_of": result.as_of.isoformat(),
        "rule_set_version": result.rule_set_version,
        "source": result.source,
    }
    if fmt == "csv":
        files = [
            csv_output(f"{name}.csv", with_run_id(frame, run_id)) for name, frame in tables.items()
        ]
    else:
        document = {**header, **{name: frame.to_dicts() for name, frame in tables.items()}}
        text = json.dumps(document, indent=2, default=str) + "\n"
        rows = {name: frame.height for name, frame in tables.items()}
        files = [OutputFile("evaluation.json", text.encode("utf-8"), rows)]
    manifest = {
        **header,
        "command": "billing evaluate",
        "format": fmt,
        "store": store,
        "created_at": created_at.isoformat(),
        "software_version": software_version(),
        **run_sources(result),
    }
    return publish_folder(out_dir, files, manifest, replaceable=EVALUATE_FILES)


def run_sources(result: EvaluationResult) -> dict[str, Any]:
    """What the run's numbers rest on, beyond the shipped rules: fee estimates (a year
    without a CMS file, ``fee_estimated``), unpriced lines and parameter values carried
    forward past their verified date (``--allow-unverified``)."""
    gaps = result.gaps
    estimated = gaps.filter(pl.col("reason") == "fee_estimated")
    return {
        "fee_estimates": sorted(set(estimated["detail"].drop_nulls().to_list())),
        "fee_estimated_lines": estimated.height,
        "fee_not_found_lines": gaps.filter(pl.col("reason") == "fee_not_found").height,
        "allow_unverified": result.allow_unverified,
        "unverified_parameters": {
            name: through.isoformat()
            for name, through in sorted(result.unverified_parameters.items())
        },
    }
