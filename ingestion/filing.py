"""Moving delivery folders: inbox -> archive (accepted) or quarantine (rejected).

Archive and quarantine copies of person-level deliveries are the one place raw
personal data rests: folders are made readable by the pipeline's user only
(0700 folders, 0600 files). Retention is documented in docs/operations.md.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from ingestion.problems import Problem

REJECTION_JSON = "_REJECTED.json"
REJECTION_TEXT = "_REJECTED.txt"


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


def quarantine(folder: Path, quarantine_root: Path, feed: str, problems: list[Problem],
               personal: bool) -> Path:
    """Move the delivery whole to quarantine and write the reason beside it."""
    target = move_folder(folder, quarantine_root / feed, safe_folder_name(folder.name), personal)
    reason = {
        "feed": feed,
        "delivery_id": folder.name if safe_folder_name(folder.name) == folder.name else None,
        "folder": target.name,
        "rejected_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "message": problems[0].one_line(),
        "problems": [p.as_dict() for p in problems],
        "contract": "delivery contract v1 (docs/contract/feeds.md)",
        "what_to_do": "Fix the file(s) and deliver again under a new delivery_id.",
    }
    (target / REJECTION_JSON).write_text(json.dumps(reason, indent=2, ensure_ascii=False) + "\n")
    lines = [f"Delivery {target.name} of feed {feed} was rejected: nothing of it was loaded.", ""]
    lines += [f"- {p.one_line()}" for p in problems]
    lines += ["", reason["what_to_do"]]
    (target / REJECTION_TEXT).write_text("\n".join(lines) + "\n")
    if personal:
        restrict(target)
    return target
