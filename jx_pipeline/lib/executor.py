"""One executor for every job of the same definitions: steps in one process, in several, or on Celery workers.

A run's config chooses (``execution: config: {in_process | multiprocess | celery: {}}``); without it
``JX_EXECUTOR`` does (default multiprocess, Dagster's own default). Every process that loads the code location
(CLI, UI, daemon, the Celery workers) sees the same config schema, so a run launched by one is understood by
all, and a UI user can pick Celery for one run in the launchpad.

The broker's URL holds Redis's password, so it never goes into run config (Dagster stores that, and the UI shows
it): the process orchestrating the run reads ``JX_CELERY_BROKER_URL``, else the local Redis under ``.jx/redis``;
the workers read the same (``lib/celery_app.py``).
"""

from __future__ import annotations

import os

import dagster as dg
from dagster._core.definitions.executor_definition import (
    IN_PROC_CONFIG,
    MULTI_PROC_CONFIG,
    _core_in_process_executor_creation,
    _core_multiprocess_executor_creation,
)
from dagster._core.execution.retries import RetryMode, get_retries_config

from jx_pipeline.lib.errors import JxError

EXECUTORS = ("in_process", "multiprocess", "celery")
IN_WORKER_ENV = "JX_IN_CELERY_WORKER"  # set by the Celery workers' app (lib/celery_app.py) for their steps
BROKER_ENV = "JX_CELERY_BROKER_URL"
QUEUE = "dagster"  # dagster-celery's queue: its app routes every step there

# Celery settings of both sides (the run's orchestrator and the workers). A step is acknowledged when it ends,
# so a worker busy with one step takes no second one (steps spread over idle workers) and a step of a worker
# that dies is given to another; Redis hands an unacknowledged step out again only after the visibility
# timeout, which must exceed the longest step.
CELERY_SETTINGS = {
    "task_acks_late": True,
    "worker_prefetch_multiplier": 1,
    "broker_connection_retry_on_startup": True,
    "broker_transport_options": {
        "max_retries": 3,
        "interval_start": 0,
        "interval_step": 0.2,
        "interval_max": 0.5,
        "visibility_timeout": 12 * 3600,
    },
    "result_backend_transport_options": {"visibility_timeout": 12 * 3600},
    "result_expires": 24 * 3600,
}


def run_executor(run_config: dict | None) -> str:
    """The executor a step runs under: celery inside a Celery worker, else the one the run's config names, else
    the default (a run launched without config under ``JX_EXECUTOR``)."""
    if os.environ.get(IN_WORKER_ENV):
        return "celery"
    execution = (run_config or {}).get("execution") or {}
    return next(iter(execution.get("config") or {}), None) or default_executor()


def default_executor() -> str:
    kind = os.environ.get("JX_EXECUTOR") or "multiprocess"
    if kind not in EXECUTORS:
        raise JxError(
            f"JX_EXECUTOR={kind!r} is not an executor of this project",
            fix=f"set JX_EXECUTOR to one of {', '.join(EXECUTORS)} (or unset it for multiprocess)",
        )
    return kind


def broker_url() -> str:
    """JX_CELERY_BROKER_URL (a broker shared by several machines), else the local Redis under .jx/redis."""
    if os.environ.get(BROKER_ENV):
        return os.environ[BROKER_ENV]
    from jx_pipeline.lib import localredis

    redis = localredis.local_redis()
    if not redis.password_file.exists():
        raise JxError(
            f"no Celery broker: {BROKER_ENV} is not set and the local Redis under {redis.root} was never started",
            fix="jx-pipeline workers up   (starts the local Redis and the workers; make workers does the same)",
        )
    return redis.url()


def celery_executor(retries: RetryMode = RetryMode.ENABLED):
    """dagster-celery's executor on our broker (also the result backend) with CELERY_SETTINGS."""
    from dagster_celery.executor import CeleryExecutor

    url = broker_url()
    return CeleryExecutor(retries=retries, broker=url, backend=url, config_source=dict(CELERY_SETTINGS))


CELERY_CONFIG = dg.Field(
    {"retries": get_retries_config()},
    description="Execute each step on a Celery worker (broker: JX_CELERY_BROKER_URL or the local Redis).",
)


def _requirements(config):
    return [] if "in_process" in config else dg.multiple_process_executor_requirements()


@dg.executor(
    name="jx_executor",
    config_schema=dg.Field(
        dg.Selector(
            {"in_process": IN_PROC_CONFIG, "multiprocess": MULTI_PROC_CONFIG, "celery": CELERY_CONFIG}
        ),
        default_value={default_executor(): {}},
    ),
    requirements=_requirements,
)
def jx_executor(init_context: dg.InitExecutorContext):
    """Dagster's in-process and multiprocess executors, and dagster-celery's, chosen by the run's config."""
    ((kind, config),) = init_context.executor_config.items()
    if kind == "celery":
        return celery_executor(RetryMode.from_config(config["retries"]))
    if kind == "multiprocess":
        return _core_multiprocess_executor_creation(config)
    return _core_in_process_executor_creation(config)
