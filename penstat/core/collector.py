"""Python's cyclic garbage collector, paused around a burst of allocation.

Building the disclosure step's linked tables creates some hundred thousand small
objects (cells, units, their keys) that hold no reference cycles. Each of the
collector's passes while they are made walks the whole heap of the process (the
imported Great Expectations, dbt and Airflow modules among it): at scale 10 that was
0.75 s of the 1.0 s spent on the staff and regime family of a daily publication
(docs/benchmarks.md). Reference counting still frees everything that is not in a
cycle while the collector is paused; cycles made meanwhile are collected when it
resumes.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic collector for the block (nested use is safe: the outermost
    pause resumes it, and only if it was running before)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
