"""lib/rebuild.py on a table of its own in a scratch warehouse: swapped in whole or written row by row, the
table ends the same — rows, key, checks, indexes, foreign key, comments and the engineer's grant — and the
row-by-row way leaves unchanged rows untouched."""

import pytest

from jx_pipeline.lib import rebuild, roles
from jx_pipeline.lib.migrations import migrate
from jx_pipeline.lib.pg import connect

CATALOG = """
select conname, pg_get_constraintdef(oid) from pg_constraint where conrelid = 'core.probe'::regclass
union all select indexname, indexdef from pg_indexes where schemaname = 'core' and tablename = 'probe'
union all select tgname, pg_get_triggerdef(oid) from pg_trigger where tgrelid = 'core.probe'::regclass and not tgisinternal
union all select 'comment', obj_description('core.probe'::regclass, 'pg_class')
union all select attname, col_description(attrelid, attnum) from pg_attribute
 where attrelid = 'core.probe'::regclass and attnum > 0 and not attisdropped
"""
ROWS = "select id, kind, n, parent from core.probe order by id"


@pytest.fixture
def probe(scratch_db):
    with connect(scratch_db) as conn:
        migrate(conn)
        roles.grant(conn)  # default privileges of the roles in core, as db up sets them
        conn.execute("create table core.probe_parent (id int primary key)")
        conn.execute("insert into core.probe_parent select generate_series(1, 5)")
        conn.execute(
            "create table core.probe (id int primary key, kind text not null check (kind in ('a', 'b')),"
            " n real, parent int references core.probe_parent (id), unique (kind, id))"
        )
        conn.execute("create index probe_n on core.probe (n)")
        conn.execute("comment on table core.probe is 'a probe'; comment on column core.probe.n is 'a number'")
        conn.execute(
            "create function core.probe_touch() returns trigger language plpgsql as $$ begin return new; end $$;"
            " create trigger probe_touch before insert on core.probe for each row execute function core.probe_touch()"
        )
        conn.execute("insert into core.probe select i, 'a', i, 1 + i % 5 from generate_series(1, 1000) i")
        conn.commit()
        yield conn


def _new_rows(conn) -> None:
    """1000 rows: 990 as they are, 5 changed (one to null), 5 replaced by new ids."""
    conn.execute("create temp table probe_new (like core.probe) on commit drop")
    conn.execute("insert into probe_new select * from core.probe where id <= 995")
    conn.execute(
        "update probe_new set n = n + 0.5, kind = 'b' where id <= 4; update probe_new set n = null where id = 5"
    )
    conn.execute("insert into probe_new select i, 'b', i, 2 from generate_series(2001, 2005) i")


def _state(conn) -> tuple:
    return conn.execute(ROWS).fetchall(), sorted(conn.execute(CATALOG).fetchall(), key=str)


def test_swapped_and_changed_rows_end_the_same(probe):
    conn = probe
    before = _state(conn)[1]
    results = {}
    for swap in (True, False):
        _new_rows(conn)
        expected = conn.execute("select * from probe_new order by id").fetchall()
        out = rebuild.write(conn, "probe", "probe_new", ("id",), swap=swap)
        assert out["deleted"] == 10 and out["inserted"] == 10  # 5 changed + 5 gone, 5 changed + 5 new
        rows, catalog = _state(conn)
        assert rows == expected
        assert catalog == before  # constraints, indexes and comments under their own names
        assert conn.execute("select has_table_privilege('jx_engineer', 'core.probe', 'select')").fetchone()[0]
        with pytest.raises(Exception, match="violates foreign key"):
            conn.execute("insert into core.probe values (9999, 'a', 1, 99)")
        conn.rollback()
        results[swap] = rows
    assert results[True] == results[False]


