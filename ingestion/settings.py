"""Where things live and what is configured, from the environment (published.md).

PENSTAT_HOME            root of inbox, quarantine, archive, warehouse, published
PENSTAT_PSEUDONYM_KEY   secret for the keyed hash of person_ref (no default)
PENSTAT_CONFIG          thresholds file (default: config/penstat.toml in the checkout)
"""

from __future__ import annotations

import os
import tomllib
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

    @cached_property
    def dbt_vars(self) -> dict[str, Any]:
        """Thresholds handed to dbt as vars, so SQL never holds the literals."""
        out: dict[str, Any] = {}
        for section in ("classification", "overcrowding", "disclosure", "recidivism"):
            for k, v in self.values.get(section, {}).items():
                out[f"{section}_{k}"] = v
        return out
