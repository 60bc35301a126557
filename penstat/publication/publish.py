"""Publish the marts: stage a new publication, gate it, switch `current` atomically.

A publication is a folder `published/<version>/` holding `published.duckdb`
(schemas `marts` and `meta`, with comments; written in a storage format DuckDB 1.1 and
later read: penstat.publication.metadata), one Parquet file per mart and `manifest.json`.
It is built under a hidden name (`.draft-<pid>-*`), validated there with the mart suites (so what is
validated is byte for byte what is published), made read-only, renamed into
place, and only then does `published/current` (a relative symlink) switch to
it with one rename. A failed gate publishes nothing: the draft is
removed, the reasons are written to `reports/gate/`, and `current` stays.

Crash safety: a publisher killed at any point leaves `current` on a complete
publication. Its hidden draft or temporary symlink is removed by the
next run (their names carry the pid of the process that made them), and a
complete version folder it renamed into place but never switched to is reused
by the next run rather than published twice. The marts are copied only from
a finished dbt build (meta.builds), and the manifest lists exactly the
deliveries that build saw.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import stat
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from penstat.contract.layout import Paths
from penstat.contract.published import (
    INTERFACE_VERSION,
    MART_COLUMNS,
    MART_KEYS,
    WAREHOUSE_MART_COLUMNS,
)
from penstat.core.database import connect
from penstat.core.faults import kill_point
from penstat.core.files import sha256_file
from penstat.core.processes import pid_alive
from penstat.publication.disclosure import ledger as disclosure_ledger
from penstat.publication.disclosure import step as disclosure
from penstat.publication.metadata import (
    STORAGE_VERSION,
    comment_problems,
    write_comments,
    write_meta,
)
from penstat.publication.retention import (
    RETIRED_PREFIX,
    RetentionPolicy,
    apply_retention,
    remove_tree,
)
from penstat.publication.revisions import REVISIONS_FILE, Revisions, write_revisions
from penstat.publication.risk_report import write_risk_model
from penstat.publication.sdmx import SDMX_FILE, write_sdmx
from penstat.validation.gx_context import build_data_docs, get_context, suite_file
from penstat.validation.runner import batches, run_suite
from penstat.validation.suites import mart_suite_name

log = logging.getLogger(__name__)

PUBLISHED_DB = "published.duckdb"
MANIFEST = "manifest.json"


class MartsIncomplete(RuntimeError):
    """The last dbt build did not finish: the marts may be a mix of two builds."""


class GateFailed(RuntimeError):
    """The mart suites failed: nothing was published."""

    def __init__(self, failures: list[str], report: Path):
        self.failures = failures
        self.report = report
        super().__init__(
            f"publication gate failed ({len(failures)} expectation(s)); current publication "
            f"left in place; report: {report}\n" + "\n".join(f"  - {f}" for f in failures))


@dataclass(frozen=True)
class Publication:
    version: str
    folder: Path
    marts: dict[str, dict]
    deliveries: list[str]
    unchanged: bool = False
    suites: list[str] = field(default_factory=list)
    revisions: dict[str, dict[str, int]] = field(default_factory=dict)
    retired: list[str] = field(default_factory=list)


def _built_up_to(con: duckdb.DuckDBPyConnection) -> int | None:
    """The ledger position of the last dbt build; None if no build was recorded."""
    try:
        row = con.execute("SELECT max_delivery_seq, finished_at FROM wh.meta.builds "
                          "ORDER BY build_id DESC LIMIT 1").fetchone()
    except duckdb.CatalogException:  # a warehouse from before meta.builds
        return None
    if row is None:
        return None
    if row[1] is None:
        raise MartsIncomplete("the last dbt build did not finish (killed or still running): "
                              "its marts are not published; run the build again")
    return int(row[0])


def _attach_published_db(draft: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory connection (with the memory limit) on which the draft's
    published.duckdb is attached as `pub`, in storage version STORAGE_VERSION, and used."""
    con = connect(temp_directory=draft / f"{PUBLISHED_DB}.tmp")
    try:
        con.execute(f"ATTACH '{draft / PUBLISHED_DB}' AS pub "
                    f"(STORAGE_VERSION '{STORAGE_VERSION}')")
        con.execute("USE pub")
    except BaseException:
        con.close()
        raise
    return con


