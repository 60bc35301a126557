"""The staff and regime rates in the disclosure step (linked.regime): a participation
rate times its base is a person count, and the national row is the sum of its
facility-months. Built from tiny warehouse tables in DuckDB, audited as the attacker."""

from __future__ import annotations

import duckdb
import pytest

from penstat.publication.disclosure import audit, ledger, linked, secondary
from penstat.publication.disclosure.cells import LinkedCells
from penstat.publication.disclosure.ledger import PUBLISHED_CLASSES
from tests.unit.publication.test_disclosure_ledger import ledger_tables, published_ledger

T = linked.Thresholds(min_person_count=5, min_rate_denominator=30,
                      min_recidivism_cohort=60, protection_interval=5.0, min_interval=1.0)
SECRET = b"s" * 32
FACILITY_COLUMNS = ("in_paid_work", "avg_population", "in_education", "with_digital_contact",
                    "releases_with_plan", "releases_total", "trained_last_24m",
                    "headcount_with_training_reported")


def warehouse(facility_months: list[tuple[str, str, str, float, float]],
              ledger: list[tuple] = ()) -> duckdb.DuckDBPyConnection:
    """(facility, 'YYYY-MM', class, in_paid_work, avg_population) rows; the national
    rows are their sums by class and in all, as int_national_month_kpis computes them.
    `ledger`: (key, value published or None[, the value withheld then]) rows."""
    con = duckdb.connect()
    con.execute("ATTACH ':memory:' AS wh")
    con.execute("CREATE SCHEMA wh.intermediate")
    nulls = ", ".join(f"NULL::DOUBLE AS {c}" for c in FACILITY_COLUMNS[2:])
    con.execute(f"""
        CREATE TABLE wh.intermediate.int_facility_month_kpis AS
        SELECT f AS facility_id, (m || '-01')::DATE AS month, c AS scale_class,
               false AS is_small_optimal, w AS in_paid_work, p AS avg_population, {nulls}
        FROM (VALUES {", ".join(str(r) for r in facility_months)}) t(f, m, c, w, p)""")
    national = ", ".join(f"NULL::DOUBLE AS {c}" for c in (
        "in_education", "education_avg_population", "with_digital_contact",
        "digital_avg_population", "releases_with_plan", "releases_total"))
    con.execute(f"""
        CREATE TABLE wh.intermediate.int_national_month_kpis AS
        SELECT month, scale_class, sum(in_paid_work) AS in_paid_work,
               sum(avg_population) AS work_avg_population, {national}
        FROM (SELECT *, scale_class AS g FROM wh.intermediate.int_facility_month_kpis
              UNION ALL SELECT *, 'all' FROM wh.intermediate.int_facility_month_kpis)
             t(facility_id, month, c, o, in_paid_work, avg_population, a, b, d, e, f, h,
               scale_class)
        GROUP BY ALL""")
    ledger_tables(con, ledger)
    return con


def build(con: duckdb.DuckDBPyConnection) -> LinkedCells:
    cells = LinkedCells()
    linked.regime(cells, con, T)
    linked.withheld_before(cells, con)
    return cells


def exposed(cells: LinkedCells) -> list[str]:
    return sorted(cells.keys[iv.cell] for iv in audit.exposed(cells, audit.intervals(cells)))


MONTH = [("F1", "2024-03", "small", 3.0, 40.0), ("F2", "2024-03", "small", 20.0, 45.0),
         ("F3", "2024-03", "small", 25.0, 60.0), ("F4", "2024-03", "large", 300.0, 900.0)]


def test_a_small_count_behind_a_rate_is_given_back_by_its_class_and_then_protected():
    cells = build(warehouse(MONTH))
    for unit in cells.units:
        unit.withheld = unit.primary
    # 3 people working in F1: 48 in the small class minus the published 20 and 25
    assert exposed(cells) == ["regime|work|F1|2024-03"]
    outcome = secondary.protect(cells, SECRET)
    assert exposed(cells) == [] and outcome.unprotectable == []
    assert outcome.secondary_units >= 1
    iv = audit.intervals(cells)[cells.index["regime|work|F1|2024-03"]]
    assert iv.low <= 3 <= iv.high and iv.width >= T.protection_interval


def test_the_complement_of_a_count_is_a_person_count_too():
    """38 of 40 in work: the 2 not working are a count of 1-4."""
    rows = [("F1", "2024-03", "small", 38.0, 40.0), *MONTH[1:]]
    cells = build(warehouse(rows))
    unit = cells.units[cells.unit_index[("mart_facility_monthly", ("F1", "2024-03-01"),
                                         "work")]]
    assert unit.primary
    assert cells.needs[cells.index["regime|work|F1|2024-03"]] == T.protection_interval


