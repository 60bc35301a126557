"""How soon the local stack reacts: the scheduler's idle sleep and the doorbell's poke.

The figures behind the choice (a daily delivery at scale 10, 29 s -> 25 s from
`_READY` to the publication; an idle scheduler at about 8 % of a core) are in
docs/operations.md and docs/benchmarks.md, never in an assertion.
"""

from __future__ import annotations

from penstat.contract.layout import Paths
from penstat.orchestration.assets import DOORBELL_POKE_SECONDS, inbox_asset
from penstat.orchestration.local_airflow import IDLE_SLEEP_ENV, IDLE_SLEEP_SECONDS, Stack


def test_an_idle_scheduler_looks_again_sooner_than_airflows_default(tmp_path, monkeypatch):
    monkeypatch.delenv(IDLE_SLEEP_ENV, raising=False)
    env = Stack(Paths(tmp_path)).environment(8793)
    assert env[IDLE_SLEEP_ENV] == IDLE_SLEEP_SECONDS
    assert 0 < float(IDLE_SLEEP_SECONDS) < 1.0  # Airflow's default is 1 s


def test_an_operators_idle_sleep_wins(tmp_path, monkeypatch):
    monkeypatch.setenv(IDLE_SLEEP_ENV, "2")  # less idle CPU, slower hops
    env = Stack(Paths(tmp_path)).environment(8793)
    assert env[IDLE_SLEEP_ENV] == "2"


def test_the_doorbell_is_looked_at_twice_a_second(tmp_path, monkeypatch):
    monkeypatch.setenv("PENSTAT_HOME", str(tmp_path))
    (watcher,) = inbox_asset("occupancy").watchers
    assert watcher.trigger.poke_interval == DOORBELL_POKE_SECONDS <= 0.5