def _write_draft(paths: Paths, draft: Path, previous: Path | None,
                 previous_version: str | None
                 ) -> tuple[dict[str, dict], list[str], disclosure.Report, Revisions]:
    """Copy the marts out of the warehouse (read-only) into the draft, run disclosure
    control over all of them at once (penstat.publication.disclosure), compare the
    published values with the `previous` publication (its folder; None for a first) and
    flag the revised ones (penstat.publication.revisions), then write their Parquet files."""
    draft.mkdir(parents=True)
    con = _attach_published_db(draft)
    try:
        con.execute(f"ATTACH '{paths.warehouse}' AS wh (READ_ONLY)")
        built = _built_up_to(con)
        con.execute("CREATE SCHEMA marts")
        marts: dict[str, dict] = {}
        for mart, columns in WAREHOUSE_MART_COLUMNS.items():
            order = ", ".join(f'"{k}"' for k in MART_KEYS[mart])
            cols = ", ".join(f'"{c}"' for c in columns)
            con.execute(f"CREATE TABLE marts.{mart} AS SELECT {cols} FROM wh.marts.{mart} "
                        f"ORDER BY {order}")
        report = disclosure.run(con, paths, catalog="pub")
        revisions = write_revisions(con, "pub", previous, previous_version,
                                    draft / REVISIONS_FILE)
        for mart in MART_COLUMNS:
            order = ", ".join(f'"{k}"' for k in MART_KEYS[mart])
            parquet = draft / f"{mart}.parquet"
            con.execute(f"COPY (SELECT * FROM marts.{mart} ORDER BY {order}) TO '{parquet}' "
                        "(FORMAT parquet, COMPRESSION zstd)")
            rows = con.execute(f"SELECT count(*) FROM marts.{mart}").fetchone()[0]
            marts[mart] = {"rows": int(rows), "sha256": sha256_file(parquet)}
        write_comments(con, "pub")
        deliveries = [f"{feed}/{did}" for feed, did in con.execute(
            "SELECT feed, delivery_id FROM wh.meta.deliveries WHERE delivery_seq <= ? "
            "ORDER BY delivery_seq", [built if built is not None else 2**62]).fetchall()]
        con.execute("DETACH wh")
    finally:
        con.close()
    return marts, deliveries, report, revisions


def _write_meta(draft: Path, manifest: dict) -> None:
    """The schema `meta` of the draft's published.duckdb (from the manifest); warn if the
    marts do not explain themselves (comment_problems)."""
    con = _attach_published_db(draft)
    try:
        write_meta(con, "pub", manifest)
        problems = comment_problems(con, "pub")
    finally:
        con.close()
    for problem in problems:
        log.warning("published.duckdb: %s", problem)


def _write_exports(paths: Paths, draft: Path, now: datetime) -> dict:
    """The SDMX-CSV national series and the risk model's fit statistics."""
    extras: dict = {}
    con = connect(paths.warehouse, read_only=True)
    try:
        con.execute(f"ATTACH '{draft / PUBLISHED_DB}' AS pub (READ_ONLY)")
        sdmx = write_sdmx(con, draft, now, published_catalog="pub")
        con.execute("DETACH pub")
        risk = write_risk_model(con, draft)
    finally:
        con.close()
    if sdmx is not None:
        extras["sdmx"] = {"file": SDMX_FILE, **sdmx, "sha256": sha256_file(draft / SDMX_FILE)}
    if risk is not None:
        extras["risk_model"] = risk
    return extras


def suite_fingerprints() -> dict[str, str]:
    """sha256 of each mart suite's committed definition (a changed suite re-validates all)."""
    return {mart: sha256_file(suite_file(mart_suite_name(mart))) for mart in MART_COLUMNS}


