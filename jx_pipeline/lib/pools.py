"""Dagster pools: how many steps may hit one department's source database, or the warehouse, at once.

A department's source database is someone else's production system: its raw loads share the pool
``source_<dept>`` whose limit is the catalog's ``max_concurrent_loads`` (default 1). Warehouse-heavy steps
(staging, the scorecard, linking, identities, marts) share the pool ``warehouse``, capped by
``concurrency: pools: default_limit`` in dagster.yaml. Limits live in Dagster's storage, so every run,
backfill and daemon on the instance shares them; ``sync`` writes the catalog's into it (``jx-pipeline db up``,
``ui`` and ``materialize`` call it).
"""

from __future__ import annotations

import os

from jx_pipeline.catalog import Catalog

WAREHOUSE = "warehouse"


def source_pool(department: str) -> str:
    return f"source_{department}"


def limits(catalog: Catalog) -> dict[str, int]:
    """Pool -> limit as the catalog sets them (the warehouse pool takes dagster.yaml's default)."""
    return {source_pool(d.code): d.max_concurrent_loads for d in catalog.departments}


def sync(instance, catalog: Catalog) -> dict[str, int]:
    """Write the catalog's limits into the instance's storage where they differ; returns the pools changed."""
    storage = instance.event_log_storage
    changed = {}
    # the warehouse cap is written too: left to Dagster, two runs that reach a fresh pool at once both
    # initialise its default limit and one fails (a unique-key race in initialize_concurrency_limit_to_default)
    cap = instance.get_concurrency_config().pool_config.default_pool_limit
    wanted = {**limits(catalog), **({WAREHOUSE: cap} if cap else {})}
    for pool, limit in wanted.items():
        info = storage.get_concurrency_info(pool)
        if info.slot_count != limit:
            storage.set_concurrency_slots(pool, limit)
            changed[pool] = limit
    return changed


def sync_from_env(log=None) -> dict[str, int]:
    """``sync`` on the instance of this project's DAGSTER_HOME (the CLI's entry point), after releasing the
    slots of this machine's killed CLI runs."""
    import dagster as dg

    from jx_pipeline.catalog import load_catalog
    from jx_pipeline.lib import cli_runs, settings

    os.environ.update(settings.dagster_env())
    with dg.DagsterInstance.get() as instance:
        released = cli_runs.release_dead(instance)
        if released and log:
            log(f"runs whose process was killed, marked failed and their pool slots freed: {released}")
        return sync(instance, load_catalog())
