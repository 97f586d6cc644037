"""Who a patient's care manager is, for the views that group by care manager.

``patients.care_manager_id`` when the bundle names one; else the staff member who
logged the most care-management minutes for the patient in the minutes given (ties:
the lowest id). The worklist gives the last three months' minutes (the issue's
definition of an owner); finance's workbook gives its whole range.
"""

from __future__ import annotations

import polars as pl


def care_owners(patients: pl.DataFrame, minutes: pl.DataFrame) -> pl.DataFrame:
    """``patient_id, care_manager_id`` for every patient of ``patients``.

    ``minutes``: ``patient_id, performer_id, minutes`` rows of care-management time.
    """
    logged = (
        minutes.filter(pl.col("performer_id").is_not_null())
        .group_by("patient_id", "performer_id")
        .agg(pl.col("minutes").sum())
        .sort("patient_id", "minutes", "performer_id", descending=[False, True, False])
        .unique("patient_id", keep="first", maintain_order=True)
        .select("patient_id", logged_by="performer_id")
    )
    assigned = (
        pl.col("care_manager_id")
        if "care_manager_id" in patients.columns
        else pl.lit(None, pl.String)
    )
    return (
        patients.select("patient_id", assigned=assigned)
        .join(logged, on="patient_id", how="left")
        .select("patient_id", care_manager_id=pl.coalesce("assigned", "logged_by"))
    )