def test_only_changed_rows_are_written_and_the_share_picks_the_way(probe):
    conn = probe
    _new_rows(conn)
    assert rebuild.write(conn, "probe", "probe_new", ("id",))["mode"] == "changed rows"  # 2 % of rows
    touched = conn.execute(
        "select count(*) from core.probe where xmin::text::bigint = txid_current() % 4294967296"
    ).fetchone()[0]
    assert touched == 10  # the 5 changed and the 5 new rows; the 990 others kept their row versions
    conn.rollback()
    conn.execute("create temp table probe_new (like core.probe) on commit drop")
    conn.execute("insert into probe_new select id, 'b', n, parent from core.probe")  # every row changed
    assert rebuild.write(conn, "probe", "probe_new", ("id",))["mode"] == "swapped"
    conn.rollback()


def test_a_kept_tally_follows_every_write_and_a_swap_counts_it_at_once(probe, scratch_db):
    """Migration 0027's triggers keep a table's key tally (lib/tallies.py) from each statement's rows: equal to
    reading the table after inserts, key updates, deletes, a statement writing nothing and a truncate; the write
    mark changes with every statement that writes a row, and only then. Without a base the table is read whole;
    a table swapped in (lib/rebuild.py) is counted in the swap's transaction; many deltas are folded into a new base.
    A writer whose snapshot is older than the base still counts: its delta comes after the base."""
    from psycopg import sql

    from jx_pipeline.lib import tallies
    from jx_pipeline.lib.pg import key_tally

    conn, keys, table = probe, ("kind", "id"), "core.probe"
    for event, rows in (
        ("insert", "new table as new_rows"),
        ("update", "old table as old_rows new table as new_rows"),
        ("delete", "old table as old_rows"),
    ):
        conn.execute(
            f"create trigger tally_{event} after {event} on core.probe referencing {rows}"
            " for each statement execute function staged.tally_keys('kind', 'id')"
        )
    conn.execute(
        "create trigger tally_truncate after truncate on core.probe for each statement"
        " execute function staged.tally_keys('kind', 'id')"
    )
    conn.commit()

    def read():
        return key_tally(conn, sql.SQL(table), keys)

    def rows_kept() -> int:
        return conn.execute(
            "select count(*) from staged._key_tally where relid = 'core.probe'::regclass"
        ).fetchone()[0]

    assert (
        tallies.written(conn, table) is None and tallies.tally(conn, table, keys) == read()
    )  # no base: read
    tallies.ensure(conn, {table: keys})
    assert rows_kept() == 1 and tallies.tally(conn, table, keys) == read() and read()[0] == 1000
    writes = (
        "insert into core.probe select i, 'b', i, 1 from generate_series(3001, 3100) i",
        "update core.probe set kind = 'b' where id between 10 and 40",  # keys changed
        "update core.probe set n = n + 1 where id between 41 and 60",  # keys as they were
        "delete from core.probe where id % 7 = 0",
        "delete from core.probe where id < 0",  # nothing
    )
    for write in writes:
        before, mark = tallies.tally(conn, table, keys), tallies.written(conn, table)
        conn.execute(write)
        assert tallies.tally(conn, table, keys) == read(), write
        wrote_nothing = write.endswith("id < 0")
        assert (tallies.tally(conn, table, keys) == before) == (wrote_nothing or "n + 1" in write), write
        assert (tallies.written(conn, table) == mark) == wrote_nothing, write
    conn.commit()
    # a writer whose snapshot was taken before the base was counted: its delta is written after the base
    tallies.forget(conn, table)
    conn.commit()
    with connect(scratch_db) as old:
        old.execute("begin isolation level repeatable read")
        old.execute("select 1")  # its snapshot
        tallies.ensure(conn, {table: keys})
        old.execute("insert into core.probe values (7001, 'a', 1, 1), (7002, 'a', 1, 1)")
        old.commit()
    assert tallies.tally(conn, table, keys) == read()
    # many deltas are folded into a base counted again
    for i in range(tallies.FOLD_AFTER + 1):
        conn.execute("insert into core.probe values (%s, 'a', 1, 1)", (8000 + i,))
    conn.commit()
    assert rows_kept() > tallies.FOLD_AFTER
    tallies.ensure(conn, {table: keys})
    assert rows_kept() == 1 and tallies.tally(conn, table, keys) == read()
    _new_rows(conn)
    conn.execute("delete from probe_new where id % 7 = 0")
    assert rebuild.write(conn, "probe", "probe_new", ("id",), swap=True)["mode"] == "swapped"
    # a new table, its rows swapped in before its triggers: counted in the swap's transaction, its only row
    assert rows_kept() == 1 and tallies.tally(conn, table, keys) == read() and read()[0] > 0
    conn.commit()
    ensured = tallies.written(conn, table)
    tallies.ensure(conn, {table: keys})
    assert tallies.written(conn, table) == ensured  # not counted again
    conn.execute("delete from core.probe where id = 1")  # the swapped-in table's triggers were copied
    assert tallies.tally(conn, table, keys) == read()
    conn.execute("truncate core.probe")
    assert tallies.tally(conn, table, keys) == read() == (0, 0)
    conn.rollback()


