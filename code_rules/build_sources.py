"""Write the ``sources`` table at the end of each parameter file and conflicts.yaml.

Every source key a file cites gets one entry: a ``SRC-...`` key takes its title, year
and address from the rules reference's sources table (medicare_rules.md section 8);
any other citation (a contract section, a statute, a CMS manual) takes them from
``OTHER`` below, or, for ``interchange.md ...`` and ``medicare_rules.md ...``
citations, from their wording. A key no longer cited loses its entry. Re-run after
citing a new source::

    python -m code_rules.build_sources [--reference PATH]

(default reference: the in-repo copy tests/data/shared/reference/medicare_rules.md;
tests/test_param_files.py checks the entries against it).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from billing_engine.io.strict_yaml import load_path

ROOT = Path(__file__).resolve().parents[1]
RULES = Path(__file__).resolve().parent
REFERENCE = ROOT / "tests" / "data" / "shared" / "reference" / "medicare_rules.md"
MARKER = "# Sources cited above (written by code_rules/build_sources.py; edit OTHER there)"
INTERCHANGE = "docs/interchange.md"
RULES_REFERENCE = "../shared/reference/medicare_rules.md"
CMS_PUB_100_04_CH12 = (
    "https://www.cms.gov/Regulations-and-Guidance/Guidance/Manuals/downloads/clm104c12.pdf"
)
CPT_EM = "AMA CPT Professional, Evaluation and Management (E/M) Services Guidelines"

# citations that are neither SRC keys nor sections of the contract or rules reference:
# key -> (title, address[, year]); an address is a URL when the citation gave one, else
# the legal or publication citation
OTHER: dict[str, tuple[str, ...]] = {
    "42 CFR 410.130 diabetes": ("42 CFR 410.130, definitions: diabetes", "42 CFR 410.130"),
    "42 CFR 410.130 physician": ("42 CFR 410.130, definitions: physician", "42 CFR 410.130"),
    "42 CFR 410.130 renal disease": (
        "42 CFR 410.130, definitions: renal disease",
        "42 CFR 410.130",
    ),
    "Budget Control Act of 2011 (2 U.S.C. 901a)": (
        "Budget Control Act of 2011, Medicare sequestration",
        "2 U.S.C. 901a",
    ),
    "CARES Act (PL 116-136) sec. 3709": (
        "CARES Act, sec. 3709 (Medicare sequestration suspended)",
        "Pub. L. 116-136, sec. 3709",
    ),
    "PL 117-7": ("Act extending the Medicare sequestration suspension", "Pub. L. 117-7"),
    "Protecting Medicare and American Farmers from Sequester Cuts Act (PL 117-71) sec. 2": (
        "Protecting Medicare and American Farmers from Sequester Cuts Act, sec. 2",
        "Pub. L. 117-71, sec. 2",
    ),
    "Social Security Act 1848(e)(1)(E) (42 U.S.C. 1395w-4(e)(1)(E))": (
        "Social Security Act section 1848(e)(1)(E), floor on the work GPCI",
        "42 U.S.C. 1395w-4(e)(1)(E)",
    ),
    "CMS Claims Processing Manual 100-04 ch. 12 sec. 20.4.2"
    " (site of service payment differential)": (
        "Medicare Claims Processing Manual, chapter 12, section 20.4.2 "
        "(site of service payment differential)",
        "CMS Pub. 100-04, ch. 12, sec. 20.4.2",
    ),
    "CMS PFS Relative Value File record layout (status code)": (
        "CMS PFS Relative Value File, record layout (status code)",
        "CMS PFS Relative Value File (PPRRVU) record layout",
    ),
    "CY2016 PFS final rule (POS 19 off-campus outpatient hospital)": (
        "CY2016 PFS final rule: POS 19, off-campus outpatient hospital",
        "CY2016 Medicare Physician Fee Schedule final rule",
    ),
    "CY2024 PFS final rule (POS 02 facility rate / POS 10 non-facility rate)": (
        "CY2024 PFS final rule: POS 02 at the facility rate, POS 10 at the non-facility rate",
        "CY2024 Medicare Physician Fee Schedule final rule",
    ),
    "CY2025 PFS final rule Addendum E (2025 PW GPCI (with 1.0 Floor))": (
        "CY2025 PFS final rule, Addendum E, column 2025 PW GPCI (with 1.0 Floor)",
        "../shared/reference/cms_gpci_2025.csv",
    ),
    "CY2026 PFS Addendum E (column 2026 PW GPCI (with 1.0 Floor) = max(without floor, 1.0))": (
        "CY2026 PFS Addendum E, column 2026 PW GPCI (with 1.0 Floor) = max(without floor, 1.0)",
        "../shared/reference/cms_gpci_2026.csv",
    ),
    "shared/README.md (cms_gpci_2026.csv: floor in force for 2026 dates of service)": (
        "Shared reference README, cms_gpci_2026.csv: the floor is in force for 2026 dates "
        "of service",
        "../shared/README.md",
    ),
    "HCPCS Level II code set": ("CMS HCPCS Level II code set", "CMS HCPCS Level II code set"),
    "ICD-10-CM Z68 category (BMI adult bands)": (
        "ICD-10-CM tabular list, category Z68 Body mass index (adult bands)",
        "ICD-10-CM Tabular List, Z68",
    ),
    "ICD-10-CM guideline I.B.14 (BMI codes are secondary)": (
        "ICD-10-CM Official Guidelines for Coding and Reporting, I.B.14 (BMI codes are secondary)",
        "ICD-10-CM Official Guidelines for Coding and Reporting, section I.B.14",
    ),
    # Pub. 100-04 and the pages quoting it (nurse visit group/specialty scope)
    "PUB100-04-CH12-30.6.5": (
        "CMS Pub. 100-04 Medicare Claims Processing Manual, Chapter 12, §30.6.5 (physicians "
        "in the same group practice who are in the same specialty bill and are paid as "
        "though they were a single physician; different specialties bill without regard to "
        "the group) and §30.6.7 (same physician = same group, same specialty)",
        CMS_PUB_100_04_CH12,
    ),
    "PUB100-04-CH12-30.6.7": (
        "CMS Pub. 100-04 Medicare Claims Processing Manual, Chapter 12, §30.6.7 (new "
        "patient: no professional service from the physician or group practice, same "
        "physician specialty, within three years)",
        CMS_PUB_100_04_CH12,
    ),
    "PALMETTO-EM-GROUP": (
        "Palmetto GBA, 'Evaluation and Management (E/M) Coding Reminder: Group Practices' "
        "(citing Pub. 100-04 ch. 12 §30.6.5)",
        "https://www.palmettogba.com/palmetto/jmb.nsf/DID/8EEL9R7732",
        "2020-08-03",
    ),
    "TMA-SAME-GROUP": (
        "Texas Medical Association, 'Physicians in Same Group, Same Specialty: Bill "
        "Medicare as One'",
        "https://www.texmed.org/Template.aspx?id=1895",
        "2016",
    ),
    "CODINGONLINE-SAME-PHYSICIAN": (
        "coding-online.net, 'Same Physician May Not Mean What You Think It Does' (citing "
        "Pub. 100-04 ch. 12 §30.6.7)",
        "https://coding-online.net/same-physician-may-not-mean-what-you-think-it-does",
    ),
    "CPT E/M guidelines, new vs established patient": (
        "CPT E/M guidelines, new vs established patient",
        CPT_EM,
    ),
    "CPT E/M guidelines, new vs established patient (three years);"
    " not quoted in medicare_rules.md": (
        "CPT E/M guidelines, new vs established patient (three years); not quoted in "
        "medicare_rules.md",
        CPT_EM,
    ),
}


def reference_table(text: str) -> dict[str, dict[str, str]]:
    """The rules reference's section 8 table: key -> {title, year, address}."""
    section = text[text.index("## 8. Sources") :]
    out: dict[str, dict[str, str]] = {}
    for line in section.splitlines():
        match = re.match(r"^\|\s*`(SRC-[^`]+)`\s*\|(.*)\|\s*$", line)
        if match:
            title, year, address = (cell.strip() for cell in match.group(2).split("|"))
            out[match.group(1)] = {"title": title, "year": year, "address": address}
    return out


