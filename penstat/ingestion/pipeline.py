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

Read once: each data file is copied into the session's private scratch
(inside PENSTAT_HOME) while it is hashed, and everything after the checksum
(staging, the load, the archive) uses that copy. A file rewritten in the inbox
after its check changes nothing that is loaded or archived.

No delivery can stop the pipeline: whatever goes wrong while one delivery is
read, checked or staged (a rule it breaks, or any exception: a manifest nested
too deeply, a damaged Parquet page, a bug of ours) quarantines that delivery
with a reason, and the run goes on with the next one. Only a failure of the
machine (disk full, memory exhausted, the warehouse locked by another writer:
penstat.warehouse.session.machine_failure) is not the delivery's fault: it is
left in the inbox and the run stops with IngestionHalted, since every delivery
after it would meet the same failure; the task fails, the operator is told,
and the next run retries. KeyboardInterrupt and SystemExit are never caught.

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
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Literal, NoReturn

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
from penstat.contract.manifest import Manifest, parse_manifest, read_manifest_bytes
from penstat.contract.problems import DeliveryRejected, Problem
from penstat.core.clock import utc_now
from penstat.core.config import Config
from penstat.core.faults import kill_point
from penstat.ingestion import folder_moves as filing
from penstat.ingestion.expectation_problems import gate_problem, redact
from penstat.ingestion.folder_checks import (
    check_entries,
    check_listing,
    keep_private_copy,
    take_checked_copies,
)
from penstat.ingestion.folder_moves import printable
from penstat.ingestion.pseudonymise import register_udf
from penstat.ingestion.typed_tables import q, stage_text, stage_typed
from penstat.ingestion.warehouse_rules import warehouse_rule_problems
from penstat.warehouse.session import WarehouseSession, machine_failure, remove_dead_scratch

log = logging.getLogger(__name__)

Outcome = Literal["loaded", "resend_ignored", "quarantined", "deferred"]
# What is left to do for a delivery once it has been read and checked (the writes).
Action = Callable[[], "DeliveryOutcome"]


class IngestionHalted(RuntimeError):
    """The machine failed (disk full, out of memory, warehouse locked), not a delivery.

    The delivery being processed stays in the inbox (or, if it was committed, is
    completed by the next run); the run stops so that the task fails and is retried.
    """


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
        # any entry named manifest.json counts (a link or a FIFO too): the sender
        # wrote it last, and check_entries refuses what is not a plain file
        if entry.is_symlink() or (entry.is_dir() and os.path.lexists(folder / MANIFEST)):
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


def _resent_delivery(con: duckdb.DuckDBPyConnection, feed: str,
                     manifest: Manifest) -> str | None:
    """The earlier delivery this one re-sends, if any: `replaces` first, content second.

    Without `replaces`, any earlier delivery with the same data files is re-sent.
    With `replaces`, only an earlier delivery that replaced the same delivery with
    the same data (a correction sent twice): a correction whose bytes equal some
    other delivery (C replaces B with A's bytes) is a correction, and is loaded.
    """
    row = con.execute(
        "SELECT delivery_id FROM meta.deliveries WHERE feed = ? AND content_sha256 = ? "
        "AND (CAST(? AS VARCHAR) IS NULL OR replaces = ?) ORDER BY delivery_seq LIMIT 1",
        [feed, manifest.content_sha256, manifest.replaces, manifest.replaces]).fetchone()
    return row[0] if row else None


