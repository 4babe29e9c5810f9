"""Attaching every staged record to a geographic entity, by the strongest evidence it carries.

In order: its address resolved to a door plate (exact standardized key, or a one-character typo fixed inside the
block), the entity of its name inside its village (natural entities), its coordinates (inside a natural entity's
polygon, or the nearest door plate within 30 m), and its identity (the entity most often linked for the same ID
number or credit code in any feed). A record whose address names a place outside the city is kept as
``outside_city`` and never attached to a local entity. Otherwise it stays unmatched — kept and counted. One row
per record in ``core.entity_link`` with the method and a score.
"""

import hashlib
import inspect
from collections import Counter
from collections.abc import Callable

import psycopg
from psycopg import sql

from jx_pipeline.catalog.schema import Catalog, Feed
from jx_pipeline.lib import (
    changes,
    fingerprints,
    link_texts,
    locks,
    quarantine,
    rebuild,
    staging,
    work_schema,
)
from jx_pipeline.lib.warehouse import run_sql, session_memory, sql_file

NEAREST_M = 30
NATURAL = ("farmland", "river", "forest", "pond", "grassland", "lake", "hill")
ALIVE_FIELDS = ("change_type", "deleted")  # what ``alive`` reads
READ_FIELDS = (
    "address",
    "lon",
    "lat",
    "id_number",
    "credit_code",
    "entity_name",
    "village_name",
    *ALIVE_FIELDS,
)


def alive(feed: Feed) -> sql.Composable:
    """True for a current version that is not a deletion (an increment's D, or the deleted flag)."""
    mapped = set(feed.columns.values())
    cond = sql.SQL("true")
    if "change_type" in mapped:
        cond = sql.SQL("coalesce(change_type, '') <> 'D'")
    if "deleted" in mapped:
        cond = sql.SQL("{} and not coalesce(deleted, false)").format(cond)
    return cond


def _select(conn: psycopg.Connection, feed: Feed, keys: str | None = None) -> sql.Composed | None:
    """The feed's current records as ``link_rec``'s columns, typed as there (texts empty -> null; a deletion
    flagged ``dead``, for ``_dead``); ``keys``: only those of that working table (lib/changes.py). None before the
    feed was ever staged."""
    latest = staging.current(conn, feed, keys, READ_FIELDS)
    if latest is None:
        return None
    mapped = set(feed.columns.values())

    def col(name: str, text: bool = True, cast: str = "text") -> sql.Composable:
        if name not in mapped:
            return sql.SQL(f"null::{cast}")
        return sql.SQL("nullif({}, '')" if text else "{}::" + cast).format(sql.Identifier(name))

    return sql.SQL(
        "select {feed}::text as feed_id, record_key::text as record_key, {addr} as address, {lon} as lon,"
        " {lat} as lat, nullif(coalesce({idno}, {code}), '') as identity, {name} as entity_name,"
        " {village} as village_name, _partition::text as _partition, not ({alive}) as dead from {latest}"
    ).format(
        feed=sql.Literal(feed.id),
        addr=col("address"),
        lon=col("lon", text=False, cast="float8"),
        lat=col("lat", text=False, cast="float8"),
        idno=col("id_number", text=False),
        code=col("credit_code", text=False),
        name=col("entity_name"),
        village=col("village_name"),
        latest=latest,
        alive=alive(feed),
    )


def _gather(conn: psycopg.Connection, feed: Feed, keys: str | None = None) -> None:
    """The feed's current records (``_select``) into ``link_rec``."""
    select = _select(conn, feed, keys)
    if select is not None:
        conn.execute(sql.SQL("insert into link_rec {}").format(select))


def _dead(conn: psycopg.Connection) -> None:
    """The deletions gathered leave ``link_rec`` for ``link_dead``: not linked, but remembered with their
    partition, so that one replaced, quarantined or dropped brings back the version it hid (lib/changes.py)."""
    conn.execute(
        "insert into link_dead select feed_id, record_key, _partition from link_rec where dead"
        " on conflict do nothing; delete from link_rec where dead"
    )


def _remember_dead(conn: psycopg.Connection, read: tuple[str, ...] | None) -> None:
    """``staged._link_dead`` := the deletions current now: those of the records read (working tables of keys)
    replaced, or all of them when every record was read (``read`` None)."""
    if read is None:
        conn.execute("truncate staged._link_dead")
    for keys in read or ():
        conn.execute(
            sql.SQL(
                "delete from staged._link_dead d using {} k where (d.feed_id, d.record_key) ="
                " (k.feed_id, k.record_key)"
            ).format(sql.Identifier(keys))
        )
    conn.execute("insert into staged._link_dead select * from link_dead")


def _link_key(conn: psycopg.Connection, parser_key: str) -> str:
    """What every link depends on besides its record: the parser and gazetteer, the entities (natural polygons,
    door plates and their places, core.address_point's points) and the rules and scope themselves. Another key
    relinks every record."""
    entities, points = conn.execute(
        "select (select md5(coalesce(string_agg(concat_ws('|', entity_id, entity_type, village_code, name,"
        " md5(st_asbinary(geom))), E'\\n' order by entity_id), '')) from core.geo_entity),"
        " (select md5(coalesce(string_agg(concat_ws('|', entity_id, md5(st_asbinary(geom))), E'\\n'"
        " order by entity_id), '')) from core.address_point)"
    ).fetchone()
    h = hashlib.sha256(f"{parser_key}|{entities}|{points}|{NEAREST_M}|{NATURAL}".encode())
    for name in READS_SQL:
        h.update(sql_file(name).encode())
    # how a record is read: a change there relinks every record
    for code in (alive, _select, _gather, _dead, staging.current, quarantine.good_partitions):
        h.update(inspect.getsource(code).encode())
    return h.hexdigest()[:20]


