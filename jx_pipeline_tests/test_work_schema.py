"""lib/work_schema.py: a rebuild's working tables, unlogged in a schema of its transaction, can be read by
parallel workers where temporary tables cannot (the planner's choice, so the test holds on a server whose worker
slots are busy or off), are seen by no other session, and leave with the transaction."""

import psycopg
import pytest
from psycopg import sql

from jx_pipeline.lib import work_schema
from jx_pipeline.lib.pg import connect, settings_for

# the planner's costs that keep a small table out of a parallel plan, set to nothing: a plan may then use
# workers wherever the table allows it
EAGER = {
    "parallel_setup_cost": "0",
    "parallel_tuple_cost": "0",
    "min_parallel_table_scan_size": "0",
    "max_parallel_workers_per_gather": "2",
}


def workers_planned(conn: psycopg.Connection, table: str) -> int:
    """The parallel workers the planner gives a count over ``table`` (0: the leading process reads it alone). The
    plan, not the run: how many start depends on the server's free slots, whether any may is the table's."""
    with settings_for(conn, **EAGER):
        plan = [r[0] for r in conn.execute(f"explain (costs off) select count(*) from {table}")]
    return sum(int(line.split(":")[1]) for line in plan if "Workers Planned" in line)


def where(conn: psycopg.Connection, table: str) -> list[tuple]:
    """(schema, persistence) of every relation named ``table``."""
    return conn.execute(
        "select n.nspname, c.relpersistence from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where c.relname = %s",
        (table,),
    ).fetchall()


def test_working_tables_are_read_by_parallel_workers_and_temporary_ones_are_not(warehouse_url):
    with connect(warehouse_url) as conn, conn.transaction(force_rollback=True):
        path = conn.execute("select current_setting('search_path')").fetchone()[0]
        with work_schema.opened(conn, work_schema.LINKING):
            assert work_schema.active(conn)
            conn.execute("create unlogged table probe as select g from generate_series(1, 50000) g")
            conn.execute("create temp table probe_temp as select g from generate_series(1, 50000) g")
            conn.execute("analyze probe; analyze probe_temp")
            assert where(conn, "probe") == [(work_schema.LINKING, "u")]
            assert conn.execute("select count(*) from probe").fetchone() == (50000,)
            assert workers_planned(conn, "probe") >= 1
            assert workers_planned(conn, "probe_temp") == 0
        assert conn.execute("select current_setting('search_path')").fetchone() == (path,)
        assert conn.execute("select to_regnamespace(%s)", (work_schema.LINKING,)).fetchone() == (None,)


def test_a_rolled_back_rebuild_leaves_nothing_and_no_other_session_sees_it(warehouse_url, wh):
    with connect(warehouse_url) as conn:
        with (
            pytest.raises(RuntimeError),
            conn.transaction(),
            work_schema.opened(conn, work_schema.IDENTITY),
        ):
            conn.execute("create unlogged table probe (x int)")
            assert where(conn, "probe") == [(work_schema.IDENTITY, "u")]
            # another session, meanwhile: neither the schema nor its table
            assert wh.execute(
                "select to_regnamespace(%s), to_regclass(%s)",
                (work_schema.IDENTITY, f"{work_schema.IDENTITY}.probe"),
            ).fetchone() == (None, None)
            raise RuntimeError("the rebuild fails half-way")
        assert conn.execute("select to_regnamespace(%s)", (work_schema.IDENTITY,)).fetchone() == (None,)
        assert where(conn, "probe") == []
        # and the same rebuild can run again at once
        with conn.transaction(), work_schema.opened(conn, work_schema.IDENTITY):
            conn.execute("create unlogged table probe (x int)")
        assert conn.execute("select to_regnamespace(%s)", (work_schema.IDENTITY,)).fetchone() == (None,)


def test_a_work_schema_outside_a_transaction_is_refused(warehouse_url):
    """Outside a transaction the schema would be committed at once and the path not kept: refused."""
    with connect(warehouse_url, autocommit=True) as conn:
        with (
            pytest.raises(RuntimeError, match="open transaction"),
            work_schema.opened(conn, work_schema.MARTS),
        ):
            pass
        assert conn.execute("select to_regnamespace(%s)", (work_schema.MARTS,)).fetchone() == (None,)


def test_a_temporary_table_of_the_same_name_cannot_stand_in_for_a_working_table(warehouse_url):
    with connect(warehouse_url) as conn, conn.transaction(force_rollback=True):
        conn.execute("create temp table probe as select 'temporary' as v")
        with work_schema.opened(conn, work_schema.LINKING):
            conn.execute("create unlogged table probe as select 'working' as v")
            assert conn.execute("select v from probe").fetchone() == ("working",)


def test_a_working_table_is_temporary_outside_a_work_schema_and_unlogged_inside(warehouse_url):
    """``create`` serves code that runs both inside a rebuild and outside one (a department's texts parsed ahead
    read the partitions loaded since, lib/changes.py): outside, a temporary table gone at commit."""
    persistence = "select relpersistence, relnamespace::regnamespace::text from pg_class where relname = %s"
    with connect(warehouse_url) as conn:
        with conn.transaction():
            conn.execute(work_schema.create(conn, "probe_cols", "feed_id text, record_key text"))
            conn.execute(work_schema.create(conn, "probe_query", query=sql.SQL("select 1 as one")))
            assert conn.execute(persistence, ("probe_cols",)).fetchone()[0] == "t"
            assert conn.execute(persistence, ("probe_query",)).fetchone()[0] == "t"
        assert conn.execute("select to_regclass('probe_cols'), to_regclass('probe_query')").fetchone() == (
            None,
            None,
        )
        with conn.transaction(), work_schema.opened(conn, work_schema.MARTS):
            conn.execute(work_schema.create(conn, "probe_cols", "feed_id text, record_key text"))
            conn.execute(work_schema.create(conn, "probe_query", query=sql.SQL("select 1 as one")))
            for table in ("probe_cols", "probe_query"):
                assert conn.execute(persistence, (table,)).fetchone() == ("u", work_schema.MARTS)
            assert conn.execute("select one from probe_query").fetchone() == (1,)