def unexpected_problem(exc: Exception, personal: bool) -> Problem:
    """The reason for a delivery that made ingestion fail in a way no rule foresaw.

    Names the exception's class; its message only for feeds without personal
    data (a message may quote a value), escaped and cut short.
    """
    detail = "" if personal else f": {printable(str(exc), 200)}"
    return Problem(
        rule="unexpected_error",
        message=f"ingestion could not process this delivery ({type(exc).__name__}{detail}); "
                "it was set aside so that the feed's other deliveries go on. Check the "
                "files against the contract, or ask the warehouse operator")


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

    @property
    def scratch_root(self) -> Path:
        """$PENSTAT_HOME/work: private scratch (checked and transcoded copies, DuckDB's
        spill files), never $TMPDIR."""
        return self.paths.work

    def run(self) -> list[DeliveryOutcome]:
        remove_dead_scratch(self.scratch_root)  # clear copies of a killed run
        folders = pending_folders(self.paths, self.feed)
        if not folders:
            return []
        filing.clean_scratch(self.paths.quarantine, self.feed)
        outcomes = []
        with WarehouseSession(self.paths.warehouse, self.scratch_root) as ws:
            if self.personal:
                register_udf(ws.con)  # refuses to go on without a pseudonym key
            for folder in folders:
                outcome = self.ingest(ws, folder)
                log.info("%s", printable(outcome.summary(), 1000))
                outcomes.append(outcome)
        return outcomes

    # --- one delivery -------------------------------------------------------

    def ingest(self, ws: WarehouseSession, folder: Path) -> DeliveryOutcome:
        """Decide one delivery; whatever it holds, the run goes on (see the module doc).

        Reading and checking (`_examine`) writes nothing, so any failure there is
        the delivery's and quarantines it. The writes that follow (`act`) concern a
        delivery that passed every check: a failure there stops the run with the
        delivery in the inbox, and the next run completes it from the ledger.
        """
        with tempfile.TemporaryDirectory(prefix="delivery-", dir=ws.scratch) as private:
            copies = Path(private)
            try:
                act = self._examine(ws, folder, copies)
            except DeliveryRejected as rejected:
                return self._quarantine(folder, rejected.problems)
            except Exception as exc:  # any failure here is this delivery's
                return self._set_aside(folder, exc)
            try:
                return act()
            except IngestionHalted:
                raise
            except Exception as exc:  # writing a checked delivery: never its fault
                self._halt(folder, exc, machine_failure(exc) or
                           "recording or archiving it failed")

    def _set_aside(self, folder: Path, exc: Exception) -> DeliveryOutcome:
        """Quarantine a delivery that made ingestion fail, unless the machine failed."""
        why = machine_failure(exc)
        if why:
            self._halt(folder, exc, why)
        problem = unexpected_problem(exc, self.personal)
        # the frames say where it failed; the message is in the reason (redacted)
        log.error("unexpected %s on %s/%s, quarantining it:\n%s", type(exc).__name__,
                  self.feed, printable(folder.name), "".join(traceback.format_tb(
                      exc.__traceback__)))
        return self._quarantine(folder, [problem])

    def _halt(self, folder: Path, exc: BaseException, why: str) -> NoReturn:
        message = (f"{self.feed}/{printable(folder.name)} is left in the inbox: {why} "
                   f"({type(exc).__name__}). This is not the delivery's fault; the run stops "
                   "and the next run retries it")
        log.error("%s", message)
        raise IngestionHalted(message) from exc

    def _quarantine(self, folder: Path, problems: list[Problem]) -> DeliveryOutcome:
        problems = redact(problems, self.feed)
        try:
            target = filing.quarantine(folder, self.paths.quarantine, self.feed, problems,
                                       self.personal)
        except Exception as exc:  # the move failed: leave it pending
            self._halt(folder, exc, machine_failure(exc) or
                       "moving it to quarantine failed")
        log.warning("quarantined %s/%s: %s", self.feed, target.name,
                    printable(problems[0].one_line(), 1000))
        return DeliveryOutcome(self.feed, target.name, "quarantined", problems=tuple(problems),
                               location=str(target))

    def _archive(self, folder: Path, copies: Path, manifest: Manifest) -> Path:
        """Archive the delivery with the bytes that were checked (and loaded)."""
        filing.clear_own_files(folder)  # reasons of an interrupted quarantine, if any
        filing.put_back_checked(folder, copies, [*(f.name for f in manifest.files), MANIFEST])
        return filing.archive(folder, self.paths.archive, self.feed, self.personal)

    def _examine(self, ws: WarehouseSession, folder: Path, copies: Path) -> Action:
        """Read and check the delivery (nothing written); return what is left to do."""
        if folder.is_symlink() or not DELIVERY_ID_PATTERN.fullmatch(folder.name):
            raise DeliveryRejected([Problem(
                rule="delivery_id", column="delivery_id",
                message=f"the delivery folder must be a real folder named like "
                        f"{DELIVERY_ID_PATTERN.pattern}")])
        check_entries(folder)
        manifest_bytes = read_manifest_bytes(folder)
        manifest = parse_manifest(
            manifest_bytes, folder.name, self.feed,
            max_rows=int(self.config.get("validation", "max_rows_per_file")))
        con = ws.read()
        seen = _ledger_row(con, self.feed, manifest.delivery_id)
        if seen is not None and seen[0] != manifest.content_sha256:
            raise DeliveryRejected([Problem(
                rule="delivery_id_reused", file=MANIFEST, column="delivery_id",
                value=manifest.delivery_id,
                message="this delivery_id was already loaded with different data; "
                        "deliver a correction under a new delivery_id with replaces")])
        check_listing(folder, manifest)
        take_checked_copies(folder, manifest, copies)
        keep_private_copy(manifest_bytes, copies / MANIFEST)
        if seen is not None:
            if not (self.paths.archive / self.feed / manifest.delivery_id).exists():
                return partial(self._complete, folder, copies, manifest, int(seen[1]))
            return partial(self._resend, ws, folder, copies, manifest, manifest.delivery_id)
        earlier = _resent_delivery(con, self.feed, manifest)
        if earlier is not None:
            return partial(self._resend, ws, folder, copies, manifest, earlier)
        if manifest.replaces and _ledger_row(con, self.feed, manifest.replaces) is None:
            raise DeliveryRejected([Problem(
                rule="replaces_unknown", file=MANIFEST, column="replaces", value=manifest.replaces,
                message=f"replaces names a delivery this warehouse never loaded for feed "
                        f"{self.feed}")])
        if (self.feed != "facility_register" and FEEDS[self.feed].requires_register
                and not _register_loaded(con)):
            log.info("%s/%s waits for the first facility register delivery",
                     self.feed, folder.name)
            return partial(DeliveryOutcome, self.feed, folder.name, "deferred")
        tables = self._stage_and_check(con, copies, manifest)
        kill_point("ingest.checked")
        return partial(self._load_and_archive, ws, folder, copies, manifest, tables)

    def _load_and_archive(self, ws: WarehouseSession, folder: Path, copies: Path,
                          manifest: Manifest, tables: dict[str, tuple]) -> DeliveryOutcome:
        committed = False
        try:
            with ws.write() as con:
                rows = self._load(con, manifest, tables)
                committed = True
        except Exception as exc:
            if committed:  # in the ledger: the next run completes the archive move
                self._halt(folder, exc, machine_failure(exc) or "closing the warehouse failed")
            return self._set_aside(folder, exc)  # rolled back: nothing of it was written
        self._drop_staged(ws, tables)
        kill_point("ingest.committed")
        target = self._archive(folder, copies, manifest)
        return DeliveryOutcome(self.feed, manifest.delivery_id, "loaded", rows=rows,
                               location=str(target))

    def _complete(self, folder: Path, copies: Path, manifest: Manifest,
                  rows: int) -> DeliveryOutcome:
        """The ledger holds this very delivery but it is still in the inbox: a run was
        killed after its commit. Finish the move; report it loaded, so it gets built."""
        log.warning("%s/%s is already in the ledger with the same content but was not "
                    "archived (an interrupted run): archiving it now, not loading it again",
                    self.feed, manifest.delivery_id)
        target = self._archive(folder, copies, manifest)
        return DeliveryOutcome(self.feed, manifest.delivery_id, "loaded", rows=rows,
                               location=str(target))

    def _resend(self, ws: WarehouseSession, folder: Path, copies: Path, manifest: Manifest,
                earlier: str) -> DeliveryOutcome:
        with ws.write() as con:
            con.execute("INSERT INTO meta.receipts VALUES (?, ?, 'resend_ignored', NULL, ?, ?)",
                        [self.feed, manifest.delivery_id,
                         f"byte-identical to delivery {earlier}", utc_now(whole_seconds=True)])
        target = self._archive(folder, copies, manifest)
        return DeliveryOutcome(self.feed, manifest.delivery_id, "resend_ignored",
                               location=str(target))

    def _stage_and_check(self, con, copies: Path, manifest: Manifest) -> dict[str, tuple]:
        """Stage every file from its checked copy in `copies` and run every check."""
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
        # a transcoded (UTF-8) copy of a file lives beside the checked copies, in the
        # session's private scratch, while it is read; it is removed right after
        with tempfile.TemporaryDirectory(prefix="decoded-", dir=copies) as work:
            for entry in manifest.files:
                spec = FEEDS[self.feed].file(entry.stem)
                try:
                    staged = stage_text(con, copies, entry, spec, manifest.dialect, Path(work),
                                        manifest.contract_version)
                    table = stage_typed(con, staged, manifest.dialect.decimal)
                except DeliveryRejected as rejected:
                    problems += rejected.problems
                    continue
                for frame in batches(con, f"SELECT * FROM {table}", spec.key):
                    suite = delivery_suite_name(self.feed, spec.stem,
                                                manifest.contract_version)
                    gate = run_suite(suite, frame,
                                     context=context, data_docs=False)
                    results.append(gate)
                    problems += [gate_problem(f, entry.name, self.feed, spec, con, table,
                                              manifest.contract_version)
                                 for f in gate.failures]
                problems += warehouse_rule_problems(con, self.feed, spec.stem, table,
                                                    entry.name, manifest, self.today, factor)
                tables[entry.stem] = (entry, spec, table)
        build_data_docs(context, results)  # once per delivery, not once per file
        if problems:
            raise DeliveryRejected(problems)
        return tables

    def _load(self, con: duckdb.DuckDBPyConnection, manifest: Manifest,
              tables: dict[str, tuple]) -> int:
        """Raw rows, ledger row and receipt in one transaction; rolled back on any error."""
        loaded_at = utc_now(whole_seconds=True)
        total = sum(entry.rows for entry, _, _ in tables.values())
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
        return total

    @staticmethod
    def _drop_staged(ws: WarehouseSession, tables: dict[str, tuple]) -> None:
        for _, _, table in tables.values():
            ws.con.execute(f"DROP TABLE IF EXISTS {table}")


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
