"""The population family (linked.population) against the facts of earlier publications,
built from tiny warehouse tables in DuckDB and audited as the attacker: a facility-day
withheld then and revised while withheld keeps its value then as an unknown of its own."""

from __future__ import annotations

import duckdb

from penstat.publication.disclosure import audit, ledger, linked, secondary
from penstat.publication.disclosure.cells import LinkedCells
from tests.unit.publication.test_disclosure_ledger import ledger_tables, published_ledger

T = linked.Thresholds(min_person_count=5, min_rate_denominator=30,
                      min_recidivism_cohort=60, protection_interval=5.0, min_interval=1.0)
SECRET = b"s" * 32
LAST = "2024-03-03"


def warehouse(days: list[tuple[str, str, str, float]], ledger: list[tuple]
              ) -> duckdb.DuckDBPyConnection:
    """(facility, census date, class ('': none), population) rows of March 2024; the month
    and national rows are their sums, as the intermediate models compute them (the
    class rows without the days of no class, 'all' with them)."""
    con = duckdb.connect()
    con.execute("ATTACH ':memory:' AS wh")
    con.execute("CREATE SCHEMA wh.intermediate")
    con.execute(f"""
        CREATE TABLE wh.intermediate.int_facility_days AS
        SELECT f AS facility_id, DATE '2024-03-01' AS month, d::DATE AS census_date,
               nullif(c, '') AS scale_class, p::INTEGER AS population, 50.0::DOUBLE AS density,
               false AS is_small_optimal
        FROM (VALUES {", ".join(str(r) for r in days)}) t(f, d, c, p)""")
    con.execute("""
        CREATE TABLE wh.intermediate.int_facility_month_kpis AS
        SELECT facility_id, month, sum(population) AS population_days,
               count(*) AS days_reported, avg(population) AS average_daily_population
        FROM wh.intermediate.int_facility_days GROUP BY ALL""")
    con.execute("""
        CREATE TABLE wh.intermediate.int_national_month_kpis AS
        SELECT month, g AS scale_class, count(DISTINCT census_date) AS census_days,
               sum(population) / count(DISTINCT census_date) AS average_daily_population,
               0.0 AS avg_small_scale_population
        FROM (SELECT *, scale_class AS g FROM wh.intermediate.int_facility_days
              WHERE scale_class IS NOT NULL
              UNION ALL SELECT *, 'all' FROM wh.intermediate.int_facility_days)
        GROUP BY ALL""")
    ledger_tables(con, ledger)
    return con


def build(con: duckdb.DuckDBPyConnection) -> LinkedCells:
    cells = LinkedCells()
    linked.population(cells, con, T)
    linked.known_cells(cells, con)
    linked.withheld_before(cells, con)
    for unit in cells.units:
        unit.withheld = unit.withheld or unit.primary
    cells.close_requirements()
    return cells


def exposed(cells: LinkedCells) -> list[str]:
    return sorted(cells.keys[iv.cell] for iv in audit.exposed(cells, audit.intervals(cells)))


def days(f1: float, f2: float = 20.0) -> list[tuple[str, str, str, float]]:
    """F (small): days 1 and 2 withheld then, day 3 published; G (large): published."""
    return [("F", "2024-03-01", "small", f1), ("F", "2024-03-02", "small", f2),
            ("F", LAST, "small", 25.0),
            *[("G", f"2024-03-0{d}", "large", 300.0) for d in (1, 2, 3)]]


# The last publication: F's days 1 (3) and 2 (20) withheld, the ledger keeping their
# values (owner-only); day 3 and F's month (48 person-days) published.
EARLIER = [("day|F|2024-03-01", None, 3.0), ("day|F|2024-03-02", None, 20.0),
           (f"day|F|{LAST}", 25.0), *[(f"day|G|2024-03-0{d}", 300.0) for d in (1, 2, 3)],
           (f"month|F|2024-03|{LAST}", 48.0), (f"month|G|2024-03|{LAST}", 900.0),
           (f"national|2024-03|small|{LAST}", 48.0),
           (f"national|2024-03|large|{LAST}", 900.0), (f"national|2024-03|all|{LAST}", 948.0)]


