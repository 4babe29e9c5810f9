"""Connections to PostgreSQL with errors a user can act on (URL shown with the password masked).

A pipeline step asks to ``wait`` a bounded time for a server that refuses connections or is starting up (a
restart, a failover); a wrong password or a missing database fails at once, since waiting cannot fix it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TypeVar

import psycopg
from psycopg import sql

from jx_pipeline.lib.errors import JxError, mask_url

T = TypeVar("T")
# Server settings of every connection the pipeline opens. JIT off: its compile time exceeds its gain on the
# pipeline's queries (a union over 40 feeds' tables compiled 7,766 functions: the marts' population recount took
# 37 s with it, 24 s without, at scale 0.1).
SESSION_OPTIONS = "-c jit=off"
# How long a pipeline step waits for a server that refuses connections before it fails with a clear error.
STEP_WAIT_S = 30.0
_DRIVER = re.compile(r"^postgres(ql)?\+[a-z0-9_]+://", re.I)
# libpq's words for a server that is down, restarting or unreachable for now (such errors carry no SQLSTATE)
_NOT_YET = re.compile(
    r"connection refused|the database system is|server closed the connection|connection reset|timeout expired",
    re.I,
)


def libpq_url(url: str) -> str:
    """SQLAlchemy-style URLs (``postgresql+psycopg2://``) as libpq accepts them."""
    return _DRIVER.sub("postgresql://", url)


def server_not_ready(exc: BaseException) -> bool:
    """A connection attempt refused because the server is down or (re)starting: worth trying again."""
    return isinstance(exc, psycopg.OperationalError) and bool(_NOT_YET.search(str(exc)))


def with_backoff(fn: Callable[[], T], *, wait_s: float, retry_on: Callable[[BaseException], bool]) -> T:
    """``fn()``, called again with exponential backoff (0.25 s doubling, at most 4 s) while ``retry_on``
    accepts its error and ``wait_s`` seconds have not passed; the last error is raised."""
    deadline, pause = time.monotonic() + wait_s, 0.25
    while True:
        try:
            return fn()
        except Exception as exc:
            if not retry_on(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 4.0)


def connect(
    url: str, *, autocommit: bool = False, what: str = "database", wait: float = 0.0
) -> psycopg.Connection:
    """Connect, retrying with backoff for up to ``wait`` seconds while the server is not ready."""

    def attempt() -> psycopg.Connection:
        return psycopg.connect(
            libpq_url(url), autocommit=autocommit, connect_timeout=10, options=SESSION_OPTIONS
        )

    try:
        return with_backoff(attempt, wait_s=wait, retry_on=server_not_ready)
    except psycopg.OperationalError as exc:
        reason = (str(exc).strip().splitlines() or ["unknown error"])[-1]
        waited = f" (still refused after {wait:.0f} s)" if wait and server_not_ready(exc) else ""
        raise JxError(
            f"cannot connect to the {what} at {mask_url(url)}: {mask_url(reason)}{waited}",
            fix="jx-pipeline db up   (starts the local cluster; or check JX_WAREHOUSE_URL / JX_DAGSTER_STORAGE_URL)",
        ) from None


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def key_tally(conn: psycopg.Connection, source: sql.Composable, keys: tuple[str, ...]) -> tuple[int, int]:
    """(rows, XOR of a 64-bit hash of each row's key) of ``source``, a table or an aliased subquery: two sets of
    keys with the same tally are the same set but for a 64-bit collision, found by reading each side once."""
    joined = sql.SQL(" || '|' || ").join(map(sql.Identifier, keys))
    return conn.execute(
        sql.SQL("select count(*), coalesce(bit_xor(hashtextextended({}, 0)), 0) from {}").format(
            joined, source
        )
    ).fetchone()


BY_KEY = {"enable_hashjoin": "off", "enable_mergejoin": "off"}  # the planner's joins by index only


def few(conn: psycopg.Connection, rows: int, table: str, ratio: int = 20) -> bool:
    """True when ``rows`` keys are fewer than 1/``ratio`` of ``table``'s rows (the planner's estimate): finding
    them by index one by one beats hashing every row of the table (scale 0.1: 55k keys of 9.1M in 0.3 s by
    index, 2.1 s by a hash join the planner chose)."""
    stored = conn.execute("select reltuples from pg_class where oid = %s::regclass", (table,)).fetchone()[0]
    return rows * ratio < stored


@contextmanager
def settings_for(conn: psycopg.Connection, **values: str) -> Iterator[None]:
    """Server settings (e.g. a planner's ``enable_mergejoin='off'``) for the statements of the block only, put
    back as they were after it (``set local`` would last to the end of the whole transaction)."""
    before = {k: conn.execute("select current_setting(%s)", (k,)).fetchone()[0] for k in values}
    for k, v in values.items():
        conn.execute("select set_config(%s, %s, true)", (k, v))
    yield
    for k, v in before.items():  # not after an error: the transaction is aborted, its settings with it
        conn.execute("select set_config(%s, %s, true)", (k, v))


def by_key(conn: psycopg.Connection, rows: int, table: str, ratio: int = 20) -> AbstractContextManager[None]:
    """For the statements of the block, joins by index only when ``rows`` keys are few of ``table``'s rows
    (``few``); otherwise as the planner chooses: a day's changed keys against every row kept."""
    return settings_for(conn, **(BY_KEY if few(conn, rows, table, ratio) else {}))
