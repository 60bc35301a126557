"""Setting environment variables for code that reads them (dbt, GX, task bodies), scoped."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path


@contextmanager
def scoped_env(**values: str) -> Iterator[None]:
    """Set environment variables for the body, then restore what was there before."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def penstat_home_env(home: Path) -> AbstractContextManager[None]:
    """Set PENSTAT_HOME for code that reads it from the environment, then restore it."""
    return scoped_env(PENSTAT_HOME=str(home))
