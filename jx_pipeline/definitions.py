"""Assembles every domain's definitions with the shared resources: the code location Dagster loads."""

import dagster as dg

from jx_pipeline.defs.admin import assets as admin
from jx_pipeline.defs.entities import assets as entities
from jx_pipeline.defs.ingest import assets as ingest
from jx_pipeline.defs.ingest import schedules as ingest_schedules
from jx_pipeline.defs.linking import assets as linking
from jx_pipeline.defs.quality import assets as quality
from jx_pipeline.defs.staged import assets as staged
from jx_pipeline.lib.executor import jx_executor
from jx_pipeline.lib.warehouse import WarehouseResource

RESOURCES = {
    "warehouse": WarehouseResource(url=dg.EnvVar("JX_WAREHOUSE_URL")),
    "source_db": ingest.SourceDatabaseResource(url=dg.EnvVar("JX_SOURCE_DB_URL")),
}

defs = dg.Definitions.merge(
    admin.defs,
    entities.defs,
    ingest.build_defs(),
    staged.build_defs(),
    quality.build_defs(),
    linking.build_defs(),
    ingest_schedules.defs,
    # steps in one process, several, or on Celery workers: chosen per run (lib/executor.py)
    dg.Definitions(resources=RESOURCES, executor=jx_executor),
)
