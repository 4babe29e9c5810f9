"""PostgreSQL advisory locks that let two runs touch the same data at once: one waits, both succeed.

Two runs can load the same feed at the same moment (the schedule and the landing sensor, a backfill and a manual
run). A load replaces its day with DDL (drop and create the day partition, create the feed's table the first
time), and concurrent DDL on one name fails instead of waiting (``pg_type_typname_nsp_index``). So:

- a load holds the lock of its stage and feed for its whole transaction (``load``): the second load of the same
  feed waits and then replaces the day again — same rows, no duplicates. Loads of other days of one feed already
  waited for each other on the feed table's lock; the first load of a feed, which creates it, did not;
- a staged load also holds the raw lock of its feed while it reads raw, so a raw reload cannot slip between the
  raw audit it checks against and the raw rows it reads;
- every staged load holds the ``staged`` lock shared; a reader that needs one consistent view of every staged
  feed (linking) takes it exclusively for the moment it reads (``staged_snapshot``): new staged loads wait those
  seconds, raw loads go on. A snapshot alone (REPEATABLE READ) is not enough: dropping and creating a partition is
  not MVCC-safe, a partition created after the snapshot reads as empty;
- rebuilds of the core link and identity tables hold the ``core`` lock (``exclusive``), one at a time.

Keys are 64-bit hashes of a readable name (``jx/raw/gaj_ldrk``), computed by the server (``hashtextextended``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
from psycopg import IsolationLevel, sql
from psycopg.pq import TransactionStatus

_KEY = "hashtextextended(%s, 0)"


def name(*parts: str) -> str:
    return "/".join(("jx", *parts))


def load(conn: psycopg.Connection, stage: str, feed_id: str) -> None:
    """Inside a load's transaction: wait for any other load of this stage and feed, hold until commit."""
    conn.execute(f"select pg_advisory_xact_lock({_KEY})", (name(stage, feed_id),))
    if stage == "staged":
        conn.execute(f"select pg_advisory_xact_lock_shared({_KEY})", (name("staged"),))
        conn.execute(f"select pg_advisory_xact_lock_shared({_KEY})", (name("raw", feed_id),))


@contextmanager
def exclusive(conn: psycopg.Connection, *parts: str) -> Iterator[None]:
    """A session lock held across the transactions of the block (released at its end, or when the connection
    dies). Commits what the connection had open, so the lock is taken before any snapshot of the block."""
    key = name(*parts)
    conn.commit()
    conn.execute(f"select pg_advisory_lock({_KEY})", (key,))
    conn.commit()
    try:
        yield
    finally:
        _unlock(conn, key)


def _unlock(conn: psycopg.Connection, key: str) -> None:
    if conn.closed or conn.broken:  # the server let go of the session's locks with the connection
        return
    if conn.info.transaction_status == TransactionStatus.INERROR:
        conn.rollback()
    conn.execute(f"select pg_advisory_unlock({_KEY})", (key,))
    conn.commit()


# a table's one writer at a time: conflicts with itself and with row writes, not with reads
WRITER = "share row exclusive"


def lock_tables(conn: psycopg.Connection, tables: tuple[str, ...], mode: str) -> None:
    conn.execute(
        sql.SQL("lock table {} in {} mode").format(
            sql.SQL(", ").join(sql.Identifier(*t.split(".")) for t in tables), sql.SQL(mode)
        )
    )


@contextmanager
def staged_snapshot(
    conn: psycopg.Connection, reads: tuple[str, ...] = (), writes: tuple[str, ...] = ()
) -> Iterator[Callable[[], None]]:
    """A REPEATABLE READ transaction whose snapshot is taken while no staged load runs. Staged loads wait until
    the caller has read what it needs from ``staged`` and calls the yielded ``release()`` (or the block ends);
    the transaction (and its snapshot) goes on until the block ends, committed unless it raised.

    ``reads``: tables locked (ACCESS SHARE) before the snapshot, so that a rebuild swapping one of them in
    (lib/rebuild.py) waits for this transaction instead of leaving its snapshot a table it cannot see into.
    ``writes``: tables locked against other writers (SHARE ROW EXCLUSIVE, ``WRITER``) before the snapshot, so
    that none adds a row the snapshot cannot see, then conflicts with it."""
    key = name("staged")
    conn.commit()
    conn.execute(f"select pg_advisory_lock({_KEY})", (key,))
    conn.commit()
    held = True

    def release() -> None:
        nonlocal held
        if held:
            conn.execute(f"select pg_advisory_unlock({_KEY})", (key,))
            held = False

    conn.isolation_level = IsolationLevel.REPEATABLE_READ
    try:
        with conn.transaction():
            for tables, mode in ((reads, "access share"), (writes, WRITER)):
                if tables:  # LOCK TABLE takes no snapshot
                    lock_tables(conn, tables, mode)
            conn.execute("select 1")  # the snapshot, taken while the lock is held
            yield release
    finally:
        if not (conn.closed or conn.broken):
            conn.isolation_level = None
        if held:
            _unlock(conn, key)
