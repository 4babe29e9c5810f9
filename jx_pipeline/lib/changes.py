"""What changed in staged since a consumer's last run, by partition: the records linking and identity
resolution read.

A staged partition is only ever replaced whole (lib/staging.py drops and creates the day's table), so its table
names one load of it. A consumer (linking, identity resolution) remembers the good
partitions it read (``staged._seen_partition``) and, per record, the partition of the version it read (its
memory, lib/fingerprints.py, and its deletions). A run then reads again only the records of partitions loaded
since (new or replaced: every key they hold) and those whose remembered partition was replaced, quarantined or
dropped (they fall back to another version or are gone); a cleared quarantine brings its partition back as new.
The feed's mapped fields are part of a partition's version: a feed mapped anew is read whole.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable

import psycopg
from psycopg import sql

from jx_pipeline.catalog.schema import Catalog
from jx_pipeline.lib import quarantine, work_schema

_PARTITIONS = r"""
select p.relname, (regexp_match(pg_get_expr(c.relpartbound, c.oid), $$\('(.*)'\)$$))[1], c.relname,
       c.oid::text || ':' || c.xmin::text  -- the table and the transaction that made it
  from pg_inherits i
  join pg_class c on c.oid = i.inhrelid
  join pg_class p on p.oid = i.inhparent
 where p.relnamespace = 'staged'::regnamespace and p.relname = any(%s)
"""


def _good(conn: psycopg.Connection, catalog: Catalog) -> list[tuple[str, str, str, str]]:
    """The feeds' good (not quarantined) partitions now: (feed_id, partition_key, child, version)."""
    reading = {
        f.id: hashlib.md5(",".join(sorted(set(f.columns.values()))).encode()).hexdigest()[:8]
        for f in catalog.feeds
    }
    quarantined = quarantine.active(conn)
    return [
        (feed_id, partition, child, f"{oid}/{reading[feed_id]}")
        for feed_id, partition, child, oid in conn.execute(_PARTITIONS, (list(reading),)).fetchall()
        if (feed_id, partition) not in quarantined
    ]


def now(conn: psycopg.Connection, consumer: str, catalog: Catalog) -> str:
    """A working table (lib/work_schema.py) of the feeds' good partitions now: (feed_id, partition_key, child,
    version), which ``want`` compares with those seen and ``remember`` keeps. Call inside the staged snapshot."""
    table = f"{consumer}_now"
    conn.execute(
        work_schema.create(conn, table, "feed_id text, partition_key text, child text, version text")
    )
    good = _good(conn, catalog)  # read before the copy: one statement at a time on the connection
    with conn.cursor().copy(sql.SQL("copy {} from stdin").format(sql.Identifier(table))) as copy:
        for row in good:
            copy.write_row(row)
    return table


def read_all(conn: psycopg.Connection, consumer: str, catalog: Catalog, feeds: set[str]) -> bool:
    """True when the consumer's last run read exactly the good partitions of ``feeds`` there are now: none
    loaded, replaced, quarantined, cleared or dropped since."""
    good = {(f, p, v) for f, p, _, v in _good(conn, catalog) if f in feeds}
    seen = conn.execute(
        "select feed_id, partition_key, version from staged._seen_partition where consumer = %s"
        " and feed_id = any(%s)",
        (consumer, list(feeds)),
    ).fetchall()
    return bool(seen) and set(seen) == good


def loaded(conn: psycopg.Connection, consumer: str) -> list[tuple[str, str]]:
    """(feed_id, child table) of the good partitions now (``now``'s table) that the consumer's last run did not
    read: new, or replaced since."""
    return conn.execute(
        sql.SQL(
            "select n.feed_id, n.child from {} n where not exists (select 1 from staged._seen_partition s"
            " where s.consumer = %s"
            " and (s.feed_id, s.partition_key, s.version) = (n.feed_id, n.partition_key, n.version))"
        ).format(sql.Identifier(f"{consumer}_now")),
        (consumer,),
    ).fetchall()


