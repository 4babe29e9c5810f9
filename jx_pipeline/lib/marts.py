"""The marts the spatial platform reads (schema ``mart``), rebuilt as a whole from current core and staged data.

Every mart is built aside (``mart.<name>__next``) and swapped in by renaming, all in one transaction: a reader
sees the previous marts until the commit and the new ones after it, never a half-built or empty table, and a
table created in ``mart`` gets the schema's default privileges (the reader role). One refresh at a time (the
``mart`` lock); staged loads wait only while the current records are read (``locks.staged_snapshot``).

Persons appear only as counts (small ones suppressed, ``SUPPRESS_BELOW``) — see lib/marts_privacy.py.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from psycopg import sql

from jx_pipeline.catalog.schema import Catalog, Feed
from jx_pipeline.lib import linking, locks, quarantine, staging
from jx_pipeline.lib.warehouse import run_sql, session_memory

# build order: entity_class first (the inputs classify entities by it), data_service last (it describes the rest)
MARTS = (
    "entity_class",
    "geo_entity_profile",
    "admin_unit_profile",
    "natural_resource_summary",
    "feed_link_coverage",
    "department_coverage",
    "data_service",
)
NEXT = "__next"
SUPPRESS_BELOW = 5  # a count of fewer persons than this is published as null with a <col>_suppressed flag

# reference layers a mart is built from besides the feeds, with the department that hands each over
REFERENCE = {"core.geo_entity": "zrzyj", "core.admin_unit": "mzj"}
_SOURCES: dict[str, tuple[tuple[str, ...] | None, tuple[str, ...]]] = {
    # mart: (domains of the feeds it reads, None = no feed), reference layers
    "entity_class": (None, ()),
    "geo_entity_profile": (("population", "legal_person", "economy", "other"), tuple(REFERENCE)),
    "admin_unit_profile": (("population", "legal_person", "economy"), tuple(REFERENCE)),
    "natural_resource_summary": (None, tuple(REFERENCE)),
    "feed_link_coverage": (("population", "legal_person", "economy", "other"), ()),
    "department_coverage": (("population", "legal_person", "economy", "other"), ()),
    "data_service": (("population", "legal_person", "economy", "other"), tuple(REFERENCE)),
}
# the flat (building / unit / room) at the end of an address: a household is a distinct home + flat
_FLAT = r"(\d+(?:幢|栋|号楼)(?:\d+单元)?(?:\d+(?:室|户|号))?|\d+单元\d+(?:室|户|号)|\d+(?:室|户))\s*$"


def _record_select(feed: Feed, latest: sql.Composable) -> sql.Composed:
    mapped = set(feed.columns.values())
    dates = [
        sql.SQL("{}::date").format(sql.Identifier(f))
        for f in ("event_date", "period", "reg_date", "updated_at")
        if f in mapped
    ]
    day = sql.SQL("greatest({})").format(sql.SQL(", ").join(dates)) if dates else sql.SQL("null::date")
    amount = sql.Identifier("amount") if "amount" in mapped else sql.SQL("null::numeric")
    flat = (
        sql.SQL("regexp_replace(substring(address from {}), '[^0-9]+', '-', 'g')").format(sql.Literal(_FLAT))
        if feed.domain == "population" and "address" in mapped
        else sql.SQL("null::text")
    )
    return sql.SQL(
        "select {feed}::text as feed_id, record_key::text, _partition as partition_key, {day}::date as record_date,"
        " {amount}::numeric as amount, {flat}::text as flat from {latest} where {alive}"
    ).format(
        feed=sql.Literal(feed.id), day=day, amount=amount, flat=flat, latest=latest, alive=linking.alive(feed)
    )


def _inputs(conn: psycopg.Connection, catalog: Catalog) -> None:
    """staged._mart_feed (the catalog) and staged._mart_record (every current, not deleted record: its date,
    amount and flat — never its name, ID, phone or address), tables of the refresh's transaction (WORK)."""
    depts = {d.code: d for d in catalog.departments}
    conn.execute(
        """create unlogged table staged._mart_feed (feed_id text primary key, department text,
               department_name text, feed_name text, feed_name_en text, domain text)"""
    )
    with conn.cursor().copy("copy staged._mart_feed from stdin") as copy:
        for f in catalog.feeds:
            copy.write_row((f.id, f.department, depts[f.department].name, f.name, f.name_en, f.domain))
    selects = [
        _record_select(feed, latest)
        for feed in catalog.feeds
        if (latest := staging.current(conn, feed)) is not None
    ]
    # one statement: the feeds' latest versions are sorted by parallel workers (18 s -> 11 s at scale 0.1)
    if selects:
        conn.execute(
            sql.SQL("create unlogged table staged._mart_record as {}").format(
                sql.SQL(" union all ").join(selects)
            )
        )
    else:
        conn.execute(
            """create unlogged table staged._mart_record (feed_id text, record_key text, partition_key text,
                   record_date date, amount numeric, flat text)"""
        )
    conn.execute("analyze staged._mart_record")
    conn.execute(
        "create temp table mart_quarantine (feed_id text, partition_key text, reason text) on commit drop"
    )
    left_out = quarantine.listing(conn)  # the records themselves come through staging.current(), without them
    with conn.cursor().copy("copy mart_quarantine from stdin") as copy:
        for q in left_out:  # its reason reads "<check>: <what failed>; ..."
            copy.write_row((q["feed_id"], q["partition"], q["reason"]))


