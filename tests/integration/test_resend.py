"""Resends and corrections, end to end through ingestion, the dbt build and publication.

- A byte-identical resend (under a new delivery_id, or the same one) is
  acknowledged (meta.receipts, archived) and ignored: nothing is loaded twice.
- A `replaces` delivery supersedes the rows it corrects; the raw history keeps
  both; the next publication shows the corrected value and its manifest lists
  both deliveries.
- Running ingest, build and publish again for the same input changes nothing
  (same mart checksums, no new version), and a second warehouse built from the
  same deliveries publishes byte-identical marts.
"""

from __future__ import annotations

import duckdb
import pytest

from penstat.ingestion.pipeline import ingest_feed
from penstat.publication.publish import current_manifest
from penstat.senders.delivery import write_delivery
from tests import builders as b
from tests.reliability import (
    build_and_publish,
    check_publication,
    ingest_all,
    penstat_home,
    sha256_file,
    write_baseline,
)


def query(path, sql, params=None):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def outcomes(feed: str) -> list[str]:
    """What ingestion decided for each pending delivery (builds not involved)."""
    return [o.outcome for o in ingest_feed(feed)]


def correction(inbox):
    rows = b.occupancy_rows()
    rows[0] = rows[0].replace(",310,", ",305,")  # TS-0001 on 2024-01-01: 305, not 310
    return b.occupancy(inbox, delivery_id="occ-fix", rows=rows, replaces="occ-base")


def resend(inbox, delivery_id):
    """The baseline occupancy delivery's bytes again, under `delivery_id`."""
    return b.occupancy(inbox, delivery_id=delivery_id)


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    """Baseline loaded; a resend, a correction, a publication, and a rerun of everything."""
    home = tmp_path_factory.mktemp("resend") / "home"
    with penstat_home(home) as paths:
        write_baseline(paths)
        ingest_all()
        raw_before = query(paths.warehouse, "SELECT count(*) FROM raw.occupancy__occupancy")
        resend(paths.inbox, "occ-base-again")
        resent = outcomes("occupancy")
        resend(paths.inbox, "occ-base")  # the same delivery_id once more
        resent_same_id = outcomes("occupancy")
        raw_after_resends = query(paths.warehouse,
                                  "SELECT count(*) FROM raw.occupancy__occupancy")
        correction(paths.inbox)
        corrected = outcomes("occupancy")
        published = build_and_publish()
        warehouse = sha256_file(paths.warehouse)
        # the same input again: every task body reruns, nothing changes
        rerun = {"ingest": ingest_all(), "publication": build_and_publish()}
        yield {"paths": paths, "published": published, "rerun": rerun,
               "resent": resent, "resent_same_id": resent_same_id, "corrected": corrected,
               "raw_before": raw_before, "raw_after_resends": raw_after_resends,
               "warehouse": warehouse}


def test_a_byte_identical_resend_is_acknowledged_and_ignored(story):
    paths = story["paths"]
    assert story["resent"] == ["resend_ignored"]
    assert story["resent_same_id"] == ["resend_ignored"]
    assert story["raw_after_resends"] == story["raw_before"]
    receipts = query(paths.warehouse, "SELECT delivery_id, outcome, message FROM meta.receipts "
                                      "WHERE outcome = 'resend_ignored' ORDER BY decided_at")
    assert [(r[0], r[1]) for r in receipts] == [("occ-base-again", "resend_ignored"),
                                                ("occ-base", "resend_ignored")]
    assert all("byte-identical to delivery occ-base" in r[2] for r in receipts)
    ledger = query(paths.warehouse, "SELECT delivery_id FROM meta.deliveries "
                                    "WHERE feed = 'occupancy' ORDER BY delivery_seq")
    assert ledger == [("occ-base",), ("occ-fix",)], "a resend never enters the ledger"
    assert (paths.archive / "occupancy" / "occ-base-again" / "occupancy.csv").is_file()
    assert (paths.archive / "occupancy" / "occ-base+2" / "occupancy.csv").is_file()
    assert not any(paths.quarantine.glob("*/*"))