def want(conn: psycopg.Connection, consumer: str, memories: tuple[str, ...], into: str) -> bool:
    """Fill the working table ``into`` (feed_id, record_key; made here) with the records to read again: those
    of partitions new or replaced since the consumer's last run, and those its memories (``staged.<memory>``:
    feed_id, record_key, _partition) place in partitions replaced, quarantined or dropped since. False when the
    consumer remembers no partition (a first run, or its memory was lost): then every record is to be read.
    Call inside the staged snapshot, after ``now``."""
    parts = sql.Identifier(f"{consumer}_now")
    target = sql.Identifier(into)
    conn.execute(
        work_schema.create(conn, into, "feed_id text, record_key text, primary key (feed_id, record_key)")
    )
    seen = conn.execute(
        "select count(*) from staged._seen_partition where consumer = %s", (consumer,)
    ).fetchone()
    if not seen[0]:
        return False
    for feed_id, child in loaded(conn, consumer):
        conn.execute(
            sql.SQL("insert into {} select {}, record_key from staged.{} on conflict do nothing").format(
                target, sql.Literal(feed_id), sql.Identifier(child)
            )
        )
    gone = conn.execute(
        sql.SQL(
            "select s.feed_id, array_agg(s.partition_key) from staged._seen_partition s where s.consumer = %s"
            " and not exists (select 1 from {} n where (s.feed_id, s.partition_key, s.version) ="
            " (n.feed_id, n.partition_key, n.version)) group by 1"
        ).format(parts),
        (consumer,),
    ).fetchall()
    for (feed_id, partitions), memory in itertools.product(gone, memories):
        conn.execute(
            sql.SQL(
                "insert into {} select feed_id, record_key from staged.{} where feed_id = %s"
                " and _partition = any(%s) on conflict do nothing"
            ).format(target, sql.Identifier(memory)),
            (feed_id, partitions),
        )
    conn.execute(sql.SQL("analyze {}").format(target))
    return True


def remember(conn: psycopg.Connection, consumer: str, good: list[tuple] | None = None) -> None:
    """The partitions this run read (``now``'s table of them, made earlier in the transaction, or its rows
    ``good`` read before that transaction ended) become the consumer's seen ones."""
    conn.execute("delete from staged._seen_partition where consumer = %s", (consumer,))
    if good is not None:
        with conn.cursor().copy("copy staged._seen_partition from stdin") as copy:
            for feed_id, partition, _child, version in good:
                copy.write_row((consumer, feed_id, partition, version))
        return
    conn.execute(
        sql.SQL(
            "insert into staged._seen_partition select %s, feed_id, partition_key, version from {}"
        ).format(sql.Identifier(f"{consumer}_now")),
        (consumer,),
    )


def gather(
    conn: psycopg.Connection, catalog: Catalog, read: Callable[..., None], keys: str | None = None
) -> None:
    """``read(conn, feed, keys)`` for every feed, or, given the working table ``keys``, for the feeds it names."""
    named = None
    if keys is not None:
        named = {
            f
            for (f,) in conn.execute(sql.SQL("select distinct feed_id from {}").format(sql.Identifier(keys)))
        }
    for feed in catalog.feeds:
        if named is None or feed.id in named:
            read(conn, feed, keys)


def selects(
    conn: psycopg.Connection,
    catalog: Catalog,
    select: Callable[..., sql.Composable | None],
    keys: str | None = None,
) -> list[sql.Composable]:
    """Each feed's ``select(conn, feed, keys=keys)``, but for the feeds it gives None (never staged)."""
    return [s for feed in catalog.feeds if (s := select(conn, feed, keys=keys)) is not None]


def union(
    conn: psycopg.Connection, catalog: Catalog, select: Callable[..., sql.Composable | None]
) -> sql.Composable | None:
    """Every feed's ``select(conn, feed)`` (``selects``) in one statement, ``union all``; None when no feed was
    staged. A table made from it is filled by parallel workers, each reading and sorting whole feeds, where an
    insert per feed runs in one process."""
    each = selects(conn, catalog, select)
    return sql.SQL(" union all ").join(each) if each else None


def gather_whole(
    conn: psycopg.Connection, catalog: Catalog, select: Callable[..., sql.Composable | None], into: str
) -> None:
    """The working table ``into`` made again from every feed's current records (``select(conn, feed)``, typed as
    its columns) in one statement over all feeds (``union``), which parallel workers read and sort side by side;
    an insert per feed (``gather``) runs in one process (at scale 0.1: linking's 9.2M records 13.4-15.0 s by
    insert, 7.7-8.0 s so; identity's 24 s and 14 s). Left as made when no feed was staged yet."""
    whole = union(conn, catalog, select)
    if whole is not None:
        conn.execute(sql.SQL("drop table {}").format(sql.Identifier(into)))
        conn.execute(work_schema.create(conn, into, query=whole))