def _fact(cells: LinkedCells, key: str) -> set[str]:
    """The unknowns of the fact `key` (its parts the attacker does not know)."""
    total = cells.index[f"earlier|{key}"]
    return next({cells.keys[p] for p in parts if p not in cells.known}
                for t, parts, _ in cells.relations if t == total)


def test_a_day_revised_while_withheld_enters_the_sums_of_then_with_its_value_then():
    """Day 1 is revised (3 -> 4) while withheld. The month then said day 1 then + day 2
    = 48 - 25 = 23: a fact the attacker keeps, so day 2 is at most 23 (today's month
    alone: 24), and day 1's 3 is protected as the count it was."""
    cells = build(warehouse(days(4.0), EARLIER))
    then = cells.index["then|day|F|2024-03-01|1"]
    assert cells.values[then] == 3.0 and cells.needs[then] == T.protection_interval
    for key in (f"month|F|2024-03|{LAST}", f"national|2024-03|small|{LAST}"):
        assert _fact(cells, key) == {"then|day|F|2024-03-01|1", "day|F|2024-03-02"}, key
    day2 = cells.index["day|F|2024-03-02"]
    iv = audit.intervals(cells, targets=[day2])[day2]
    assert iv.low <= 20 <= iv.high and abs(iv.high - 23.0) <= 1e-6
    secondary.protect(cells, SECRET)
    assert exposed(cells) == []


def test_the_value_then_is_protected_when_todays_publication_would_pin_it():
    """Day 2 is revised as well (20 -> 30), and the fact of then stays true: day 1 then +
    day 2 then = 23. Today's month (59) and the published day 3 give day 1 + day 2 = 34.
    Nothing today pins day 1 then; with day 2 then revised too it is its own unknown:
    the values of then are two unknowns with one fact, never pinned."""
    cells = build(warehouse(days(4.0, 30.0), EARLIER))
    assert _fact(cells, f"month|F|2024-03|{LAST}") == {"then|day|F|2024-03-01|1",
                                                      "then|day|F|2024-03-02|1"}
    secondary.protect(cells, SECRET)
    assert exposed(cells) == []
    then = cells.index["then|day|F|2024-03-01|1"]
    iv = audit.intervals(cells)[then]
    assert iv.low <= 3 <= iv.high and iv.width >= T.protection_interval


def test_a_ledger_without_the_values_withheld_leaves_the_fact_out():
    """A ledger written before the values withheld were kept: day 1's value then is not
    known, the month then is a sum of other values than today's and is not a fact."""
    legacy = [row[:2] for row in EARLIER]
    cells = build(warehouse(days(4.0), legacy))
    assert not [k for k in cells.keys if k.startswith(linked.THEN)]
    month = cells.index[f"earlier|month|F|2024-03|{LAST}"]
    assert all(t != month for t, _, _ in cells.relations)
    assert cells.rejected_relations >= 1


def test_a_day_withheld_then_with_todays_value_is_todays_unknown():
    cells = build(warehouse(days(3.0), EARLIER))
    assert not [k for k in cells.keys if k.startswith(linked.THEN)]
    # nothing changed: today's cells are the ones published then (known), no fact needed
    assert f"earlier|month|F|2024-03|{LAST}" not in cells.index


def test_a_value_then_given_back_by_todays_sums_is_caught_and_protected():
    """Day 1 is revised (3 -> 4) and moves to the large class (a register revision).
    Today's small row is day 2 + day 3: day 2 (withheld again, no protection of its own)
    is given back, and with F's month then, day 1 then = 48 - 25 - day 2 = 3: a person
    count of the last publication's data. The audit must see it and protect it."""
    today = [("F", "2024-03-01", "large", 4.0), *days(4.0)[1:]]
    cells = build(warehouse(today, EARLIER))
    assert "then|day|F|2024-03-01|1" in exposed(cells)
    outcome = secondary.protect(cells, SECRET)
    assert exposed(cells) == [] and outcome.unprotectable == []
    then = cells.index["then|day|F|2024-03-01|1"]
    iv = audit.intervals(cells)[then]
    assert iv.low <= 3 <= iv.high and iv.width >= T.protection_interval


