"""The attacker: the tightest interval for every withheld cell, by linear programming.

The attacker knows every published value (exactly: the marts publish unrounded ratios,
and a ratio times its published denominator or day count is a sum of person counts), every
value published before (the ledger: penstat.publication.disclosure.ledger), every
additive relation between the tables that holds (penstat.publication.disclosure.cells),
and that counts are not negative. For a withheld cell x he solves min x and max x
subject to all of that (an LP, solved by HiGHS through highspy: one model per
component, re-solved from its last basis for each end of each cell). Integrality is
relaxed: the interval can only be wider than the integer one by less than one.

The problem is decomposed into connected components of the unknown cells (two unknowns
are connected when a relation holds both): a published cell is a constant, so facility
-months, months and cohorts separate and each LP stays small. A component that is one
relation with a known total is solved in closed form (each unknown lies in [0, K]).

A cell is *exposed* when its interval is narrower than its protection interval
(cells.LinkedCells.needs): the publication then fails (publish.GateFailed).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import highspy
import numpy as np
from scipy.sparse import coo_matrix, csc_matrix, csr_matrix, hstack, identity, vstack
from scipy.sparse.csgraph import connected_components

from penstat.publication.disclosure.cells import RELATION_TOLERANCE, LinkedCells

# Slack on the protection check (the LP works in floating point).
EPS = 1e-6
# Components with at least this many cells to audit are certified together first.
PROBE_MIN = 8
CERTIFY_ROUNDS = 12  # most LPs of the joint phase (_certify)
CAP_SLACK = 1e-4  # a cell's gain may pass its need by this: LP values are inexact
# HiGHS's primal feasibility tolerance: a relation is kept when it holds within
# RELATION_TOLERANCE (cells.py), so the models must accept that much (HiGHS's default,
# 1e-7, made a relation off by 5e-7 an infeasible model and failed the step).
FEASIBILITY_TOLERANCE = 2 * RELATION_TOLERANCE


@dataclass(frozen=True)
class Interval:
    cell: int
    low: float
    high: float

    @property
    def width(self) -> float:
        return self.high - self.low


def unknown_cells(cells: LinkedCells, withheld: np.ndarray | None = None) -> np.ndarray:
    """Cells the attacker does not know: withheld now and never published before.
    `withheld`: cells.withheld_cells(), when the caller has it."""
    unknown = cells.withheld_cells() if withheld is None else withheld.copy()
    if cells.known:
        unknown[np.fromiter(cells.known, dtype=np.int64)] = False
    return unknown


class _Components:
    """The connected components of the unknown cells, two unknowns connected when a
    relation holds both (scipy's connected_components over cells and relations)."""

    def __init__(self, cells: LinkedCells, unknown: np.ndarray) -> None:
        rows, cols = cells.incidence()
        keep = unknown[cols]
        rows, cols = rows[keep], cols[keep]
        n_cells = len(cells.keys)
        n = n_cells + len(cells.relations)
        graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (cols, n_cells + rows)),
                           shape=(n, n)).tocsr()
        _, self.labels = connected_components(graph, directed=False)
        self.active = np.unique(rows).tolist()  # relations with at least one unknown
        first = np.unique(rows, return_index=True)[1]  # relation -> one of its unknowns
        self._member = dict(zip(rows[first].tolist(), cols[first].tolist(), strict=True))

    def members(self, unknown: np.ndarray) -> dict[int, bytes]:
        """Each component's unknown cells (ascending, as bytes: a cache key)."""
        groups = _group_by(self.labels, np.flatnonzero(unknown))
        return {r: np.asarray(cs, dtype=np.int64).tobytes() for r, cs in groups.items()}

    def find(self, x: int) -> int:
        """The component of cell x (a label shared by its cells and relations)."""
        return int(self.labels[x])

    def member(self, r: int) -> int:
        """An unknown cell of active relation r."""
        return self._member[r]


