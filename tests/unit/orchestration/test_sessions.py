"""Stopping a component stops every process of its session, other process groups too.

Airflow's task supervisor starts each task process in a process group of its
own: signalling the worker's group alone leaves the task running (a "stopped"
stack still writing the warehouse). Here a leader starts a child in another
process group, as the supervisor does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from penstat.core.processes import pid_alive
from penstat.orchestration.services.sessions import session_members, stop_sessions

LEADER = textwrap.dedent("""
    import os, subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                             process_group=0)  # its own group, like a task process
    print(child.pid, flush=True)
    time.sleep(600)
""")


def start_leader() -> tuple[subprocess.Popen, int]:
    leader = subprocess.Popen([sys.executable, "-c", LEADER], stdout=subprocess.PIPE,
                              text=True, start_new_session=True)
    child = int(leader.stdout.readline())
    return leader, child


def test_a_child_in_another_group_is_stopped_with_the_session():
    leader, child = start_leader()
    try:
        assert os.getpgid(child) != os.getpgid(leader.pid)
        assert set(session_members(leader.pid)) == {leader.pid, child}
        stop_sessions([leader.pid], timeout=10)
        leader.wait(timeout=10)
        assert not pid_alive(child)
        assert session_members(leader.pid) == []
    finally:
        for pid in (leader.pid, child):
            if pid_alive(pid):
                os.kill(pid, 9)


def test_signalling_the_group_alone_misses_it():
    """The bad case the session stop exists for."""
    leader, child = start_leader()
    try:
        os.killpg(leader.pid, 15)
        leader.wait(timeout=10)
        assert pid_alive(child)
    finally:
        stop_sessions([leader.pid], timeout=5)
        assert not pid_alive(child)