G_DAYS = [(f"day|G|2024-03-0{d}", 300.0) for d in (1, 2, 3)]


def test_an_older_provisional_sum_names_the_value_its_day_had_then(tmp_path):
    """Vintage 1 published F's month through day 2 (23) with days 1 (3) and 2 (20)
    withheld; vintage 2 revised day 1 to 4 (withheld) and published the month through
    day 3 (49). Today nothing changed since vintage 2, yet the sum of vintage 1 is still
    day 1 then + day 2 = 23: day 1 is taken as it was at vintage 1, not at the last."""
    paths = published_ledger(
        tmp_path,
        [("day|F|2024-03-01", None, 3.0), ("day|F|2024-03-02", None, 20.0),
         ("month|F|2024-03|2024-03-02", 23.0), *G_DAYS[:2]],
        [("day|F|2024-03-01", None, 4.0), ("day|F|2024-03-02", None, 20.0),
         (f"day|F|{LAST}", 25.0), (f"month|F|2024-03|{LAST}", 49.0), *G_DAYS])
    con = warehouse(days(4.0), [])
    ledger.read(con, paths)
    cells = build(con)
    assert _fact(cells, "month|F|2024-03|2024-03-02") == {"then|day|F|2024-03-01|1",
                                                          "day|F|2024-03-02"}
    assert cells.values[cells.index["then|day|F|2024-03-01|1"]] == 3.0
    secondary.protect(cells, SECRET)
    assert exposed(cells) == []


def test_a_sum_published_then_withheld_is_a_fact_as_it_waspublished_ledger(tmp_path):
    """Vintage 1 published F's month (48) with days 1 (3) and 2 (20) withheld; vintage 2
    revised day 1 to 4 and withheld the month. The ledger's current state of the month
    is 'withheld', but the 48 of vintage 1 is kept (superseded) and is still a fact."""
    paths = published_ledger(
        tmp_path,
        [("day|F|2024-03-01", None, 3.0), ("day|F|2024-03-02", None, 20.0),
         (f"day|F|{LAST}", 25.0), (f"month|F|2024-03|{LAST}", 48.0), *G_DAYS],
        [("day|F|2024-03-01", None, 4.0), ("day|F|2024-03-02", None, 20.0),
         (f"day|F|{LAST}", 25.0), (f"month|F|2024-03|{LAST}", None, 49.0), *G_DAYS])
    con = warehouse(days(4.0), [])
    ledger.read(con, paths)
    cells = build(con)
    assert _fact(cells, f"month|F|2024-03|{LAST}|v1") == {"then|day|F|2024-03-01|1",
                                                         "day|F|2024-03-02"}
    day2 = cells.index["day|F|2024-03-02"]
    assert abs(audit.intervals(cells, targets=[day2])[day2].high - 23.0) <= 1e-6


def test_a_sum_of_then_counts_a_reclassified_facility_in_its_class_then():
    """F (days 3 withheld, 20 and 25 published) was small in the last publication and is
    medium today (a register revision); M (medium: 30 withheld, 100 and 100 published)
    was the whole medium row then (230). Today's medium row is M + F, so M's day
    (pinned by the medium row then) gives F's 3 back. The medium row then is a fact
    only with F counted in its class then (small), as the publication had it."""
    today = [("F", "2024-03-01", "medium", 3.0), ("F", "2024-03-02", "medium", 20.0),
             ("F", LAST, "medium", 25.0), ("M", "2024-03-01", "medium", 30.0),
             ("M", "2024-03-02", "medium", 100.0), ("M", LAST, "medium", 100.0),
             *[("G", f"2024-03-0{d}", "large", 300.0) for d in (1, 2, 3)]]
    earlier = [("day|F|2024-03-01", None, 3.0), ("day|F|2024-03-02", 20.0),
               (f"day|F|{LAST}", 25.0), (f"month|F|2024-03|{LAST}", None, 48.0),
               ("day|M|2024-03-01", None, 30.0), ("day|M|2024-03-02", 100.0),
               (f"day|M|{LAST}", 100.0), (f"month|M|2024-03|{LAST}", None, 230.0),
               *G_DAYS, (f"month|G|2024-03|{LAST}", 900.0),
               (f"national|2024-03|small|{LAST}", None, 48.0),
               (f"national|2024-03|medium|{LAST}", 230.0),
               (f"national|2024-03|large|{LAST}", 900.0),
               (f"national|2024-03|all|{LAST}", None, 1178.0)]
    con = warehouse(today, earlier)
    con.execute(f"INSERT INTO {ledger.PUBLISHED_DAY_CLASSES} SELECT f, d::DATE, c FROM "
                "(VALUES ('F', '2024-03-01', 'small'), ('F', '2024-03-02', 'small'), "
                f"('F', '{LAST}', 'small'), ('M', '2024-03-01', 'medium'), "
                f"('M', '2024-03-02', 'medium'), ('M', '{LAST}', 'medium')) t(f, d, c)")
    cells = build(con)
    assert _fact(cells, f"national|2024-03|medium|{LAST}") == {"day|M|2024-03-01"}
    assert "day|F|2024-03-01" in exposed(cells)
    outcome = secondary.protect(cells, SECRET)
    assert exposed(cells) == [] and outcome.unprotectable == []


