"""The hostile-delivery harness catches what it guards against (tests/hostile.py)."""

from __future__ import annotations

import os
import tempfile

import pytest

from penstat.core.locations import REPO_ROOT
from tests.hostile import sealed


@pytest.mark.parametrize("where", ["tmp", "home", "cwd"])
def test_a_file_left_outside_penstat_home_fails(tmp_path, monkeypatch, where) -> None:
    with pytest.raises(AssertionError, match="outside PENSTAT_HOME"), \
            sealed(tmp_path, monkeypatch) as outside:
        target = {"tmp": tempfile.gettempdir(), "home": os.environ["HOME"],
                  "cwd": os.getcwd()}[where]
        assert target == str(outside[where])
        with open(os.path.join(target, "leftover.csv"), "w") as fh:
            fh.write("person_ref\n912345678\n")


def test_a_changed_checkout_file_fails(tmp_path, monkeypatch) -> None:
    victim = REPO_ROOT / "config" / "real.toml"
    mode = victim.stat().st_mode
    try:
        with pytest.raises(AssertionError, match="the checkout changed"), \
                sealed(tmp_path, monkeypatch):
            victim.chmod(0o600 if mode & 0o777 != 0o600 else 0o644)
    finally:
        victim.chmod(mode)


def test_nothing_done_passes(tmp_path, monkeypatch) -> None:
    with sealed(tmp_path, monkeypatch):
        pass
