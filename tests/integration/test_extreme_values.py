"""After any accepted delivery, the next build succeeds.

Deliveries of every feed (v1 and v2) hold the extreme legal values of every numeric and
date column: one row with every ranged column at the low end of its range, one with
every ranged column at its high end. The rows are generated from the contract's ranges
(`Column.limits`), so a column added to the contract is covered without touching this
test. A date tied to the delivery (`not_after`) takes its highest legal value: the
extraction date (manifest created_at, today here), or the other column's value.

The deliveries must all load, dbt must build (every model and data test), and the
publication gate must pass: a legal value may never freeze publication.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from penstat.contract.feeds import EXTRACTION, FEEDS, Column, FileSpec
from penstat.senders.delivery import write_delivery
from tests.reliability import build_and_publish, check_publication, ingest_all, penstat_home

TODAY = datetime.now(UTC).date()
CREATED_AT = f"{TODAY.isoformat()}T00:00:00Z"  # the extraction date is today
PERIOD = ("1900-01-01", TODAY.isoformat())

# Valid values of the columns without a range, per (feed, stem). A required column added
# to the contract without a range needs one here.
REGISTER = {"name": "Extreme facility", "region": "XT11", "facility_type": "prison",
            "security_level": "high", "community_integrated": "false"}
TEMPLATES: dict[tuple[str, str], dict[str, str]] = {
    ("facility_register", "facilities"): REGISTER,
    ("occupancy", "occupancy"): {"facility_id": "XT-MID"},
    ("occupancy", "regime"): {"facility_id": "XT-MID"},
    ("staffing", "staffing"): {"facility_id": "XT-MID", "staff_category": "custodial"},
    ("recidivism", "releases"): {"facility_id": "XT-MID", "sex": "F", "index_offence": "03"},
    ("recidivism", "reconvictions"): {"offence": "03", "custodial": "true"},
    ("reference_register", "facilities"): {"name": "Extreme facility", "country": "USA"},
    ("recidivism_cohort", "releases"): {"jurisdiction": "XT", "returned": "true"},
    ("national_reference", "values"): {"dataset": "crim_pris_cap", "indicator": "PRIS_ACT_CAP",
                                       "unit": "NR", "geo": "XT", "frequency": "A"},
}
# Per row (low, high): keys and ids, unique within the file.
KEYS: dict[tuple[str, str], tuple[dict[str, str], dict[str, str]]] = {
    ("facility_register", "facilities"): ({"facility_id": "XT-LOW"}, {"facility_id": "XT-HIGH"}),
    ("recidivism", "releases"): ({"release_id": "X1", "person_ref": "900000001"},
                                 {"release_id": "X2", "person_ref": "900000002"}),
    ("recidivism", "reconvictions"): ({"case_id": "Y1", "person_ref": "900000001"},
                                      {"case_id": "Y2", "person_ref": "900000002"}),
    ("reference_register", "facilities"): ({"facility_id": "XT-1"}, {"facility_id": "XT-2"}),
    ("national_reference", "values"): ({"period": "1900"}, {"period": "2199"}),
}
# The facility every census, regime, staffing and release row names: on the register from
# the earliest to the latest legal date, with the most places, so that the extreme
# populations are legal (population <= operational capacity, out of use <= capacity).
MID = {**REGISTER, "facility_id": "XT-MID", "capacity_places": "100000",
       "operational_capacity": "100000", "living_group_size": "", "valid_from": "1500-01-01",
       "valid_to": ""}


def _text(col: Column, value: int | date) -> str:
    if isinstance(value, date):
        return value.isoformat()[:7] if col.type == "month" else value.isoformat()
    return str(value)


def _highest(col: Column, row: dict[str, str]) -> int | date:
    """The column's highest legal value in this row: its range's high end, or the
    extraction date (or the other column's value) it may not be after."""
    limits = col.limits
    assert limits is not None
    high = limits.high
    if limits.not_after is None:
        return high
    bound = TODAY if limits.not_after == EXTRACTION else date.fromisoformat(
        row[limits.not_after])
    if col.type == "int":  # a year
        return min(high, bound.year)
    if col.type == "month":
        bound = bound.replace(day=1)
    return min(high, bound)


def extreme_rows(feed: str, spec: FileSpec) -> list[dict[str, str]]:
    """Two rows: every ranged column at its lowest, then at its highest legal value."""
    rows = []
    for end, keys in zip(("low", "high"), KEYS.get((feed, spec.stem), ({}, {})), strict=True):
        row = {**TEMPLATES[(feed, spec.stem)], **keys}
        ranged = [c for c in spec.columns if c.limits is not None]
        # columns other columns are bounded by first (birth_year after release_date)
        ranged.sort(key=lambda c: c.limits.not_after not in (None, EXTRACTION))
        for col in ranged:
            value = col.limits.low if end == "low" else _highest(col, row)
            row[col.name] = _text(col, value)
        missing = [c.name for c in spec.columns if c.required and not row.get(c.name)]
        assert not missing, f"{feed}/{spec.stem}: add template values for {missing}"
        rows.append(row)
    return rows


def _csv(spec: FileSpec, rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(spec.column_names), lineterminator="\n")
    writer.writeheader()
    writer.writerows([{c: row.get(c, "") for c in spec.column_names} for row in rows])
    return out.getvalue().encode()


def deliver_extremes(inbox: Path) -> dict[str, list[dict[str, str]]]:
    written: dict[str, list[dict[str, str]]] = {}
    for feed in FEEDS.values():
        files = {}
        for spec in feed.files:
            rows = extreme_rows(feed.name, spec)
            if (feed.name, spec.stem) == ("facility_register", "facilities"):
                rows.append(MID)
            written[f"{feed.name}/{spec.stem}"] = rows
            files[f"{spec.stem}.csv"] = _csv(spec, rows)
        period = PERIOD if feed.name in ("occupancy", "staffing") else None
        write_delivery(inbox, feed.name, "extremes", files, sender="TEST",
                       created_at=CREATED_AT, period=period)
    return written


def test_extreme_rows_hold_every_end_of_every_range():
    for feed in FEEDS.values():
        for spec in feed.files:
            low, high = extreme_rows(feed.name, spec)
            for col in spec.columns:
                if col.limits is None:
                    continue
                assert low[col.name] == _text(col, col.limits.low)
                if col.limits.not_after is None:
                    assert high[col.name] == _text(col, col.limits.high)


def test_extreme_legal_values_load_build_and_publish(tmp_path: Path):
    with penstat_home(tmp_path / "home") as paths:
        written = deliver_extremes(paths.inbox)
        outcomes = ingest_all(feeds=tuple(FEEDS))
        assert {(o["feed"], o["outcome"]) for o in outcomes} == {
            (feed, "loaded") for feed in FEEDS}, outcomes

        manifest = build_and_publish()  # dbt build: every model and data test passes

        check_publication(paths.current_publication)
        assert manifest, "the publication gate passed"
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        # the extremes went all the way through the casts of the warehouse
        fte = con.execute("SELECT max(fte) FROM staging.stg_staffing__monthly_staff"
                          ).fetchone()[0]
        cohorts = con.execute("SELECT min(cohort_year), max(cohort_year), max(age_at_release) "
                              "FROM intermediate.int_release_outcomes").fetchone()
        follow_up = con.execute("SELECT max(follow_up_end) FROM "
                                "staging.stg_recidivism_cohort__releases").fetchone()[0]
    finally:
        con.close()
    high_fte = FEEDS["staffing"].file("staffing").column("fte").limits.high
    assert fte == high_fte
    assert cohorts == (1900, TODAY.year, 0)  # born in the year of release, both ends
    assert follow_up.year >= TODAY.year + 49
    assert written["occupancy/occupancy"][1]["population"] == "100000"
