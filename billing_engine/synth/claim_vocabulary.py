"""The claim data's vocabulary: practice identity, taxonomies, payer ids, addresses,
the charge master and the deliberate defects (``claim_data`` in ``vocabulary.yaml``).

``load_claim_vocabulary`` reads and checks the section once; like ``load_vocabulary``
it keeps every code-shaped literal (ZIP codes, payer ids, CPT/HCPCS codes) out of the
machinery.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache

import yaml

from billing_engine.errors import ConfigError
from billing_engine.io import strict_yaml
from billing_engine.synth.vocabulary import (
    VOCABULARY_FILE,
    _mapping,
    _number,
    _share,
    _text,
    _texts,
    load_vocabulary,
)

PRACTICE_FIELDS = (
    "name", "tin", "taxonomy", "address1", "address2", "city", "state", "zip", "phone",
    "submitter_id", "submitter_name", "contact_name", "contact_phone", "receiver_id",
    "receiver_name",
)  # fmt: skip
"""The ``practice`` columns given as text in the file (the NPI is built from npi_base)."""


@dataclass(frozen=True)
class Defects:
    """The deliberate claim defects: shares of rows (at least one row), a count, a payer."""

    coverages_without_member_id: float
    patients_without_address: float
    patients_without_sex: int
    payer_without_x12_id: str


@dataclass(frozen=True)
class ClaimVocabulary:
    """The ``claim_data`` section of vocabulary.yaml (see the comments there)."""

    claim_stream: int
    practice: dict[str, str]  # PRACTICE_FIELDS -> text
    npi_base: str
    taxonomies: dict[str, str]  # practitioner_id -> NUCC taxonomy
    x12_payer_ids: dict[str, str]  # payer_id -> 2010BB payer id
    claim_filing_indicators: dict[str, str]  # payer_id -> SBR09, where stated
    group_prefix: str
    group_count: int
    child_age: int
    child_share: float
    spouse_share: float
    state: str
    zip_cities: dict[str, str]
    house_low: int
    house_high: int
    apartment_share: float
    apartment_high: int
    streets: tuple[str, ...]
    street_suffixes: tuple[str, ...]
    multiplier_low: float
    multiplier_high: float
    prior_year_share: float
    charge_reference: tuple[tuple[str, Decimal], ...]  # (code, national amount per unit)
    without_charge: tuple[str, ...]
    defects: Defects


def _whole(raw: object, where: str) -> int:
    value = _number(raw, where)
    if value != int(value) or value < 0:
        raise ValueError(f"{where}: expected a whole number, got {raw!r}")
    return int(value)


def _texts_by_key(raw: object, where: str) -> dict[str, str]:
    return {
        _text(key, where): _text(value, f"{where}.{key}")
        for key, value in _mapping(raw, where).items()
    }


def _amount(raw: object, where: str) -> Decimal:
    try:
        return Decimal(_text(raw, where))
    except InvalidOperation as exc:
        raise ValueError(f"{where}: not an amount: {raw!r}") from exc


def _defects(raw: object) -> Defects:
    doc = _mapping(raw, "defects")
    return Defects(
        coverages_without_member_id=_share(
            doc["coverages_without_member_id"], "defects.coverages_without_member_id"
        ),
        patients_without_address=_share(
            doc["patients_without_address"], "defects.patients_without_address"
        ),
        patients_without_sex=_whole(doc["patients_without_sex"], "defects.patients_without_sex"),
        payer_without_x12_id=_text(doc["payer_without_x12_id"], "defects.payer_without_x12_id"),
    )


def _parse(doc: Mapping[str, object]) -> ClaimVocabulary:
    practice_doc = _mapping(doc["practice"], "practice")
    reference = tuple(
        (_text(code, "charge_reference"), _amount(amount, f"charge_reference.{code}"))
        for code, amount in _mapping(doc["charge_reference"], "charge_reference").items()
    )
    vocabulary = ClaimVocabulary(
        claim_stream=_whole(doc["claim_stream"], "claim_stream"),
        practice={f: _text(practice_doc[f], f"practice.{f}") for f in PRACTICE_FIELDS},
        npi_base=_text(practice_doc["npi_base"], "practice.npi_base"),
        taxonomies=_texts_by_key(doc["taxonomies"], "taxonomies"),
        x12_payer_ids=_texts_by_key(doc["x12_payer_ids"], "x12_payer_ids"),
        claim_filing_indicators=_texts_by_key(
            doc["claim_filing_indicators"], "claim_filing_indicators"
        ),
        group_prefix=_text(doc["group_prefix"], "group_prefix"),
        group_count=_whole(doc["group_count"], "group_count"),
        child_age=_whole(doc["child_age"], "child_age"),
        child_share=_share(doc["child_share"], "child_share"),
        spouse_share=_share(doc["spouse_share"], "spouse_share"),
        state=_text(doc["state"], "state"),
        zip_cities=_texts_by_key(doc["zip_cities"], "zip_cities"),
        house_low=_whole(doc["house_low"], "house_low"),
        house_high=_whole(doc["house_high"], "house_high"),
        apartment_share=_share(doc["apartment_share"], "apartment_share"),
        apartment_high=_whole(doc["apartment_high"], "apartment_high"),
        streets=_texts(doc["streets"], "streets"),
        street_suffixes=_texts(doc["street_suffixes"], "street_suffixes"),
        multiplier_low=_number(doc["multiplier_low"], "multiplier_low"),
        multiplier_high=_number(doc["multiplier_high"], "multiplier_high"),
        prior_year_share=_share(doc["prior_year_share"], "prior_year_share"),
        charge_reference=reference,
        without_charge=_texts(doc["without_charge"], "without_charge"),
        defects=_defects(doc["defects"]),
    )
    missing_cities = sorted(set(load_vocabulary().zips) - set(vocabulary.zip_cities))
    if missing_cities:
        raise ValueError(f"zip_cities: no city for {missing_cities}")
    unknown = sorted(set(vocabulary.without_charge) - {code for code, _ in reference})
    if unknown:
        raise ValueError(f"without_charge: codes not in charge_reference: {unknown}")
    if vocabulary.house_low > vocabulary.house_high or vocabulary.group_count < 1:
        raise ValueError("house_low above house_high, or no employer group")
    if vocabulary.multiplier_low > vocabulary.multiplier_high:
        raise ValueError("multiplier_low above multiplier_high")
    return vocabulary


@lru_cache(maxsize=1)
def load_claim_vocabulary() -> ClaimVocabulary:
    """The ``claim_data`` section of the vocabulary file, read once."""
    try:
        doc = _mapping(strict_yaml.load_path(VOCABULARY_FILE), "document")
        return _parse(_mapping(doc["claim_data"], "claim_data"))
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"{VOCABULARY_FILE}: invalid claim_data: {exc}") from exc
