"""The rules reference's rule texts, as shipped (``rule_texts.yaml``; see build_rule_texts)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from billing_engine.io.strict_yaml import load_path

RULE_TEXTS = Path(__file__).resolve().with_name("rule_texts.yaml")


@lru_cache(maxsize=1)
def rule_texts() -> dict[str, Any]:
    """``{"rules": {id: {title, text, confidence, sources, section}}, "sources": {key: ...}}``."""
    loaded = load_path(RULE_TEXTS)
    return dict(loaded) if isinstance(loaded, dict) else {"rules": {}, "sources": {}}
