"""Publish the marts: stage a new publication, gate it, switch `current` atomically.

A publication is a folder `published/<version>/` holding `published.duckdb`
(schema `marts`), one Parquet file per mart and `manifest.json`. It is built
under a hidden staging name, validated there with the mart suites (so what is
validated is byte for byte what is published), made read-only, renamed into
place, and only then does `published/current` (a relative symlink) switch to
it with one rename. A failed gate publishes nothing: the staging folder is
removed, the reasons are written to `reports/gate/`, and `current` stays.
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

from gate.suites import MART_COLUMNS, MART_KEYS, mart_suite_name
from ingestion.folder import sha256_of
from ingestion.settings import Paths

log = logging.getLogger(__name__)

PUBLISHED_DB = "published.duckdb"
MANIFEST = "manifest.json"
INTERFACE_VERSION = "1"


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


def _stage(paths: Paths, staging: Path) -> tuple[dict[str, dict], list[str]]:
    """Copy the marts out of the warehouse (read-only) into the staging folder."""
    staging.mkdir(parents=True)
    con = duckdb.connect(str(staging / PUBLISHED_DB))
    try:
        con.execute(f"ATTACH '{paths.warehouse}' AS wh (READ_ONLY)")
        con.execute("CREATE SCHEMA marts")
        marts: dict[str, dict] = {}
        for mart, columns in MART_COLUMNS.items():
            order = ", ".join(f'"{k}"' for k in MART_KEYS[mart])
            cols = ", ".join(f'"{c}"' for c in columns)
            con.execute(f"CREATE TABLE marts.{mart} AS SELECT {cols} FROM wh.marts.{mart} "
                        f"ORDER BY {order}")
            parquet = staging / f"{mart}.parquet"
            con.execute(f"COPY (SELECT * FROM marts.{mart} ORDER BY {order}) TO '{parquet}' "
                        "(FORMAT parquet, COMPRESSION zstd)")
            rows = con.execute(f"SELECT count(*) FROM marts.{mart}").fetchone()[0]
            marts[mart] = {"rows": int(rows), "sha256": sha256_of(parquet)}
        deliveries = [f"{feed}/{did}" for feed, did in con.execute(
            "SELECT feed, delivery_id FROM wh.meta.deliveries ORDER BY delivery_seq").fetchall()]
        con.execute("DETACH wh")
    finally:
        con.close()
    return marts, deliveries


def _gate(staging: Path) -> tuple[list[str], list[str]]:
    """Run every mart suite on the staged Parquet files; (suites run, failures)."""
    from gate.runner import run_suite

    suites, failures = [], []
    for mart in MART_COLUMNS:
        frame = duckdb.sql(f"SELECT * FROM read_parquet('{staging / (mart + '.parquet')}')").df()
        result = run_suite(mart_suite_name(mart), frame, index_columns=MART_KEYS[mart])
        suites.append(result.suite)
        failures += [f.describe() for f in result.failures]
    return suites, failures


def current_manifest(paths: Paths) -> dict | None:
    manifest = paths.current_publication / MANIFEST
    if not manifest.is_file():
        return None
    return json.loads(manifest.read_text())


def _make_read_only(folder: Path) -> None:
    for p in folder.iterdir():
        p.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH
                 | stat.S_IXOTH)


def switch_current(paths: Paths, version: str) -> None:
    """Point published/current at `version` in one atomic rename of a relative symlink."""
    tmp = paths.published / f".current-{uuid.uuid4().hex}"
    os.symlink(version, tmp)
    os.replace(tmp, paths.current_publication)


def publish(paths: Paths | None = None) -> Publication:
    """Stage, gate and publish the warehouse's marts; raise GateFailed if the gate fails."""
    paths = paths or Paths.from_env()
    paths.ensure()
    now = datetime.now(UTC)
    staging = paths.published / f".staging-{uuid.uuid4().hex}"
    try:
        marts, deliveries = _stage(paths, staging)
        content = hashlib.sha256(json.dumps(marts, sort_keys=True).encode()).hexdigest()
        current = current_manifest(paths)
        if current and current.get("marts") == marts and current.get("deliveries") == deliveries:
            log.info("marts unchanged since publication %s: nothing to publish",
                     current["version"])
            return Publication(current["version"], paths.current_publication.resolve(), marts,
                               deliveries, unchanged=True)
        version = f"{now:%Y-%m-%dT%H:%M:%SZ}-{content[:4]}"
        suites, failures = _gate(staging)
        report_dir = paths.reports / "gate"
        report_dir.mkdir(parents=True, exist_ok=True)
        report = report_dir / f"{version}.json"
        data_docs = paths.reports / "data_docs" / "index.html"
        validation = {"success": not failures, "suites": suites, "failures": failures,
                      "report": str(data_docs)}
        report.write_text(json.dumps({"version": version, **validation}, indent=2) + "\n")
        if failures:
            raise GateFailed(failures, report)
        manifest = {
            "interface_version": INTERFACE_VERSION,
            "version": version,
            "published_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "deliveries": deliveries,
            "marts": marts,
            "validation": validation,
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        _make_read_only(staging)
        final = paths.published / version
        os.rename(staging, final)
        switch_current(paths, version)
        log.info("published %s (%s)", version,
                 ", ".join(f"{m} {v['rows']} rows" for m, v in marts.items()))
        return Publication(version, final, marts, deliveries, suites=suites)
    finally:
        if staging.exists():
            staging.chmod(0o700)
            shutil.rmtree(staging, ignore_errors=True)