def _group_by(labels: np.ndarray, items: np.ndarray) -> dict[int, list[int]]:
    """The items by their label (each group in the items' order)."""
    if not len(items):
        return {}
    order = np.argsort(labels[items], kind="stable")
    items, keys = items[order], labels[items][order]
    roots, starts = np.unique(keys, return_index=True)
    ends = np.append(starts[1:], len(items))
    return {int(r): items[a:b].tolist() for r, a, b in zip(roots, starts, ends, strict=True)}


def component_relations(cells: LinkedCells) -> tuple[_Components, dict[int, list[int]]]:
    """The components of today's unknown cells and the relations of each (by root)."""
    comps = _Components(cells, unknown_cells(cells))
    by_root: dict[int, list[int]] = {}
    for r in comps.active:
        by_root.setdefault(comps.find(comps.member(r)), []).append(r)
    return comps, by_root


# A component's intervals, keyed by its relations and unknown cells: what the attacker
# can infer depends on nothing else (the published values do not change within a step).
Cache = dict[tuple[bytes, bytes], dict[int, Interval]]


class Memo:
    """The components that passed the audit in earlier publications, by fingerprint.

    What the attacker can infer about a component depends only on its relations as he
    sees them (which cells are unknown, the published values and constants); whether
    it passes, on that and its cells' protection intervals. A daily publication meets
    most components again exactly as before (the release cohorts, every month not
    touched): one that passed then passes now, with no LP. The fingerprint is a keyed
    hash (the disclosure secret) of exactly those inputs, kept in
    `$PENSTAT_HOME/disclosure/audited` (one per line; the ones met in this step).
    A cell of a remembered component gets Interval(0, its protection interval), a
    lower bound on its width, as the shortcuts give."""

    def __init__(self, key: bytes, passed: Iterable[str] = ()) -> None:
        self.key = key[:64]
        self.passed = set(passed)
        self.met: set[str] = set()  # fingerprints seen in this step that passed

    @classmethod
    def load(cls, path: Path, key: bytes) -> Memo:
        try:
            lines = path.read_text().split()
        except OSError:
            lines = []
        return cls(key, lines)

    def save(self, path: Path) -> None:
        """Keep the fingerprints met in this step (the others no longer occur)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text("".join(f"{f}\n" for f in sorted(self.met)))
        os.replace(tmp, path)

    def fingerprint(self, cells: LinkedCells, unknown: np.ndarray, relations: list[int],
                    wanted: list[int]) -> str:
        digest = hashlib.blake2b(key=self.key, digest_size=20)
        keys, needs = cells.keys, cells.needs
        rows = [repr((sorted((keys[c], coef) for c, coef in terms.items()), round(rhs, 6)))
                for terms, rhs in attacker_rows(cells, unknown, relations)]
        for row in sorted(rows):
            digest.update(row.encode())
        digest.update(repr(sorted((keys[c], needs[c]) for c in wanted)).encode())
        return digest.hexdigest()


def intervals(cells: LinkedCells, targets: Iterable[int] | None = None,
              cache: Cache | None = None, memo: Memo | None = None) -> dict[int, Interval]:
    """The attacker's interval for each unknown cell among `targets` (default: every
    unknown cell with a protection interval). `cache`: intervals of components solved
    before (secondary suppression audits after every round; most components are as
    they were in the last round). `memo`: components that passed in earlier
    publications (Memo)."""
    unknown = unknown_cells(cells)
    needs = np.asarray(cells.needs)
    # default: every cell to protect, published or not
    targets = np.flatnonzero(needs > 0) if targets is None \
        else np.asarray(list(targets), dtype=np.int64)
    out: dict[int, Interval] = {}
    for t in targets[~unknown[targets]].tolist():
        # published (now or before): the attacker has it exactly
        out[t] = Interval(t, cells.values[t], cells.values[t])
    targets = targets[unknown[targets]].tolist()
    if not targets:
        return out
    comps, relations_by_root = component_relations(cells)
    targets_by_root = _group_by(comps.labels, np.asarray(targets, dtype=np.int64))

    def solve(relations: list[int], wanted: list[int]) -> dict[int, Interval]:
        if memo is None or not relations:
            return _solve(cells, unknown, relations, wanted)
        print_ = memo.fingerprint(cells, unknown, relations, wanted)
        if print_ in memo.passed:
            memo.met.add(print_)
            return {c: Interval(c, 0.0, cells.needs[c]) for c in wanted}
        found = _solve(cells, unknown, relations, wanted)
        if not exposed(cells, found):
            memo.met.add(print_)
        return found

    members = comps.members(unknown) if cache is not None else {}
    for root, wanted in targets_by_root.items():
        relations = relations_by_root.get(root, [])
        if cache is None:
            out.update(solve(relations, wanted))
            continue
        key = (np.sort(np.asarray(relations, dtype=np.int64)).tobytes(), members[root])
        solved = cache.get(key)
        if solved is None or any(c not in solved for c in wanted):
            solved = cache[key] = {**(solved or {}), **solve(relations, wanted)}
        out.update({c: solved[c] for c in wanted})
    return out


def _relations_around(cells: LinkedCells, c: int, relations_of: list[list[int]],
                      unknown: np.ndarray) -> list[int]:
    """The relations of cell c's component, found by walking through unknown cells."""
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
    return seen_relations


