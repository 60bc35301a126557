"""manifest.json: parse it and check it against the contract before any data is read."""

from __future__ import annotations

import hashlib
import json
import re
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


def _parse_date(value: object, field: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise _reject("manifest_date", f"{field} must be an ISO date YYYY-MM-DD",
                      column=field, value=str(value)) from None


def _parse_timestamp(value: object) -> datetime:
    text = str(value)
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _reject("manifest_timestamp", "created_at must be an ISO 8601 timestamp, "
                      "e.g. 2026-11-28T02:00:00Z", column="created_at", value=text) from None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).replace(tzinfo=None)


def _parse_dialect(raw: object) -> Dialect:
    if raw is None:
        return Dialect()
    if not isinstance(raw, dict):
        raise _reject("manifest_dialect", "dialect must be an object", column="dialect")
    d = Dialect(
        delimiter=raw.get("delimiter", ","),
        decimal=raw.get("decimal", "."),
        encoding=str(raw.get("encoding", "utf-8")),
    )
    if d.delimiter not in DELIMITERS:
        raise _reject("manifest_dialect", f"dialect.delimiter must be one of {DELIMITERS!r}",
                      column="dialect.delimiter", value=str(d.delimiter))
    if d.decimal not in DECIMALS:
        raise _reject("manifest_dialect", "dialect.decimal must be '.' or ','",
                      column="dialect.decimal", value=str(d.decimal))
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
                          value=str(name)[:120])
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
                          column=f"{where}.rows", value=str(rows))
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


def read_manifest(folder: Path, feed: str, max_rows: int = 100_000_000) -> Manifest:
    """Parse and check `folder/manifest.json`; raise DeliveryRejected naming the field."""
    path = folder / MANIFEST
    data_bytes = path.read_bytes()
    try:
        raw = json.loads(data_bytes.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _reject("manifest_json", f"manifest.json is not valid UTF-8 JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise _reject("manifest_json", "manifest.json must hold a JSON object")
    for field in REQUIRED_FIELDS:
        if raw.get(field) in (None, ""):
            raise _reject("manifest_missing_field", f"required field {field!r} is missing",
                          column=field)
    version = str(raw["contract_version"])
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
        raise _reject("manifest_feed", f"manifest says feed {raw['feed']!r} but the delivery "
                      f"is in the {feed!r} inbox", column="feed", value=str(raw["feed"])[:100])
    delivery_id = str(raw["delivery_id"])
    if not DELIVERY_ID_PATTERN.fullmatch(delivery_id) or delivery_id != folder.name:
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
                      column="replaces", value=str(replaces)[:120])
    if replaces == delivery_id:
        raise _reject("replaces", "a delivery cannot replace itself", column="replaces")
    return Manifest(
        contract_version=version,
        feed=feed,
        delivery_id=delivery_id,
        sender=str(raw["sender"])[:200],
        created_at=_parse_timestamp(raw["created_at"]),
        period_start=start,
        period_end=end,
        replaces=replaces,
        dialect=_parse_dialect(raw.get("dialect")),
        files=_parse_files(raw["files"], feed, max_rows),
        sha256=hashlib.sha256(data_bytes).hexdigest(),
    )
