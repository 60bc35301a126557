"""Named, independent random streams derived from one seed.

Every part of the synthetic system draws from its own stream, so adding a draw
to one part (or extending the simulated horizon) never shifts the numbers of
another part. Same seed and name => same stream, in every process.
"""

from __future__ import annotations

import zlib

import numpy as np


def stream(seed: int, name: str) -> np.random.Generator:
    """The generator for one named part of the system (e.g. 'register')."""
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    key = zlib.crc32(name.encode("utf-8"))
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(key,)))
