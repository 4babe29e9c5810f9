"""Which failures are worth another attempt, and the one retry policy every asset step carries.

A database restart, a dropped connection, a serialization failure or a deadlock says nothing about the data: the
same step a few seconds later succeeds, and because every load replaces its partition (or its table) in one
transaction, running it again is safe. A data error (a JxError about a file, a bad value, a failed expectation)
fails the same way every time, so it is reported at once and never retried.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import psycopg

from jx_pipeline.lib.errors import JxError

# serialization failure, deadlock, the server shutting down / starting up, connection exceptions (class 08)
TRANSIENT_SQLSTATES = {"40001", "40P01", "57P01", "57P02", "57P03", "53300"}
TRANSIENT_CLASSES = ("08",)

# Step retries: after ~2 s, ~6 s, ~14 s (±2 s): together longer than a PostgreSQL restart or failover.
POLICY = dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def transient(exc: BaseException) -> bool:
    """True for a database failure that another attempt can get past; False for anything about the data."""
    for e in _chain(exc):
        if isinstance(e, JxError):
            return False
        if isinstance(e, psycopg.Error):
            state = e.sqlstate
            if state is None:  # raised by libpq, not the server: connection refused, lost or closed
                return isinstance(e, psycopg.OperationalError | psycopg.InterfaceError)
            return state in TRANSIENT_SQLSTATES or state.startswith(TRANSIENT_CLASSES)
    return False


@contextmanager
def data_errors_final() -> Iterator[None]:
    """Lets transient database errors through (the step's RetryPolicy retries them) and turns every other
    error into a Failure that Dagster does not retry, with the JxError's message and fix as its description."""
    try:
        yield
    except Exception as exc:
        if transient(exc) or isinstance(exc, dg.Failure):
            raise
        text = exc.render() if isinstance(exc, JxError) else f"{type(exc).__name__}: {exc}"
        raise dg.Failure(description=text, allow_retries=False) from exc