def test_a_month_with_nothing_to_withhold_is_not_built():
    rows = [(f, "2024-04", c, w * 2, p) for f, _, c, w, p in MONTH]  # 6 working: not small
    cells = build(warehouse(rows))
    assert cells.keys == []


def test_a_count_withheld_before_stays_withheld_and_its_month_is_built():
    rows = [(f, "2024-04", c, w * 2, p) for f, _, c, w, p in MONTH]
    cells = build(warehouse(rows, ledger=[("regime|work|F2|2024-04", None)]))
    unit = cells.units[cells.unit_index[("mart_facility_monthly", ("F2", "2024-04-01"),
                                         "work")]]
    assert unit.withheld and not unit.primary
    secondary.protect(cells, SECRET)
    assert exposed(cells) == []


@pytest.mark.parametrize("base", [20.0, 29.0])
def test_a_rate_on_fewer_than_30_persons_is_withheld(base):
    primary, need = linked._rate_primary(10.0, base, T)
    assert primary and need == T.min_interval
    assert linked._rate_primary(10.0, 30.0, T) == (False, 0.0)


def test_a_month_as_published_before_is_not_built_again_and_keeps_its_pattern():
    """The month of the first test, published with F1 and F2 withheld: the next
    publication with the same values builds nothing and withholds the same two."""
    published = [(f"regime|work|{f}|2024-03", None if f in ("F1", "F2") else w)
                 for f, _, _, w, _ in MONTH]
    published += [("regimenat|work|2024-03|small", 48.0), ("regimenat|work|2024-03|large",
                                                           300.0),
                  ("regimenat|work|2024-03|all", 348.0)]
    cells = build(warehouse(MONTH, ledger=published))
    assert cells.keys == []
    withheld = {u.key[1][0] for u in cells.units if u.withheld}
    assert withheld == {"F1", "F2"}
    # one value changed since (a revised delivery): the month is built again
    changed = [("F3", "2024-03", "small", 26.0, 60.0) if r[0] == "F3" else r for r in MONTH]
    cells = build(warehouse(changed, ledger=published))
    assert "regime|work|F1|2024-03" in cells.index
    secondary.protect(cells, SECRET)
    assert exposed(cells) == []


# The last publication of March: F1 (3) and F2 (20) withheld, F3 25 and F5 40 published,
# the small class 88 and all 388.
EARLIER = [("regime|work|F1|2024-03", None), ("regime|work|F2|2024-03", None),
           ("regime|work|F3|2024-03", 25.0), ("regime|work|F5|2024-03", 40.0),
           ("regime|work|F4|2024-03", 300.0), ("regimenat|work|2024-03|small", 88.0),
           ("regimenat|work|2024-03|large", 300.0), ("regimenat|work|2024-03|all", 388.0)]


@pytest.mark.parametrize("total_moves", [True, False])
def test_a_count_revised_into_a_small_one_is_not_the_difference_of_two_sums(total_moves):
    """F5's 40 is revised to 2. Today the small class is F1 + F2 + F5 + 25, and the
    last publication's small row said F1 + F2 = 88 - 25 - 40 = 23: F5 = today's sum -
    25 - 23. With F3 revised the other way (25 -> 63) the small row does not even move,
    and the difference is still there."""
    f3 = 25.0 if total_moves else 63.0
    month = [("F1", "2024-03", "small", 3.0, 40.0), ("F2", "2024-03", "small", 20.0, 45.0),
             ("F3", "2024-03", "small", f3, 60.0), ("F5", "2024-03", "small", 2.0, 80.0),
             ("F4", "2024-03", "large", 300.0, 900.0)]
    cells = build(warehouse(month, EARLIER))
    for unit in cells.units:
        unit.withheld = unit.withheld or unit.primary
    # F1 and F2 withheld again, F5 primary: only the earlier sum gives F5 back
    assert "regime|work|F5|2024-03" in exposed(cells)
    assert "earlier|regimenat|work|2024-03|small" in cells.index
    outcome = secondary.protect(cells, SECRET)
    assert exposed(cells) == [] and outcome.unprotectable == []
    iv = audit.intervals(cells)[cells.index["regime|work|F5|2024-03"]]
    assert iv.low <= 2 <= iv.high and iv.width >= T.protection_interval


