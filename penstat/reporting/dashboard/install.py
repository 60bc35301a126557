"""Put a dashboard into a publication: `published/<version>/dashboard/`.

The dashboard is built after the publication (by the `penstat_dashboard` DAG on the
`penstat.published` asset, and by `make demo` / `make real` through the same task body),
from the publication's `published.duckdb` alone, so a failing dashboard never stops a
publication and the dashboard never holds the warehouse's one writer slot.

A publication folder is read-only (penstat.publication.publish). The dashboard is
written into a hidden sibling `published/.dashboard-<pid>-*`, made read-only, and moved
into the version folder with one rename: the version folder is made writable by its
owner for that rename only. No published data file is opened for writing, the
publication's manifest and checksums stay as they are, and a reader sees either no
dashboard or a complete one. `dashboard/dashboard.json` lists the dashboard's own files
with their sha256 and the publication it was built from. A build killed half-way
leaves a hidden sibling (removed by the next build) and at worst a version folder
still writable by its owner (made read-only again by the next build).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import stat
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from penstat.core.files import sha256_file
from penstat.core.processes import pid_alive
from penstat.reporting.dashboard.extract import Publication
from penstat.reporting.dashboard.render import render

log = logging.getLogger(__name__)

DASHBOARD_DIR = "dashboard"
INDEX = "index.html"
STAMP = "dashboard.json"
DRAFT_PREFIX = ".dashboard-"
FILE_MODE = 0o444  # as penstat.publication.publish.PUBLISHED_FILE_MODE
FOLDER_MODE = 0o555  # as penstat.publication.publish.PUBLISHED_FOLDER_MODE


@dataclass(frozen=True)
class Dashboard:
    version: str
    folder: Path
    built: bool  # False: the publication already had a complete dashboard
    seconds: float = 0.0


def renderer_fingerprint() -> str:
    """sha256 over the dashboard package's source: which code drew a dashboard."""
    digest = hashlib.sha256()
    for source in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()


def write_dashboard(publication: Path, out: Path) -> Path:
    """Render the dashboard of `publication` into the (new or empty) folder `out`."""
    out.mkdir(parents=True, exist_ok=True)
    with Publication(publication, temp_directory=out / ".tmp") as pub:
        meta = pub.meta()
        page = render(pub)
    shutil.rmtree(out / ".tmp", ignore_errors=True)
    (out / INDEX).write_text(page, encoding="utf-8")
    stamp = {
        "version": str(meta.get("version") or publication.name),
        "built_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "renderer_sha256": renderer_fingerprint(),
        "files": {INDEX: sha256_file(out / INDEX)},
    }
    (out / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
    return out / INDEX


def complete(folder: Path) -> bool:
    """A dashboard folder whose files all match the checksums of its dashboard.json."""
    try:
        stamp = json.loads((folder / STAMP).read_text())
        return bool(stamp["files"]) and all(
            sha256_file(folder / name) == digest for name, digest in stamp["files"].items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def clean_stale(published: Path) -> list[str]:
    """Remove the hidden drafts of dashboard builds whose process died."""
    removed = []
    for entry in published.glob(f"{DRAFT_PREFIX}*"):
        pid = entry.name[len(DRAFT_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and pid_alive(int(pid)):
            continue
        _remove(entry)
        removed.append(entry.name)
    if removed:
        log.warning("removed leftovers of an interrupted dashboard build: %s", removed)
    return removed


def _remove(folder: Path) -> None:
    if folder.is_symlink() or folder.is_file():
        folder.unlink()
        return
    for root, dirs, _files in os.walk(folder):
        os.chmod(root, 0o700)
        for d in dirs:
            os.chmod(Path(root) / d, 0o700)
    shutil.rmtree(folder, ignore_errors=True)


def _read_only(folder: Path) -> None:
    for path in folder.rglob("*"):
        path.chmod(FOLDER_MODE if path.is_dir() else FILE_MODE)
    folder.chmod(FOLDER_MODE)


def install_dashboard(publication: Path, rebuild: bool = False) -> Dashboard:
    """Build the dashboard of `publication` (a version folder, or `current`) into
    `<version>/dashboard/`, unless it has a complete one already (or `rebuild`)."""
    folder = Path(publication).resolve()
    if not (folder / "published.duckdb").is_file():
        raise FileNotFoundError(f"{folder} is not a publication (no published.duckdb)")
    target = folder / DASHBOARD_DIR
    clean_stale(folder.parent)
    if stat.S_IMODE(folder.stat().st_mode) != FOLDER_MODE:  # a swap that was interrupted
        folder.chmod(FOLDER_MODE)
    if complete(target) and not rebuild:
        return Dashboard(folder.name, target, built=False)
    started = time.monotonic()
    draft = folder.parent / f"{DRAFT_PREFIX}{os.getpid()}-{uuid.uuid4().hex}"
    old = folder.parent / f"{DRAFT_PREFIX}{os.getpid()}-{uuid.uuid4().hex}-replaced"
    try:
        write_dashboard(folder, draft)
        _read_only(draft)
        draft.chmod(0o755)  # renaming a folder to another parent rewrites its '..' entry
        folder.chmod(FOLDER_MODE | stat.S_IWUSR)
        try:
            if target.exists() or target.is_symlink():
                if target.is_dir() and not target.is_symlink():
                    target.chmod(0o755)
                os.rename(target, old)
            os.rename(draft, target)
        finally:
            folder.chmod(FOLDER_MODE)
        target.chmod(FOLDER_MODE)
    finally:
        for leftover in (draft, old):
            if leftover.exists() or leftover.is_symlink():
                _remove(leftover)
    seconds = time.monotonic() - started
    log.info("dashboard of publication %s built in %.1f s: %s", folder.name, seconds,
             target / INDEX)
    return Dashboard(folder.name, target, built=True, seconds=seconds)
