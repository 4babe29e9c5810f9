"""Dagster's storage pooled in our processes (lib/storage_pool.py): one connection serves many calls instead of
one new connection per call, and instances pooled one after the other (a Celery worker's steps) leave no idle
connections behind but the latest instance's."""

import dagster as dg
import sqlalchemy

from jx_pipeline.lib import storage_pool
from jx_pipeline.lib.pg import connect


def _backends(url: str) -> int:
    with connect(url, autocommit=True) as conn:
        return conn.execute(
            "select count(*) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()"
        ).fetchone()[0]


def _connections_made(engine) -> list:
    made = []
    sqlalchemy.event.listen(engine, "connect", lambda *_: made.append(1))
    return made


def test_one_pooled_connection_serves_many_calls(dagster_url):
    from dagster_postgres import DagsterPostgresStorage

    shipped = DagsterPostgresStorage(dagster_url)  # dagster-postgres as it ships: a new connection per call
    before = _connections_made(shipped.run_storage._engine)
    for _ in range(5):
        shipped.run_storage.get_runs(limit=1)
    assert len(before) == 5
    assert storage_pool._pool((shipped.run_storage, shipped.event_log_storage, shipped.schedule_storage)) == 3
    made = _connections_made(shipped.run_storage._engine)
    for _ in range(20):
        shipped.run_storage.get_runs(limit=1)
    assert len(made) == 1


def test_the_shipped_instance_is_pooled_from_the_start_unless_switched_off(dagster_url, monkeypatch):
    """dagster.yaml's storage class: the process that creates a run stores its planned events on one connection."""
    with dg.DagsterInstance.get() as instance:
        assert instance.get_ref().storage_data.class_name == "PooledPostgresStorage"
        assert isinstance(instance.run_storage._engine.pool, sqlalchemy.pool.QueuePool)
        made = _connections_made(instance.run_storage._engine)
        for _ in range(20):
            instance.get_runs(limit=1)
            instance.event_log_storage.get_concurrency_info("jx_test_pool_probe")
        assert len(made) <= 1
        assert storage_pool.pool_connections(instance) == 0  # pooled already
    monkeypatch.setenv("JX_STORAGE_POOL", "off")
    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage._engine.pool, sqlalchemy.pool.NullPool)


def test_instances_pooled_in_turn_keep_only_the_latest_ones_connections(dagster_url):
    idle = _backends(dagster_url)
    for _ in range(8):
        with dg.DagsterInstance.get() as instance:  # pooled as it is made
            instance.get_runs(limit=1)
            instance.event_log_storage.get_concurrency_info("jx_test_pool_probe")
    assert _backends(dagster_url) - idle <= 3


def test_schema_facts_are_asked_once_when_yes_and_again_when_no(dagster_url):
    """Dagster asks on every event whether a table or column exists: a pooled storage asks the server once for a
    yes; a no is asked again, so a table made later by a migration is seen."""
    from dagster_postgres import DagsterPostgresStorage

    storage = DagsterPostgresStorage(dagster_url)
    storage_pool._pool((storage.run_storage, storage.event_log_storage, storage.schedule_storage))
    events = storage.event_log_storage
    statements = []
    sqlalchemy.event.listen(events._engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with connect(dagster_url, autocommit=True) as conn:
        conn.execute("drop table if exists jx_test_schema_fact")
        try:
            assert events.has_table("jx_test_schema_fact") is False
            assert events.has_table("jx_test_schema_fact") is False
            asked_no = len(statements)
            conn.execute("create table jx_test_schema_fact (x int)")
            assert events.has_table("jx_test_schema_fact") is True  # a no is not remembered
            asked_yes = len(statements)
            assert asked_yes > asked_no >= 2
            conn.execute("drop table jx_test_schema_fact")
            assert events.has_table("jx_test_schema_fact") is True  # a yes is: not asked again
            assert events.has_asset_key_index_cols() is True
            n = len(statements)
            for _ in range(5):
                assert events.has_asset_key_index_cols() is True
                assert events.has_table("asset_event_tags") is True
            assert len(statements) == n + 1  # asset_event_tags, once
        finally:
            conn.execute("drop table if exists jx_test_schema_fact")
