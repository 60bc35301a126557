"""audit.Memo: a component that passed the audit in an earlier publication and is met
again exactly as the attacker saw it then passes with no LP; any change to what the
attacker sees, or to a protection interval, makes it solved again."""

from __future__ import annotations

import pytest

from penstat.publication.disclosure import audit
from penstat.publication.disclosure.cells import LinkedCells

KEY = b"m" * 32


def month(days: list[int], withheld: set[int], need: float = 5.0) -> LinkedCells:
    """One facility-month: its days (those in `withheld` withheld) and their sum."""
    cells = LinkedCells()
    for i, pop in enumerate(days):
        unit = cells.unit(("daily", i, "population"))
        cells.units[unit].withheld = i in withheld
        cells.cell(f"day|F|{i}", pop, unit=unit, need=need if 0 < pop < 5 else 0.0)
    cells.cell("month|F", sum(days), unit=None)
    cells.relation("month|F", [f"day|F|{i}" for i in range(len(days))])
    return cells


def no_lp(*args, **kwargs):
    raise AssertionError("an LP was solved for a remembered component")


def test_a_component_met_again_unchanged_passes_without_an_lp(tmp_path, monkeypatch):
    path = tmp_path / "audited"
    memo = audit.Memo.load(path, KEY)
    first = audit.intervals(month([4, 30, 31, 29], {0, 1}), memo=memo)
    assert not audit.exposed(month([4, 30, 31, 29], {0, 1}), first)
    memo.save(path)
    assert len(path.read_text().split()) == 1
    assert "day|" not in path.read_text()  # fingerprints only, no keys or values

    monkeypatch.setattr(audit, "_solve", no_lp)
    again = audit.Memo.load(path, KEY)
    cells = month([4, 30, 31, 29], {0, 1})
    found = audit.intervals(cells, memo=again)
    assert found[0].width >= 5.0 and not audit.exposed(cells, found)
    again.save(path)
    assert len(path.read_text().split()) == 1  # still met: kept


@pytest.mark.parametrize("change", [
    lambda: month([4, 31, 31, 29], {0, 1}),  # a withheld value moved, the total too
    lambda: month([4, 30, 31, 29], {0, 2}),  # another cell withheld
    lambda: month([4, 30, 31, 29], {0, 1}, need=6.0),  # a wider protection interval
])
def test_any_change_the_attacker_or_the_rules_see_is_solved_again(tmp_path, monkeypatch,
                                                                 change):
    path = tmp_path / "audited"
    memo = audit.Memo.load(path, KEY)
    audit.intervals(month([4, 30, 31, 29], {0, 1}), memo=memo)
    memo.save(path)
    monkeypatch.setattr(audit, "_solve", no_lp)
    with pytest.raises(AssertionError, match="an LP was solved"):
        audit.intervals(change(), memo=audit.Memo.load(path, KEY))


def test_what_the_attacker_cannot_tell_apart_is_the_same_component(tmp_path, monkeypatch):
    """A published day and the published total moving together leave the withheld sum
    (94 - 31 - 29 = 93 - 31 - 28 = 34) as it was: nothing new to audit."""
    path = tmp_path / "audited"
    memo = audit.Memo.load(path, KEY)
    audit.intervals(month([4, 30, 31, 29], {0, 1}), memo=memo)
    memo.save(path)
    monkeypatch.setattr(audit, "_solve", no_lp)
    audit.intervals(month([4, 30, 31, 28], {0, 1}), memo=audit.Memo.load(path, KEY))


def test_a_failing_component_is_not_remembered_and_the_key_matters(tmp_path):
    path = tmp_path / "audited"
    memo = audit.Memo.load(path, KEY)
    exposed = month([4, 30, 31, 29], {0})  # the lone withheld 4 = 94 - 30 - 31 - 29
    assert audit.exposed(exposed, audit.intervals(exposed, memo=memo))
    assert memo.met == set()
    cells = month([4, 30, 31, 29], {0, 1})
    unknown = audit.unknown_cells(cells)
    relations, wanted = [0], [0]
    assert audit.Memo(KEY).fingerprint(cells, unknown, relations, wanted) != \
        audit.Memo(b"n" * 32).fingerprint(cells, unknown, relations, wanted)
