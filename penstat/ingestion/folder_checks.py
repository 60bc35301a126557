"""The delivery folder itself: only listed regular files, with the declared checksums."""

from __future__ import annotations

import os
from pathlib import Path

from penstat.contract.feeds import MANIFEST, REJECTION_JSON, REJECTION_TEXT
from penstat.contract.manifest import Manifest
from penstat.contract.problems import DeliveryRejected, Problem
from penstat.core.files import sha256_file

# Files the warehouse itself writes into a delivery folder (the quarantine reason,
# written just before the folder is moved, so a crash in between is harmless).
OWN_FILES = frozenset({REJECTION_JSON, REJECTION_TEXT})


def check_folder(folder: Path, manifest: Manifest) -> None:
    """Every listed file present, regular and intact; nothing unlisted; no links."""
    problems: list[Problem] = []
    listed = {f.name for f in manifest.files}
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.is_symlink():
            problems.append(Problem(
                rule="symlink", file=entry.name,
                message="deliveries may not contain symbolic links; send the file itself"))
        elif entry.is_dir():
            problems.append(Problem(
                rule="unexpected_folder", file=entry.name,
                message="deliveries hold files only, no sub-folders"))
        elif entry.name != MANIFEST and entry.name not in listed and entry.name not in OWN_FILES:
            problems.append(Problem(
                rule="unlisted_file", file=entry.name,
                message="file is in the delivery folder but not listed in manifest.json"))
    if problems:
        raise DeliveryRejected(problems)
    for f in manifest.files:
        path = folder / f.name
        if not path.is_file():
            problems.append(Problem(
                rule="missing_file", file=f.name,
                message="file is listed in manifest.json but not in the delivery folder"))
            continue
        actual = sha256_file(path)
        if actual != f.sha256:
            problems.append(Problem(
                rule="checksum_mismatch", file=f.name,
                message=f"sha256 of the file is {actual}, manifest.json says {f.sha256}: "
                        "the upload is incomplete or corrupted"))
    if problems:
        raise DeliveryRejected(problems)
