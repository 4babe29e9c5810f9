"""The address parser's output per distinct text linking reads (``staged._parse_cache``), and who fills it.

Parsing is linking's one Python-heavy part (~60 µs a text; 3.4M texts at scale 0.1). Linking parses whatever its
records need that the cache lacks (``parse_missing``), but the cache is also filled ahead of it, one step per
department (``parse_ahead``, the assets ``core/address_texts/<dept>``): those steps run on whichever worker is
free, several at once, each as soon as its department is staged — so another Celery worker or machine takes a
share of the parsing, where linking alone parses on the cores of one process (one, on a Celery worker). In a run
whose steps all stay on one machine the steps leave the parsing to linking (``ahead``): there they would cost more
than they save.

Either way a text is parsed once per parser and gazetteer (``parser_key``); a department's step remembers the
staged partitions it has read (lib/changes.py) and reads only texts of partitions loaded since. Linking's
result never depends on the steps ahead: what they did not parse, it parses.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import os
from functools import partial

import psycopg
from psycopg import sql

from jx_pipeline.catalog.schema import Catalog
from jx_pipeline.lib import address, address_cache, changes, fork_pool, locks
from jx_pipeline.lib.errors import JxError

PARSE_BATCH = 20_000
# fewer new texts than this: left to linking, which parses them with the rest in one go (building or loading
# the parser costs a department's step about as much as parsing this many)
AHEAD_MIN = PARSE_BATCH
CACHE = "staged._parse_cache"
_IN_CACHE = f"select 1 from {CACHE} c where c.text_md5 = md5(x.t)::uuid"  # of a text x.t
AHEAD_ENV = "JX_PARSE_AHEAD"
AHEAD_MIN_ENV = "JX_PARSE_AHEAD_MIN"  # AHEAD_MIN, for a deployment whose parser starts faster or slower
AHEAD = "parse:"  # consumer names of the steps ahead in staged._seen_partition: parse:<department>


def parse_row(parser: address.AddressParser, text: str) -> tuple:
    """The cached row of a text: its md5, the door plate (none outside the city), fuzzy, outside, its village."""
    p = parser.parse(text)
    village = p.village_code or parser.villages_of_city.get(text)
    return (
        hashlib.md5(text.encode()).hexdigest(),
        text,
        None if p.outside else p.entity_id,
        p.fuzzy,
        p.outside,
        village,
    )


def parser_key(conn: psycopg.Connection) -> str:
    """The parser's code and divisions (address_cache.code_key), the gazetteer's door plates, and how a parse
    becomes the cached row (``parse_row``)."""
    gazetteer = conn.execute(
        "select md5(coalesce(string_agg(concat_ws('|', entity_id, village_code, address), E'\\n'"
        " order by entity_id), '')) from core.geo_entity where entity_type = 'address_point'"
    ).fetchone()[0]
    h = address_cache.code_key(address.DEFAULT_CITY)
    h.update(gazetteer.encode())
    h.update(inspect.getsource(parse_row).encode())
    return h.hexdigest()[:20]


def parser(conn: psycopg.Connection, key: str) -> address.AddressParser:
    """The parser of the warehouse's gazetteer, from the disk cache when it was built for ``key`` (building it
    parses every door plate: ~4 s at scale 0.1, paid once per machine instead of once per step)."""
    return address_cache.keyed_parser("link_parser", key, lambda: address.points_of(conn))


def _write(conn: psycopg.Connection, table: str, rows: list) -> None:
    with conn.cursor().copy(
        sql.SQL("copy {} (text_md5, text, entity_id, fuzzy, outside, village_code) from stdin").format(
            sql.Identifier(*table.split("."))
        )
    ) as copy:
        for row in rows:
            copy.write_row(row)


def _parse_into(conn: psycopg.Connection, texts: str, key: str, table: str) -> int:
    """Parse the texts the query ``texts`` selects (one column) into ``table`` (the cache's columns), on every
    core when there is more than one batch; returns how many."""
    cur = conn.cursor(name="link_new_texts")
    cur.execute(texts)
    first = [t for (t,) in cur.fetchmany(PARSE_BATCH)]
    if not first:
        cur.close()
        return 0
    work = partial(parse_row, parser(conn, key))
    rest = iter(lambda: [t for (t,) in cur.fetchmany(PARSE_BATCH)], [])
    parsed = 0

    def write(rows: list) -> None:
        nonlocal parsed
        _write(conn, table, rows)
        parsed += len(rows)

    fork_pool.map_batches(work, itertools.chain([first], rest), write, parallel=len(first) == PARSE_BATCH)
    cur.close()
    return parsed


def _reset(conn: psycopg.Connection, key: str, truncate: bool = True) -> None:
    """An empty cache for parser ``key``; the steps ahead forget what they read (it is no longer parsed).
    ``truncate``: only for linking, whose lock on the cache predates its snapshot; a step ahead deletes, as
    TRUNCATE would wait for every reader of the cache while it holds the writer's lock (a deadlock)."""
    conn.execute(f"{'truncate' if truncate else 'delete from'} staged._parse_cache")
    conn.execute("delete from staged._parse_cache_key")
    conn.execute("insert into staged._parse_cache_key values (%s)", (key,))
    conn.execute("delete from staged._seen_partition where starts_with(consumer, %s)", (AHEAD,))


def _stored_key(conn: psycopg.Connection) -> str | None:
    row = conn.execute("select key from staged._parse_cache_key").fetchone()
    return row[0] if row else None


def parse_missing(conn: psycopg.Connection, full: bool, key: str, texts: str) -> int:
    """Linking's part: parse the texts of the query ``texts`` (one column) not yet in the cache (all of them when
    ``full`` or when the cache is of another parser ``key``); returns how many were parsed. The caller's snapshot
    must hold the cache as its one writer (``locks.staged_snapshot(writes=(CACHE,))``), so that no step ahead
    adds a text after it."""
    if full or _stored_key(conn) != key:
        _reset(conn, key)
    new = f"select distinct t from ({texts}) x(t) where t is not null and not exists ({_IN_CACHE})"
    return _parse_into(conn, new, key, CACHE)


def _department_texts(feed_columns: set[str], child: str) -> sql.Composable | None:
    """The texts linking would read of one staged partition: its addresses, and village names written with an
    entity name (``link_rec``'s address and village_name, lib/linking.py)."""
    parts = []
    table = sql.Identifier("staged", child)
    if "address" in feed_columns:
        parts.append(sql.SQL("select nullif(address, '') from {}").format(table))
    if {"village_name", "entity_name"} <= feed_columns:
        parts.append(
            sql.SQL(
                "select nullif(village_name, '') from {} where nullif(entity_name, '') is not null"
            ).format(table)
        )
    return sql.SQL(" union all ").join(parts) if parts else None


def ahead(executor: str) -> bool:
    """Whether a department's step parses ahead in a run of ``executor``: on Celery workers (another worker or
    machine takes a share), not where every step runs on linking's machine. There linking parses on every core
    itself, and the steps would only add a second read of the staged texts and a second write of the parsed rows
    (at scale 0.1 the links stage took 392 s with them instead of 279–302 s). ``JX_PARSE_AHEAD``: ``always``,
    ``never``, or ``celery`` (the default)."""
    wanted = os.environ.get(AHEAD_ENV) or "celery"
    if wanted not in ("always", "never", "celery"):
        raise JxError(
            f"{AHEAD_ENV}={wanted!r} is not a choice",
            fix=f"set {AHEAD_ENV} to always, never or celery (or unset it)",
        )
    return wanted == "always" or (wanted == "celery" and executor == "celery")


def parse_ahead(conn: psycopg.Connection, catalog: Catalog, department: str) -> dict:
    """A department's step: parse the texts of its staged partitions loaded since its last run (all of them the
    first time, or when the parser changed) that the cache lacks. Fewer than ``AHEAD_MIN`` are left to linking.
    Returns the step's figures: partitions read, texts new, texts parsed."""
    consumer = AHEAD + department
    feeds = {f.id: set(f.columns.values()) for f in catalog.feeds if f.department == department}
    mine = catalog.model_copy(update={"feeds": [f for f in catalog.feeds if f.id in feeds]})
    key = parser_key(conn)
    with locks.staged_snapshot(conn) as release:
        now = changes.now(conn, consumer, mine)
        good = conn.execute(sql.SQL("select * from {}").format(sql.Identifier(now))).fetchall()
        # the cache of another parser, to be emptied: every partition, every text (nothing written here: a reset
        # elsewhere deletes the same rows, and this snapshot could not serialize after it)
        stale = _stored_key(conn) != key
        loaded = [(f, child) for f, _, child, _ in good] if stale else changes.loaded(conn, consumer)
        selects = [q for feed_id, child in loaded if (q := _department_texts(feeds[feed_id], child))]
        conn.execute("create temp table ahead_new (t text) on commit preserve rows")
        lacking = "" if stale else f"and not exists ({_IN_CACHE})"
        if selects:
            conn.execute(
                sql.SQL(
                    "insert into ahead_new select distinct t from ({}) x(t) where t is not null {}"
                ).format(sql.SQL(" union all ").join(selects), sql.SQL(lacking))
            )
        release()
    try:  # parsed outside the snapshot, written in a transaction of its own (read committed)
        new = conn.execute("select count(*) from ahead_new").fetchone()[0]
        # the cache's columns, not ``like`` it: that would hold a lock on the cache while this step parses
        conn.execute(
            "create temp table ahead_parsed (text_md5 uuid, text text, entity_id text, fuzzy boolean,"
            " outside boolean, village_code text) on commit drop"
        )
        least = int(os.environ.get(AHEAD_MIN_ENV) or AHEAD_MIN)
        parsed = _parse_into(conn, "select t from ahead_new", key, "ahead_parsed") if new >= least else 0
        # the cache's one writer from here to the commit: no text added between the check and the insert
        locks.lock_tables(conn, (CACHE,), locks.WRITER)
        if parser_key(conn) != key:  # the gazetteer changed meanwhile: this parse is of no use
            conn.rollback()
            return {"partitions_read": len(loaded), "texts_new": new, "texts_parsed": 0}
        remember = True
        if _stored_key(conn) != key:
            _reset(conn, key, truncate=False)
            remember = stale  # read whole, or the cache now lacks what this step's memory would claim
        conn.execute(
            "insert into staged._parse_cache select * from ahead_parsed p where not exists"
            " (select 1 from staged._parse_cache c where c.text_md5 = p.text_md5)"
        )
        if remember:  # texts left to linking count as read: linking parses them
            changes.remember(conn, consumer, good)
        conn.commit()
    finally:
        conn.rollback()
        conn.execute("drop table if exists ahead_new")
        conn.commit()
    return {"partitions_read": len(loaded), "texts_new": new, "texts_parsed": parsed}
