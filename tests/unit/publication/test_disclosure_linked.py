"""Disclosure control over linked tables (penstat.publication.disclosure), on small
hand-built tables: each attack of issue 12 is caught by the audit when protection is
switched off (primary suppression only, or the earlier publication forgotten), and the
secondary suppression leaves no withheld cell narrower than its protection interval."""

from __future__ import annotations

import numpy as np
import pytest

from penstat.publication.disclosure import audit, secondary
from penstat.publication.disclosure.cells import LinkedCells

PI = 5.0
SECRET = b"k" * 32


def facility_month(days: list[int], *, month_published: bool = True) -> LinkedCells:
    """One facility-month: its days and their sum (the month's ADP x days)."""
    cells = LinkedCells()
    keys = []
    for i, pop in enumerate(days, 1):
        small = 0 < pop < 5
        unit = cells.unit(("daily", f"d{i}", "population"), primary=small)
        cells.cell(f"day|F|{i}", pop, unit=unit, need=PI if small else 0.0)
        keys.append(f"day|F|{i}")
    month = cells.unit(("monthly", "m", "population"))
    cells.cell("month|F|m", sum(days), unit=month if month_published else None,
               scale=len(days))
    cells.relation("month|F|m", keys)
    return cells


def primary_only(cells: LinkedCells) -> None:
    for unit in cells.units:
        unit.withheld = unit.primary
    cells.close_requirements()


def exposed_keys(cells: LinkedCells) -> list[str]:
    return sorted(cells.keys[iv.cell] for iv in audit.exposed(cells, audit.intervals(cells)))


def test_a_lone_withheld_day_is_given_back_by_its_month_and_then_protected():
    cells = facility_month([22, 4, 30, 31, 29])
    primary_only(cells)
    assert exposed_keys(cells) == ["day|F|2"]  # 4 = 116 - 22 - 30 - 31 - 29
    outcome = secondary.protect(cells, SECRET)
    assert exposed_keys(cells) == [] and outcome.unprotectable == []
    found = audit.intervals(cells)
    day = cells.index["day|F|2"]
    assert found[day].width >= PI and found[day].low <= 4 <= found[day].high


def test_two_small_days_together_still_narrower_than_the_protection_interval():
    # 1 + 2 withheld: each in [0, 3], narrower than 5: a third cell is needed
    cells = facility_month([1, 2, 40, 41])
    primary_only(cells)
    assert exposed_keys(cells) == ["day|F|1", "day|F|2"]
    secondary.protect(cells, SECRET)
    assert exposed_keys(cells) == []


def test_a_published_small_average_is_caught():
    """An ADP of 3.6 (a person count of 1-4 on average) published is exposed."""
    cells = LinkedCells()
    unit = cells.unit(("monthly", "m", "population"), primary=True)
    cells.cell("month|F|m", 3.6 * 10, unit=unit, scale=10, need=PI * 10)
    assert exposed_keys(cells) == ["month|F|m"]  # not withheld: given out exactly
    primary_only(cells)
    assert exposed_keys(cells) == []


def nested_cohort() -> LinkedCells:
    """Released persons by class and by type (types nest in classes), cohort total known:
    small = detention_house + transition_house + juvenile (113 + 78 + 19 = 210)."""
    cells = LinkedCells()
    hidden = cells.unit(("hidden",))
    cells.units[hidden].withheld = True
    cross = {("small", "detention_house"): 113, ("small", "transition_house"): 78,
             ("small", "juvenile"): 19, ("large", "prison"): 700, ("large", "remand"): 90}
    for (c, t), n in cross.items():
        cells.cell(f"cross|{c}|{t}", n, unit=hidden)
    cells.cell("total", sum(cross.values()), unit=None)
    cells.relation("total", [f"cross|{c}|{t}" for c, t in cross])
    for group, members in (("small", ["small"]), ("large", ["large"])):
        unit = cells.unit(("cohort", group, "rates"))
        cells.cell(f"class|{group}", sum(n for (c, _), n in cross.items() if c in members),
                   unit=unit)
        cells.relation(f"class|{group}", [f"cross|{c}|{t}" for c, t in cross if c == group])
    for (c, t), n in cross.items():
        small_base = n < 60
        unit = cells.unit(("cohort", t, "rates"), primary=small_base)
        cells.cell(f"type|{t}", n, unit=unit, need=1.0 if small_base else 0.0)
        cells.relation(f"type|{t}", [f"cross|{c}|{t}"])
    return cells


