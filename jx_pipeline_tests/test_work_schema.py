"""lib/work_schema.py: a rebuild's working tables, unlogged in a schema of its transaction, are read by parallel
workers where temporary tables are not, are seen by no other session, and leave with the transaction."""

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


def workers_launched(conn: psycopg.Connection, table: str) -> int:
    """The parallel workers a count over ``table`` started (0: read by the leading process alone)."""
    with settings_for(conn, **EAGER):
        plan = [r[0] for r in conn.execute(f"explain (analyze, costs off) select count(*) from {table}")]
    return sum(int(line.split(":")[1]) for line in plan if "Workers Launched" in line)


@pytest.fixture
def parallel_server(wh):
    if int(wh.execute("select current_setting('max_parallel_workers')").fetchone()[0]) == 0:
        pytest.skip("the server allows no parallel workers")


def test_working_tables_are_read_by_parallel_workers_and_temporary_ones_are_not(
    warehouse_url, parallel_server
):
    with connect(warehouse_url) as conn, conn.transaction(force_rollback=True):
        with work_schema.opened(conn, work_schema.LINKING):
            assert work_schema.active(conn)
            conn.execute("create unlogged table probe as select g from generate_series(1, 50000) g")
            conn.execute("create temp table probe_temp as select g from generate_series(1, 50000) g")
            conn.execute("analyze probe; analyze probe_temp")
            assert conn.execute(
                "select n.nspname, c.relpersistence from pg_class c join pg_namespace n on n.oid = c.relnamespace"
                " where c.relname = 'probe'"
            ).fetchall() == [(work_schema.LINKING, "u")]
            assert workers_launched(conn, "probe") >= 1
            assert workers_launched(conn, "probe_temp") == 0
        assert not work_schema.active(conn)
        assert conn.execute("select to_regnamespace(%s)", (work_schema.LINKING,)).fetchone() == (None,)


def test_a_rolled_back_rebuild_leaves_nothing_and_no_other_session_sees_it(warehouse_url, wh):
    with connect(warehouse_url) as conn:
        with (
            pytest.raises(RuntimeError),
            conn.transaction(),
            work_schema.opened(conn, work_schema.IDENTITY),
        ):
            conn.execute("create unlogged table probe (x int)")
            # another session, meanwhile: neither the schema nor its table
            assert wh.execute(
                "select to_regnamespace(%s), to_regclass(%s)",
                (work_schema.IDENTITY, f"{work_schema.IDENTITY}.probe"),
            ).fetchone() == (None, None)
            raise RuntimeError("the rebuild fails half-way")
        assert conn.execute("select to_regnamespace(%s)", (work_schema.IDENTITY,)).fetchone() == (None,)
        # and the same rebuild can run again at once
        with conn.transaction(), work_schema.opened(conn, work_schema.IDENTITY):
            conn.execute("create unlogged table probe (x int)")
        assert conn.execute("select to_regnamespace(%s)", (work_schema.IDENTITY,)).fetchone() == (None,)


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
