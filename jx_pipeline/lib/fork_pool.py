"""Work on every core from one step: workers forked from the step's process share what it built before the fork
(the address parser and its gazetteer, Great Expectations' context) copy-on-write instead of building it again;
batches go out and come back in order, so the result does not depend on how many workers there are
(``JX_WORKERS``, default one per core this process may run on; 1: in this process). Used by linking (parsing
new addresses) and staging (a department's feeds).

A worker killed mid-batch (e.g. out of memory) fails the work with ``BrokenProcessPool`` instead of leaving it
waiting; a process that may not have children (a Celery worker's, which is a daemon) works in process."""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor

WORKERS_ENV = "JX_WORKERS"
_WORK: Callable | None = None  # what the forked workers apply, set before they fork


def workers() -> int:
    if multiprocessing.current_process().daemon:
        return 1
    return max(1, int(os.environ.get(WORKERS_ENV) or len(os.sched_getaffinity(0))))


def _default_signals() -> None:
    # the parent's handlers (Dagster's turn SIGTERM/SIGINT into an exception) are not the workers'
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _apply(batch: list) -> list:
    return [_WORK(x) for x in batch]


def imap_batches(work: Callable, batches: Iterable[list], parallel: bool = True) -> Iterator[list]:
    """``[work(x) for x in batch]`` for each batch, yielded in order; on ``workers()`` forked processes when
    ``parallel`` (the caller goes on with each result while the workers compute the next)."""
    global _WORK
    n = workers() if parallel else 1
    if isinstance(batches, list):  # no more workers than batches
        n = min(n, len(batches)) or 1
    if n == 1:
        for batch in batches:
            yield [work(x) for x in batch]
        return
    _WORK = work
    pool = ProcessPoolExecutor(
        n, mp_context=multiprocessing.get_context("fork"), initializer=_default_signals
    )
    try:
        pending: deque = deque()
        for batch in batches:
            pending.append(pool.submit(_apply, batch))
            if len(pending) > n:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        _WORK = None
        # a batch failed, the step was stopped or the caller went away: the rest is not waited for
        stopped = bool(pending)
        procs = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=not stopped, cancel_futures=stopped)
        for proc in procs if stopped else ():  # the running ones too
            proc.terminate()


def on_connections(conn, url: str, work: Callable) -> Callable:
    """``work(connection, x)`` as the one-argument function ``imap_batches`` applies: in this process on ``conn``,
    in a forked worker on a connection of its own for each call (the parent's, inherited by the fork, is never
    used there)."""
    parent = os.getpid()

    def run(x):
        if os.getpid() == parent:
            return work(conn, x)
        from jx_pipeline.lib.pg import STEP_WAIT_S, connect

        with connect(url, what="warehouse", wait=STEP_WAIT_S) as own:
            return work(own, x)

    return run


def map_batches(
    work: Callable, batches: Iterable[list], write: Callable[[list], None], parallel: bool = True
) -> None:
    """``write([work(x) for x in batch])`` for each batch in order (``imap_batches``)."""
    for results in imap_batches(work, batches, parallel):
        write(results)
