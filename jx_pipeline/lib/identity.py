"""Identity resolution: the master indexes of persons and legal persons, and each record's membership.

Exact keys first — the resident ID after the 15->18 upgrade, the credit code. A record without a usable key joins
the one master of the same name and birth date (or name and phone, or name and linked door plate) — names alone
are far too common; an organisation without a code joins the one master of the same standardized name. Anything
else stays a master of its own. Master keys are pseudonymous (HMAC of the ID with a secret from the environment),
so marts can carry them.

The rules run in SQL (``sql/core/identity.sql``) over working tables of the current records (lib/work_schema.py):
in Python they held every record in memory (8.6 GB at scale 0.1) and took ~80 µs per record.
"""

import functools
import hashlib
import hmac
import inspect
from collections import Counter
from collections.abc import Callable

import psycopg
from psycopg import sql

from jx_pipeline.catalog.schema import Catalog, Feed
from jx_pipeline.lib import (
    changes,
    fingerprints,
    locks,
    quarantine,
    rebuild,
    settings,
    staging,
    work_schema,
)
from jx_pipeline.lib.pg import by_key, few
from jx_pipeline.lib.warehouse import run_sql, session_memory, sql_file

PERSON_FIELDS = ("id_number", "person_name", "birth_date", "phone")
ORG_FIELDS = ("credit_code", "org_name")
MOST = 5  # a re-resolution reading more than 1/MOST of the remembered records resolves every record
TABLES = {
    "identity_member": ("feed_id", "record_key", "kind"),
    "person": ("person_key",),
    "legal_person": ("org_key",),
}


