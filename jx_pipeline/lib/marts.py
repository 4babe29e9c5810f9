"""The marts the spatial platform reads (schema ``mart``), rebuilt as a whole from current core and staged data.

What they are built from is kept between refreshes and read again only where it changed: the current records'
dates, amounts and flats (staged._mart_record) and their links and master keys (staged._mart_link), for the
records of staged partitions changed since the last refresh and those whose link or identity changed (noted in
staged._mart_change by triggers on ``NOTED``, sql/migrations/0025_change_notes.sql). So are the sums the marts
read (``SUMS``) and the counts per feed (``COUNTS``), brought up to date from the rows read again. At scale 0.1 a
day's refresh took 71 s when it read every record and grouped every link row; ~22 s now with its tables in memory
(bench/mart_refresh.py).

Every mart is built aside (``mart.<name>__next``) and swapped in by renaming, all in one transaction: a reader
sees the previous marts until the commit and the new ones after it, never a half-built or empty table, and a
table created in ``mart`` gets the schema's default privileges (the reader role). One refresh at a time (the
``mart`` lock); staged loads wait only while the current records are read (``locks.staged_snapshot``).

Persons appear only as counts (small ones suppressed, ``SUPPRESS_BELOW``) — see lib/marts_privacy.py.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable

import psycopg
from psycopg import sql

from jx_pipeline.catalog.schema import Catalog, Feed
from jx_pipeline.lib import changes, linking, locks, quarantine, staging, tallies, work_schema
from jx_pipeline.lib.pg import by_key, settings_for
from jx_pipeline.lib.warehouse import run_sql, session_memory, sql_file

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


DATE_FIELDS = ("event_date", "period", "reg_date", "updated_at")
READ_FIELDS = (*DATE_FIELDS, "amount", "address", *linking.ALIVE_FIELDS)  # what _record_select reads


def _record_select(feed: Feed, latest: sql.Composable) -> sql.Composed:
    mapped = set(feed.columns.values())
    dates = [sql.SQL("{}::date").format(sql.Identifier(f)) for f in DATE_FIELDS if f in mapped]
    day = sql.SQL("greatest({})").format(sql.SQL(", ").join(dates)) if dates else sql.SQL("null::date")
    amount = sql.Identifier("amount") if "amount" in mapped else sql.SQL("null::numeric")
    flat = (
        sql.SQL("regexp_replace(substring(address from {}), '[^0-9]+', '-', 'g')").format(sql.Literal(_FLAT))
        if feed.domain == "population" and "address" in mapped
        else sql.SQL("null::text")
    )
    return sql.SQL(
        "select {feed}::text as feed_id, record_key::text, _partition::text, {day}::date as record_date,"
        " {amount}::numeric as amount, {flat}::text as flat, {alive} as alive from {latest}"
    ).format(
        feed=sql.Literal(feed.id), day=day, amount=amount, flat=flat, latest=latest, alive=linking.alive(feed)
    )


def _feeds(conn: psycopg.Connection, catalog: Catalog) -> None:
    """staged._mart_feed (the catalog's feeds) and mart_quarantine (the partitions left out), for this refresh."""
    depts = {d.code: d for d in catalog.departments}
    conn.execute(
        """create unlogged table staged._mart_feed (feed_id text primary key, department text,
               department_name text, feed_name text, feed_name_en text, domain text)"""
    )
    with conn.cursor().copy("copy staged._mart_feed from stdin") as copy:
        for f in catalog.feeds:
            copy.write_row((f.id, f.department, depts[f.department].name, f.name, f.name_en, f.domain))
    conn.execute("create unlogged table mart_quarantine (feed_id text, partition_key text, reason text)")
    left_out = quarantine.listing(conn)  # the records themselves come through staging.current(), without them
    with conn.cursor().copy("copy mart_quarantine from stdin") as copy:
        for q in left_out:  # its reason reads "<check>: <what failed>; ..."
            copy.write_row((q["feed_id"], q["partition"], q["reason"]))


def _select(conn: psycopg.Connection, feed: Feed, keys: str | None = None) -> sql.Composed | None:
    """The feed's current records (``_record_select``; a deletion kept with ``alive`` false, so that a later
    change of its partition reads it again), or only those of the working table ``keys`` (feed_id, record_key);
    None before the feed was ever staged."""
    latest = staging.current(conn, feed, keys, READ_FIELDS)
    return None if latest is None else _record_select(feed, latest)


def _selects(conn: psycopg.Connection, catalog: Catalog, keys: str | None = None) -> list[sql.Composed]:
    """Each staged feed's ``_select``."""
    return changes.selects(conn, catalog, _select, keys)


def _records(conn: psycopg.Connection, catalog: Catalog) -> sql.Composable | None:
    """Every feed's current records in one select; None when no feed was staged yet."""
    return changes.union(conn, catalog, _select)


def _link_rows(records: str) -> sql.Composable:
    return sql.SQL(sql_file("mart/link_rows.sql")).format(records=sql.Identifier(*records.split(".")))


def _input_key(conn: psycopg.Connection, catalog: Catalog) -> str:
    """What the kept inputs are made from: each feed's select, domain and department, the link rows' SQL, and
    the core tables they read (a table swapped in whole by lib/rebuild.py is a new one, its rows not noted)."""
    made = [sql_file(f) for f in ("mart/link_rows.sql", "mart/sums_delta.sql", "mart/sums/entity_rec.sql")]
    made += [sql_file(f"mart/sums/{f}.sql") for f, *_ in (*COUNTS.values(), *SUMS.values())]
    made += [
        inspect.getsource(f)
        for f in (
            staging.current,
            quarantine.good_partitions,
            _inputs,
            _select,
            _selects,
            _records,
            _counts,
            _signed,
            _sum,
            _entity_rec,
            _sums,
        )
    ]
    made += [repr(COUNTS), repr(SUMS)]
    made += [str(conn.execute("select %s::regclass::oid", (t,)).fetchone()[0]) for t in NOTED]
    made += [
        f"{f.id}|{f.domain}|{f.department}|{_record_select(f, sql.SQL('t')).as_string(conn)}"
        for f in catalog.feeds
    ]
    return hashlib.md5("\n".join(made).encode()).hexdigest()


def _inputs(conn: psycopg.Connection, catalog: Catalog, full: bool) -> dict:
    """Bring the kept inputs up to date (call inside the staged snapshot): staged._mart_record (every current
    record: its date, amount, flat and whether it is alive, not a deletion — never its name, ID, phone or
    address) and staged._mart_link (those of them linked, with their link and master keys), and the counts and
    sums over them (``_counts``, ``_sums``). Only the records of staged partitions changed since the last refresh (lib/changes.py) and
    those whose link or identity changed (``staged._mart_change``) are read again; every record when ``full``, on a first refresh, after a crash, a core table swapped in or truncated,
    or a change of the catalog's feeds (``_input_key``). Returns {"mode", "records_read"}."""
    _feeds(conn, catalog)
    key = _input_key(conn, catalog)
    noted, everything = conn.execute(
        "select max(id), bool_or(feed_id is null) from staged._mart_change"
    ).fetchone()
    changes.now(conn, "mart", catalog)
    delta = (
        not full
        and not everything
        and conn.execute("select key from staged._mart_input_key").fetchone() == (key,)
        and conn.execute(
            "select bool_and(to_regclass('staged.' || t) is not null) from unnest(%s::text[]) t",
            (list(KEPT),),
        ).fetchone()[0]
        and changes.want(conn, "mart", ("_mart_record",), "mart_want")
    )
    if delta:
        conn.execute(
            "insert into mart_want select distinct feed_id, record_key from staged._mart_change where id <= %s"
            " on conflict do nothing",
            (noted,),
        )
        conn.execute(
            "create unlogged table mart_record_new (feed_id text, record_key text, _partition text, record_date date,"
            " amount numeric, flat text, alive boolean)"
        )
        conn.execute("analyze mart_want")
        read = conn.execute("select count(*) from mart_want").fetchone()[0]
        # the records read again, a feed at a time, found by key in each partition when they are few (scale 0.1:
        # a day's 64k of 9.2M, 0.9-1.3 s; the planner hashed every feed's rows, 5.7-6.3 s, and 1.7-3.0 s for one
        # statement over all feeds by key)
        with by_key(conn, read, "staged._mart_record"):
            for select in _selects(conn, catalog, "mart_want"):
                conn.execute(sql.SQL("insert into mart_record_new {}").format(select))
        conn.execute("analyze mart_record_new")
        _key_indexes(conn)
        # and deleted by key (hashing every kept row took 2.3-3.0 s and 3.3-4.3 s), kept for the counts
        # (_counts), as are the link rows removed and added, for the counts and the sums (_sums)
        for table, like in (
            ("mart_record_gone", "_mart_record"),
            ("mart_link_gone", "_mart_link"),
            ("mart_link_came", "_mart_link"),
        ):
            conn.execute(
                sql.SQL("create unlogged table {} (like {})").format(
                    sql.Identifier(table), sql.Identifier("staged", like)
                )
            )
        with by_key(conn, read, "staged._mart_record"):
            conn.execute(
                "with d as (delete from staged._mart_record a using mart_want w"
                " where a.feed_id = w.feed_id and a.record_key = w.record_key returning a.*)"
                " insert into mart_record_gone select * from d"
            )
        conn.execute("insert into staged._mart_record select * from mart_record_new")
        with by_key(conn, read, "staged._mart_record"):
            conn.execute(
                "with d as (delete from staged._mart_link a using mart_want w"
                " where a.feed_id = w.feed_id and a.record_key = w.record_key returning a.*)"
                " insert into mart_link_gone select * from d"
            )
        # their links and memberships found by key too (3.0 s by hash joins over both core tables at 0.1)
        with by_key(conn, read, "core.entity_link"):
            conn.execute(
                sql.SQL(
                    "with n as (insert into staged._mart_link {} returning *)"
                    " insert into mart_link_came select * from n"
                ).format(_link_rows("mart_record_new"))
            )
    else:
        conn.execute("drop table if exists staged._mart_record, staged._mart_link")
        # one statement: the feeds' latest versions are sorted by parallel workers (18 s -> 11 s at scale 0.1)
        records = _records(conn, catalog) or sql.SQL(
            "select null::text as feed_id, null::text as record_key, null::text as _partition,"
            " null::date as record_date, null::numeric as amount, null::text as flat, null::boolean as alive"
            " where false"
        )
        conn.execute(sql.SQL("create unlogged table staged._mart_record as {}").format(records))
        conn.execute("analyze staged._mart_record")
        # hash joins: the planner guesses that 3 in 100 records match on (feed_id, record_key) and would probe
        # identity_member's index once per record, twice (7.5 s instead of 4.3 s at scale 0.01)
        with settings_for(conn, enable_nestloop="off"):
            conn.execute(
                sql.SQL("create unlogged table staged._mart_link as {}").format(
                    _link_rows("staged._mart_record")
                )
            )
        conn.execute("delete from staged._mart_input_key")
        conn.execute("insert into staged._mart_input_key values (%s)", (key,))
        read = conn.execute("select count(*) from staged._mart_record").fetchone()[0]
        _key_indexes(conn)
        # read whole by hash aggregates: no index (one on entity_id cost 5.8 s at scale 0.1). A day's refresh
        # leaves its statistics to autovacuum: ~1 % of the rows changed, and sampling them took 1.3-7.9 s
        conn.execute("analyze staged._mart_link")
    _counts(conn, delta)
    _sums(conn, delta)
    conn.execute("delete from staged._mart_change where id <= %s", (noted,))
    changes.remember(conn, "mart")
    return {"mode": "changed records" if delta else "every record", "records_read": read}


ENTITY_SQL = ("mart/entity_class.sql", "mart/entities.sql")
ENTITY_TABLES = {"core.geo_entity": ("entity_id",), "core.admin_unit": ("code",)}  # read by entities.sql


def _entities(conn: psycopg.Connection, full: bool) -> bool:
    """Make staged._mart_entity and staged._mart_class_area (sql/mart/entities.sql) again when ``full``, when
    core.geo_entity or core.admin_unit was written since they were made (their tallies' marks, lib/tallies.py;
    no mark known: always) or when the SQL changed; True when made. Call after entity_class.sql (they read its
    classes)."""
    marks = [tallies.written(conn, t) for t in ENTITY_TABLES]
    made = [sql_file(f) for f in ENTITY_SQL] + [f"{t}:{m}" for t, m in zip(ENTITY_TABLES, marks, strict=True)]
    key = None if None in marks else hashlib.md5("\n".join(made).encode()).hexdigest()
    kept = conn.execute(
        "select (select key from staged._mart_entity_key) = %s"
        " and to_regclass('staged._mart_entity') is not null and to_regclass('staged._mart_class_area') is not null",
        (key,),
    ).fetchone()[0]
    if kept and not full:
        return False
    run_sql(conn, "mart/entities.sql")
    conn.execute("delete from staged._mart_entity_key")
    if key is not None:
        conn.execute("insert into staged._mart_entity_key values (%s)", (key,))
    return True


def _key_indexes(conn: psycopg.Connection) -> None:
    """The kept inputs' record keys, for a refresh that reads some records again (built after a full one's
    insert, or once on a warehouse kept from before: 19.5 s for both at scale 0.1)."""
    for table in ("_mart_record", "_mart_link"):
        conn.execute(
            sql.SQL("create index if not exists {} on {} (feed_id, record_key)").format(
                sql.Identifier(f"{table}_key"), sql.Identifier("staged", table)
            )
        )


# the kept counts per feed: table -> its select (sql/mart/sums/), its key, the kept input it counts and the
# working tables of the rows a refresh adds to that input and removes from it (``_inputs``)
COUNTS = {
    "_mart_feed_day": (
        "feed_day",
        ("feed_id", "partition_key"),
        "_mart_record",
        "mart_record_new",
        "mart_record_gone",
    ),
    "_mart_feed_method": (
        "feed_method",
        ("feed_id", "method"),
        "_mart_link",
        "mart_link_came",
        "mart_link_gone",
    ),
}


def _counts(conn: psycopg.Connection, delta: bool) -> None:
    """Make the kept counts per feed (``COUNTS``) from the kept inputs or, when ``delta``, add the difference the
    rows a refresh read again make: feed_link_coverage.sql then reads no record (two passes over 9.2M rows at
    scale 0.1, 3.1 s with them in memory, 52 s from disk)."""
    for table, (name, keys, source, came, gone) in COUNTS.items():
        target = sql.Identifier("staged", table)
        key = sql.SQL(", ").join(map(sql.Identifier, keys))
        select = sql.SQL(sql_file(f"mart/sums/{name}.sql"))
        if delta:
            rows = _signed(sql.Identifier(came), sql.Identifier(gone))
            conn.execute(
                sql.SQL(
                    "insert into {} as t {} on conflict ({}) do update set records = t.records + excluded.records"
                ).format(target, select.format(rows=rows), key)
            )
            conn.execute(sql.SQL("delete from {} where records = 0").format(target))
            if not conn.execute(
                sql.SQL("select exists (select 1 from {} where records < 0)").format(target)
            ).fetchone()[0]:
                continue  # below zero only if the table was written outside a refresh: counted whole again
        rows = _signed(sql.Identifier("staged", source))
        conn.execute(sql.SQL("drop table if exists {}").format(target))
        conn.execute(sql.SQL("create unlogged table {} as {}").format(target, select.format(rows=rows)))
        conn.execute(sql.SQL("alter table {} add primary key ({})").format(target, key))


# the kept sums over staged._mart_link the marts read instead of every link row: table -> its select
# (sql/mart/sums/), and the key by which a refresh makes it again for the keys touched (None: it adds the
# differences, sql/mart/sums_delta.sql)
SUMS = {
    "_mart_entity_sum": ("entity", None),
    "_mart_person_entity": ("person_entity", "person_key"),
    "_mart_org_entity": ("org_entity", "org_key"),
    "_mart_economy": ("economy", "entity_id"),
}
KEPT = ("_mart_record", "_mart_link", *COUNTS, *SUMS, "_mart_entity_rec")  # the kept inputs, in staged


def _signed(came: sql.Composable, gone: sql.Composable | None = None) -> sql.Composed:
    """The rows of ``came`` counted in (s = 1) and of ``gone`` counted out (s = -1), as the sums' and counts'
    selects read them (sql/mart/sums/)."""
    out = sql.SQL("select -1, * from {}").format(gone) if gone is not None else None
    return sql.SQL("(select 1 as s, * from {}{}) l").format(
        came, sql.SQL(" union all {}").format(out) if out is not None else sql.SQL("")
    )


def _sum(table: str, rows: sql.Composable, only: sql.Composable | None = None) -> sql.Composed:
    return sql.SQL(sql_file(f"mart/sums/{SUMS[table][0]}.sql")).format(
        rows=rows, only=only or sql.SQL("true")
    )


def _entity_rec(only: sql.Composable | None = None) -> sql.Composed:
    return sql.SQL(sql_file("mart/sums/entity_rec.sql")).format(only=only or sql.SQL("true"))


def _sums(conn: psycopg.Connection, delta: bool) -> None:
    """Make the kept sums from staged._mart_link or, when ``delta``, bring them up to date with the link rows
    ``_inputs`` removed and added (mart_link_gone, mart_link_came)."""
    tables = [sql.Identifier("staged", t) for t in (*SUMS, "_mart_entity_rec")]
    if (
        delta
        and not conn.execute(
            "select exists (select 1 from mart_link_gone) or exists (select 1 from mart_link_came)"
        ).fetchone()[0]
    ):
        return  # no link row changed, no sum did (a pass over every link row saved)
    if not delta:
        conn.execute(sql.SQL("drop table if exists {}").format(sql.SQL(", ").join(tables)))
        for table, (_, key) in SUMS.items():
            link = sql.Identifier("staged", "_mart_link")
            rows = link if key else _signed(link)  # counted in
            conn.execute(
                sql.SQL("create unlogged table {} as {}").format(
                    sql.Identifier("staged", table), _sum(table, rows)
                )
            )
        conn.execute(
            "alter table staged._mart_entity_sum drop column gone_last, add primary key (entity_id, department)"
        )
        conn.execute(sql.SQL("create unlogged table staged._mart_entity_rec as {}").format(_entity_rec()))
        conn.execute("alter table staged._mart_entity_rec add primary key (entity_id)")
    else:
        signed = _signed(sql.Identifier("mart_link_came"), sql.Identifier("mart_link_gone"))
        conn.execute(
            sql.SQL("create unlogged table mart_entity_delta as {}").format(_sum("_mart_entity_sum", signed))
        )
        run_sql(conn, "mart/sums_delta.sql")
        touched = sql.SQL("entity_id in (select entity_id from mart_entity_delta)")
        conn.execute(sql.SQL("delete from staged._mart_entity_rec where {}").format(touched))
        conn.execute(sql.SQL("insert into staged._mart_entity_rec {}").format(_entity_rec(touched)))
        for table, (_, key) in SUMS.items():
            if key is None:
                continue
            only = sql.SQL("{} in (select key from mart_touched where sum = {})").format(
                sql.Identifier(key), sql.Literal(table)
            )
            conn.execute(sql.SQL("delete from {} where {}").format(sql.Identifier("staged", table), only))
            conn.execute(
                sql.SQL("insert into {} {}").format(
                    sql.Identifier("staged", table), _sum(table, sql.Identifier("mart_link_touched"), only)
                )
            )
    for table in tables:
        conn.execute(sql.SQL("analyze {}").format(table))


def _service_rows(conn: psycopg.Connection, catalog: Catalog, counts: dict[str, int]) -> list[tuple]:
    days = dict(
        conn.execute("select feed_id, max(partition_key) from staged._mart_feed_day group by 1").fetchall()
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


def compared_columns(conn: psycopg.Connection, name: str) -> list[str]:
    """A published mart's columns but the service catalog's refresh time: what two refreshes of the same data
    publish alike (the tests and bench/mart_refresh.py compare them)."""
    return [
        c
        for (c,) in conn.execute(
            "select column_name from information_schema.columns where table_schema = 'mart'"
            " and table_name = %s and column_name <> 'refreshed_at' order by ordinal_position",
            (name,),
        )
    ]


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


# the refresh's working table of the catalog: unlogged, created and dropped in its transaction (never committed,
# never seen by another session); a temporary table would keep parallel workers out of every query reading it
# (mart_link at scale 0.1: 31.5 s -> 18 s), as it would the kept inputs (staged._mart_record, staged._mart_link)
WORK = ("staged._mart_feed",)

NOTED = ("core.entity_link", "core.identity_member")  # their writes are noted for the next refresh
CORE_READ = (
    "core.entity_link",
    "core.identity_member",
    "core.person",
    "core.legal_person",
)  # swapped in whole


def refresh(
    conn: psycopg.Connection,
    catalog: Catalog,
    before_commit: Callable | None = None,
    full: bool = False,
    stats: dict | None = None,
    at_snapshot: Callable | None = None,
) -> dict[str, int]:
    """Rebuild every mart aside and swap them in, in one transaction; returns the rows of each mart.
    ``before_commit(conn)`` (the assets' checks) runs after the swap, inside the transaction; ``at_snapshot(conn)``
    as soon as its snapshot is taken (the checks' counts of core started aside, lib/aside.py). The inputs are
    read again only where they changed (``_inputs``; ``full``: every record); ``stats`` gets how."""
    params = {"min_persons": SUPPRESS_BELOW}
    session_memory(conn)
    tallies.ensure(conn, ENTITY_TABLES)  # before the snapshot (its marks say whether the entities changed)
    with (
        locks.exclusive(conn, "mart"),
        locks.staged_snapshot(conn, reads=CORE_READ) as release,
        work_schema.opened(conn, work_schema.MARTS),
    ):
        if at_snapshot:
            at_snapshot(conn)
        read = _inputs(conn, catalog, full)
        release()
        if stats is not None:
            stats.update(read)
        run_sql(conn, "mart/entity_class.sql", params)
        made = _entities(conn, full)
        if stats is not None:
            stats["entities_made"] = made
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