def _with_unknown(cells: LinkedCells, unknown: np.ndarray | None,
                  extra: Iterable[int]) -> np.ndarray:
    """The unknown cells, with `extra` taken as withheld (those known from earlier
    publications stay known)."""
    unknown = unknown_cells(cells) if unknown is None else unknown.copy()
    for x in extra:
        if x not in cells.known:
            unknown[x] = True
    return unknown


def local_interval(cells: LinkedCells, c: int, relations_of: list[list[int]],
                   also_unknown: Iterable[int] = (), unknown: np.ndarray | None = None
                   ) -> Interval:
    """Cell c's interval from its own component only (found by walking the relations
    through unknown cells), with the cells `also_unknown` taken as withheld: what
    withholding them would do, without auditing everything. `unknown`: today's
    unknown_cells, when the caller has them."""
    unknown = _with_unknown(cells, unknown, also_unknown)
    if not unknown[c]:
        return Interval(c, cells.values[c], cells.values[c])
    return _solve(cells, unknown, _relations_around(cells, c, relations_of, unknown), [c])[c]


def trial_widths(cells: LinkedCells, c: int, relations_of: list[list[int]],
                 trials: list[list[int]], unknown: np.ndarray | None = None
                 ) -> list[float]:
    """For each trial (a list of cells), the width of cell c's interval were those
    cells withheld as well, by the exact LP over c's component, from one LP model.

    Every trial's cells are variables of the model, each held at its published value
    (lower = upper bound) except those of the trial being solved, freed to [0, inf):
    a fixed variable is a constant, so each trial's LP is the one of c's component with
    that trial withheld, and each re-solve starts from the last basis instead of
    building a model. The width is exact; local_interval may return less (a lower
    bound, where the twin rule shows a cell protected without an LP)."""
    unknown_now = unknown_cells(cells) if unknown is None else unknown
    if not unknown_now[c]:
        return [local_interval(cells, c, relations_of, t, unknown_now).width
                for t in trials]
    extra = sorted({x for t in trials for x in t
                    if x not in cells.known and not unknown_now[x]})
    unknown_all = _with_unknown(cells, unknown_now, extra)
    relations = _relations_around(cells, c, relations_of, unknown_all)
    if not relations:
        return [math.inf] * len(trials)
    variables, col, a_eq, b_eq = _matrix(attacker_rows(cells, unknown_all, relations), [c])
    highs = _model(a_eq, b_eq)
    fixed = [col[x] for x in extra if x in col]
    if fixed:
        value_of = np.array([cells.values[variables[j]] for j in fixed])
        highs.changeColsBounds(len(fixed), np.array(fixed, dtype=np.int32), value_of,
                               value_of)
    widths = []
    j = col[c]
    highs.changeColCost(j, 1.0)
    extra_set = set(extra)
    for trial in trials:
        free = sorted({col[x] for x in trial if x in col and x in extra_set})
        free_idx = np.array(free, dtype=np.int32)
        if free:
            highs.changeColsBounds(len(free), free_idx, np.zeros(len(free)),
                                   np.full(len(free), highspy.kHighsInf))
        ends = _ends(highs, j)
        if ends is None:
            # a relation within RELATION_TOLERANCE but not within HiGHS's own, among
            # cells fixed here and left out of local_interval's model: solve it alone
            widths.append(local_interval(cells, c, relations_of, trial, unknown_now).width)
        else:
            widths.append(ends[1] - ends[0])
        if free:
            fixed_values = np.array([cells.values[variables[k]] for k in free])
            highs.changeColsBounds(len(free), free_idx, fixed_values, fixed_values)
    return widths


