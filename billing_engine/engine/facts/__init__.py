"""Facts per patient and period, shared by every code family (imported as ``nz``).

Each function takes the evaluation context and returns a polars frame; none touches
files or the database, none loops over rows. Families compose these facts into the
frame their rules read (see ``code_rules/<family>/``). By topic:

- ``time``: which logged minutes count, and how many (TIME-3 .. TIME-8);
- ``patients``: practitioners, consents, conditions and care plans;
- ``services``: visits, claims history and decision making already on record;
- ``coverage``: the primary payer on a date, and whether it pays a code;
- ``places``: places of service and specialties.
"""

from __future__ import annotations

from billing_engine.engine.facts.coverage import (
    payer_pays,
    primary_coverage,
)
from billing_engine.engine.facts.patients import (
    MAX_CLAIM_DIAGNOSES,
    care_plan_facts,
    chronic_conditions,
    conditions_on_date,
    consent_facts,
    consent_practitioners,
    normalized_icd10,
    practitioners,
    valid_consents,
    with_practitioner,
)
from billing_engine.engine.facts.places import (
    POS_FROM_ENCOUNTERS,
    POS_FROM_PRACTITIONER,
    POS_FROM_SETTING,
    monthly_place_of_service,
    practitioner_places_of_service,
    practitioner_specialties,
    same_specialty,
    with_visit_place_of_service,
)
from billing_engine.engine.facts.services import (
    billed_claims,
    claims_in_month,
    max_mdm,
    mdm_rank_of,
    patients_seen,
    practitioner_visits,
)
from billing_engine.engine.facts.time import (
    EXCLUDED_BEFORE_CONSENT,
    EXCLUDED_FAILED_ATTEMPT,
    EXCLUDED_INPATIENT_DAY,
    EXCLUDED_NO_BILLING_PRACTITIONER,
    EXCLUDED_NOT_CLINICAL_STAFF,
    POOL_ALL,
    POOL_PRACTITIONER,
    ROLE_OTHER,
    ROLE_PRACTITIONER,
    ROLE_STAFF,
    TIME_KEYS,
    counted_entry_ids,
    daily_minutes,
    date_reached,
    inpatient_days,
    logged_minutes,
    merge_intervals,
    monthly_minutes,
    time_entries,
    visit_intervals,
)

__all__ = [
    "EXCLUDED_BEFORE_CONSENT",
    "EXCLUDED_FAILED_ATTEMPT",
    "EXCLUDED_INPATIENT_DAY",
    "EXCLUDED_NOT_CLINICAL_STAFF",
    "EXCLUDED_NO_BILLING_PRACTITIONER",
    "MAX_CLAIM_DIAGNOSES",
    "POOL_ALL",
    "POOL_PRACTITIONER",
    "POS_FROM_ENCOUNTERS",
    "POS_FROM_PRACTITIONER",
    "POS_FROM_SETTING",
    "ROLE_OTHER",
    "ROLE_PRACTITIONER",
    "ROLE_STAFF",
    "TIME_KEYS",
    "billed_claims",
    "care_plan_facts",
    "chronic_conditions",
    "claims_in_month",
    "conditions_on_date",
    "consent_facts",
    "consent_practitioners",
    "counted_entry_ids",
    "daily_minutes",
    "date_reached",
    "inpatient_days",
    "logged_minutes",
    "max_mdm",
    "mdm_rank_of",
    "merge_intervals",
    "monthly_minutes",
    "monthly_place_of_service",
    "normalized_icd10",
    "patients_seen",
    "payer_pays",
    "practitioner_places_of_service",
    "practitioner_specialties",
    "practitioner_visits",
    "practitioners",
    "primary_coverage",
    "same_specialty",
    "time_entries",
    "valid_consents",
    "visit_intervals",
    "with_practitioner",
    "with_visit_place_of_service",
]
