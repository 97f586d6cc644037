"""The synthetic practice's vocabulary: codes, fee table, ZIP codes and code weights.

They live in ``vocabulary.yaml`` next to this module (the machinery holds no
code-shaped literal); ``load_vocabulary`` reads and checks the file once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

import yaml

from billing_engine.errors import ConfigError
from billing_engine.io import strict_yaml

VOCABULARY_FILE = Path(__file__).with_name("vocabulary.yaml")


@dataclass(frozen=True)
class Vocabulary:
    """The generator's codes, fee table, ZIP codes and code weights (vocabulary.yaml)."""

    npi_prefix: str
    medicaid_fees: tuple[tuple[str, str], ...]  # (code, amount per unit)
    zips: tuple[str, ...]
    # code, weight from age 65, weight below 65, category counts by the engine's value set
    chronic: tuple[tuple[str, float, float, bool], ...]
    chronic_overrides: dict[str, tuple[float, bool]]  # code -> (probability, value)
    acute: tuple[str, ...]
    tobacco: str
    mnt_diagnoses: tuple[str, ...]
    obesity: str
    routine_codes: tuple[str, ...]  # by MDM level low / moderate / high
    routine_weights: tuple[float, ...]
    new_low: str
    new_moderate: str
    new_moderate_share: float
    initiating_new: str
    initiating_moderate: str
    initiating_high: str
    initiating_high_share: float
    g0506: str
    g0506_share: float
    awv_initial: str
    awv_subsequent: str
    ippe: str
    tcm_moderate: str
    tcm_high: str
    tcm_moderate_share: float
    other_practice_ccm: str


def _mapping(raw: object, where: str) -> Mapping[str, object]:
    if not isinstance(raw, Mapping):
        raise TypeError(f"{where}: expected a mapping, got {type(raw).__name__}")
    return raw


def _list(raw: object, where: str) -> list[object]:
    if not isinstance(raw, list) or not raw:
        raise TypeError(f"{where}: expected a non-empty list")
    return raw


def _text(raw: object, where: str) -> str:
    """A code or other string: quoted in the file (an unquoted number is refused)."""
    if not isinstance(raw, str) or not raw:
        raise TypeError(f"{where}: expected a quoted string, got {raw!r}")
    return raw


def _texts(raw: object, where: str) -> tuple[str, ...]:
    return tuple(_text(item, f"{where}[{i}]") for i, item in enumerate(_list(raw, where)))


def _number(raw: object, where: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise TypeError(f"{where}: expected a number, got {raw!r}")
    return float(raw)


def _share(raw: object, where: str) -> float:
    value = _number(raw, where)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{where}: a share is 0-1, got {value}")
    return value


def _flag(raw: object, where: str) -> bool:
    if not isinstance(raw, bool):
        raise TypeError(f"{where}: expected true or false, got {raw!r}")
    return raw


def _parse_vocabulary(doc: Mapping[str, object]) -> Vocabulary:
    npi_prefix = _text(doc["npi_prefix"], "npi_prefix")
    if len(npi_prefix) != 5 or not npi_prefix.isdigit():
        raise ValueError(f"npi_prefix: expected 5 digits, got {npi_prefix!r}")
    fees = tuple(
        (_text(code, "medicaid_fees"), _text(amount, f"medicaid_fees.{code}"))
        for code, amount in _mapping(doc["medicaid_fees"], "medicaid_fees").items()
    )
    for code, amount in fees:
        try:
            Decimal(amount)
        except InvalidOperation as exc:
            raise ValueError(f"medicaid_fees.{code}: not an amount: {amount!r}") from exc
    chronic_rows = [
        _mapping(item, f"chronic[{i}]") for i, item in enumerate(_list(doc["chronic"], "chronic"))
    ]
    chronic = tuple(
        (
            _text(row["code"], f"chronic[{i}].code"),
            _number(row["old"], f"chronic[{i}].old"),
            _number(row["young"], f"chronic[{i}].young"),
            _flag(row["counts"], f"chronic[{i}].counts"),
        )
        for i, row in enumerate(chronic_rows)
    )
    overrides = {
        _text(code, "chronic_overrides"): (
            _share(_mapping(entry, f"chronic_overrides.{code}")["share"], f"{code}.share"),
            _flag(_mapping(entry, f"chronic_overrides.{code}")["value"], f"{code}.value"),
        )
        for code, entry in _mapping(doc["chronic_overrides"], "chronic_overrides").items()
    }
    routine = [
        _mapping(item, f"routine_visits[{i}]")
        for i, item in enumerate(_list(doc["routine_visits"], "routine_visits"))
    ]
    if len(routine) != 3:
        raise ValueError(f"routine_visits: one row per MDM level (3), got {len(routine)}")
    new = _mapping(doc["new_patient_visit"], "new_patient_visit")
    initiating = _mapping(doc["initiating_visit"], "initiating_visit")
    awv = _mapping(doc["awv"], "awv")
    tcm = _mapping(doc["tcm_visit"], "tcm_visit")
    vocabulary = Vocabulary(
        npi_prefix=npi_prefix,
        medicaid_fees=fees,
        zips=_texts(doc["zips"], "zips"),
        chronic=chronic,
        chronic_overrides=overrides,
        acute=_texts(doc["acute"], "acute"),
        tobacco=_text(doc["tobacco"], "tobacco"),
        mnt_diagnoses=_texts(doc["mnt_diagnoses"], "mnt_diagnoses"),
        obesity=_text(doc["obesity"], "obesity"),
        routine_codes=tuple(_text(r["code"], "routine_visits.code") for r in routine),
        routine_weights=tuple(_number(r["weight"], "routine_visits.weight") for r in routine),
        new_low=_text(new["low"], "new_patient_visit.low"),
        new_moderate=_text(new["moderate"], "new_patient_visit.moderate"),
        new_moderate_share=_share(new["moderate_share"], "new_patient_visit.moderate_share"),
        initiating_new=_text(initiating["new_patient"], "initiating_visit.new_patient"),
        initiating_moderate=_text(initiating["moderate"], "initiating_visit.moderate"),
        initiating_high=_text(initiating["high"], "initiating_visit.high"),
        initiating_high_share=_share(initiating["high_share"], "initiating_visit.high_share"),
        g0506=_text(initiating["g0506"], "initiating_visit.g0506"),
        g0506_share=_share(initiating["g0506_share"], "initiating_visit.g0506_share"),
        awv_initial=_text(awv["initial"], "awv.initial"),
        awv_subsequent=_text(awv["subsequent"], "awv.subsequent"),
        ippe=_text(doc["ippe"], "ippe"),
        tcm_moderate=_text(tcm["moderate"], "tcm_visit.moderate"),
        tcm_high=_text(tcm["high"], "tcm_visit.high"),
        tcm_moderate_share=_share(tcm["moderate_share"], "tcm_visit.moderate_share"),
        other_practice_ccm=_text(doc["other_practice_ccm"], "other_practice_ccm"),
    )
    chronic_codes = {row[0] for row in chronic}
    named = [*overrides, vocabulary.tobacco, *vocabulary.mnt_diagnoses, vocabulary.obesity]
    unknown = sorted(set(named) - chronic_codes)
    if unknown:
        raise ValueError(f"codes not in the chronic list: {unknown}")
    return vocabulary


@lru_cache(maxsize=1)
def load_vocabulary() -> Vocabulary:
    """The vocabulary file, read once."""
    try:
        doc = strict_yaml.load_path(VOCABULARY_FILE)
        return _parse_vocabulary(_mapping(doc, "document"))
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"{VOCABULARY_FILE}: invalid synth vocabulary: {exc}") from exc
