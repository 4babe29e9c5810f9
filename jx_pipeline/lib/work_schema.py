"""A rebuild's working tables where PostgreSQL's parallel workers can read them.

A temporary table lives in its session's local buffers, which a parallel worker cannot read: every query that
touches one scans it in the leading process, and the plan around that scan mostly stays there too. Linking's
followers of the changed identities, found through a temporary table of 41k identities in the 0.1 warehouse's
9.1M links, took 7.5-8.0 s in one process; through an unlogged table, 2.1 s with two workers beside it. So
linking, identity resolution and the marts' refresh make their working tables in a schema of their own transaction, unlogged (no
WAL, as a temporary table), first in the search path (their SQL names them bare, as before) and dropped before
the transaction commits. No other session sees the schema: a rolled-back rebuild leaves nothing behind, and a
second rebuild of the same name waits for the first (the ``core`` and ``mart`` locks already make it wait).
The schema comes before ``pg_temp`` in the path: a temporary table of the same name in the session, if one were
ever made, could not stand in for a working table unseen.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

LINKING = "link_work"
IDENTITY = "ident_work"
MARTS = "mart_work"


@contextmanager
def opened(conn: psycopg.Connection, name: str) -> Iterator[None]:
    """Inside the caller's transaction: ``name`` made, first in the search path; dropped with its tables at the end
    of the block (an error leaves it to the transaction's rollback)."""
    if conn.info.transaction_status != TransactionStatus.INTRANS:
        # outside a transaction the schema would be committed and the path not set: tables would land in public
        raise RuntimeError("work_schema.opened needs an open transaction (the rebuild's)")
    path = conn.execute("select current_setting('search_path')").fetchone()[0]
    conn.execute(sql.SQL("create schema {}").format(sql.Identifier(name)))
    first = ", ".join(p for p in (sql.Identifier(name).as_string(conn), "pg_temp", path) if p.strip())
    conn.execute("select set_config('search_path', %s, true)", (first,))
    yield
    conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(name)))
    conn.execute("select set_config('search_path', %s, true)", (path,))


def active(conn: psycopg.Connection) -> bool:
    """True inside ``opened``: a bare ``create unlogged table`` lands in the work schema, not in ``public``."""
    return conn.execute("select current_schema() = any(%s)", ([LINKING, IDENTITY, MARTS],)).fetchone()[0]


def create(
    conn: psycopg.Connection, name: str, columns: str | None = None, query: sql.Composable | None = None
) -> sql.Composed:
    """The statement making the working table ``name`` of ``columns`` ("a text, b int") or as ``query``:
    unlogged in the work schema inside ``opened``; elsewhere temporary, dropped at commit."""
    body = sql.SQL("({})").format(sql.SQL(columns)) if query is None else sql.SQL("")
    after = sql.SQL("") if query is None else sql.SQL(" as {}").format(query)
    if active(conn):
        return sql.SQL("create unlogged table {}{}{}").format(sql.Identifier(name), body, after)
    return sql.SQL("create temp table {}{} on commit drop{}").format(sql.Identifier(name), body, after)
