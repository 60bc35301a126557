"""The attacker: the tightest interval for every withheld cell, by linear programming.

The attacker knows every published value (exactly: the marts publish unrounded ratios,
and a ratio times its published denominator or day count is a sum of person counts), every
value published before (the ledger: penstat.publication.disclosure.ledger), every
additive relation between the tables that holds (penstat.publication.disclosure.cells),
and that counts are not negative. For a withheld cell x he solves min x and max x
subject to all of that (an LP; HiGHS through scipy.optimize.linprog). Integrality is
relaxed: the interval can only be wider than the integer one by less than one.

The problem is decomposed into connected components of the unknown cells (two unknowns
are connected when a relation holds both): a published cell is a constant, so facility
-months, months and cohorts separate and each LP stays small. A component that is one
relation with a known total is solved in closed form (each unknown lies in [0, K]).

A cell is *exposed* when its interval is narrower than its protection interval
(cells.LinkedCells.needs): the publication then fails (publish.GateFailed).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import coo_matrix

from penstat.publication.disclosure.cells import LinkedCells

# Slack on the protection check (the LP works in floating point).
EPS = 1e-6


@dataclass(frozen=True)
class Interval:
    cell: int
    low: float
    high: float

    @property
    def width(self) -> float:
        return self.high - self.low


def unknown_cells(cells: LinkedCells) -> np.ndarray:
    """Cells the attacker does not know: withheld now and never published before."""
    unknown = cells.withheld_cells()
    if cells.known:
        unknown[np.fromiter(cells.known, dtype=np.int64)] = False
    return unknown


class _Components:
    """Union-find over unknown cells through the relations that hold two of them."""

    def __init__(self, cells: LinkedCells, unknown: np.ndarray) -> None:
        self.parent = list(range(len(cells.keys)))
        self.active: list[int] = []  # relations with at least one unknown
        for r, (t, parts, _) in enumerate(cells.relations):
            members = [c for c in (t, *parts) if unknown[c]]
            if not members:
                continue
            self.active.append(r)
            for other in members[1:]:
                self._union(members[0], other)

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def _union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[ra] = rb


def component_relations(cells: LinkedCells) -> tuple[_Components, dict[int, list[int]]]:
    """The components of today's unknown cells and the relations of each (by root)."""
    unknown = unknown_cells(cells)
    comps = _Components(cells, unknown)
    by_root: dict[int, list[int]] = {}
    for r in comps.active:
        t, parts, _ = cells.relations[r]
        member = next(c for c in (t, *parts) if unknown[c])
        by_root.setdefault(comps.find(member), []).append(r)
    return comps, by_root


# A component's intervals, keyed by its relations and unknown cells: what the attacker
# can infer depends on nothing else (the published values do not change within a step).
Cache = dict[tuple[tuple[int, ...], frozenset[int]], dict[int, Interval]]


def intervals(cells: LinkedCells, targets: Iterable[int] | None = None,
              cache: Cache | None = None) -> dict[int, Interval]:
    """The attacker's interval for each unknown cell among `targets` (default: every
    unknown cell with a protection interval). `cache`: intervals of components solved
    before (secondary suppression audits after every round; most components are as
    they were in the last round)."""
    unknown = unknown_cells(cells)
    needs = np.asarray(cells.needs)
    if targets is None:  # every cell to protect, published or not
        targets = np.flatnonzero(needs > 0).tolist()
    out: dict[int, Interval] = {}
    for t in targets:
        if not unknown[t]:  # published (now or before): the attacker has it exactly
            out[t] = Interval(t, cells.values[t], cells.values[t])
    targets = [t for t in targets if unknown[t]]
    if not targets:
        return out
    comps, relations_by_root = component_relations(cells)
    targets_by_root: dict[int, list[int]] = {}
    for t in targets:
        targets_by_root.setdefault(comps.find(t), []).append(t)
    for root, wanted in targets_by_root.items():
        relations = relations_by_root.get(root, [])
        if cache is None:
            out.update(_solve(cells, unknown, relations, wanted))
            continue
        members = frozenset(c for r in relations for c in (cells.relations[r][0],
                                                             *cells.relations[r][1])
                            if unknown[c]) | frozenset(wanted)
        key = (tuple(sorted(relations)), members)
        solved = cache.get(key)
        if solved is None or any(c not in solved for c in wanted):
            solved = cache[key] = {**(solved or {}),
                                   **_solve(cells, unknown, relations, wanted)}
        out.update({c: solved[c] for c in wanted})
    return out


