"""Writing files that cannot mislead: no formulas, no writes through links, no mixes.

Formula injection (OWASP "CSV Injection"; OWASP ASVS 5.0 requirement 1.2.10)
    Ids, payer names and notes come from EHR exports. A spreadsheet opening a CSV file
    or a workbook takes a text cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or
    a carriage return (ASVS adds NUL) for a formula. Every such *text* cell the project
    writes gets OWASP's leading apostrophe: ``=HYPERLINK(...)`` is written
    ``'=HYPERLINK(...)``. Only text is touched: a money column is a Decimal column and
    a negative amount in it (``-12.50``) stays a number. ``neutralize_frame`` does it
    for a frame (every CSV writer goes through ``csv_bytes``); ``safe_cell_value`` and
    ``set_cell`` do it for openpyxl cells.

Regular files only
    ``write_new_file`` creates a file with ``O_CREAT | O_EXCL | O_NOFOLLOW``: it never
    writes through a symbolic link nor into a file it did not create. ``replace_file``
    writes a new file beside the old one and renames it over the name, so a symbolic
    link of that name is replaced and its target left alone.

Output folders (``publish_folder``)
    A folder of outputs is written whole or not at all. The files are written into a
    fresh hidden folder beside the target (``.<name>.partial-<pid>-<random>``, same
    parent, so a rename is atomic), with a ``manifest.json`` (what the caller states,
    plus every file's rows, bytes and SHA-256) written last; then the new folder takes
    the target's place. On Linux both are swapped in one atomic ``renameat2``
    (``RENAME_EXCHANGE``); elsewhere the previous folder is renamed aside
    (``.<name>.replaced-<pid>-<random>``), the new one renamed in, the previous one
    removed. A run killed at any point leaves the previous folder whole (at the target,
    or, killed between the two renames of the fallback, in the hidden ``replaced``
    folder), never a mix; hidden folders left by a killed run are removed by the next
    run once their process is gone. The target folder may only hold what the command
    writes (it is replaced as a whole), and must not be a symbolic link.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import shutil
import stat
import sys
import tempfile
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from billing_engine.errors import ConfigError

# OWASP CSV Injection: = + - @ tab CR; OWASP ASVS 5.0 1.2.10 also names NUL.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\x00")
_TRIGGER_PATTERN = r"^[=+\-@\t\r\x00]"
NEUTRALIZER = "'"
MANIFEST = "manifest.json"
_TEXT_TYPES = (pl.String, pl.Categorical, pl.Enum)
_NO_LINKS = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NO_LINKS
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
SHOWN_NAMES = 5  # foreign names listed in a refusal


# --------------------------------------------------------------------------- formulas


def neutralize_text(value: str) -> str:
    """`value` with a leading apostrophe when it begins like a formula, else unchanged."""
    return NEUTRALIZER + value if value.startswith(FORMULA_TRIGGERS) else value


def neutralize_expr(column: str) -> pl.Expr:
    """A text column with every cell that begins like a formula prefixed by ``'``."""
    text = pl.col(column).cast(pl.String)
    return (
        pl.when(text.str.contains(_TRIGGER_PATTERN))
        .then(pl.concat_str(pl.lit(NEUTRALIZER), text))
        .otherwise(text)
        .alias(column)
    )


