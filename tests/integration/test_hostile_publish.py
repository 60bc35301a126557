"""After every hostile delivery the pipeline still publishes, end to end.

The unit tests (tests/unit/ingestion/test_hostile_*.py) show each hostile case
quarantined and the next valid delivery loaded. Here the crash-inducing cases are
sent one after the other into a running warehouse, each ingested on its own, then a
valid delivery follows, and the task bodies build and publish: the publication holds
the valid deliveries and none of the hostile ones, nothing was written outside
PENSTAT_HOME, and no raw identifier rests outside archive/ and quarantine/.
"""

from __future__ import annotations

import pytest

from penstat.publication.publish import current_manifest
from tests import builders as b
from tests.hostile import sealed
from tests.reliability import (
    build_and_publish,
    find_identifiers,
    ingest_all,
    person_refs_in,
    write_baseline,
)
from tests.unit.ingestion.test_hostile_crash import CASES


@pytest.mark.timeout(600)
def test_hostile_deliveries_never_stop_a_publication(paths, tmp_path, monkeypatch) -> None:
    with sealed(tmp_path, monkeypatch):
        baseline = write_baseline(paths)
        assert {o["outcome"] for o in ingest_all()} == {"loaded"}

        for case, (write, rule) in sorted(CASES.items()):
            write(paths.inbox)
            outcomes = [o for o in ingest_all(("occupancy",))
                        if o["outcome"] != "awaiting_build"]  # the baseline, not built yet
            assert [o["outcome"] for o in outcomes] == ["quarantined"], (case, outcomes)
            assert f"[{rule}]" in outcomes[0]["reason"], (case, outcomes[0]["reason"])

        b.occupancy(paths.inbox, delivery_id="occ-good", rows=b.occupancy_rows("2024-01-05"))
        assert [o["outcome"] for o in ingest_all(("occupancy",))
                if o["outcome"] != "awaiting_build"] == ["loaded"]
        published = build_and_publish()

    manifest = current_manifest(paths)
    assert manifest["version"] == published["version"]
    assert manifest["validation"]["success"] is True
    assert sorted(manifest["deliveries"]) == sorted([*baseline, "occupancy/occ-good"])
    assert len(list((paths.quarantine / "occupancy").iterdir())) == len(CASES)
    refs = person_refs_in(paths.archive / "recidivism")
    assert refs and find_identifiers(paths.home, refs,
                                     skip=(paths.archive, paths.quarantine)) == []