def test_an_earlier_sum_that_no_longer_holds_is_not_a_fact():
    """F1 was withheld and has been revised since (3 -> 4), and the ledger, written
    before it kept the values withheld, does not know F1's 3: the last publication's
    small row is a sum of other values than today's, so it is not put to the attacker."""
    month = [("F1", "2024-03", "small", 4.0, 40.0), ("F2", "2024-03", "small", 20.0, 45.0),
             ("F3", "2024-03", "small", 25.0, 60.0), ("F5", "2024-03", "small", 2.0, 80.0),
             ("F4", "2024-03", "large", 300.0, 900.0)]
    cells = build(warehouse(month, EARLIER))
    assert "earlier|regimenat|work|2024-03|small" in cells.index  # defined ...
    small = cells.index["earlier|regimenat|work|2024-03|small"]
    assert all(total != small for total, _, _ in cells.relations)  # ... but not kept
    assert cells.rejected_relations >= 1


@pytest.mark.parametrize("x_today", ["gone", "large"])
def test_the_earlier_sum_counts_what_was_published_then_in_its_class_then(x_today):
    """X (40) was published in the small class then; today it has no row, or it is in
    the large class. F3 is revised from 25 to 2, and G (large, withheld) from 4 to 3,
    so the 'all' row then is a sum of other values than today's. The small row then
    still says F1 + F2 = 88 - 25 - 40 = 23, and today's small sum gives F3 back: the
    fact must be built from the ledger (X's 40) and the class X had then (the
    publication's), not from today's rows."""
    month = [("F1", "2024-03", "small", 3.0, 40.0), ("F2", "2024-03", "small", 20.0, 45.0),
             ("F3", "2024-03", "small", 2.0, 60.0), ("G", "2024-03", "large", 3.0, 900.0),
             ("F4", "2024-03", "large", 300.0, 900.0)]
    if x_today == "large":
        month.append(("X", "2024-03", "large", 40.0, 80.0))
    earlier = [("regime|work|F1|2024-03", None), ("regime|work|F2|2024-03", None),
               ("regime|work|F3|2024-03", 25.0), ("regime|work|X|2024-03", 40.0),
               ("regime|work|G|2024-03", None), ("regime|work|F4|2024-03", 300.0),
               ("regimenat|work|2024-03|small", 88.0),
               ("regimenat|work|2024-03|large", 304.0), ("regimenat|work|2024-03|all", 392.0)]
    con = warehouse(month, earlier)
    con.execute(f"INSERT INTO {PUBLISHED_CLASSES} SELECT * FROM (VALUES "
                "('F1', '2024-03', 'small'), ('F2', '2024-03', 'small'), "
                "('F3', '2024-03', 'small'), ('X', '2024-03', 'small'), "
                "('G', '2024-03', 'large'), ('F4', '2024-03', 'large')) "
                "t(facility_id, m, scale_class)")
    cells = build(con)
    for unit in cells.units:
        unit.withheld = unit.withheld or unit.primary
    assert "regime|work|F3|2024-03" in exposed(cells)
    outcome = secondary.protect(cells, SECRET)
    assert exposed(cells) == [] and outcome.unprotectable == []


# EARLIER, with the values withheld then kept by the ledger (owner-only): F1 3, F2 20
EARLIER_KEPT = [(key, value, {"regime|work|F1|2024-03": 3.0,
                              "regime|work|F2|2024-03": 20.0}.get(key))
                for key, value in EARLIER]


def test_an_earlier_sum_names_the_value_then_of_a_count_revised_while_withheld():
    """F1 was withheld (3) and is revised while withheld (4). The last publication's
    small row still says F1 then + F2 = 88 - 25 - 40 = 23, a fact the attacker keeps:
    F1's 3 is an unknown of its own, so F2 is at most 23 (today's sums alone: 26)."""
    month = [("F1", "2024-03", "small", 4.0, 40.0), ("F2", "2024-03", "small", 20.0, 45.0),
             ("F3", "2024-03", "small", 25.0, 60.0), ("F5", "2024-03", "small", 2.0, 80.0),
             ("F4", "2024-03", "large", 300.0, 900.0)]
    cells = build(warehouse(month, EARLIER_KEPT))
    then = cells.index["then|regime|work|F1|2024-03|1"]
    assert cells.values[then] == 3.0 and cells.needs[then] == T.protection_interval
    assert cells.cell_unit[then] == cells.unit_index[linked.HIDDEN]
    small = cells.index["earlier|regimenat|work|2024-03|small"]
    fact = next(parts for total, parts, _ in cells.relations if total == small)
    assert {cells.keys[p] for p in fact} == {"then|regime|work|F1|2024-03|1",
                                             "regime|work|F2|2024-03"}
    for unit in cells.units:
        unit.withheld = unit.withheld or unit.primary
    f2 = cells.index["regime|work|F2|2024-03"]
    iv = audit.intervals(cells, targets=[f2])[f2]
    assert iv.low <= 20 <= iv.high and abs(iv.high - 23.0) <= 1e-6
    secondary.protect(cells, SECRET)
    assert exposed(cells) == []


