"""Secondary suppression over linked tables: the cheapest extra cells that protect.

Method (Hundepool et al., *Statistical Disclosure Control*, Wiley 2012, §4.4; the
modular approach of tau-Argus): the linked tables are audited (audit.py); for every
primary cell whose interval is narrower than its protection interval, the relations that
hold it form a subtable, and the cheapest set of further cells of that subtable whose
values cover the missing width is withheld -- a small 0-1 programme (min sum cost*y subject
to sum value*y >= missing width), solved by HiGHS (scipy.optimize.milp). Audit and repair
repeat until no cell is exposed; a cell that no subtable can protect makes its relations'
totals withheld in turn (the next level of the hierarchy).

The cost of withholding a unit is the information it carries (its person-days or
persons, plus one, and the same for each unit withheld with it) times a factor in
[1, 1.05) drawn from a keyed hash of the cell (the key is secret, kept beside the
ledger): the choice minimises the information lost, and no published rule ("the
smallest other cell") lets an attacker say which value was chosen.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from penstat.publication.disclosure import audit
from penstat.publication.disclosure.cells import LinkedCells

MAX_ROUNDS = 60
TRIALS = 20  # candidates tried one by one when the cheapest cover did not widen a cell


@dataclass
class Outcome:
    rounds: int = 0
    secondary_units: int = 0
    unprotectable: list[str] = field(default_factory=list)
    # the intervals of the components solved (audit.Cache): the final audit reuses the
    # ones of components unchanged since the last round
    solved: dict = field(default_factory=dict, repr=False)


def unit_costs(cells: LinkedCells, secret: bytes) -> np.ndarray:
    """Information lost by withholding each unit, with a keyed jitter: its own, and
    that of every unit withheld with it (Unit.requires: a cohort's rates go with its
    size), so that a unit taking others with it is not chosen as if it went alone."""
    own = np.ones(len(cells.units))
    for c, u in enumerate(cells.cell_unit):
        if u >= 0:
            own[u] += abs(cells.values[c])
    dependents: dict[int, list[int]] = {}
    for u, unit in enumerate(cells.units):
        for r in unit.requires:
            dependents.setdefault(r, []).append(u)
    cost = own.copy()
    for u in dependents:
        seen, todo = {u}, [u]
        while todo:
            for d in dependents.get(todo.pop(), ()):
                if d not in seen and not cells.units[d].withheld:
                    seen.add(d)
                    todo.append(d)
        cost[u] = own[sorted(seen)].sum()
    for u, unit in enumerate(cells.units):
        digest = hashlib.blake2b(repr(unit.key).encode(), key=secret[:64], digest_size=8)
        cost[u] *= 1.0 + 0.05 * int.from_bytes(digest.digest(), "big") / 2**64
    return cost


def choose(values: np.ndarray, costs: np.ndarray, missing: float) -> list[int] | None:
    """Indices of the cheapest subset with sum(values) >= missing (None: none exists)."""
    if values.sum() + audit.EPS < missing:
        return None
    n = len(values)
    res = milp(costs, constraints=LinearConstraint(values.reshape(1, n), lb=missing),
               integrality=np.ones(n), bounds=Bounds(0, 1))
    if res.status != 0 or res.x is None:
        return None
    return [i for i in range(n) if res.x[i] > 0.5]


def _best_single(cells: LinkedCells, c: int, units: list[int], cost: np.ndarray,
                 width: float, relations_of: list[list[int]],
                 cells_of: dict[int, list[int]], unknown: np.ndarray) -> int | None:
    """The candidate unit that widens cell c most per unit of cost (None: none does)."""
    best, best_gain = None, 0.0
    widths = audit.trial_widths(cells, c, relations_of, [cells_of.get(u, []) for u in units],
                                unknown)
    for u, found in zip(units, widths, strict=True):
        gain = (found - width) / cost[u]
        if gain > best_gain + audit.EPS:
            best, best_gain = u, gain
    return best


def _near(cells: LinkedCells, c: int, relations_of: list[list[int]],
          unknown: np.ndarray) -> set[int]:
    """The relations that hold cell c, and those that hold an unknown cell of them."""
    near = set(relations_of[c])
    for r in list(near):
        t, parts, _ = cells.relations[r]
        for p in (t, *parts):
            if p != c and unknown[p]:
                near.update(relations_of[p])
    return near


def _candidates(cells: LinkedCells, relations, withheld: np.ndarray) -> dict[int, float]:
    """The units of the published cells of `relations` the attacker has not seen, each
    with the largest value it would add to the unknowns."""
    out: dict[int, float] = {}
    cell_unit, known = cells.cell_unit, cells.known
    for r in relations:
        t, parts, _ = cells.relations[r]
        for p in (t, *parts):
            u = cell_unit[p]
            if u >= 0 and not withheld[p] and p not in known:
                out[u] = max(out.get(u, 0.0), abs(cells.values[p]))
    return out


def protect(cells: LinkedCells, secret: bytes, memo: audit.Memo | None = None) -> Outcome:
    """Withhold the primary units and enough others that the audit passes (`memo`:
    the components that passed in earlier publications, audit.Memo)."""
    for unit in cells.units:
        unit.withheld = unit.withheld or unit.primary
    cells.close_requirements()
    cost = unit_costs(cells, secret)
    relations_of = cells.relations_of()
    cell_unit = cells.cell_unit
    outcome = Outcome()
    before = sum(u.withheld for u in cells.units)
    cells_of: dict[int, list[int]] = {}
    for i, u in enumerate(cell_unit):
        if u >= 0:
            cells_of.setdefault(u, []).append(i)
    last_width: dict[int, float] = {}
    gave_up: set[int] = set()
    solved: audit.Cache = outcome.solved
    for outcome.rounds in range(1, MAX_ROUNDS + 1):
        found = audit.intervals(cells, cache=solved, memo=memo)
        bad = [iv for iv in audit.exposed(cells, found) if iv.cell not in gave_up]
        if not bad:
            break
        withheld = cells.withheld_cells()
        unknown = audit.unknown_cells(cells, withheld)
        known = cells.known
        comps, by_root = audit.component_relations(cells)
        add: set[int] = set()
        tried: set[int] = set()
        # a component's candidates are the same for each of its exposed cells: once a round
        by_component: dict[int, tuple[dict[int, float], list[int]]] = {}
        for iv in bad:
            c = iv.cell
            missing = cells.needs[c] - iv.width
            stuck = abs(last_width.get(c, -1.0) - iv.width) <= audit.EPS
            last_width[c] = iv.width
            root = comps.find(c)
            # the cells of its own subtables first (the relations that hold it, and
            # those of the unknown cells in them), then those of its whole component
            near = _candidates(cells, _near(cells, c, relations_of, unknown), withheld)
            near_units = sorted(near, key=lambda u: cost[u])
            if root not in by_component:
                found = _candidates(cells, by_root.get(root, relations_of[c]), withheld)
                by_component[root] = found, sorted(found, key=lambda u: cost[u])
            candidates, units = by_component[root]
            picked = None
            for pool in ((near_units, near), (units, candidates)):
                if pool[0] and not stuck and picked is None:
                    picked = choose(np.array([pool[1][u] for u in pool[0]]), cost[pool[0]],
                                    missing)
                    if picked is not None:
                        add.update(pool[0][i] for i in picked)
            if picked is None and units and root in tried:
                continue  # one trial per component and round: the next round sees its effect
            if picked is None and units:
                tried.add(root)
                trials = near_units[:TRIALS]
                trials += [u for u in units if u not in near][:TRIALS - len(trials)]
                best = _best_single(cells, c, trials, cost, iv.width,
                                    relations_of, cells_of, unknown)
                if best is not None:
                    add.add(best)
                    picked = [best]
            if picked is None:
                # nothing in its subtables widens it alone: withhold the totals of the
                # relations that hold it (its component's), one level up the hierarchy
                tops = {cell_unit[t] for r in by_root.get(root, relations_of[c])
                        for t in (cells.relations[r][0],)
                        if t != c and cell_unit[t] >= 0 and not withheld[t]
                        and t not in known}
                if tops:
                    add.update(tops)
                else:
                    gave_up.add(c)
        if not add:
            break
        for u in add:
            cells.units[u].withheld = True
        cells.close_requirements()
    else:
        raise RuntimeError(f"disclosure: secondary suppression did not settle in "
                           f"{MAX_ROUNDS} rounds")
    outcome.secondary_units = sum(u.withheld for u in cells.units) - before
    outcome.unprotectable = [cells.keys[c] for c in sorted(gave_up)]
    return outcome
