"""requirements-celery.lock: resolved with requirements.lock, never moving one of its pins."""

from __future__ import annotations

import re
from pathlib import Path

from penstat.core.locations import REPO_ROOT

PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==(?P<version>\S+)")
REQUIREMENT = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        m = PIN.match(line.strip())
        if m:
            found[_norm(m["name"])] = m["version"]
    return found


def test_the_celery_lock_agrees_with_every_pin_of_the_main_lock() -> None:
    main, celery = pins(REPO_ROOT / "requirements.lock"), pins(REPO_ROOT /
                                                               "requirements-celery.lock")
    moved = {name: (main[name], celery[name]) for name in main.keys() & celery.keys()
             if main[name] != celery[name]}
    assert moved == {}
    assert main["apache-airflow"] == celery["apache-airflow"]


def test_the_celery_lock_pins_what_the_stack_needs() -> None:
    celery = pins(REPO_ROOT / "requirements-celery.lock")
    wanted = [_norm(REQUIREMENT.match(line)["name"])
              for line in (REPO_ROOT / "requirements-celery.in").read_text().splitlines()
              if REQUIREMENT.match(line)]
    assert {"apache-airflow-providers-celery", "apache-airflow-providers-postgres",
            "apache-airflow-providers-fab", "psycopg2-binary", "asyncpg",
            "psycopg"} <= set(wanted)
    assert [name for name in wanted if name not in celery] == []
    assert {"celery", "kombu", "redis"} <= celery.keys()


def test_a_moved_pin_is_caught(tmp_path) -> None:
    main = pins(REPO_ROOT / "requirements.lock")
    moved = tmp_path / "celery.lock"
    moved.write_text(f"sqlalchemy=={main['sqlalchemy']}.post9\n")
    assert pins(moved)["sqlalchemy"] != main["sqlalchemy"]
