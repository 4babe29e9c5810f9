"""Dagster's Postgres storage, pooled inside our run processes.

dagster-postgres opens a new connection for every event it stores (a NullPool, so that an idle instance holds
none). A run stores thousands of events, and each connection costs ~9 ms here (TCP, SCRAM authentication, a
backend process): 2,328 connections were 40 % of a 5-department ingest run at scale 0.001 (cProfile;
`bench/run_overhead.py` measures with and without). In a run process, and in the CLI that follows a run, the
storages get a small pool instead — as Dagster's webserver does for itself — with a ping at checkout, so that a
connection cut by a server restart is replaced before use, as a new connection would be.
``JX_STORAGE_POOL=off`` keeps Dagster's own behaviour.
"""

from __future__ import annotations

import os

from sqlalchemy.pool import NullPool

POOL = {"pool_size": 1, "max_overflow": 4, "pool_recycle": 3600, "pool_pre_ping": True}

# engines pooled in this process; only the latest instance's keep idle connections (a Celery worker makes an
# instance per step: without this each would keep its own until garbage-collected)
_pooled: list = []


def pool_connections(instance) -> int:
    """Swap the NullPool engines of ``instance``'s Postgres storages for pooled ones; returns how many (0 when
    they are pooled already, or not Postgres). The idle connections of instances pooled before are closed
    (``dispose`` leaves an engine usable: it connects again when asked)."""
    from dagster_postgres.utils import create_pg_engine

    if os.environ.get("JX_STORAGE_POOL") == "off":  # e.g. behind a pgbouncer, or to measure the difference
        return 0
    storages = (instance.run_storage, instance.event_log_storage, instance.schedule_storage)
    swapped = []
    for storage in {id(s): s for s in storages if s is not None}.values():
        engine = getattr(storage, "_engine", None)
        url = getattr(storage, "postgres_url", None)
        if engine is None or url is None or not isinstance(engine.pool, NullPool):
            continue
        storage._engine = create_pg_engine(
            url, getattr(storage, "_token_provider", None), isolation_level="AUTOCOMMIT", **POOL
        )
        swapped.append(storage._engine)
    if swapped:
        for engine in _pooled:
            engine.dispose()
        _pooled[:] = swapped
    return len(swapped)
