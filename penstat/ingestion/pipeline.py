"""Ingest a feed: every complete, not yet processed delivery in its inbox, one by one.

The ledger (meta.deliveries) is the truth about what was processed; the
`_READY` doorbell only says "look". For each delivery folder with a manifest:

  manifest -> folder and checksums -> types -> GX delivery suite -> warehouse rules
  -> one transaction (raw rows + ledger row) -> move to archive

Any broken rule moves the folder whole to quarantine with a reason file, and
nothing of it reaches the warehouse: every check runs against a read-only
attachment of the warehouse, which is attached read-write only for the load
(penstat.warehouse.session.WarehouseSession). A delivery of a feed that needs the
facility register waits in the inbox until a register has been loaded.

Crash safety: the load is one transaction (raw rows + ledger row + receipt),
and the folder leaves the inbox only after it committed. A run killed between
the commit and the move finds the delivery in the ledger with the same content
and no archive copy: it completes the move and reports the delivery as loaded
(so the build is triggered), never loading it twice.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

import duckdb

from penstat.contract.feeds import (
    DELIVERY_ID_PATTERN,
    DOORBELL,
    FEEDS,
    MANIFEST,
    raw_table_name,
    stored_column_name,
)
from penstat.contract.layout import Paths
from penstat.contract.manifest import Manifest, read_manifest
from penstat.contract.problems import DeliveryRejected, Problem
from penstat.core.clock import utc_now
from penstat.core.config import Config
from penstat.core.faults import kill_point
from penstat.ingestion import folder_moves as filing
from penstat.ingestion.expectation_problems import gate_problem, redact
from penstat.ingestion.folder_checks import check_folder
from penstat.ingestion.pseudonymise import register_udf
from penstat.ingestion.typed_tables import q, stage_text, stage_typed
from penstat.ingestion.warehouse_rules import warehouse_rule_problems
from penstat.warehouse.session import WarehouseSession

log = logging.getLogger(__name__)

Outcome = Literal["loaded", "resend_ignored", "quarantined", "deferred"]


@dataclass(frozen=True)
class DeliveryOutcome:
    feed: str
    delivery_id: str
    outcome: Outcome
    rows: int = 0
    problems: tuple[Problem, ...] = field(default=())
    location: str | None = None

    def summary(self) -> str:
        text = f"{self.feed}/{self.delivery_id}: {self.outcome}"
        if self.outcome == "loaded":
            text += f" ({self.rows} rows)"
        if self.problems:
            text += f" - {self.problems[0].one_line()}"
        return text


def pending_folders(paths: Paths, feed: str) -> list[Path]:
    """Delivery folders with a manifest, oldest manifest first (then by name)."""
    inbox = paths.feed_inbox(feed)
    if not inbox.is_dir():
        return []
    found = []
    for entry in os.scandir(inbox):
        if entry.name.startswith(("_", ".")):
            continue  # the doorbell, or a sender's temporary file
        folder = Path(entry.path)
        if entry.is_symlink() or (entry.is_dir() and (folder / MANIFEST).is_file()):
            found.append(folder)
    return sorted(found, key=lambda f: (_mtime(f / MANIFEST), f.name))


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except OSError:
        return 0.0


def _ledger_row(con: duckdb.DuckDBPyConnection, feed: str, delivery_id: str):
    return con.execute(
        "SELECT content_sha256, rows_loaded FROM meta.deliveries "
        "WHERE feed = ? AND delivery_id = ?", [feed, delivery_id]).fetchone()


def _same_content(con: duckdb.DuckDBPyConnection, feed: str, content: str) -> str | None:
    row = con.execute(
        "SELECT delivery_id FROM meta.deliveries WHERE feed = ? AND content_sha256 = ? "
        "ORDER BY delivery_seq LIMIT 1", [feed, content]).fetchone()
    return row[0] if row else None


def _register_loaded(con: duckdb.DuckDBPyConnection) -> bool:
    return con.execute(
        f"SELECT count(*) FROM {raw_table_name('facility_register', 'facilities')}"
    ).fetchone()[0] > 0


@dataclass
class FeedIngestor:
    feed: str
    paths: Paths
    config: Config
    today: date

    @property
    def personal(self) -> bool:
        return FEEDS[self.feed].personal_data

    def run(self) -> list[DeliveryOutcome]:
        folders = pending_folders(self.paths, self.feed)
        if not folders:
            return []
        filing.clean_scratch(self.paths.quarantine, self.feed)
        outcomes = []
        with WarehouseSession(self.paths.warehouse) as ws:
            if self.personal:
                register_udf(ws.con)  # refuses to go on without a pseudonym key
            for folder in folders:
                outcome = self.ingest(ws, folder)
                log.info("%s", outcome.summary())
                outcomes.append(outcome)
        return outcomes

    # --- one delivery -------------------------------------------------------

    def ingest(self, ws: WarehouseSession, folder: Path) -> DeliveryOutcome:
        try:
            return self._ingest(ws, folder)
        except DeliveryRejected as rejected:
            return self._quarantine(folder, rejected.problems)

    def _quarantine(self, folder: Path, problems: list[Problem]) -> DeliveryOutcome:
        problems = redact(problems, self.feed)
        target = filing.quarantine(folder, self.paths.quarantine, self.feed, problems,
                                   self.personal)
        log.warning("quarantined %s/%s: %s", self.feed, target.name, problems[0].one_line())
        return DeliveryOutcome(self.feed, target.name, "quarantined", problems=tuple(problems),
                               location=str(target))

    def _archive(self, folder: Path) -> Path:
        filing.clear_own_files(folder)  # reasons of an interrupted quarantine, if any
        return filing.archive(folder, self.paths.archive, self.feed, self.personal)

    def _ingest(self, ws: WarehouseSession, folder: Path) -> DeliveryOutcome:
        if folder.is_symlink() or not DELIVERY_ID_PATTERN.fullmatch(folder.name):
            raise DeliveryRejected([Problem(
                rule="delivery_id", column="delivery_id",
                message=f"the delivery folder must be a real folder named like "
                        f"{DELIVERY_ID_PATTERN.pattern}")])
        manifest = read_manifest(folder, self.feed,
                                 max_rows=int(self.config.get("validation", "max_rows_per_file")))
        con = ws.read()
        seen = _ledger_row(con, self.feed, manifest.delivery_id)
        if seen is not None and seen[0] != manifest.content_sha256:
            raise DeliveryRejected([Problem(
                rule="delivery_id_reused", file=MANIFEST, column="delivery_id",
                value=manifest.delivery_id,
                message="this delivery_id was already loaded with different data; "
                        "deliver a correction under a new delivery_id with replaces")])
        check_folder(folder, manifest)
        if seen is not None:
            if not (self.paths.archive / self.feed / manifest.delivery_id).exists():
                return self._complete(folder, manifest, int(seen[1]))
            return self._resend(ws, folder, manifest, manifest.delivery_id)
        earlier = _same_content(con, self.feed, manifest.content_sha256)
        if earlier is not None:
            return self._resend(ws, folder, manifest, earlier)
        if manifest.replaces and _ledger_row(con, self.feed, manifest.replaces) is None:
            raise DeliveryRejected([Problem(
                rule="replaces_unknown", file=MANIFEST, column="replaces", value=manifest.replaces,
                message=f"replaces names a delivery this warehouse never loaded for feed "
                        f"{self.feed}")])
        if (self.feed != "facility_register" and FEEDS[self.feed].requires_register
                and not _register_loaded(con)):
            log.info("%s/%s waits for the first facility register delivery",
                     self.feed, folder.name)
            return DeliveryOutcome(self.feed, folder.name, "deferred")
        tables = self._stage_and_check(con, folder, manifest, ws.scratch)
        kill_point("ingest.checked")
        rows = self._load(ws, manifest, tables)
        kill_point("ingest.committed")
        target = self._archive(folder)
        return DeliveryOutcome(self.feed, manifest.delivery_id, "loaded", rows=rows,
                               location=str(target))

    def _complete(self, folder: Path, manifest: Manifest, rows: int) -> DeliveryOutcome:
        """The ledger holds this very delivery but it is still in the inbox: a run was
        killed after its commit. Finish the move; report it loaded, so it gets built."""
        log.warning("%s/%s is already in the ledger with the same content but was not "
                    "archived (an interrupted run): archiving it now, not loading it again",
                    self.feed, manifest.delivery_id)
        target = self._archive(folder)
        return DeliveryOutcome(self.feed, manifest.delivery_id, "loaded", rows=rows,
                               location=str(target))

    def _resend(self, ws: WarehouseSession, folder: Path, manifest: Manifest,
                earlier: str) -> DeliveryOutcome:
        with ws.write() as con:
            con.execute("INSERT INTO meta.receipts VALUES (?, ?, 'resend_ignored', NULL, ?, ?)",
                        [self.feed, manifest.delivery_id,
                         f"byte-identical to delivery {earlier}", utc_now(whole_seconds=True)])
        target = self._archive(folder)
        return DeliveryOutcome(self.feed, manifest.delivery_id, "resend_ignored",
                               location=str(target))

    def _stage_and_check(self, con, folder: Path, manifest: Manifest,
                         scratch: Path) -> dict[str, tuple]:
        # Great Expectations takes about 6 s to import: only a delivery that reaches its
        # suite pays it (the DAG files import this module when they are parsed)
        from penstat.validation.gx_context import build_data_docs, get_context
        from penstat.validation.runner import batches, run_suite
        from penstat.validation.suites import delivery_suite_name

        context = get_context()
        results = []
        problems: list[Problem] = []
        tables: dict[str, tuple] = {}
        factor = float(self.config.get("validation", "max_population_over_operational"))
        # a transcoded (UTF-8) copy of a file lives in the session's private scratch
        # folder while it is read, and is removed right after (or by the next run)
        with tempfile.TemporaryDirectory(prefix="stage-", dir=scratch) as work:
            for entry in manifest.files:
                spec = FEEDS[self.feed].file(entry.stem)
                try:
                    staged = stage_text(con, folder, entry, spec, manifest.dialect, Path(work))
                    table = stage_typed(con, staged, manifest.dialect.decimal)
                except DeliveryRejected as rejected:
                    problems += rejected.problems
                    continue
                for frame in batches(con, f"SELECT * FROM {table}", spec.key):
                    gate = run_suite(delivery_suite_name(self.feed, spec.stem), frame,
                                     context=context, data_docs=False)
                    results.append(gate)
                    problems += [gate_problem(f, entry.name, self.feed, spec, con, table)
                                 for f in gate.failures]
                problems += warehouse_rule_problems(con, self.feed, spec.stem, table,
                                                    entry.name, manifest, self.today, factor)
                tables[entry.stem] = (entry, spec, table)
        build_data_docs(context, results)  # once per delivery, not once per file
        if problems:
            raise DeliveryRejected(problems)
        return tables

    def _load(self, ws: WarehouseSession, manifest: Manifest,
              tables: dict[str, tuple]) -> int:
        loaded_at = utc_now(whole_seconds=True)
        total = sum(entry.rows for entry, _, _ in tables.values())
        with ws.write() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                seq = con.execute("SELECT nextval('meta.delivery_seq')").fetchone()[0]
                for entry, spec, table in tables.values():
                    cols = [stored_column_name(c) for c in spec.columns]
                    select = ", ".join(q(c.name) for c in spec.columns)
                    con.execute(
                        f"INSERT INTO {raw_table_name(self.feed, spec.stem)} "
                        f"({', '.join(q(c) for c in cols)}, _delivery_id, _delivery_seq, _file, "
                        f"_row, _loaded_at) SELECT {select}, ?, ?, ?, _row, ? FROM {table} "
                        "ORDER BY _row",
                        [manifest.delivery_id, seq, entry.name, loaded_at])
                con.execute(
                    "INSERT INTO meta.deliveries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [seq, self.feed, manifest.delivery_id, manifest.sender, manifest.created_at,
                     manifest.period_start, manifest.period_end, manifest.replaces,
                     manifest.sha256, manifest.content_sha256, total, loaded_at])
                con.execute("INSERT INTO meta.receipts VALUES (?, ?, 'loaded', NULL, ?, ?)",
                            [self.feed, manifest.delivery_id, f"{total} rows", loaded_at])
                kill_point("ingest.loading")
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        for _, _, table in tables.values():
            ws.con.execute(f"DROP TABLE IF EXISTS {table}")
        return total


def ingest_feed(feed: str, paths: Paths | None = None, config: Config | None = None,
                today: date | None = None) -> list[DeliveryOutcome]:
    """Process every pending delivery of `feed`; return what happened to each."""
    if feed not in FEEDS:
        raise ValueError(f"unknown feed {feed!r}; feeds are {sorted(FEEDS)}")
    paths = paths or Paths.from_env()
    paths.ensure()
    ingestor = FeedIngestor(feed=feed, paths=paths, config=config or Config.load(),
                            today=today or datetime.now(UTC).date())
    outcomes = ingestor.run()
    if feed == "facility_register" and any(o.outcome == "loaded" for o in outcomes):
        ring_waiting_feeds(paths)
    return outcomes


def ring_waiting_feeds(paths: Paths) -> list[str]:
    """Ring the doorbell of every feed with deliveries waiting in its inbox."""
    rung = []
    for feed in FEEDS:
        if feed != "facility_register" and pending_folders(paths, feed):
            (paths.feed_inbox(feed) / DOORBELL).touch()
            rung.append(feed)
    return rung
