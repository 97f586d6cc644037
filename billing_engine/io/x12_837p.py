"""Writer of ASC X12 005010X222A1 (837 Professional) claim files.

``render_837p(interchange)`` writes one interchange (ISA..IEA) holding one functional
group (GS, ``HC``) holding one transaction set (ST ``837``) that carries every claim of
the interchange. It is pure: the same ``Interchange`` gives the same bytes; nothing is
read from the clock, the environment or a file.

Loops and segments written, in the order the implementation guide requires:

- Envelope: ISA (ISA11 repetition ``^``, ISA12 ``00501``, ISA13 = control number
  zero-padded to 9, ISA15 usage ``P``/``T``, ISA16 component ``:``), GS (``HC``, GS06 =
  control number, GS08 ``005010X222A1``), ST (ST02 = control number, at least 4
  digits, ST03 ``005010X222A1``), BHT (``0019``, ``00`` original, reference id,
  date, time, ``CH`` chargeable); SE with the count of segments ST..SE, GE, IEA.
- 1000A submitter: NM1*41*2 with the submitter id (``46``), PER*IC (contact, TE).
- 1000B receiver: NM1*40*2 with the receiver id (``46``).
- 2000A billing provider: HL*1**20*1, PRV*BI*PXC (taxonomy); 2010AA NM1*85*2 (NPI
  ``XX``), N3, N4 (ZIP+4: the guide requires nine digits here), REF*EI (TIN), PER*IC
  (telephone, when given).
- 2000B subscriber, one per claim: HL*n*1*22*(1 when a patient loop follows, else 0),
  SBR (``P``, ``18`` when the patient is the subscriber, group number, SBR09 claim
  filing indicator); 2010BA NM1*IL*1 (member id ``MI``), and when the patient is the
  subscriber N3, N4, DMG; 2010BB payer NM1*PR*2 (payer id ``PI``).
- 2000C patient, when the patient is not the subscriber: HL*n*(subscriber)*23*0, PAT
  (spouse ``01``, child ``19``, other ``G8``); 2010CA NM1*QC*1, N3, N4, DMG.
- 2300 claim: CLM (claim id, total charge, ``pos:B:frequency``, Y, A, Y, Y), REF*F8
  (payer claim control number) for a replacement (``7``) or void (``8``), HI (``ABK``
  then ``ABF``, at most 12, ICD-10 without the dot); 2310B rendering provider NM1*82*1
  (NPI) and PRV*PE*PXC, only when its NPI is not the billing provider's.
- 2400 service lines, at most 50 a claim: LX, SV1 (``HC:code:modifiers``, charge,
  ``UN``, units, place of service only when it differs from the claim's, up to four
  diagnosis pointers), DTP*472*D8, REF*6R (line item control number, when given).

Values are formatted as the guide's data types want: amounts (type R) without trailing
zeros (``123.4``, ``50``), dates CCYYMMDD, times HHMM, ZIP codes of 5 or 9 digits,
telephone numbers as digits only. Trailing empty elements and components are dropped.

Free text (names, addresses, cities) is cleaned to the X12 basic character set:
accents are removed by Unicode decomposition (``é`` -> ``E``), letters are uppercased,
any other character outside the basic set -- and the delimiters ``* : ^ ~`` -- becomes
a space, runs of spaces collapse, and the result is truncated to the element's maximum
length. Identifiers (claim ids, member ids, payer ids, codes) are never altered: one
that is empty, too long or holds a character outside the extended set (or a delimiter)
is refused with ``X12Error``, as is any input the guide cannot carry (no claims, no
lines, more than 50 lines, more than 12 diagnoses, a pointer to no diagnosis, an
invalid NPI, ...). Every message names the claim and the field; it repeats the value
only where that is no PHI (never a name, address, ZIP or member id).

Sources: the ASC X12 TR3 005010X222A1, Health Care Claim: Professional (837), loop by
loop (usage, element lengths, repeats); consulted for comparison: OpenEMR's
``src/Billing/X125010837P.php`` (its loop-by-loop writer) and the TR3 example claims in
LinuxForHealth/x12 ``src/tests/resources/837_005010X222A2/``. The tests validate every
file written with pyx12 (``tests/x12_check.py``).
"""

