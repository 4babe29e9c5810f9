"""Parsing many texts on every core: workers forked once the parser is built share it (copy-on-write) instead of
each building the gazetteer again; batches go out and come back in order, so the result does not depend on how
many workers there are (``JX_PARSE_WORKERS``, default one per core; 1: in this process)."""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable

WORKERS_ENV = "JX_PARSE_WORKERS"
_WORK: Callable | None = None  # what the forked workers apply, set before they fork


def workers() -> int:
    return max(1, int(os.environ.get(WORKERS_ENV) or os.cpu_count() or 1))


def _apply(batch: list) -> list:
    return [_WORK(x) for x in batch]


def map_batches(
    work: Callable, batches: Iterable[list], write: Callable[[list], None], parallel: bool = True
) -> None:
    """``write([work(x) for x in batch])`` for each batch in order; on ``workers()`` forked processes when
    ``parallel`` (this process keeps reading batches and writing results meanwhile)."""
    global _WORK
    n = workers() if parallel else 1
    if n == 1:
        for batch in batches:
            write([work(x) for x in batch])
        return
    _WORK = work
    try:
        with multiprocessing.get_context("fork").Pool(n) as pool:
            pending: deque = deque()
            for batch in batches:
                pending.append(pool.apply_async(_apply, (batch,)))
                if len(pending) > n:
                    write(pending.popleft().get())
            while pending:
                write(pending.popleft().get())
    finally:
        _WORK = None