def attacker_rows(cells: LinkedCells, unknown: np.ndarray, relations: list[int]
                  ) -> list[tuple[dict[int, float], float]]:
    """The relations as the attacker sees them: sum(coefficient x unknown cell) = rhs,
    every published (or earlier known) value and constant moved to the right."""
    values = cells.values
    rows = []
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
    return rows


def _solve(cells: LinkedCells, unknown: np.ndarray, relations: list[int],
           wanted: list[int]) -> dict[int, Interval]:
    if not relations:  # in no relation: only x >= 0 is known
        return {c: Interval(c, 0.0, math.inf) for c in wanted}
    rows = attacker_rows(cells, unknown, relations)
    if len(rows) == 1 and all(v == 1.0 for v in rows[0][0].values()):
        terms, rhs = rows[0]
        k = max(rhs, 0.0)
        if len(terms) == 1:
            return {c: Interval(c, k, k) for c in wanted}
        return {c: Interval(c, 0.0, k) for c in wanted}
    out, wanted = _twins(cells, rows, wanted)
    if not wanted:
        return out
    variables, col, a_eq, b_eq = _matrix(rows, wanted)
    highs = _model(a_eq, b_eq)
    # Every solution found is a point the attacker cannot rule out, so each variable's
    # true interval holds the range of values it took in them. A cell whose range is
    # already its protection interval wide is protected: no LP of its own is needed
    # (its Interval is then that range, a lower bound on the width).
    seen_low = np.full(len(variables), math.inf)
    seen_high = np.full(len(variables), -math.inf)
    probed = [c for c in wanted if cells.needs[c] > 0]
    if len(probed) >= PROBE_MIN:
        _certify(a_eq, b_eq, np.array([col[c] for c in probed], dtype=np.int64),
                 np.array([cells.needs[c] for c in probed]), seen_low, seen_high)
    for c in wanted:
        j = col[c]
        if cells.needs[c] > 0 and seen_high[j] - seen_low[j] >= cells.needs[c] + EPS:
            out[c] = Interval(c, float(seen_low[j]), float(seen_high[j]))
            continue
        highs.changeColCost(j, 1.0)
        ends = _ends(highs, j, seen_low, seen_high)
        highs.changeColCost(j, 0.0)
        if ends is None:
            raise RuntimeError(f"disclosure audit: LP for {cells.keys[c]} failed: "
                               f"{highs.modelStatusToString(highs.getModelStatus())}")
        out[c] = Interval(c, *ends)
    return out


def _matrix(rows: list[tuple[dict[int, float], float]], also: Iterable[int] = ()
            ) -> tuple[list[int], dict[int, int], csc_matrix, np.ndarray]:
    """The attacker's rows as A_eq x = b_eq: (the variables, cell -> column, A_eq,
    b_eq); the cells `also` are variables even where no row holds them."""
    variables = sorted({c for terms, _ in rows for c in terms} | set(also))
    col = {c: j for j, c in enumerate(variables)}
    i_idx, j_idx, data = [], [], []
    for i, (terms, _) in enumerate(rows):
        for c, coef in terms.items():
            i_idx.append(i)
            j_idx.append(col[c])
            data.append(coef)
    a_eq = coo_matrix((data, (i_idx, j_idx)), shape=(len(rows), len(variables))).tocsc()
    return variables, col, a_eq, np.array([rhs for _, rhs in rows], dtype=float)


