"""Validate X12 text with pyx12, an independent validator, and return what it reports.

``pyx12.x12n_document.x12n_document`` walks the document against its map of the
implementation guide (``837.5010.X222.A1.xml`` for GS08 ``005010X222A1``) and returns
only True/False; the errors it found are kept in an error-handler tree that it writes
out through visitors (a 999, HTML, or JSON). This helper asks for the JSON document
(``fd_json``), walks it (interchange, group, transaction, segment and element errors)
and turns each error into one line, so a failing test shows pyx12's own words. Errors
pyx12 only logs (a file that does not look like X12, a map that is not found) are
caught from its ``pyx12`` logger (which also repeats every listed error, so the log is
used only when the tree is empty). The ``x12valid`` script is not used: it exits 1 even
for a valid file.
"""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pyx12.errors
import pyx12.params
import pyx12.x12n_document

_PYX12_LOGGER = "pyx12"


class _Collect(logging.Handler):
    """Keeps the messages pyx12 logs at ERROR or above."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"pyx12 log: {record.getMessage()}")


def _errors_of(node: dict[str, Any], where: str) -> list[str]:
    """The errors listed on one node of pyx12's JSON error tree, located by ``where``."""
    out: list[str] = []
    for err in node.get("errors", []):
        value = err.get("err_val")
        shown = f" (value {value!r})" if value not in (None, "") else ""
        out.append(f"{where}: {err.get('err_cde')} {err.get('err_str')}{shown}")
    return out


def _walk(doc: dict[str, Any]) -> list[str]:
    """All errors of pyx12's JSON error document, outermost first, in file order."""
    out: list[str] = []
    for isa in doc.get("interchanges", []):
        out += _errors_of(isa, f"ISA line {isa.get('cur_line')}")
        for gs in isa.get("groups", []):
            out += _errors_of(gs, f"GS line {gs.get('cur_line')}")
            for st in gs.get("transactions", []):
                out += _errors_of(st, f"ST line {st.get('cur_line')}")
                for seg in st.get("segments", []):
                    where = f"line {seg.get('cur_line')} {seg.get('seg_id')} ({seg.get('name')})"
                    out += _errors_of(seg, where)
                    for ele in seg.get("elements", []):
                        pos = f"{seg.get('seg_id')}{int(ele.get('ele_pos') or 0):02d}"
                        if ele.get("subele_pos"):
                            pos += f"-{ele.get('subele_pos')}"
                        out += _errors_of(
                            ele, f"line {seg.get('cur_line')} {pos} ({ele.get('name')})"
                        )
    return out


def x12_errors(text: str) -> list[str]:
    """The errors pyx12 reports for ``text``; an empty list means the file is valid.

    If pyx12 says the document is invalid but lists no error, one line saying so is
    returned, so an empty list always means valid.
    """
    param = pyx12.params.ParamsBase()
    json_out = io.StringIO()
    collector = _Collect()
    logger = logging.getLogger(_PYX12_LOGGER)
    logger.addHandler(collector)
    try:
        valid = pyx12.x12n_document.x12n_document(
            param=param, src_file=io.StringIO(text), fd_997=None, fd_html=None, fd_json=json_out
        )
    except pyx12.errors.X12Error as exc:  # a file pyx12 cannot read at all
        return [f"pyx12 refused the file: {exc}"]
    finally:
        logger.removeHandler(collector)
    found = _walk(json.loads(json_out.getvalue())) if json_out.getvalue() else []
    if not found:  # pyx12 also logs each error it lists; keep the log only when it alone speaks
        found = list(collector.messages)
    if not valid and not found:
        found.append("pyx12 found the document invalid without listing an error")
    return found


def assert_valid_837p(text: str) -> None:
    """Fail with pyx12's messages unless ``text`` is a valid 005010X222A1 837P."""
    assert "*005010X222A1~" in text, "GS08 and ST03 must be 005010X222A1"
    errors = x12_errors(text)
    assert not errors, "pyx12 reports:\n" + "\n".join(errors)
