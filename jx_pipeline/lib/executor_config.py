"""The run config of each executor, apart from ``executor.py`` so the CLI writes it without importing Dagster."""

# multiprocess forks each step from a server that imported the definitions once, instead of starting a fresh
# interpreter that imports Dagster and the code location for every step (~3 s each)
MULTIPROCESS = {"start_method": {"forkserver": {"preload_modules": ["jx_pipeline.definitions"]}}}


def run_config(kind: str) -> dict:
    """The run's ``execution: config:`` for an executor kind."""
    return {kind: MULTIPROCESS if kind == "multiprocess" else {}}