def test_a_facility_month_reclassified_since_is_read_day_by_day():
    """G (all published) had one day in the small class in the last publication (its
    month mostly large, as today): its days are read one by one, so that the sums of
    then can count that day in its class then."""
    con = warehouse(days(3.0), EARLIER)
    con.execute(f"INSERT INTO {ledger.PUBLISHED_DAY_CLASSES} VALUES "
                "('G', '2024-03-02', 'large'), ('G', '2024-03-03', 'large')")
    assert "day|G|2024-03-01" not in build(con).index  # nothing to protect in G
    con.execute(f"INSERT INTO {ledger.PUBLISHED_DAY_CLASSES} VALUES "
                "('G', '2024-03-01', 'small')")
    assert "day|G|2024-03-01" in build(con).index



def test_a_sum_of_then_with_todays_total_but_other_days_is_still_a_fact():
    """Day 1 (withheld, 3) is revised to 10 and moves to the large class; published day 3
    is corrected from 25 to 18: F's month is 48 again. The month of then is not today's
    month for all that (3 + 20 + 25, not 10 + 20 + 18): with today's small row (day 2 +
    day 3) it gives day 1's 3 back, so it is a fact, caught and protected."""
    today = [("F", "2024-03-01", "large", 10.0), ("F", "2024-03-02", "small", 20.0),
             ("F", LAST, "small", 18.0),
             *[("G", f"2024-03-0{d}", "large", 300.0) for d in (1, 2, 3)]]
    cells = build(warehouse(today, EARLIER))
    assert _fact(cells, f"month|F|2024-03|{LAST}") == {"then|day|F|2024-03-01|1",
                                                      "day|F|2024-03-02"}
    assert "then|day|F|2024-03-01|1" in exposed(cells)
    outcome = secondary.protect(cells, SECRET)
    assert exposed(cells) == [] and outcome.unprotectable == []


def test_a_sum_that_kept_its_total_while_its_days_changed_is_a_fact_of_each_vintage(
        tmp_path):
    """Vintage 1 published F's month (48: day 1 withheld at 3, day 2 withheld at 20);
    vintage 2 revised day 1 to 4 and day 2 to 19 (both withheld): the month stayed 48,
    the same state in the ledger. Its composition of vintage 1 is still a fact."""
    v1 = [("day|F|2024-03-01", None, 3.0), ("day|F|2024-03-02", None, 20.0),
          (f"day|F|{LAST}", 25.0), (f"month|F|2024-03|{LAST}", 48.0), *G_DAYS]
    v2 = [("day|F|2024-03-01", None, 4.0), ("day|F|2024-03-02", None, 19.0), *v1[2:]]
    paths = published_ledger(tmp_path, v1, v2)
    con = warehouse(days(4.0, 19.0), [])
    ledger.read(con, paths)
    cells = build(con)
    assert _fact(cells, f"month|F|2024-03|{LAST}|at1") == {"then|day|F|2024-03-01|1",
                                                          "then|day|F|2024-03-02|1"}
    assert f"earlier|month|F|2024-03|{LAST}" not in cells.index  # today's: known