def _changed_rows(con: duckdb.DuckDBPyConnection, mart: str, staged: Path,
                  current: Path | None) -> str:
    """A query for the staged rows the gate must see: every row of each key that is new,
    changed or duplicated (a key with several rows is always seen, so a suite's
    uniqueness rule still holds). Rows equal to the current publication's row of their
    key were validated when it was published. The keys are computed once, into a
    temporary table, by one join of the two files on the key (keys compared with IS NOT
    DISTINCT FROM, every other column too): exact, and a third of the time of an
    EXCEPT ALL over whole rows. Without a current file, with other columns or column
    types than it, or when no key is new or changed (rows were only removed), the staged
    rows are judged whole."""
    new = f"read_parquet('{staged}')"
    whole = f"SELECT * FROM {new}"
    if current is None:
        return whole
    old = f"read_parquet('{current}')"
    described = [r[:2] for r in con.execute(f"DESCRIBE SELECT * FROM {new}").fetchall()]
    if described != [r[:2] for r in con.execute(f"DESCRIBE SELECT * FROM {old}").fetchall()]:
        return whole  # other columns or types: a comparison would cast, or fail
    columns = [name for name, _ in described]
    key_columns = MART_KEYS[mart]
    keys = ", ".join(f'"{k}"' for k in key_columns)
    on = " AND ".join(f'n."{k}" IS NOT DISTINCT FROM o."{k}"' for k in key_columns)
    differs = " OR ".join(f'n."{c}" IS DISTINCT FROM o."{c}"' for c in columns
                          if c not in key_columns) or "false"
    table = f"changed_{mart}"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {table} AS
        SELECT {", ".join(f'n."{k}"' for k in key_columns)}
        FROM {new} n LEFT JOIN (SELECT *, true AS _penstat_in_current FROM {old}) o ON {on}
        WHERE o._penstat_in_current IS NULL OR {differs}
        UNION
        SELECT {keys} FROM {new} GROUP BY ALL HAVING count(*) > 1""")
    if con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0:
        return whole  # rows only removed: judge what is left, whole
    on_table = " AND ".join(f'n."{k}" IS NOT DISTINCT FROM c."{k}"' for k in key_columns)
    return f"SELECT n.* FROM {new} n SEMI JOIN {table} c ON {on_table}"


def _gate(paths: Paths, draft: Path, current: dict | None, marts: dict[str, dict],
          fingerprints: dict[str, str]) -> tuple[list[str], list[str], dict[str, int]]:
    """Run the mart suites on what changed; (suites run, failures, rows validated per mart).

    A mart whose Parquet file is byte-identical to the current publication's, under
    an unchanged suite, is not validated again; in any other mart the suite sees the
    rows of every key that is new or changed (all rows for a first publication or a
    changed suite), in batches of at most penstat.validation.runner.BATCH_ROWS rows.
    Data Docs are built once, for all the suites run.
    """
    suites, failures, validated = [], [], {}
    previous = (current or {}).get("marts", {})
    previous_suites = (current or {}).get("validation", {}).get("suite_sha256", {})
    context = get_context()
    results = []
    con = connect()
    try:
        for mart in MART_COLUMNS:
            same_suite = previous_suites.get(mart) == fingerprints[mart]
            if same_suite and previous.get(mart) == marts[mart]:
                validated[mart] = 0
                continue
            old = paths.current_publication / f"{mart}.parquet"
            sql = _changed_rows(con, mart, draft / f"{mart}.parquet",
                                old if same_suite and old.is_file() else None)
            validated[mart] = 0
            for frame in batches(con, sql, MART_KEYS[mart]):
                result = run_suite(mart_suite_name(mart), frame, context=context,
                                   index_columns=MART_KEYS[mart], data_docs=False)
                results.append(result)
                validated[mart] += len(frame)
                failures += [f.describe() for f in result.failures]
            suites.append(mart_suite_name(mart))
    finally:
        con.close()
    build_data_docs(context, results)
    return suites, failures, validated


def current_manifest(paths: Paths) -> dict | None:
    manifest = paths.current_publication / MANIFEST
    if not manifest.is_file():
        return None
    return json.loads(manifest.read_text())


# A publication is for everyone who may read PENSTAT_HOME: world-readable and nobody's
# to change, whatever the umask of the process that wrote it (aggregates only, after
# disclosure control; docs/kpis.md).
PUBLISHED_FILE_MODE = 0o444
PUBLISHED_FOLDER_MODE = 0o555
PUBLICATIONS_FOLDER_MODE = 0o755  # published/: readers list the versions and follow current


def _make_read_only(folder: Path) -> None:
    """Files 0444 and folders 0555, all the way down; links are not followed (a draft
    holds none) and anything that is neither a file nor a folder is refused."""
    for root, dirs, files in os.walk(folder, topdown=False):
        for name in [*files, *dirs]:
            path = Path(root) / name
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode) or not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise RuntimeError(f"unexpected entry in a publication draft: {path}")
            path.chmod(PUBLISHED_FOLDER_MODE if stat.S_ISDIR(mode) else PUBLISHED_FILE_MODE)
    folder.chmod(PUBLISHED_FOLDER_MODE)


def switch_current(paths: Paths, version: str) -> None:
    """Point published/current at `version` in one atomic rename of a relative symlink."""
    tmp = paths.published / f".current-{os.getpid()}-{uuid.uuid4().hex}"
    os.symlink(version, tmp)
    kill_point("publish.linked")
    os.replace(tmp, paths.current_publication)


def clean_stale(paths: Paths) -> list[str]:
    """Remove drafts and temporary symlinks of publishers that died."""
    removed = []
    if not paths.published.is_dir():
        return removed
    for entry in paths.published.iterdir():
        kind, _, rest = entry.name.partition("-")
        if kind not in (".draft", ".staging", ".current", RETIRED_PREFIX):
            continue  # .staging: older versions' drafts; .retired: retention's deletions
        pid = rest.split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and pid_alive(int(pid)):
            continue  # another publisher is at work (outside the one-slot pool?)
        if entry.is_symlink() or entry.is_file():
            entry.unlink()
        else:
            try:
                remove_tree(entry)
            except OSError as exc:
                log.warning("could not remove %s: %s", entry, exc)
                continue
        removed.append(entry.name)
    if removed:
        log.warning("removed leftovers of an interrupted publication: %s", removed)
    return removed


def _complete_version(folder: Path, marts: dict, deliveries: list[str]) -> bool:
    """A version folder holding exactly these marts, every file intact."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    if manifest.get("marts") != marts or manifest.get("deliveries") != deliveries \
            or not manifest.get("validation", {}).get("success"):
        return False
    return all((folder / f"{m}.parquet").is_file()
               and sha256_file(folder / f"{m}.parquet") == v["sha256"]
               for m, v in marts.items()) and (folder / PUBLISHED_DB).is_file()


