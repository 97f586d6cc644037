"""One parameter: its dated values with their sources, and its verified-through date."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from billing_engine.errors import ParameterNotVerified
from billing_engine.params.sources import Source


@dataclass(frozen=True)
class DatedValue:
    start: dt.date
    value: Any
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Parameter:
    name: str  # fully qualified: namespace.key
    description: str
    unit: str
    rules: tuple[str, ...]
    values: tuple[DatedValue, ...]  # sorted by start
    verified_through: dt.date
    setting: bool = False
    choices: tuple[Any, ...] = ()
    file: str = ""
    # the file's entries for the keys its values cite, in order of first citation
    source_details: tuple[Source, ...] = ()

    def verified_on(self, on: dt.date) -> bool:
        return bool(self.values) and self.values[0].start <= on <= self.verified_through

    def carried(self, on: dt.date) -> DatedValue:
        """The value on `on`, or past ``verified_through`` the last verified value."""
        return self.at(min(on, self.verified_through))

    def at(self, on: dt.date) -> DatedValue:
        if not self.values or on < self.values[0].start or on > self.verified_through:
            first = self.values[0].start if self.values else None
            raise ParameterNotVerified(
                self.name, on, f"verified from {first} through {self.verified_through}"
            )
        current = self.values[0]
        for dated in self.values:
            if dated.start <= on:
                current = dated
            else:
                break
        return current
