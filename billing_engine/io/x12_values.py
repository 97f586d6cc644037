"""Values of ASC X12 text: delimiters, character sets, and the cleaning and checking of
element values, shared by the X12 writers (``x12_837p``).

Free text is cleaned to the X12 basic character set (``clean_text``); identifiers are
checked, never altered (``identifier``); amounts are written as type R
(``format_amount``). Every refusal is an ``X12Error`` whose message names where.

Source: ASC X12 TR3 005010X222A1, Appendix B (character sets, delimiters, data types).
"""

from __future__ import annotations

import datetime
import re
import unicodedata
from collections.abc import Sequence
from decimal import Decimal

from billing_engine.errors import BillingError

SEGMENT_TERMINATOR = "~"
LINE_BREAK = "\n"  # after each terminator: readable, and ignored by X12 readers
ELEMENT_SEPARATOR = "*"
COMPONENT_SEPARATOR = ":"
REPETITION_SEPARATOR = "^"
DELIMITERS = frozenset(
    SEGMENT_TERMINATOR + ELEMENT_SEPARATOR + COMPONENT_SEPARATOR + REPETITION_SEPARATOR
)

_BASIC_EXTRA = "!\"&'()+,-./;?= "  # X12 basic set besides A-Z 0-9, minus the delimiters
_BASIC_ALLOWED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" + _BASIC_EXTRA)
_EXTENDED_ALLOWED = (
    _BASIC_ALLOWED | frozenset("abcdefghijklmnopqrstuvwxyz%@[]_{}\\|<>`#$")
) - DELIMITERS
_SPACES = re.compile(r" +")

CENT = Decimal("0.01")
LEN_AMOUNT_DIGITS = 18  # type R: 1-18 digits, not counting sign or decimal point
ZIP_LENGTHS = (5, 9)
NPI_LENGTH = 10
# The NPI check digit is Luhn over the card prefix 80840 and the first 9 digits; the
# prefix adds a constant 24 to the Luhn sum (CMS, "Requirements for the NPI check digit").
NPI_PREFIX_LUHN_SUM = 24
LEN_PHONE = 256  # PER04


class X12Error(BillingError):
    """Input that the implementation guide cannot carry; the message names where."""


def clean_text(value: str, max_length: int) -> str:
    """``value`` in the X12 basic character set, uppercased, at most ``max_length``.

    Accents are dropped by NFKD decomposition; any other character outside the basic
    set, and the delimiters, becomes a space; runs of spaces collapse. May return "".
    """
    decomposed = unicodedata.normalize("NFKD", value)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).upper()
    kept = "".join(ch if ch in _BASIC_ALLOWED else " " for ch in stripped)
    return _SPACES.sub(" ", kept).strip()[:max_length].rstrip()


def format_amount(amount: Decimal, where: str) -> str:
    """An amount as X12 type R: whole cents, no trailing zeros (``123.4``, ``50``)."""
    if not amount.is_finite() or amount != amount.quantize(CENT):
        raise X12Error(f"{where}: amount {amount} is not a whole number of cents")
    if amount < 0:
        raise X12Error(f"{where}: amount {amount} is negative")
    if amount == 0:
        amount = Decimal(0)  # no "-0"
    text = f"{amount.quantize(CENT):f}".rstrip("0").rstrip(".")
    if len(text.replace(".", "")) > LEN_AMOUNT_DIGITS:
        raise X12Error(f"{where}: amount {amount} has more than {LEN_AMOUNT_DIGITS} digits")
    return text


def identifier(
    value: str, where: str, max_length: int, min_length: int = 1, *, phi: bool = False
) -> str:
    """An identifier as given, refused if empty, too long, padded or holding a bad character.

    ``phi`` (a member id) keeps the value out of the message, as for InputIssue.
    """
    shown = "the value" if phi else repr(value)
    if not min_length <= len(value) <= max_length:
        raise X12Error(f"{where}: {shown} must be {min_length}-{max_length} characters")
    if value != value.strip():
        raise X12Error(f"{where}: {shown} has leading or trailing spaces")
    bad = sorted({ch for ch in value if ch not in _EXTENDED_ALLOWED})
    if bad:
        listed = "" if phi else f": {bad}"
        raise X12Error(f"{where}: {shown} holds characters X12 cannot carry{listed}")
    return value


def matching(value: str, pattern: re.Pattern[str], where: str, what: str) -> str:
    """``value`` if it matches ``pattern``, else an error saying it must be ``what``."""
    if not pattern.match(value):
        raise X12Error(f"{where}: {value!r} is not {what}")
    return value


def cleaned_name(value: str, where: str, max_length: int, *, required: bool = True) -> str:
    """A cleaned name; an error if it is required and nothing is left after cleaning.

    The value is not repeated in the message: names and addresses are PHI.
    """
    cleaned = clean_text(value, max_length)
    if required and not cleaned:
        raise X12Error(f"{where}: empty once cleaned to the X12 character set")
    return cleaned


def npi_is_valid(npi: str) -> bool:
    """True for 10 digits whose last is the Luhn check digit of the NPI standard.

    Luhn runs over the prefix 80840 and the first nine digits; the prefix adds
    ``NPI_PREFIX_LUHN_SUM`` to the sum, so only the ten digits need walking.
    """
    if len(npi) != NPI_LENGTH or not npi.isdigit():
        return False
    total = NPI_PREFIX_LUHN_SUM
    for index, char in enumerate(reversed(npi)):
        digit = int(char)
        if index % 2 == 1:  # every second digit from the right (the check digit is first)
            digit *= 2
            digit = digit - 9 if digit > 9 else digit
        total += digit
    return total % 10 == 0


def checked_npi(value: str, where: str) -> str:
    """``value`` if it is a valid NPI, else an error naming ``where``."""
    if not npi_is_valid(value):
        raise X12Error(f"{where}: {value!r} is not a valid NPI (10 digits, Luhn check digit)")
    return value


def digits(value: str) -> str:
    """The digits of ``value``, in order (a TIN or telephone without its punctuation)."""
    return "".join(ch for ch in value if ch.isdigit())


def zip_code(value: str, where: str, lengths: Sequence[int] = ZIP_LENGTHS) -> str:
    """A ZIP code of one of ``lengths`` digits (a hyphen or space is dropped), else an error."""
    found = value.replace("-", "").replace(" ", "")
    if not found.isdigit() or len(found) not in lengths:
        wanted = " or ".join(str(n) for n in lengths)
        raise X12Error(f"{where}: the ZIP code must be {wanted} digits")
    return found


def phone(value: str, where: str) -> str:
    """A telephone number as digits only (PER04 wants AAABBBCCCC), else an error."""
    found = digits(value)
    if not found or len(found) > LEN_PHONE:
        raise X12Error(f"{where}: telephone {value!r} must have 1-{LEN_PHONE} digits")
    return found


def x12_date(value: datetime.date) -> str:
    """A date as X12 D8: CCYYMMDD."""
    return value.strftime("%Y%m%d")


# --- Segments -------------------------------------------------------------------------


def segment(seg_id: str, *elements: str) -> str:
    """One segment without its terminator; trailing empty elements are dropped."""
    items = [seg_id, *elements]
    while items and items[-1] == "":
        items.pop()
    return ELEMENT_SEPARATOR.join(items)


def composite(*components: str) -> str:
    """One composite element; trailing empty components are dropped."""
    items = list(components)
    while items and items[-1] == "":
        items.pop()
    return COMPONENT_SEPARATOR.join(items)
