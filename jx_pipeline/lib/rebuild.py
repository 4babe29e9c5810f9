"""Writing a rebuilt core table: only the rows that changed, or the whole table swapped in when most did.

Linking and identity resolution compute every row of their tables into a working table (lib/work_schema.py).
Inserting 0.9M rows into ``core.entity_link`` with its key, index and foreign key in place took 17 s (a check and
two index entries per row); into a bare table with the indexes built afterwards, 4 s. A day's increment changes
~1 % of the rows: deleting and inserting only those is cheaper still, and leaves the other rows as they were.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from jx_pipeline.lib import tallies, work_schema
from jx_pipeline.lib.pg import by_key

SWAP_SHARE = 0.2  # above this share of rows to write, the whole table is rebuilt aside and swapped in


def write(
    conn: psycopg.Connection,
    table: str,
    rows: str,
    key: tuple[str, ...],
    swap: bool | None = None,
    scope: str | None = None,
) -> dict:
    """Make ``core.<table>`` hold exactly the rows of the working table ``rows`` (the same columns, in order).
    ``swap`` forces the way (None: by the share of rows that differ). ``scope``: a working table of keys; only
    the table's rows with those keys are compared with ``rows`` (which holds rows of those keys only) and
    written, the others are left alone (never swapped). Returns {"mode", "deleted", "inserted"}."""
    target = sql.Identifier("core", table)
    on_keys = sql.SQL(" and ").join(sql.SQL("a.{0} = b.{0}").format(sql.Identifier(k)) for k in key)
    old_rows = target
    if scope is not None:
        # the table's rows of the scope, found by key when they are fewer than 1/40 (scale 0.1: 94k memberships
        # of 8.1M by key 1.0 s, where a hash join over every row took 2.5 s; but 319k links of 9.1M took 2.7-3.3 s
        # by key, 2.8 s hashed), then compared with ``rows`` by hashes of both
        keys = sql.SQL(", ").join(map(sql.Identifier, key))
        n = conn.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(scope))).fetchone()[0]
        with by_key(conn, n, f"core.{table}", ratio=40):
            conn.execute(
                work_schema.create(
                    conn,
                    "rebuild_old",
                    query=sql.SQL("select b.* from (select distinct {} from {}) a join {} b on {}").format(
                        keys, sql.Identifier(scope), target, on_keys
                    ),
                )
            )
        old_rows = sql.Identifier("rebuild_old")
        swap = False
    cols = [
        r[0]
        for r in conn.execute(
            "select attname from pg_attribute where attrelid = %s::regclass and attnum > 0 and not attisdropped"
            " order by attnum",
            (f"core.{table}",),
        ).fetchall()
    ]
    names = sql.SQL(", ").join(map(sql.Identifier, cols))
    if (
        scope is None
        and swap is not False
        and conn.execute(
            sql.SQL("select not exists (select 1 from {}) and exists (select 1 from {})").format(
                target, sql.Identifier(rows)
            )
        ).fetchone()[0]
    ):
        # an empty table given rows (the first run): every row is new, no diff to find
        _swap(conn, table, rows, names)
        fresh = conn.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(rows))).fetchone()[0]
        return {"mode": "swapped", "deleted": 0, "inserted": fresh}
    rest = [c for c in cols if c not in key]
    differ = sql.SQL(" or ").join(
        [
            sql.SQL("a.{} is null").format(sql.Identifier(key[0])),
            sql.SQL("b.{} is null").format(sql.Identifier(key[0])),
        ]
        + [sql.SQL("a.{0} is distinct from b.{0}").format(sql.Identifier(c)) for c in rest]
    )
    # one pass (a full join on the key) finds both: rows to delete (old side) and rows to insert (new side)
    diff = sql.SQL("select {old}, {new} from {target} a full join {rows} b on {on} where {differ}").format(
        old=sql.SQL(", ").join(
            sql.SQL("a.{} as {}").format(sql.Identifier(k), sql.Identifier(f"old_{k}")) for k in key
        ),
        new=sql.SQL(", ").join(sql.SQL("b.{}").format(sql.Identifier(c)) for c in cols),
        target=old_rows,
        rows=sql.Identifier(rows),
        on=on_keys,
        differ=differ,
    )
    conn.execute(work_schema.create(conn, "rebuild_diff", query=diff))
    old_key, new_key = sql.Identifier(f"old_{key[0]}"), sql.Identifier(key[0])
    stale, fresh = conn.execute(
        sql.SQL(
            "select count(*) filter (where {} is not null), count(*) filter (where {} is not null) from rebuild_diff"
        ).format(old_key, new_key)
    ).fetchone()
    if swap is None:
        total = conn.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(rows))).fetchone()[0]
        swap = stale + fresh > SWAP_SHARE * max(total, 1)
    if swap:
        _swap(conn, table, rows, names)
        mode = "swapped"
    else:
        # the diff's old side names the rows to delete, its new side the rows to insert
        on_old = sql.SQL(" and ").join(
            sql.SQL("a.{} = b.{}").format(sql.Identifier(k), sql.Identifier(f"old_{k}")) for k in key
        )
        conn.execute(sql.SQL("delete from {} a using rebuild_diff b where {}").format(target, on_old))
        conn.execute(
            sql.SQL("insert into {} ({}) select {} from rebuild_diff where {} is not null").format(
                target, names, names, new_key
            )
        )
        mode = "changed rows" if scope is None else "changed rows in scope"
    conn.execute("drop table if exists rebuild_diff, rebuild_old")
    return {"mode": mode, "deleted": stale, "inserted": fresh}


def _swap(conn: psycopg.Connection, table: str, rows: str, names: sql.Composable) -> None:
    """``core.<table>`` rebuilt from ``rows`` without its indexes and constraints, which are then built once,
    under their own names, and its triggers after them (they do not see the rows swapped in); grants come from
    the schema's default privileges (lib/roles.py), as for the marts.
    Readers that must not see it half-way lock it first (``locks.staged_snapshot(reads=...)``)."""
    name = f"core.{table}"
    constraints, indexes = table_ddl(conn, "core", table)
    triggers = conn.execute(
        "select pg_get_triggerdef(oid) from pg_trigger where tgrelid = %s::regclass and not tgisinternal",
        (name,),
    ).fetchall()
    comment = conn.execute("select obj_description(%s::regclass, 'pg_class')", (name,)).fetchone()[0]
    target, aside = sql.Identifier("core", table), sql.Identifier("core", f"{table}__next")
    conn.execute(
        sql.SQL("create table {} (like {} including defaults including comments)").format(aside, target)
    )
    conn.execute(
        sql.SQL("insert into {} ({}) select {} from {}").format(aside, names, names, sql.Identifier(rows))
    )
    conn.execute(sql.SQL("drop table {}").format(target))
    conn.execute(sql.SQL("alter table {} rename to {}").format(aside, sql.Identifier(table)))
    _build(conn, target, constraints, indexes)
    for (definition,) in triggers:
        conn.execute(sql.SQL(definition))
    tallies.rebase(conn, name)  # the rows swapped in, which the triggers did not see
    if comment:
        conn.execute(sql.SQL("comment on table {} is {}").format(target, sql.Literal(comment)))
    conn.execute(sql.SQL("analyze {}").format(target))  # the next reader plans with statistics


def table_ddl(conn: psycopg.Connection, schema: str, table: str) -> tuple[list[tuple], list[tuple]]:
    """The table's constraints (name, definition; foreign keys last) and its other indexes (name, definition)."""
    constraints = conn.execute(
        "select conname, pg_get_constraintdef(oid) from pg_constraint where conrelid = %s::regclass"
        " and contype in ('p', 'u', 'f', 'c') order by contype = 'f', conname",
        (f"{schema}.{table}",),
    ).fetchall()
    indexes = conn.execute(
        "select indexname, indexdef from pg_indexes i where schemaname = %s and tablename = %s and not exists"
        " (select 1 from pg_constraint c where c.conindid = format('%%I.%%I', i.schemaname, i.indexname)::regclass)",
        (schema, table),
    ).fetchall()
    return constraints, indexes


