"""A publication any DuckDB client can open: published.duckdb is read by DuckDB 1.1.3 (the
oldest version its storage format, penstat.publication.metadata.STORAGE_VERSION, is
for), in a separate environment made with uv and cached for the test session."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from penstat.contract.published import MART_COLUMNS
from penstat.publication.publish import publish
from tests.unit.publication.test_publication import build_marts

OLD_DUCKDB = "1.1.3"
# Words of uv's messages when the package index cannot be reached (then: skip, not fail).
_UNREACHABLE = ("failed to fetch", "dns", "connection refused", "connect error",
                "timed out", "network is unreachable", "could not connect",
                "error sending request", "tcp connect")

READER = """
import json, sys
import duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
marts = [m for (m,) in con.execute(
    "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'marts'").fetchall()]
out = {
    "duckdb": duckdb.__version__,
    "rows": {m: con.execute(f"SELECT count(*) FROM marts.{m}").fetchone()[0] for m in marts},
    "commented": con.execute("SELECT count(*) FROM duckdb_columns() WHERE schema_name = "
                             "'marts' AND comment IS NOT NULL").fetchone()[0],
    "publication": con.execute("SELECT version, previous_version FROM meta.publication"
                               ).fetchall(),
}
con.close()
print(json.dumps(out))
"""


def _uv() -> str:
    uv = Path(sys.executable).parent / "uv"
    found = str(uv) if uv.is_file() else shutil.which("uv")
    if not found:
        pytest.skip("uv is not installed: cannot make a DuckDB 1.1.3 environment")
    return found


def _base_python() -> str:
    name = f"python{sys.version_info.major}.{sys.version_info.minor}"
    base = Path(sys.base_prefix) / "bin" / name
    return str(base) if base.is_file() else sys.executable


@pytest.fixture(scope="session")
def old_duckdb_python(tmp_path_factory) -> str:
    """The Python of a venv holding duckdb==1.1.3 (made once per session)."""
    venv = tmp_path_factory.getbasetemp() / f"duckdb-{OLD_DUCKDB}"
    python = venv / "bin" / "python"
    if python.is_file():
        return str(python)
    uv = _uv()
    env = {**os.environ, "UV_CACHE_DIR": str(tmp_path_factory.getbasetemp() / "uv-cache")}
    env.pop("VIRTUAL_ENV", None)
    subprocess.run([uv, "venv", "--quiet", str(venv), "--python", _base_python()],
                   check=True, capture_output=True, text=True, env=env, timeout=300)
    done = subprocess.run([uv, "pip", "install", "--quiet", "--python", str(python),
                           f"duckdb=={OLD_DUCKDB}"],
                          capture_output=True, text=True, env=env, timeout=600)
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip()
        if any(word in message.lower() for word in _UNREACHABLE):
            pytest.skip(f"the package index is unreachable, cannot install "
                        f"duckdb=={OLD_DUCKDB}: {message[-500:]}")
        pytest.fail(f"uv pip install duckdb=={OLD_DUCKDB} failed: {message[-2000:]}")
    return str(python)


def test_duckdb_1_1_reads_every_mart_of_a_publication(paths, old_duckdb_python):
    build_marts(paths)
    first = publish(paths)
    build_marts(paths, density=104.0)
    pub = publish(paths)
    manifest = json.loads((pub.folder / "manifest.json").read_text())
    done = subprocess.run([old_duckdb_python, "-c", READER, str(pub.folder / "published.duckdb")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    read = json.loads(done.stdout)
    assert read["duckdb"] == OLD_DUCKDB
    assert read["rows"] == {m: v["rows"] for m, v in manifest["marts"].items()}
    assert set(read["rows"]) == set(MART_COLUMNS)
    assert read["commented"] == sum(len(c) for c in MART_COLUMNS.values())
    assert read["publication"] == [[pub.version, first.version]]