def test_nested_breakdowns_give_back_a_withheld_type_and_are_then_protected():
    cells = nested_cohort()
    primary_only(cells)
    assert exposed_keys(cells) == ["type|juvenile"]  # 210 - 113 - 78
    secondary.protect(cells, SECRET)
    assert exposed_keys(cells) == []
    assert cells.units[cells.unit_index[("cohort", "juvenile", "rates")]].withheld


def test_the_provisional_month_of_yesterday_gives_back_todays_day():
    """Day 1 = 22 published with the month so far (22); today day 2 = 4 is withheld and
    so is day 1: the month's 26 minus yesterday's 22 would be 4."""
    cells = facility_month([22, 4], month_published=True)
    day1 = cells.index["day|F|1"]
    cells.units[cells.cell_unit[day1]].withheld = True  # the old rule's secondary
    primary_only_plus = [u.primary or u.withheld for u in cells.units]
    for unit, w in zip(cells.units, primary_only_plus, strict=True):
        unit.withheld = w
    assert exposed_keys(cells) == []  # blind to the earlier publication: looks safe
    cells.earlier_fact("month|F|m|day1", 22, ["day|F|1"])  # yesterday's publication
    cells.known.add(day1)  # and its day 1
    assert exposed_keys(cells) == ["day|F|2"]
    secondary.protect(cells, SECRET)
    assert exposed_keys(cells) == []
    assert cells.units[cells.cell_unit[cells.index["month|F|m"]]].withheld


def test_a_correction_to_a_small_count_is_protected_against_the_earlier_value():
    """A day published as 5 is corrected to 4: the month moves by exactly 1."""
    cells = facility_month([5, 30, 31], month_published=True)
    cells.values[cells.index["day|F|1"]] = 4.0  # today's value
    cells.values[cells.index["month|F|m"]] = 65.0
    unit = cells.cell_unit[cells.index["day|F|1"]]
    cells.units[unit].primary = True
    cells.needs[cells.index["day|F|1"]] = PI
    cells.earlier_fact("month|F|m|v1", 66, ["day|F|2", "day|F|3"], constant=5.0)
    primary_only(cells)
    assert exposed_keys(cells) == ["day|F|1"]
    secondary.protect(cells, SECRET)
    assert exposed_keys(cells) == []


def test_a_relation_that_does_not_hold_is_not_given_to_the_attacker():
    cells = facility_month([10, 20])
    assert not cells.relation("month|F|m", ["day|F|1"])  # 30 != 10
    assert cells.rejected_relations == 1


def test_the_secondary_is_the_cheapest_cover_and_not_a_published_rule():
    """Among equal candidates the choice follows a secret key, not the key order: the
    attacker cannot tell which published-looking value was taken."""
    chosen = set()
    for key in (b"a" * 32, b"b" * 32, b"c" * 32, b"d" * 32, b"e" * 32, b"f" * 32):
        cells = facility_month([3, 20, 20, 20, 20, 20, 90])
        secondary.protect(cells, key)
        withheld = [cells.keys[i] for i in np.flatnonzero(cells.withheld_cells())]
        assert "day|F|7" not in withheld  # the costly 90 is never the choice
        assert len(withheld) == 2
        chosen.add(tuple(withheld))
    assert len(chosen) > 1


@pytest.mark.parametrize("missing, expected", [(5.0, [1]), (12.0, [0, 1]), (100.0, None)])
def test_choose_solves_the_covering_programme(missing, expected):
    picked = secondary.choose(np.array([7.0, 6.0]), np.array([8.0, 7.0]), missing)
    assert picked == expected


def test_a_correction_of_a_month_already_published_climbs_the_hierarchy():
    """Every other day of the month was published before: only withholding the month,
    its national class and the national total keeps the corrected day (now 3) open."""
    cells = facility_month([3, 30, 31])
    day = cells.index["day|F|1"]
    cells.known.update({cells.index["day|F|2"], cells.index["day|F|3"]})
    small = cells.unit(("national", "small", "population"))
    medium = cells.unit(("national", "medium", "population"))
    total = cells.unit(("national", "all", "population"))
    cells.cell("national|small", 64 + 900, unit=small)
    cells.relation("national|small", ["month|F|m"], constant=900)
    cells.cell("national|medium", 5000, unit=medium)
    cells.cell("national|all", 5964, unit=total)
    cells.relation("national|all", ["national|small", "national|medium"])
    primary_only(cells)
    assert exposed_keys(cells) == ["day|F|1"]
    outcome = secondary.protect(cells, SECRET)
    assert exposed_keys(cells) == [] and outcome.unprotectable == []
    withheld = {cells.keys[i] for i in np.flatnonzero(cells.withheld_cells())}
    assert {"month|F|m", "national|small"} <= withheld
    assert {"national|all", "national|medium"} & withheld
    assert audit.intervals(cells)[day].width >= PI