def _unswitched_version(paths: Paths, marts: dict, deliveries: list[str]) -> str | None:
    """A complete publication of these marts that a killed publisher never switched to."""
    for folder in sorted(paths.published.iterdir(), reverse=True):
        if folder.name.startswith(".") or folder.is_symlink() or not folder.is_dir():
            continue
        if _complete_version(folder, marts, deliveries):
            return folder.name
    return None


def _current_folder(paths: Paths) -> tuple[Path | None, dict | None]:
    """The folder `current` points to (resolved once) and its manifest; (None, None)
    before the first publication."""
    if not paths.current_publication.exists():
        return None, None
    folder = paths.current_publication.resolve()
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return None, None
    return folder, json.loads(manifest.read_text())


def _retire_old(paths: Paths, policy: RetentionPolicy) -> list[str]:
    """Apply the retention policy after a publish; a failure is logged, never raised (the
    publication is made; the next publish retries)."""
    try:
        return apply_retention(paths, policy)
    except OSError as exc:
        log.warning("retention of old publications failed (retried after the next "
                    "publication): %s", exc)
        return []


def publish(paths: Paths | None = None) -> Publication:
    """Stage, gate and publish the warehouse's marts; raise GateFailed if the gate fails."""
    paths = paths or Paths.from_env()
    policy = RetentionPolicy.from_config()  # a bad setting fails before anything is done
    paths.ensure()
    if stat.S_IMODE(paths.published.stat().st_mode) != PUBLICATIONS_FOLDER_MODE:
        os.chmod(paths.published, PUBLICATIONS_FOLDER_MODE)
    clean_stale(paths)
    now = datetime.now(UTC)
    draft = paths.published / f".draft-{os.getpid()}-{uuid.uuid4().hex}"
    try:
        previous, current = _current_folder(paths)
        recovered = disclosure_ledger.recover(paths, current.get("version") if current
                                              else None)
        if recovered:
            log.warning("disclosure ledger: handled the pending cells of publishers that "
                        "died: %s", recovered)
        marts, deliveries, disclosure_report, revisions = _write_draft(
            paths, draft, previous, current.get("version") if current else None)
        kill_point("publish.staged")
        content = hashlib.sha256(json.dumps(marts, sort_keys=True).encode()).hexdigest()
        if current and current.get("deliveries") == deliveries and (
                current.get("marts") == marts or revisions.none):
            # equal published values; the flags may differ only by the revision letter
            log.info("marts unchanged since publication %s: nothing to publish",
                     current["version"])
            disclosure_ledger.discard(paths)
            return Publication(current["version"], previous, current["marts"], deliveries,
                               unchanged=True, retired=_retire_old(paths, policy))
        ready = _unswitched_version(paths, marts, deliveries)
        if ready is not None:
            log.warning("publication %s was complete but never made current (an interrupted "
                        "run): switching to it", ready)
            disclosure_ledger.promise(paths, ready)
            switch_current(paths, ready)
            kill_point("publish.switched")
            disclosure_ledger.commit(paths)
            return Publication(ready, paths.published / ready, marts, deliveries,
                               revisions=revisions.marts, retired=_retire_old(paths, policy))
        version = f"{now:%Y-%m-%dT%H:%M:%SZ}-{content[:4]}"
        n = 2
        while (paths.published / version).exists():
            version = f"{now:%Y-%m-%dT%H:%M:%SZ}-{content[:4]}-{n}"
            n += 1
        fingerprints = suite_fingerprints()
        suites, failures, validated = _gate(paths, draft, current, marts, fingerprints)
        failures = disclosure_report.failures + failures
        kill_point("publish.gated")
        report_dir = paths.reports / "gate"
        report_dir.mkdir(parents=True, exist_ok=True)
        report = report_dir / f"{version}.json"
        data_docs = paths.reports / "data_docs" / "index.html"
        validation = {"success": not failures, "suites": suites, "failures": failures,
                      "rows_validated": validated, "suite_sha256": fingerprints,
                      "report": str(data_docs),
                      "disclosure": disclosure_report.as_dict()}
        report.write_text(json.dumps({"version": version, **validation}, indent=2) + "\n")
        if failures:
            disclosure_ledger.discard(paths)
            raise GateFailed(failures, report)
        manifest = {
            "interface_version": INTERFACE_VERSION,
            "version": version,
            "previous_version": current.get("version") if current else None,
            "published_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "deliveries": deliveries,
            "marts": marts,
            "validation": validation,
            "revisions": {"file": REVISIONS_FILE, "rows": revisions.rows,
                          "sha256": sha256_file(draft / REVISIONS_FILE),
                          "marts": revisions.marts},
            **_write_exports(paths, draft, now),
        }
        _write_meta(draft, manifest)
        (draft / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        _make_read_only(draft)
        final = paths.published / version
        os.rename(draft, final)
        kill_point("publish.renamed")
        disclosure_ledger.promise(paths, version)
        switch_current(paths, version)
        kill_point("publish.switched")
        disclosure_ledger.commit(paths)
        log.info("published %s (%s; revisions: %s rows)", version,
                 ", ".join(f"{m} {v['rows']} rows" for m, v in marts.items()), revisions.rows)
        return Publication(version, final, marts, deliveries, suites=suites,
                           revisions=revisions.marts, retired=_retire_old(paths, policy))
    finally:
        if draft.exists():
            draft.chmod(0o700)
            shutil.rmtree(draft, ignore_errors=True)
