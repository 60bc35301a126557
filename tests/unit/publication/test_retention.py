"""Retention of old publications: which version folders stay, and safe deletion."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from penstat.contract.layout import Paths
from penstat.core.config import Config, ConfigError
from penstat.publication.publish import clean_stale
from penstat.publication.retention import (
    RetentionPolicy,
    apply_retention,
    published_versions,
    versions_to_keep,
)


def version(paths: Paths, published_at: str, previous: str | None = None,
            suffix: str = "abcd") -> str:
    """A read-only publication folder like the publisher's (a subfolder too)."""
    name = f"{published_at}-{suffix}"
    folder = paths.published / name
    (folder / "dashboard").mkdir(parents=True)
    (folder / "dashboard" / "index.html").write_text("x")
    (folder / "manifest.json").write_text(json.dumps(
        {"version": name, "published_at": published_at, "previous_version": previous}))
    for p in [folder / "dashboard" / "index.html", folder / "manifest.json"]:
        p.chmod(0o444)
    (folder / "dashboard").chmod(0o555)
    folder.chmod(0o555)
    return name


def chain(paths: Paths, stamps: list[str]) -> list[str]:
    names, previous = [], None
    for stamp in stamps:
        previous = version(paths, stamp, previous)
        names.append(previous)
    return names


def make_current(paths: Paths, name: str) -> None:
    tmp = paths.published / ".tmp-link"
    os.symlink(name, tmp)
    os.replace(tmp, paths.current_publication)


def left(paths: Paths) -> list[str]:
    return sorted(p.name for p in paths.published.iterdir())


@pytest.fixture
def home(tmp_path) -> Paths:
    paths = Paths(tmp_path / "home")
    paths.ensure()
    return paths


DAYS = ["2026-09-29T02:00:00Z", "2026-09-30T02:00:00Z", "2026-10-01T02:00:00Z",
        "2026-10-15T02:00:00Z", "2026-10-31T02:00:00Z", "2026-11-01T02:00:00Z",
        "2026-11-02T02:00:00Z"]


def test_keep_last_n_keeps_the_newest_and_current(home):
    names = chain(home, DAYS)
    make_current(home, names[-1])
    retired = apply_retention(home, RetentionPolicy(keep_last=3))
    assert sorted(retired) == sorted(names[:4])
    assert left(home) == sorted([*names[4:], "current"])
    assert (home.current_publication / "manifest.json").is_file()


def test_keep_last_of_month_keeps_each_months_last(home):
    names = chain(home, DAYS)
    make_current(home, names[-1])
    apply_retention(home, RetentionPolicy(keep_last=0, keep_last_of_month=True))
    # September's last (09-30), October's last (10-31), November's last = current, and
    # current's previous (11-01)
    assert left(home) == sorted([names[1], names[4], names[5], names[6], "current"])


def test_both_rules_keep_the_union(home):
    names = chain(home, DAYS)
    make_current(home, names[-1])
    apply_retention(home, RetentionPolicy(keep_last=1, keep_last_of_month=True))
    assert left(home) == sorted([names[1], names[4], names[5], names[6], "current"])


def test_current_and_its_previous_survive_even_when_current_is_old(home):
    names = chain(home, DAYS[:4])
    make_current(home, names[1])  # an operator pointed current back at an old version
    apply_retention(home, RetentionPolicy(keep_last=1))
    # newer than current: kept; current and its previous (names[0]): kept
    assert left(home) == sorted([*names, "current"])


def test_previous_version_of_current_is_kept_with_keep_last_1(home):
    names = chain(home, DAYS[:3])
    make_current(home, names[-1])
    apply_retention(home, RetentionPolicy(keep_last=1))
    assert left(home) == sorted([names[1], names[2], "current"])


def test_keep_all_and_no_current_delete_nothing(home):
    names = chain(home, DAYS[:4])
    assert apply_retention(home, RetentionPolicy(keep_last=1)) == [], "no current: nothing"
    make_current(home, names[-1])
    assert apply_retention(home, RetentionPolicy(keep_last=0, keep_last_of_month=False)) == []
    assert left(home) == sorted([*names, "current"])


def test_folders_that_are_not_publications_are_left_alone(home):
    names = chain(home, DAYS[:3])
    make_current(home, names[-1])
    (home.published / "notes").mkdir()                     # no manifest
    stray = home.published / "2020-01-01T00:00:00Z-ffff"   # manifest naming another version
    stray.mkdir()
    (stray / "manifest.json").write_text(json.dumps({"version": "other"}))
    (home.published / ".draft-1-x").mkdir()                # someone's draft
    apply_retention(home, RetentionPolicy(keep_last=1))
    assert left(home) == sorted([".draft-1-x", stray.name, "notes", names[1], names[2],
                                 "current"])


def test_versions_are_ordered_by_published_at():
    from penstat.publication.retention import PublishedVersion
    vs = [PublishedVersion(f"v{i}", Path(f"v{i}"), t, None)
          for i, t in enumerate(["2026-01-03T00:00:00Z", "2026-01-01T00:00:00Z",
                                 "2026-01-02T00:00:00Z"])]
    vs.sort(key=lambda v: v.order, reverse=True)
    assert versions_to_keep(vs, "v0", RetentionPolicy(keep_last=2)) == {"v0", "v2"}


def test_a_reader_with_an_open_file_keeps_reading_and_leftovers_are_cleaned(home):
    names = chain(home, DAYS[:4])
    make_current(home, names[-1])
    with open(home.published / names[0] / "manifest.json") as reader:
        apply_retention(home, RetentionPolicy(keep_last=2))
        assert json.loads(reader.read())["version"] == names[0]
    assert [v.version for v in published_versions(home.published)] == names[:1:-1]
    # a retention run killed after the rename leaves a hidden folder: the next publisher
    # removes it (pid 1 is not a publisher; 999999999 is not alive)
    hidden = home.published / ".retired-999999999-x-old"
    (hidden / "sub").mkdir(parents=True)
    (hidden / "sub").chmod(0o555)
    hidden.chmod(0o555)
    assert clean_stale(home) == [hidden.name]
    assert not hidden.exists()


def test_the_settings_come_from_the_configuration_and_are_checked(tmp_path):
    base = Config.load()
    assert RetentionPolicy.from_config(base) == RetentionPolicy(
        keep_last=base.get("publication", "keep_last"),
        keep_last_of_month=base.get("publication", "keep_last_of_month"))
    overlay = tmp_path / "o.toml"
    overlay.write_text("[publication]\nkeep_last = -2\n")
    with pytest.raises(ConfigError, match=r"\[publication\] keep_last = -2"):
        RetentionPolicy.from_config(Config.load(overlays=[overlay]))
    overlay.write_text("[publication]\nkeep_lats = 2\n")
    with pytest.raises(ConfigError, match="unknown key"):
        Config.load(overlays=[overlay])
