"""Reads in a step's snapshot on a second connection, while the step goes on.

A blocking check's independent count (the current records of every staged feed; the persons with a linked
population record) reads whole tables the step does not write. On the step's own connection it waited for the
step's work, and the step for it, on one core of the machine's two. ``Aside`` exports the step's snapshot
(``pg_export_snapshot``) and runs the read in a thread, on a connection of its own that imports it: it sees the
same moment as the step, none of the step's own writes, and nothing committed since. ``result`` waits for it.
The aside's statements get no parallel workers, so that it keeps to the core the step leaves free.

The step may hold a lock until it commits that the aside would wait for (or a writer queued behind the step's
locks may stand in the aside's way); the aside gives up after ``LOCK_WAIT`` and the read runs on the step's
connection instead, as it did before, so the step never waits on a wait it causes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

import psycopg
from psycopg import IsolationLevel, sql

from jx_pipeline.lib.pg import SESSION_OPTIONS
from jx_pipeline.lib.warehouse import session_memory

T = TypeVar("T")
LOCK_WAIT = "1s"
# the aside reads in one process: with parallel workers it took the step's core too. At scale 0.1 a step's
# single-process read took 1.54x its time alone beside a 2-worker aside, 0.96x beside ours; 13.7 s vs 13.0 s
# even when it then waited for ours, the slower aside (bench/aside_contention.py)
WORKERS = 0


class Aside(Generic[T]):
    """``read(conn)`` started on a second connection in ``conn``'s snapshot (``conn`` in a REPEATABLE READ
    transaction that stays open until ``result`` returns)."""

    def __init__(self, conn: psycopg.Connection, read: Callable[[psycopg.Connection], T]):
        self._read = read
        self._value: T | None = None
        self.error: str | None = None  # why the aside did not count (then the step counted)
        isolation = conn.execute("select current_setting('transaction_isolation')").fetchone()[0]
        if conn.autocommit or isolation not in ("repeatable read", "serializable"):
            mode = "autocommit" if conn.autocommit else isolation
            raise ValueError(f"an aside shares a transaction's snapshot: the step's is {mode}, not one")
        snapshot = conn.execute("select pg_export_snapshot()").fetchone()[0]
        extra = {"password": conn.info.password} if conn.info.password else {}
        self._thread = threading.Thread(
            target=self._run, args=(conn.info.dsn, extra, snapshot), name="jx-aside", daemon=True
        )
        self._thread.start()

    def _run(self, dsn: str, extra: dict, snapshot: str) -> None:
        try:
            options = (
                f"{SESSION_OPTIONS} -c lock_timeout={LOCK_WAIT} -c application_name=jx-aside"
                f" -c max_parallel_workers_per_gather={WORKERS}"
            )
            with psycopg.connect(dsn, options=options, connect_timeout=10, **extra) as conn:
                session_memory(conn)  # the step's sort memory: the counts sort every staged table's versions
                conn.isolation_level = IsolationLevel.REPEATABLE_READ
                with conn.transaction():
                    conn.execute(sql.SQL("set transaction snapshot {}").format(sql.Literal(snapshot)))
                    self._value = self._read(conn)
        except Exception as exc:  # any failure: the step reads itself
            self.error = (
                f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            )

    @property
    def counted(self) -> str:
        """Where the value was counted, for the check's metadata (after ``result``)."""
        return (
            "aside (second connection)" if self.error is None else f"in the step (aside failed: {self.error})"
        )

    def result(self, conn: psycopg.Connection) -> T:
        """The aside's value, or, when it could not count, ``read(conn)`` on the step's connection."""
        self._thread.join()
        if self.error is not None:
            return self._read(conn)
        return self._value  # type: ignore[return-value]