def _ends(highs: highspy.Highs, j: int, seen_low: np.ndarray | None = None,
          seen_high: np.ndarray | None = None) -> tuple[float, float] | None:
    """The smallest and largest value of column j (its cost must be 1), each solution
    widening seen_low/seen_high; None when an LP ends neither optimal nor (for the
    maximum) unbounded."""
    ends = []
    for sense in (highspy.ObjSense.kMinimize, highspy.ObjSense.kMaximize):
        highs.changeObjectiveSense(sense)
        highs.run()
        status = highs.getModelStatus()
        if status == highspy.HighsModelStatus.kOptimal:
            ends.append(highs.getInfo().objective_function_value)
            if seen_low is not None and seen_high is not None:
                x = np.asarray(highs.getSolution().col_value)
                np.minimum(seen_low, x, out=seen_low)
                np.maximum(seen_high, x, out=seen_high)
        elif status == highspy.HighsModelStatus.kUnbounded \
                and sense == highspy.ObjSense.kMaximize:
            ends.append(math.inf)
        else:
            return None
    return ends[0], ends[1]


def _certify(a_eq: csc_matrix, b_eq: np.ndarray, columns: np.ndarray, needs: np.ndarray,
             seen_low: np.ndarray, seen_high: np.ndarray) -> None:
    """Show many cells of a large component protected with a few LPs, not two each.

    A cell is protected once two points the attacker cannot rule out set it at least
    its protection interval apart. One LP pushes all cells down at once (min of their
    sum); then each LP looks for one point moving as many of the cells not yet shown
    protected as far as they need from the lowest (or highest) value seen: max sum t_c
    with t_c <= x_c - low_c (or high_c - x_c) and t_c <= need_c, the gain of each cell
    capped so that cells sharing a relation share it rather than one taking all.
    Directions alternate; the phase stops when two LPs in a row show no new cell.

    Exactness is kept: the ranges seen are lower bounds on the true intervals, and a
    cell not shown protected here gets its own two LPs (_solve). The ranges found go
    into seen_low/seen_high (by column)."""
    n_rows, n_vars = a_eq.shape
    k = len(columns)
    pick = csr_matrix((np.ones(k), (np.arange(k), columns)), shape=(k, n_vars))
    eye = identity(k, format="csr")
    # rows: A x = b; up: t - x_c <= -low_c; down: t + x_c <= high_c
    a = vstack([hstack([a_eq, csr_matrix((n_rows, k))]), hstack([-pick, eye]),
                hstack([pick, eye])]).tocsc()
    inf = highspy.kHighsInf
    highs = _model(a, np.concatenate([b_eq, np.full(2 * k, -inf)]),
                   np.concatenate([b_eq, np.full(2 * k, inf)]),
                   np.concatenate([np.zeros(n_vars), np.full(k, -inf)]))

    def run(sense: highspy.ObjSense) -> bool:
        highs.changeObjectiveSense(sense)
        highs.run()
        if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return False
        x = np.asarray(highs.getSolution().col_value)[:n_vars]
        np.minimum(seen_low, x, out=seen_low)
        np.maximum(seen_high, x, out=seen_high)
        return True

    x_cols = columns.astype(np.int32)
    t_cols = np.arange(n_vars, n_vars + k, dtype=np.int32)
    up_rows = np.arange(n_rows, n_rows + k, dtype=np.int32)
    down_rows = up_rows + k
    free = np.full(k, inf)
    highs.changeColsCost(k, x_cols, np.ones(k))
    if not run(highspy.ObjSense.kMinimize):
        return
    highs.changeColsCost(k, x_cols, np.zeros(k))
    shown = 0
    idle = 0
    for step in range(CERTIFY_ROUNDS):
        pending = seen_high[columns] - seen_low[columns] < needs + EPS
        if not pending.any():
            return
        up = step % 2 == 0
        upper_up = np.where(pending, -seen_low[columns], inf) if up else free
        upper_down = free if up else np.where(pending, seen_high[columns], inf)
        highs.changeRowsBounds(k, up_rows, np.full(k, -inf), upper_up)
        highs.changeRowsBounds(k, down_rows, np.full(k, -inf), upper_down)
        highs.changeColsBounds(k, t_cols, np.full(k, -inf),
                               np.where(pending, needs + CAP_SLACK, inf))
        highs.changeColsCost(k, t_cols, pending.astype(float))
        if not run(highspy.ObjSense.kMaximize):
            return
        now = int((seen_high[columns] - seen_low[columns] >= needs + EPS).sum())
        idle = idle + 1 if now == shown else 0
        shown = now
        if idle >= 2:
            return


