"""The delivery folder itself: plain files only, all listed, each read once.

Three steps, in the order ingestion needs them:

1. `check_entries` (before manifest.json is read): every entry is a regular
   file with one name. Symbolic links, hard links, sub-folders, FIFOs, sockets
   and devices are refused, manifest.json included: a link shares its bytes
   with a file outside the delivery, a FIFO blocks whoever opens it.
2. `check_listing`: every listed file is present, nothing unlisted.
3. `take_checked_copies`: each data file is copied once into a private
   folder while it is hashed, and compared with manifest.json. Everything
   after this step (staging, archiving) uses that copy, so a file rewritten in
   the inbox after its check cannot change what is loaded or archived.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from penstat.contract.feeds import MANIFEST, REJECTION_JSON, REJECTION_TEXT
from penstat.contract.manifest import Manifest, open_delivery_file, plain_file_problem
from penstat.contract.problems import DeliveryRejected, Problem

# Files the warehouse itself writes into a delivery folder (the quarantine reason,
# written just before the folder is moved, so a crash in between is harmless).
OWN_FILES = frozenset({REJECTION_JSON, REJECTION_TEXT})
_CHUNK = 1 << 20


def check_entries(folder: Path) -> None:
    """Every entry of the folder is a plain file (regular, one name); raise otherwise."""
    problems: list[Problem] = []
    with os.scandir(folder) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            problem = plain_file_problem(entry.stat(follow_symlinks=False), entry.name)
            if problem:
                problems.append(problem)
    if problems:
        raise DeliveryRejected(problems)


def check_listing(folder: Path, manifest: Manifest) -> None:
    """Every listed file present; nothing unlisted (besides the manifest and own files)."""
    listed = {f.name for f in manifest.files}
    present = set(os.listdir(folder))
    problems = [Problem(rule="unlisted_file", file=name,
                        message="file is in the delivery folder but not listed in manifest.json")
                for name in sorted(present - listed - OWN_FILES - {MANIFEST})]
    problems += [Problem(rule="missing_file", file=f.name,
                         message="file is listed in manifest.json but not in the delivery folder")
                 for f in manifest.files if f.name not in present]
    if problems:
        raise DeliveryRejected(problems)


def take_checked_copies(folder: Path, manifest: Manifest, copies: Path) -> None:
    """Copy each listed file into `copies` (private), hashing the very bytes copied.

    A copy whose sha256 differs from manifest.json's is a rejection; the copies
    that match are what ingestion stages and archives.
    """
    problems: list[Problem] = []
    for f in manifest.files:
        actual = _copy_hashing(folder, f.name, copies / f.name)
        if actual != f.sha256:
            problems.append(Problem(
                rule="checksum_mismatch", file=f.name,
                message=f"sha256 of the file is {actual}, manifest.json says {f.sha256}: "
                        "the upload is incomplete or corrupted"))
    if problems:
        raise DeliveryRejected(problems)


def keep_private_copy(data: bytes, path: Path) -> None:
    """Write bytes already checked (manifest.json) beside the checked copies."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _copy_hashing(folder: Path, name: str, target: Path) -> str:
    digest = hashlib.sha256()
    source = open_delivery_file(folder, name)
    with os.fdopen(source, "rb") as src:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            while block := src.read(_CHUNK):
                digest.update(block)
                out.write(block)
    return digest.hexdigest()