from __future__ import annotations

import datetime
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from billing_engine.errors import BillingError

# --- Delimiters and envelope constants (TR3 Appendix C, ISA/GS/ST) ----------------------

SEGMENT_TERMINATOR = "~"
LINE_BREAK = "\n"  # after each terminator: readable, and ignored by X12 readers
ELEMENT_SEPARATOR = "*"
COMPONENT_SEPARATOR = ":"
REPETITION_SEPARATOR = "^"
DELIMITERS = frozenset(
    SEGMENT_TERMINATOR + ELEMENT_SEPARATOR + COMPONENT_SEPARATOR + REPETITION_SEPARATOR
)

X12_VERSION_RELEASE = "005010"  # GS08 version and release
VERSION_CODE = X12_VERSION_RELEASE + "X222A1"  # GS08, ST03: the 837P TR3 and its addenda
# ISA12 names the control-segment version: the version-release without its last digit.
ISA_VERSION = X12_VERSION_RELEASE[:5]
NO_AUTHORIZATION = "00"  # ISA01, ISA03: no authorization / security information
ISA_EMPTY_INFO = " " * 10  # ISA02, ISA04
MUTUALLY_DEFINED = "ZZ"  # ISA05/ISA07 default qualifier
ISA_ID_LENGTH = 15  # ISA06, ISA08 are fixed at 15 characters
ISA_CONTROL_DIGITS = 9  # ISA13
ST_CONTROL_MIN_DIGITS = 4  # ST02 is 4-9 characters
MAX_CONTROL_NUMBER = 999_999_999
NO_ACK_REQUESTED = "0"  # ISA14
USAGE_CODES = frozenset({"P", "T"})  # ISA15 production / test
GS_ID_MIN, GS_ID_MAX = 2, 15  # GS02, GS03
FUNCTIONAL_ID = "HC"  # GS01: health care claim
RESPONSIBLE_AGENCY = "X"  # GS07
TRANSACTION_SET = "837"
BHT_STRUCTURE = "0019"  # BHT01: information source, subscriber, dependent
BHT_ORIGINAL = "00"  # BHT02
BHT_CHARGEABLE = "CH"  # BHT06

# --- Limits of the 837P TR3 ------------------------------------------------------------

MAX_CLAIMS_PER_TRANSACTION = 5000  # TR3 1.4.1: at most 5000 CLM per ST-SE
MAX_LINES_PER_CLAIM = 50  # loop 2400 repeat
MAX_DIAGNOSES = 12  # HI: ABK + 11 ABF
MAX_POINTERS = 4  # SV107-1..4
MAX_MODIFIERS = 4  # SV101-3..6
MODIFIER_LENGTH = 2
NPI_LENGTH = 10
TIN_LENGTH = 9
ZIP_LENGTHS = (5, 9)
BILLING_PROVIDER_ZIP_LENGTH = 9  # 2010AA N403: "must be nine digits"
MIN_CITY_LENGTH = 2  # N401 is 2-30
STATE_LENGTH = 2

# Element maximum lengths (TR3 element attributes).
LEN_ORG_NAME = 60  # NM103
LEN_LAST_NAME = 60  # NM103 (person)
LEN_FIRST_NAME = 35  # NM104
LEN_ID = 80  # NM109
LEN_ID_MIN = 2  # NM109 minimum
LEN_ADDRESS = 55  # N301, N302
LEN_CITY = 30  # N401
LEN_CONTACT = 60  # PER02
LEN_PHONE = 256  # PER04
LEN_CLAIM_ID = 38  # CLM01
LEN_REF = 50  # REF02, SBR03, BHT03
LEN_TAXONOMY = 50  # PRV03
LEN_PROCEDURE = 48  # SV101-2
LEN_DIAGNOSIS = 30  # HI01-2
LEN_AMOUNT_DIGITS = 18  # R type 1-18 (digits, not counting sign or point)
LEN_UNITS_DIGITS = 15  # SV104

CENT = Decimal("0.01")