def test_a_count_withheld_then_stays_protected_when_revised_and_moved():
    """F1 was withheld (3) in the small class; it is revised (4) and moves to the large
    class. Today's small row is F2 + 25 + 40: F2 (withheld, no protection of its own) is
    given back, and with the small row then, F1 then = 23 - F2 = 3: a person count of
    the last publication's data. The audit must see it and protect it."""
    month = [("F1", "2024-03", "large", 4.0, 40.0), ("F2", "2024-03", "small", 20.0, 45.0),
             ("F3", "2024-03", "small", 25.0, 60.0), ("F5", "2024-03", "small", 40.0, 80.0),
             ("F4", "2024-03", "large", 300.0, 900.0)]
    con = warehouse(month, EARLIER_KEPT)
    con.execute(f"INSERT INTO {PUBLISHED_CLASSES} SELECT * FROM (VALUES "
                "('F1', '2024-03', 'small'), ('F2', '2024-03', 'small'), "
                "('F3', '2024-03', 'small'), ('F5', '2024-03', 'small'), "
                "('F4', '2024-03', 'large')) t(facility_id, m, scale_class)")
    cells = build(con)
    for unit in cells.units:
        unit.withheld = unit.withheld or unit.primary
    assert "then|regime|work|F1|2024-03|1" in exposed(cells)
    outcome = secondary.protect(cells, SECRET)
    assert exposed(cells) == [] and outcome.unprotectable == []
    then = cells.index["then|regime|work|F1|2024-03|1"]
    iv = audit.intervals(cells)[then]
    assert iv.low <= 3 <= iv.high and iv.width >= T.protection_interval


def test_a_count_withheld_then_and_unchanged_is_todays_unknown():
    """F2 withheld then with today's value (20): the fact names today's cell, no value
    of then is made."""
    month = [("F1", "2024-03", "small", 3.0, 40.0), ("F2", "2024-03", "small", 20.0, 45.0),
             ("F3", "2024-03", "small", 25.0, 60.0), ("F5", "2024-03", "small", 2.0, 80.0),
             ("F4", "2024-03", "large", 300.0, 900.0)]
    cells = build(warehouse(month, EARLIER_KEPT))
    assert not [k for k in cells.keys if k.startswith(linked.THEN)]
    assert "regime|work|F5|2024-03" in exposed(_primary(cells))


def _primary(cells: LinkedCells) -> LinkedCells:
    for unit in cells.units:
        unit.withheld = unit.withheld or unit.primary
    return cells


def _f1_revised(rows_withheld: bool) -> tuple[list[tuple], list[tuple]]:
    """Two vintages: EARLIER_KEPT, then F1 revised to 4 while withheld, with the small and
    all rows withheld (89, 389) or published."""
    v2 = [("regime|work|F1|2024-03", None, 4.0) if key == "regime|work|F1|2024-03"
          else (key, *((None, total) if rows_withheld else (total, None)))
          if (total := {"regimenat|work|2024-03|small": 89.0,
                        "regimenat|work|2024-03|all": 389.0}.get(key)) is not None
          else (key, value, withheld) for key, value, withheld in EARLIER_KEPT]
    return EARLIER_KEPT, v2


