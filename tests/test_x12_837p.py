"""The 837P writer: what each loop carries, what it refuses, and that pyx12 accepts it all."""

from __future__ import annotations

import dataclasses
import datetime
import re
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing_engine.io.x12_837p import (
    Address,
    BillingProvider,
    Claim,
    Interchange,
    Party,
    Payer,
    Person,
    Provider,
    ServiceLine,
    X12Error,
    clean_text,
    format_amount,
    npi_is_valid,
    render_837p,
)
from tests.x12_check import assert_valid_837p, x12_errors

# NPIs with a valid check digit (the CMS example 1234567893 and others computed by Luhn).
BILLING_NPI = "1234567893"
RENDERING_NPI = "1245319599"
OTHER_NPI = "1679576722"

DOS = datetime.date(2026, 11, 3)

ADDRESS = Address(line1="12 Main St", city="Springfield", state="IL", zip="62701")
PRACTICE_ADDRESS = Address(
    line1="100 Clinic Way", line2="Suite 2", city="Springfield", state="IL", zip="62701-1234"
)

SUBSCRIBER = Person(
    last_name="Doe",
    first_name="Jane",
    birth_date=datetime.date(1950, 2, 28),
    sex="F",
    address=ADDRESS,
    member_id="1EG4TE5MK72",
)
CHILD = Person(
    last_name="Doe",
    first_name="Tim",
    birth_date=datetime.date(2015, 6, 1),
    sex="M",
    address=ADDRESS,
)
MEDICARE = Payer(name="Medicare Part B", payer_id="00952", claim_filing_indicator="MB")


def a_line(
    code: str = "99490", charge: str = "64.00", pointers: tuple[int, ...] = (1,), **kw: object
) -> ServiceLine:
    """A service line of one unit on DOS."""
    fields: dict[str, object] = {
        "code": code,
        "modifiers": (),
        "charge": Decimal(charge),
        "units": 1,
        "date_of_service": DOS,
        "diagnosis_pointers": pointers,
    }
    fields.update(kw)
    return ServiceLine(**fields)  # type: ignore[arg-type]


def a_claim(**kw: object) -> Claim:
    """A self-pay-ready original claim with one line, overridable field by field."""
    fields: dict[str, object] = {
        "claim_id": "CLM-2026-0001",
        "frequency": "1",
        "place_of_service": "11",
        "diagnoses": ("E11.9", "I10"),
        "subscriber": SUBSCRIBER,
        "payer": MEDICARE,
        "lines": (a_line(),),
    }
    fields.update(kw)
    return Claim(**fields)  # type: ignore[arg-type]


def an_interchange(*claims: Claim, **kw: object) -> Interchange:
    """An interchange of ``claims`` (one default claim when none is given)."""
    fields: dict[str, object] = {
        "sender_id": "SUBMIT01",
        "receiver_id": "RECV01",
        "control_number": 42,
        "created": datetime.datetime(2026, 12, 1, 9, 30),
        "submitter": Party(
            id="SUBMIT01",
            name="Care Clinic",
            contact_name="Billing Desk",
            contact_phone="217-555-0100",
        ),
        "receiver": Party(id="RECV01", name="Clearing House"),
        "billing_provider": BillingProvider(
            name="Care Clinic LLC",
            npi=BILLING_NPI,
            tin="12-3456789",
            taxonomy="207Q00000X",
            address=PRACTICE_ADDRESS,
            phone="(217) 555-0100",
        ),
        "claims": claims or (a_claim(),),
    }
    fields.update(kw)
    return Interchange(**fields)  # type: ignore[arg-type]


def segments(text: str) -> list[str]:
    """The segments of ``text`` without terminators."""
    return [s.strip() for s in text.split("~") if s.strip()]


def starting(text: str, prefix: str) -> list[str]:
    """The segments of ``text`` that start with ``prefix``."""
    return [s for s in segments(text) if s.startswith(prefix)]