def neutralize_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Every text column neutralized; numbers, dates and booleans stay as they are."""
    text = [name for name, dtype in frame.schema.items() if isinstance(dtype, _TEXT_TYPES)]
    return frame.with_columns(neutralize_expr(name) for name in text) if text else frame


def safe_cell_value(value: object) -> object:
    """The value to put in a workbook cell: text neutralized, anything else as is."""
    return neutralize_text(value) if isinstance(value, str) else value


class Cell(Protocol):
    """What ``set_cell`` needs of an openpyxl cell."""

    value: Any


def set_cell(cell: Cell, value: object) -> None:
    """Write `value` to an openpyxl cell; text that begins like a formula stays text."""
    cell.value = safe_cell_value(value)


def csv_bytes(
    frame: pl.DataFrame,
    *,
    null_value: str = "",
    date_format: str | None = None,
    time_format: str | None = None,
) -> bytes:
    """`frame` as UTF-8 CSV with its text cells neutralized (the one CSV writer)."""
    text = neutralize_frame(frame).write_csv(
        None, null_value=null_value, date_format=date_format, time_format=time_format
    )
    return text.encode("utf-8")


def database_load_csv(frame: pl.DataFrame) -> bytes:
    """`frame` as header-less UTF-8 CSV for a database's bulk load (PostgreSQL ``COPY``),
    never a file anyone opens: the values go in exactly as they are, unneutralized (a
    database stores a cell, it does not evaluate it; what leaves the store for a person
    goes through ``csv_bytes``). Null is an empty field, empty text a quoted ``""``."""
    return frame.write_csv(None, include_header=False).encode("utf-8")


# --------------------------------------------------------------------------- regular files


def write_new_file(path: Path, data: bytes) -> None:
    """Create `path` (it must not exist, not even as a link), write `data`, sync it."""
    fd = os.open(path, _NEW_FILE, 0o666)
    try:
        with open(fd, "wb", closefd=True) as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        Path(path).unlink(missing_ok=True)
        raise


def replace_file(path: Path, data: bytes) -> None:
    """Write `data` as a new regular file renamed over `path` (a link there is replaced,
    never followed); a folder of that name is refused."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        raise ConfigError(f"{path} is a folder; a file of that name cannot be written")
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    write_new_file(partial, data)
    try:
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def write_csv(
    frame: pl.DataFrame,
    path: Path,
    *,
    null_value: str = "",
    date_format: str | None = None,
    time_format: str | None = None,
) -> None:
    """`frame` as a CSV file at `path`, text neutralized, written as ``replace_file`` does."""
    data = csv_bytes(frame, null_value=null_value, date_format=date_format, time_format=time_format)
    replace_file(path, data)


def claim_folder(folder: Path, marker: str, command: str, *, force: bool = False) -> None:
    """Make `folder` one `command` may write into, and mark it with the file `marker`.

    A missing or empty folder is created and marked; a folder holding `marker` (a
    regular file) was made by `command` and is used again. Any other non-empty folder
    is refused unless `force`, since `command` overwrites and deletes files in it. A
    symbolic link is always refused.
    """
    folder = Path(folder)
    if folder.is_symlink():
        raise ConfigError(f"{folder} is a symbolic link; give the folder itself")
    if folder.exists():
        if not folder.is_dir():
            raise ConfigError(f"{folder} exists and is not a folder")
        marked = _is_regular_file(folder / marker)
        if not marked and any(folder.iterdir()) and not force:
            raise ConfigError(
                f"{folder} is not empty and was not written by {command}; {command} "
                "overwrites and deletes files in its folder. Give an empty or new folder, "
                "or --force to write into this one anyway"
            )
    folder.mkdir(parents=True, exist_ok=True)
    replace_file(folder / marker, f"written by {command}; its files are replaced\n".encode())


def _is_regular_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


# --------------------------------------------------------------------------- output folders


@dataclass(frozen=True)
class OutputFile:
    """One file of an output folder: its name, its bytes and its rows (per table)."""

    name: str
    data: bytes
    rows: int | Mapping[str, int]


def csv_output(name: str, frame: pl.DataFrame) -> OutputFile:
    """`frame` as the CSV file `name` of an output folder (text neutralized)."""
    return OutputFile(name, csv_bytes(frame), frame.height)


def manifest_entries(files: Sequence[OutputFile]) -> dict[str, dict[str, Any]]:
    """Rows, bytes and SHA-256 of each file, by name."""
    return {
        f.name: {
            "rows": dict(f.rows) if isinstance(f.rows, Mapping) else f.rows,
            "bytes": len(f.data),
            "sha256": hashlib.sha256(f.data).hexdigest(),
        }
        for f in files
    }