def test_a_national_row_withheld_since_is_still_a_fact_as_it_was_published(tmp_path):
    """Vintage 1 published the small row (88) with F1 (3) and F2 (20) withheld; vintage 2
    revised F1 to 4 and withheld the small row. Today F5 is revised to 2. The small row
    of vintage 1 is superseded in the ledger, not forgotten: F1 then + F2 = 88 - 25 -
    40 = 23 is still a fact (F1 then an unknown of its own, F5 at its value then)."""
    paths = published_ledger(tmp_path, *_f1_revised(rows_withheld=True))
    month = [("F1", "2024-03", "small", 4.0, 40.0), ("F2", "2024-03", "small", 20.0, 45.0),
             ("F3", "2024-03", "small", 25.0, 60.0), ("F5", "2024-03", "small", 2.0, 80.0),
             ("F4", "2024-03", "large", 300.0, 900.0)]
    con = warehouse(month)
    ledger.read(con, paths)
    cells = _primary(build(con))
    fact = cells.index["earlier|regimenat|work|2024-03|small|v1"]
    parts = next(p for total, p, _ in cells.relations if total == fact)
    assert {cells.keys[p] for p in parts} == {"then|regime|work|F1|2024-03|1",
                                              "regime|work|F2|2024-03"}
    f2 = cells.index["regime|work|F2|2024-03"]
    assert abs(audit.intervals(cells, targets=[f2])[f2].high - 23.0) <= 1e-6
    secondary.protect(cells, SECRET)
    assert exposed(cells) == []



def test_a_count_withheld_for_its_complement_keeps_that_protection_then():
    """F1: 37 of 40 in work then (3 not working: withheld for the complement), revised to
    36 and moved to the large class. Its value then (37) is not a count of 1..4, but
    the protection it had is kept (the ledger's withheld_need): once today's small row
    gives F2 back, the small row then pins F1's 37, and the audit must protect it."""
    then = {"regime|work|F1|2024-03": (37.0, T.protection_interval),
            "regime|work|F2|2024-03": (20.0, 0.0)}
    rows = [(k, 122.0 if k.endswith("small") else 422.0 if k.endswith("all") else v,
             *then.get(k, (None, None))) for k, v in EARLIER]
    month = [("F1", "2024-03", "large", 36.0, 40.0), ("F2", "2024-03", "small", 20.0, 45.0),
             ("F3", "2024-03", "small", 25.0, 60.0), ("F5", "2024-03", "small", 40.0, 80.0),
             ("F4", "2024-03", "large", 300.0, 900.0)]
    con = warehouse(month, rows)
    con.execute(f"INSERT INTO {PUBLISHED_CLASSES} VALUES ('F1', '2024-03', 'small'), "
                "('F2', '2024-03', 'small'), ('F3', '2024-03', 'small'), "
                "('F5', '2024-03', 'small'), ('F4', '2024-03', 'large')")
    cells = _primary(build(con))
    then_f1 = cells.index["then|regime|work|F1|2024-03|1"]
    assert cells.needs[then_f1] == T.protection_interval
    assert "then|regime|work|F1|2024-03|1" in exposed(cells)
    secondary.protect(cells, SECRET)
    assert exposed(cells) == []


def test_a_count_back_to_its_value_then_after_another_is_named_in_the_sums_of_then(
        tmp_path):
    """F1 withheld at 3 (vintage 1), revised to 4 (vintage 2), back to 3 today: the
    small row of each vintage names F1 as it was then, none is dropped."""
    paths = published_ledger(tmp_path, *_f1_revised(rows_withheld=False))
    month = [("F1", "2024-03", "small", 3.0, 40.0), ("F2", "2024-03", "small", 20.0, 45.0),
             ("F3", "2024-03", "small", 25.0, 60.0), ("F5", "2024-03", "small", 2.0, 80.0),
             ("F4", "2024-03", "large", 300.0, 900.0)]
    con = warehouse(month)
    ledger.read(con, paths)
    cells = build(con)
    facts = {cells.keys[total]: {cells.keys[p] for p in parts}
             for total, parts, _ in cells.relations if cells.keys[total].startswith("earlier|")}
    assert facts["earlier|regimenat|work|2024-03|small|v1"] == {
        "then|regime|work|F1|2024-03|1", "regime|work|F2|2024-03"}
    assert facts["earlier|regimenat|work|2024-03|small"] == {
        "then|regime|work|F1|2024-03|2", "regime|work|F2|2024-03"}


def test_the_sql_rate_rule_is_the_python_one():
    """rate_primary_sql / rate_need_sql (the ledger's staging, the months built) decide as
    _rate_primary on every count and base."""
    grid = [(float(c), float(b)) for b in range(0, 45) for c in range(0, b + 1)]
    con = duckdb.connect()
    got = con.execute(
        f"SELECT {linked.rate_primary_sql('c', 'b', T)}, {linked.rate_need_sql('c', 'b', T)} "
        f"FROM (VALUES {', '.join(map(str, grid))}) t(c, b) ORDER BY b, c").fetchall()
    want = [linked._rate_primary(c, b, T) for c, b in sorted(grid, key=lambda r: (r[1], r[0]))]
    assert [(bool(p), float(n)) for p, n in got] == want
