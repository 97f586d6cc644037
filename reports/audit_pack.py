"""The audit pack as one self-contained, print-friendly HTML page (no scripts, no network)."""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache

import jinja2
import markupsafe

from billing_engine.services.audit_pack import AuditPack
from reports import TEMPLATES

TEMPLATE = "audit_pack.html.j2"


BOLD = re.compile(r"\*\*(.+?)\*\*")
CODE = re.compile(r"`([^`]+)`")


def inline_markdown(text: object) -> markupsafe.Markup:
    """The rules reference's inline marks (``**bold**``, `` `code` ``) as HTML, the
    text itself escaped first."""
    escaped = str(markupsafe.escape("" if text is None else text))
    return markupsafe.Markup(
        CODE.sub(r"<code>\1</code>", BOLD.sub(r"<strong>\1</strong>", escaped))
    )


@lru_cache(maxsize=1)
def html_environment() -> jinja2.Environment:
    """The templates, autoescaped: a name or note with ``<`` stays text."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["md"] = inline_markdown
    return env


def render_audit_pack(pack: AuditPack, *, made_at: dt.datetime, made_by: str) -> str:
    return (
        html_environment()
        .get_template(TEMPLATE)
        .render(
            x=pack.explanation,
            p=pack.patient,
            consents=pack.consents,
            care_plans=pack.care_plans,
            timeline=pack.timeline,
            rules=pack.rules,
            sources=pack.sources,
            made_at=made_at.strftime("%Y-%m-%d %H:%M UTC"),
            made_by=made_by,
        )
    )
