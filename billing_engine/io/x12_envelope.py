"""The X12 envelope around one transaction set: ISA/GS/ST ... SE/GE/IEA.

``enveloped(envelope, transaction)`` puts the segments of one transaction set (what
comes between ST and SE) into one functional group of one interchange, with the
control numbers and counts the trailers check. The delimiters are those of
``x12_values``: element ``*``, component ``:`` (ISA16), repetition ``^`` (ISA11).

Source: ASC X12 TR3 005010X222A1, Appendix C (EDI control directory: ISA, GS, ST, SE,
GE, IEA).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from billing_engine.io.x12_values import (
    COMPONENT_SEPARATOR,
    LINE_BREAK,
    REPETITION_SEPARATOR,
    SEGMENT_TERMINATOR,
    X12Error,
    identifier,
    segment,
)

NO_AUTHORIZATION = "00"  # ISA01, ISA03: no authorization / security information
ISA_EMPTY_INFO = " " * 10  # ISA02, ISA04
ISA_ID_LENGTH = 15  # ISA06, ISA08 are fixed at 15 characters
ISA_ID_MIN = 2  # GS02, GS03 (the same ids) are 2-15
QUALIFIER_LENGTH = 2  # ISA05, ISA07
ISA_VERSION_LENGTH = 5  # ISA12 is GS08's version-release without its last digit: 00501
ISA_CONTROL_DIGITS = 9  # ISA13
ST_CONTROL_MIN_DIGITS = 4  # ST02 is 4-9 characters
MAX_CONTROL_NUMBER = 999_999_999
NO_ACK_REQUESTED = "0"  # ISA14
USAGE_CODES = frozenset({"P", "T"})  # ISA15 production / test
RESPONSIBLE_AGENCY = "X"  # GS07: ASC X12
ONE_GROUP = "1"  # IEA01: this envelope holds one functional group
SEGMENTS_AROUND = 2  # ST and SE, counted in SE01 with the transaction's segments


@dataclass(frozen=True)
class Envelope:
    """What the envelope segments carry. ``version_code`` is GS08 and ST03 (e.g.
    ``005010X222A1``); ISA12 is its version-release without the last digit (``00501``).
    ``control_number`` is ISA13 (zero-padded to 9), GS06 and ST02 (at least 4 digits).
    """

    sender_id: str
    receiver_id: str
    sender_qualifier: str
    receiver_qualifier: str
    control_number: int
    created: datetime.datetime
    usage: str
    functional_id: str  # GS01, e.g. HC
    transaction_set: str  # ST01, e.g. 837
    version_code: str


def _checked(env: Envelope) -> tuple[str, str]:
    """The sender and receiver ids, once every envelope value has been checked."""
    where = "interchange"
    if not 0 < env.control_number <= MAX_CONTROL_NUMBER:
        raise X12Error(f"{where} control number: {env.control_number} must be 1-999999999")
    if env.usage not in USAGE_CODES:
        raise X12Error(f"{where} usage (ISA15): {env.usage!r} is not P or T")
    for qualifier in (env.sender_qualifier, env.receiver_qualifier):
        identifier(
            qualifier, f"{where} id qualifier (ISA05/07)", QUALIFIER_LENGTH, QUALIFIER_LENGTH
        )
    return (
        identifier(env.sender_id, f"{where} sender id (ISA06)", ISA_ID_LENGTH, ISA_ID_MIN),
        identifier(env.receiver_id, f"{where} receiver id (ISA08)", ISA_ID_LENGTH, ISA_ID_MIN),
    )


def enveloped(env: Envelope, transactions: Sequence[Sequence[str]]) -> list[str]:
    """ISA, GS, each transaction set between its ST and SE (the count), GE and IEA.

    The transaction sets of the group are numbered 0001, 0002, ... (ST02 = SE02), unique
    within the group as the guide asks; GE01 counts them.
    """
    sender, receiver = _checked(env)
    control = str(env.control_number)
    isa_control = control.zfill(ISA_CONTROL_DIGITS)
    time4 = env.created.strftime("%H%M")
    isa = segment(
        "ISA",
        NO_AUTHORIZATION,
        ISA_EMPTY_INFO,
        NO_AUTHORIZATION,
        ISA_EMPTY_INFO,
        env.sender_qualifier,
        sender.ljust(ISA_ID_LENGTH),
        env.receiver_qualifier,
        receiver.ljust(ISA_ID_LENGTH),
        env.created.strftime("%y%m%d"),
        time4,
        REPETITION_SEPARATOR,
        env.version_code[:ISA_VERSION_LENGTH],
        isa_control,
        NO_ACK_REQUESTED,
        env.usage,
        COMPONENT_SEPARATOR,
    )
    gs = segment(
        "GS",
        env.functional_id,
        sender,
        receiver,
        env.created.strftime("%Y%m%d"),
        time4,
        control,
        RESPONSIBLE_AGENCY,
        env.version_code,
    )
    out = [isa, gs]
    for number, transaction in enumerate(transactions, start=1):
        st_control = str(number).zfill(ST_CONTROL_MIN_DIGITS)
        out.append(segment("ST", env.transaction_set, st_control, env.version_code))
        out.extend(transaction)
        out.append(segment("SE", str(len(transaction) + SEGMENTS_AROUND), st_control))
    out.append(segment("GE", str(len(transactions)), control))
    out.append(segment("IEA", ONE_GROUP, isa_control))
    return out


def x12_text(segments: Sequence[str]) -> str:
    """The segments as a file: each ends with the terminator ``~`` and a line break."""
    return "".join(s + SEGMENT_TERMINATOR + LINE_BREAK for s in segments)