@contextmanager
def indexes_after(conn: psycopg.Connection, schema: str, table: str) -> Iterator[None]:
    """Fill a table emptied in this transaction with its constraints and indexes dropped, then built once by
    sorting: 9.1M fingerprints at scale 0.1 took 13.0 s with the primary key in place, 2.3 s + 5.6 s so.
    Only inside the caller's transaction (a failure rolls the drops back), and only for a table whose key no
    foreign key references (the memories' tables)."""
    constraints, indexes = table_ddl(conn, schema, table)
    target = sql.Identifier(schema, table)
    for conname, _ in reversed(constraints):
        conn.execute(sql.SQL("alter table {} drop constraint {}").format(target, sql.Identifier(conname)))
    for index, _ in indexes:
        conn.execute(sql.SQL("drop index {}").format(sql.Identifier(schema, index)))
    yield
    _build(conn, target, constraints, indexes)


def _build(conn: psycopg.Connection, target: sql.Composable, constraints: list, indexes: list) -> None:
    """The constraints and indexes ``table_ddl`` read, built again on ``target`` under their own names."""
    for conname, definition in constraints:
        conn.execute(
            sql.SQL("alter table {} add constraint {} {}").format(
                target, sql.Identifier(conname), sql.SQL(definition)
            )
        )
    for _, definition in indexes:
        conn.execute(sql.SQL(definition))