def local_interval(cells: LinkedCells, c: int, relations_of: list[list[int]],
                   also_unknown: Iterable[int] = ()) -> Interval:
    """Cell c's interval from its own component only (found by walking the relations
    through unknown cells), with the cells `also_unknown` taken as withheld: what
    withholding them would do, without auditing everything."""
    unknown = unknown_cells(cells)
    for extra in also_unknown:
        if extra not in cells.known:
            unknown[extra] = True
    seen_cells, seen_relations, todo = {c}, [], [c]
    visited: set[int] = set()
    while todo:
        x = todo.pop()
        for r in relations_of[x]:
            if r in visited:
                continue
            visited.add(r)
            seen_relations.append(r)
            t, parts, _ = cells.relations[r]
            for y in (t, *parts):
                if unknown[y] and y not in seen_cells:
                    seen_cells.add(y)
                    todo.append(y)
    if not unknown[c]:
        return Interval(c, cells.values[c], cells.values[c])
    return _solve(cells, unknown, seen_relations, [c])[c]


def _solve(cells: LinkedCells, unknown: np.ndarray, relations: list[int],
           wanted: list[int]) -> dict[int, Interval]:
    if not relations:  # in no relation: only x >= 0 is known
        return {c: Interval(c, 0.0, math.inf) for c in wanted}
    values = cells.values
    rows: list[tuple[dict[int, float], float]] = []
    for r in relations:
        t, parts, constant = cells.relations[r]
        terms: dict[int, float] = {}
        rhs = -constant
        for c, sign in ((t, -1.0), *((p, 1.0) for p in parts)):
            if unknown[c]:
                terms[c] = terms.get(c, 0.0) + sign
            else:
                rhs -= sign * values[c]
        rows.append((terms, rhs))
    if len(rows) == 1 and all(v == 1.0 for v in rows[0][0].values()):
        terms, rhs = rows[0]
        k = max(rhs, 0.0)
        if len(terms) == 1:
            return {c: Interval(c, k, k) for c in wanted}
        return {c: Interval(c, 0.0, k) for c in wanted}
    variables = sorted({c for terms, _ in rows for c in terms} | set(wanted))
    col = {c: j for j, c in enumerate(variables)}
    i_idx, j_idx, data = [], [], []
    for i, (terms, _) in enumerate(rows):
        for c, coef in terms.items():
            i_idx.append(i)
            j_idx.append(col[c])
            data.append(coef)
    a_eq = coo_matrix((data, (i_idx, j_idx)), shape=(len(rows), len(variables))).tocsr()
    b_eq = np.array([rhs for _, rhs in rows])
    out = {}
    for c in wanted:
        ends = []
        for sign in (1.0, -1.0):
            objective = np.zeros(len(variables))
            objective[col[c]] = sign
            res = linprog(objective, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
            if res.status == 3:  # unbounded
                ends.append(-sign * math.inf)
            elif res.status == 0:
                ends.append(sign * res.fun)
            else:
                raise RuntimeError(f"disclosure audit: LP for {cells.keys[c]} failed: "
                                   f"{res.message}")
        out[c] = Interval(c, ends[0], ends[1])
    return out


def exposed(cells: LinkedCells, found: dict[int, Interval]) -> list[Interval]:
    """The intervals narrower than their cell's protection interval."""
    return [iv for c, iv in found.items() if iv.width + EPS < cells.needs[c]]


def revealed_earlier(cells: LinkedCells) -> list[int]:
    """Withheld cells needing protection that an earlier publication already gave out."""
    withheld = cells.withheld_cells()
    return sorted(c for c in cells.known
                  if c < len(withheld) and withheld[c] and cells.needs[c] > 0)