RELATIONSHIP_SELF = "self"
SUBSCRIBER_IS_PATIENT = "18"  # SBR02
PATIENT_RELATIONSHIP = {"spouse": "01", "child": "19", "other": "G8"}  # PAT01
PAYER_PRIMARY = "P"  # SBR01
FREQUENCY_ORIGINAL = "1"
FREQUENCIES_WITH_ORIGINAL = frozenset({"7", "8"})  # replacement, void: REF*F8
FREQUENCIES = frozenset({FREQUENCY_ORIGINAL}) | FREQUENCIES_WITH_ORIGINAL
SEXES = frozenset({"M", "F", "U"})
FACILITY_CODE_QUALIFIER = "B"  # CLM05-2: place of service codes for professional claims
# The NPI check digit is Luhn over the card prefix 80840 and the first 9 digits; the
# prefix adds a constant 24 to the Luhn sum (CMS, "Requirements for the NPI check digit").
NPI_PREFIX_LUHN_SUM = 24

_BASIC_EXTRA = "!\"&'()+,-./;?= "  # X12 basic set besides A-Z 0-9, minus the delimiters
_BASIC_ALLOWED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" + _BASIC_EXTRA)
_EXTENDED_ALLOWED = (
    _BASIC_ALLOWED | frozenset("abcdefghijklmnopqrstuvwxyz%@[]_{}\\|<>`#$")
) - DELIMITERS
_SPACES = re.compile(r" +")
_DIAGNOSIS = re.compile(r"^[A-Z0-9]{3,7}$")
_PROCEDURE = re.compile(r"^[A-Z0-9]{5}$")
_MODIFIER = re.compile(r"^[A-Z0-9]{2}$")
_TAXONOMY = re.compile(r"^[0-9A-Z]{9}X$")
_POS = re.compile(r"^[0-9]{2}$")
_STATE = re.compile(r"^[A-Z]{2}$")
_CLAIM_FILING = re.compile(r"^[0-9A-Z]{1,2}$")


class X12Error(BillingError):
    """Input that the 837P implementation guide cannot carry; the message names where."""


# --- Input ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Address:
    """A postal address (N3/N4). ``zip`` is 5 or 9 digits (a hyphen is allowed)."""

    line1: str
    city: str
    state: str
    zip: str
    line2: str | None = None


@dataclass(frozen=True)
class Party:
    """The submitter (1000A) or the receiver (1000B) of the interchange."""

    id: str
    name: str
    contact_name: str = ""
    contact_phone: str = ""


@dataclass(frozen=True)
class BillingProvider:
    """The billing provider, an organization (2000A/2010AA)."""

    name: str
    npi: str
    tin: str
    taxonomy: str
    address: Address
    phone: str = ""


@dataclass(frozen=True)
class Person:
    """A subscriber (2010BA) or a patient (2010CA). ``sex`` is ``M``, ``F`` or ``U``."""

    last_name: str
    first_name: str
    birth_date: datetime.date
    sex: str
    address: Address | None
    member_id: str = ""


@dataclass(frozen=True)
class Payer:
    """The payer (2010BB) and the claim filing indicator it is billed under (SBR09)."""

    name: str
    payer_id: str
    claim_filing_indicator: str


@dataclass(frozen=True)
class Provider:
    """The rendering provider, a person (2310B)."""

    npi: str
    last_name: str
    first_name: str
    taxonomy: str = ""


@dataclass(frozen=True)
class ServiceLine:
    """One service line (2400). ``diagnosis_pointers`` are 1-based into the claim's list."""

    code: str
    modifiers: tuple[str, ...]
    charge: Decimal
    units: int
    date_of_service: datetime.date
    diagnosis_pointers: tuple[int, ...]
    line_id: str = ""
    place_of_service: str | None = None


