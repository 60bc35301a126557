"""What the e2e modules share: the in-process publication of the synthetic deliveries.

Both Airflow stacks (LocalExecutor, Celery) publish the same generated deliveries
(scale 0.1, seed 7, history ending the day before the run) and compare their
publication with the one `penstat ingest all / build / publish` makes of them in one
process. That reference is made once per session and history end."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from penstat.contract.layout import Paths
from penstat.senders.synthetic import generate
from tests.conftest import TEST_KEY
from tests.reliability import RunDay

SCALE, SEED = 0.1, 7
CLI_TIMEOUT = 900


@dataclass(frozen=True)
class InProcess:
    paths: Paths
    codes: dict[str, int]  # exit code of each `penstat` step (3: a feed is late)


@pytest.fixture(scope="session")
def in_process_publication(tmp_path_factory) -> Callable[[date], InProcess]:
    """`until` -> the `penstat` CLI's publication of the deliveries generated up to it."""
    made: dict[date, InProcess] = {}

    def publication(until: date) -> InProcess:
        if until not in made:
            home = tmp_path_factory.mktemp("in-process") / "home"
            generate(Paths(home).inbox, scale=SCALE, seed=SEED, split="year", until=until)
            env = {**os.environ, "PENSTAT_HOME": str(home), "PENSTAT_PSEUDONYM_KEY": TEST_KEY}
            penstat = str(Path(sys.executable).parent / "penstat")
            codes = {}
            for step in (["ingest", "all"], ["build"], ["publish"]):
                done = subprocess.run([penstat, *step], env=env, capture_output=True,
                                      text=True, timeout=CLI_TIMEOUT)
                codes[step[0]] = done.returncode
                assert done.returncode in (0, 3), f"penstat {step}: {done.stdout}{done.stderr}"
            made[until] = InProcess(Paths(home), codes)
        return made[until]

    return publication


@pytest.fixture(scope="module")
def run_day() -> RunDay:
    """The module's run day, taken when its first test (its stack) starts."""
    return RunDay.today()
