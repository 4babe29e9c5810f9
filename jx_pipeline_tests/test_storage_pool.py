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
