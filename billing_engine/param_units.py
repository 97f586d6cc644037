"""The closed table of parameter units and the type of value each one holds.

Every parameter in ``code_rules/**/parameters.yaml`` names a ``unit``; the loader
(``billing_engine.params``) refuses a unit missing from ``UNIT_TYPES`` and a value that
does not have its unit's type. A new unit is added here, with its type, in the same
change as the first parameter that uses it.

Type names read like Python annotations, over these atoms:

- ``int`` a whole number (not true/false), ``float`` any number (not true/false),
  ``str`` text, ``bool`` true/false, ``None`` null, ``object`` anything;
- ``decimal`` an exact amount written as a quoted string (``"32.7442"``), read by
  ``decimal.Decimal``; ``date`` an ISO date;
- ``choice`` one of the parameter's own ``choices`` (a typed accessor makes it a
  ``Literal`` of them);
- ``list[T]``, ``tuple[T, U]`` (a YAML sequence of exactly those items),
  ``dict[K, V]`` and unions ``T | U``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from functools import cache

UNIT_TYPES: dict[str, str] = {
    # codes and names
    "HCPCS code": "str",
    "HCPCS code (visit context, not billed here)": "str",
    "HCPCS code list": "list[str]",
    "CMS POS code": "str",
    "CMS POS code list": "list[str]",
    "place-of-service list": "list[str]",
    "ICD-10-CM prefix list": "list[str]",
    "[kg/m2, ICD-10-CM code] list": "list[tuple[float, str]]",
    "MDM level": "str",
    "level list": "list[str]",
    "activity": "str",
    "activity list": "list[str]",
    "action list": "list[str]",
    "credential list": "list[str]",
    "disposition list": "list[str]",
    "encounter kind": "str",
    "encounter kind list": "list[str]",
    "kind list": "list[str]",
    "payer kind list": "list[str]",
    "program": "str",
    "program list": "list[str]",
    "referral reason": "str",
    "referral service": "str",
    "setting list": "list[str]",
    "status list": "list[str]",
    "status code list": "list[str]",
    # counts and durations
    "attempt": "int",
    "count": "int",
    "session": "int",
    "unit": "int",
    "minute": "int",
    "day": "int",
    "calendar day": "int",
    "business day": "int",
    "month": "int",
    "year": "int",
    # measures and money
    "kg": "float",
    "kg/m2": "float",
    "fraction": "decimal",
    "dollars per RVU": "decimal",
    "dollars per calendar year": "decimal",
    "work GPCI (null = no floor)": "decimal | None",
    # switches and tables
    "boolean": "bool",
    "choice": "choice",
    "minute rule table": "dict[str, dict[str, int]]",
    "state table": "dict[str, dict[str, object]]",
    "mapping payer kind -> {coinsurance, sequestration, deductible}": (
        "dict[str, dict[str, decimal | bool]]"
    ),
}


def matches(type_name: str, value: object, choices: Sequence[object] = ()) -> bool:
    """Whether `value` (as YAML read it) has the type `type_name` of ``UNIT_TYPES``."""
    return _checker(type_name)(value, tuple(choices))


Check = Callable[[object, tuple[object, ...]], bool]


@cache
def _checker(type_name: str) -> Check:
    """`type_name` compiled once into a check (``ValueError`` on an unknown type)."""
    name = type_name.strip()
    parts = _split(name, "|")
    if len(parts) > 1:
        alternatives = [_checker(alt) for alt in parts]
        return lambda v, c: any(check(v, c) for check in alternatives)
    if name.endswith("]"):
        outer, _, inner = name[:-1].partition("[")
        args = [_checker(arg) for arg in _split(inner, ",")]
        if outer == "list" and len(args) == 1:
            item = args[0]
            return lambda v, c: isinstance(v, list) and all(item(x, ()) for x in v)
        if outer == "tuple":
            return lambda v, c: (
                isinstance(v, list | tuple)
                and len(v) == len(args)
                and all(a(x, ()) for a, x in zip(args, v, strict=True))
            )
        if outer == "dict" and len(args) == 2:
            key, val = args
            return lambda v, c: (
                isinstance(v, dict) and all(key(k, ()) and val(x, ()) for k, x in v.items())
            )
        raise ValueError(f"unknown type {type_name!r}")
    if name not in _ATOMS:
        raise ValueError(f"unknown type {type_name!r}")
    return _ATOMS[name]


def _choice(value: object, choices: tuple[object, ...]) -> bool:
    # the same value and the same type: true is not 1
    return any(value == c and type(value) is type(c) for c in choices)


def _decimal(value: object, _: tuple[object, ...]) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return Decimal(value).is_finite()
    except InvalidOperation:
        return False


_ATOMS: dict[str, Check] = {
    "choice": _choice,
    "int": lambda v, _: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v, _: isinstance(v, int | float) and not isinstance(v, bool),
    "str": lambda v, _: isinstance(v, str),
    "bool": lambda v, _: isinstance(v, bool),
    "None": lambda v, _: v is None,
    "object": lambda v, _: True,
    "date": lambda v, _: isinstance(v, dt.date) and not isinstance(v, dt.datetime),
    "decimal": _decimal,
}


def _split(text: str, sep: str) -> list[str]:
    """`text` split at `sep` outside brackets."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif char == sep and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts
