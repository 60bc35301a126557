"""The benchmark's yardstick computes the same marts as the pipeline.

`benchmarks/reference.sql` computes the published marts straight from the archived
deliveries in one DuckDB script (no dbt, GX or Airflow), and `make bench` divides
the pipeline's time by its time. The ratio only means something if both do the same
work, so: synthetic data, the pipeline run the way `benchmarks.stages.pipeline` runs
it (task bodies called directly), the reference run into its own DuckDB file, and per
mart: the same columns in the same order, the same row count, and
`pipeline EXCEPT ALL reference` and `reference EXCEPT ALL pipeline` both empty,
doubles rounded to 9 decimals. Two data sets:

  scale-1    the benchmark's scale 1, plus a second register snapshot that changes a
             facility's scale class and an occupancy correction (`replaces`) that
             leaves a facility-month with 2 persons every day: the register history,
             "latest delivery wins", series breaks (b) and partner suppression;
  scale-0.1  a small system plus the bench's next-day delivery: national and
             recidivism groups small enough for their secondary suppression, and an
             open month (p).

Left out of the comparison, as the script's header says: the risk-model columns of
mart_recidivism_cohort (statsmodels, not SQL), mart_delivery_status (ledger and
today's date), and the marts of contract-v2 feeds the synthetic system does not send
(mart_national_reference, mart_return_to_prison_cohort: empty in the pipeline too).
"""

from __future__ import annotations

import io
import shutil
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from benchmarks import stages
from penstat.contract.published import MART_KEYS
from penstat.contract.published import WAREHOUSE_MART_COLUMNS as MART_COLUMNS
from penstat.senders.delivery import write_delivery
from penstat.senders.synthetic import generate, next_day
from tests.reliability import penstat_home

SEED = 42
NEXT_DAY = date(2026, 1, 1)  # the day after the generated census (as benchmarks/run.py)
COMPARED_MARTS = ("mart_facility_daily", "mart_facility_monthly", "mart_national_monthly",
                  "mart_recidivism_cohort", "mart_facility_snapshot", "mart_scale_class_facts",
                  "mart_national_density_comparison")
# Fitted by statsmodels in int_recidivism_expected.py and int_recidivism_standardised.py:
# NULL in the reference.
RISK_MODEL_COLUMNS = frozenset({"observed_expected", "observed_expected_se", "adjusted_rate",
                                "ci_low", "ci_high", "standardised_rate", "standardised_rate_se",
                                "standardised_ci_low", "standardised_ci_high",
                                "standardised_difference", "standardised_difference_se",
                                "standardised_difference_ci_low",
                                "standardised_difference_ci_high"})
# Rows the reference script does not compute yet: the national small_optimal rows
# (8..25 places, an overlapping subset of small, added after the script was written).
# The rest of each mart must still agree row for row.
NOT_IN_REFERENCE: dict[str, str] = {"mart_national_monthly": "scale_class <> 'small_optimal'"}
DECIMALS = 9
EXAMPLES = 5

# The corrections sent on top of the generated deliveries.
RECLASSIFIED = "SY-0007"  # large prison (250 places): 180 places (medium) from 2024-07-01
RECLASSIFIED_FROM = "2024-07-01"
TINY = "SY-0001"  # transition house: 2 persons on every day of 2025-03 (a correction)
TINY_MONTH = "2025-03"


def compared_columns(mart: str) -> list[str]:
    return [c for c in MART_COLUMNS[mart] if c not in RISK_MODEL_COLUMNS]


@dataclass
class MartComparison:
    mart: str
    pipeline_rows: int
    reference_rows: int
    only_in_pipeline: int = 0
    only_in_reference: int = 0
    column_problems: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return (not self.column_problems and self.pipeline_rows == self.reference_rows
                and self.only_in_pipeline == 0 and self.only_in_reference == 0)

    def report(self) -> str:
        lines = [f"{self.mart}: pipeline {self.pipeline_rows} rows, reference "
                 f"{self.reference_rows} rows; {self.only_in_pipeline} only in the pipeline, "
                 f"{self.only_in_reference} only in the reference", *self.column_problems]
        return "\n".join(lines + [f"  {e}" for e in self.examples])


def compare_mart(con: duckdb.DuckDBPyConnection, mart: str, pipeline: str = "pipeline",
                 reference: str = "reference") -> MartComparison:
    """Compare marts.<mart> of two attached databases; differing rows as examples.

    The marts compared carry no person identifiers (they are aggregates), so the
    example rows can be shown as they are.
    """
    def columns(db: str) -> list[tuple[str, str]]:
        return con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_catalog = ? AND table_schema = 'marts' AND table_name = ? "
            "ORDER BY ordinal_position", [db, mart]).fetchall()

    left, right = columns(pipeline), columns(reference)
    problems = []
    for db, cols in ((pipeline, left), (reference, right)):
        if [c for c, _ in cols] != list(MART_COLUMNS[mart]):
            problems.append(f"  {db} columns {[c for c, _ in cols]} are not the published "
                            f"{list(MART_COLUMNS[mart])}")
    if problems:
        return MartComparison(mart, -1, -1, column_problems=problems)
    types = dict(left)
    for name, type_ in right:
        if type_ != types[name]:
            problems.append(f"  column {name}: pipeline {types[name]}, reference {type_}")
    select = ", ".join(f"round({c}, {DECIMALS}) AS {c}" if types[c] in ("DOUBLE", "FLOAT")
                       else c for c in compared_columns(mart))
    key = ", ".join(MART_KEYS[mart])

    def count(sql: str) -> int:
        return con.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0]

    where = f" WHERE {NOT_IN_REFERENCE[mart]}" if mart in NOT_IN_REFERENCE else ""

    def table(db: str) -> str:
        return f"(SELECT * FROM {db}.marts.{mart}{where})"

    def diff(a: str, b: str) -> str:
        return (f"SELECT {select} FROM {table(a)} "
                f"EXCEPT ALL SELECT {select} FROM {table(b)}")

    result = MartComparison(
        mart,
        pipeline_rows=count(f"SELECT * FROM {table(pipeline)}"),
        reference_rows=count(f"SELECT * FROM {table(reference)}"),
        only_in_pipeline=count(diff(pipeline, reference)),
        only_in_reference=count(diff(reference, pipeline)),
        column_problems=problems,
    )
    if not result.equal:
        names = compared_columns(mart)
        rows = con.execute(
            f"SELECT * FROM (SELECT 'pipeline' AS side, * FROM ({diff(pipeline, reference)}) "
            f"UNION ALL SELECT 'reference', * FROM ({diff(reference, pipeline)})) "
            f"ORDER BY {key}, side LIMIT {2 * EXAMPLES}").fetchall()
        result.examples = [
            f"{row[0]:<9} " + ", ".join(f"{n}={v!r}" for n, v in zip(names, row[1:], strict=True))
            for row in rows]
    return result


def compare_databases(pipeline_db: Path, reference_db: Path,
                      marts=COMPARED_MARTS) -> dict[str, MartComparison]:
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{pipeline_db}' AS pipeline (READ_ONLY)")
        con.execute(f"ATTACH '{reference_db}' AS reference (READ_ONLY)")
        return {mart: compare_mart(con, mart) for mart in marts}
    finally:
        con.close()


# --- the data: scale 1, a register change and an occupancy correction -------------------

def _csv(frame: pd.DataFrame) -> bytes:
    out = io.StringIO()
    frame.to_csv(out, index=False, lineterminator="\n")
    return out.getvalue().encode()


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def send_corrections(inbox: Path) -> None:
    """A second, full register snapshot (one facility changes scale class) and an
    occupancy correction (`replaces`) of one facility-month of a generated delivery."""
    register = _read(next(inbox.glob("facility_register/*/facilities.csv")))
    row = register.index[register["facility_id"] == RECLASSIFIED][0]
    assert register.at[row, "capacity_places"] == "250" and register.at[row, "valid_to"] == ""
    after = register.loc[[row]].copy()
    register.at[row, "valid_to"] = "2024-06-30"
    after["valid_from"], after["capacity_places"] = RECLASSIFIED_FROM, "180"
    register = pd.concat([register, after], ignore_index=True)
    write_delivery(inbox, "facility_register", "syn-reg-2", {"facilities.csv": _csv(register)},
                   sender="SYN-PA", created_at="2024-06-20T02:00:00Z", period=None, ring=False)

    original = next(p for p in inbox.glob("occupancy/*/occupancy.csv")
                    if (_read(p)["census_date"].str.startswith(TINY_MONTH)).any())
    census = _read(original)
    fixed = census[(census["facility_id"] == TINY)
                   & census["census_date"].str.startswith(TINY_MONTH)].copy()
    assert len(fixed) >= 28
    for column in ("population_female", "population_remand", "population_under_18",
                   "population_18_22"):
        fixed[column] = fixed[column].astype(int).clip(upper=2).astype(str)
    fixed["population"] = "2"
    write_delivery(inbox, "occupancy", "syn-occ-fix", {"occupancy.csv": _csv(fixed)},
                   sender="SYN-PA", created_at="2026-01-05T02:00:00Z",
                   period=(fixed["census_date"].min(), fixed["census_date"].max()),
                   replaces=original.parent.name, ring=False)


@dataclass(frozen=True)
class Scenario:
    scale: float
    corrections: bool = False
    next_day: bool = False


SCENARIOS = {
    "scale-1": Scenario(scale=1, corrections=True),
    "scale-0.1": Scenario(scale=0.1, next_day=True),
}


@pytest.fixture(scope="module", params=sorted(SCENARIOS))
def bench_home(request, tmp_path_factory):
    """A bench home as benchmarks/run.py prepares it, the pipeline and the reference run.
    Yields (scenario, home); the home is removed afterwards."""
    scenario = SCENARIOS[request.param]
    root = tmp_path_factory.mktemp(f"bench-reference-{request.param}")
    home = root / "home"
    try:
        with penstat_home(home):
            generate(home / "inbox", scale=scenario.scale, seed=SEED, split="year")
            if scenario.corrections:
                send_corrections(home / "inbox")
            if scenario.next_day:
                next_day(home / "inbox", scale=scenario.scale, seed=SEED, day=NEXT_DAY,
                         ring=False)
            for ready in home.glob("inbox/*/_READY"):
                ready.unlink()
            stages.pipeline(home)
            stages.reference(home)
            yield scenario, home
    finally:
        shutil.rmtree(root, ignore_errors=True)


def published_db(home: Path) -> Path:
    """The marts as dbt built them (the reference reproduces dbt's SQL): the publisher's
    disclosure step after them (penstat.publication.disclosure, its own tests) is not part
    of the yardstick; its seconds are reported apart by `make bench`."""
    return home / "warehouse" / "warehouse.duckdb"


def reference_db(home: Path) -> Path:
    return home / "reference" / "reference.duckdb"


