"""The audit's joint phase for large components (audit._certify) and the secondary
suppression's trials from one model (audit.trial_widths) give the decisions of the
independent attacker: the full LP per cell (scipy's linprog, over every relation)."""

from __future__ import annotations

import numpy as np
import pytest

from penstat.publication.disclosure import audit
from penstat.publication.disclosure.cells import LinkedCells
from tests.unit.publication.test_disclosure_linked import (
    PI,
    _exact_interval,
    primary_only,
)


def two_way_table(seed: int, rows: int = 6, cols: int = 5) -> LinkedCells:
    """A rows x cols table of person counts with its row, column and grand totals (one
    component: every inner cell is in a row and a column relation), about 40 % of the
    inner cells and a few totals withheld; small counts need PI, others 1."""
    rng = np.random.default_rng(seed)
    cells = LinkedCells()
    values = rng.integers(0, 25, (rows, cols)).astype(float)
    values[rng.random((rows, cols)) < 0.2] = rng.integers(1, 5)  # small counts
    for i in range(rows):
        for j in range(cols):
            v = values[i, j]
            withheld = bool(rng.random() < 0.4) or 0 < v < 5
            unit = cells.unit(("t", (i, j), "x"), primary=withheld)
            cells.cell(f"c|{i}|{j}", v, unit=unit,
                       need=PI if 0 < v < 5 else (1.0 if withheld else 0.0))
    for i in range(rows):
        cells.cell(f"r|{i}", values[i].sum(), unit=cells.unit(
            ("t", (i, "all"), "x"), primary=bool(rng.random() < 0.2)))
        cells.relation(f"r|{i}", [f"c|{i}|{j}" for j in range(cols)])
    for j in range(cols):
        cells.cell(f"k|{j}", values[:, j].sum(), unit=cells.unit(
            ("t", ("all", j), "x"), primary=bool(rng.random() < 0.2)))
        cells.relation(f"k|{j}", [f"c|{i}|{j}" for i in range(rows)])
    cells.cell("all", values.sum(), unit=None)
    cells.relation("all", [f"r|{i}" for i in range(rows)])
    cells.relation("all", [f"k|{j}" for j in range(cols)])
    primary_only(cells)
    return cells


@pytest.mark.parametrize("seed", range(25))
def test_the_joint_phase_decides_as_the_full_lp_per_cell(seed, monkeypatch):
    cells = two_way_table(seed)
    certified = []
    real = audit._certify

    def counting(*args):
        certified.append(len(args[2]))
        return real(*args)

    monkeypatch.setattr(audit, "_certify", counting)
    found = audit.intervals(cells)
    unknown = audit.unknown_cells(cells)
    wanted = [c for c in found if unknown[c]]
    assert len(wanted) >= audit.PROBE_MIN and certified, "the joint phase did not run"
    for c in wanted:
        low, high = _exact_interval(cells, c)
        iv = found[c]
        # a range seen is inside the true interval ...
        assert iv.low >= low - 1e-6 and iv.high <= high + 1e-6, (cells.keys[c], iv, low, high)
        # ... and the verdict is the full LP's
        exposed_exact = high - low + audit.EPS < cells.needs[c]
        assert (iv.width + audit.EPS < cells.needs[c]) == exposed_exact, (cells.keys[c], iv)
        if exposed_exact:  # an exposed cell's interval is exact (its own two LPs)
            assert iv.low == pytest.approx(low) and iv.high == pytest.approx(high)


def test_the_joint_phase_saves_the_lps_of_cells_it_shows_protected(monkeypatch):
    """Non-vacuous: with the joint phase most cells need no LP of their own."""
    cells = two_way_table(3, rows=12, cols=10)
    runs = {"on": 0, "off": 0}
    real_run = audit.highspy.Highs.run

    def count(mode):
        def run(self):
            runs[mode] += 1
            return real_run(self)
        return run

    monkeypatch.setattr(audit.highspy.Highs, "run", count("on"))
    with_joint = audit.intervals(cells)
    monkeypatch.setattr(audit, "PROBE_MIN", 10**9)
    monkeypatch.setattr(audit.highspy.Highs, "run", count("off"))
    without = audit.intervals(cells)
    assert runs["on"] < runs["off"] / 2, runs
    assert sorted(iv.cell for iv in audit.exposed(cells, with_joint)) == \
        sorted(iv.cell for iv in audit.exposed(cells, without))


@pytest.mark.parametrize("seed", range(10))
def test_trial_widths_are_the_full_lp_with_the_trial_withheld(seed):
    cells = two_way_table(seed)
    unknown = audit.unknown_cells(cells)
    relations_of = cells.relations_of()
    published = [c for c in range(len(cells.keys))
                 if not unknown[c] and cells.cell_unit[c] >= 0]
    rng = np.random.default_rng(seed)
    exposed = [iv.cell for iv in audit.exposed(cells, audit.intervals(cells))]
    targets = exposed or [c for c in np.flatnonzero(unknown).tolist() if cells.needs[c] > 0]
    c = targets[0]
    trials = [[int(x)] for x in rng.choice(published, size=min(6, len(published)),
                                             replace=False)]
    trials.append([])  # nothing more withheld: today's interval
    widths = audit.trial_widths(cells, c, relations_of, trials, unknown)
    for trial, width in zip(trials, widths, strict=True):
        units = {cells.cell_unit[x] for x in trial}
        for u in units:
            cells.units[u].withheld = True
        low, high = _exact_interval(cells, c)
        for u in units:
            cells.units[u].withheld = False
        assert width == pytest.approx(high - low), ([cells.keys[x] for x in trial], width)


def near_tolerance_table() -> LinkedCells:
    """c withheld; T1 = c + a, S = a (off by 5e-7: within the relations' tolerance,
    not HiGHS's) and T3 = c + x published."""
    cells = LinkedCells()
    c = cells.unit(("t", "c", "x"), primary=True)
    cells.cell("c", 3, unit=c, need=PI)
    for key, value in (("a", 10.0), ("x", 7.0), ("T1", 13.0), ("S", 10.0 + 5e-7),
                       ("T3", 10.0)):
        cells.cell(key, value, unit=cells.unit(("t", key, "x")))
    assert cells.relation("T1", ["c", "a"]) and cells.relation("S", ["a"])
    assert cells.relation("T3", ["c", "x"])
    primary_only(cells)
    return cells


def test_a_relation_off_by_less_than_its_tolerance_fails_no_lp():
    """S is off by 5e-7: kept (RELATION_TOLERANCE 1e-6), and more than HiGHS's default
    feasibility tolerance (1e-7), with which withholding a made the model infeasible
    and failed the step. The trials (a held at its value in one model, and a trial
    listing a twice) agree with each trial's own model."""
    cells = near_tolerance_table()
    c, a, x = (cells.index[k] for k in ("c", "a", "x"))
    relations_of = cells.relations_of()
    trials = [[a], [x], [a, a], []]
    widths = audit.trial_widths(cells, c, relations_of, trials)
    expected = [audit.local_interval(cells, c, relations_of, t).width for t in trials]
    assert widths == pytest.approx(expected)
    assert widths[0] == pytest.approx(0.0) and widths[1] == pytest.approx(0.0)  # T1 pins c