@dataclass(frozen=True)
class Claim:
    """One claim (2300) with its subscriber, patient, payer and lines.

    ``frequency`` is ``1`` original, ``7`` replacement or ``8`` void; the last two carry
    ``original_claim_id``, the payer's claim control number of the claim they replace.
    ``relationship`` is the patient's to the subscriber: ``self``, ``spouse``,
    ``child`` or ``other``; other than ``self`` it needs ``patient``.
    """

    claim_id: str
    frequency: str
    place_of_service: str
    diagnoses: tuple[str, ...]
    subscriber: Person
    payer: Payer
    lines: tuple[ServiceLine, ...]
    original_claim_id: str | None = None
    group_number: str = ""
    relationship: str = RELATIONSHIP_SELF
    patient: Person | None = None
    rendering: Provider | None = None

    @property
    def total_charge(self) -> Decimal:
        """The claim's total charge (CLM02): the sum of its line charges."""
        return sum((line.charge for line in self.lines), Decimal(0))


@dataclass(frozen=True)
class Interchange:
    """One interchange: envelope ids and control number, parties and claims.

    ``control_number`` is used for ISA13, GS06, ST02 and BHT03. ``usage`` is ISA15.
    """

    sender_id: str
    receiver_id: str
    control_number: int
    created: datetime.datetime
    submitter: Party
    receiver: Party
    billing_provider: BillingProvider
    claims: tuple[Claim, ...]
    usage: str = "P"
    sender_qualifier: str = MUTUALLY_DEFINED
    receiver_qualifier: str = MUTUALLY_DEFINED


# --- Value cleaning and checking (pure) ----------------------------------------------


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


