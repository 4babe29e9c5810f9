"""The Celery app the workers run (``celery -A jx_pipeline.lib.celery_app worker``): dagster-celery's task that
executes one step, on the broker and with the settings the runs' executor uses (lib/executor.py).

The code location is imported here, before the worker forks its pool, so each step starts with the project's
modules already loaded instead of paying for the imports (as the multiprocess executor does for every step).
"""

import os

from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

import jx_pipeline.definitions  # noqa: F401  (see above)
from jx_pipeline.lib.executor import IN_WORKER_ENV, celery_executor

# a step can tell it runs on a worker, whatever its run's config says (one launched without: JX_EXECUTOR of the
# machine that launched it)
os.environ[IN_WORKER_ENV] = "1"

app = make_app(celery_executor().app_args())
execute_plan = create_task(app)
