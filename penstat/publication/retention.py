"""Retention of old publications: which version folders to keep, and deleting the rest
without pulling a publication from under a reader.

Settings, `[publication]` of config/penstat.toml (docs/configuration.md):

    keep_last            keep the N most recent publications (0: no limit by count)
    keep_last_of_month   keep the last publication of each calendar month (UTC)

A publication is kept when either rule keeps it; with `keep_last = 0` and
`keep_last_of_month = false` every publication is kept (no retention). Whatever the
settings, these are never deleted: the publication `current` points to, its
`previous_version`, any publication newer than current, and anything in `published/`
that is not a complete publication (a folder whose manifest.json names it).

Deleting is safe against readers: a retired folder is first renamed to a hidden
`.retired-<pid>-*` name in one atomic step (a reader listing versions sees the whole
publication or none of it), then removed. A reader that opened a file keeps reading it
(POSIX keeps an open file until it is closed); a reader that resolved `current` before
the last switch holds the previous publication, which is kept. Only a reader that holds a
version path across two more publications can find it gone. A retention run killed
half-way leaves a `.retired-*` folder, which the next publisher removes (clean_stale).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from penstat.contract.layout import Paths
from penstat.core.config import Config, ConfigError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
RETIRED_PREFIX = ".retired"


@dataclass(frozen=True)
class RetentionPolicy:
    keep_last: int = 0
    keep_last_of_month: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.keep_last, bool) or not isinstance(self.keep_last, int) \
                or self.keep_last < 0:
            raise ConfigError(f"[publication] keep_last = {self.keep_last!r}: must be a whole "
                              "number, 0 (no limit by count) or more")

    @property
    def keeps_all(self) -> bool:
        return self.keep_last == 0 and not self.keep_last_of_month

    @classmethod
    def from_config(cls, config: Config | None = None) -> RetentionPolicy:
        """The `[publication]` settings of the configuration (defaults: keep all)."""
        section = (config or Config.load()).values.get("publication", {})
        return cls(keep_last=section.get("keep_last", 0),
                   keep_last_of_month=bool(section.get("keep_last_of_month", False)))


@dataclass(frozen=True)
class PublishedVersion:
    version: str
    folder: Path
    published_at: str  # ISO 8601 UTC, as in the manifest
    previous_version: str | None

    @property
    def month(self) -> str:
        return self.published_at[:7]

    @property
    def order(self) -> tuple[str, str]:
        return self.published_at, self.version


def published_versions(published: Path) -> list[PublishedVersion]:
    """The complete publications in `published/`, newest first: folders (not links, not
    hidden) whose manifest.json names the folder."""
    out = []
    if not published.is_dir():
        return out
    for folder in published.iterdir():
        if folder.name.startswith(".") or folder.is_symlink() or not folder.is_dir():
            continue
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(manifest, dict) or manifest.get("version") != folder.name:
            continue
        published_at = str(manifest.get("published_at") or folder.name)
        out.append(PublishedVersion(folder.name, folder, published_at,
                                    manifest.get("previous_version")))
    return sorted(out, key=lambda v: v.order, reverse=True)


def versions_to_keep(versions: list[PublishedVersion], current: str | None,
                     policy: RetentionPolicy) -> set[str]:
    """The versions the policy keeps, with current, its previous and anything newer."""
    names = {v.version for v in versions}
    if policy.keeps_all or current is None or current not in names:
        return names  # nothing is deleted without a current publication to protect
    by_name = {v.version: v for v in versions}
    cur = by_name[current]
    keep = {current}
    if cur.previous_version:
        keep.add(cur.previous_version)
    keep |= {v.version for v in versions if v.order > cur.order}
    if policy.keep_last:
        keep |= {v.version for v in versions[:policy.keep_last]}
    if policy.keep_last_of_month:
        last_of: dict[str, str] = {}
        for v in versions:  # newest first: the first seen of a month is its last
            last_of.setdefault(v.month, v.version)
        keep |= set(last_of.values())
    return keep & names


def _current_version(paths: Paths) -> str | None:
    link = paths.current_publication
    if not link.is_symlink():
        return None
    return Path(os.readlink(link)).name


def remove_tree(folder: Path) -> None:
    """Remove a folder whose files and subfolders are read-only."""
    for root, dirs, _ in os.walk(folder):
        for name in dirs:
            path = Path(root) / name
            if not path.is_symlink():
                path.chmod(0o700)
    folder.chmod(0o700)
    shutil.rmtree(folder)


def apply_retention(paths: Paths, policy: RetentionPolicy) -> list[str]:
    """Delete the publications `policy` does not keep; the versions deleted, oldest last."""
    versions = published_versions(paths.published)
    keep = versions_to_keep(versions, _current_version(paths), policy)
    retired = []
    for v in versions:
        if v.version in keep:
            continue
        hidden = paths.published / f"{RETIRED_PREFIX}-{os.getpid()}-{uuid.uuid4().hex}-{v.version}"
        os.rename(v.folder, hidden)  # atomic: gone from the versions a reader lists
        remove_tree(hidden)
        retired.append(v.version)
    if retired:
        log.info("retention ([publication] keep_last=%s, keep_last_of_month=%s): deleted %s",
                 policy.keep_last, policy.keep_last_of_month, ", ".join(retired))
    return retired
