"""Deterministic random streams: one independent generator per (seed, component) pair.

Each feed and each world component draws from its own stream, so adding a feed never changes another's
output, and feeds can be written in any order or in parallel with byte-identical results.
"""

from __future__ import annotations

import hashlib

import numpy as np


def stream(seed: int, *parts: object) -> np.random.Generator:
    digest = hashlib.sha256(repr((seed, *parts)).encode()).digest()
    return np.random.Generator(np.random.PCG64(int.from_bytes(digest[:16], "little")))
