"""The interchange bundle's tables, as data.

This module is the single source of truth for docs/interchange.md inside the code:
column names, their types, which are required, enum vocabularies, natural keys and
references between tables. Ingest, validation, the store and the synthetic generator
all read it; nothing else re-declares a column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import polars as pl


class ColType(StrEnum):
    """How a cell is parsed and typed."""

    STR = "str"
    DATE = "date"  # ISO YYYY-MM-DD -> pl.Date
    TIME = "time"  # HH:MM (24 h) -> pl.Time
    INT = "int"  # whole number -> pl.Int64
    BOOL = "bool"  # true/false -> pl.Boolean
    DECIMAL = "decimal"  # decimal string -> pl.Decimal(18, 4)
    FLOAT = "float"  # measurement values -> pl.Float64
    ENUM = "enum"  # one value of `enum` -> pl.String
    LIST = "list"  # ';'-separated -> pl.List(pl.String)
    NPI = "npi"  # 10 digits with a valid Luhn check digit -> pl.String
    ICD10 = "icd10"  # ICD-10-CM code, with or without the dot -> pl.String


DECIMAL_DTYPE = pl.Decimal(18, 4)

_DTYPES: dict[ColType, pl.DataType] = {
    ColType.STR: pl.String(),
    ColType.DATE: pl.Date(),
    ColType.TIME: pl.Time(),
    ColType.INT: pl.Int64(),
    ColType.BOOL: pl.Boolean(),
    ColType.DECIMAL: DECIMAL_DTYPE,
    ColType.FLOAT: pl.Float64(),
    ColType.ENUM: pl.String(),
    ColType.LIST: pl.List(pl.String()),
    ColType.NPI: pl.String(),
    ColType.ICD10: pl.String(),
}


@dataclass(frozen=True)
class Column:
    name: str
    type: ColType = ColType.STR
    required: bool = False
    enum: tuple[str, ...] = ()
    # for LIST columns whose items must come from a vocabulary
    item_enum: tuple[str, ...] = ()
    # required only where another column has one of these values: (column, values)
    required_when: tuple[str, tuple[str, ...]] | None = None
    min_value: int | None = None
    description: str = ""
    # for STR columns: the value must match this regular expression (hint: what is expected)
    pattern: str | None = None
    pattern_hint: str = ""
    # protected health information: an input issue names its row and column, never its value
    phi: bool = False

    @property
    def dtype(self) -> pl.DataType:
        return _DTYPES[self.type]


@dataclass(frozen=True)
class Reference:
    """`column` of this table must name an existing `table`.`target` value."""

    column: str
    table: str
    target: str


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    # the columns whose values must be unique (the table's own id), or () for none
    key: tuple[str, ...] = ()
    # columns that identify "the same record" for re-imports when the table has no id
    natural_key: tuple[str, ...] = ()
    # columns that join the natural key when they hold a value: a row without them keeps
    # the natural key alone (so stores written before such a column existed do not change)
    optional_key: tuple[str, ...] = ()
    required_table: bool = False
    references: tuple[Reference, ...] = field(default_factory=tuple)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")

    @property
    def identity(self) -> tuple[str, ...]:
        """Columns that identify a record: the id when there is one, else the natural key
        (with the optional key columns, which count where they hold a value)."""
        return self.key or (*self.natural_key, *self.optional_key)

    def polars_schema(self) -> dict[str, pl.DataType]:
        return {c.name: c.dtype for c in self.columns}

    def empty_frame(self) -> pl.DataFrame:
        return pl.DataFrame(schema=self.polars_schema())


CREDENTIALS = (
    "MD", "DO", "NP", "PA", "CNS", "CNM", "RD", "RN", "LPN", "MA", "LCSW", "CHW",
    "PSYCH", "OTHER", "NONCLINICAL",
)  # fmt: skip
PAYER_KINDS = ("medicare", "medicare_advantage", "medicaid", "commercial", "self_pay")
CONSENT_PROGRAMS = ("ccm", "pcm", "apcm", "bhi", "cocm", "rpm", "rtm", "chi", "pin")
ENCOUNTER_PROGRAMS = (*CONSENT_PROGRAMS, "case_management", "targeted_case_management")
ENCOUNTER_KINDS = (
    "care_management", "office_visit", "nurse_visit", "tcm_contact", "obesity_counseling",
    "tobacco_counseling", "mnt", "dsmt", "awv", "ippe",
)  # fmt: skip
CONTACT_MODES = ("in_person", "phone", "video", "portal", "group")
MDM_LEVELS = ("straightforward", "low", "moderate", "high")
OUTCOMES = ("completed", "attempt_failed")
CARE_PLAN_ACTIONS = ("established", "revised", "reviewed")
CONSENT_METHODS = ("verbal", "written")
DISCHARGE_SETTINGS = (
    "inpatient_acute", "inpatient_psych", "ltch", "snf", "irf", "observation",
    "partial_hospitalization", "cmhc_php", "ed",
)  # fmt: skip
DISPOSITIONS = (
    "home", "domiciliary", "assisted_living", "nursing_facility", "snf", "hospice",
    "expired", "other_facility",
)  # fmt: skip
MEASUREMENT_KINDS = ("bmi", "weight_kg")
REFERRAL_SERVICES = ("mnt",)
REFERRAL_REASONS = ("initial", "annual", "change_in_condition")
CLAIM_STATUSES = ("paid", "denied", "pending")
ENCOUNTER_STATUSES = ("completed", "entered_in_error")
RELATIONSHIPS = ("self", "spouse", "child", "other")  # the patient to the subscriber


def _c(name: str, type_: ColType = ColType.STR, req: bool = False, **kw: object) -> Column:
    return Column(name, type_, req, **kw)  # type: ignore[arg-type]


E = ColType

_TAXONOMY = r"^[0-9]{3}[0-9A-Z]{6}X$"
_TAXONOMY_HINT = "a 10-character NUCC taxonomy code such as 207Q00000X"

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "practitioners",
            (
                _c("practitioner_id", req=True),
                _c("name"),
                _c("npi", E.NPI),
                _c("credential", E.ENUM, True, enum=CREDENTIALS),
                _c("primary_care", E.BOOL),
                _c("qp", E.BOOL),
                _c("medicare_locality"),
                # free text or a CMS specialty code: physicians of the group with the same
                # specialty count as one for same-day E/M rules
                _c("specialty"),
                # 2-digit POS where the practitioner furnishes face-to-face care: the POS
                # of the monthly codes billed under that practitioner
                _c(
                    "place_of_service",
                    pattern=r"^\d{2}$",
                    pattern_hint="a 2-digit place of service",
                ),
                # the rendering provider on a claim (close.md, bundle additions)
                _c("first_name"),
                _c("last_name"),
                _c("taxonomy", pattern=_TAXONOMY, pattern_hint=_TAXONOMY_HINT),
            ),
            key=("practitioner_id",),
        ),
        Table(
            "patients",
            (
                _c("patient_id", req=True),
                _c("birth_date", E.DATE, True, phi=True),
                _c("sex"),
                _c("first_name", phi=True),
                _c("last_name", phi=True),
                _c("zip", phi=True),
                _c("part_b_start", E.DATE),
                _c("qmb", E.BOOL),
                _c("death_date", E.DATE, phi=True),
                # the staff member (a practitioner_id) who manages the patient
                _c("care_manager_id"),
                # with zip, the patient's address on a claim (close.md, bundle additions)
                _c("address1", phi=True),
                _c("address2", phi=True),
                _c("city", phi=True),
                _c("state", phi=True),
            ),
            key=("patient_id",),
            required_table=True,
            references=(Reference("care_manager_id", "practitioners", "practitioner_id"),),
        ),
        Table(
            "payers",
            (
                _c("payer_id", req=True),
                _c("name"),
                _c("kind", E.ENUM, True, enum=PAYER_KINDS),
                _c("state", required_when=("kind", ("medicaid",))),
                _c(
                    "fee_basis",
                    pattern=r"^(medicare_pfs|schedule|percent_of_medicare:\d+(\.\d+)?)$",
                    pattern_hint="medicare_pfs, schedule or percent_of_medicare:NNN",
                ),
                # the payer's id for 837P loop 2010BB (close.md, bundle additions)
                _c("x12_payer_id"),
                # SBR09; blank = from kind (MB, 16, MC, CI)
                _c(
                    "claim_filing_indicator",
                    pattern=r"^[0-9A-Z]{2}$",
                    pattern_hint=(
                        "a 2-character X12 claim filing indicator code (MB, 16, MC, CI, ...)"
                    ),
                ),
            ),
            key=("payer_id",),
        ),
        Table(
            "coverages",
            (
                _c("patient_id", req=True),
                _c("payer_id", req=True),
                _c("start_date", E.DATE, True),
                _c("end_date", E.DATE),
                _c("rank", E.INT, min_value=1),
                _c("member_id", phi=True),
                _c("group_number"),
                # the patient's relationship to the subscriber; blank = self
                _c("relationship", E.ENUM, enum=RELATIONSHIPS),
            ),
            natural_key=("patient_id", "payer_id", "start_date"),
            references=(
                Reference("patient_id", "patients", "patient_id"),
                Reference("payer_id", "payers", "payer_id"),
            ),
        ),
        Table(
            "fee_schedule",
            (
                _c("payer_id", req=True),
                _c("code", req=True),
                _c("modifier"),
                _c("effective_from", E.DATE, True),
                _c("effective_to", E.DATE),
                _c("amount", E.DECIMAL, True, min_value=0),
            ),
            natural_key=("payer_id", "code", "modifier", "effective_from"),
            references=(Reference("payer_id", "payers", "payer_id"),),
        ),
        Table(
            "payer_codes",
            (
                _c("payer_id", req=True),
                _c("code", req=True),
                _c("covered", E.BOOL, True),
                _c("effective_from", E.DATE),
                _c("effective_to", E.DATE),
            ),
            natural_key=("payer_id", "code", "effective_from"),
            references=(Reference("payer_id", "payers", "payer_id"),),
        ),
        Table(
            "capitation",
            (
                _c("payer_id", req=True),
                _c("name"),
                _c("amount", E.DECIMAL, True, min_value=0),
                _c("effective_from", E.DATE, True),
                _c("effective_to", E.DATE),
            ),
            natural_key=("payer_id", "effective_from"),
            references=(Reference("payer_id", "payers", "payer_id"),),
        ),
        Table(
            "attributions",
            (
                _c("patient_id", req=True),
                _c("payer_id", req=True),
                _c("start_date", E.DATE, True),
                _c("end_date", E.DATE),
            ),
            natural_key=("patient_id", "payer_id", "start_date"),
            references=(
                Reference("patient_id", "patients", "patient_id"),
                Reference("payer_id", "payers", "payer_id"),
            ),
        ),
        Table(
            "conditions",
            (
                _c("patient_id", req=True),
                _c("icd10", E.ICD10, True),
                _c("onset_date", E.DATE),
                _c("resolved_date", E.DATE),
                _c("chronic", E.BOOL),
            ),
            natural_key=("patient_id", "icd10", "onset_date"),
            references=(Reference("patient_id", "patients", "patient_id"),),
        ),
        Table(
            "consents",
            (
                _c("consent_id", req=True),
                _c("patient_id", req=True),
                _c("program", E.ENUM, True, enum=CONSENT_PROGRAMS),
                _c("obtained_date", E.DATE, True),
                _c("method", E.ENUM, True, enum=CONSENT_METHODS),
                _c("billing_practitioner_id"),
                _c("revoked_date", E.DATE),
            ),
            key=("consent_id",),
            references=(
                Reference("patient_id", "patients", "patient_id"),
                Reference("billing_practitioner_id", "practitioners", "practitioner_id"),
            ),
        ),
        Table(
            "care_plans",
            (
                _c("care_plan_id", req=True),
                _c("patient_id", req=True),
                _c("program", E.ENUM, True, enum=CONSENT_PROGRAMS),
                _c("date", E.DATE, True),
                _c("action", E.ENUM, True, enum=CARE_PLAN_ACTIONS),
            ),
            key=("care_plan_id",),
            references=(Reference("patient_id", "patients", "patient_id"),),
        ),
        Table(
            "encounters",
            (
                _c("encounter_id", req=True),
                _c("patient_id", req=True),
                _c("date", E.DATE, True),
                _c("start_time", E.TIME),
                _c("minutes", E.INT, True, min_value=0),
                _c("performer_id", req=True),
                _c("billing_practitioner_id"),
                _c("kind", E.ENUM, True, enum=ENCOUNTER_KINDS),
                _c(
                    "program",
                    E.ENUM,
                    enum=ENCOUNTER_PROGRAMS,
                    required_when=("kind", ("care_management",)),
                ),
                _c("contact_mode", E.ENUM, enum=CONTACT_MODES),
                _c("mdm", E.ENUM, enum=MDM_LEVELS),
                _c("cpt", E.LIST, required_when=("kind", ("office_visit",))),
                _c("activities", E.LIST),
                _c("place_of_service"),
                _c("outcome", E.ENUM, enum=OUTCOMES),
                # completed (default) or entered_in_error: the row is kept but never counts
                _c("status", E.ENUM, enum=ENCOUNTER_STATUSES),
            ),
            key=("encounter_id",),
            required_table=True,
            references=(
                Reference("patient_id", "patients", "patient_id"),
                Reference("performer_id", "practitioners", "practitioner_id"),
                Reference("billing_practitioner_id", "practitioners", "practitioner_id"),
            ),
        ),
        Table(
            "discharges",
            (
                _c("discharge_id", req=True),
                _c("patient_id", req=True),
                _c("admit_date", E.DATE, True),
                _c("discharge_date", E.DATE, True),
                _c("setting", E.ENUM, True, enum=DISCHARGE_SETTINGS),
                _c("disposition", E.ENUM, True, enum=DISPOSITIONS),
            ),
            key=("discharge_id",),
            references=(Reference("patient_id", "patients", "patient_id"),),
        ),
        Table(
            "measurements",
            (
                _c("patient_id", req=True),
                _c("date", E.DATE, True),
                _c("kind", E.ENUM, True, enum=MEASUREMENT_KINDS),
                _c("value", E.FLOAT, True),
            ),
            natural_key=("patient_id", "date", "kind"),
            references=(Reference("patient_id", "patients", "patient_id"),),
        ),
        Table(
            "referrals",
            (
                _c("referral_id", req=True),
                _c("patient_id", req=True),
                _c("date", E.DATE, True),
                _c("referring_practitioner_id", req=True),
                _c("service", E.ENUM, True, enum=REFERRAL_SERVICES),
                _c("reason", E.ENUM, True, enum=REFERRAL_REASONS),
            ),
            key=("referral_id",),
            references=(
                Reference("patient_id", "patients", "patient_id"),
                Reference("referring_practitioner_id", "practitioners", "practitioner_id"),
            ),
        ),
        Table(
            "claims_history",
            (
                _c("patient_id", req=True),
                _c("code", req=True),
                _c("units", E.INT, min_value=0),
                _c("date_of_service", E.DATE, True),
                _c("billing_npi", req=True),
                _c("payer_id"),
                _c("status", E.ENUM, enum=CLAIM_STATUSES),
                # the payer's or practice's claim number: two rows with the same patient,
                # code, date and NPI are distinct only when their claim_ids differ
                _c("claim_id"),
            ),
            natural_key=("patient_id", "code", "date_of_service", "billing_npi"),
            optional_key=("claim_id",),
            references=(
                Reference("patient_id", "patients", "patient_id"),
                Reference("payer_id", "payers", "payer_id"),
            ),
        ),
        Table(
            "practice",
            (
                # the billing provider of every claim (close.md, bundle additions): a
                # group NPI (type 2), 9-digit TIN, 9-digit ZIP
                _c("name"),
                _c("npi", E.NPI),
                _c("tin", pattern=r"^\d{9}$", pattern_hint="a 9-digit TIN", phi=False),
                _c("taxonomy", pattern=_TAXONOMY, pattern_hint=_TAXONOMY_HINT),
                _c("address1"),
                _c("address2"),
                _c("city"),
                _c("state", pattern=r"^[A-Z]{2}$", pattern_hint="a two-letter state"),
                _c("zip", pattern=r"^\d{5}(\d{4})?$", pattern_hint="a 5- or 9-digit ZIP"),
                _c("phone", pattern=r"^\d{10}$", pattern_hint="10 digits"),
                # the 837 envelope parties (loops 1000A and 1000B)
                _c("submitter_id"),
                _c("submitter_name"),
                _c("contact_name"),
                _c("contact_phone", pattern=r"^\d{10}$", pattern_hint="10 digits"),
                _c("receiver_id"),
                _c("receiver_name"),
            ),
            natural_key=("npi",),
        ),
        Table(
            "charges",
            (
                _c("code", req=True),
                _c("modifier"),
                _c("charge", E.DECIMAL, True, min_value=0),
                _c("effective_from", E.DATE, True),
                _c("effective_to", E.DATE),
            ),
            natural_key=("code", "modifier", "effective_from"),
        ),
    )
}

TABLE_ORDER: tuple[str, ...] = tuple(TABLES)

# Credentials that can be billing practitioners (interchange spec, practitioners table).
BILLING_CREDENTIALS = ("MD", "DO", "NP", "PA", "CNS", "CNM")
