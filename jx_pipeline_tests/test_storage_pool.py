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
    with dg.DagsterInstance.get() as instance:
        before = _connections_made(instance.run_storage._engine)
        for _ in range(5):
            instance.get_runs(limit=1)
        assert len(before) == 5  # dagster-postgres as shipped: a new connection per call
        assert storage_pool.pool_connections(instance) == 3  # run, event log and schedule storage
        made = _connections_made(instance.run_storage._engine)
        for _ in range(20):
            instance.get_runs(limit=1)
            instance.event_log_storage.get_concurrency_info("jx_test_pool_probe")
        assert len(made) == 1
        assert storage_pool.pool_connections(instance) == 0  # pooled once


def test_instances_pooled_in_turn_keep_only_the_latest_ones_connections(dagster_url):
    idle = _backends(dagster_url)
    for _ in range(8):
        with dg.DagsterInstance.get() as instance:
            storage_pool.pool_connections(instance)
            instance.get_runs(limit=1)
            instance.event_log_storage.get_concurrency_info("jx_test_pool_probe")
    assert _backends(dagster_url) - idle <= 3