def test_one_claim_for_the_subscriber_as_patient_has_no_patient_loop_and_validates() -> None:
    text = render_837p(an_interchange())
    assert_valid_837p(text)
    assert starting(text, "HL*") == ["HL*1**20*1", "HL*2*1*22*0"]
    assert starting(text, "SBR*") == ["SBR*P*18*******MB"]
    assert starting(text, "NM1*IL*") == ["NM1*IL*1*DOE*JANE****MI*1EG4TE5MK72"]
    assert starting(text, "DMG*") == ["DMG*D8*19500228*F"]
    assert "PAT" not in {s.split("*")[0] for s in segments(text)}
    assert starting(text, "CLM*") == ["CLM*CLM-2026-0001*64***11:B:1*Y*A*Y*Y"]
    assert starting(text, "HI*") == ["HI*ABK:E119*ABF:I10"]
    assert starting(text, "SV1*") == ["SV1*HC:99490*64*UN*1***1"]
    assert starting(text, "DTP*472") == ["DTP*472*D8*20261103"]


def test_the_envelope_carries_the_control_number_and_the_version() -> None:
    text = render_837p(an_interchange())
    isa = segments(text)[0]
    assert len(isa) == 105  # ISA is fixed-length: 106 characters with its terminator
    assert isa.split("*")[13] == "000000042"
    assert isa.split("*")[15] == "P"
    assert starting(text, "GS*") == ["GS*HC*SUBMIT01*RECV01*20261201*0930*42*X*005010X222A1"]
    assert starting(text, "ST*") == ["ST*837*0001*005010X222A1"]
    assert starting(text, "BHT*") == ["BHT*0019*00*42-1*20261201*0930*CH"]
    assert starting(text, "GE*") == ["GE*1*42"]
    assert starting(text, "IEA*") == ["IEA*1*000000042"]
    assert starting(text, "NM1*41*") == ["NM1*41*2*CARE CLINIC*****46*SUBMIT01"]
    assert starting(text, "PER*IC*BILLING") == ["PER*IC*BILLING DESK*TE*2175550100"]
    assert starting(text, "NM1*85*") == ["NM1*85*2*CARE CLINIC LLC*****XX*1234567893"]
    assert starting(text, "N4*")[0] == "N4*SPRINGFIELD*IL*627011234"
    assert starting(text, "REF*EI*") == ["REF*EI*123456789"]


def test_a_test_interchange_is_marked_t_and_validates() -> None:
    text = render_837p(an_interchange(usage="T"))
    assert_valid_837p(text)
    assert segments(text)[0].split("*")[15] == "T"


def test_a_claim_for_a_child_has_a_patient_loop_and_the_subscriber_without_demographics() -> None:
    claim = a_claim(relationship="child", patient=CHILD, group_number="GRP-77")
    text = render_837p(an_interchange(claim))
    assert_valid_837p(text)
    assert starting(text, "HL*") == ["HL*1**20*1", "HL*2*1*22*1", "HL*3*2*23*0"]
    assert starting(text, "SBR*") == ["SBR*P**GRP-77******MB"]
    assert starting(text, "PAT*") == ["PAT*19"]
    assert starting(text, "NM1*QC*") == ["NM1*QC*1*DOE*TIM"]
    assert starting(text, "DMG*") == ["DMG*D8*20150601*M"]  # the patient's only


@pytest.mark.parametrize(("relationship", "code"), [("spouse", "01"), ("other", "G8")])
def test_a_spouse_or_other_patient_carries_its_pat01_code(relationship: str, code: str) -> None:
    text = render_837p(an_interchange(a_claim(relationship=relationship, patient=CHILD)))
    assert_valid_837p(text)
    assert starting(text, "PAT*") == [f"PAT*{code}"]


