"""The test data the suite needs from ``../shared``, kept inside the repository.

``tests/data/shared/`` holds byte-for-byte copies of the files of the shared folder
(``/work/shared``, seen from the repository as ``../shared``) that tests read: the
public scenarios, the rules reference and the CMS fee files. Tests always read these
copies, so a lone clone runs every scenario and every reference check;
``tests/test_shared_copies.py`` checks them against ``../shared`` when it is present.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPY = ROOT / "tests" / "data" / "shared"
ORIGINAL = ROOT.parent / "shared"

SCENARIOS = COPY / "scenarios" / "public.yaml"
REFERENCE = COPY / "reference"
RULES_REFERENCE = REFERENCE / "medicare_rules.md"

# Every copied file, relative to the shared folder (the copy mirrors its layout).
COPIED = (
    "scenarios/public.yaml",
    "scenarios/README.md",
    "reference/medicare_rules.md",
    "reference/cms_pprrvu_2025_jan_nodesc.csv",
    "reference/cms_gpci_2025.csv",
    "reference/cms_pprrvu_2026_jul_subset_nodesc.csv",
    "reference/cms_gpci_2026.csv",
)
