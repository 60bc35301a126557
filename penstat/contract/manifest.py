"""manifest.json: parse it and check it against the contract before any data is read."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from penstat.contract.feeds import (
    CONTRACT_VERSIONS,
    DELIVERY_ID_PATTERN,
    FEEDS,
    FILE_NAME_PATTERN,
    MANIFEST,
)
from penstat.contract.problems import DeliveryRejected, Problem

REQUIRED_FIELDS = ("contract_version", "feed", "delivery_id", "sender", "created_at", "files")
DELIMITERS = (",", ";", "\t", "|")
DECIMALS = (".", ",")
# Encodings a sender may declare, and the Python codec that reads each.
ENCODINGS = {
    "utf-8": "utf-8-sig",  # a UTF-8 BOM is allowed
    "utf8": "utf-8-sig",
    "cp1252": "cp1252",
    "windows-1252": "cp1252",
    "latin-1": "latin-1",
    "iso-8859-1": "latin-1",
    "iso-8859-15": "iso8859_15",
}
DATA_EXTENSIONS = (".csv", ".parquet")
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
# A manifest lists a few files; anything near this size is not a manifest. It is
# never read beyond this, so a huge or endless manifest.json costs nothing.
MAX_MANIFEST_BYTES = 1 << 20


@dataclass(frozen=True)
class Dialect:
    delimiter: str = ","
    decimal: str = "."
    encoding: str = "utf-8"

    @property
    def codec(self) -> str:
        return ENCODINGS[self.encoding.lower()]


@dataclass(frozen=True)
class FileEntry:
    name: str
    sha256: str
    rows: int

    @property
    def stem(self) -> str:
        return self.name.rsplit(".", 1)[0]

    @property
    def is_parquet(self) -> bool:
        return self.name.lower().endswith(".parquet")


@dataclass(frozen=True)
class Manifest:
    contract_version: str
    feed: str
    delivery_id: str
    sender: str
    created_at: datetime
    period_start: date | None
    period_end: date | None
    replaces: str | None
    dialect: Dialect
    files: tuple[FileEntry, ...]
    sha256: str  # of manifest.json's bytes

    @property
    def content_sha256(self) -> str:
        """Identity of the data: equal for byte-identical data files (a re-send)."""
        joined = "\n".join(f"{f.name}:{f.sha256}" for f in sorted(self.files, key=lambda f: f.name))
        return hashlib.sha256(joined.encode()).hexdigest()


def _reject(rule: str, message: str, **kw) -> DeliveryRejected:
    return DeliveryRejected([Problem(rule=rule, message=message, file=MANIFEST, **kw)])


def _text(value: object, limit: int = 120) -> str:
    """A manifest value as short text for checks and messages.

    Only scalars are turned into text: str() of a deeply nested list or object
    would recurse (and could be megabytes), so those become a placeholder that
    no check accepts.
    """
    if isinstance(value, str):
        return value[:limit]
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int) and value.bit_length() > 64:
        return "<a number of many digits>"
    if isinstance(value, int | float):
        return str(value)[:limit]
    return f"<a JSON {type(value).__name__}>"


def _parse_date(value: object, field: str) -> date:
    try:
        return date.fromisoformat(_text(value, 40))
    except ValueError:
        raise _reject("manifest_date", f"{field} must be an ISO date YYYY-MM-DD",
                      column=field, value=_text(value, 40)) from None


def _parse_timestamp(value: object) -> datetime:
    text = _text(value, 64)
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=UTC)
        return ts.astimezone(UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):  # OverflowError: an offset beyond year 1 or 9999
        raise _reject("manifest_timestamp", "created_at must be an ISO 8601 timestamp "
                      "between years 1 and 9999 in UTC, e.g. 2026-11-28T02:00:00Z",
                      column="created_at", value=text[:40]) from None


def _parse_dialect(raw: object) -> Dialect:
    if raw is None:
        return Dialect()
    if not isinstance(raw, dict):
        raise _reject("manifest_dialect", "dialect must be an object", column="dialect")
    d = Dialect(
        delimiter=raw.get("delimiter", ","),
        decimal=raw.get("decimal", "."),
        encoding=_text(raw.get("encoding", "utf-8"), 40),
    )
    if d.delimiter not in DELIMITERS:
        raise _reject("manifest_dialect", f"dialect.delimiter must be one of {DELIMITERS!r}",
                      column="dialect.delimiter", value=_text(d.delimiter, 10))
    if d.decimal not in DECIMALS:
        raise _reject("manifest_dialect", "dialect.decimal must be '.' or ','",
                      column="dialect.decimal", value=_text(d.decimal, 10))
    if d.decimal == d.delimiter:
        raise _reject("manifest_dialect", "dialect.decimal and dialect.delimiter must differ",
                      column="dialect")
    if d.encoding.lower() not in ENCODINGS:
        raise _reject("manifest_dialect", f"dialect.encoding must be one of {sorted(ENCODINGS)}",
                      column="dialect.encoding", value=d.encoding)
    return d


def _parse_files(raw: object, feed: str, max_rows: int) -> tuple[FileEntry, ...]:
    if not isinstance(raw, list) or not raw:
        raise _reject("manifest_files", "files must be a non-empty list", column="files")
    spec = FEEDS[feed]
    entries: list[FileEntry] = []
    for i, item in enumerate(raw):
        where = f"files[{i}]"
        if not isinstance(item, dict) or not {"name", "sha256", "rows"} <= item.keys():
            raise _reject("manifest_files", f"{where} needs name, sha256 and rows", column=where)
        name, sha, rows = item["name"], item["sha256"], item["rows"]
        if not isinstance(name, str) or not FILE_NAME_PATTERN.fullmatch(name) or ".." in name:
            raise _reject("file_name", f"{where}.name must be a plain file name matching "
                          f"{FILE_NAME_PATTERN.pattern}", column=f"{where}.name",
                          value=_text(name))
        if not name.lower().endswith(DATA_EXTENSIONS):
            raise _reject("file_name", f"{where}.name must end in .csv or .parquet",
                          column=f"{where}.name", value=name)
        stem = name.rsplit(".", 1)[0]
        if stem not in {f.stem for f in spec.files}:
            expected = sorted(f.stem for f in spec.files)
            raise _reject("unknown_file", f"feed {feed} has no file {stem!r}; expected one of "
                          f"{expected}", column=f"{where}.name", value=name)
        if not isinstance(sha, str) or not SHA256_PATTERN.fullmatch(sha):
            raise _reject("manifest_files", f"{where}.sha256 must be 64 lowercase hex digits",
                          column=f"{where}.sha256")
        if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
            raise _reject("manifest_files", f"{where}.rows must be a whole number >= 0",
                          column=f"{where}.rows", value=_text(rows, 40))
        if rows > max_rows:
            raise _reject("declared_rows_implausible", f"{where}.rows declares {rows} rows, more "
                          f"than the {max_rows} a single file may hold", column=f"{where}.rows")
        entries.append(FileEntry(name=name, sha256=sha, rows=rows))
    stems = [e.stem for e in entries]
    if len(set(stems)) != len(stems):
        raise _reject("manifest_files", "each data file of the feed may be listed once",
                      column="files")
    missing = [s for s in spec.required_files if s not in stems]
    if missing:
        raise _reject("missing_file", f"feed {feed} requires file(s) {missing}", column="files")
    return tuple(entries)


def plain_file_problem(st: os.stat_result, name: str) -> Problem | None:
    """Why the entry `name` (its lstat) is not a file a delivery may hold, or None.

    Only regular files with one name are accepted. A symbolic link or a hard
    link shares bytes with a file outside the delivery (archiving would then
    change that file's mode, and its owner could change what is loaded); a
    FIFO, socket or device has no bytes to check and can block any reader.
    """
    if stat.S_ISLNK(st.st_mode):
        return Problem(rule="symlink", file=name,
                       message="deliveries may not contain symbolic links; send the file itself")
    if stat.S_ISDIR(st.st_mode):
        return Problem(rule="unexpected_folder", file=name,
                       message="deliveries hold files only, no sub-folders")
    if not stat.S_ISREG(st.st_mode):
        return Problem(rule="special_file", file=name,
                       message="deliveries hold regular files only, not a pipe, socket or "
                               "device")
    if st.st_nlink > 1:
        return Problem(rule="hard_link", file=name,
                       message="the file has another name (a hard link) outside the delivery "
                               "folder; send a copy of the file itself")
    return None


def open_delivery_file(folder: Path, name: str) -> int:
    """Open `folder/name` for reading if it is a plain file; return the descriptor.

    The checks run on the opened file itself (never following a link), so an
    entry swapped after a directory listing cannot slip through. Raises
    DeliveryRejected naming the file otherwise.
    """
    path = folder / name
    problem = plain_file_problem(os.lstat(path), name)
    if problem:
        raise DeliveryRejected([problem])
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DeliveryRejected([plain_file_problem(os.lstat(path), name) or Problem(
                rule="symlink", file=name, message="deliveries may not contain symbolic links; "
                                                   "send the file itself")]) from None
        raise
    problem = plain_file_problem(os.fstat(fd), name)
    if problem:
        os.close(fd)
        raise DeliveryRejected([problem])
    return fd


def read_manifest_bytes(folder: Path) -> bytes:
    """manifest.json's bytes, at most MAX_MANIFEST_BYTES, never through a link."""
    fd = open_delivery_file(folder, MANIFEST)
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        raise _reject("manifest_too_large", f"manifest.json is larger than "
                      f"{MAX_MANIFEST_BYTES // 1024} KB; a manifest lists the delivery's files "
                      "and is a few KB")
    return data


def _lone_surrogate_field(raw: object) -> str | None:
    """The first key or text in the parsed JSON holding a lone surrogate (\\udxxx).

    JSON allows such escapes, but they are not text: they cannot be stored or
    written to a reason file as UTF-8. Walked without recursion.
    """
    pending: list[tuple[str, object]] = [("", raw)]
    while pending:
        where, value = pending.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                place = f"{where}.{key}" if where else str(key)
                if _has_surrogate(key):
                    return where or "(a field name)"
                pending.append((place, item))
        elif isinstance(value, list):
            pending.extend((f"{where}[{i}]", item) for i, item in enumerate(value))
        elif isinstance(value, str) and _has_surrogate(value):
            return where
    return None


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def _decode_json(data: bytes) -> object:
    try:
        return json.loads(data.decode("utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise _reject("manifest_json", f"manifest.json is not valid UTF-8 JSON: {exc}") from None
    except UnicodeDecodeError:
        raise _reject("manifest_json", "manifest.json is not valid UTF-8 text") from None
    except RecursionError:
        raise _reject("manifest_json", "manifest.json is nested too deeply to be a "
                      "manifest") from None
    except ValueError:  # e.g. an integer of thousands of digits
        raise _reject("manifest_json", "manifest.json holds a number too long to be "
                      "read") from None


def read_manifest(folder: Path, feed: str, max_rows: int = 100_000_000) -> Manifest:
    """Parse and check `folder/manifest.json`; raise DeliveryRejected naming the field."""
    return parse_manifest(read_manifest_bytes(folder), folder.name, feed, max_rows)


def parse_manifest(data_bytes: bytes, folder_name: str, feed: str,
                   max_rows: int = 100_000_000) -> Manifest:
    """Check manifest.json's bytes against the contract (`folder_name`: where it was)."""
    raw = _decode_json(data_bytes)
    if not isinstance(raw, dict):
        raise _reject("manifest_json", "manifest.json must hold a JSON object")
    bad_text = _lone_surrogate_field(raw)
    if bad_text is not None:
        raise _reject("manifest_text", "manifest.json holds text that is not valid Unicode "
                      "(an escaped lone surrogate such as \\udc80)", column=bad_text[:120])
    for field in REQUIRED_FIELDS:
        if raw.get(field) in (None, ""):
            raise _reject("manifest_missing_field", f"required field {field!r} is missing",
                          column=field)
    version = _text(raw["contract_version"], 20)
    if version not in CONTRACT_VERSIONS:
        raise _reject("contract_version", f"contract_version {version!r} is not supported; "
                      f"this warehouse accepts {list(CONTRACT_VERSIONS)}",
                      column="contract_version", value=version)
    introduced = FEEDS[feed].contract_version
    if int(version) < int(introduced):
        raise _reject("contract_version", f"feed {feed} exists from contract_version "
                      f"{introduced!r} on; declare that version or a later one",
                      column="contract_version", value=version)
    if raw["feed"] != feed:
        raise _reject("manifest_feed", f"manifest says feed {_text(raw['feed'], 100)!r} but the "
                      f"delivery is in the {feed!r} inbox", column="feed",
                      value=_text(raw["feed"], 100))
    delivery_id = _text(raw["delivery_id"], 200)
    if not DELIVERY_ID_PATTERN.fullmatch(delivery_id) or delivery_id != folder_name:
        raise _reject("delivery_id", "delivery_id must match "
                      f"{DELIVERY_ID_PATTERN.pattern} and equal the folder name",
                      column="delivery_id", value=delivery_id[:120])
    period = raw.get("period") or {}
    if not isinstance(period, dict):
        raise _reject("manifest_period", "period must be an object with start and end",
                      column="period")
    start = _parse_date(period["start"], "period.start") if period.get("start") else None
    end = _parse_date(period["end"], "period.end") if period.get("end") else None
    if start and end and end < start:
        raise _reject("manifest_period", "period.end is before period.start", column="period")
    replaces = raw.get("replaces")
    if replaces is not None and (not isinstance(replaces, str)
                                 or not DELIVERY_ID_PATTERN.fullmatch(replaces)):
        raise _reject("replaces", "replaces must be null or an earlier delivery_id",
                      column="replaces", value=_text(replaces))
    if replaces == delivery_id:
        raise _reject("replaces", "a delivery cannot replace itself", column="replaces")
    return Manifest(
        contract_version=version,
        feed=feed,
        delivery_id=delivery_id,
        sender=_text(raw["sender"], 200),
        created_at=_parse_timestamp(raw["created_at"]),
        period_start=start,
        period_end=end,
        replaces=replaces,
        dialect=_parse_dialect(raw.get("dialect")),
        files=_parse_files(raw["files"], feed, max_rows),
        sha256=hashlib.sha256(data_bytes).hexdigest(),
    )