def test_a_rendering_provider_other_than_the_billing_provider_gets_a_2310b_loop() -> None:
    rendering = Provider(
        npi=RENDERING_NPI, last_name="Smith", first_name="Ann", taxonomy="363LF0000X"
    )
    text = render_837p(an_interchange(a_claim(rendering=rendering)))
    assert_valid_837p(text)
    assert starting(text, "NM1*82*") == ["NM1*82*1*SMITH*ANN****XX*1245319599"]
    assert starting(text, "PRV*PE*") == ["PRV*PE*PXC*363LF0000X"]
    seg_ids = [s.split("*")[0] for s in segments(text)]
    assert seg_ids.index("HI") < seg_ids.index("NM1", seg_ids.index("HI")) < seg_ids.index("LX")


def test_a_rendering_provider_that_is_the_billing_provider_gets_no_2310b_loop() -> None:
    same = Provider(npi=BILLING_NPI, last_name="Clinic", first_name="Care")
    for claim in (a_claim(rendering=same), a_claim(rendering=None)):
        text = render_837p(an_interchange(claim))
        assert_valid_837p(text)
        assert not starting(text, "NM1*82*")
        assert not starting(text, "PRV*PE*")


def test_a_rendering_provider_without_taxonomy_has_no_prv() -> None:
    rendering = Provider(npi=RENDERING_NPI, last_name="Smith", first_name="Ann")
    text = render_837p(an_interchange(a_claim(rendering=rendering)))
    assert_valid_837p(text)
    assert starting(text, "NM1*82*")
    assert not starting(text, "PRV*PE*")


@pytest.mark.parametrize("frequency", ["7", "8"])
def test_a_replacement_or_void_claim_carries_its_frequency_and_ref_f8(frequency: str) -> None:
    claim = a_claim(frequency=frequency, original_claim_id="PAYERICN20261101")
    text = render_837p(an_interchange(claim))
    assert_valid_837p(text)
    assert starting(text, "CLM*")[0].split("*")[5] == f"11:B:{frequency}"
    assert starting(text, "REF*F8*") == ["REF*F8*PAYERICN20261101"]
    seg_ids = [s.split("*")[0] for s in segments(text)]
    assert seg_ids.index("CLM") + 1 == seg_ids.index("REF", seg_ids.index("CLM"))


def test_an_original_claim_has_no_ref_f8() -> None:
    assert not starting(render_837p(an_interchange()), "REF*F8*")


@pytest.mark.parametrize("frequency", ["7", "8"])
def test_a_replacement_or_void_without_the_original_claim_id_is_refused(frequency: str) -> None:
    with pytest.raises(X12Error, match=r"claim 'CLM-2026-0001' original claim id"):
        render_837p(an_interchange(a_claim(frequency=frequency)))


def test_an_original_claim_with_an_original_claim_id_is_refused() -> None:
    with pytest.raises(X12Error, match="original claim id"):
        render_837p(an_interchange(a_claim(original_claim_id="X1")))


def test_twelve_diagnoses_fill_one_hi_with_abk_then_eleven_abf() -> None:
    codes = tuple(f"Z{n:02d}.{n}" for n in range(10, 22))
    line = a_line(pointers=(1, 5, 9, 12))
    text = render_837p(an_interchange(a_claim(diagnoses=codes, lines=(line,))))
    assert_valid_837p(text)
    (hi,) = starting(text, "HI*")
    parts = hi.split("*")[1:]
    assert len(parts) == 12
    assert parts[0] == "ABK:Z1010"
    assert all(p.startswith("ABF:") for p in parts[1:])
    assert starting(text, "SV1*")[0].endswith("***1:5:9:12")


def test_thirteen_diagnoses_are_refused_naming_the_claim() -> None:
    codes = tuple(f"Z{n:02d}" for n in range(10, 23))
    with pytest.raises(X12Error, match=r"claim 'CLM-2026-0001' diagnoses \(HI\): has 13"):
        render_837p(an_interchange(a_claim(diagnoses=codes)))


def test_a_pointer_to_no_diagnosis_is_refused() -> None:
    with pytest.raises(X12Error, match="line 1 diagnosis pointer"):
        render_837p(an_interchange(a_claim(lines=(a_line(pointers=(3,)),))))


