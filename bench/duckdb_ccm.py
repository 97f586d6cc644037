#!/usr/bin/env python
"""The peer: an analyst's DuckDB SQL for the CCM family of one month (bench/README.md).

    python bench/duckdb_ccm.py BUNDLE_FOLDER --month 2025-12 [--out lines.csv]

What a competent analyst would write against the interchange CSV files for 99490/99439
(CCM-1..CCM-4 of ../shared/reference/medicare_rules.md, simplified): patients with an
unrevoked CCM consent obtained by the month's end, two or more chronic conditions not
resolved before the month, the month's counted care-management minutes of program ccm
(attempts and entries in error left out) of at least 20, and 99439 for each further 20
minutes, at most two. No gaps, no prices, no conflicts, no evidence: it is the floor a
CCM-only evaluation is compared with, not a second implementation of the rules.
"""

from __future__ import annotations

import argparse
import calendar
import sys
import time
from pathlib import Path

import duckdb

SQL = """
with minutes as (
    select patient_id, sum(cast(minutes as integer)) as minutes
    from read_csv_auto('{enc}', all_varchar = true) e
    where kind = 'care_management' and program = 'ccm'
      and coalesce(status, '') <> 'entered_in_error' and coalesce(outcome, '') <> 'attempt_failed'
      and cast(date as date) between date '{start}' and date '{end}'
    group by patient_id
), consented as (
    select distinct patient_id from read_csv_auto('{con}', all_varchar = true)
    where program = 'ccm' and cast(obtained_date as date) <= date '{end}'
      and (revoked_date is null or cast(revoked_date as date) >= date '{start}')
), chronic as (
    select patient_id from read_csv_auto('{cond}', all_varchar = true)
    where coalesce(chronic, 'true') <> 'false'
      and (resolved_date is null or cast(resolved_date as date) >= date '{start}')
    group by patient_id having count(distinct icd10) >= 2
)
select m.patient_id,
       case when m.minutes >= 20 then 1 else 0 end as u99490,
       least(greatest(floor((m.minutes - 20) / 20), 0), 2) as u99439
from minutes m join consented using (patient_id) join chronic using (patient_id)
where m.minutes >= 20
order by m.patient_id
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--month", default="2025-12")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    year, month = map(int, args.month.split("-"))
    start = f"{year:04d}-{month:02d}-01"
    end = calendar.monthrange(year, month)[1]
    end = f"{year:04d}-{month:02d}-{end:02d}"
    started = time.perf_counter()
    query = SQL.format(
        enc=args.bundle / "encounters.csv",
        con=args.bundle / "consents.csv",
        cond=args.bundle / "conditions.csv",
        start=start,
        end=end,
    )
    rows = duckdb.sql(query).fetchall()
    if args.out is not None:
        args.out.write_text(
            "patient_id,u99490,u99439\n" + "".join(f"{p},{a},{b}\n" for p, a, b in rows)
        )
    seconds = time.perf_counter() - started
    print(f"{len(rows)} CCM patient-months billed ({seconds:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
