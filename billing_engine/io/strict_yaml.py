"""The one YAML reader of the engine's own files: safe, fast, and strict about keys.

PyYAML keeps the last of two equal keys in a mapping without a word, so a parameter
pasted twice, or a second ``value:`` under one date, silently replaces the first.
``StrictLoader`` (the C loader when libyaml is there, else the pure-Python one)
refuses it: ``load_text`` / ``load_path`` raise ``ConfigError`` naming the file, the
line of the repeated key and the key. Merge keys (``<<``) may still be overridden by
an explicit key, as YAML means them to be. Every other YAML error is left to the
caller (``yaml.YAMLError``), which says what file it was reading.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node

from billing_engine.errors import ConfigError

_BASE: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class DuplicateKeyError(ConstructorError):
    """A mapping repeats a key; ``key``, ``line`` and ``first_line`` say where (1-based)."""

    def __init__(self, key: object, line: int, first_line: int, node: Node) -> None:
        self.key = key
        self.line = line
        self.first_line = first_line
        super().__init__(
            None, None, f"duplicate key {key!r} (first at line {first_line})", node.start_mark
        )


class StrictLoader(_BASE):  # type: ignore[misc, valid-type]
    """``yaml.CSafeLoader`` (or ``SafeLoader``) that refuses a key repeated in a mapping."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        pairs = node.value  # flatten_mapping deletes the merge entries from this list
        count = len(pairs)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        # fast path: no merge key and as many entries as keys, so no key was repeated
        if len(mapping) < count or len(pairs) != count or node.value is not pairs:
            _refuse_repeated(self, [key for key, _ in pairs])
        return mapping


def _refuse_repeated(loader: StrictLoader, keys: list[Node]) -> None:
    seen: dict[Any, int] = {}
    for key_node in keys:
        key = loader.construct_object(key_node)
        line = key_node.start_mark.line + 1
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key: the base constructor refuses it already
            continue
        if first is not None:
            raise DuplicateKeyError(key, line, first, key_node)
        seen[key] = line


def load_text(text: str, source: str | Path) -> Any:
    """The document in `text` (read from `source`, named in errors)."""
    try:
        return yaml.load(text, Loader=StrictLoader)  # a SafeLoader subclass
    except DuplicateKeyError as exc:
        raise ConfigError(
            f"{source}, line {exc.line}: duplicate key {exc.key!r} "
            f"(first at line {exc.first_line}); a YAML mapping keeps only one"
        ) from exc


def load_path(path: Path) -> Any:
    """The document in the UTF-8 file `path`; ``OSError`` and ``yaml.YAMLError`` pass."""
    return load_text(path.read_text(encoding="utf-8"), path)
