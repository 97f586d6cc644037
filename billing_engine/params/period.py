"""The parameters of one period: values at its dates, each read recorded.

``ParameterSet.for_period`` makes one; the engine reads every threshold, code and
setting through it (``code_rules/parameters_typed.py`` gives typed readers).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from billing_engine.errors import ConfigError
from billing_engine.params.parameter import Parameter


class ParameterLookup(Protocol):
    """What a period reads its parameters from (a ``ParameterSet``)."""

    def get(self, name: str) -> Parameter: ...


@dataclass(frozen=True)
class UsedValue:
    name: str
    value: Any
    sources: tuple[str, ...]
    overridden: bool = False


@dataclass
class ReadLog:
    """What one evaluation read: every parameter value as used, and (under
    --allow-unverified) each one carried past its verified date, with that date."""

    used: dict[str, UsedValue] = field(default_factory=dict)
    unverified: dict[str, dt.date] = field(default_factory=dict)


@dataclass(frozen=True)
class PeriodParameters:
    """Parameter values resolved for one period (checked verified at both ends).

    Immutable but for its ``log``: values are taken at the period's first day, and every
    access is recorded there so that claim lines and ``billing explain`` can show what
    was applied and why.
    """

    params: ParameterLookup
    start: dt.date
    end: dt.date
    overrides: Mapping[str, Any] = field(default_factory=dict)
    # --allow-unverified: a parameter past its verified date keeps its last verified
    # value; the log's `unverified` records each one so used
    allow_unverified: bool = False
    log: ReadLog = field(default_factory=ReadLog)

    @property
    def used(self) -> dict[str, UsedValue]:
        return self.log.used

    @property
    def unverified(self) -> dict[str, dt.date]:
        return self.log.unverified

    def __getitem__(self, name: str) -> Any:
        param = self.params.get(name)
        if self.allow_unverified and not param.verified_on(self.end):
            dated = param.carried(self.start)
            param.carried(self.end)  # still refused before the first value
            self.note_unverified(name, self.end)
        else:
            dated = param.at(self.start)
            param.at(self.end)  # the whole period must be verified
        value = dated.value
        overridden = name in self.overrides
        if overridden:
            value = self.overrides[name]
        self.used[name] = UsedValue(name, value, dated.sources, overridden)
        return value

    def note_unverified(self, name: str, last_day: object) -> None:
        """Record `name` as carried forward if `last_day` is past its verified date."""
        param = self.params.get(name)
        if isinstance(last_day, dt.date) and last_day > param.verified_through:
            self.unverified[name] = param.verified_through

    def as_int(self, name: str) -> int:
        value = self[name]
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"parameter {name!r} must be a whole number, got {value!r}")
        return value

    def as_str(self, name: str) -> str:
        return str(self[name])

    def as_bool(self, name: str) -> bool:
        value = self[name]
        if not isinstance(value, bool):
            raise ConfigError(f"parameter {name!r} must be true or false, got {value!r}")
        return value

    def as_strs(self, name: str) -> list[str]:
        value = self[name]
        if not isinstance(value, list):
            raise ConfigError(f"parameter {name!r} must be a list, got {value!r}")
        return [str(v) for v in value]

    def as_ints(self, name: str) -> list[int]:
        value = self[name]
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise ConfigError(f"parameter {name!r} must be a list of whole numbers, got {value!r}")
        return list(value)

    def as_float(self, name: str) -> float:
        value = self[name]
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ConfigError(f"parameter {name!r} must be a number, got {value!r}")
        return float(value)

    def as_decimal(self, name: str) -> Decimal:
        value = self.as_optional_decimal(name)
        if value is None:
            raise ConfigError(f"parameter {name!r} must be a decimal number, got None")
        return value

    def as_optional_decimal(self, name: str) -> Decimal | None:
        """A decimal written as a string ("0.20") or a whole number; null reads as None."""
        value = self[name]
        if value is None:
            return None
        if isinstance(value, str | int | Decimal) and not isinstance(value, bool):
            try:
                return Decimal(str(value))
            except InvalidOperation:
                pass
        raise ConfigError(f"parameter {name!r} must be a decimal number, got {value!r}")

    def as_mapping(self, name: str) -> Mapping[str, Any]:
        """A table (YAML mapping); null, as a settings file may write it, reads as empty."""
        value = self[name]
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ConfigError(f"parameter {name!r} must be a mapping, got {value!r}")
        return value

    def as_bands(self, name: str) -> list[tuple[float, str]]:
        """A list of [number, code] pairs."""
        value = self[name]
        if not isinstance(value, list) or not all(
            isinstance(band, list | tuple)
            and len(band) == 2
            and isinstance(band[0], int | float)
            and not isinstance(band[0], bool)
            for band in value
        ):
            raise ConfigError(f"parameter {name!r} must be a list of [number, code], got {value!r}")
        return [(float(low), str(code)) for low, code in value]

    def as_choice(self, name: str) -> object:
        """The value, checked to be one of the parameter's ``choices``."""
        value = self[name]
        choices = self.params.get(name).choices
        if value not in choices:
            raise ConfigError(f"parameter {name!r} must be one of {list(choices)}, got {value!r}")
        return value