def pseudonym(kind: str, value: str) -> str:
    """The master key of an ID number or credit code; ``sql/core/identity.sql`` computes the same in SQL."""
    digest = hmac.new(settings.pseudonym_secret(), f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
    return ("P" if kind == "person" else "O") + digest[:20]


# what the rules read of each record: the working table, the fields read, its columns for them, and whether the
# record's linked entity (its door plate) comes along
READS = (
    ("ident_person", PERSON_FIELDS, ("id_number", "name", "birth_date", "phone"), True),
    ("ident_org", ORG_FIELDS, ("credit_code", "name"), False),
)


def _select(
    conn: psycopg.Connection,
    feed: Feed,
    fields: tuple[str, ...],
    columns: tuple[str, ...],
    place: bool,
    keys: str | None = None,
) -> sql.Composed | None:
    """The feed's current records as the working table's columns, typed as there (texts empty -> null, as the
    rules read them), with the partition of the version read; ``keys``: only those of that working table
    (lib/changes.py). None when the feed has no such records (no name field, or never staged)."""
    mapped = set(feed.columns.values())
    latest = staging.current(conn, feed, keys, fields) if fields[1] in mapped else None
    if latest is None:
        return None
    cols = [
        sql.SQL("{} as {}").format(
            sql.SQL("null::{}".format("date" if f == "birth_date" else "text"))
            if f not in mapped
            else (sql.SQL("s.{}::date") if f == "birth_date" else sql.SQL("nullif(s.{}, '')::text")).format(
                sql.Identifier(f)
            ),
            sql.Identifier(c),
        )
        for f, c in zip(fields, columns, strict=True)
    ]
    join = sql.SQL("")
    if place:
        cols.append(sql.SQL("l.entity_id::text as entity_id"))
        join = sql.SQL(
            " left join core.entity_link l on l.feed_id = {} and l.record_key = s.record_key"
        ).format(sql.Literal(feed.id))
    return sql.SQL(
        "select {}::text as feed_id, s.record_key::text as record_key, {}, s._partition::text as _partition,"
        " true as resolve from {}{}"
    ).format(sql.Literal(feed.id), sql.SQL(", ").join(cols), latest, join)


def _read(conn: psycopg.Connection, feed: Feed, keys: str | None = None) -> None:
    """What the rules read of the feed's records, as a person and as a legal person (``changes.gather``)."""
    for table, fields, columns, place in READS:
        select = _select(conn, feed, fields, columns, place, keys)
        if select is not None:
            conn.execute(sql.SQL("insert into {} {}").format(sql.Identifier(table), select))


def _read_whole(conn: psycopg.Connection, catalog: Catalog) -> None:
    """Every feed's current records into both working tables, each made again from one statement over all feeds
    (``changes.gather_whole``), with ``resolve``'s default as made."""
    for table, fields, columns, place in READS:
        select = functools.partial(_select, fields=fields, columns=columns, place=place)
        changes.gather_whole(conn, catalog, select, table)
        conn.execute(sql.SQL("alter table {} alter resolve set default true").format(sql.Identifier(table)))


# the person records whose link (their door plate) changed since they were read: read again with the
# partitions changed (core tables only: found under the core lock, before staged loads are held). Those whose
# link row was written since the last run are noted (staged._ident_change, migration 0025): only they are
# compared (_NOTED), unless the table was swapped in or truncated since (then every one: _RELINKED)
_RELINKED = """
create temp table ident_relinked as
select m.feed_id, m.record_key
  from staged._ident_input m
  left join core.entity_link l on (l.feed_id, l.record_key) = (m.feed_id, m.record_key)
 where m.kind = 'person' and m.entity_id is distinct from l.entity_id
"""
_NOTED = """
create temp table ident_relinked as
select m.feed_id, m.record_key
  from (select distinct feed_id, record_key from ident_noted) c
  join staged._ident_input m on (m.feed_id, m.record_key) = (c.feed_id, c.record_key)
  left join core.entity_link l on (l.feed_id, l.record_key) = (m.feed_id, m.record_key)
 where m.kind = 'person' and m.entity_id is distinct from l.entity_id
"""


def _relinked(conn: psycopg.Connection, known: bool) -> tuple[str, int]:
    """ident_relinked (temporary, kept past the commit before the staged snapshot), when the memory is
    ``known``; and ident_noted, the noted changes this run takes in (``_taken`` removes them). Returns how the
    records were found and the link table (oid) compared."""
    conn.execute("drop table if exists ident_relinked, ident_noted")
    conn.execute("create temp table ident_noted as select id, feed_id, record_key from staged._ident_change")
    table, truncated = conn.execute(
        "select 'core.entity_link'::regclass::oid, coalesce(bool_or(feed_id is null), false) from ident_noted"
    ).fetchone()
    if not known:
        return "every record read", table
    if conn.execute("select relid from staged._ident_link_table").fetchone() == (table,) and not truncated:
        conn.execute("analyze ident_noted")
        # a day's noted links of every record remembered: found by key (scale 0.1: 48k of 8.1M, 8.0 s by the
        # planner's hash and nested-loop plan over every person remembered)
        noted = conn.execute("select count(*) from ident_noted").fetchone()[0]
        with by_key(conn, noted, "staged._ident_input"):
            conn.execute(_NOTED)
        return "noted links", table
    conn.execute(_RELINKED)
    return "every link", table


def _naming_kept(conn: psycopg.Connection) -> bool:
    return conn.execute("select exists (select 1 from staged._ident_naming)").fetchone()[0]


def _remember_naming(conn: psycopg.Connection, scope: int | None) -> None:
    """staged._ident_naming := this run's ident_naming_new: whole (scope None; stored by master, so that a
    re-resolution reads a master's rows from a few pages), or the rows of the masters touched."""
    if scope is None:
        conn.execute("truncate staged._ident_naming")
        with rebuild.indexes_after(conn, "staged", "_ident_naming"):
            conn.execute(
                'insert into staged._ident_naming select * from ident_naming_new order by master_key collate "C"'
            )
        conn.execute("analyze staged._ident_naming")
        return
    touched = conn.execute("select count(*) from ident_touched").fetchone()[0]
    with by_key(conn, touched, "staged._ident_naming"):
        conn.execute(
            "delete from staged._ident_naming g using ident_touched t where (g.kind, g.master_key) = (t.kind, t.master_key)"
        )
    conn.execute("insert into staged._ident_naming select * from ident_naming_new")


def _taken(conn: psycopg.Connection, table: int) -> None:
    """The noted changes this run read are done with; the link table it compared is remembered."""
    conn.execute("delete from staged._ident_change c using ident_noted n where c.id = n.id")
    conn.execute("delete from staged._ident_link_table")
    conn.execute("insert into staged._ident_link_table values (%s)", (table,))
    conn.execute("drop table ident_noted")


RULES = (
    "core/identity_records.sql",
    "core/identity_inputs.sql",
    "core/identity_delta.sql",
    "core/identity_scope.sql",
    "core/identity.sql",
    "core/identity_touched.sql",
    "core/identity_masters.sql",
)


def _key() -> str:
    """What every membership depends on besides its record: the rules, how a record is read and the pseudonym
    secret (its hash). Another key resolves every record again."""
    h = hashlib.sha256(hashlib.sha256(settings.pseudonym_secret()).digest())
    for name in RULES:
        h.update(sql_file(name).encode())
    read = (
        _select,
        _read,
        _read_whole,
        _RELINKED,
        _NOTED,
        _relinked,
        staging.current,
        quarantine.good_partitions,
    )
    read += (changes, fingerprints)
    for code in read:
        h.update((code if isinstance(code, str) else inspect.getsource(code)).encode())
    return h.hexdigest()[:20]


MEMORY = fingerprints.Memory(
    "_ident_input",
    "core.identity_member",
    ("feed_id", "record_key", "kind"),
    "ident_fp",
    "ident_scope",
    "core/identity_scope.sql",
    "ident_changed",
    partitions=True,
)


class _Drifted(Exception):
    """A touched master's kept naming rows count fewer members than left it: written outside the pipeline (a
    membership's master edited by hand, a write with triggers off)."""


def resolve(
    conn: psycopg.Connection,
    catalog: Catalog,
    before_commit: Callable | None = None,
    full: bool = False,
    stats: dict | None = None,
    at_snapshot: Callable | None = None,
) -> dict[str, Counter]:
    """``_resolve``; when the kept naming rows are found out of step, the run is rolled back and every record
    resolved again, which writes them whole."""
    try:
        return _resolve(conn, catalog, before_commit, full, stats, at_snapshot)
    except _Drifted:
        conn.rollback()
        if stats is not None:
            stats["naming_drifted"] = True
        return _resolve(conn, catalog, before_commit, True, stats, at_snapshot)


def _resolve(
    conn: psycopg.Connection,
    catalog: Catalog,
    before_commit: Callable | None,
    full: bool,
    stats: dict | None,
    at_snapshot: Callable | None,
) -> dict[str, Counter]:
    """Bring core.person, core.legal_person and core.identity_member up to date; returns the count per method.
    ``before_commit(conn)`` (the asset's checks) runs in the rebuild's snapshot before it commits;
    ``at_snapshot(conn)`` as soon as that snapshot is taken (the checks' counts started aside, lib/aside.py).

    Like linking: one rebuild at a time, from one snapshot of the staged records and of
    ``core.entity_link``. A run reads only the records of the staged partitions changed since the last one
    (lib/changes.py) and those whose link changed; it resolves again those new, changed or gone and those
    sharing a name with them (read from its memory), and names and counts again the masters they leave or
    join, with the result a full rebuild gives (``full``: every record). ``stats`` gets the records read and
    resolved again, and how the records whose link changed were found."""
    session_memory(conn)
    MEMORY.ensure(conn)
    with locks.exclusive(conn, "core"):
        # the memory and the links change only under the core lock: read before staged loads are held
        key = _key()
        # what names the masters is kept with the memory (_naming); an empty one is lost (a new warehouse table)
        known = not full and MEMORY.known(conn, key) and _naming_kept(conn)
        relinked, link_table = _relinked(conn, known)
        with locks.staged_snapshot(conn) as release, work_schema.opened(conn, work_schema.IDENTITY):
            if at_snapshot:
                at_snapshot(conn)
            run_sql(conn, "core/identity_records.sql")
            changes.now(conn, "ident", catalog)
            delta = known and changes.want(conn, "ident", (MEMORY.table,), "ident_want")
            if delta:  # the records of changed partitions and of changed links; the others are remembered
                conn.execute("insert into ident_want select * from ident_relinked on conflict do nothing")
                wanted = conn.execute("select count(*) from ident_want").fetchone()[0]
                # most records to read again (every door plate moved: the entities swapped in): all are resolved,
                # which is faster than finding so many by key (scale 0.01: > 9 min against 15 s)
                delta = few(conn, wanted, f"staged.{MEMORY.table}", ratio=MOST)
            if delta:
                with MEMORY.by_key(conn, "ident_want"):  # by each feed's record_key index, as linking's
                    changes.gather(conn, catalog, _read, "ident_want")
            else:
                _read_whole(conn, catalog)
            conn.execute("drop table if exists ident_relinked")
            release()
            read = conn.execute(
                "select (select count(*) from ident_person) + (select count(*) from ident_org)"
            ).fetchone()[0]
            with conn.cursor().copy("copy ident_secret (k) from stdin") as copy:
                copy.write_row((settings.pseudonym_secret(),))
            conn.execute("analyze ident_person; analyze ident_org")
            run_sql(conn, "core/identity_inputs.sql")
            if delta:
                with MEMORY.by_key(conn, "ident_want"):
                    run_sql(conn, "core/identity_delta.sql")
            scope = MEMORY.scope_rows(conn, delta)
            run_sql(conn, "core/identity.sql")
            if scope is not None:
                run_sql(conn, "core/identity_touched.sql")
                if conn.execute("select exists (select 1 from ident_naming_new where n < 0)").fetchone()[0]:
                    raise _Drifted  # nothing written yet
            run_sql(conn, "core/identity_masters.sql")
            scopes = {
                "identity_member": "ident_scope",
                "person": "ident_touched_person",
                "legal_person": "ident_touched_org",
            }
            for table, key_cols in TABLES.items():
                rebuild.write(
                    conn, table, f"{table}_new", key_cols, scope=None if scope is None else scopes[table]
                )
            MEMORY.remember(conn, key, scope, moved="ident_want")
            _remember_naming(conn, scope)
            changes.remember(conn, "ident")
            _taken(conn, link_table)
            if stats is not None:
                stats["records_resolved"] = conn.execute(
                    "select count(*) from identity_member_new"
                ).fetchone()[0]
                stats["records_read"] = read
                stats["relinked_from"] = relinked
            counts: dict[str, Counter] = {"person": Counter(), "legal_person": Counter()}
            for kind, method, n in conn.execute(
                "select kind, method, count(*) from core.identity_member group by 1, 2"
            ).fetchall():
                counts[kind][method] = n
            if before_commit:
                before_commit(conn)
    return counts