def test_fifty_lines_are_written_and_validate() -> None:
    lines = tuple(a_line(charge="1.10", line_id=f"L{n}") for n in range(50))
    text = render_837p(an_interchange(a_claim(lines=lines)))
    assert_valid_837p(text)
    assert len(starting(text, "LX*")) == 50
    assert starting(text, "LX*")[-1] == "LX*50"
    assert starting(text, "CLM*")[0].split("*")[2] == "55"
    assert starting(text, "REF*6R*")[49] == "REF*6R*L49"


def test_fifty_one_lines_are_refused_naming_the_claim() -> None:
    lines = tuple(a_line() for _ in range(51))
    with pytest.raises(X12Error, match=r"claim 'CLM-2026-0001': has 51 service lines"):
        render_837p(an_interchange(a_claim(lines=lines)))


def test_a_claim_without_lines_and_an_interchange_without_claims_are_refused() -> None:
    with pytest.raises(X12Error, match="no service lines"):
        render_837p(an_interchange(a_claim(lines=())))
    with pytest.raises(X12Error, match="at least one claim"):
        render_837p(dataclasses.replace(an_interchange(), claims=()))


def test_two_claims_for_two_subscribers_get_their_own_subscriber_loops() -> None:
    other = dataclasses.replace(
        SUBSCRIBER, last_name="Roe", first_name="Rick", sex="M", member_id="9XY8ZZ7AA66"
    )
    first = a_claim()
    second = a_claim(
        claim_id="CLM-2026-0002", subscriber=other, relationship="spouse", patient=CHILD
    )
    text = render_837p(an_interchange(first, second))
    assert_valid_837p(text)
    assert starting(text, "HL*") == [
        "HL*1**20*1",
        "HL*2*1*22*0",
        "HL*3*1*22*1",
        "HL*4*3*23*0",
    ]
    assert [s.split("*")[1] for s in starting(text, "CLM*")] == ["CLM-2026-0001", "CLM-2026-0002"]
    assert [s.split("*")[9] for s in starting(text, "NM1*IL*")] == ["1EG4TE5MK72", "9XY8ZZ7AA66"]


def test_amounts_have_no_trailing_zeros_and_se_counts_st_to_se() -> None:
    lines = (
        a_line(charge="123.40"),
        a_line(code="99439", charge="50.00", modifiers=("25", "59", "GT", "95")),
        a_line(code="G0506", charge="0.05", units=2, place_of_service="02"),
    )
    text = render_837p(an_interchange(a_claim(lines=lines)))
    assert_valid_837p(text)
    assert starting(text, "CLM*")[0].split("*")[2] == "173.45"
    assert [s.split("*")[2] for s in starting(text, "SV1*")] == ["123.4", "50", "0.05"]
    assert starting(text, "SV1*")[1].startswith("SV1*HC:99439:25:59:GT:95*")
    assert starting(text, "SV1*")[2] == "SV1*HC:G0506*0.05*UN*2*02**1"
    all_segments = segments(text)
    st, se = (
        all_segments.index(starting(text, "ST*")[0]),
        all_segments.index(starting(text, "SE*")[0]),
    )
    assert starting(text, "SE*") == [f"SE*{se - st + 1}*0001"]


def test_format_amount_writes_x12_decimals_and_refuses_fractions_of_cents() -> None:
    assert format_amount(Decimal("100.00"), "x") == "100"
    assert format_amount(Decimal("100.10"), "x") == "100.1"
    assert format_amount(Decimal("0"), "x") == "0"
    assert format_amount(Decimal("1E+2"), "x") == "100"
    with pytest.raises(X12Error, match="cents"):
        format_amount(Decimal("1.005"), "x")
    with pytest.raises(X12Error, match="negative"):
        format_amount(Decimal("-1"), "x")


