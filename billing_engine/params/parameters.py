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
    sources:
      SRC-CCM-MLN-2015:
        title: CMS MLN ICN 909188 'Chronic Care Management Services' (May 2015) ...
        year: 2015/2024
        address: https://docslib.org/doc/11570542/chronic-care-management-services ...

The loader is strict (``io.strict_yaml``: a repeated key is refused with its line),
every ``unit`` is one of ``params.units.UNIT_TYPES`` and every value has its unit's
type, and every source key a value cites is defined in the file's ``sources`` table
(title, address, optional year): a file carries its own provenance.

Asking for a parameter on a date before its first value or after its
``verified_through`` date raises ``ParameterNotVerified`` naming the parameter and the
date: a new year's rules are never silently last year's. Parameters marked
``setting: true`` are documented choices (the rules reference marks the point [L] or
names conflicting sources); a settings file may override them by name.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from billing_engine.errors import ConfigError
from billing_engine.io import strict_yaml
from billing_engine.params.parameter import DatedValue, Parameter
from billing_engine.params.period import PeriodParameters
from billing_engine.params.sources import (
    Source,
    check_cited,
    cited_keys,
    read_sources,
)
from billing_engine.params.units import CHOICE, value_type

# the setting of --allow-unverified (code_rules/common/parameters.yaml)
ALLOW_UNVERIFIED = "common.allow_unverified"


def _as_date(raw: object, where: str) -> dt.date:
    if isinstance(raw, dt.date):
        return raw
    try:
        return dt.date.fromisoformat(str(raw))
    except ValueError as exc:
        raise ConfigError(f"{where}: {raw!r} is not an ISO date") from exc


def _load_file(path: Path) -> list[Parameter]:
    try:
        doc = strict_yaml.load_path(path)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict) or "namespace" not in doc or "parameters" not in doc:
        raise ConfigError(f"{path}: needs 'namespace' and 'parameters'")
    namespace = str(doc["namespace"])
    sources = read_sources(doc, path)
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
            if not item.get("source"):
                raise ConfigError(f"{where}: value {i + 1} has no source")
            cited = cited_keys(item["source"], f"{where}: value {i + 1}")
            values.append(DatedValue(_as_date(item["from"], where), item["value"], cited))
        values.sort(key=lambda v: v.start)
        unit = spec.get("unit")
        if unit is None:
            raise ConfigError(f"{where}: missing 'unit'")
        kind = value_type(str(unit))
        if kind is None:
            raise ConfigError(
                f"{where}: unknown unit {unit!r} (add it with its type to "
                "billing_engine/params/units.py UNIT_TYPES)"
            )
        choices = tuple(spec.get("choices", []))
        for dated in values:
            if kind is CHOICE:
                fits = any(dated.value == c and type(dated.value) is type(c) for c in choices)
            else:
                fits = kind.accepts(dated.value)
            if not fits:
                expected = f"one of {list(choices)}" if kind is CHOICE else kind.annotation
                raise ConfigError(
                    f"{where}: value from {dated.start} {dated.value!r} is not "
                    f"{expected} (unit {unit!r})"
                )
        used = list(dict.fromkeys(k for dated in values for k in dated.sources))
        check_cited(used, sources, where)
        out.append(
            Parameter(
                name=f"{namespace}.{key}",
                description=str(spec["description"]),
                unit=str(unit),
                rules=tuple(map(str, spec.get("rules", []))),
                values=tuple(values),
                verified_through=_as_date(verified_raw, where),
                setting=bool(spec.get("setting", False)),
                choices=choices,
                file=str(path),
                source_details=tuple(sources[k] for k in used),
            )
        )
    return out


class ParameterSet:
    """All parameters found under one or more roots (default: the ``code_rules`` package)."""

    def __init__(self, parameters: Iterable[Parameter]) -> None:
        self._by_name: dict[str, Parameter] = {}
        self._sources: dict[str, Source] = {}
        for p in parameters:
            if p.name in self._by_name:
                raise ConfigError(f"parameter {p.name} is defined twice ({p.file})")
            self._by_name[p.name] = p
            for entry in p.source_details:
                known = self._sources.setdefault(entry.key, entry)
                if known != entry:
                    raise ConfigError(
                        f"source {entry.key!r} is defined differently in two files ({p.file})"
                    )

    @classmethod
    def load(cls, roots: Iterable[Path]) -> ParameterSet:
        """Every ``parameters.yaml`` below `roots` (the shipped ones: ``code_rules/``)."""
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

    def source(self, key: str) -> Source:
        """What a source key cited by some parameter stands for (title, address)."""
        try:
            return self._sources[key]
        except KeyError:
            raise ConfigError(f"no parameter cites a source {key!r}") from None

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
        doc = strict_yaml.load_path(path) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read settings: {exc}") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: settings must be a mapping of name: value")
    return {str(k): v for k, v in doc.items()}
