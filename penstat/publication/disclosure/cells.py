"""Linked tables as the attacker sees them: cells, additive relations, suppression units.

Every published person count (or sum of person counts over days) is a *cell* with a
stable key (``day|F001|2024-03-05``, ``month|F001|2024-03|2024-03-31``, ...). A
*relation* says that one cell is the sum of others (days -> facility-month -> national
class -> all classes; facility types nest in scale classes; every group type of a cohort
adds up to the cohort). A *unit* is what is published or withheld together (one value
and the values derived from it: a day's population, density, occupancy and tier).

Relations are kept only where they hold on the true values: a relation the attacker
may assume is then exactly one that is true, so adding it never makes the attacker's
linear programme infeasible, and a relation that does not hold cannot help him.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

import numpy as np

# A relation holds when |total - sum(parts)| is at most this (values are whole persons
# or person-days, computed in double precision).
RELATION_TOLERANCE = 1e-6

_WITHHELD = attrgetter("withheld")


@dataclass
class Unit:
    """What is published or withheld together: a value and everything derived from it."""

    key: tuple
    primary: bool = False
    withheld: bool = False
    requires: list[int] = field(default_factory=list)  # withheld if any of these is


@dataclass
class LinkedCells:
    """Cells, their units and relations; arrays are filled by `freeze`."""

    keys: list[str] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)
    values: list[float] = field(default_factory=list)
    scales: list[float] = field(default_factory=list)
    needs: list[float] = field(default_factory=list)
    cell_unit: list[int] = field(default_factory=list)
    units: list[Unit] = field(default_factory=list)
    unit_index: dict[tuple, int] = field(default_factory=dict)
    # total = sum(parts) + constant (the constant: parts every reader knows, folded in)
    relations: list[tuple[int, tuple[int, ...], float]] = field(default_factory=list)
    rejected_relations: int = 0
    known: set[int] = field(default_factory=set)  # cells the attacker knows from earlier
    _cell_unit_array: np.ndarray | None = field(default=None, repr=False)
    _incidence: tuple | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ building
    def unit(self, key: tuple, *, primary: bool = False) -> int:
        """The unit `key` (created on first use); `primary` marks it as primary."""
        i = self.unit_index.get(key)
        if i is None:
            i = self.unit_index[key] = len(self.units)
            self.units.append(Unit(key))
        if primary:
            self.units[i].primary = True
        return i

    def require(self, unit: int, on: int) -> None:
        """`unit` is withheld whenever `on` is (its value would give `on` back)."""
        self.units[unit].requires.append(on)

    def cell(self, key: str, value: float, *, unit: int | None, scale: float = 1.0,
             need: float = 0.0) -> int:
        """A cell: `value` in whole persons or person-days, `scale` the days behind it (the
        value over `scale` is a person count), `need` the protection interval its value
        must keep (in the cell's units; 0: none). `unit` None: never withheld."""
        if key in self.index:
            raise ValueError(f"disclosure: cell {key} defined twice")
        i = self.index[key] = len(self.keys)
        self.keys.append(key)
        self.values.append(float(value))
        self.scales.append(float(scale))
        self.needs.append(float(need))
        self.cell_unit.append(-1 if unit is None else unit)
        return i

    def relation(self, total: str, parts: Iterable[str], constant: float = 0.0) -> bool:
        """total = sum(parts) + constant, kept only if it holds on the true values."""
        t = self.index[total]
        p = tuple(self.index[k] for k in parts)  # none: the total is the constant
        if abs(self.values[t] - constant - sum(self.values[k] for k in p)) \
                > RELATION_TOLERANCE:
            self.rejected_relations += 1
            return False
        self.relations.append((t, p, float(constant)))
        return True

    def earlier_fact(self, key: str, value: float, parts: Sequence[str],
                     constant: float = 0.0) -> bool:
        """A sum published before (a provisional month, a replaced value's total):
        value = sum(parts) + constant, known to the attacker; kept if it holds now."""
        self.cell(f"earlier|{key}", value, unit=None)
        self.known.add(self.index[f"earlier|{key}"])
        return self.relation(f"earlier|{key}", parts, constant)

    # ------------------------------------------------------------------ state
    def close_requirements(self) -> None:
        """Withhold every unit that requires a withheld one (to a fixed point)."""
        dependent = [u for u in self.units if u.requires]
        changed = True
        while changed:
            changed = False
            for u in dependent:
                if not u.withheld and any(self.units[r].withheld for r in u.requires):
                    u.withheld = changed = True

    def withheld_cells(self) -> np.ndarray:
        units = np.array(list(map(_WITHHELD, self.units)), dtype=bool)
        return np.append(units, False)[self._cell_units()]

    def incidence(self) -> tuple[np.ndarray, np.ndarray]:
        """(relation, cell) index pairs of every relation's total and parts, as arrays;
        rebuilt when relations were added."""
        cached = self._incidence
        if cached is None or cached[0] != len(self.relations):
            sizes = np.fromiter((1 + len(parts) for _, parts, _ in self.relations),
                                dtype=np.int64, count=len(self.relations))
            rows = np.repeat(np.arange(len(self.relations), dtype=np.int64), sizes)
            cols = np.fromiter((c for t, parts, _ in self.relations for c in (t, *parts)),
                               dtype=np.int64, count=int(sizes.sum()))
            cached = self._incidence = (len(self.relations), rows, cols)
        return cached[1], cached[2]

    def _cell_units(self) -> np.ndarray:
        """cell_unit as an array (-1: the appended False), rebuilt when cells were added."""
        cached = self._cell_unit_array
        if cached is None or len(cached) != len(self.cell_unit):
            cached = self._cell_unit_array = np.array(self.cell_unit, dtype=np.int64)
        return cached

    def relations_of(self) -> list[list[int]]:
        """For each cell, the relations it is in (as total or part)."""
        out: list[list[int]] = [[] for _ in self.keys]
        for r, (t, parts, _) in enumerate(self.relations):
            out[t].append(r)
            for p in parts:
                out[p].append(r)
        return out