def publish_folder(
    out_dir: Path,
    files: Sequence[OutputFile],
    manifest: Mapping[str, Any],
    *,
    replaceable: Collection[str],
) -> list[Path]:
    """Write `files` and a ``manifest.json`` as the folder `out_dir`, all or nothing.

    `manifest` is what the caller records about the run (run id, month, ...); the
    ``files`` entry (rows, bytes, SHA-256 of every file) is added here. An existing
    `out_dir` is replaced as a whole, so it may only hold files named in `replaceable`
    (or ``manifest.json``): anything else, a subfolder, or `out_dir` being a symbolic
    link is refused before anything is written. Returns the paths of `files`.
    """
    target = Path(os.path.abspath(out_dir))  # the last component is never followed
    if target.parent == target:
        raise ConfigError(f"{out_dir} cannot be an output folder")
    names = [f.name for f in files]
    if len(set(names)) != len(names) or MANIFEST in names:
        raise ValueError(f"output file names must be distinct and not {MANIFEST}: {names}")
    check_output_folder(target, {*replaceable, *names})
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(parent, target.name)
    staging = Path(tempfile.mkdtemp(prefix=_hidden(target.name, "partial"), dir=parent))
    try:
        for item in files:
            write_new_file(staging / item.name, item.data)
        document = {**manifest, "files": manifest_entries(files)}
        text = json.dumps(document, indent=2, default=str) + "\n"
        write_new_file(staging / MANIFEST, text.encode("utf-8"))
        os.chmod(staging, 0o777 & ~_umask())
        _fsync_dir(staging)
        _swap_in(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # the new folder, or the replaced one
    _fsync_dir(parent)
    return [target / name for name in names]


def check_output_folder(out_dir: Path, replaceable: Collection[str]) -> None:
    """Refuse (``ConfigError``) an `out_dir` that ``publish_folder`` would refuse.

    Commands call it before their work, so that a refusal comes before a long run.
    """
    target = Path(os.path.abspath(out_dir))
    allowed = {*replaceable, MANIFEST}
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISLNK(mode):
        raise ConfigError(
            f"the output folder {target} is a symbolic link; give the real folder "
            "(outputs are never written through a link)"
        )
    if not stat.S_ISDIR(mode):
        raise ConfigError(f"{target} exists and is not a folder")
    with os.scandir(target) as entries:
        foreign = sorted(
            e.name for e in entries if e.name not in allowed or e.is_dir(follow_symlinks=False)
        )
    if foreign:
        shown = ", ".join(foreign[:SHOWN_NAMES])
        more = f" and {len(foreign) - SHOWN_NAMES} more" if len(foreign) > SHOWN_NAMES else ""
        raise ConfigError(
            f"the output folder {target} holds {shown}{more}, which this command does not "
            "write; the folder is replaced as a whole, so give an empty or new folder"
        )


def _hidden(name: str, kind: str) -> str:
    return f".{name}.{kind}-{os.getpid()}-"


def remove_stale_partials(parent: Path, name: str) -> list[Path]:
    """Remove the hidden folders beside `name` left by runs that were killed.

    Only ``.<name>.partial-<pid>-*`` / ``.<name>.replaced-<pid>-*`` folders whose process
    is no longer running are removed; returns them.
    """
    removed = []
    prefixes = tuple(f".{name}.{kind}-" for kind in ("partial", "replaced"))
    with os.scandir(parent) as entries:
        candidates = [e for e in entries if e.name.startswith(prefixes)]
    for entry in candidates:
        pid = entry.name.split("-", 1)[1].split("-", 1)[0]
        if pid.isdigit() and entry.is_dir(follow_symlinks=False) and not _alive(int(pid)):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _swap_in(staging: Path, target: Path) -> None:
    """Put `staging` at `target`; afterwards `staging` holds the previous folder (if any)."""
    if not os.path.lexists(target):
        try:
            os.rename(staging, target)
            return
        except OSError as exc:  # another run put its folder there meanwhile: replace it
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
    if exchange(staging, target):
        return
    aside = target.with_name(f"{_hidden(target.name, 'replaced')}{uuid.uuid4().hex[:8]}")
    os.rename(target, aside)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(aside, target)
        raise
    os.rename(aside, staging)  # removed with the staging folder


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2`` with ``RENAME_EXCHANGE``).

    False when the system or the file system cannot; the paths are then unchanged.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    path, fd = ctypes.c_char_p, ctypes.c_int
    renameat2.argtypes = [fd, path, fd, path, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    done = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if done == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
