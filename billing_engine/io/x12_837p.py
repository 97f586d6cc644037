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

Not written: pay-to (2010AB), referring (2310A) and service facility (2310C) loops,
other payers (2320/2330, so SBR01 is always ``P``) and line adjudication (2430).
The input dataclasses are in ``x12_837p_model``, the value helpers in ``x12_values``
(both re-exported here, the API callers import), the envelope in ``x12_envelope``.

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

import re
from collections.abc import Iterable, Sequence

from billing_engine.io.x12_837p_model import (
    RELATIONSHIP_SELF,
    Address,
    BillingProvider,
    Claim,
    Interchange,
    Party,
    Payer,
    Person,
    Provider,
    ServiceLine,
)
from billing_engine.io.x12_envelope import Envelope, enveloped, x12_text
from billing_engine.io.x12_values import (
    ZIP_LENGTHS,
    X12Error,
    checked_npi,
    clean_text,
    cleaned_name,
    composite,
    digits,
    format_amount,
    identifier,
    matching,
    npi_is_valid,
    phone,
    segment,
    x12_date,
    zip_code,
)

__all__ = [
    "Address",
    "BillingProvider",
    "Claim",
    "Interchange",
    "Party",
    "Payer",
    "Person",
    "Provider",
    "ServiceLine",
    "X12Error",
    "clean_text",
    "format_amount",
    "npi_is_valid",
    "render_837p",
]

X12_VERSION_RELEASE = "005010"  # GS08 version and release
VERSION_CODE = X12_VERSION_RELEASE + "X222A1"  # GS08, ST03: the 837P TR3 and its addenda
FUNCTIONAL_ID = "HC"  # GS01: health care claim
TRANSACTION_SET = "837"
BHT_STRUCTURE = "0019"  # BHT01: information source, subscriber, dependent
BHT_ORIGINAL = "00"  # BHT02
BHT_CHARGEABLE = "CH"  # BHT06

# --- Limits of the 837P TR3 ------------------------------------------------------------

MAX_CLAIMS_PER_TRANSACTION = 5000  # TR3 transaction size: at most 5000 CLM per ST-SE
MAX_LINES_PER_CLAIM = 50  # loop 2400 repeat
MAX_DIAGNOSES = 12  # HI: ABK + 11 ABF
MAX_POINTERS = 4  # SV107-1..4
MAX_MODIFIERS = 4  # SV101-3..6
TIN_LENGTH = 9
BILLING_PROVIDER_ZIP_LENGTH = 9  # 2010AA N403: "must be nine digits"
MIN_CITY_LENGTH = 2  # N401 is 2-30

# Element maximum lengths (TR3 element attributes).
LEN_ORG_NAME = 60  # NM103
LEN_LAST_NAME = 60  # NM103 (person)
LEN_FIRST_NAME = 35  # NM104
LEN_ID = 80  # NM109
LEN_ID_MIN = 2  # NM109 minimum
LEN_ADDRESS = 55  # N301, N302
LEN_CITY = 30  # N401
LEN_CONTACT = 60  # PER02
LEN_CLAIM_ID = 38  # CLM01
LEN_REF = 50  # REF02, SBR03, BHT03
LEN_UNITS_DIGITS = 15  # SV104

SUBSCRIBER_IS_PATIENT = "18"  # SBR02
PATIENT_RELATIONSHIP = {"spouse": "01", "child": "19", "other": "G8"}  # PAT01
PAYER_PRIMARY = "P"  # SBR01
FREQUENCY_ORIGINAL = "1"
FREQUENCIES_WITH_ORIGINAL = frozenset({"7", "8"})  # replacement, void: REF*F8
FREQUENCIES = frozenset({FREQUENCY_ORIGINAL}) | FREQUENCIES_WITH_ORIGINAL
SEXES = frozenset({"M", "F", "U"})
FACILITY_CODE_QUALIFIER = "B"  # CLM05-2: place of service codes for professional claims

_DIAGNOSIS = re.compile(r"^[A-Z0-9]{3,7}$")
_PROCEDURE = re.compile(r"^[A-Z0-9]{5}$")
_MODIFIER = re.compile(r"^[A-Z0-9]{2}$")
_TAXONOMY = re.compile(r"^[0-9A-Z]{9}X$")
_POS = re.compile(r"^[0-9]{2}$")
_STATE = re.compile(r"^[A-Z]{2}$")
_CLAIM_FILING = re.compile(r"^[0-9A-Z]{1,2}$")


