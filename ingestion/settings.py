"""Where things live and what is configured, from the environment (published.md).

PENSTAT_HOME            root of inbox, quarantine, archive, warehouse, published
PENSTAT_PSEUDONYM_KEY   secret for the keyed hash of person_ref (no default)
PENSTAT_CONFIG          thresholds file (default: config/penstat.toml in the checkout)
"""

from __future__ import annotations

import os
import shutil
import tomllib
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "config" / "penstat.toml"


@dataclass(frozen=True)
class Paths:
    home: Path

    @classmethod
    def from_env(cls) -> Paths:
        home = os.environ.get("PENSTAT_HOME") or str(REPO_ROOT / ".penstat")
        return cls(Path(home).resolve())

    @property
    def inbox(self) -> Path:
        return self.home / "inbox"

    @property
    def quarantine(self) -> Path:
        return self.home / "quarantine"

    @property
    def archive(self) -> Path:
        return self.home / "archive"

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse" / "warehouse.duckdb"

    @property
    def published(self) -> Path:
        return self.home / "published"

    @property
    def current_publication(self) -> Path:
        return self.published / "current"

    @property
    def reports(self) -> Path:
        return self.home / "reports"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    def feed_inbox(self, feed: str) -> Path:
        return self.inbox / feed

    def ensure(self) -> None:
        from ingestion.contract import FEEDS

        for d in (self.quarantine, self.archive, self.warehouse.parent, self.published,
                  self.reports, self.logs):
            d.mkdir(parents=True, exist_ok=True)
        for feed in FEEDS:
            self.feed_inbox(feed).mkdir(parents=True, exist_ok=True)


@contextmanager
def scoped_env(**values: str) -> Iterator[None]:
    """Set environment variables for code that reads them (dbt, GX), then restore them."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def penstat_home_env(home: Path) -> AbstractContextManager[None]:
    """Set PENSTAT_HOME for code that reads it from the environment, then restore it."""
    return scoped_env(PENSTAT_HOME=str(home))


def fresh_scratch_home(paths: Paths, marker: str, made_by: str) -> None:
    """Empty a scratch PENSTAT_HOME (demo, real data) and mark it as such.

    Refuses to wipe a non-empty folder that does not carry the marker, so a
    real PENSTAT_HOME pointed at by mistake is never deleted.
    """
    if paths.home.exists() and any(paths.home.iterdir()):
        if not (paths.home / marker).exists():
            raise SystemExit(f"{paths.home} is not empty and was not made by {made_by}; "
                             "refusing to wipe it. Point PENSTAT_HOME at a new folder.")
        shutil.rmtree(paths.home)
    paths.home.mkdir(parents=True, exist_ok=True)
    (paths.home / marker).write_text(f"created by {made_by}; wiped by its next run\n")
    paths.ensure()


class MissingPseudonymKey(RuntimeError):
    pass


def pseudonym_key() -> bytes:
    """The keyed-hash secret. Refuses to run without one: there is no default."""
    key = os.environ.get("PENSTAT_PSEUDONYM_KEY", "")
    if len(key) < 16:
        raise MissingPseudonymKey(
            "PENSTAT_PSEUDONYM_KEY is not set (or shorter than 16 characters): person-level "
            "deliveries cannot be pseudonymised, so they are not ingested. Set it from your "
            "secret store; it must stay the same across runs for pseudonyms to link."
        )
    return key.encode("utf-8")


@dataclass(frozen=True)
class Config:
    values: dict[str, Any]

    @classmethod
    def load(cls, path: Path | None = None) -> Config:
        path = path or Path(os.environ.get("PENSTAT_CONFIG") or DEFAULT_CONFIG)
        with open(path, "rb") as fh:
            return cls(tomllib.load(fh))

    def get(self, section: str, key: str) -> Any:
        return self.values[section][key]

    @property
    def duckdb_memory_limit(self) -> str:
        """DuckDB's memory_limit for penstat's own connections and dbt's ([resources])."""
        return str(self.values.get("resources", {}).get("duckdb_memory_limit", "2GB"))

    @cached_property
    def dbt_vars(self) -> dict[str, Any]:
        """Thresholds handed to dbt as vars, so SQL never holds the literals."""
        out: dict[str, Any] = {}
        for section in ("classification", "overcrowding", "disclosure", "recidivism"):
            for k, v in self.values.get(section, {}).items():
                out[f"{section}_{k}"] = v
        return out