def test_rendering_twice_gives_identical_bytes() -> None:
    interchange = an_interchange(
        a_claim(), a_claim(claim_id="B", relationship="child", patient=CHILD)
    )
    assert render_837p(interchange).encode() == render_837p(interchange).encode()


def test_each_segment_ends_with_tilde_and_newline() -> None:
    text = render_837p(an_interchange())
    assert text.endswith("IEA*1*000000042~\n")
    assert all(line.endswith("~") for line in text.splitlines())


def test_names_are_cleaned_to_the_basic_character_set_and_truncated() -> None:
    assert clean_text("Zoë  O'Brien-Müller*Jr:^~", 60) == "ZOE O'BRIEN-MULLER JR"
    assert clean_text("x" * 80, 60) == "X" * 60
    odd = dataclasses.replace(
        SUBSCRIBER,
        last_name="Nguyễn~Smith",
        first_name="José*Ñ",
        address=dataclasses.replace(ADDRESS, line1="5 Rue d'Été #4", city="Coeur d'Alène"),
    )
    text = render_837p(an_interchange(a_claim(subscriber=odd)))
    assert_valid_837p(text)
    assert starting(text, "NM1*IL*") == ["NM1*IL*1*NGUYEN SMITH*JOSE N****MI*1EG4TE5MK72"]
    assert starting(text, "N3*5") == ["N3*5 RUE D'ETE 4"]


def test_a_name_empty_once_cleaned_is_refused() -> None:
    with pytest.raises(X12Error, match=r"subscriber \(2010BA\) last name"):
        render_837p(
            an_interchange(a_claim(subscriber=dataclasses.replace(SUBSCRIBER, last_name="李")))
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"claim_id": "X" * 39}, r"claim id \(CLM01\)"),
        ({"claim_id": "A*B"}, r"claim id \(CLM01\).*cannot carry"),
        ({"place_of_service": "1"}, r"place of service \(CLM05-1\)"),
        ({"frequency": "2"}, r"frequency \(CLM05-3\)"),
        ({"relationship": "child"}, r"patient \(2010CA\)"),
        ({"relationship": "cousin", "patient": CHILD}, r"relationship \(PAT01\)"),
        ({"diagnoses": ()}, "at least one diagnosis"),
        ({"diagnoses": ("E11.9", "E119")}, "repeat a code"),
        ({"lines": (a_line(line_id="L" * 51),)}, r"line id \(REF\*6R\)"),
        ({"lines": (a_line(modifiers=("25", "59", "GT", "95", "XU")),)}, "modifiers"),
        ({"lines": (a_line(units=0),)}, r"units \(SV104\)"),
        ({"lines": (a_line(pointers=(1, 2, 1)),)}, "repeat"),
        ({"subscriber": dataclasses.replace(SUBSCRIBER, member_id="")}, r"member id \(NM109\)"),
        ({"subscriber": dataclasses.replace(SUBSCRIBER, sex="X")}, r"sex \(DMG03\)"),
        ({"subscriber": dataclasses.replace(SUBSCRIBER, address=None)}, "address"),
        (
            {
                "subscriber": dataclasses.replace(
                    SUBSCRIBER, address=dataclasses.replace(ADDRESS, zip="6270")
                )
            },
            r"ZIP \(N403\)",
        ),
        ({"rendering": Provider(npi="1234567890", last_name="A", first_name="B")}, "valid NPI"),
    ],
)
def test_input_the_guide_cannot_carry_is_refused_naming_the_claim_and_field(
    change: dict[str, object], message: str
) -> None:
    claim = a_claim(**change)
    with pytest.raises(X12Error, match=re.escape(f"claim {claim.claim_id!r}") + ".*" + message):
        render_837p(an_interchange(claim))


def test_a_refusal_does_not_repeat_a_member_id_name_or_zip() -> None:
    secret = dataclasses.replace(
        SUBSCRIBER,
        member_id="SECRET 42 ",
        address=dataclasses.replace(ADDRESS, zip="1234"),
    )
    for subscriber in (secret, dataclasses.replace(secret, member_id="SECRET42")):
        with pytest.raises(X12Error) as refused:
            render_837p(an_interchange(a_claim(subscriber=subscriber)))
        assert "SECRET" not in str(refused.value)
        assert "1234" not in str(refused.value)
        assert "claim 'CLM-2026-0001' subscriber (2010BA)" in str(refused.value)