def test_a_superseded_sum_with_todays_total_and_days_is_still_a_fact(tmp_path):
    """Vintage 1 published F's month (48, day 1 withheld at 3), vintage 2 revised day 1
    to 8 (53); today day 1 is 3 again and the month 48. The 48 of vintage 1 is not
    today's relation for the attacker (he cannot tell the value came back): a fact."""
    v1 = [("day|F|2024-03-01", None, 3.0), ("day|F|2024-03-02", None, 20.0),
          (f"day|F|{LAST}", 25.0), (f"month|F|2024-03|{LAST}", 48.0), *G_DAYS]
    v2 = [("day|F|2024-03-01", None, 8.0), *v1[1:3], (f"month|F|2024-03|{LAST}", 53.0),
          *G_DAYS]
    con = warehouse(days(3.0), [])
    ledger.read(con, published_ledger(tmp_path, v1, v2))
    cells = build(con)
    assert _fact(cells, f"month|F|2024-03|{LAST}|v1") == {"day|F|2024-03-01",
                                                         "day|F|2024-03-02"}


def test_a_national_sum_of_then_with_todays_total_but_swapped_days_is_a_fact():
    """F's day 1 (3, withheld) moves from small to large, K's day 1 (3, withheld) from
    large to small: both class totals are today's, but the small row then counted F's
    day, not K's. It is a fact (it says F's day = K's day), not today's relation."""
    today = [("F", "2024-03-01", "large", 3.0), ("F", "2024-03-02", "small", 20.0),
             ("F", LAST, "small", 25.0), ("K", "2024-03-01", "small", 3.0),
             ("K", "2024-03-02", "large", 300.0), ("K", LAST, "large", 300.0)]
    earlier = [("day|F|2024-03-01", None, 3.0), ("day|F|2024-03-02", 20.0),
               (f"day|F|{LAST}", 25.0), ("day|K|2024-03-01", None, 3.0),
               ("day|K|2024-03-02", 300.0), (f"day|K|{LAST}", 300.0),
               (f"national|2024-03|small|{LAST}", 48.0),
               (f"national|2024-03|large|{LAST}", 603.0)]
    con = warehouse(today, earlier)
    con.execute(f"INSERT INTO {ledger.PUBLISHED_DAY_CLASSES} SELECT f, d::DATE, c FROM "
                "(VALUES ('F', '2024-03-01', 'small'), ('F', '2024-03-02', 'small'), "
                f"('F', '{LAST}', 'small'), ('K', '2024-03-01', 'large'), "
                f"('K', '2024-03-02', 'large'), ('K', '{LAST}', 'large')) t(f, d, c)")
    cells = build(con)
    assert _fact(cells, f"national|2024-03|small|{LAST}") == {"day|F|2024-03-01"}
    assert _fact(cells, f"national|2024-03|large|{LAST}") == {"day|K|2024-03-01"}


def test_a_day_corrected_once_counts_as_it_was_without_being_read_day_by_day(tmp_path):
    """H (small, all published) had day 1 at 99 at vintage 1, corrected to 100 at
    vintage 2. H has nothing to protect, so its days are not read one by one; the small
    row and the all row of vintage 1 still count H's day as 99 and hold."""
    h = [("H", f"2024-03-0{d}", "small", 100.0) for d in (1, 2, 3)]
    h_days = [(f"day|H|2024-03-0{d}", 100.0) for d in (1, 2, 3)]
    v1 = [("day|F|2024-03-01", None, 3.0), ("day|F|2024-03-02", None, 20.0),
          (f"day|F|{LAST}", 25.0), ("day|H|2024-03-01", 99.0), *h_days[1:], *G_DAYS,
          (f"national|2024-03|small|{LAST}", 347.0), (f"national|2024-03|all|{LAST}", 1247.0)]
    v2 = [*v1[:3], *h_days, *G_DAYS, (f"national|2024-03|small|{LAST}", 348.0),
          (f"national|2024-03|all|{LAST}", 1248.0)]
    con = warehouse([*days(4.0), *h], [])
    ledger.read(con, published_ledger(tmp_path, v1, v2))
    cells = build(con)
    assert "day|H|2024-03-01" not in cells.index  # not read day by day
    for row in ("small", "all"):
        assert _fact(cells, f"national|2024-03|{row}|{LAST}|v1") == {
            "then|day|F|2024-03-01|1", "day|F|2024-03-02"}, row



