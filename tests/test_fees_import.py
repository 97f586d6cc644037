"""CMS fee files: reading the RVU and GPCI files, the shipped fee data, the store, the CLI.

The excerpts under ``tests/data/cms/`` keep the CMS layout (title lines, the RVU file's
multi-row header, CRLF line ends and its closing end-of-file mark; the GPCI file's notes
and footnotes). Tests that need the full CMS files read the in-repo copies of
``../shared/reference`` (``tests/data/shared/reference``).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from click.testing import CliRunner
from polars.testing import assert_frame_equal

from billing_engine.errors import BillingError, FeeFileError
from billing_engine.io.cms_gpci import GPCI_COLUMNS, GPCI_SCHEMA, read_gpci, read_gpci_table
from billing_engine.io.cms_pfs import PFS_COLUMNS, PFS_SCHEMA, read_pfs, read_pfs_table
from billing_engine.store import Store, StoreError
from tests.shared_data import REFERENCE

DATA = Path(__file__).resolve().parent / "data" / "cms"
PFS_EXCERPT = DATA / "pprrvu_2025_excerpt.csv"
GPCI_EXCERPT = DATA / "gpci_2025_excerpt.csv"
SHARED = REFERENCE
PFS_FULL = SHARED / "cms_pprrvu_2025_jan_nodesc.csv"
GPCI_FULL = SHARED / "cms_gpci_2025.csv"
SHIPPED = Path(__file__).resolve().parents[1] / "code_rules" / "pricing" / "data"

RELEASE_2025 = (
    "2025 National Physician Fee Schedule Relative Value File January Release; RELEASED 12/23/2024"
)
# line numbers in the RVU excerpt (1-based): the header ends on line 10
PFS_HEADER_LINE = 10
PFS_LINE_OF = {"G0438": 11, "G0439": 12, "99211": 17, "99490": 20}
WORK_RVU_COLUMN = 5  # 0-based position of WORK / RVU


def _row(frame: pl.DataFrame, **match: Any) -> dict[str, Any]:
    hits = frame.filter(*(pl.col(k) == v for k, v in match.items()))
    assert hits.height == 1, f"{hits.height} rows for {match}"
    return hits.row(0, named=True)


def _cells(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def _variant(
    tmp_path: Path, source: Path, edit: Callable[[list[list[str]]], None], name: str = ""
) -> Path:
    """A copy of ``source`` with its cells changed by ``edit`` (one CSV line per row)."""
    rows = _cells(source)
    edit(rows)
    out = tmp_path / (name or source.name)
    with out.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\r\n").writerows(rows)
    return out


def _index_of(rows: list[list[str]], code: str, modifier: str = "") -> int:
    return next(i for i, r in enumerate(rows) if r[:2] == [code, modifier])


def _refused(path: Path, read: Callable[[], Any]) -> FeeFileError:
    with pytest.raises(FeeFileError) as refused:
        read()
    assert path.name in str(refused.value)
    return refused.value


# --------------------------------------------------------------------------- RVU file


def test_a_pfs_excerpt_reads_into_the_normalized_columns_and_types() -> None:
    frame = read_pfs(PFS_EXCERPT, 2025)
    assert frame.columns == list(PFS_COLUMNS)
    assert dict(frame.schema) == PFS_SCHEMA
    assert frame.height == 12  # the end-of-file line is not a row
    assert frame.null_count().row(0) == (0,) * len(PFS_COLUMNS)


def test_99490_has_its_published_2025_rvus_conversion_factor_and_status() -> None:
    row = _row(read_pfs(PFS_EXCERPT, 2025), hcpcs="99490", modifier="")
    assert row["work_rvu"] == Decimal("1.00")
    assert row["nf_pe_rvu"] == Decimal("0.81")
    assert row["f_pe_rvu"] == Decimal("0.42")
    assert row["mp_rvu"] == Decimal("0.06")
    assert row["conv_factor"] == Decimal("32.3465")
    assert row["status"] == "A"
    assert (row["nf_na"], row["f_na"]) == ("", "")


def test_the_na_indicators_are_blank_or_na() -> None:
    frame = read_pfs(PFS_EXCERPT, 2025)
    g0439 = _row(frame, hcpcs="G0439")
    assert (g0439["nf_na"], g0439["f_na"]) == ("", "NA")  # no facility rate for the AWV
    assert set(frame["nf_na"]) | set(frame["f_na"]) <= {"", "NA"}


def test_a_blank_modifier_is_an_empty_string_and_modifiers_are_kept_apart() -> None:
    frame = read_pfs(PFS_EXCERPT, 2025).filter(pl.col("hcpcs") == "71046")
    assert sorted(frame["modifier"]) == ["", "26", "TC"]
    assert _row(frame, modifier="26")["work_rvu"] == Decimal("0.22")
    assert _row(frame, modifier="TC")["work_rvu"] == Decimal("0")


def test_the_release_is_the_title_line_with_its_release_date_and_the_file_named() -> None:
    frame = read_pfs(PFS_EXCERPT, 2025)
    assert set(frame["release"]) == {RELEASE_2025}
    assert set(frame["source_file"]) == {PFS_EXCERPT.name}


def test_effective_from_defaults_to_january_first_and_qp_to_false() -> None:
    frame = read_pfs(PFS_EXCERPT, 2025)
    assert set(frame["effective_from"]) == {dt.date(2025, 1, 1)}
    assert set(frame["qp"]) == {False}
    assert set(frame["year"]) == {2025}


def test_an_effective_date_and_the_qp_flag_are_carried_on_every_row() -> None:
    frame = read_pfs(PFS_EXCERPT, 2025, dt.date(2025, 3, 9), qp=True)
    assert set(frame["effective_from"]) == {dt.date(2025, 3, 9)}
    assert set(frame["qp"]) == {True}


def test_an_effective_date_outside_the_year_is_refused() -> None:
    error = _refused(PFS_EXCERPT, lambda: read_pfs(PFS_EXCERPT, 2025, dt.date(2024, 12, 31)))
    assert "2024-12-31" in str(error)
    assert error.column == "effective_from"


def test_a_title_year_other_than_the_year_asked_for_is_refused() -> None:
    error = _refused(PFS_EXCERPT, lambda: read_pfs(PFS_EXCERPT, 2024))
    assert error.line == 1
    assert "2025" in str(error) and "2024" in str(error)


def test_a_pfs_file_without_an_hcpcs_header_row_is_refused(tmp_path: Path) -> None:
    def drop_header(rows: list[list[str]]) -> None:
        rows[PFS_HEADER_LINE - 1][0] = "CODE"

    path = _variant(tmp_path, PFS_EXCERPT, drop_header)
    error = _refused(path, lambda: read_pfs(path, 2025))
    assert error.column == "HCPCS"


def test_a_pfs_file_without_a_work_rvu_column_is_refused(tmp_path: Path) -> None:
    def drop_work(rows: list[list[str]]) -> None:
        for row in rows:
            del row[WORK_RVU_COLUMN]

    path = _variant(tmp_path, PFS_EXCERPT, drop_work)
    error = _refused(path, lambda: read_pfs(path, 2025))
    assert (error.line, error.column) == (PFS_HEADER_LINE, "WORK RVU")
    assert "WORK RVU" in str(error)


def test_a_non_numeric_rvu_is_refused_naming_file_line_and_column(tmp_path: Path) -> None:
    def spoil(rows: list[list[str]]) -> None:
        rows[_index_of(rows, "99490")][WORK_RVU_COLUMN] = "one"

    path = _variant(tmp_path, PFS_EXCERPT, spoil)
    error = _refused(path, lambda: read_pfs(path, 2025))
    assert (error.line, error.column, error.value) == (PFS_LINE_OF["99490"], "WORK RVU", "one")
    assert str(error).startswith(f"{path.name}, line 20, column WORK RVU:")


def test_a_negative_conversion_factor_is_refused(tmp_path: Path) -> None:
    def negate(rows: list[list[str]]) -> None:
        header = rows[PFS_HEADER_LINE - 1]
        rows[_index_of(rows, "99211")][header.index("FACTOR")] = "-32.3465"

    path = _variant(tmp_path, PFS_EXCERPT, negate)
    error = _refused(path, lambda: read_pfs(path, 2025))
    assert (error.line, error.column) == (PFS_LINE_OF["99211"], "CONV FACTOR")
    assert "negative" in str(error)


def test_an_rvu_with_more_than_four_decimals_is_refused_not_rounded(tmp_path: Path) -> None:
    def widen(rows: list[list[str]]) -> None:
        rows[_index_of(rows, "G0438")][WORK_RVU_COLUMN] = "2.60001"

    path = _variant(tmp_path, PFS_EXCERPT, widen)
    assert _refused(path, lambda: read_pfs(path, 2025)).line == PFS_LINE_OF["G0438"]


def test_an_empty_hcpcs_is_refused(tmp_path: Path) -> None:
    def blank(rows: list[list[str]]) -> None:
        rows[_index_of(rows, "G0439")][0] = ""

    path = _variant(tmp_path, PFS_EXCERPT, blank)
    error = _refused(path, lambda: read_pfs(path, 2025))
    assert (error.line, error.column) == (PFS_LINE_OF["G0439"], "HCPCS")


def test_a_duplicate_hcpcs_and_modifier_is_refused_on_its_second_line(tmp_path: Path) -> None:
    def repeat(rows: list[list[str]]) -> None:
        rows.insert(PFS_LINE_OF["99490"] + 1, list(rows[_index_of(rows, "99490")]))

    path = _variant(tmp_path, PFS_EXCERPT, repeat)
    error = _refused(path, lambda: read_pfs(path, 2025))
    assert (error.line, error.column) == (PFS_LINE_OF["99490"] + 2, "HCPCS")
    assert "99490" in str(error) and "line 20" in str(error)


def test_a_pfs_file_without_data_rows_is_refused(tmp_path: Path) -> None:
    def truncate(rows: list[list[str]]) -> None:
        del rows[PFS_HEADER_LINE:]

    path = _variant(tmp_path, PFS_EXCERPT, truncate)
    error = _refused(path, lambda: read_pfs(path, 2025))
    assert "no data rows" in str(error)


def test_a_missing_file_is_a_fee_file_error(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.csv"
    error = _refused(path, lambda: read_pfs(path, 2025))
    assert isinstance(error, BillingError)


def test_an_xlsx_copy_reads_like_the_csv(tmp_path: Path) -> None:
    import openpyxl

    def as_number(cell: str) -> object:
        cell = cell.replace("\x1a", "")  # a worksheet cannot hold the end-of-file mark
        try:
            number = float(cell)
        except ValueError:
            return cell or None
        return int(number) if number.is_integer() and "." not in cell else number

    for source, read in (
        (PFS_EXCERPT, lambda p: read_pfs(p, 2025)),
        (GPCI_EXCERPT, lambda p: read_gpci(p, 2025)),
    ):
        workbook = openpyxl.Workbook()
        sheet = workbook.active
        for row in _cells(source):
            sheet.append([as_number(cell) for cell in row])
        path = tmp_path / f"{source.stem}.xlsx"
        workbook.save(path)
        expected = read(source).with_columns(pl.lit(path.name).alias("source_file"))
        assert_frame_equal(read(path), expected)


def test_the_full_2025_rvu_file_reads_every_code() -> None:
    frame = read_pfs(PFS_FULL, 2025)
    assert frame.height == 18865
    assert set(frame["conv_factor"]) == {Decimal("32.3465")}
    row = _row(frame, hcpcs="99490", modifier="")
    assert (row["work_rvu"], row["nf_pe_rvu"], row["f_pe_rvu"], row["mp_rvu"]) == (
        Decimal("1.00"),
        Decimal("0.81"),
        Decimal("0.42"),
        Decimal("0.06"),
    )
    assert set(frame["release"]) == {RELEASE_2025}


# --------------------------------------------------------------------------- GPCI file


def test_gpci_localities_are_keyed_as_mac_dash_locality_number() -> None:
    frame = read_gpci(GPCI_EXCERPT, 2025)
    assert frame.columns == list(GPCI_COLUMNS)
    assert dict(frame.schema) == GPCI_SCHEMA
    alabama = _row(frame, locality="10112-0")
    assert (alabama["pw_gpci"], alabama["pe_gpci"], alabama["mp_gpci"]) == (
        Decimal("1.000"),
        Decimal("0.869"),
        Decimal("0.575"),
    )
    assert (alabama["mac"], alabama["state"], alabama["locality_number"]) == ("10112", "AL", 0)
    assert _row(frame, locality="1182-18")["locality_name"].startswith("LOS ANGELES")
    assert frame.height == 10  # notes and footnotes are not localities


def test_the_alaska_footnote_mentions_the_1_5_floor_and_the_marker_leaves_the_name() -> None:
    frame = read_gpci(GPCI_EXCERPT, 2025)
    alaska = _row(frame, state="AK")
    assert alaska["locality_name"] == "ALASKA"
    assert "1.5 floor" in alaska["footnote"]
    assert not alaska["footnote"].startswith("*")
    assert "frontier" in _row(frame, state="WY")["footnote"]  # '**' is the other note
    assert _row(frame, state="AL")["footnote"] == ""


def test_the_gpci_release_is_the_title_line() -> None:
    frame = read_gpci(GPCI_EXCERPT, 2025)
    (release,) = set(frame["release"])
    assert release.startswith("ADDENDUM E. FINAL CY 2025 GEOGRAPHIC PRACTICE COST INDICES")
    assert set(frame["source_file"]) == {GPCI_EXCERPT.name}


def test_a_gpci_title_year_other_than_the_year_asked_for_is_refused() -> None:
    error = _refused(GPCI_EXCERPT, lambda: read_gpci(GPCI_EXCERPT, 2026))
    assert error.line == 1


def test_a_non_integer_locality_number_is_refused(tmp_path: Path) -> None:
    def spoil(rows: list[list[str]]) -> None:
        rows[4][2] = "1a"  # Alaska, line 5

    path = _variant(tmp_path, GPCI_EXCERPT, spoil)
    error = _refused(path, lambda: read_gpci(path, 2025))
    assert (error.line, error.column, error.value) == (5, "Locality Number", "1a")


def test_a_duplicate_locality_is_refused(tmp_path: Path) -> None:
    def repeat(rows: list[list[str]]) -> None:
        rows.insert(5, list(rows[3]))  # Alabama again on line 6

    path = _variant(tmp_path, GPCI_EXCERPT, repeat)
    error = _refused(path, lambda: read_gpci(path, 2025))
    assert (error.line, error.column) == (6, "Locality Number")
    assert "10112-0" in str(error)


def test_a_non_numeric_gpci_is_refused_naming_its_column(tmp_path: Path) -> None:
    def spoil(rows: list[list[str]]) -> None:
        rows[3][5] = "n/a"

    path = _variant(tmp_path, GPCI_EXCERPT, spoil)
    error = _refused(path, lambda: read_gpci(path, 2025))
    assert (error.line, error.column) == (4, "2025 PE GPCI")


def test_a_footnote_marker_without_a_footnote_is_refused(tmp_path: Path) -> None:
    def drop_footnotes(rows: list[list[str]]) -> None:
        rows[:] = [r for r in rows if not r[0].startswith("*")]

    path = _variant(tmp_path, GPCI_EXCERPT, drop_footnotes)
    error = _refused(path, lambda: read_gpci(path, 2025))
    assert (error.line, error.column) == (5, "Locality Name")


def test_a_gpci_file_without_its_header_is_refused(tmp_path: Path) -> None:
    def drop_header(rows: list[list[str]]) -> None:
        del rows[2]

    path = _variant(tmp_path, GPCI_EXCERPT, drop_header)
    assert _refused(path, lambda: read_gpci(path, 2025)).column == "Locality Number"


def test_the_full_gpci_file_has_every_locality_once() -> None:
    frame = read_gpci(GPCI_FULL, 2025)
    assert frame.height == 109
    assert frame["locality"].is_unique().all()
    assert _row(frame, locality="1182-18")["pw_gpci"] == Decimal("1.042")
    footnoted = frame.filter(pl.col("footnote") != "")
    assert sorted(footnoted["state"]) == ["AK", "MT", "ND", "NV", "SD", "WY"]


# --------------------------------------------------------------------------- shipped data


def test_the_shipped_rvus_give_99490_its_2025_values() -> None:
    frame = read_pfs_table(SHIPPED / "pfs_rvu_2025.csv")
    assert dict(frame.schema) == PFS_SCHEMA
    row = _row(frame, hcpcs="99490")
    assert (row["work_rvu"], row["nf_pe_rvu"], row["f_pe_rvu"], row["mp_rvu"]) == (
        Decimal("1.00"),
        Decimal("0.81"),
        Decimal("0.42"),
        Decimal("0.06"),
    )
    assert (row["conv_factor"], row["status"], row["modifier"]) == (Decimal("32.3465"), "A", "")
    assert (row["year"], row["effective_from"], row["qp"]) == (2025, dt.date(2025, 1, 1), False)


def test_the_shipped_rvu_table_holds_referenced_codes_without_modifiers() -> None:
    from code_rules.pricing.build_fee_data import referenced_codes

    frame = read_pfs_table(SHIPPED / "pfs_rvu_2025.csv")
    assert set(frame["modifier"]) == {""}
    assert frame["hcpcs"].is_unique().all()
    assert set(frame["hcpcs"]) <= set(referenced_codes())
    assert {"99490", "99211", "G0439", "99495", "G0506"} <= set(frame["hcpcs"])


def test_the_shipped_gpcis_include_alabama_and_the_alaska_floor() -> None:
    frame = read_gpci_table(SHIPPED / "gpci_2025.csv")
    assert dict(frame.schema) == GPCI_SCHEMA
    alabama = _row(frame, locality="10112-0")
    assert (alabama["pw_gpci"], alabama["pe_gpci"], alabama["mp_gpci"]) == (
        Decimal("1.000"),
        Decimal("0.869"),
        Decimal("0.575"),
    )
    alaska = _row(frame, state="AK")
    assert alaska["pw_gpci"] == Decimal("1.5")
    assert "1.5 floor" in alaska["footnote"]
    assert frame.height == 109


def test_the_sources_file_records_each_shipped_file() -> None:
    doc = yaml.safe_load((SHIPPED / "sources.yaml").read_text(encoding="utf-8"))
    files = doc["files"]
    for name, kind, reader in (
        ("pfs_rvu_2025.csv", "pfs", read_pfs_table),
        ("gpci_2025.csv", "gpci", read_gpci_table),
    ):
        entry = files[name]
        frame = reader(SHIPPED / name)
        assert (entry["year"], entry["kind"], entry["rows"]) == (2025, kind, frame.height)
        assert set(frame["release"]) == {entry["release"]}
        assert set(frame["source_file"]) == {entry["source_file"]}
        assert len(entry["source_sha256"]) == 64
        assert entry["command"].startswith("python -m code_rules.pricing.build_fee_data")
        original = SHARED / entry["source_file"]
        assert hashlib.sha256(original.read_bytes()).hexdigest() == entry["source_sha256"]


def test_the_build_script_reproduces_the_shipped_files(tmp_path: Path) -> None:
    from code_rules.pricing.build_fee_data import write

    write(PFS_FULL, GPCI_FULL, 2025, out=tmp_path)
    for name in ("pfs_rvu_2025.csv", "gpci_2025.csv"):
        assert (tmp_path / name).read_bytes() == (SHIPPED / name).read_bytes(), name
    built = yaml.safe_load((tmp_path / "sources.yaml").read_text(encoding="utf-8"))["files"]
    shipped = yaml.safe_load((SHIPPED / "sources.yaml").read_text(encoding="utf-8"))["files"]
    for name, entry in built.items():
        assert {k: v for k, v in entry.items() if k != "command"} == {
            k: v for k, v in shipped[name].items() if k != "command"
        }


def test_referenced_codes_are_the_hcpcs_shaped_strings_of_parameter_values() -> None:
    from billing_engine.params.parameter import DatedValue, Parameter
    from code_rules.pricing.build_fee_data import referenced_codes

    parameter = Parameter(
        name="x.codes",
        description="",
        unit="",
        rules=(),
        values=(
            DatedValue(dt.date(2025, 1, 1), ["99490", "g0439", "E11", "12345678"], ()),
            DatedValue(dt.date(2025, 2, 1), {"by_code": {"T1016": 15}, "note": "99999x"}, ()),
        ),
        verified_through=dt.date(2025, 12, 31),
    )
    assert referenced_codes([parameter]) == ["99490", "G0439", "T1016"]


# --------------------------------------------------------------------------- store


def _small_pfs(**kwargs: Any) -> pl.DataFrame:
    return read_pfs(PFS_EXCERPT, 2025, **kwargs)


def test_fee_files_round_trip_through_the_store_typed(store_url: str) -> None:
    pfs, gpci = _small_pfs(), read_gpci(GPCI_EXCERPT, 2025)
    with Store.open(store_url) as store:
        assert store.fee_tables()[0].height == 0
        assert store.import_pfs(pfs) == pfs.height
        assert store.import_gpci(gpci) == gpci.height
        rvus, gpcis = store.fee_tables()
    assert_frame_equal(rvus, pfs.sort("hcpcs", "modifier"))
    assert_frame_equal(gpcis, gpci.sort("locality"))
    assert dict(rvus.schema) == PFS_SCHEMA and dict(gpcis.schema) == GPCI_SCHEMA


def test_reimporting_a_release_replaces_its_rows_and_keeps_other_releases(store_url: str) -> None:
    full = _small_pfs()
    qp = _small_pfs(qp=True)
    march = _small_pfs(effective_from=dt.date(2025, 3, 9))
    with Store.open(store_url) as store:
        store.import_pfs(full)
        store.import_pfs(qp)
        store.import_pfs(march)
        fewer = full.filter(pl.col("hcpcs").is_in(["99490", "99211"]))
        assert store.import_pfs(fewer) == 2
        rvus, _ = store.fee_tables()
        gpci = read_gpci(GPCI_EXCERPT, 2025)
        store.import_gpci(gpci)
        store.import_gpci(gpci.head(3))
        _, gpcis = store.fee_tables()
    counts = dict(
        rvus.group_by("effective_from", "qp")
        .len()
        .select(pl.concat_str("effective_from", "qp", separator="/"), "len")
        .rows()
    )
    assert counts == {
        "2025-01-01/false": 2,
        "2025-01-01/true": full.height,
        "2025-03-09/false": full.height,
    }
    assert gpcis.height == 3


def test_a_failed_fee_import_changes_nothing(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _small_pfs()
    with Store.open(store_url) as store:
        store.import_pfs(first)
        before = store.fee_tables()[0]
        monkeypatch.setattr("billing_engine.store.connect.BATCH_ROWS", 2)
        # the repeated key fails in a later batch, after the delete and the first inserts
        broken = pl.concat([first.head(6), first.slice(5, 1)])
        with pytest.raises(StoreError):
            store.import_pfs(broken)
        assert_frame_equal(store.fee_tables()[0], before)


def test_a_frame_without_the_normalized_columns_is_refused_by_the_store(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 's.db'}") as store:
        with pytest.raises(ValueError, match="conv_factor"):
            store.import_pfs(_small_pfs().drop("conv_factor"))
        with pytest.raises(ValueError, match="footnote"):
            store.import_gpci(read_gpci(GPCI_EXCERPT, 2025).drop("footnote"))


def test_fee_releases_lists_each_release_with_its_row_count(store_url: str) -> None:
    with Store.open(store_url) as store:
        assert store.fee_releases() == []
        store.import_pfs(_small_pfs(qp=True))
        store.import_pfs(_small_pfs())
        store.import_gpci(read_gpci(GPCI_EXCERPT, 2025))
        releases = store.fee_releases()
    shown = [(r["kind"], r["year"], r["effective_from"], r["qp"], r["rows"]) for r in releases]
    assert shown == [
        ("pfs", 2025, dt.date(2025, 1, 1), False, 12),
        ("pfs", 2025, dt.date(2025, 1, 1), True, 12),
        ("gpci", 2025, None, None, 10),
    ]
    assert releases[0]["release"] == RELEASE_2025
    assert releases[0]["source_file"] == PFS_EXCERPT.name
    assert all(r["imported_at"].tzinfo is not None for r in releases)


# --------------------------------------------------------------------------- CLI


def _invoke(*args: str) -> Any:
    from cli.main import billing

    return CliRunner().invoke(billing, list(args))


def test_billing_fees_import_pfs_prints_rows_year_release_and_conversion_factor(
    store_url: str,
) -> None:
    result = _invoke("fees", "import-pfs", str(PFS_EXCERPT), "--year", "2025", "--db", store_url)
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first.startswith(
        f"imported 12 RVU rows for 2025 (effective 2025-01-01, non-QP) from {PFS_EXCERPT} into "
    )
    assert "32.3465" in result.output
    qp = _invoke(
        "fees",
        "import-pfs",
        str(PFS_EXCERPT),
        "--year",
        "2025",
        "--effective-from",
        "2025-03-09",
        "--qp",
        "--db",
        store_url,
    )
    assert qp.exit_code == 0, qp.output
    assert "(effective 2025-03-09, QP)" in qp.output
    with Store.open(store_url) as store:
        assert len(store.fee_releases()) == 2


def test_billing_fees_import_gpci_and_list_show_the_releases(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fees.db'}"
    empty = _invoke("fees", "list", "--db", url)
    assert empty.exit_code == 0, empty.output
    assert "no fee files imported" in empty.output
    assert not (tmp_path / "fees.db").exists()  # listing a missing store never creates one
    result = _invoke("fees", "import-gpci", str(GPCI_EXCERPT), "--year", "2025", "--db", url)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"imported 10 GPCI localities for 2025 from {GPCI_EXCERPT}")
    assert (
        _invoke("fees", "import-pfs", str(PFS_EXCERPT), "--year", "2025", "--db", url).exit_code
        == 0
    )
    listed = _invoke("fees", "list", "--db", url)
    assert listed.exit_code == 0, listed.output
    assert listed.output.startswith("shipped with the engine")
    assert "pfs  2025 effective 2025-01-01, non-QP: 57 rows" in listed.output
    lines = listed.output.split("imported into", 1)[1].splitlines()
    assert lines[1].split()[:4] == ["kind", "year", "effective", "qp"]
    assert lines[2].split()[:5] == ["pfs", "2025", "2025-01-01", "non-QP", "12"]
    assert lines[3].split()[:5] == ["gpci", "2025", "-", "-", "10"]


def test_billing_fees_import_of_a_malformed_file_exits_1_with_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fees.db'}"
    result = _invoke("fees", "import-pfs", str(PFS_EXCERPT), "--year", "2024", "--db", url)
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert result.output.startswith(f"error: {PFS_EXCERPT.name}, line 1, column title:")
    assert not (tmp_path / "fees.db").exists()  # the file is checked before the store opens
    wrong = _invoke("fees", "import-gpci", str(PFS_EXCERPT), "--year", "2025", "--db", url)
    assert wrong.exit_code == 1
    assert "Locality Number" in wrong.output


# --------------------------------------------------------------------------- 2026 files

PFS_2026 = REFERENCE / "cms_pprrvu_2026_jul_subset_nodesc.csv"
GPCI_2026 = REFERENCE / "cms_gpci_2026.csv"
RELEASE_2026 = (
    "2026 National Physician Fee Schedule Relative Value File July Release; RELEASED 06/30/2026"
)


def test_the_2026_gpci_re_export_reads_with_the_2025_locality_keys() -> None:
    frame = read_gpci(GPCI_2026, 2026)
    assert frame.height == 109
    alabama = _row(frame, locality="10112-0")
    los_angeles = _row(frame, locality="1182-18")  # MAC 01182 in the file
    assert (alabama["pw_gpci"], alabama["pe_gpci"], alabama["mp_gpci"]) == (
        Decimal("0.988"),  # the work GPCI without the floor; pricing applies it
        Decimal("0.875"),
        Decimal("0.566"),
    )
    assert (los_angeles["mac"], los_angeles["pw_gpci"]) == ("1182", Decimal("1.041"))
    assert _row(frame, state="AK")["locality_name"] == "ALASKA"
    assert "2026 PW GPCI (without 1.0 Floor)" in alabama["release"]
    keys_2025 = set(read_gpci_table(SHIPPED / "gpci_2025.csv")["locality"])
    assert keys_2025 & set(frame["locality"]) >= {"10112-0", "1182-18", "2102-1"}


def test_the_2026_gpci_file_without_a_title_takes_its_year_from_the_column_names() -> None:
    error = _refused(GPCI_2026, lambda: read_gpci(GPCI_2026, 2027))
    assert error.line == 1
    assert "the file is for 2026, not 2027" in str(error)


def test_the_2026_rvu_file_gives_99490_its_2026_values_and_release() -> None:
    frame = read_pfs(PFS_2026, 2026)
    assert frame.height == 76
    row = _row(frame, hcpcs="99490")
    assert (row["work_rvu"], row["nf_pe_rvu"], row["mp_rvu"], row["conv_factor"]) == (
        Decimal("1.00"),
        Decimal("0.91"),
        Decimal("0.07"),
        Decimal("33.4009"),
    )
    assert row["release"] == RELEASE_2026


def test_the_shipped_2026_files_are_rebuilt_byte_for_byte_from_the_repo_copies(
    tmp_path: Path,
) -> None:
    from code_rules.pricing.build_fee_data import write

    write(PFS_2026, GPCI_2026, 2026, out=tmp_path)
    for name in ("pfs_rvu_2026.csv", "gpci_2026.csv"):
        assert (tmp_path / name).read_bytes() == (SHIPPED / name).read_bytes(), name
    built = yaml.safe_load((tmp_path / "sources.yaml").read_text(encoding="utf-8"))["files"]
    shipped = yaml.safe_load((SHIPPED / "sources.yaml").read_text(encoding="utf-8"))["files"]
    for name in ("pfs_rvu_2026.csv", "gpci_2026.csv"):
        assert built[name] == shipped[name], name
    assert shipped["pfs_rvu_2026.csv"]["release"] == RELEASE_2026
    assert (
        shipped["pfs_rvu_2026.csv"]["source_sha256"]
        == hashlib.sha256(PFS_2026.read_bytes()).hexdigest()
    )


def test_billing_fees_import_gpci_takes_the_2026_re_export(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fees.db'}"
    result = _invoke("fees", "import-gpci", str(GPCI_2026), "--year", "2026", "--db", url)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"imported 109 GPCI localities for 2026 from {GPCI_2026}")
