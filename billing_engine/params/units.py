"""The closed set of parameter units, and the Python type a reader gets for each.

Every ``unit:`` of a ``code_rules/*/parameters.yaml`` must be a key of ``UNIT_TYPES``;
the typed accessor (``python -m code_rules.build_accessor``) refuses any other, naming
the file and the parameter, and so should the loader. A new unit is one line here.

A ``ValueType`` says how a value of that unit is read: the ``PeriodParameters`` getter
(which records the read in ``used``), the annotation the reader sees and a check that
a value in a YAML file has that shape. The unit ``choice`` is the one whose type
depends on the parameter: its ``choices`` (true/false reads as ``bool``, names read as
a ``Literal`` of those names).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_str(value: object) -> bool:
    return isinstance(value, str)


def _is_bool(value: object) -> bool:
    return isinstance(value, bool)


def _is_strs(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _is_ints(value: object) -> bool:
    return isinstance(value, list) and all(_is_int(v) for v in value)


def _is_float(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_decimal(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        return False
    try:
        Decimal(str(value))
    except InvalidOperation:
        return False
    return True


def _is_optional_decimal(value: object) -> bool:
    return value is None or _is_decimal(value)


def _is_mapping(value: object) -> bool:
    return value is None or (isinstance(value, dict) and all(isinstance(k, str) for k in value))


def _is_bands(value: object) -> bool:
    return isinstance(value, list) and all(
        isinstance(band, list) and len(band) == 2 and _is_float(band[0]) and _is_str(band[1])
        for band in value
    )


def _is_choice(value: object) -> bool:
    return value is None or isinstance(value, str | bool)


@dataclass(frozen=True)
class ValueType:
    """How values of one unit are read."""

    kind: str  # a short name: int, str, bool, strs, float, decimal, ...
    annotation: str  # the type the reader gets, as written in Python
    getter: str  # the PeriodParameters method that returns it
    accepts: Callable[[object], bool]  # a YAML value has this shape


INT = ValueType("int", "int", "as_int", _is_int)
STR = ValueType("str", "str", "as_str", _is_str)
BOOL = ValueType("bool", "bool", "as_bool", _is_bool)
STRS = ValueType("strs", "list[str]", "as_strs", _is_strs)
INTS = ValueType("ints", "list[int]", "as_ints", _is_ints)
FLOAT = ValueType("float", "float", "as_float", _is_float)
DECIMAL = ValueType("decimal", "Decimal", "as_decimal", _is_decimal)
OPTIONAL_DECIMAL = ValueType(
    "optional_decimal", "Decimal | None", "as_optional_decimal", _is_optional_decimal
)
MAPPING = ValueType("mapping", "Mapping[str, Any]", "as_mapping", _is_mapping)
BANDS = ValueType("bands", "list[tuple[float, str]]", "as_bands", _is_bands)
# the annotation of a choice comes from the parameter's `choices`
CHOICE = ValueType("choice", "object", "as_choice", _is_choice)

UNIT_TYPES: dict[str, ValueType] = {
    # whole numbers
    "attempt": INT,
    "business day": INT,
    "calendar day": INT,
    "count": INT,
    "day": INT,
    "minute": INT,
    "month": INT,
    "session": INT,
    "unit": INT,
    "year": INT,
    # a single name or code
    "activity": STR,
    "CMS POS code": STR,
    "encounter kind": STR,
    "HCPCS code": STR,
    "HCPCS code (visit context, not billed here)": STR,
    "MDM level": STR,
    "program": STR,
    "referral reason": STR,
    "referral service": STR,
    # yes or no
    "boolean": BOOL,
    # lists of names or codes
    "action list": STRS,
    "activity list": STRS,
    "CMS POS code list": STRS,
    "credential list": STRS,
    "disposition list": STRS,
    "encounter kind list": STRS,
    "HCPCS code list": STRS,
    "ICD-10-CM prefix list": STRS,
    "kind list": STRS,
    "level list": STRS,
    "payer kind list": STRS,
    "place-of-service list": STRS,
    "program list": STRS,
    "setting list": STRS,
    "status code list": STRS,
    "status list": STRS,
    "minute list": INTS,
    # measurements
    "kg": FLOAT,
    "kg/m2": FLOAT,
    # money and rates: exact decimals (written as quoted strings in the YAML)
    "dollars per calendar year": DECIMAL,
    "dollars per RVU": DECIMAL,
    "dollars": DECIMAL,
    "minutes per counted minute": DECIMAL,
    "fraction": DECIMAL,
    "work GPCI (null = no floor)": OPTIONAL_DECIMAL,
    # tables
    "[kg/m2, ICD-10-CM code] list": BANDS,
    "mapping payer kind -> {coinsurance, sequestration, deductible}": MAPPING,
    "mapping rule name -> {first_unit_minutes, later_unit_minutes}": MAPPING,
    "state table": MAPPING,
    "mapping role -> dollars per year": MAPPING,
    "mapping credential -> role": MAPPING,
    # one of the parameter's `choices`
    "choice": CHOICE,
}


def value_type(unit: str) -> ValueType | None:
    """The ValueType of `unit`, or None when the unit is not a known one."""
    return UNIT_TYPES.get(unit)
