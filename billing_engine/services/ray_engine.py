"""``billing evaluate --engine ray``: the patient parts evaluated as Ray Data tasks.

The same partition function as the in-process run (``engine.partitions``, then
``services.evaluation.evaluate`` on each part), placed on Ray instead of a loop: the
driver reads and checks the whole bundle (checks such as unique ids look across
patients), cuts it into parts, and hands Ray Data a dataset of one row per part — the
part's tables as Arrow IPC streams. ``map_batches`` (one part per batch, Arrow batches)
evaluates each part on a worker, which reads the streams into polars without a copy of
the columns and sends its output tables back the same way; the driver joins them as the
in-process run does (``partitions.merge``). Ray is an optional extra
(``pip install -e '.[ray]'``); without it this module says how to get it.

Where it runs: ``RAY_ADDRESS`` (or ``address``) names a running cluster
(``ray://head:10001`` or ``auto``); without it a local runtime is started on this
machine's cores. On a cluster every node needs this package installed (the same
version), the driver needs the bundle on its filesystem (a shared filesystem or a copy
from object storage) and writes the outputs itself; the parts travel through Ray's
object store.
"""

from __future__ import annotations

import datetime as dt
import io
import os
from collections.abc import Mapping
from typing import Any

import polars as pl

from billing_engine.calendar import Month
from billing_engine.engine import partitions
from billing_engine.engine.pipeline import EvaluationResult
from billing_engine.errors import ConfigError
from billing_engine.io.bundle import Bundle
from billing_engine.pricing.fees import FeeLibrary
from billing_engine.services.evaluation import DEFAULT_PARTITION_PATIENTS, evaluate

# the output tables a worker sends back (the rest of a result is rebuilt by merge)
_OUTPUTS = ("claim_lines", "gaps", "priced_lines", "outcomes", "time_entries")
_PART = "part"


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise ConfigError(
            "--engine ray needs Ray: pip install -e '.[ray]' (or use --engine local)"
        ) from exc
    return ray


def start_ray(address: str | None = None, cpus: int | None = None) -> Any:
    """Connect to the cluster at `address` (or ``RAY_ADDRESS``), else start a local
    runtime on `cpus` cores (default: all). Returns the ``ray`` module."""
    ray = _ray()
    if not ray.is_initialized():
        target = address or os.environ.get("RAY_ADDRESS") or None
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if target is None:
            options["num_cpus"] = cpus
        ray.init(address=target, **options)
        ray.data.DataContext.get_current().enable_progress_bars = False
    return ray


def _ipc(frame: pl.DataFrame) -> bytes:
    sink = io.BytesIO()
    frame.write_ipc(sink, compression="uncompressed")
    return sink.getvalue()


def _frame(data: bytes) -> pl.DataFrame:
    return pl.read_ipc(io.BytesIO(data))


def _part_row(index: int, part: Bundle) -> dict[str, Any]:
    row: dict[str, Any] = {_PART: index, "source": part.source}
    row.update({f"in_{name}": _ipc(frame) for name, frame in part.tables.items()})
    return row


def _evaluate_batch(batch: Any, job: dict[str, Any]) -> Any:
    """One Arrow batch of parts (one row each) -> one row of outputs per part."""
    import pyarrow as pa

    rows: list[dict[str, Any]] = []
    for row in batch.to_pylist():
        tables = {
            key.removeprefix("in_"): _frame(value)
            for key, value in row.items()
            if key.startswith("in_")
        }
        part = Bundle(tables, source=row["source"])
        result = evaluate(part, partition_patients=0, **job)
        out: dict[str, Any] = {_PART: row[_PART]}
        out.update({name: _ipc(getattr(result, name)) for name in _OUTPUTS})
        out["used"] = _pickle(dict(result.parameters_used))
        out["unverified"] = _pickle(dict(result.unverified_parameters))
        out["allow_unverified"] = result.allow_unverified
        out["rule_set_version"] = result.rule_set_version
        out["as_of"] = result.as_of.isoformat()
        rows.append(out)
    return pa.Table.from_pylist(rows)


def _pickle(value: object) -> bytes:
    import pickle

    return pickle.dumps(value)


def _unpickle(data: bytes) -> Any:
    import pickle

    return pickle.loads(data)  # our own workers output, never a file


def evaluate_on_ray(
    bundle: Bundle,
    month: Month,
    as_of: dt.date | None = None,
    *,
    settings: Mapping[str, Any] | None = None,
    fees: FeeLibrary | None = None,
    apply_deductible: bool = False,
    only: frozenset[str] | None = None,
    partition_patients: int = DEFAULT_PARTITION_PATIENTS,
    address: str | None = None,
    parts: int | None = None,
) -> EvaluationResult:
    """``services.evaluation.evaluate`` with its patient parts run on Ray Data.

    `parts` fixes the number of parts (default: from `partition_patients`, at least the
    cluster's CPU count so every core has a part). The result equals the in-process
    one's (tests prove it); its ``rule_sets`` (the facts behind ``billing explain``)
    stay on the workers and are empty here.
    """
    ray = start_ray(address)
    patients = bundle["patients"].height
    if parts is None:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        parts = max(partitions.partition_count(patients, partition_patients), cpus)
    parts = max(1, min(parts, max(patients, 1)))
    cut = partitions.Partitioned.of(bundle, parts)
    rows = [_part_row(k, cut.part(k)) for k in range(parts)]
    job = {
        "month": month,
        "as_of": as_of,
        "settings": dict(settings or {}),
        "fees": fees,
        "apply_deductible": apply_deductible,
        "only": only,
    }
    dataset = ray.data.from_items(rows, override_num_blocks=parts)
    del rows
    done = dataset.map_batches(
        _evaluate_batch, batch_size=1, batch_format="pyarrow", fn_kwargs={"job": job}
    ).take_all()
    done.sort(key=lambda r: r[_PART])
    given = dict(settings or {})
    return partitions.merge([_result(row, bundle, month, given) for row in done], bundle)


def _result(
    row: Mapping[str, Any], bundle: Bundle, month: Month, settings: dict[str, Any]
) -> EvaluationResult:
    frames = {name: _frame(row[name]) for name in _OUTPUTS}
    empty = pl.DataFrame()
    return EvaluationResult(
        month=month,
        as_of=dt.date.fromisoformat(row["as_of"]),
        rule_set_version=row["rule_set_version"],
        claim_lines=frames["claim_lines"],
        gaps=frames["gaps"],
        revenue_by_payer=empty,
        capitation=empty,
        priced_lines=frames["priced_lines"],
        outcomes=frames["outcomes"],
        rule_sets=(),
        time_entries=frames["time_entries"],
        parameters_used=_unpickle(row["used"]),
        input_row_counts=bundle.row_counts(),
        source=bundle.source,
        settings=settings,
        allow_unverified=bool(row["allow_unverified"]),
        unverified_parameters=_unpickle(row["unverified"]),
    )