def _exact_interval(cells: LinkedCells, c: int) -> tuple[float, float]:
    """An independent attacker: scipy's linprog over every relation at once."""
    from scipy.optimize import linprog

    unknown = audit.unknown_cells(cells)
    variables = [i for i in range(len(cells.keys)) if unknown[i]]
    col = {v: j for j, v in enumerate(variables)}
    a_eq, b_eq = [], []
    for t, parts, constant in cells.relations:
        row, rhs = [0.0] * len(variables), -constant
        for x, sign in ((t, -1.0), *((p, 1.0) for p in parts)):
            if unknown[x]:
                row[col[x]] += sign
            else:
                rhs -= sign * cells.values[x]
        a_eq.append(row)
        b_eq.append(rhs)
    ends = []
    for sign in (1.0, -1.0):
        objective = [0.0] * len(variables)
        objective[col[c]] = sign
        res = linprog(objective, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
        ends.append(sign * res.fun if res.status == 0 else -sign * np.inf)
    return ends[0], ends[1]


@pytest.mark.parametrize("seed", range(40))
def test_the_audit_agrees_with_an_independent_lp_on_random_nested_tables(seed):
    """Facility cells in a class total and in an overlapping subset total (as 'small'
    and 'small_optimal'), some withheld: the audit's shortcuts (closed forms, twins,
    solutions seen) never call a cell protected that the full LP pins."""
    rng = np.random.default_rng(seed)
    cells = LinkedCells()
    n = int(rng.integers(3, 9))
    values = rng.integers(0, 30, n).astype(float)
    keys = []
    for i, v in enumerate(values):
        withheld = bool(rng.random() < 0.5)
        unit = cells.unit(("f", i, "x"), primary=withheld)
        need = PI if 0 < v < 5 else (1.0 if withheld else 0.0)
        cells.cell(f"f{i}", v, unit=unit, need=need)
        keys.append(f"f{i}")
    subset = [k for k in keys if rng.random() < 0.6]
    cells.cell("class", values.sum(), unit=cells.unit(("class",),
                                                      primary=bool(rng.random() < 0.3)))
    cells.relation("class", keys)
    if subset:
        cells.cell("subset", sum(cells.values[cells.index[k]] for k in subset),
                   unit=cells.unit(("subset",)))
        cells.relation("subset", subset)
    primary_only(cells)
    found = audit.intervals(cells)
    for c, iv in found.items():
        if not audit.unknown_cells(cells)[c]:
            continue
        low, high = _exact_interval(cells, c)
        assert iv.low >= low - 1e-6 and iv.high <= high + 1e-6, (cells.keys[c], iv, low, high)
        exposed_exact = high - low + audit.EPS < cells.needs[c]
        exposed_audit = iv.width + audit.EPS < cells.needs[c]
        assert exposed_exact == exposed_audit, (cells.keys[c], iv, low, high)


def test_a_unit_costs_the_information_of_the_units_withheld_with_it():
    """A cohort's size takes its rates with it: choosing it loses both, so its cost is
    both (and a dependent already withheld costs nothing more)."""
    cells = LinkedCells()
    size = cells.unit(("c", "2020", "size"))
    rates = cells.unit(("c", "2020", "rates"))
    frequency = cells.unit(("c", "2020", "frequency"))
    cells.require(rates, size)
    cells.require(frequency, rates)
    cells.cell("size", 40, unit=size)
    cells.cell("reoffenders", 12, unit=rates)
    cost = secondary.unit_costs(cells, SECRET)
    jitter = 1.05
    assert 41 + 13 + 1 <= cost[size] < (41 + 13 + 1) * jitter
    assert 13 + 1 <= cost[rates] < (13 + 1) * jitter
    assert 1 <= cost[frequency] < jitter
    cells.units[rates].withheld = True
    cost = secondary.unit_costs(cells, SECRET)
    assert 41 <= cost[size] < 41 * jitter  # its rates are withheld anyway
