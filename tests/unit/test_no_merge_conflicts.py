"""No file of the checkout holds a merge conflict left unresolved (a committed
`<<<<<<<` block in docs/published.md went unnoticed once)."""

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