def test_a_correction_supersedes_and_the_history_keeps_both(story):
    paths = story["paths"]
    assert story["corrected"] == ["loaded"]
    history = query(paths.warehouse,
                    "SELECT _delivery_id, population FROM raw.occupancy__occupancy "
                    "WHERE facility_id = 'TS-0001' ORDER BY _delivery_seq")
    assert history == [("occ-base", 310), ("occ-fix", 305)]
    assert query(paths.warehouse, "SELECT replaces FROM meta.deliveries "
                                  "WHERE delivery_id = 'occ-fix'") == [("occ-base",)]


def test_the_next_publication_reflects_the_correction_and_lists_its_deliveries(story):
    paths, published = story["paths"], story["published"]
    manifest = check_publication(paths.current_publication)
    assert manifest["version"] == published["version"]
    assert manifest["deliveries"] == ["facility_register/reg-1", "occupancy/occ-base",
                                      "staffing/stf-1", "recidivism/rec-1", "occupancy/occ-fix"]
    db = paths.current_publication / "published.duckdb"
    assert query(db, "SELECT facility_id, population FROM marts.mart_facility_daily WHERE "
                     "census_date = DATE '2024-01-01' ORDER BY 1") == [
        ("TS-0001", 305), ("TS-0002", 18), ("TS-0003", 100)], "corrected, nothing doubled"


def test_rerunning_every_task_for_the_same_input_changes_nothing(story):
    paths, published, rerun = story["paths"], story["published"], story["rerun"]
    assert [o["outcome"] for o in rerun["ingest"]] == [], "nothing pending, nothing reloaded"
    assert rerun["publication"]["unchanged"] is True
    assert rerun["publication"]["version"] == published["version"]
    assert rerun["publication"]["marts"] == published["marts"]
    assert current_manifest(paths)["version"] == published["version"]
    versions = sorted(p.name for p in paths.published.iterdir() if not p.name.startswith("."))
    assert versions == sorted(["current", published["version"]])


def test_a_second_warehouse_from_the_same_deliveries_publishes_identical_marts(story,
                                                                              tmp_path):
    with penstat_home(tmp_path / "again") as paths:
        write_baseline(paths)
        resend(paths.inbox, "occ-base-again")
        correction(paths.inbox)
        outcomes = ingest_all()
        assert [o["outcome"] for o in outcomes] == ["loaded", "loaded", "resend_ignored",
                                                    "loaded", "loaded", "loaded"]
        again = build_and_publish()
    assert again["marts"] == story["published"]["marts"]


def test_a_correction_of_a_correction_and_a_resend_of_a_correction(tmp_path):
    """Chains work: the latest delivery wins per key; resending any of them is ignored."""
    with penstat_home(tmp_path / "home") as paths:
        b.register(paths.inbox)
        b.occupancy(paths.inbox, delivery_id="occ-base")
        ingest_all(("facility_register", "occupancy"))
        correction(paths.inbox)
        assert outcomes("occupancy") == ["loaded"]
        rows = b.occupancy_rows()
        rows[0] = rows[0].replace(",310,", ",300,")
        b.occupancy(paths.inbox, delivery_id="occ-fix-2", rows=rows, replaces="occ-fix")
        assert outcomes("occupancy") == ["loaded"]
        correction_again = b.occupancy_rows()
        correction_again[0] = correction_again[0].replace(",310,", ",305,")
        write_delivery(paths.inbox, "occupancy", "occ-fix-resent",
                       {"occupancy.csv": b.csv(b.OCCUPANCY_HEADER, correction_again)},
                       sender="TEST", created_at="2024-02-01T00:00:00Z",
                       period=("2024-01-01", "2024-01-31"), replaces="occ-base")
        assert outcomes("occupancy") == ["resend_ignored"]
        latest = query(paths.warehouse, """
            SELECT population FROM raw.occupancy__occupancy WHERE facility_id = 'TS-0001'
            QUALIFY row_number() OVER (PARTITION BY facility_id, census_date
                                       ORDER BY _delivery_seq DESC) = 1""")
        assert latest == [(300,)]
