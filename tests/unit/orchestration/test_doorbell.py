"""The `_READY` doorbell cannot be jammed: only a regular file rings; a directory, a
symlink or a FIFO under that name is reported and set aside, and the watcher goes on
to ring for the next regular `_READY`."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow.sdk import AssetWatcher
from airflow.triggers.base import BaseEventTrigger
from structlog.testing import capture_logs

from penstat.contract.feeds import DOORBELL
from penstat.orchestration.assets import DOORBELL_POKE_SECONDS, inbox_asset
from penstat.orchestration.doorbell import SET_ASIDE_INFIX, DoorbellTrigger

POKE = 0.02


def trigger_for(inbox: Path) -> DoorbellTrigger:
    return DoorbellTrigger(directory=str(inbox), filename=DOORBELL, poke_interval=POKE)


async def _watch(trigger: DoorbellTrigger, ring: Path, polls: int = 10) -> dict:
    """Run the trigger for `polls` scans with whatever is at `ring`, assert it neither
    fired nor failed, then ring with a regular file and return the event's payload."""
    events = trigger.run()
    pending = asyncio.ensure_future(anext(events))
    try:
        await asyncio.sleep(POKE * polls)
        assert not pending.done(), (
            pending.exception() or f"fired for a non-regular {DOORBELL}: {pending.result()}")
        ring.touch()
        event = await asyncio.wait_for(pending, timeout=10)
    finally:
        pending.cancel()
        await events.aclose()
    return event.payload


def set_aside(inbox: Path) -> list[Path]:
    return sorted(p for p in inbox.iterdir() if SET_ASIDE_INFIX in p.name)


@pytest.fixture
def logs() -> Iterator[list[dict]]:
    """What the trigger logged (Airflow triggers log through structlog, to the trigger log)."""
    with capture_logs() as captured:
        yield captured


def warnings(logs: list[dict]) -> list[str]:
    return [e["event"] for e in logs if e.get("log_level") == "warning"]


def test_a_regular_file_rings_and_is_deleted(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    payload = asyncio.run(_watch(trigger_for(inbox), inbox / DOORBELL, polls=2))
    assert payload == {"filepath": str(inbox / DOORBELL)}
    assert list(inbox.iterdir()) == []


def test_a_directory_doorbell_is_set_aside_and_the_next_ring_fires(tmp_path, logs):
    inbox = tmp_path / "inbox"
    (inbox / DOORBELL / "inside").mkdir(parents=True)
    (inbox / DOORBELL / "inside" / "kept.txt").write_text("the sender's")

    payload = asyncio.run(_watch(trigger_for(inbox), inbox / DOORBELL))

    assert payload == {"filepath": str(inbox / DOORBELL)}
    assert not (inbox / DOORBELL).exists()  # the regular ring was deleted
    [aside] = set_aside(inbox)
    assert (aside / "inside" / "kept.txt").read_text() == "the sender's"  # moved, unread
    [warning] = warnings(logs)
    assert "is a directory, not a regular file" in warning and aside.name in warning


def test_a_symlink_doorbell_is_set_aside_without_following_it(tmp_path, logs):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    target = tmp_path / "elsewhere.txt"
    target.write_text("not penstat's")
    (inbox / DOORBELL).symlink_to(target)

    asyncio.run(_watch(trigger_for(inbox), inbox / DOORBELL))

    assert target.read_text() == "not penstat's"
    [aside] = set_aside(inbox)
    assert aside.is_symlink() and aside.readlink() == target
    assert "is a symbolic link" in warnings(logs)[0]


def test_a_fifo_doorbell_is_set_aside_without_opening_it(tmp_path, logs):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    os.mkfifo(inbox / DOORBELL)  # opening it for reading would block the triggerer

    asyncio.run(_watch(trigger_for(inbox), inbox / DOORBELL))

    [aside] = set_aside(inbox)
    assert aside.is_fifo()
    assert "is a FIFO" in warnings(logs)[0]


def test_a_doorbell_that_cannot_be_set_aside_is_reported_once_and_watched_past(
        tmp_path, logs, monkeypatch):
    inbox = tmp_path / "inbox"
    (inbox / DOORBELL).mkdir(parents=True)

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied", src)

    monkeypatch.setattr("penstat.orchestration.doorbell.os.rename", refuse)

    async def scenario() -> dict:
        trigger = trigger_for(inbox)
        events = trigger.run()
        pending = asyncio.ensure_future(anext(events))
        try:
            await asyncio.sleep(POKE * 10)
            assert not pending.done(), pending.exception()
            (inbox / DOORBELL).rmdir()  # the operator removes it
            (inbox / DOORBELL).touch()  # the sender rings again
            return (await asyncio.wait_for(pending, timeout=10)).payload
        finally:
            pending.cancel()
            await events.aclose()

    assert asyncio.run(scenario()) == {"filepath": str(inbox / DOORBELL)}
    [warning] = warnings(logs)  # once, not once per scan
    assert "cannot be set aside" in warning and "ignored" in warning


def test_a_missing_inbox_is_waited_for(tmp_path):
    inbox = tmp_path / "inbox"

    async def scenario() -> dict:
        events = trigger_for(inbox).run()
        pending = asyncio.ensure_future(anext(events))
        try:
            await asyncio.sleep(POKE * 5)
            assert not pending.done(), pending.exception()
            inbox.mkdir()
            (inbox / DOORBELL).touch()
            return (await asyncio.wait_for(pending, timeout=10)).payload
        finally:
            pending.cancel()
            await events.aclose()

    assert asyncio.run(scenario()) == {"filepath": str(inbox / DOORBELL)}


def test_the_trigger_serializes_to_itself_and_serves_an_asset_watcher(tmp_path, monkeypatch):
    monkeypatch.setenv("PENSTAT_HOME", str(tmp_path / "home"))
    [watcher] = inbox_asset("occupancy").watchers
    assert isinstance(watcher, AssetWatcher)
    trigger = watcher.trigger
    assert isinstance(trigger, DoorbellTrigger) and isinstance(trigger, BaseEventTrigger)
    classpath, kwargs = trigger.serialize()
    assert classpath == "penstat.orchestration.doorbell.DoorbellTrigger"
    assert kwargs == {"directory": str(tmp_path / "home" / "inbox" / "occupancy"),
                      "filename": DOORBELL, "poke_interval": DOORBELL_POKE_SECONDS}
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(__import__(module, fromlist=[name]), name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert rebuilt.shared_stream_key() == trigger.shared_stream_key()
