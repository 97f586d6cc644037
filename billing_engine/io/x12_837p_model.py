"""What an 837P interchange is made of: the input of ``x12_837p.render_837p``.

Plain frozen dataclasses, one per party or loop of the 005010X222A1 claim: the
interchange and its parties (1000A/B), the billing provider (2010AA), the claims (2300)
with their subscriber (2010BA), patient (2010CA), payer (2010BB), rendering provider
(2310B) and service lines (2400). Money is ``Decimal``. Nothing here checks values: the
writer refuses what the guide cannot carry.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

RELATIONSHIP_SELF = "self"  # the patient is the subscriber
MUTUALLY_DEFINED = "ZZ"  # ISA05/ISA07 default interchange id qualifier


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