READS_SQL = tuple(
    f"core/{name}.sql"
    for name in [
        "link_records",
        "link_inputs",
        "link_whole",
        "link_delta",
        "link_scope",
        "link_kept",
        "entity_link",
    ]
)
MEMORY = fingerprints.Memory(
    "_link_input",
    "core.entity_link",
    ("feed_id", "record_key"),
    "link_fp",
    "link_scope",
    "core/link_scope.sql",
    "link_changed",
    partitions=True,
)


def link(
    conn: psycopg.Connection,
    catalog: Catalog,
    before_commit: Callable | None = None,
    full: bool = False,
    stats: dict | None = None,
    at_snapshot: Callable | None = None,
) -> Counter:
    """Bring ``core.entity_link`` up to date with the current staged records; returns the count per method.
    ``before_commit(conn)`` (the asset's check) runs in the rebuild's own snapshot before it commits, so a
    staged load committed meanwhile cannot make the check compare two different moments; ``at_snapshot(conn)``
    as soon as that snapshot is taken (the check's counts started aside, lib/aside.py).

    One rebuild at a time (the ``core`` lock), from one snapshot of every feed: staged loads wait while the
    records are gathered, then go on while new texts are parsed; the rebuild commits as a whole. ``stats`` (a
    dict) gets the records relinked, the texts parsed and how the table was written. The rules run in SQL
    (``sql/core/entity_link.sql``) over the parser's output per distinct text, kept between runs. A run relinks
    only the records new, changed or gone since the last one and those sharing an identity with them, with the
    links a full rebuild would give (``full``: every record linked and every text parsed again)."""
    session_memory(conn)
    MEMORY.ensure(conn)
    with (
        locks.exclusive(conn, "core"),
        locks.staged_snapshot(conn, writes=(link_texts.CACHE,)) as release,
        work_schema.opened(conn, work_schema.LINKING),
    ):
        if at_snapshot:
            at_snapshot(conn)
        run_sql(conn, "core/link_records.sql")
        parser_key = link_texts.parser_key(conn)
        key = _link_key(conn, parser_key)
        known = not full and MEMORY.known(conn, key)
        changes.now(conn, "link", catalog)
        if known and changes.want(conn, "link", (MEMORY.table, "_link_dead"), "link_want"):
            # only the records of changed partitions, then those of the scope not read yet (sharing an identity),
            # each feed's found by its record_key index when they are few (scale 0.1: a day's 64k records of
            # 9.2M, 0.4 s by key, 1.6 s by hashing every feed's rows, the planner's choice)
            with MEMORY.by_key(conn, "link_want"):
                changes.gather(conn, catalog, _gather, "link_want")
            _dead(conn)
            conn.execute("analyze link_rec")
            run_sql(conn, "core/link_inputs.sql", {"first": True})
            with MEMORY.by_key(conn, "link_want"):
                run_sql(conn, "core/link_delta.sql")
            scope = MEMORY.scope_rows(conn, known)
            conn.execute(
                "create unlogged table link_round as select feed_id, record_key from link_scope s"
                " where not exists"
                " (select 1 from link_rec r where (r.feed_id, r.record_key) = (s.feed_id, s.record_key))"
                " and not exists"  # a follower is linked by its identity's vote, not read
                " (select 1 from link_follow f where (f.feed_id, f.record_key) = (s.feed_id, s.record_key))"
            )
            with MEMORY.by_key(conn, "link_round"):
                changes.gather(conn, catalog, _gather, "link_round")
            _dead(conn)
            read = ("link_want", "link_round")
            release()
            run_sql(conn, "core/link_inputs.sql", {"first": False})
            run_sql(conn, "core/link_kept.sql")
        else:
            changes.gather_whole(conn, catalog, _select, "link_rec")
            _dead(conn)
            read = None
            release()
            conn.execute("analyze link_rec")
            run_sql(conn, "core/link_inputs.sql", {"first": True})
            run_sql(conn, "core/link_whole.sql")
            scope = MEMORY.scope_rows(conn, known)
            if scope is not None:
                run_sql(conn, "core/link_kept.sql")
            conn.execute("drop view link_known, link_links")
        parsed = link_texts.parse_missing(
            conn,
            full,
            parser_key,
            "select address from link_rec union all select village_name from link_rec where entity_name is not null",
        )
        run_sql(conn, "core/entity_link.sql", {"natural": list(NATURAL), "nearest_m": NEAREST_M})
        written = rebuild.write(
            conn,
            "entity_link",
            "link_new",
            ("feed_id", "record_key"),
            scope=None if scope is None else "link_scope",
        )
        MEMORY.remember(conn, key, scope, moved=None if read is None else "link_want")
        _remember_dead(conn, read)
        changes.remember(conn, "link")
        if stats is not None:
            relinked, read = conn.execute(
                "select (select count(*) from link_rec) + (select count(*) from link_follow),"
                " (select count(*) from link_fp)"
            ).fetchone()
            stats.update(texts_parsed=parsed, records_relinked=relinked, records_read=read, **written)
        counts = Counter(
            dict(conn.execute("select method, count(*) from core.entity_link group by 1").fetchall())
        )
        if before_commit:
            before_commit(conn)
        return counts
