"""Moving delivery folders: inbox -> archive (accepted) or quarantine (rejected).

Archive and quarantine copies of person-level deliveries are the one place raw
personal data rests: folders are made readable by the pipeline's user only
(0700 folders, 0600 files). Retention is documented in docs/operations.md.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

from penstat.contract.feeds import REJECTION_JSON, REJECTION_TEXT
from penstat.contract.problems import Problem
from penstat.core.faults import kill_point


def _free_name(parent: Path, name: str) -> Path:
    """parent/name, or parent/name.2, .3 ... if that is taken (never overwrite)."""
    candidate = parent / name
    n = 2
    while candidate.exists() or candidate.is_symlink():
        candidate = parent / f"{name}.{n}"
        n += 1
    return candidate


def restrict(path: Path) -> None:
    """Owner-only permissions on a folder and everything in it."""
    for root, dirs, files in os.walk(path):
        os.chmod(root, 0o700)
        for d in dirs:
            if not os.path.islink(os.path.join(root, d)):
                os.chmod(os.path.join(root, d), 0o700)
        for f in files:
            p = os.path.join(root, f)
            if not os.path.islink(p):
                os.chmod(p, 0o600)


def move_folder(folder: Path, destination_parent: Path, name: str, personal: bool) -> Path:
    destination_parent.mkdir(parents=True, exist_ok=True)
    if personal:
        os.chmod(destination_parent, 0o700)
    target = _free_name(destination_parent, name)
    os.replace(folder, target) if folder.parent.stat().st_dev == destination_parent.stat().st_dev \
        else shutil.move(str(folder), target)
    if personal:
        restrict(target)
    return target


def archive(folder: Path, archive_root: Path, feed: str, personal: bool) -> Path:
    return move_folder(folder, archive_root / feed, folder.name, personal)


def safe_folder_name(name: str) -> str:
    """A folder name that cannot escape its parent (for quarantining hostile names)."""
    cleaned = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)[:100]
    return cleaned.lstrip(".") or "unnamed"


def _reason_files(target_name: str, feed: str, delivery_id: str | None,
                  problems: list[Problem]) -> dict[str, str]:
    reason = {
        "feed": feed,
        "delivery_id": delivery_id,
        "folder": target_name,
        "rejected_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "message": problems[0].one_line(),
        "problems": [p.as_dict() for p in problems],
        "contract": "delivery contract v1 (docs/contract/feeds.md)",
        "what_to_do": "Fix the file(s) and deliver again under a new delivery_id.",
    }
    lines = [f"Delivery {target_name} of feed {feed} was rejected: nothing of it was loaded.", ""]
    lines += [f"- {p.one_line()}" for p in problems]
    lines += ["", reason["what_to_do"]]
    return {REJECTION_JSON: json.dumps(reason, indent=2, ensure_ascii=False) + "\n",
            REJECTION_TEXT: "\n".join(lines) + "\n"}


def _place(folder: Path, name: str, text: str, scratch: Path, mode: int) -> None:
    """Write folder/name via a scratch file and one rename: never through a link."""
    scratch.mkdir(parents=True, exist_ok=True)
    tmp = scratch / f".reason-{uuid.uuid4().hex}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    try:
        os.replace(tmp, folder / name)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def quarantine(folder: Path, quarantine_root: Path, feed: str, problems: list[Problem],
               personal: bool) -> Path:
    """Move the delivery whole to quarantine with the reason inside it.

    The reason files are written into the delivery folder first and the folder
    is then moved with one rename: a crash leaves either the folder in the
    inbox (re-examined by the next run) or a complete quarantine entry, never
    a quarantined delivery without its reason.
    """
    parent = quarantine_root / feed
    name = safe_folder_name(folder.name)
    delivery_id = folder.name if name == folder.name else None
    texts = _reason_files(name, feed, delivery_id, problems)
    mode = 0o600 if personal else 0o644
    parent.mkdir(parents=True, exist_ok=True)
    if personal:
        os.chmod(parent, 0o700)
    if folder.is_symlink():
        # Never write through a link the sender made: quarantine the link itself,
        # inside a real folder that holds the reason.
        holder = _free_name(parent, name)
        scratch = parent / f".reason-{uuid.uuid4().hex}.d"
        scratch.mkdir(mode=0o700)
        for file, text in _reason_files(holder.name, feed, delivery_id, problems).items():
            _place(scratch, file, text, parent, mode)
        os.replace(folder, scratch / name)
        os.replace(scratch, holder)
        if personal:
            restrict(holder)
        return holder
    # The sender's own entries under the reserved names stay untouched (a link or a
    # folder): then the reason is written after the move, under other names.
    written_inside = not any((folder / f).is_symlink() or (folder / f).is_dir()
                             for f in texts)
    if written_inside:
        try:
            for file, text in texts.items():
                _place(folder, file, text, parent, mode)
        except OSError:
            written_inside = False
    kill_point("ingest.quarantining")
    target = move_folder(folder, parent, name, personal)
    if target.name != name or not written_inside:
        texts = _reason_files(target.name, feed, delivery_id, problems)
        for file, text in texts.items():
            path = target / file
            if path.is_symlink() or path.is_dir():
                path = target / f"_PENSTAT{file}"
            _place(target, path.name, text, parent, mode)
    if personal:
        restrict(target)
    return target


def clear_own_files(folder: Path) -> None:
    """Remove reason files an interrupted quarantine left in a delivery folder."""
    for name in (REJECTION_JSON, REJECTION_TEXT):
        path = folder / name
        if path.is_file() and not path.is_symlink():
            path.unlink()


def clean_scratch(quarantine_root: Path, feed: str) -> None:
    """Scratch files of reasons whose writer was killed (one writer at a time)."""
    for tmp in (quarantine_root / feed).glob(".reason-*"):
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
