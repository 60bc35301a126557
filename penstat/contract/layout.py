"""The PENSTAT_HOME layout: where deliveries arrive and publications appear.

This layout is an interface other tools build on (README, "Where things are"):

    inbox/<feed>/<delivery_id>/       deliveries arrive (+ inbox/<feed>/_READY doorbell)
    quarantine/<feed>/<delivery_id>/  rejected deliveries, byte-identical, + _REJECTED.*
    archive/<feed>/<delivery_id>/     accepted deliveries, byte-identical
    warehouse/warehouse.duckdb        the working warehouse
    published/current -> <version>    the current publication
    reports/, logs/                   reports (gate, data docs, dbt docs) and logs
    lineage/                          OpenLineage events: publications/<version>.json,
                                      dbt/events.jsonl, airflow/events.jsonl
    work/                             ingestion's private scratch (owner-only; checked and
                                      transcoded copies, DuckDB spill files), never $TMPDIR

PENSTAT_HOME defaults to `.penstat/` in the checkout.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from penstat.contract.feeds import FEEDS
from penstat.core.locations import REPO_ROOT

HOME_ENV = "PENSTAT_HOME"


@dataclass(frozen=True)
class Paths:
    home: Path

    @classmethod
    def from_env(cls) -> Paths:
        home = os.environ.get(HOME_ENV) or str(REPO_ROOT / ".penstat")
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

    @property
    def lineage(self) -> Path:
        return self.home / "lineage"

    @property
    def work(self) -> Path:
        return self.home / "work"

    def feed_inbox(self, feed: str) -> Path:
        return self.inbox / feed

    def ensure(self) -> None:
        """Create every folder of the layout, one inbox per feed of the contract."""
        for d in (self.quarantine, self.archive, self.warehouse.parent, self.published,
                  self.reports, self.logs):
            d.mkdir(parents=True, exist_ok=True)
        for feed in FEEDS:
            self.feed_inbox(feed).mkdir(parents=True, exist_ok=True)


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
