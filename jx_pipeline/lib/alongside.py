"""A check's independent count, made on a second connection in the snapshot of the rebuild it checks.

A blocking check compares a rebuilt table with something counted apart: the current staged records' keys (4-5 s
at scale 0.1 for links, ~4 s for memberships) or the persons linked to an entity (~6 s for the marts). That count
does not depend on what the rebuild writes, yet it ran after the rebuild, on the same core, in every run. Started
when the rebuild takes its snapshot, on a connection of its own that imports that snapshot
(``pg_export_snapshot``), it runs on the other core while the rebuild works; the check reads it before the
rebuild commits. Same snapshot, same figure: only when it is ready differs.

Its reads wait at most ``LOCK_WAIT`` for a lock: a writer queued for a table the rebuild holds (a swap, a staged
partition replaced) would queue this connection behind it while the rebuild waits for the count, a deadlock the
server cannot see. Then the count is made on the rebuild's own connection, as it was before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

import psycopg
from psycopg import IsolationLevel, sql

from jx_pipeline.lib.pg import connect
from jx_pipeline.lib.warehouse import session_memory

T = TypeVar("T")
LOCK_WAIT = "1s"


class Alongside(Generic[T]):
    """``work(conn)`` run once on a connection to ``url`` that sees the snapshot of the connection given to
    ``start``; ``result()`` waits for it (or raises its error). Never started: ``result(conn)`` runs it on
    ``conn`` itself, as before."""

    def __init__(self, url: str, work: Callable[[psycopg.Connection], T]):
        self.url, self.work = url, work
        self._thread: threading.Thread | None = None
        self._value: T | None = None
        self._error: BaseException | None = None
        self.inline = False  # made on the rebuild's connection after all (a lock wait ran out)

    def start(self, conn: psycopg.Connection) -> None:
        """Begin on the other connection; ``conn`` is inside the REPEATABLE READ transaction whose snapshot the
        work must see (it stays open until ``result``, which the caller reads before committing)."""
        snapshot = conn.execute("select pg_export_snapshot()").fetchone()[0]
        self._thread = threading.Thread(target=self._run, args=(snapshot,), name="jx-alongside", daemon=True)
        self._thread.start()

    def _run(self, snapshot: str) -> None:
        try:
            with connect(self.url, what="warehouse") as conn:
                session_memory(conn)
                conn.execute(sql.SQL("set lock_timeout = {}").format(sql.Literal(LOCK_WAIT)))
                conn.commit()
                conn.isolation_level = IsolationLevel.REPEATABLE_READ
                with conn.transaction():
                    conn.execute(sql.SQL("set transaction snapshot {}").format(sql.Literal(snapshot)))
                    self._value = self.work(conn)
        except BaseException as exc:  # handed to result(): the check fails with it, not the thread silently
            self._error = exc

    def result(self, conn: psycopg.Connection) -> T:
        """The work's value: from the other connection, or made on ``conn`` (inside the snapshot's transaction)
        when it was never started or its lock wait ran out."""
        if self._thread is not None:
            self._thread.join()
            if isinstance(self._error, psycopg.errors.LockNotAvailable):
                self.inline = True
            elif self._error is not None:
                raise self._error
            else:
                return self._value  # type: ignore[return-value]
        return self.work(conn)
