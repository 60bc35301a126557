"""Signal every process of a session: a Celery worker and all it started.

A component starts as a session leader (start_new_session). Airflow's task
supervisor puts each task process in a process group of its own, so signalling
the worker's process group misses the task processes; they stay in the worker's
session, which is what is signalled here (Linux /proc).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from penstat.core.processes import pid_alive


def session_members(leader: int) -> list[int]:
    """Live processes whose session id is `leader` (the leader included)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            pid = int(entry.name)
            try:
                if os.getsid(pid) == leader and pid_alive(pid):
                    members.append(pid)
            except OSError:
                continue
    return members


def signal_session(leader: int, sig: int) -> bool:
    """Send `sig` to every process of the session; False if none was alive."""
    sent = False
    for pid in session_members(leader):
        try:
            os.kill(pid, sig)
            sent = True
        except ProcessLookupError:
            continue
    return sent


def stop_sessions(leaders: list[int], timeout: float) -> None:
    """SIGTERM every process of these sessions, then SIGKILL what is left at `timeout`."""
    for leader in leaders:
        signal_session(leader, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(session_members(s) for s in leaders):
        time.sleep(0.5)
    for leader in leaders:
        signal_session(leader, signal.SIGKILL)
