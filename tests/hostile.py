"""Harness of the hostile-delivery tests: nothing may happen outside PENSTAT_HOME.

`sealed` gives the test its own empty $HOME, $TMPDIR and working directory (Python's
tempfile is pointed at the new $TMPDIR too) and records the checkout. On exit it
asserts that none of the three holds a file and that no file of the checkout was
created, changed, removed or re-moded: whatever a delivery does, it does inside
PENSTAT_HOME.

`then_valid` is the second half of every hostile case: after the hostile delivery, a
valid delivery of the same feed still goes through (one bad delivery never holds back
another).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from penstat.contract.feeds import MANIFEST
from penstat.core.locations import REPO_ROOT

# Folders of the checkout that tools write by design (not penstat's deliveries).
_CHECKOUT_NOISE = {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".penstat",
                   ".import_linter_cache",
                   "penstat.egg-info"}


def _files(root: Path, noise: frozenset[str] = frozenset()) -> dict[str, tuple[int, int, int]]:
    """Every file and folder below `root`: (size, mtime_ns, mode), by relative path."""
    found: dict[str, tuple[int, int, int]] = {}
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in noise]
        for name in [*dirs, *files]:
            path = Path(dirpath) / name
            try:
                st = path.lstat()
            except OSError:
                continue
            found[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns, st.st_mode)
    return found


def checkout_changes(before: dict, after: dict) -> list[str]:
    changed = [f"created {p}" for p in sorted(after.keys() - before.keys())]
    changed += [f"removed {p}" for p in sorted(before.keys() - after.keys())]
    changed += [f"changed {p}" for p in sorted(before.keys() & after.keys())
                if before[p] != after[p] and not Path(REPO_ROOT / p).is_dir()]
    return changed


@contextmanager
def sealed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Path]]:
    """An empty $HOME, $TMPDIR and working directory for the body; checked on exit."""
    outside = {name: tmp_path / f"outside-{name}" for name in ("home", "tmp", "cwd")}
    for folder in outside.values():
        folder.mkdir()
    monkeypatch.setenv("HOME", str(outside["home"]))
    monkeypatch.setenv("TMPDIR", str(outside["tmp"]))
    monkeypatch.setattr(tempfile, "tempdir", None)  # tempfile re-reads $TMPDIR
    monkeypatch.chdir(outside["cwd"])
    checkout = _files(REPO_ROOT, frozenset(_CHECKOUT_NOISE))
    yield outside
    tempfile.tempdir = None
    for name, folder in outside.items():
        left = sorted(_files(folder))
        assert left == [], f"files left in ${name.upper()} (outside PENSTAT_HOME): {left[:10]}"
    changes = checkout_changes(checkout, _files(REPO_ROOT, frozenset(_CHECKOUT_NOISE)))
    assert changes == [], f"the checkout changed: {changes[:10]}"


def oldest_first(*folders: Path) -> None:
    """Give the deliveries' manifests increasing mtimes: ingested in this order."""
    start = time.time() - 1000
    for i, folder in enumerate(folders):
        os.utime(folder / MANIFEST, (start + i, start + i), follow_symlinks=False)