def _address(address: Address, where: str, zip_lengths: Sequence[int] = ZIP_LENGTHS) -> list[str]:
    """N3 and N4 of an address."""
    line1 = cleaned_name(address.line1, f"{where} address line 1 (N301)", LEN_ADDRESS)
    line2 = clean_text(address.line2 or "", LEN_ADDRESS)
    city = cleaned_name(address.city, f"{where} city (N401)", LEN_CITY)
    if len(city) < MIN_CITY_LENGTH:
        raise X12Error(f"{where} city (N401): shorter than 2 characters")
    state = matching(address.state.strip().upper(), _STATE, f"{where} state (N402)", "2 letters")
    return [
        segment("N3", line1, line2),
        segment("N4", city, state, zip_code(address.zip, f"{where} ZIP (N403)", zip_lengths)),
    ]


def _person_name(person: Person | Provider, where: str) -> tuple[str, str]:
    """NM103 and NM104 of a person, cleaned; the first name may be empty."""
    last = cleaned_name(person.last_name, f"{where} last name (NM103)", LEN_LAST_NAME)
    first = cleaned_name(
        person.first_name, f"{where} first name (NM104)", LEN_FIRST_NAME, required=False
    )
    return last, first


def _demographics(person: Person, where: str) -> str:
    """DMG: birth date (D8) and sex."""
    if person.sex not in SEXES:
        raise X12Error(f"{where} sex (DMG03): not one of M, F, U")
    return segment("DMG", "D8", x12_date(person.birth_date), person.sex)


def _bht(ic: Interchange, number: int) -> str:
    """BHT: structure 0019, original, reference id (control number-transaction), date,
    time, CH."""
    return segment(
        "BHT",
        BHT_STRUCTURE,
        BHT_ORIGINAL,
        f"{ic.control_number}-{number}",
        ic.created.strftime("%Y%m%d"),
        ic.created.strftime("%H%M"),
        BHT_CHARGEABLE,
    )


def _parties(ic: Interchange) -> list[str]:
    """1000A submitter (NM1, PER) and 1000B receiver (NM1)."""
    sub, rec = ic.submitter, ic.receiver
    contact = clean_text(sub.contact_name, LEN_CONTACT)
    return [
        segment(
            "NM1",
            "41",
            "2",
            cleaned_name(sub.name, "submitter name (1000A NM103)", LEN_ORG_NAME),
            "",
            "",
            "",
            "",
            "46",
            identifier(sub.id, "submitter id (1000A NM109)", LEN_ID, LEN_ID_MIN),
        ),
        segment(
            "PER", "IC", contact, "TE", phone(sub.contact_phone, "submitter contact (1000A PER04)")
        ),
        segment(
            "NM1",
            "40",
            "2",
            cleaned_name(rec.name, "receiver name (1000B NM103)", LEN_ORG_NAME),
            "",
            "",
            "",
            "",
            "46",
            identifier(rec.id, "receiver id (1000B NM109)", LEN_ID, LEN_ID_MIN),
        ),
    ]


def _billing_provider(bp: BillingProvider) -> list[str]:
    """2000A (HL, PRV) and 2010AA (NM1, N3, N4, REF*EI, PER)."""
    where = "billing provider (2010AA)"
    tin = digits(bp.tin)
    if len(tin) != TIN_LENGTH or len(digits(bp.tin)) != len(bp.tin.replace("-", "")):
        raise X12Error(f"{where} TIN (REF02): {bp.tin!r} must be 9 digits")
    out = [segment("HL", "1", "", "20", "1")]
    if bp.taxonomy:
        taxonomy = matching(bp.taxonomy, _TAXONOMY, f"{where} taxonomy (PRV03)", "a taxonomy code")
        out.append(segment("PRV", "BI", "PXC", taxonomy))
    out.append(
        segment(
            "NM1",
            "85",
            "2",
            cleaned_name(bp.name, f"{where} name (NM103)", LEN_ORG_NAME),
            "",
            "",
            "",
            "",
            "XX",
            checked_npi(bp.npi, f"{where} NPI (NM109)"),
        )
    )
    out += _address(bp.address, where, (BILLING_PROVIDER_ZIP_LENGTH,))
    out.append(segment("REF", "EI", tin))
    if bp.phone:
        out.append(segment("PER", "IC", "", "TE", phone(bp.phone, f"{where} telephone (PER04)")))
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
    filing = matching(
        payer.claim_filing_indicator,
        _CLAIM_FILING,
        f"{where} claim filing indicator (SBR09)",
        "a claim filing indicator code",
    )
    group = identifier(claim.group_number, f"{where} group number (SBR03)", LEN_REF, 0)
    last, first = _person_name(sub, sub_where)
    member = identifier(
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
            cleaned_name(payer.name, f"{payer_where} name (NM103)", LEN_ORG_NAME),
            "",
            "",
            "",
            "",
            "PI",
            identifier(payer.payer_id, f"{payer_where} payer id (NM109)", LEN_ID, LEN_ID_MIN),
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


def _diagnoses(claim: Claim, where: str) -> str:
    """The HI segment: codes without the dot, uppercase, ABK then ABF; no duplicates."""
    codes = [code.replace(".", "").strip().upper() for code in claim.diagnoses]
    for code in codes:
        matching(code, _DIAGNOSIS, f"{where} diagnosis (HI)", "an ICD-10-CM code")
    if len(set(codes)) != len(codes):
        raise X12Error(f"{where} diagnoses (HI): {list(claim.diagnoses)} repeat a code")
    qualified = [composite("ABK" if i == 0 else "ABF", code) for i, code in enumerate(codes)]
    return segment("HI", *qualified)


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
            checked_npi(rendering.npi, f"{ren_where} NPI (NM109)"),
        )
    ]
    if rendering.taxonomy:
        taxonomy = matching(
            rendering.taxonomy, _TAXONOMY, f"{ren_where} taxonomy (PRV03)", "a taxonomy code"
        )
        out.append(segment("PRV", "PE", "PXC", taxonomy))
    return out


