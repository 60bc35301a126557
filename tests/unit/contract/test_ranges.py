"""One source of truth for value ranges: the contract's, which every dbt cast must hold.

Values that ingestion once accepted broke every later build (avg_population above
1e14 in decimal(18, 4), birth_year 99999999999 in an integer, ...). The contract
(`Column.limits` in penstat/contract/feeds.py) states the range of every numeric and date
column; ingestion checks it (typed_tables, warehouse_rules). This module proves that:

- every int, dec, date and month column of every feed has a range, and feeds.md /
  feeds-v2.md document exactly it;
- every cast of dbt_project to a bounded numeric type (integer, bigint, decimal(p, s),
  ...), and every enforced mart column of such a type, holds what the contract lets
  in. Each cast has a proof in CASTS below: a contract value (or a sum over a bounded
  number of rows of it), an expression evaluated in DuckDB at every combination of the
  bounds, or the reason it is no contract value. A cast without a proof fails the test:
  adding a cast means proving it here.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pytest
import yaml

from penstat.contract.feeds import (
    DATE_MAX,
    EXTRACTION,
    FACILITY_ID_PATTERN,
    FEEDS,
    STAFF_CATEGORIES,
    Column,
)
from penstat.core.locations import REPO_ROOT

DBT = REPO_ROOT / "dbt_project"
DOCS = REPO_ROOT / "docs" / "contract"
NUMERIC_TYPES = ("int", "dec")
RANGED_TYPES = ("int", "dec", "date", "month")
# More rows than one sum of the warehouse will ever add up (all facilities of all
# jurisdictions, all days): a sum "over everything" is proven for this many rows.
ALL_ROWS = 10**9
DAYS_IN_MONTH = 31


def _columns() -> list[tuple[str, str, Column]]:
    return [(feed.name, spec.stem, col) for feed in FEEDS.values() for spec in feed.files
            for col in spec.columns]


def column(ref: str) -> Column:
    feed, stem, name = ref.split(".")
    return FEEDS[feed].file(stem).column(name)


# --- every column has a range -----------------------------------------------------------


@pytest.mark.parametrize("feed,stem,col", [c for c in _columns() if c[2].type in RANGED_TYPES],
                         ids=lambda c: getattr(c, "name", c))
def test_every_numeric_and_date_column_has_a_range(feed: str, stem: str, col: Column):
    limits = col.limits
    assert limits is not None, f"{feed}.{stem}.{col.name} states no range"
    assert limits.low <= limits.high
    if col.type in NUMERIC_TYPES:
        assert isinstance(limits.low, int) and isinstance(limits.high, int)
        assert limits.low > -(2**63) and limits.high < 2**63
    else:
        assert isinstance(limits.low, date) and isinstance(limits.high, date)
        # year 0000 never; never past what every tool of the chain handles
        assert limits.low >= date(1500, 1, 1) and limits.high <= DATE_MAX
        if col.type == "month":
            assert limits.low.day == 1 and limits.high.day == 1
    if limits.not_after not in (None, EXTRACTION):
        other = FEEDS[feed].file(stem).column(limits.not_after)
        assert other.type == "date" and other.required, "not_after names a date column"
    assert limits.why, "the reason for the range is part of the contract"


def test_only_ranged_types_have_ranges():
    for feed, stem, col in _columns():
        if col.type not in RANGED_TYPES:
            assert col.limits is None, f"{feed}.{stem}.{col.name}"


# --- facility ids -----------------------------------------------------------------------


def test_every_facility_id_has_the_facility_id_format():
    ids = [(f, s, c) for f, s, c in _columns() if c.name == "facility_id"]
    assert len(ids) == 6
    for feed, stem, col in ids:
        assert col.pattern == FACILITY_ID_PATTERN, f"{feed}.{stem}"


@pytest.mark.parametrize("fid", ["NL-0042", "SY-0001", "SY-00001", "TS-0001", "US-CA-SVSP",
                                 "US-CA-CCWFW", "IT-MII152284", "US-10002798"])
def test_the_facility_ids_in_use_are_valid(fid: str):
    assert re.fullmatch(FACILITY_ID_PATTERN, fid)


@pytest.mark.parametrize("fid", [
    '=HYPERLINK("x")', "+cmd", "@SUM(A1)", "-SY-0001", "sy-0001", "Sy-0001", "SY-0001 ",
    " SY-0001", "SY-0001\t", "SY\u20100001", "SY\u20110001", "SY\u22120001", "SY-0001\n",
    "SY--0001", "SY-0001-", "SY-", "SY-\u00c9001", "SY-E\u0301001", "SY-\uff10001",
    "SY-0001\u200b", "SY-0001.5", "SY-0001_5", "US-ca-SVSP", "S-0001", "SYN-0001",
    "SY-" + "0" * 21, "SY-ABCD-0001"])
def test_facility_id_look_alikes_and_formulas_are_invalid(fid: str):
    assert not re.fullmatch(FACILITY_ID_PATTERN, fid)


# --- feeds.md and feeds-v2.md document the ranges ---------------------------------------


def _documented_ranges() -> dict[tuple[str, str], str]:
    """(feed, column) -> the `range` cell of the column tables of feeds.md and feeds-v2.md."""
    out: dict[tuple[str, str], str] = {}
    for doc in ("feeds.md", "feeds-v2.md"):
        feed = None
        header: list[str] | None = None
        for line in (DOCS / doc).read_text().splitlines():
            heading = re.match(r"^##+ ([a-z_]+) /", line)
            if heading:
                feed = heading.group(1)
            if not line.startswith("|"):
                header = None
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if cells[0] == "column":
                header = cells
                continue
            if header is None or set(cells[0]) <= {"-"}:
                continue
            assert "range" in header, f"{doc}: a column table without a range column"
            assert feed in FEEDS, f"{doc}: table outside a feed section: {line}"
            for name in cells[0].split(", "):
                out[(feed, name)] = cells[header.index("range")].strip("`")
    return out


def test_feeds_md_documents_every_range_as_the_contract_states_it():
    documented = _documented_ranges()
    for feed, _stem, col in _columns():
        expected = col.limits.describe(col.type) if col.limits else ""
        assert documented.get((feed, col.name)) == expected, (feed, col.name)


# --- every dbt cast holds the contract's range ------------------------------------------

_BOUNDED = re.compile(
    r"^(tinyint|smallint|integer|int|int4|int32|bigint|int8|int64|hugeint|int128|"
    r"utinyint|usmallint|uinteger|ubigint|(decimal|numeric)\((\d+), ?(\d+)\))$")
_INT_MAX = {"tinyint": 2**7 - 1, "smallint": 2**15 - 1, "integer": 2**31 - 1,
            "int": 2**31 - 1, "int4": 2**31 - 1, "int32": 2**31 - 1, "bigint": 2**63 - 1,
            "int8": 2**63 - 1, "int64": 2**63 - 1, "hugeint": 2**127 - 1,
            "int128": 2**127 - 1, "utinyint": 2**8 - 1, "usmallint": 2**16 - 1,
            "uinteger": 2**32 - 1, "ubigint": 2**64 - 1}


def _fits(value: float, type_: str) -> bool:
    m = _BOUNDED.match(type_)
    assert m, type_
    if m.group(2):
        precision, scale = int(m.group(3)), int(m.group(4))
        return abs(value) < 10 ** (precision - scale)
    low = 0 if type_.startswith("u") else -_INT_MAX[type_] - 1
    return low <= value <= _INT_MAX[type_]


def _narrower_than_bigint(type_: str) -> bool:
    m = _BOUNDED.match(type_)
    return bool(m and (m.group(2) or _INT_MAX[type_] < 2**63 - 1))


@dataclass(frozen=True)
class Value:
    """The cast value is a contract column's value, or a sum of it over at most `rows`
    rows (the worst case: every row at the column's extreme)."""

    columns: tuple[str, ...]
    rows: int = 1

    def check(self, type_: str) -> None:
        for ref in self.columns:
            limits = column(ref).limits
            assert limits is not None, ref
            for bound in (limits.low, limits.high):
                assert _fits(bound * self.rows, type_), (ref, bound, self.rows, type_)


@dataclass(frozen=True)
class Evaluated:
    """The cast expression evaluated by DuckDB, with each {feed.stem.column} at each of
    its bounds: the cast must succeed for every combination."""

    sql: str

    def check(self, type_: str) -> None:
        refs = sorted(set(re.findall(r"\{([a-z_0-9.]+)\}", self.sql)))
        bounds = [(column(r).limits.low, column(r).limits.high) for r in refs]
        con = duckdb.connect()
        try:
            for combination in itertools.product(*bounds):
                values = {r: (f"DATE '{v.isoformat()}'" if isinstance(v, date) else str(v))
                          for r, v in zip(refs, combination, strict=True)}
                sql = self.sql
                for ref, literal in values.items():
                    sql = sql.replace("{" + ref + "}", literal)
                con.execute(f"SELECT CAST({sql} AS {type_})").fetchone()
        finally:
            con.close()


@dataclass(frozen=True)
class Derived:
    """Not a contract value: why it is bounded."""

    reason: str

    def check(self, type_: str) -> None:
        assert self.reason


_COUNT = Derived("a count of rows: far below 2**31")
_PROBABILITY = Derived("a modelled probability in [0, 1]: decimal(18, 15) holds < 1000")

REG = "facility_register.facilities"
OCC = "occupancy.occupancy"
REGIME = "occupancy.regime"
STAFF = "staffing.staffing"
RELEASES = "recidivism.releases"
COHORT = "recidivism_cohort.releases"
REF = "reference_register.facilities"
# One facility-month of staffing: one row per staff category.
CATEGORIES = len(STAFF_CATEGORIES)

# (file under dbt_project, target type, cast expression as written) -> proof
CASTS: dict[tuple[str, str, str], Value | Evaluated | Derived] = {
    # staging: the dec columns become decimal(18, 4)
    ("models/staging/occupancy/stg_occupancy__monthly_regime.sql", "decimal(18, 4)",
     "avg_population"): Value((f"{REGIME}.avg_population",)),
    ("models/staging/occupancy/stg_occupancy__monthly_regime.sql", "decimal(18, 4)",
     "avg_hours_out_of_cell"): Value((f"{REGIME}.avg_hours_out_of_cell",)),
    ("models/staging/staffing/stg_staffing__monthly_staff.sql", "decimal(18, 4)", "fte"):
        Value((f"{STAFF}.fte",)),
    ("models/staging/staffing/stg_staffing__monthly_staff.sql", "decimal(18, 4)",
     "vacancies_fte"): Value((f"{STAFF}.vacancies_fte",)),
    # add_months: the months are vars (config, a few dozen) or a cohort's follow-up
    ("macros/kpi.sql", "integer", "{{ months }}"): Value((f"{COHORT}.follow_up_months",)),
    # int_facility_months: sums over the days of one facility-month
    **{("models/intermediate/int_facility_months.sql", "bigint", expr):
       Value(cols, DAYS_IN_MONTH) for expr, cols in (
        ("sum(population)", (f"{OCC}.population",)),
        ("sum(population) filter (where capacity_places is not null)", (f"{OCC}.population",)),
        ("sum(capacity_places)", (f"{REG}.capacity_places",)),
        # known_sum: the sum, or null when a day is unknown (contract v3)
        ("{{ known_sum('places_out_of_use', 'places_out_of_use') }}",
         (f"{OCC}.places_out_of_use",)),
        # places in use: capacity minus places out of use, at least 0
        ("{{ known_sum('places_in_use', 'places_out_of_use') }}", (f"{REG}.capacity_places",)),
        ("{{ known_sum('population', 'places_out_of_use', 'places_in_use is not null') }}",
         (f"{OCC}.population",)),
        ("{{ known_sum('population_female', 'population_female') }}",
         (f"{OCC}.population_female",)),
        ("{{ known_sum('population_under_18', 'population_under_18') }}",
         (f"{OCC}.population_under_18",)),
        ("{{ known_sum('population_18_22', 'population_18_22') }}",
         (f"{OCC}.population_18_22",)),
        ("{{ known_sum('admissions', 'admissions') }}", (f"{OCC}.admissions",)),
        ("{{ known_sum('releases', 'releases') }}", (f"{OCC}.releases",)))},
    ("models/intermediate/int_facility_months.sql", "integer",
     "sum( least(history.valid_to, last_day(spine.month)) - greatest(history.valid_from, "
     "spine.month) + 1 )"):
        Derived("days of one month on the register: at most 31 (intervals do not overlap)"),
    ("models/intermediate/int_facility_months.sql", "integer",
     "extract(day from last_day(spine.month))"): Derived("days of a month: 28 to 31"),
    # ... and over the staff categories of one facility-month
    **{("models/intermediate/int_facility_months.sql", type_, expr): Value(cols, CATEGORIES)
       for type_, expr, cols in (
        ("decimal(18, 4)", "sum(fte) filter (where staff_category = 'custodial')",
         (f"{STAFF}.fte",)),
        ("decimal(18, 4)", "sum(fte) filter ( where staff_category in ('rehabilitation', "
         "'education', 'healthcare') )", (f"{STAFF}.fte",)),
        ("decimal(18, 4)", "sum(fte)", (f"{STAFF}.fte",)),
        ("decimal(18, 4)", "sum(vacancies_fte)", (f"{STAFF}.vacancies_fte",)),
        ("decimal(18, 4)", "sum(fte) filter (where vacancies_fte is not null)",
         (f"{STAFF}.fte",)),
        ("bigint", "sum(headcount)", (f"{STAFF}.headcount",)),
        ("bigint", "sum(trained_last_24m)", (f"{STAFF}.trained_last_24m",)),
        ("bigint", "sum(headcount) filter (where trained_last_24m is not null)",
         (f"{STAFF}.headcount",)))},
    ("models/intermediate/int_national_month_kpis.sql", "bigint", "day_sums.facilities"):
        _COUNT,
    ("models/intermediate/int_national_month_kpis.sql", "bigint", "census_days.census_days"):
        _COUNT,
    # recidivism
    ("models/intermediate/int_release_outcomes.sql", "integer", "year(windows.release_date)"):
        Evaluated(f"year({{{RELEASES}.release_date}})"),
    ("models/intermediate/int_release_outcomes.sql", "integer",
     "year(windows.release_date) - windows.birth_year"):
        Evaluated(f"year({{{RELEASES}.release_date}}) - {{{RELEASES}.birth_year}}"),
    ("models/intermediate/int_release_outcomes.sql", "bigint",
     "coalesce(outcomes.proven_reoffences_1y, 0)"): _COUNT,
    ("models/intermediate/int_recidivism_groups.sql", "decimal(18, 15)",
     "expected_2y_general"): _PROBABILITY,
    ("models/intermediate/int_recidivism_groups.sql", "decimal(18, 15)",
     "expected_2y_general * (1 - expected_2y_general)"): _PROBABILITY,
    **{("models/intermediate/int_facility_recidivism_windows.sql", type_, expr): _COUNT
       for type_, expr in (("bigint", "count(*)"),
                           ("bigint", "count(*) filter (where recid_2y_general)"),
                           ("integer", "count(distinct cohort_year)"))},
    ("models/intermediate/int_facility_recidivism_windows.sql", "integer",
     "latest.cohort_year - {{ pool }} * floor((latest.cohort_year - years.cohort_year) / "
     "{{ pool }})"):
        Derived("a release year between the earliest and the latest cohort year: the "
                "latest minus a whole number of pools not exceeding their difference"),
    ("models/intermediate/int_facility_recidivism_windows.sql", "integer", "min(cohort_year)"):
        Evaluated(f"year({{{RELEASES}.release_date}})"),
    ("models/intermediate/int_recidivism_groups.sql", "integer", "cohort_year"):
        Evaluated(f"year({{{RELEASES}.release_date}})"),
    **{("models/intermediate/int_recidivism_groups.sql", "bigint", name): _COUNT
       for name in ("cohort_size", "reoffenders_2y_general", "reoffenders_2y_custodial",
                    "proven_reoffenders_1y", "proven_reoffences_1y")},
    ("models/marts/comparisons/mart_return_to_prison_cohort.sql", "integer", "release_year"):
        Value((f"{COHORT}.release_year",)),
    ("models/marts/comparisons/mart_return_to_prison_cohort.sql", "integer",
     "follow_up_months"): Value((f"{COHORT}.follow_up_months",)),
    ("models/marts/comparisons/mart_return_to_prison_cohort.sql", "bigint", "cohort_size"):
        _COUNT,
    ("models/marts/comparisons/mart_return_to_prison_cohort.sql", "bigint", "returned"):
        _COUNT,
    # facility values of one day (v1 register and census, or a v2 register's)
    **{("models/marts/comparisons/mart_facility_snapshot.sql", "bigint", name): Value(cols)
       for name, cols in (
        ("capacity_places", (f"{REG}.capacity_places", f"{REF}.capacity_places")),
        ("operational_capacity", (f"{REG}.operational_capacity",)),
        ("places_out_of_use", (f"{OCC}.places_out_of_use",)),
        ("population", (f"{OCC}.population", f"{REF}.population")))},
    **{("models/marts/mart_facility_daily.sql", "bigint", f"days.{name}"): Value(cols)
       for name, cols in (("capacity_places", (f"{REG}.capacity_places",)),
                          ("places_out_of_use", (f"{OCC}.places_out_of_use",)),
                          ("population", (f"{OCC}.population",)))},
    # sums over all facilities of a jurisdiction and class
    ("models/marts/comparisons/mart_scale_class_facts.sql", "bigint", "unioned.facilities"):
        _COUNT,
    ("models/marts/comparisons/mart_scale_class_facts.sql", "bigint",
     "unioned.facilities_small_optimal"): _COUNT,
    ("models/marts/comparisons/mart_scale_class_facts.sql", "bigint",
     "unioned.facilities_with_population"): _COUNT,
    ("models/marts/comparisons/mart_scale_class_facts.sql", "bigint",
     "unioned.capacity_places"):
        Value((f"{REG}.capacity_places", f"{REF}.capacity_places"), ALL_ROWS),
    ("models/marts/comparisons/mart_scale_class_facts.sql", "bigint", "unioned.population"):
        Value((f"{OCC}.population", f"{REF}.population"), ALL_ROWS),
    ("models/marts/mart_regional_monthly.sql", "bigint", "facilities"): _COUNT,
    ("models/marts/mart_regional_monthly.sql", "bigint", "census_days"): _COUNT,
    ("models/marts/mart_delivery_status.sql", "bigint", "days_late"):
        Derived("days between two dates of the contract's range (< 300,000)"),
}

# Enforced mart columns of a bounded type (the table is created with it: an implicit cast).
COLUMNS: dict[tuple[str, str], Value | Evaluated | Derived] = {
    ("mart_recidivism_cohort", "cohort_year"): Evaluated(f"year({{{RELEASES}.release_date}})"),
    **{("mart_facility_recidivism", name): Evaluated(f"year({{{RELEASES}.release_date}})")
       for name in ("last_cohort_year", "first_cohort_year")},
    ("mart_facility_recidivism", "cohort_years"):
        Derived("distinct cohort years of one window: at most recidivism_facility_pool_years"),
    ("mart_return_to_prison_cohort", "release_year"): Value((f"{COHORT}.release_year",)),
    ("mart_return_to_prison_cohort", "follow_up_months"):
        Value((f"{COHORT}.follow_up_months",)),
}


def _split_cast(inner: str) -> tuple[str, str]:
    """'expr as type' at the top level of a cast's parentheses."""
    depth, split = 0, None
    for i, ch in enumerate(inner):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and inner[i:i + 4].lower() == " as ":
            split = i
    assert split is not None, inner
    return " ".join(inner[:split].split()), " ".join(inner[split + 4:].split()).lower()


def dbt_casts() -> dict[tuple[str, str, str], int]:
    """Every cast( / try_cast( of dbt_project's SQL to a bounded numeric type, counted."""
    found: dict[tuple[str, str, str], int] = {}
    files = sorted([*DBT.glob("models/**/*.sql"), *DBT.glob("macros/**/*.sql")])
    assert files
    for path in files:
        text = re.sub(r"--[^\n]*", "", path.read_text())  # comments are no casts
        for match in re.finditer(r"\b(try_)?cast\s*\(", text, re.IGNORECASE):
            depth, end = 1, match.end()
            while depth:
                depth += {"(": 1, ")": -1}.get(text[end], 0)
                end += 1
            expr, type_ = _split_cast(text[match.end():end - 1])
            if _BOUNDED.match(type_):
                key = (str(path.relative_to(DBT)), type_, expr)
                found[key] = found.get(key, 0) + 1
    return found


def bounded_mart_columns() -> dict[tuple[str, str], str]:
    """Model columns declared narrower than BIGINT (the raw layer's int type, which holds
    every contract int; a bigint column computed by a sum is a cast proven in CASTS)."""
    found = {}
    for path in DBT.glob("models/**/*.yml"):
        for model in (yaml.safe_load(path.read_text()) or {}).get("models", []):
            for col in model.get("columns", []):
                type_ = " ".join(str(col.get("data_type", "")).lower().split())
                if _BOUNDED.match(type_) and _narrower_than_bigint(type_):
                    found[(model["name"], col["name"])] = type_
    return found


def test_the_cast_scanner_finds_the_casts_of_issue_11():
    casts = dbt_casts()
    assert ("models/staging/staffing/stg_staffing__monthly_staff.sql", "decimal(18, 4)",
            "fte") in casts
    assert ("models/intermediate/int_release_outcomes.sql", "integer",
            "year(windows.release_date) - windows.birth_year") in casts


def test_every_bounded_dbt_cast_has_a_proof():
    missing = sorted(set(dbt_casts()) - set(CASTS))
    assert not missing, ("prove that these casts hold the contract's ranges (CASTS in "
                         f"this file): {missing}")
    stale = sorted(set(CASTS) - set(dbt_casts()))
    assert not stale, f"proofs of casts that no longer exist: {stale}"


@pytest.mark.parametrize("key", sorted(CASTS), ids=lambda k: f"{Path(k[0]).stem}:{k[2][:40]}")
def test_the_dbt_cast_holds_the_contract_range(key: tuple[str, str, str]):
    CASTS[key].check(key[1])


def test_every_bounded_mart_column_has_a_proof():
    found = bounded_mart_columns()
    assert set(found) == set(COLUMNS), sorted(set(found) ^ set(COLUMNS))
    for key, type_ in found.items():
        COLUMNS[key].check(type_)


def test_the_proofs_fail_where_issue_11_broke_the_build():
    """The old, unbounded contract (BIGINT, DOUBLE) would not pass these proofs."""
    assert not _fits(10**14 + 1, "decimal(18, 4)")  # avg_population, fte above 1e14
    assert not _fits(99999999999, "integer")  # birth_year, follow_up_months of 11 digits
    assert _fits(column(f"{REGIME}.avg_population").limits.high * CATEGORIES,
                 "decimal(18, 4)")
    with pytest.raises(duckdb.Error):
        Evaluated("2022 - 99999999999").check("integer")


def test_a_cohort_follow_up_ends_within_the_date_range_duckdb_holds():
    end, months = column(f"{COHORT}.release_period_end"), column(f"{COHORT}.follow_up_months")
    con = duckdb.connect()
    try:
        last = con.execute(
            f"SELECT CAST(DATE '{end.limits.high.isoformat()}' "
            f"+ to_months(CAST({months.limits.high} AS INTEGER)) AS DATE)").fetchone()[0]
    finally:
        con.close()
    assert last.year < 2262  # also within pandas' nanosecond timestamps
