"""SIGKILL ingestion while it decodes a cp1252 recidivism file: no clear copy escapes.

Decoding a declared non-UTF-8 file writes a UTF-8 copy holding raw person
identifiers. The copy (like the checked copies of the files and DuckDB's spill
files) lives in the run's private scratch inside PENSTAT_HOME
(`$PENSTAT_HOME/work/ingest-<pid>-*`, owner-only), never in $TMPDIR. A run killed
half-way (SIGKILL: no `finally`) leaves it there; the next run removes it (the
killed pid is gone) and loads the delivery.

The child process runs with its own empty $HOME and $TMPDIR and kills itself at
the test-only point `ingest.decoding` (penstat/core/faults.py), reached right
after the first block of the UTF-8 copy was written and flushed.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

from penstat.core.faults import KILL_ENV
from penstat.core.locations import REPO_ROOT
from penstat.ingestion.pipeline import ingest_feed
from penstat.senders.delivery import write_delivery
from tests import builders as b
from tests.conftest import TEST_KEY
from tests.reliability import find_identifiers, penstat_home, private_modes

REFS = set(b.PERSON_REFS)
CHILD = "from penstat.ingestion.pipeline import ingest_feed; ingest_feed('recidivism')"
EUROPEAN = {"delimiter": ";", "decimal": ",", "encoding": "cp1252"}


def _cp1252(header: str, rows: list[str]) -> bytes:
    lines = [header.replace(",", ";"), *(r.replace(",", ";") for r in rows)]
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


def _recidivism_cp1252(inbox: Path) -> Path:
    a, bb, c = b.PERSON_REFS
    releases = [f"R1,{a},2020-01-05,TS-0001,0,M,1990,03,2,200",
                f"R2,{bb},2020-03-01,TS-0002,150,F,1985,07,0,160",
                f"R3,{c},2021-06-30,TS-0003,0,M,2001,01,5,400"]
    reconvictions = [f"C1,{a},2020-05-01,2020-09-01,03,true"]
    return write_delivery(inbox, "recidivism", "rec-cp1252",
                          {"releases.csv": _cp1252(b.RELEASES_HEADER, releases),
                           "reconvictions.csv": _cp1252(b.RECONVICTIONS_HEADER,
                                                        reconvictions)},
                          sender="TEST", created_at="2024-06-30T00:00:00Z", period=None,
                          dialect=EUROPEAN)


def _files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_a_run_killed_while_decoding_leaves_no_clear_copy_outside_home(tmp_path):
    outside = {name: tmp_path / name for name in ("child-home", "child-tmp")}
    for folder in outside.values():
        folder.mkdir()
    with penstat_home(tmp_path / "home") as paths:
        b.register(paths.inbox)
        assert [o.outcome for o in ingest_feed("facility_register", paths)] == ["loaded"]
        delivery = _recidivism_cp1252(paths.inbox)

        env = {**os.environ, "PENSTAT_HOME": str(paths.home),
               "PENSTAT_PSEUDONYM_KEY": TEST_KEY, "GX_ANALYTICS_ENABLED": "False",
               "HOME": str(outside["child-home"]), "TMPDIR": str(outside["child-tmp"]),
               KILL_ENV: "ingest.decoding",
               "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        child = subprocess.run([sys.executable, "-c", CHILD], env=env, cwd=outside["child-home"],
                               capture_output=True, text=True, timeout=300)
        assert child.returncode == -signal.SIGKILL, child.stderr[-3000:]

        # killed half-way: the clear copies are only in the run's private scratch
        work = paths.work
        [scratch] = list(work.iterdir())
        assert scratch.name.startswith("ingest-")
        decoded = [p for p in _files_under(scratch) if p.name.endswith(".utf8")]
        assert decoded, "the kill came while the UTF-8 copy was being written"
        assert private_modes(work) == [], "owner-only"
        assert stat.S_IMODE(work.stat().st_mode) == 0o700
        for folder in outside.values():
            assert find_identifiers(folder, REFS) == []
            assert _files_under(folder) == [], f"the child wrote into {folder}"
        skip = (paths.inbox, paths.archive, paths.quarantine, work)
        assert find_identifiers(paths.home, REFS, skip=skip) == []
        assert (delivery / "releases.csv").is_file(), "the delivery is still pending"

        # the next run removes the dead run's scratch and loads the delivery
        [out] = ingest_feed("recidivism", paths)
        assert (out.delivery_id, out.outcome, out.rows) == ("rec-cp1252", "loaded", 4)
        assert not scratch.exists() and list(work.iterdir()) == []
        assert find_identifiers(paths.home, REFS, skip=(paths.archive, paths.quarantine)) == []
        assert private_modes(paths.archive / "recidivism") == []