def test_a_day_withheld_in_an_earlier_vintage_keeps_its_month_read_day_by_day(tmp_path):
    """Vintage 1 withheld F's day 1 (3) and H's day 1 (100, a secondary) and published
    the small row (348); vintage 2 revised F's day 1 to 4 and published H's day. H's
    month is still read day by day, so the small row of vintage 1 names both days as
    they were (F's 3 its own unknown), rather than being dropped."""
    h = [("H", f"2024-03-0{d}", "small", 100.0) for d in (1, 2, 3)]
    v1 = [("day|F|2024-03-01", None, 3.0), ("day|F|2024-03-02", 20.0),
          (f"day|F|{LAST}", 25.0), ("day|H|2024-03-01", None, 100.0),
          ("day|H|2024-03-02", 100.0), (f"day|H|{LAST}", 100.0), *G_DAYS,
          (f"national|2024-03|small|{LAST}", 348.0)]
    v2 = [("day|F|2024-03-01", None, 4.0), *v1[1:3], ("day|H|2024-03-01", 100.0),
          *v1[4:-1], (f"national|2024-03|small|{LAST}", None, 349.0)]
    con = warehouse([("F", "2024-03-01", "small", 4.0), ("F", "2024-03-02", "small", 20.0),
                     ("F", LAST, "small", 25.0), *h,
                     *[("G", f"2024-03-0{d}", "large", 300.0) for d in (1, 2, 3)]], [])
    ledger.read(con, published_ledger(tmp_path, v1, v2))
    cells = build(con)
    assert "day|H|2024-03-01" in cells.index
    assert _fact(cells, f"national|2024-03|small|{LAST}|v1") >= {"then|day|F|2024-03-01|1"}


def test_the_days_of_no_class_are_the_all_row_minus_the_classes():
    """U has no scale class (no capacity reported): its days are in the 'all' row and in
    no class row, so 'all' minus the classes is U's sum. U's month (3 a day on average)
    is a person count of 1..4: the audit sees it and protects it."""
    today = [*days(30.0, 30.0), *[("U", f"2024-03-0{d}", "", 3.0) for d in (1, 2, 3)]]
    cells = build(warehouse(today, []))
    hidden = cells.index[f"national|2024-03|unknown|{LAST}"]
    assert cells.values[hidden] == 9.0 and cells.needs[hidden] > 0
    total = cells.index[f"national|2024-03|all|{LAST}"]
    assert cells.values[total] == 9.0 + 85.0 + 900.0
    assert f"national|2024-03|unknown|{LAST}" in exposed(cells)  # all - small - large
    secondary.protect(cells, SECRET)
    assert exposed(cells) == []


def test_the_overcrowded_days_of_all_are_a_cell_linked_to_the_classes():
    """F's day 1 (3) is its only overcrowded day: the small row's overcrowded person-days
    (3, 1 a day on average) are withheld. The `all` row's overcrowded share minus the
    large row's (G, all overcrowded) gives them back: the audit must see it (it was no
    cell before) and withhold more."""
    con = warehouse(days(3.0), [])
    con.execute("UPDATE wh.intermediate.int_facility_days SET density = 150 "
                "WHERE facility_id = 'G' OR (facility_id = 'F' AND census_date = '2024-03-01')")
    cells = build(con)
    over_all = cells.index[f"overcrowded|2024-03|all|{LAST}"]
    assert cells.values[over_all] == 903.0
    outcome = secondary.protect(cells, SECRET)
    assert exposed(cells) == [] and outcome.unprotectable == []
    # the attacker's subtraction: `all` and `large` both published would give `small`
    withheld = cells.withheld_cells()
    assert withheld[over_all] or withheld[cells.index[f"overcrowded|2024-03|large|{LAST}"]]
