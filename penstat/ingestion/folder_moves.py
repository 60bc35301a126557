"""Moving delivery folders: inbox -> archive (accepted) or quarantine (rejected).

Archive and quarantine copies of person-level deliveries are the one place raw
personal data rests: folders are made readable by the pipeline's user only
(0700 folders, 0600 files). Retention is documented in docs/operations.md.

A second copy of a delivery id (a re-send under the same id, a second
rejection) is filed as `<id>+2`, `<id>+3` ...: `+` is not allowed in a
delivery id (DELIVERY_ID_PATTERN), so such a name can never be another
delivery's own name.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import shutil
import stat
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from penstat.contract.feeds import REJECTION_JSON, REJECTION_TEXT
from penstat.contract.problems import Problem, log_safe
from penstat.core.faults import kill_point

COPY_MARK = "+"  # not allowed in a delivery id: `<id>+2` is never a delivery's own name


def _free_name(parent: Path, name: str) -> Path:
    """parent/name, or parent/name+2, +3 ... if that is taken (never overwrite)."""
    candidate = parent / name
    n = 2
    while candidate.exists() or candidate.is_symlink():
        candidate = parent / f"{name}{COPY_MARK}{n}"
        n += 1
    return candidate


def printable(text: str, limit: int = 300) -> str:
    """`text` made safe for a reason file or a log line: escaped and short.

    Lone surrogates (from undecodable file names or JSON escapes) cannot be
    written as UTF-8 and control characters could forge lines: both are shown
    as backslash escapes. Long text is cut (a hostile value can be megabytes).
    """
    text = log_safe(text[: limit * 2])
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _printable_problem(problem: Problem) -> Problem:
    fields = {f.name: getattr(problem, f.name) for f in dataclasses.fields(problem)}
    return dataclasses.replace(problem, **{
        name: printable(value, 1000 if name == "message" else 200)
        for name, value in fields.items() if isinstance(value, str)})


def _chmod_own_entry(path: str, mode: int) -> None:
    """chmod a folder or regular file of ours; never a link, a device or a file that
    has a second name (a hard link): that would change a file outside PENSTAT_HOME."""
    st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode) or (stat.S_ISREG(st.st_mode) and st.st_nlink == 1):
        _chmod_same_inode(path, st, mode)


def _chmod_same_inode(path: str, seen: os.stat_result, mode: int) -> None:
    """chmod through a descriptor of the very inode that was checked (no swap in between)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    if stat.S_ISDIR(seen.st_mode):
        flags |= os.O_DIRECTORY
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT):
            return  # replaced by a link or removed since: not ours to change
        raise
    try:
        now = os.fstat(fd)
        if (now.st_ino, now.st_dev) == (seen.st_ino, seen.st_dev) and (
                stat.S_ISDIR(now.st_mode) or now.st_nlink == 1):
            os.fchmod(fd, mode)
    finally:
        os.close(fd)


def restrict(path: Path) -> None:
    """Owner-only permissions on a folder and everything in it (links left alone)."""
    for root, dirs, files in os.walk(path):
        _chmod_own_entry(root, 0o700)
        for d in dirs:
            _chmod_own_entry(os.path.join(root, d), 0o700)
        for f in files:
            _chmod_own_entry(os.path.join(root, f), 0o600)


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


def put_back_checked(folder: Path, copies: Path, names: Iterable[str]) -> None:
    """Replace each named file of the delivery by its checked copy.

    What was checked and loaded is what gets archived, even if the sender
    rewrote a file in the inbox after its check. os.replace swaps the folder
    entry itself: it never writes through a link the sender put there.
    """
    for name in names:
        try:
            os.replace(copies / name, folder / name)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            staged = folder / f".{name}.{uuid.uuid4().hex}.checked"  # inbox on another disk
            shutil.copyfile(copies / name, staged, follow_symlinks=False)
            os.replace(staged, folder / name)


def safe_folder_name(name: str) -> str:
    """A folder name that cannot escape its parent (for quarantining hostile names)."""
    cleaned = "".join(ch if (ch.isascii() and ch.isalnum()) or ch in "._-" else "_"
                      for ch in name)[:100]
    return cleaned.lstrip(".") or "unnamed"


def _reason_files(target_name: str, feed: str, delivery_id: str | None,
                  problems: list[Problem]) -> dict[str, str]:
    problems = [_printable_problem(p) for p in problems]
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
    with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as fh:
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
