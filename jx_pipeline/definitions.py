"""Assembles every domain's definitions with the shared resources: the code location Dagster loads."""

import dagster as dg

from jx_pipeline.defs.admin import assets as admin
from jx_pipeline.lib.warehouse import WarehouseResource

defs = dg.Definitions.merge(
    admin.defs,
    dg.Definitions(resources={"warehouse": WarehouseResource(url=dg.EnvVar("JX_WAREHOUSE_URL"))}),
)
