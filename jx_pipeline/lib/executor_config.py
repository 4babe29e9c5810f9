"""The run config ``jx-pipeline materialize --executor`` gives each executor, apart from ``executor.py`` so the CLI
writes it without importing Dagster. A run launched without config (the UI's launchpad, backfills, schedules)
keeps Dagster's default start method (spawn): forked, a small backfill ran through before the CLI run meant to
compete with it started, and test_pools.py saw no step wait for a pool. Forking those too waits for a pool test
that makes the runs compete whatever their steps' start-up."""

# multiprocess forks each step from a server that imported the definitions once, instead of starting a fresh
# interpreter that imports Dagster and the code location for every step (~3 s each)
MULTIPROCESS = {"start_method": {"forkserver": {"preload_modules": ["jx_pipeline.definitions"]}}}


def run_config(kind: str) -> dict:
    """The run's ``execution: config:`` for an executor kind."""
    return {kind: MULTIPROCESS if kind == "multiprocess" else {}}
