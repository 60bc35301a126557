"""TEST-ONLY fault injection: SIGKILL this process at a named point.

The crash-safety tests (tests/integration/test_crash_safety.py) run ingestion, the dbt
build and publication as subprocesses with

    PENSTAT_TEST_KILL_AT=<point>[@<n>]

and the process kills itself (SIGKILL: no cleanup, no `finally`) the n-th time
(default: the first) it reaches `<point>`. Unset, `kill_point` does nothing;
nothing in production sets the variable. The points are listed in KILL_POINTS
so the test can check it exercised every one of them.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

KILL_ENV = "PENSTAT_TEST_KILL_AT"

KILL_POINTS = (
    # ingestion (penstat/ingestion/pipeline.py, penstat/ingestion/folder_moves.py)
    "ingest.checked",        # every check passed, nothing written yet
    "ingest.loading",        # raw rows and ledger row inserted, transaction not committed
    "ingest.committed",      # committed, delivery folder still in the inbox
    "ingest.quarantining",   # reason files written, folder not yet moved to quarantine
    "ingest.decoding",       # a partial clear (transcoded) copy of a file is on disk
    # dbt build (penstat/orchestration/tasks.py)
    "build.started",         # build recorded as started, dbt not yet run
    "build.finished",        # dbt build done, build not yet recorded as finished
    # publication (penstat/publication/publish.py)
    "publish.staged",        # draft publication written, gate not run
    "publish.gated",         # gate passed, manifest not written
    "publish.renamed",       # version folder in place, `current` not switched
    "publish.linked",        # new symlink made under a temporary name, not renamed
    "publish.switched",      # `current` switched, the disclosure ledger not yet merged
)

_hits: Counter[str] = Counter()


def kill_point(name: str) -> None:
    spec = os.environ.get(KILL_ENV)
    if not spec:
        return
    point, _, nth = spec.partition("@")
    if point != name:
        return
    _hits[name] += 1
    if _hits[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
