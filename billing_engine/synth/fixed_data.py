"""The practice's fixed data whatever its size: practitioners, payers, names, activities.

Also the NPIs (a valid Luhn check digit over 80840 + 9 digits) and ``FixedTables``,
which writes the practitioners, payers and Medicaid fee schedule tables.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl

from billing_engine.synth.draws import Draws
from billing_engine.synth.vocabulary import load_vocabulary

# --------------------------------------------------------------------------- NPIs


def npi_check_digit(first9: str) -> str:
    """The NPI check digit: Luhn over ``80840`` + the 9-digit base (CMS NPI standard)."""
    if len(first9) != 9 or not first9.isdigit():
        raise ValueError(f"an NPI base is 9 digits, got {first9!r}")
    total = 0
    # the digit next to the (future) check digit is doubled, then every second one
    for position, char in enumerate(reversed(load_vocabulary().npi_prefix + first9)):
        digit = int(char)
        if position % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def make_npi(first9: str) -> str:
    """A 10-digit NPI: the base followed by its check digit."""
    return first9 + npi_check_digit(first9)


def npi_is_valid(npi: str) -> bool:
    return len(npi) == 10 and npi.isdigit() and npi_check_digit(npi[:9]) == npi[9]


OTHER_PRACTICE_NPI = make_npi("190357428")
"""The NPI of the other practice that bills CCM for a few of this practice's patients."""


# --------------------------------------------------------------------------- fixed data

# practitioner_id, name, credential, NPI base (None = no NPI), primary_care
PRACTITIONERS: tuple[tuple[str, str, str, str | None, bool | None], ...] = (
    ("PR01", "Maria Alvarez, MD", "MD", "148721903", True),
    ("PR02", "James Okafor, DO", "DO", "162034587", True),
    ("PR03", "Linda Chen, NP", "NP", "175390246", True),
    ("CM01", "Rachel Brooks, RN", "RN", None, None),
    ("CM02", "Daniel Kim, RN", "RN", None, None),
    ("CM03", "Sofia Ramirez, LPN", "LPN", None, None),
    ("CM04", "Aaron Feld, LCSW", "LCSW", None, None),
    ("RD01", "Priya Natarajan, RD", "RD", "183920475", False),
    ("SC01", "Kevin Doyle (scheduling)", "NONCLINICAL", None, None),
)
PCPS = 3  # indexes 0-2
CM_FIRST = 3  # care managers are indexes 3-6
RN = (3, 4)
LCSW = 6
RD = 7
SCHEDULER = 8

# payer_id, name, kind, state, fee_basis, member-id prefix
PAYERS: tuple[tuple[str, str, str, str | None, str, str], ...] = (
    ("MCR", "Original Medicare (Part B)", "medicare", None, "medicare_pfs", "1M"),
    ("MA01", "Lakeshore Medicare Advantage", "medicare_advantage", None,
     "percent_of_medicare:100", "LMA"),
    ("MCD-MI", "Michigan Medicaid", "medicaid", "MI", "schedule", "MI"),
    ("COM01", "Great Lakes Commercial PPO", "commercial", None,
     "percent_of_medicare:110", "GLC"),
)  # fmt: skip
MCR, MA, MCD, COM = 0, 1, 2, 3

FIRST_F = (
    "Mary", "Patricia", "Linda", "Barbara", "Elizabeth", "Jennifer", "Susan", "Margaret",
    "Dorothy", "Karen", "Nancy", "Betty", "Sandra", "Donna", "Carol", "Ruth", "Sharon",
    "Michelle", "Laura", "Ana",
)  # fmt: skip
FIRST_M = (
    "James", "Robert", "John", "Michael", "William", "David", "Richard", "Joseph",
    "Thomas", "Charles", "Daniel", "Paul", "Mark", "Donald", "George", "Kenneth", "Steven",
    "Edward", "Jose", "Wei",
)  # fmt: skip
LAST = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
    "Rodriguez", "Martinez", "Hernandez", "Lopez", "Wilson", "Anderson", "Thomas",
    "Taylor", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White", "Harris", "Clark",
    "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Nguyen",
    "Hill", "Green", "Adams", "Baker", "Nelson", "Carter", "Kowalski",
)  # fmt: skip

ACTIVITIES = ("medication_reconciliation", "care_coordination", "education", "care_plan_review")
# every non-empty subset of ACTIVITIES by bit mask, and its weight (fewer items likelier)
ACTIVITY_SETS: tuple[str | None, ...] = (
    None,
    *(";".join(a for bit, a in enumerate(ACTIVITIES) if mask >> bit & 1) for mask in range(1, 16)),
)
ACTIVITY_WEIGHTS = tuple(
    0.0 if mask == 0 else {1: 0.45 / 4, 2: 0.35 / 6, 3: 0.15 / 4, 4: 0.05}[mask.bit_count()]
    for mask in range(16)
)
CM_MINUTES = (5, 7, 8, 10, 12, 15, 18, 20, 22, 25, 30, 35)
CM_MINUTE_WEIGHTS = (10, 6, 6, 16, 8, 18, 6, 12, 4, 7, 5, 2)

# tables that only hold what this practice did (nothing before a new patient joined)


class FixedTables(Draws):
    """The tables that are the same for every practice size (fee dates from the window)."""

    def fixed_tables(self) -> None:
        npis = [make_npi(p[3]) if p[3] else None for p in PRACTITIONERS]
        self.frames["practitioners"] = pl.DataFrame(
            {
                "practitioner_id": [p[0] for p in PRACTITIONERS],
                "name": [p[1] for p in PRACTITIONERS],
                "npi": npis,
                "credential": [p[2] for p in PRACTITIONERS],
                "primary_care": [p[4] for p in PRACTITIONERS],
                "qp": [False if p[3] else None for p in PRACTITIONERS],
            },
            schema_overrides={"npi": pl.String, "primary_care": pl.Boolean, "qp": pl.Boolean},
        )
        self.frames["payers"] = pl.DataFrame(
            {
                "payer_id": [p[0] for p in PAYERS],
                "name": [p[1] for p in PAYERS],
                "kind": [p[2] for p in PAYERS],
                "state": [p[3] for p in PAYERS],
                "fee_basis": [p[4] for p in PAYERS],
            },
            schema_overrides={"state": pl.String},
        )
        effective = dt.date(self.month_list[0].year, 1, 1)
        fees = load_vocabulary().medicaid_fees
        self.frames["fee_schedule"] = pl.DataFrame(
            {
                "payer_id": [PAYERS[MCD][0]] * len(fees),
                "code": [code for code, _ in fees],
                "effective_from": [effective] * len(fees),
                "amount": [Decimal(amount) for _, amount in fees],
            },
            schema_overrides={"amount": pl.Decimal(18, 4)},
        )
