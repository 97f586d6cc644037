"""Import: upload a bundle (a zip of CSV files, or an .xlsx workbook), see the validation
report (file, row, column) before anything is written, then import it in one
transaction, exactly as ``billing import`` does.

The upload is kept in a private temporary folder named by a random token held in the
session; confirming imports that folder's bundle and removes it. A zip is unpacked
only when every member is a plain ``.csv`` file name (no folders, no ``..``): anything
else is refused before a byte is written out.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from flask import Blueprint, render_template, request, session
from werkzeug.datastructures import FileStorage

from billing_engine.errors import BundleInvalid, InputIssue
from billing_engine.io.ingest import read_bundle
from cli.web.common import ADMIN, BILLING, roles, state

bp = Blueprint("imports", __name__)
UPLOADS = Path(tempfile.gettempdir()) / "billing-web-uploads"
TOKEN = "upload_token"
MAX_ZIP_MEMBERS = 64
MAX_UNPACKED_BYTES = 4 * 1024**3


def _folder(token: str) -> Path:
    return UPLOADS / token


def _unpack(upload: FileStorage, target: Path) -> Path:
    """The upload saved under `target` as a bundle path (a folder or an .xlsx file)."""
    name = PurePosixPath(upload.filename or "").name.lower()
    if name.endswith(".xlsx"):
        path = target / "bundle.xlsx"
        upload.save(path)
        return path
    if not name.endswith(".zip"):
        label = name or "upload"
        problem = "not a bundle: upload a .zip of CSV files or an .xlsx workbook"
        raise BundleInvalid(label, [InputIssue(label, None, None, problem)])
    archive_path = target / "upload.zip"
    upload.save(archive_path)
    folder = target / "bundle"
    folder.mkdir()
    try:
        with zipfile.ZipFile(archive_path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            bad = [m.filename for m in members if _unsafe(m.filename)]
            if bad or len(members) > MAX_ZIP_MEMBERS:
                problem = "holds folders or files that are not .csv; zip the CSV files alone"
                raise BundleInvalid(name, [InputIssue(name, None, None, problem)])
            if sum(m.file_size for m in members) > MAX_UNPACKED_BYTES:
                raise BundleInvalid(name, [InputIssue(name, None, None, "is too large")])
            for member in members:
                target_file = folder / member.filename
                with archive.open(member) as source, target_file.open("wb") as out:
                    shutil.copyfileobj(source, out)
    except zipfile.BadZipFile:
        raise BundleInvalid(name, [InputIssue(name, None, None, "is not a zip file")]) from None
    finally:
        archive_path.unlink(missing_ok=True)
    return folder


def _unsafe(member: str) -> bool:
    path = PurePosixPath(member)
    return len(path.parts) != 1 or path.name.startswith(".") or path.suffix.lower() != ".csv"


@bp.route("/import", methods=["GET", "POST"])
@roles(BILLING, ADMIN)
def upload() -> str | tuple[str, int]:
    if request.method == "GET":
        return render_template("import.html", issues=None, counts=None, message=None)
    _discard()
    upload_file = request.files.get("bundle")
    if upload_file is None or not upload_file.filename:
        return render_template("import.html", issues=None, counts=None,
                               message="Choose a file to upload."), 400  # fmt: skip
    token = secrets.token_urlsafe(16)
    target = _folder(token)
    target.mkdir(parents=True, mode=0o700)
    try:
        path = _unpack(upload_file, target)
        bundle = read_bundle(path, stored=state().store.current_rows)
    except BundleInvalid as exc:
        shutil.rmtree(target, ignore_errors=True)
        return render_template("import.html", issues=[str(i) for i in exc.issues],
                               counts=None, message=str(exc)), 422  # fmt: skip
    session[TOKEN] = token
    counts = {name: frame.height for name, frame in bundle.tables.items() if frame.height}
    return render_template("import.html", issues=None, counts=counts, message=None)


@bp.post("/import/confirm")
@roles(BILLING, ADMIN)
def confirm() -> str | tuple[str, int]:
    token = session.pop(TOKEN, None)
    target = _folder(token) if isinstance(token, str) else None
    if target is None or not target.is_dir():
        again = "Nothing to import: upload the bundle again."
        return render_template("import.html", issues=None, counts=None, message=again), 400
    try:
        path = target / "bundle.xlsx" if (target / "bundle.xlsx").exists() else target / "bundle"
        store = state().store
        summary = store.import_bundle(read_bundle(path, stored=store.current_rows))
    except BundleInvalid as exc:
        return render_template("import.html", issues=[str(i) for i in exc.issues],
                               counts=None, message=str(exc)), 422  # fmt: skip
    finally:
        shutil.rmtree(target, ignore_errors=True)
    state().forget()
    message = (
        f"Imported: {summary.inserted:,} inserted, {summary.updated:,} updated, "
        f"{summary.unchanged:,} unchanged."
    )
    return render_template("import.html", issues=None, counts=None, message=message)


def _discard() -> None:
    token = session.pop(TOKEN, None)
    if isinstance(token, str):
        shutil.rmtree(_folder(token), ignore_errors=True)
