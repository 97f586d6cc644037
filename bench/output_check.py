"""Before/after check for refactors: the demo month's outputs and every public scenario.

    python bench/output_check.py record bench/output_baseline.json   # before the change
    python bench/output_check.py compare bench/output_baseline.json  # after it

``record`` runs ``billing demo`` (the README's main job, default size and seed) into a
temporary folder and ``billing evaluate`` on every public scenario
(tests/data/shared/scenarios/public.yaml), and writes the SHA-256 of every file they
produce: the demo bundle, the demo outputs, the printed summary and each scenario's
outputs. What legitimately differs from run to run is taken out first: the run id (in
manifest.json and on every line), the creation time and the temporary paths (in
manifest.json and the printed summary).
``compare`` does the same and lists every file whose bytes differ; it exits 1 if any.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.scenario_io import write_scenario_bundle  # noqa: E402
from tests.shared_data import SCENARIOS  # noqa: E402

VOLATILE_MANIFEST_KEYS = ("run_id", "created_at", "source", "store", "exported_at", "exported_by")
UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# the 837P's creation date and time (ISA09/10, GS04/05, BHT04/05): the export's clock
X12_CLOCK = (
    re.compile(rb"^(ISA\*(?:[^*]*\*){8})\d{6}\*\d{4}", re.MULTILINE),
    re.compile(rb"^(GS\*HC\*[^*]*\*[^*]*\*)\d{8}\*\d{4}", re.MULTILINE),
    re.compile(rb"^(BHT\*0019\*00\*[^*]*\*)\d{8}\*\d{4}", re.MULTILINE),
)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _normalized(path: Path, tmp: Path) -> bytes:
    data = path.read_bytes()
    manifest = path.with_name("manifest.json")
    if manifest.exists():  # every line and gap names its run
        run_id = json.loads(manifest.read_bytes()).get("run_id")
        if run_id:
            data = data.replace(str(run_id).encode(), b"<run>")
    if path.suffix == ".x12":
        for clock in X12_CLOCK:
            data = clock.sub(rb"\1<clock>", data)
    if path.name == "manifest.json":
        doc = json.loads(data)
        for key in VOLATILE_MANIFEST_KEYS:
            doc.pop(key, None)
        files = doc.get("files", {})
        for entry in files.values() if isinstance(files, dict) else files:
            entry.pop("sha256", None)  # the files are compared themselves
        data = json.dumps(doc, indent=2, sort_keys=True).encode()
    return data.replace(str(tmp).encode(), b"<tmp>")


def _folder(folder: Path, tmp: Path, prefix: str) -> dict[str, str]:
    return {
        f"{prefix}/{p.relative_to(folder)}": _digest(_normalized(p, tmp))
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _billing(*args: str) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "cli.main", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, check=True)


def snapshot() -> dict[str, str]:
    out: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        demo = _billing(
            "demo",
            "--db",
            f"sqlite:///{tmp / 'demo.db'}",
            "--bundle",
            str(tmp / "bundle"),
            "--out",
            str(tmp / "out"),
        )
        text = demo.stdout.replace(str(tmp).encode(), b"<tmp>")
        lines = [
            UUID.sub(b"<run>", ln) for ln in text.splitlines() if not ln.startswith(b"evaluated ")
        ]
        out["demo/summary.txt"] = _digest(b"\n".join(lines))
        out.update(_folder(tmp / "bundle", tmp, "demo/bundle"))
        out.update(_folder(tmp / "out", tmp, "demo/out"))
        out.update(_folder(tmp / "demo-claims", tmp, "demo/claims"))
        scenarios: list[dict[str, Any]] = yaml.safe_load(SCENARIOS.read_text(encoding="utf-8"))
        for scenario in scenarios:
            folder = tmp / "scenarios" / scenario["id"]
            write_scenario_bundle(scenario["tables"], folder / "bundle")
            _billing(
                "evaluate",
                str(folder / "bundle"),
                "--month",
                str(scenario["month"]),
                "--out",
                str(folder / "out"),
            )
            out.update(_folder(folder / "out", tmp, f"scenarios/{scenario['id']}"))
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("record", "compare"):
        print(__doc__)
        return 2
    verb, target = argv[0], Path(argv[1])
    now = snapshot()
    if verb == "record":
        target.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"recorded {len(now)} files in {target}")
        return 0
    before: dict[str, str] = json.loads(target.read_text(encoding="utf-8"))
    differ = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
    for key in differ:
        state = "missing" if key not in now else "new" if key not in before else "differs"
        print(f"{state}: {key}")
    print(f"{len(now)} files compared, {len(differ)} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
