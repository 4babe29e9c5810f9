"""Tables' key tallies and write marks, kept by triggers from every statement's written rows (migration 0027), so
that a run knows without reading a whole table whether it still holds the rows it held (linking's and identity's
memories against their core tables, lib/fingerprints.py) or was written at all since (the entities the marts
keep their sizes of, lib/marts.py)."""

from __future__ import annotations

import psycopg
from psycopg import sql

from jx_pipeline.lib.pg import key_tally


def tally(conn: psycopg.Connection, table: str, keys: tuple[str, ...]) -> tuple[int, int]:
    """``pg.key_tally`` of a tallied table (rows, XOR of its keys' hashes), as kept; a table without one is read
    whole once (scale 0.1: ~1 s for 9M rows)."""
    rows, xor, _ = _kept(conn, table, keys)
    return rows, xor


def written(conn: psycopg.Connection, table: str, keys: tuple[str, ...]) -> int:
    """A mark of a tallied table that every statement writing a row of it changes, as does a tally made again:
    the same mark twice, no row written in between."""
    return _kept(conn, table, keys)[2]


def _kept(conn: psycopg.Connection, table: str, keys: tuple[str, ...]) -> tuple[int, int, int]:
    query = "select rows, xor, writes from staged._key_tally where relid = %s::regclass"
    if (kept := conn.execute(query, (table,)).fetchone()) is not None:
        return kept
    counted = key_tally(conn, sql.SQL(table), keys)
    conn.execute(
        "insert into staged._key_tally (relid, rows, xor) values (%s::regclass, %s, %s)"
        " on conflict (relid) do nothing",
        (table, *counted),
    )
    return conn.execute(query, (table,)).fetchone()