def _service_line(claim: Claim, number: int, line: ServiceLine, where: str) -> list[str]:
    """2400: LX, SV1, DTP*472, REF*6R."""
    line_where = f"{where} line {number}"
    code = matching(
        line.code.strip().upper(),
        _PROCEDURE,
        f"{line_where} code (SV101-2)",
        "a 5-character HCPCS/CPT code",
    )
    if len(line.modifiers) > MAX_MODIFIERS:
        raise X12Error(f"{line_where} modifiers (SV101-3..6): {len(line.modifiers)} > 4")
    modifiers = [
        matching(m.strip().upper(), _MODIFIER, f"{line_where} modifier (SV101)", "2 characters")
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
        matching(pos, _POS, f"{line_where} place of service (SV105)", "a 2-digit code")
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
        segment("DTP", "472", "D8", x12_date(line.date_of_service)),
    ]
    if line.line_id:
        out.append(
            segment(
                "REF", "6R", identifier(line.line_id, f"{line_where} line id (REF*6R)", LEN_REF)
            )
        )
    return out


def _claim(claim: Claim, billing_npi: str, where: str) -> list[str]:
    """2300 (CLM, REF*F8, HI), 2310B and the 2400 lines of one claim."""
    claim_id = identifier(claim.claim_id, f"{where} claim id (CLM01)", LEN_CLAIM_ID)
    pos = matching(
        claim.place_of_service, _POS, f"{where} place of service (CLM05-1)", "a 2-digit code"
    )
    hi = _diagnoses(claim, where)
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
                identifier(claim.original_claim_id, f"{where} original claim id (REF*F8)", LEN_REF),
            )
        )
    out.append(hi)
    out += _rendering(claim, billing_npi, where)
    for number, line in enumerate(claim.lines, start=1):
        out += _service_line(claim, number, line, where)
    return out


def _claims(claims: Sequence[Claim], ic: Interchange) -> Iterable[str]:
    """2000B/2000C/2300.. for each claim, each claim under its own subscriber HL."""
    hl_id = 1  # 2000A
    for claim in claims:
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


def render_837p(
    interchange: Interchange, max_claims_per_transaction: int = MAX_CLAIMS_PER_TRANSACTION
) -> str:
    """The whole 837P file for ``interchange``: ISA..IEA, each segment ending ``~\\n``.

    More claims than a transaction set may hold (the guide's 5000) go into further
    transaction sets (ST..SE) of the same functional group, each with its own BHT,
    submitter, receiver and billing provider loops.

    Raises ``X12Error`` for input the guide cannot carry, naming the claim and field.
    """
    envelope = Envelope(
        sender_id=interchange.sender_id,
        receiver_id=interchange.receiver_id,
        sender_qualifier=interchange.sender_qualifier,
        receiver_qualifier=interchange.receiver_qualifier,
        control_number=interchange.control_number,
        created=interchange.created,
        usage=interchange.usage,
        functional_id=FUNCTIONAL_ID,
        transaction_set=TRANSACTION_SET,
        version_code=VERSION_CODE,
    )
    if not interchange.claims:
        raise X12Error("interchange claims: an 837 needs at least one claim")
    size = max_claims_per_transaction
    chunks = [interchange.claims[i : i + size] for i in range(0, len(interchange.claims), size)]
    transactions = [
        [
            _bht(interchange, number),
            *_parties(interchange),
            *_billing_provider(interchange.billing_provider),
            *_claims(chunk, interchange),
        ]
        for number, chunk in enumerate(chunks, start=1)
    ]
    return x12_text(enveloped(envelope, transactions))