def _identifier(
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


def _matching(value: str, pattern: re.Pattern[str], where: str, what: str) -> str:
    """``value`` if it matches ``pattern``, else an error saying it must be ``what``."""
    if not pattern.match(value):
        raise X12Error(f"{where}: {value!r} is not {what}")
    return value


def _name(value: str, where: str, max_length: int, *, required: bool = True) -> str:
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


def _npi(value: str, where: str) -> str:
    if not npi_is_valid(value):
        raise X12Error(f"{where}: {value!r} is not a valid NPI (10 digits, Luhn check digit)")
    return value


def _digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


def _zip(value: str, where: str, lengths: Sequence[int] = ZIP_LENGTHS) -> str:
    digits = value.replace("-", "").replace(" ", "")
    if not digits.isdigit() or len(digits) not in lengths:
        wanted = " or ".join(str(n) for n in lengths)
        raise X12Error(f"{where}: the ZIP code must be {wanted} digits")
    return digits


def _phone(value: str, where: str) -> str:
    digits = _digits(value)
    if not digits or len(digits) > LEN_PHONE:
        raise X12Error(f"{where}: telephone {value!r} must have 1-{LEN_PHONE} digits")
    return digits


def _date(value: datetime.date) -> str:
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


def _address(address: Address, where: str, zip_lengths: Sequence[int] = ZIP_LENGTHS) -> list[str]:
    """N3 and N4 of an address."""
    line1 = _name(address.line1, f"{where} address line 1 (N301)", LEN_ADDRESS)
    line2 = clean_text(address.line2 or "", LEN_ADDRESS)
    city = _name(address.city, f"{where} city (N401)", LEN_CITY)
    if len(city) < MIN_CITY_LENGTH:
        raise X12Error(f"{where} city (N401): shorter than 2 characters")
    state = _matching(address.state.strip().upper(), _STATE, f"{where} state (N402)", "2 letters")
    return [
        segment("N3", line1, line2),
        segment("N4", city, state, _zip(address.zip, f"{where} ZIP (N403)", zip_lengths)),
    ]


def _person_name(person: Person | Provider, where: str) -> tuple[str, str]:
    last = _name(person.last_name, f"{where} last name (NM103)", LEN_LAST_NAME)
    first = _name(person.first_name, f"{where} first name (NM104)", LEN_FIRST_NAME, required=False)
    return last, first


def _demographics(person: Person, where: str) -> str:
    if person.sex not in SEXES:
        raise X12Error(f"{where} sex (DMG03): not one of M, F, U")
    return segment("DMG", "D8", _date(person.birth_date), person.sex)


def _envelope_head(ic: Interchange) -> list[str]:
    """ISA, GS, ST and BHT."""
    where = "interchange"
    if not 0 < ic.control_number <= MAX_CONTROL_NUMBER:
        raise X12Error(f"{where} control number: {ic.control_number} must be 1-999999999")
    if ic.usage not in USAGE_CODES:
        raise X12Error(f"{where} usage (ISA15): {ic.usage!r} is not P or T")
    sender = _identifier(ic.sender_id, f"{where} sender id (ISA06)", ISA_ID_LENGTH, GS_ID_MIN)
    receiver = _identifier(ic.receiver_id, f"{where} receiver id (ISA08)", ISA_ID_LENGTH, GS_ID_MIN)
    qualifiers = (ic.sender_qualifier, ic.receiver_qualifier)
    for qualifier in qualifiers:
        _identifier(qualifier, f"{where} id qualifier (ISA05/07)", 2, 2)
    control = str(ic.control_number)
    date8, time4 = ic.created.strftime("%Y%m%d"), ic.created.strftime("%H%M")
    return [
        segment(
            "ISA",
            NO_AUTHORIZATION,
            ISA_EMPTY_INFO,
            NO_AUTHORIZATION,
            ISA_EMPTY_INFO,
            ic.sender_qualifier,
            sender.ljust(ISA_ID_LENGTH),
            ic.receiver_qualifier,
            receiver.ljust(ISA_ID_LENGTH),
            ic.created.strftime("%y%m%d"),
            time4,
            REPETITION_SEPARATOR,
            ISA_VERSION,
            control.zfill(ISA_CONTROL_DIGITS),
            NO_ACK_REQUESTED,
            ic.usage,
            COMPONENT_SEPARATOR,
        ),
        segment(
            "GS",
            FUNCTIONAL_ID,
            sender,
            receiver,
            date8,
            time4,
            control,
            RESPONSIBLE_AGENCY,
            VERSION_CODE,
        ),
        segment("ST", TRANSACTION_SET, control.zfill(ST_CONTROL_MIN_DIGITS), VERSION_CODE),
        segment("BHT", BHT_STRUCTURE, BHT_ORIGINAL, control, date8, time4, BHT_CHARGEABLE),
    ]


def _parties(ic: Interchange) -> list[str]:
    """1000A submitter (NM1, PER) and 1000B receiver (NM1)."""
    sub, rec = ic.submitter, ic.receiver
    contact = clean_text(sub.contact_name, LEN_CONTACT)
    return [
        segment(
            "NM1",
            "41",
            "2",
            _name(sub.name, "submitter name (1000A NM103)", LEN_ORG_NAME),
            "",
            "",
            "",
            "",
            "46",
            _identifier(sub.id, "submitter id (1000A NM109)", LEN_ID, LEN_ID_MIN),
        ),
        segment(
            "PER", "IC", contact, "TE", _phone(sub.contact_phone, "submitter contact (1000A PER04)")
        ),
        segment(
            "NM1",
            "40",
            "2",
            _name(rec.name, "receiver name (1000B NM103)", LEN_ORG_NAME),
            "",
            "",
            "",
            "",
            "46",
            _identifier(rec.id, "receiver id (1000B NM109)", LEN_ID, LEN_ID_MIN),
        ),
    ]


def _billing_provider(bp: BillingProvider) -> list[str]:
    """2000A (HL, PRV) and 2010AA (NM1, N3, N4, REF*EI, PER)."""
    where = "billing provider (2010AA)"
    tin = _digits(bp.tin)
    if len(tin) != TIN_LENGTH or len(_digits(bp.tin)) != len(bp.tin.replace("-", "")):
        raise X12Error(f"{where} TIN (REF02): {bp.tin!r} must be 9 digits")
    out = [segment("HL", "1", "", "20", "1")]
    if bp.taxonomy:
        taxonomy = _matching(bp.taxonomy, _TAXONOMY, f"{where} taxonomy (PRV03)", "a taxonomy code")
        out.append(segment("PRV", "BI", "PXC", taxonomy))
    out.append(
        segment(
            "NM1",
            "85",
            "2",
            _name(bp.name, f"{where} name (NM103)", LEN_ORG_NAME),
            "",
            "",
            "",
            "",
            "XX",
            _npi(bp.npi, f"{where} NPI (NM109)"),
        )
    )
    out += _address(bp.address, where, (BILLING_PROVIDER_ZIP_LENGTH,))
    out.append(segment("REF", "EI", tin))
    if bp.phone:
        out.append(segment("PER", "IC", "", "TE", _phone(bp.phone, f"{where} telephone (PER04)")))
    return out


def _check_claim(claim: Claim, where: str) -> None:
    """Refuse a claim the guide cannot carry (counts, frequency, relationship)."""
    if not claim.lines:
        raise X12Error(f"{where}: has no service lines")
    if len(claim.lines) > MAX_LINES_PER_CLAIM:
        raise X12Error(
            f"{where}: has {len(claim.lines)} service lines, the guide allows {MAX_LINES_PER_CLAIM}"
        )
    if not claim.diagnoses:
        raise X12Error(f"{where} diagnoses (HI): a claim needs at least one diagnosis")
    if len(claim.diagnoses) > MAX_DIAGNOSES:
        raise X12Error(
            f"{where} diagnoses (HI): has {len(claim.diagnoses)}, the guide allows {MAX_DIAGNOSES}"
        )
    if claim.frequency not in FREQUENCIES:
        raise X12Error(f"{where} frequency (CLM05-3): {claim.frequency!r} is not 1, 7 or 8")
    if claim.frequency in FREQUENCIES_WITH_ORIGINAL and not claim.original_claim_id:
        raise X12Error(
            f"{where} original claim id (REF*F8): frequency {claim.frequency} needs the "
            "payer's claim control number of the claim it replaces"
        )
    if claim.frequency == FREQUENCY_ORIGINAL and claim.original_claim_id:
        raise X12Error(f"{where} original claim id: an original claim (frequency 1) has none")
    if claim.relationship == RELATIONSHIP_SELF:
        if claim.patient is not None and claim.patient != claim.subscriber:
            raise X12Error(f"{where} patient: relationship is self but the patient differs")
    elif claim.relationship not in PATIENT_RELATIONSHIP:
        raise X12Error(
            f"{where} relationship (PAT01): {claim.relationship!r} is not self, "
            + ", ".join(sorted(PATIENT_RELATIONSHIP))
        )
    elif claim.patient is None:
        raise X12Error(f"{where} patient (2010CA): relationship {claim.relationship} needs one")


def _subscriber(claim: Claim, hl_id: int, has_patient: bool, where: str) -> list[str]:
    """2000B (HL, SBR), 2010BA (NM1, and N3/N4/DMG when self) and 2010BB (NM1)."""
    sub, payer = claim.subscriber, claim.payer
    sub_where, payer_where = f"{where} subscriber (2010BA)", f"{where} payer (2010BB)"
    filing = _matching(
        payer.claim_filing_indicator,
        _CLAIM_FILING,
        f"{where} claim filing indicator (SBR09)",
        "a claim filing indicator code",
    )
    group = _identifier(claim.group_number, f"{where} group number (SBR03)", LEN_REF, 0)
    last, first = _person_name(sub, sub_where)
    member = _identifier(
        sub.member_id, f"{sub_where} member id (NM109)", LEN_ID, LEN_ID_MIN, phi=True
    )
    out = [
        segment("HL", str(hl_id), "1", "22", "1" if has_patient else "0"),
        segment(
            "SBR",
            PAYER_PRIMARY,
            "" if has_patient else SUBSCRIBER_IS_PATIENT,
            group,
            "",
            "",
            "",
            "",
            "",
            filing,
        ),
        segment("NM1", "IL", "1", last, first, "", "", "", "MI", member),
    ]
    if not has_patient:
        if sub.address is None:
            raise X12Error(
                f"{sub_where} address (N3/N4): required when the subscriber is the patient"
            )
        out += _address(sub.address, sub_where)
        out.append(_demographics(sub, sub_where))
    out.append(
        segment(
            "NM1",
            "PR",
            "2",
            _name(payer.name, f"{payer_where} name (NM103)", LEN_ORG_NAME),
            "",
            "",
            "",
            "",
            "PI",
            _identifier(payer.payer_id, f"{payer_where} payer id (NM109)", LEN_ID, LEN_ID_MIN),
        )
    )
    return out


def _patient(claim: Claim, hl_id: int, parent: int, where: str) -> list[str]:
    """2000C (HL, PAT) and 2010CA (NM1, N3, N4, DMG)."""
    patient = claim.patient
    assert patient is not None  # _check_claim
    pat_where = f"{where} patient (2010CA)"
    last, first = _person_name(patient, pat_where)
    if patient.address is None:
        raise X12Error(f"{pat_where} address (N3/N4): required for the patient")
    return [
        segment("HL", str(hl_id), str(parent), "23", "0"),
        segment("PAT", PATIENT_RELATIONSHIP[claim.relationship]),
        segment("NM1", "QC", "1", last, first),
        *_address(patient.address, pat_where),
        _demographics(patient, pat_where),
    ]


def _diagnoses(claim: Claim, where: str) -> tuple[str, list[str]]:
    """The HI segment and the cleaned codes (no dot, uppercase), refusing duplicates."""
    codes = [code.replace(".", "").strip().upper() for code in claim.diagnoses]
    for raw, code in zip(claim.diagnoses, codes, strict=True):
        _matching(code, _DIAGNOSIS, f"{where} diagnosis (HI)", "an ICD-10-CM code")
        if len(code) > LEN_DIAGNOSIS:  # pragma: no cover - the pattern is shorter
            raise X12Error(f"{where} diagnosis (HI): {raw!r} is too long")
    if len(set(codes)) != len(codes):
        raise X12Error(f"{where} diagnoses (HI): {list(claim.diagnoses)} repeat a code")
    qualified = [composite("ABK" if i == 0 else "ABF", code) for i, code in enumerate(codes)]
    return segment("HI", *qualified), codes


def _rendering(claim: Claim, billing_npi: str, where: str) -> list[str]:
    """2310B (NM1*82, PRV*PE) when the rendering provider is not the billing provider."""
    rendering = claim.rendering
    if rendering is None or rendering.npi == billing_npi:
        return []
    ren_where = f"{where} rendering provider (2310B)"
    last, first = _person_name(rendering, ren_where)
    out = [
        segment(
            "NM1",
            "82",
            "1",
            last,
            first,
            "",
            "",
            "",
            "XX",
            _npi(rendering.npi, f"{ren_where} NPI (NM109)"),
        )
    ]
    if rendering.taxonomy:
        taxonomy = _matching(
            rendering.taxonomy, _TAXONOMY, f"{ren_where} taxonomy (PRV03)", "a taxonomy code"
        )
        out.append(segment("PRV", "PE", "PXC", taxonomy))
    return out


def _service_line(claim: Claim, number: int, line: ServiceLine, where: str) -> list[str]:
    """2400: LX, SV1, DTP*472, REF*6R."""
    line_where = f"{where} line {number}"
    code = _matching(
        line.code.strip().upper(),
        _PROCEDURE,
        f"{line_where} code (SV101-2)",
        "a 5-character HCPCS/CPT code",
    )
    if len(line.modifiers) > MAX_MODIFIERS:
        raise X12Error(f"{line_where} modifiers (SV101-3..6): {len(line.modifiers)} > 4")
    modifiers = [
        _matching(m.strip().upper(), _MODIFIER, f"{line_where} modifier (SV101)", "2 characters")
        for m in line.modifiers
    ]
    if not line.diagnosis_pointers or len(line.diagnosis_pointers) > MAX_POINTERS:
        raise X12Error(f"{line_where} diagnosis pointers (SV107): 1-4 are needed")
    if len(set(line.diagnosis_pointers)) != len(line.diagnosis_pointers):
        raise X12Error(f"{line_where} diagnosis pointers (SV107): {line.diagnosis_pointers} repeat")
    for pointer in line.diagnosis_pointers:
        if not 1 <= pointer <= len(claim.diagnoses):
            raise X12Error(
                f"{line_where} diagnosis pointer (SV107): {pointer} points to no diagnosis "
                f"(the claim has {len(claim.diagnoses)})"
            )
    if line.units <= 0 or len(str(line.units)) > LEN_UNITS_DIGITS:
        raise X12Error(f"{line_where} units (SV104): {line.units} must be a positive count")
    pos = line.place_of_service
    if pos is not None:
        _matching(pos, _POS, f"{line_where} place of service (SV105)", "a 2-digit code")
    line_pos = "" if pos is None or pos == claim.place_of_service else pos
    out = [
        segment("LX", str(number)),
        segment(
            "SV1",
            composite("HC", code, *modifiers),
            format_amount(line.charge, f"{line_where} charge (SV102)"),
            "UN",
            str(line.units),
            line_pos,
            "",
            composite(*(str(p) for p in line.diagnosis_pointers)),
        ),
        segment("DTP", "472", "D8", _date(line.date_of_service)),
    ]
    if line.line_id:
        out.append(
            segment(
                "REF", "6R", _identifier(line.line_id, f"{line_where} line id (REF*6R)", LEN_REF)
            )
        )
    return out


def _claim(claim: Claim, billing_npi: str, where: str) -> list[str]:
    """2300 (CLM, REF*F8, HI), 2310B and the 2400 lines of one claim."""
    claim_id = _identifier(claim.claim_id, f"{where} claim id (CLM01)", LEN_CLAIM_ID)
    pos = _matching(
        claim.place_of_service, _POS, f"{where} place of service (CLM05-1)", "a 2-digit code"
    )
    hi, _codes = _diagnoses(claim, where)
    out = [
        segment(
            "CLM",
            claim_id,
            format_amount(claim.total_charge, f"{where} total charge (CLM02)"),
            "",
            "",
            composite(pos, FACILITY_CODE_QUALIFIER, claim.frequency),
            "Y",
            "A",
            "Y",
            "Y",
        ),
    ]
    if claim.frequency in FREQUENCIES_WITH_ORIGINAL:
        assert claim.original_claim_id is not None  # _check_claim
        out.append(
            segment(
                "REF",
                "F8",
                _identifier(
                    claim.original_claim_id, f"{where} original claim id (REF*F8)", LEN_REF
                ),
            )
        )
    out.append(hi)
    out += _rendering(claim, billing_npi, where)
    for number, line in enumerate(claim.lines, start=1):
        out += _service_line(claim, number, line, where)
    return out


def _claims(ic: Interchange) -> Iterable[str]:
    """2000B/2000C/2300.. for each claim, each claim under its own subscriber HL."""
    if not ic.claims:
        raise X12Error("interchange claims: an 837 needs at least one claim")
    if len(ic.claims) > MAX_CLAIMS_PER_TRANSACTION:
        raise X12Error(
            f"interchange claims: {len(ic.claims)} > {MAX_CLAIMS_PER_TRANSACTION} a transaction"
        )
    hl_id = 1  # 2000A
    for claim in ic.claims:
        where = f"claim {claim.claim_id!r}"
        _check_claim(claim, where)
        has_patient = claim.relationship != RELATIONSHIP_SELF
        hl_id += 1
        subscriber_hl = hl_id
        yield from _subscriber(claim, subscriber_hl, has_patient, where)
        if has_patient:
            hl_id += 1
            yield from _patient(claim, hl_id, subscriber_hl, where)
        yield from _claim(claim, ic.billing_provider.npi, where)


def render_837p(interchange: Interchange) -> str:
    """The whole 837P file for ``interchange``: ISA..IEA, each segment ending ``~\\n``.

    Raises ``X12Error`` for input the guide cannot carry, naming the claim and field.
    """
    head = _envelope_head(interchange)
    body = [
        *_parties(interchange),
        *_billing_provider(interchange.billing_provider),
        *_claims(interchange),
    ]
    control = str(interchange.control_number)
    st_to_se = 2 + len(body) + 1  # ST, BHT, body, SE
    trailer = [
        segment("SE", str(st_to_se), control.zfill(ST_CONTROL_MIN_DIGITS)),
        segment("GE", "1", control),
        segment("IEA", "1", control.zfill(ISA_CONTROL_DIGITS)),
    ]
    return "".join(s + SEGMENT_TERMINATOR + LINE_BREAK for s in [*head, *body, *trailer])