class _Recorded:
    """The connection, with the text of every statement run through it kept."""

    def __init__(self, conn):
        self.conn, self.statements = conn, []

    def execute(self, query, *args, **kwargs):
        self.statements.append(query if isinstance(query, str) else query.as_string(self.conn))
        return self.conn.execute(query, *args, **kwargs)


def test_an_empty_table_takes_every_row_swapped_in(probe):
    conn = probe
    before = _state(conn)[1]
    _new_rows(conn)
    expected = conn.execute("select * from probe_new order by id").fetchall()
    conn.execute("delete from core.probe")  # the first run: nothing written yet
    recorded = _Recorded(conn)
    out = rebuild.write(recorded, "probe", "probe_new", ("id",))
    assert out == {"mode": "swapped", "deleted": 0, "inserted": 1000}
    assert not [q for q in recorded.statements if "rebuild_diff" in q]  # no diff of 1000 new rows
    assert _state(conn) == (expected, before)
    conn.rollback()
    _new_rows(conn)
    conn.execute("delete from core.probe")
    out = rebuild.write(conn, "probe", "probe_new", ("id",), swap=False)
    assert out["mode"] == "changed rows"  # as asked
    assert conn.execute(ROWS).fetchall() == expected
    conn.rollback()
    conn.execute("create temp table probe_new (like core.probe) on commit drop")
    conn.execute("delete from core.probe")
    # nothing to write into an empty table: left as it is, not rebuilt
    assert rebuild.write(conn, "probe", "probe_new", ("id",)) == {
        "mode": "changed rows",
        "deleted": 0,
        "inserted": 0,
    }
    assert _state(conn) == ([], before)
    conn.rollback()


@pytest.mark.parametrize("declared", [True, False])
def test_a_reader_that_declared_the_table_never_sees_it_empty(probe, scratch_db, declared):
    """A reader's REPEATABLE READ snapshot (the marts' refresh) taken before a swap commits would find the new
    table but none of its rows. Declared in ``staged_snapshot(reads=...)``, the table is locked before the
    snapshot and the swap waits for the reader; undeclared, the reader sees it empty (why the marts declare it)."""
    import threading

    from jx_pipeline.lib import locks

    probe.close()
    done = threading.Event()

    def swap():
        with connect(scratch_db) as other:
            other.execute("create temp table probe_new as select * from core.probe")
            rebuild.write(other, "probe", "probe_new", ("id",), swap=True)
            other.commit()
        done.set()

    with connect(scratch_db) as reader:
        with locks.staged_snapshot(reader, reads=("core.probe",) if declared else ()):
            swapper = threading.Thread(target=swap)
            swapper.start()
            assert done.wait(5) is not declared  # declared: the swap waits for the reader
            seen = reader.execute("select count(*) from core.probe").fetchone()[0]
        swapper.join(30)
    assert done.is_set()
    assert seen == (1000 if declared else 0)
