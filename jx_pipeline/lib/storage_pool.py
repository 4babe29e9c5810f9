"""Dagster's Postgres storage, pooled inside our run processes.

dagster-postgres opens a new connection for every event it stores (a NullPool, so that an idle instance holds
none). A run stores thousands of events, and each connection costs ~9 ms here (TCP, SCRAM authentication, a
backend process): 2,328 connections were 40 % of a 5-department ingest run at scale 0.001 (cProfile;
`bench/run_overhead.py` measures with and without). In a run process, and in the CLI that follows a run, the
storages get a small pool instead — as Dagster's webserver does for itself — with a ping at checkout, so that a
connection cut by a server restart is replaced before use, as a new connection would be.

The shipped dagster.yaml names ``PooledPostgresStorage``, so that the process that *creates* a run (the
`dagster` command under `jx-pipeline materialize`, the daemon, the webserver) pools too: it stores one planned
event per asset and partition (~2,000 for the demo's backfill) before any of our code runs.
``JX_STORAGE_POOL=off`` keeps Dagster's own behaviour.

The pooled storages also remember the schema facts Dagster asks about on every event (does table
``asset_event_tags`` exist, has ``asset_keys`` its index columns): SQLAlchemy reflection, ~5–12 ms each, 670
times in a 168-feed ingest run. Only a "yes" is kept: Dagster's migrations add tables and columns, never drop them.
"""

from __future__ import annotations

import os
import threading

from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import create_pg_engine, get_token_provider_from_config, pg_url_from_config
from sqlalchemy.pool import NullPool

# one connection kept idle; threads of one instance (the daemon's, a code server's) open more as they need, as
# Dagster's webserver allows itself (20), rather than wait for one
POOL = {"pool_size": 1, "max_overflow": 20, "pool_recycle": 3600, "pool_pre_ping": True}
_LOCK = threading.Lock()

# engines pooled last in this process: pooling a new instance closes their idle connections (a Celery worker makes
# an instance per step; an earlier instance still in use opens again what it needs)
_pooled: list = []


def _remember_yes(storage, name: str) -> None:
    """Wrap ``storage.<name>(...)`` so that a True answer is asked once per process (per table or column named;
    a connection argument does not count)."""
    ask, known = getattr(storage, name, None), set()
    if ask is None or getattr(ask, "_jx_remembers", False):
        return

    def remembered(*args):
        key = tuple(a for a in args if isinstance(a, str))
        if key not in known:
            if not ask(*args):
                return False
            known.add(key)
        return True

    remembered._jx_remembers = True
    setattr(storage, name, remembered)


SCHEMA_FACTS = (
    "has_table",
    "has_asset_key_col",
    "_has_asset_key_col_on_connection",
    "has_run_stats_index_cols",
    "has_bulk_actions_selector_cols",
)


def _pool(storages) -> int:
    if os.environ.get("JX_STORAGE_POOL") == "off":  # e.g. behind a pgbouncer, or to measure the difference
        return 0
    swapped = []
    for storage in {id(s): s for s in storages if s is not None}.values():
        engine = getattr(storage, "_engine", None)
        url = getattr(storage, "postgres_url", None)
        if engine is None or url is None or not isinstance(engine.pool, NullPool):
            continue
        for name in SCHEMA_FACTS:
            _remember_yes(storage, name)
        storage._engine = create_pg_engine(
            url, getattr(storage, "_token_provider", None), isolation_level="AUTOCOMMIT", **POOL
        )
        swapped.append(storage._engine)
    if swapped:
        with _LOCK:
            for engine in _pooled:
                engine.dispose()  # its idle connections; one in use stays open until given back
            _pooled[:] = swapped
    return len(swapped)


def pool_connections(instance) -> int:
    """Swap the NullPool engines of ``instance``'s Postgres storages for pooled ones; returns how many (0 when
    they are pooled already, or not Postgres). The idle connections of instances pooled before are closed
    (``dispose`` leaves an engine usable: it connects again when asked)."""
    return _pool((instance.run_storage, instance.event_log_storage, instance.schedule_storage))


class PooledPostgresStorage(DagsterPostgresStorage):
    """dagster-postgres's storage with its three engines pooled from the start (dagster.yaml: ``storage:
    custom:``, with the config of ``storage: postgres:``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _pool((self._run_storage, self._event_log_storage, self._schedule_storage))

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )
