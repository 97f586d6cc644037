"""Effective-dated parameters with provenance.

Every threshold, code, cap and setting the rules use lives in a ``parameters.yaml``
under ``code_rules/`` (one per family, plus ``code_rules/common``). A file looks like::

    namespace: ccm
    description: Chronic care management
    verified_through: 2026-12-31        # default for every parameter in the file
    parameters:
      staff.threshold_minutes:
        description: Clinical-staff minutes in the calendar month needed for the base code.
        unit: minute
        rules: [CCM-T1, TIME-2]
        values:
          - {from: 2022-01-01, value: 20, source: [SRC-CCM-MLN-2015]}

Asking for a parameter on a date before its first value or after its
``verified_through`` date raises ``ParameterNotVerified`` naming the parameter and the
date: a new year's rules are never silently last year's. Parameters marked
``setting: true`` are documented choices (the rules reference marks the point [L] or
names conflicting sources); a settings file may override them by name.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from billing_engine.errors import ConfigError, ParameterNotVerified

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# the setting of --allow-unverified (code_rules/common/parameters.yaml)
ALLOW_UNVERIFIED = "common.allow_unverified"


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


def _as_date(raw: object, where: str) -> dt.date:
    if isinstance(raw, dt.date):
        return raw
    try:
        return dt.date.fromisoformat(str(raw))
    except ValueError as exc:
        raise ConfigError(f"{where}: {raw!r} is not an ISO date") from exc


def _load_file(path: Path) -> list[Parameter]:
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict) or "namespace" not in doc or "parameters" not in doc:
        raise ConfigError(f"{path}: needs 'namespace' and 'parameters'")
    namespace = str(doc["namespace"])
    file_verified = doc.get("verified_through")
    out: list[Parameter] = []
    for key, spec in (doc["parameters"] or {}).items():
        where = f"{path}: parameter {namespace}.{key}"
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: must be a mapping")
        for required in ("description", "values"):
            if required not in spec:
                raise ConfigError(f"{where}: missing {required!r}")
        verified_raw = spec.get("verified_through", file_verified)
        if verified_raw is None:
            raise ConfigError(f"{where}: no verified_through date (file or parameter)")
        values: list[DatedValue] = []
        for i, item in enumerate(spec["values"]):
            if not isinstance(item, dict) or "from" not in item or "value" not in item:
                raise ConfigError(f"{where}: value {i + 1} needs 'from' and 'value'")
            sources = item.get("source")
            if isinstance(sources, str):
                sources = [sources]
            if not sources:
                raise ConfigError(f"{where}: value {i + 1} has no source")
            values.append(
                DatedValue(_as_date(item["from"], where), item["value"], tuple(map(str, sources)))
            )
        values.sort(key=lambda v: v.start)
        out.append(
            Parameter(
                name=f"{namespace}.{key}",
                description=str(spec["description"]),
                unit=str(spec.get("unit", "")),
                rules=tuple(map(str, spec.get("rules", []))),
                values=tuple(values),
                verified_through=_as_date(verified_raw, where),
                setting=bool(spec.get("setting", False)),
                choices=tuple(spec.get("choices", [])),
                file=str(path),
            )
        )
    return out


@dataclass(frozen=True)
class UsedValue:
    name: str
    value: Any
    sources: tuple[str, ...]
    overridden: bool = False


@dataclass
class PeriodParameters:
    """Parameter values resolved for one period (checked verified at both ends).

    Values are taken at the period's first day. Every access is recorded in ``used``
    so that claim lines and ``billing explain`` can show what was applied and why.
    """

    params: ParameterSet
    start: dt.date
    end: dt.date
    overrides: Mapping[str, Any] = field(default_factory=dict)
    used: dict[str, UsedValue] = field(default_factory=dict)
    # --allow-unverified: a parameter past its verified date keeps its last verified
    # value; `unverified` records each one so used (name -> its verified_through)
    allow_unverified: bool = False
    unverified: dict[str, dt.date] = field(default_factory=dict)

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


class ParameterSet:
    """All parameters found under one or more roots (default: the ``code_rules`` package)."""

    def __init__(self, parameters: Iterable[Parameter]) -> None:
        self._by_name: dict[str, Parameter] = {}
        for p in parameters:
            if p.name in self._by_name:
                raise ConfigError(f"parameter {p.name} is defined twice ({p.file})")
            self._by_name[p.name] = p

    @classmethod
    def load(cls, roots: Iterable[Path] | None = None) -> ParameterSet:
        if roots is None:
            import code_rules

            roots = [Path(code_rules.__file__).parent]
        params: list[Parameter] = []
        for root in roots:
            for path in sorted(root.rglob("parameters.yaml")):
                params.extend(_load_file(path))
        return cls(params)

    def get(self, name: str) -> Parameter:
        try:
            return self._by_name[name]
        except KeyError:
            raise ConfigError(f"unknown parameter {name!r}") from None

    def __iter__(self) -> Any:
        return iter(self._by_name.values())

    def with_values(self, values: Mapping[str, Any], *, source: str) -> ParameterSet:
        """A copy in which each named parameter has one value, `source` its source.

        The value holds over the parameter's whole verified span (from its first value
        through ``verified_through``), so a rule case can try next year's threshold
        without editing the shipped YAML. Rule parameters and settings alike; this set
        is left unchanged. An unknown name is a ``ConfigError``.
        """
        changed: dict[str, Parameter] = {}
        for name, value in values.items():
            param = self.get(name)
            start = param.values[0].start if param.values else dt.date.min
            changed[name] = replace(param, values=(DatedValue(start, value, (source,)),))
        return ParameterSet(changed.get(p.name, p) for p in self._by_name.values())

    def settings(self) -> list[Parameter]:
        return [p for p in self._by_name.values() if p.setting]

    def for_period(
        self,
        start: dt.date,
        end: dt.date,
        overrides: Mapping[str, Any] | None = None,
        *,
        allow_unverified: bool = False,
    ) -> PeriodParameters:
        overrides = dict(overrides or {})
        for name, value in overrides.items():
            param = self.get(name)
            if not param.setting:
                raise ConfigError(
                    f"{name!r} is a rule parameter, not a setting; it can't be overridden"
                )
            if param.choices and value not in param.choices:
                raise ConfigError(
                    f"setting {name!r} must be one of {list(param.choices)}, got {value!r}"
                )
        # the setting means the same as the flag; it is a choice of the run, not a value
        # the rules read
        allow = allow_unverified or overrides.pop(ALLOW_UNVERIFIED, False) is True
        return PeriodParameters(self, start, end, overrides, allow_unverified=allow)

    def version(self) -> str:
        """A short fingerprint of every value and date: the rule-set version of a run."""
        import hashlib

        digest = hashlib.sha256()
        for name in sorted(self._by_name):
            p = self._by_name[name]
            digest.update(
                repr((name, p.verified_through, [(v.start, v.value) for v in p.values])).encode()
            )
        return digest.hexdigest()[:12]


def load_settings_file(path: Path) -> dict[str, Any]:
    """Read a YAML mapping of setting name -> value (``billing ... --settings FILE``)."""
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read settings: {exc}") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: settings must be a mapping of name: value")
    return {str(k): v for k, v in doc.items()}