def test_an_identifier_with_surrounding_spaces_is_refused_not_trimmed() -> None:
    with pytest.raises(X12Error, match=r"claim id \(CLM01\).*leading or trailing spaces"):
        render_837p(an_interchange(a_claim(claim_id=" C1")))


def test_a_zero_charge_line_is_written_as_0() -> None:
    text = render_837p(an_interchange(a_claim(lines=(a_line(charge="-0.00"),))))
    assert_valid_837p(text)
    assert starting(text, "SV1*") == ["SV1*HC:99490*0*UN*1***1"]
    assert starting(text, "CLM*")[0].split("*")[2] == "0"


def test_a_billing_provider_without_zip_plus_4_or_with_a_bad_tin_is_refused() -> None:
    base = an_interchange()
    five = dataclasses.replace(
        base.billing_provider, address=dataclasses.replace(PRACTICE_ADDRESS, zip="62701")
    )
    with pytest.raises(X12Error, match=r"billing provider \(2010AA\) ZIP.*9 digits"):
        render_837p(dataclasses.replace(base, billing_provider=five))
    bad_tin = dataclasses.replace(base.billing_provider, tin="12345")
    with pytest.raises(X12Error, match=r"TIN"):
        render_837p(dataclasses.replace(base, billing_provider=bad_tin))


def test_the_npi_check_digit_is_verified() -> None:
    assert npi_is_valid(BILLING_NPI)
    assert npi_is_valid(RENDERING_NPI)
    assert npi_is_valid(OTHER_NPI)
    assert not npi_is_valid("1234567890")
    assert not npi_is_valid("123456789")


def test_the_validator_helper_reports_pyx12s_errors_for_a_broken_file() -> None:
    text = render_837p(an_interchange())
    broken = text.replace("DMG*D8*19500228*F", "DMG*D8*19501328*Q")
    errors = x12_errors(broken)
    assert any("DMG02" in e for e in errors)
    assert any("DMG03" in e for e in errors)
    se = starting(text, "SE*")[0]
    count = int(se.split("*")[1])
    assert any("SE count" in e for e in x12_errors(text.replace(se, f"SE*{count + 1}*0042")))
    assert x12_errors("not an x12 file")


# --- Random valid claims --------------------------------------------------------------

_ODD_TEXT = st.text(
    alphabet=st.sampled_from("abcXYZ éñüß'-.,*:^~#&ç李 "), min_size=0, max_size=70
).map(lambda s: "A" + s)  # at least one letter survives the cleaning
_CODES = st.sampled_from(["99490", "99439", "99487", "99489", "G0506", "99484", "G2064", "99213"])
_MODIFIER = st.sampled_from(["25", "59", "GT", "95", "XU", "KX", "GA"])
_DIAGNOSES = st.lists(
    st.from_regex(r"[A-TV-Z][0-9]{2}(\.[0-9A-Z]{1,4})?", fullmatch=True),
    min_size=1,
    max_size=12,
    unique_by=lambda c: c.replace(".", ""),
).map(tuple)


