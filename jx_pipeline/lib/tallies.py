"""Tables' key tallies, kept by triggers from every statement's written rows (migration 0027), so that a run knows
without reading a whole table whether it still holds the rows it held (linking's and identity's memories against
their core tables, lib/fingerprints.py) or was written at all since (the entities the marts keep the sizes of,
lib/marts.py).

A tally is the table's latest base (counted whole, or emptied by a truncate) and the deltas of the statements that
wrote rows after it; each reader sees those of its own snapshot. A base is counted by ``ensure``, in a transaction
of its own that first locks the table against writers, before a run takes its snapshot: counted inside a snapshot,
a write committed meanwhile would be neither in the count nor after it."""

from __future__ import annotations

import psycopg
from psycopg import IsolationLevel, sql

from jx_pipeline.lib.pg import key_tally

FOLD_AFTER = 500  # deltas after a base: ``ensure`` counts the table again and drops them

_LATEST = """select b.id, (b.rows + coalesce(sum(d.rows), 0))::bigint, b.xor # coalesce(bit_xor(d.xor), 0),
                    count(d.id), coalesce(max(d.id), 0)
               from (select id, rows, xor from staged._key_tally
                      where relid = %(t)s::regclass and relname = %(t)s::text and base order by id desc limit 1) b
               left join staged._key_tally d
                 on d.relid = %(t)s::regclass and d.relname = %(t)s::text and not d.base and d.id > b.id
              group by b.id, b.rows, b.xor"""


def ensure(conn: psycopg.Connection, tables: dict[str, tuple[str, ...]]) -> None:
    """Count whole each table ({schema.table: key columns}) without a base, or with more than ``FOLD_AFTER``
    deltas after it, and write its base: each in a READ COMMITTED transaction of its own holding a SHARE lock
    (writers wait; those before it have committed and are counted, those after write deltas after the base).
    Call outside a transaction, before the run's snapshot."""
    conn.commit()
    isolation, conn.isolation_level = conn.isolation_level, IsolationLevel.READ_COMMITTED
    try:
        for table, keys in tables.items():
            latest = conn.execute(_LATEST, {"t": table}).fetchone()
            conn.commit()
            if latest is not None and latest[3] <= FOLD_AFTER:
                continue
            with conn.transaction():
                conn.execute(sql.SQL("lock table {} in share mode").format(sql.SQL(table)))
                _base(conn, table, keys)
    finally:
        conn.commit()
        conn.isolation_level = isolation


def tally(conn: psycopg.Connection, table: str, keys: tuple[str, ...]) -> tuple[int, int]:
    """``pg.key_tally`` of a tallied table (rows, XOR of its keys' hashes) as its snapshot sees it: the latest
    base and the deltas after it, or, without a base, the table read whole (a run that did not ``ensure`` it)."""
    latest = conn.execute(_LATEST, {"t": table}).fetchone()
    if latest is None:
        return key_tally(conn, sql.SQL(table), keys)
    return latest[1], latest[2]


def written(conn: psycopg.Connection, table: str) -> str | None:
    """A mark of a tallied table that any write of a row changes: the latest base and the deltas after it as the
    snapshot sees them; None without a base (nothing known)."""
    latest = conn.execute(_LATEST, {"t": table}).fetchone()
    return None if latest is None else f"{latest[0]}:{latest[3]}:{latest[4]}"


def forget(conn: psycopg.Connection, table: str) -> None:
    """Drop a table's tally (found out of step with the table, or the table dropped): the next ``ensure``
    counts it again."""
    conn.execute(
        "delete from staged._key_tally where relid = %(t)s::regclass or relname = %(t)s::text", {"t": table}
    )


def rebase(conn: psycopg.Connection, table: str) -> None:
    """The base of a tallied table filled before its triggers were made (lib/rebuild.py's swap: a new table,
    its triggers made after the insert), counted in the writer's own transaction, which no other can write the
    new table before it commits. Else the next run's ``ensure`` counts it whole (scale 0.1: 0.9 s a table in
    the first day's run after every full rebuild)."""
    args = conn.execute(
        "select tgargs from pg_trigger where tgrelid = %s::regclass and tgfoid = to_regproc('staged.tally_keys')"
        " limit 1",
        (table,),
    ).fetchone()
    if args is None:
        return
    _base(conn, table, tuple(a for a in bytes(args[0]).decode().split("\x00") if a))


def _base(conn: psycopg.Connection, table: str, keys: tuple[str, ...]) -> None:
    """The table counted whole as its only tally row (the caller keeps writers out)."""
    rows, xor = key_tally(conn, sql.SQL(table), keys)
    forget(conn, table)
    conn.execute(
        "insert into staged._key_tally (relid, relname, base, rows, xor)"
        " values (%(t)s::regclass, %(t)s::text, true, %(rows)s, %(xor)s)",
        {"t": table, "rows": rows, "xor": xor},
    )