def cited(doc: Any) -> Iterator[str]:
    """Every source key a parameter or conflict file cites, in order of appearance."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key in ("source", "sources") and isinstance(value, list | str):
                yield from [value] if isinstance(value, str) else map(str, value)
            elif key != "sources":
                yield from cited(value)
    elif isinstance(doc, list):
        for item in doc:
            yield from cited(item)


def entry(key: str, reference: dict[str, dict[str, str]]) -> dict[str, str]:
    if key.startswith("SRC-"):
        if key not in reference:
            raise SystemExit(f"{key}: not in the rules reference's sources table")
        return reference[key]
    if key in OTHER:
        title, address, *year = OTHER[key]
        return {"title": title, **({"year": year[0]} if year else {}), "address": address}
    if key.startswith("interchange.md "):
        title = _interchange_title(key.removeprefix("interchange.md "))
        return {"title": title, "address": INTERCHANGE}
    if key.startswith("medicare_rules.md "):
        return {
            "title": "Medicare rules reference, " + key.removeprefix("medicare_rules.md "),
            "address": RULES_REFERENCE,
        }
    raise SystemExit(f"{key!r}: add a title and an address to OTHER in {__file__}")


def _interchange_title(where: str) -> str:
    if where.startswith("semantics "):
        return f"Interchange contract, semantics point {where.removeprefix('semantics ')}"
    if where.startswith("Additions ("):
        head, _, name = where.rpartition(" ")
        return f"Interchange contract, {head}, {name}"
    table, _, column = where.partition(".")
    return f"Interchange contract, {table} table" + (f", column {column}" if column else "")


def write(path: Path, reference: dict[str, dict[str, str]]) -> bool:
    """Rewrite the sources table at the end of `path`; True if the file changed."""
    text = path.read_text(encoding="utf-8")
    body = text.split("\n" + MARKER + "\n")[0].rstrip("\n") + "\n"
    keys = sorted(dict.fromkeys(cited(load_path(path))))
    if not keys:
        return False
    table = {"sources": {key: entry(key, reference) for key in keys}}
    block = yaml.safe_dump(table, sort_keys=False, allow_unicode=True, width=10_000)
    new = f"{body}\n{MARKER}\n{block}"
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference", type=Path, default=REFERENCE)
    args = parser.parse_args(argv)
    reference = reference_table(args.reference.read_text(encoding="utf-8"))
    files = [*sorted(RULES.rglob("parameters.yaml")), RULES / "conflicts.yaml"]
    for path in files:
        if write(path, reference):
            print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