@st.composite
def _claims(draw: st.DrawFn, index: int) -> Claim:
    diagnoses = draw(_DIAGNOSES)
    pointer = st.lists(
        st.integers(1, len(diagnoses)), min_size=1, max_size=min(4, len(diagnoses)), unique=True
    ).map(tuple)
    lines = draw(
        st.lists(
            st.builds(
                ServiceLine,
                code=_CODES,
                modifiers=st.lists(_MODIFIER, max_size=4).map(tuple),
                charge=st.decimals(min_value=0, max_value=99999, places=2),
                units=st.integers(1, 99),
                date_of_service=st.dates(datetime.date(2025, 1, 1), datetime.date(2026, 12, 31)),
                diagnosis_pointers=pointer,
                line_id=st.text(alphabet="ABCdef0123-_", max_size=50),
                place_of_service=st.sampled_from([None, "11", "02", "10"]),
            ),
            min_size=1,
            max_size=50,
        ).map(tuple)
    )
    person = st.builds(
        Person,
        last_name=_ODD_TEXT,
        first_name=_ODD_TEXT | st.just(""),
        birth_date=st.dates(datetime.date(1920, 1, 1), datetime.date(2025, 12, 31)),
        sex=st.sampled_from(["M", "F", "U"]),
        address=st.builds(
            Address,
            line1=_ODD_TEXT,
            line2=st.none() | _ODD_TEXT,
            city=_ODD_TEXT.map(lambda s: "CI" + s),
            state=st.sampled_from(["IL", "NY", "ca"]),
            zip=st.sampled_from(["62701", "62701-1234", "100011234"]),
        ),
        member_id=st.text(alphabet="ABC0123456789", min_size=2, max_size=20),
    )
    relationship = draw(st.sampled_from(["self", "spouse", "child", "other"]))
    frequency = draw(st.sampled_from(["1", "7", "8"]))
    rendering = draw(
        st.none()
        | st.builds(
            Provider,
            npi=st.sampled_from([BILLING_NPI, RENDERING_NPI, OTHER_NPI]),
            last_name=_ODD_TEXT,
            first_name=_ODD_TEXT,
            taxonomy=st.sampled_from(["", "207Q00000X", "363LF0000X"]),
        )
    )
    return Claim(
        claim_id=f"C{index}-" + draw(st.text(alphabet="ABCxyz0123456789-", max_size=30)),
        frequency=frequency,
        place_of_service=draw(st.sampled_from(["11", "02", "12"])),
        diagnoses=diagnoses,
        subscriber=draw(person),
        payer=Payer(
            name=draw(_ODD_TEXT),
            payer_id=draw(st.sampled_from(["00952", "SKIL0", "87726"])),
            claim_filing_indicator=draw(st.sampled_from(["MB", "16", "MC", "CI"])),
        ),
        lines=lines,
        original_claim_id="ICN" + draw(st.text(alphabet="0123456789", max_size=20))
        if frequency != "1"
        else None,
        group_number=draw(st.text(alphabet="ABC0123-", max_size=20)),
        relationship=relationship,
        patient=draw(person) if relationship != "self" else None,
        rendering=rendering,
    )


@st.composite
def _interchanges(draw: st.DrawFn) -> Interchange:
    count = draw(st.integers(1, 3))
    claims = tuple(draw(_claims(index)) for index in range(count))
    return an_interchange(
        *claims,
        control_number=draw(st.integers(1, 999_999_999)),
        usage=draw(st.sampled_from(["P", "T"])),
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_interchanges())
def test_random_valid_claims_all_validate_with_pyx12(interchange: Interchange) -> None:
    text = render_837p(interchange)
    assert_valid_837p(text)
    assert render_837p(interchange) == text


def test_more_claims_than_a_transaction_holds_go_into_further_transaction_sets() -> None:
    base = an_interchange()
    claims = tuple(
        dataclasses.replace(base.claims[0], claim_id=f"CLM-{n:04d}") for n in range(1, 6)
    )
    text = render_837p(dataclasses.replace(base, claims=claims), max_claims_per_transaction=2)
    assert starting(text, "ST*") == [f"ST*837*000{n}*005010X222A1" for n in (1, 2, 3)]
    assert [s.split("*")[2] for s in starting(text, "SE*")] == ["0001", "0002", "0003"]
    assert starting(text, "GE*") == ["GE*3*42"]
    assert [s.split("*")[3] for s in starting(text, "BHT*")] == ["42-1", "42-2", "42-3"]
    assert len(starting(text, "CLM*")) == 5
    assert_valid_837p(text)