def test_reference_marts_equal_the_published_marts(bench_home):
    scenario, home = bench_home
    # every delivery loaded: nothing in quarantine
    assert not list((home / "quarantine").glob("*/*")), "a delivery was quarantined"

    results = compare_databases(published_db(home), reference_db(home))
    failures = [r.report() for r in results.values() if not r.equal]
    assert not failures, "the reference differs from the pipeline:\n" + "\n".join(failures)
    counts = {m: r.pipeline_rows for m, r in results.items()}
    print(f"scale {scenario.scale:g}: rows compared per mart:", counts)
    assert all(n > 0 for n in counts.values()), counts

    con = duckdb.connect(str(reference_db(home)), read_only=True)
    try:
        flags = dict(con.execute(
            "SELECT 'daily', string_agg(DISTINCT flag, ',') FROM marts.mart_facility_daily "
            "UNION ALL SELECT 'monthly', string_agg(DISTINCT flag, ',') "
            "FROM marts.mart_facility_monthly "
            "UNION ALL SELECT 'national', string_agg(DISTINCT flag, ',') "
            "FROM marts.mart_national_monthly "
            "UNION ALL SELECT 'cohort', string_agg(DISTINCT flag, ',') "
            "FROM marts.mart_recidivism_cohort").fetchall())
        assert "c" in flags["monthly"] and "c" in flags["cohort"], flags
        if scenario.next_day:  # an open month, national values withheld
            assert "p" in flags["monthly"] and "c" in flags["national"], flags
        if not scenario.corrections:
            return
        # the corrections reached both: the series break, and the partner suppression
        assert (home / "archive" / "occupancy" / "syn-occ-fix").is_dir()
        assert (home / "archive" / "facility_register" / "syn-reg-2").is_dir()
        assert con.execute(
            "SELECT flag, scale_class FROM marts.mart_facility_daily "
            "WHERE facility_id = ? AND census_date = ?",
            [RECLASSIFIED, RECLASSIFIED_FROM]).fetchone() == ("b", "medium")
        withheld_months = con.execute(
            "SELECT count(*) FROM marts.mart_facility_monthly "
            "WHERE strftime(month, '%Y-%m') = ? AND average_daily_population IS NULL",
            [TINY_MONTH]).fetchone()[0]
        assert withheld_months >= 2  # the tiny facility-month and its partner's
    finally:
        con.close()


def test_the_comparison_reports_a_difference(bench_home, tmp_path):
    """A value changed beyond the rounding, and a row dropped, are reported with the rows;
    a change below the rounding is not."""
    _, home = bench_home
    perturbed = tmp_path / "perturbed.duckdb"
    shutil.copy(reference_db(home), perturbed)
    con = duckdb.connect(str(perturbed))
    try:
        facility, month = con.execute(
            "SELECT facility_id, month FROM marts.mart_facility_monthly "
            "WHERE density IS NOT NULL ORDER BY facility_id, month LIMIT 1").fetchone()
        con.execute("UPDATE marts.mart_facility_monthly SET density = density + 1e-6 "
                    "WHERE facility_id = ? AND month = ?", [facility, month])
        # below the rounding, on a value far from a rounding boundary: not a difference
        con.execute("UPDATE marts.mart_facility_daily SET density = density + 1e-12 "
                    "WHERE (facility_id, census_date) = (SELECT (facility_id, census_date) "
                    "FROM marts.mart_facility_daily WHERE density IS NOT NULL AND "
                    "abs(density * 1e9 - floor(density * 1e9) - 0.5) > 0.1 "
                    "ORDER BY facility_id, census_date LIMIT 1)")
        con.execute("DELETE FROM marts.mart_national_monthly WHERE scale_class = 'small' "
                    "AND month = (SELECT min(month) FROM marts.mart_national_monthly)")
    finally:
        con.close()

    results = compare_databases(published_db(home), perturbed)
    assert results["mart_facility_daily"].equal, results["mart_facility_daily"].report()
    assert results["mart_recidivism_cohort"].equal

    monthly = results["mart_facility_monthly"]
    assert not monthly.equal
    assert (monthly.only_in_pipeline, monthly.only_in_reference) == (1, 1)
    assert monthly.pipeline_rows == monthly.reference_rows
    report = monthly.report()
    assert f"facility_id={facility!r}" in report and "pipeline " in report \
        and "reference " in report, report

    national = results["mart_national_monthly"]
    assert national.reference_rows == national.pipeline_rows - 1
    assert (national.only_in_pipeline, national.only_in_reference) == (1, 0)
    assert "scale_class='small'" in national.report()
