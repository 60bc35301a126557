"""The checkout holds no merge conflict left unresolved (a committed `<<<<<<<` block
in docs/published.md went unnoticed once) and no machine-local state (a committed
`.venv` link replaced a venv on merge once)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(rb"^(<{7}|>{7}) ", re.MULTILINE)  # "=======" alone may be a heading


def conflicted(paths: list[Path]) -> list[Path]:
    out = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if b"\0" not in data[:8000] and MARKER.search(data):
            out.append(path)
    return out


def test_no_tracked_file_holds_conflict_markers() -> None:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                            check=True).stdout.split(b"\0")
    files = [ROOT / name.decode() for name in listed if name]
    assert files, "git ls-files listed the checkout"
    assert [str(p.relative_to(ROOT)) for p in conflicted(files)] == []


def test_the_check_finds_a_conflict(tmp_path) -> None:
    bad, good = tmp_path / "bad.md", tmp_path / "good.md"
    bad.write_text("a\n<<<<<<< HEAD\nb\n=======\nc\n>>>>>>> main\n")
    good.write_text("a heading\n=======\n\n<<<<<<<< not a marker\n")
    assert conflicted([bad, good]) == [bad]


LOCAL_STATE = (".venv", ".penstat", "penstat.egg-info")  # made by `make`, per machine


def tracked_local_state(names: list[str]) -> list[str]:
    return [n for n in names if n.split("/", 1)[0] in LOCAL_STATE]


def test_no_local_state_is_tracked() -> None:
    """A worktree's `.venv` link, once committed, replaced the checkout's venv on merge
    (git treats ignored files as expendable) and would break `make` on a clean clone."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                            check=True).stdout.decode().split("\0")
    assert tracked_local_state([n for n in listed if n]) == []


def test_the_check_finds_tracked_local_state() -> None:
    assert tracked_local_state([".venv", "penstat/x.py", ".penstat/home/a"]) == [
        ".venv", ".penstat/home/a"]