def _service_rows(conn: psycopg.Connection, catalog: Catalog, counts: dict[str, int]) -> list[tuple]:
    days = dict(
        conn.execute("select feed_id, max(partition_key) from staged._mart_record group by 1").fetchall()
    )
    refreshed = conn.execute("select now()").fetchone()[0]
    rows = []
    for name in MARTS:
        table = name + NEXT
        comment = conn.execute("select obj_description(%s::regclass, 'pg_class')", (f"mart.{table}",))
        title_zh, _, rest = comment.fetchone()[0].partition(
            " — "
        )  # "中文标题 — English title. What it holds"
        title_en, _, description = rest.partition(". ")
        geo = conn.execute(
            "select type, srid from geometry_columns where f_table_schema = 'mart' and f_table_name = %s",
            (table,),
        ).fetchone()
        bbox = None
        if geo:
            ext = conn.execute(
                sql.SQL(
                    "select st_xmin(e), st_ymin(e), st_xmax(e), st_ymax(e) from (select st_extent(geom) e from {}) x"
                ).format(sql.Identifier("mart", table))
            ).fetchone()
            bbox = None if ext[0] is None else [round(v, 6) for v in ext]
        domains, refs = _SOURCES[name]
        feeds = [f for f in catalog.feeds if domains and f.domain in domains and f.id in days]
        day = max((days[f.id] for f in feeds), default=None)
        departments = sorted({f.department for f in feeds} | {REFERENCE[r] for r in refs})
        rows.append(
            (
                name,
                title_zh,
                title_en,
                description,
                geo[0] if geo else None,
                geo[1] if geo else None,
                bbox,
                counts[name],
                refreshed,
                [*refs, *(f.id for f in feeds)],
                departments,
                day,
            )
        )
    return rows


def _swap(conn: psycopg.Connection) -> None:
    """Replace each published mart by its new build: drop, rename the table and its indexes (one transaction)."""
    for name in MARTS:
        conn.execute(sql.SQL("drop table if exists {}").format(sql.Identifier("mart", name)))
        conn.execute(
            sql.SQL("alter table {} rename to {}").format(
                sql.Identifier("mart", name + NEXT), sql.Identifier(name)
            )
        )
        for (index,) in conn.execute(
            "select indexname from pg_indexes where schemaname = 'mart' and tablename = %s", (name,)
        ).fetchall():
            if NEXT in index:
                conn.execute(
                    sql.SQL("alter index {} rename to {}").format(
                        sql.Identifier("mart", index), sql.Identifier(index.replace(NEXT, ""))
                    )
                )


# the refresh's large working tables: unlogged tables of its own transaction, created and dropped in it (never
# committed, never seen by another session); a temporary table would keep parallel workers out of every query
# reading it (mart_link at scale 0.1: 31.5 s -> 18 s)
WORK = ("staged._mart_feed", "staged._mart_record", "staged._mart_link")

CORE_READ = (
    "core.entity_link",
    "core.identity_member",
    "core.person",
    "core.legal_person",
)  # swapped in whole


def refresh(
    conn: psycopg.Connection, catalog: Catalog, before_commit: Callable | None = None
) -> dict[str, int]:
    """Rebuild every mart aside and swap them in, in one transaction; returns the rows of each mart.
    ``before_commit(conn)`` (the assets' checks) runs after the swap, inside the transaction."""
    params = {"min_persons": SUPPRESS_BELOW}
    session_memory(conn)
    with locks.exclusive(conn, "mart"), locks.staged_snapshot(conn, reads=CORE_READ) as release:
        _inputs(conn, catalog)
        release()
        run_sql(conn, "mart/entity_class.sql", params)
        run_sql(conn, "mart/inputs.sql", params)
        for name in MARTS[1:]:
            run_sql(conn, f"mart/{name}.sql", params)
        counts = {
            name: conn.execute(
                sql.SQL("select count(*) from {}").format(sql.Identifier("mart", name + NEXT))
            ).fetchone()[0]
            for name in MARTS[:-1]
        }
        counts["data_service"] = len(MARTS)
        rows = _service_rows(conn, catalog, counts)
        with conn.cursor().copy("copy mart.data_service__next from stdin") as copy:
            for row in rows:
                copy.write_row(row)
        _swap(conn)
        if before_commit:
            before_commit(conn)
        conn.execute(
            sql.SQL("drop table {}").format(sql.SQL(", ").join(sql.Identifier(*t.split(".")) for t in WORK))
        )
    return counts