def _twins(cells: LinkedCells, rows: list[tuple[dict[int, float], float]],
           wanted: list[int]) -> tuple[dict[int, Interval], list[int]]:
    """The cells shown protected without an LP, and the others.

    Unknown cells with the same coefficients in every relation ("twins": facility-months
    of one class in the same national rows) can trade any amount: moving all of the
    twins' true values onto a cell, or all of its value onto a twin, keeps every
    relation and every count non-negative. So its interval holds [0, sum of the twins'
    values and its own]; where that is at least its protection interval, no LP is
    needed (the Interval returned is that range, a lower bound on the width)."""
    signature: dict[int, list[tuple[int, float]]] = {}
    for i, (terms, _) in enumerate(rows):
        for c, coef in terms.items():
            signature.setdefault(c, []).append((i, coef))
    groups: dict[tuple, list[int]] = {}
    for c, sig in signature.items():
        groups.setdefault(tuple(sig), []).append(c)
    values = cells.values
    mass_of = {sig: sum(values[g] for g in group) for sig, group in groups.items()
               if len(group) >= 2}
    out: dict[int, Interval] = {}
    rest = []
    for c in wanted:
        mass = mass_of.get(tuple(signature.get(c, ())), 0.0)
        if mass and cells.needs[c] > 0 and mass >= cells.needs[c] + EPS:
            out[c] = Interval(c, 0.0, mass)
        else:
            rest.append(c)
    return out, rest


def _model(a: csc_matrix, row_lower: np.ndarray, row_upper: np.ndarray | None = None,
           col_lower: np.ndarray | None = None) -> highspy.Highs:
    """row_lower <= A x <= row_upper (default: A x = row_lower), x >= col_lower (default
    0), as a HiGHS model without presolve (re-solving from the last basis is what makes
    one LP per cell end cheap; with presolve the first LP of a large component took 10x
    longer, and an unbounded maximum can be reported as "unbounded or infeasible")."""
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("presolve", "off")
    highs.setOptionValue("primal_feasibility_tolerance", FEASIBILITY_TOLERANCE)
    n_rows, n_cols = a.shape
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n_cols, n_rows
    lp.col_cost_ = np.zeros(n_cols)
    lp.col_lower_ = np.zeros(n_cols) if col_lower is None else col_lower
    lp.col_upper_ = np.full(n_cols, highspy.kHighsInf)
    lp.row_lower_ = row_lower
    lp.row_upper_ = row_lower if row_upper is None else row_upper
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = a.indptr
    lp.a_matrix_.index_ = a.indices
    lp.a_matrix_.value_ = a.data
    highs.passModel(lp)
    return highs


def exposed(cells: LinkedCells, found: dict[int, Interval]) -> list[Interval]:
    """The intervals narrower than their cell's protection interval."""
    return [iv for c, iv in found.items() if iv.width + EPS < cells.needs[c]]


def revealed_earlier(cells: LinkedCells) -> list[int]:
    """Withheld cells needing protection that an earlier publication already gave out."""
    withheld = cells.withheld_cells()
    return sorted(c for c in cells.known
                  if c < len(withheld) and withheld[c] and cells.needs[c] > 0)
