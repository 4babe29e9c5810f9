"""The code location Dagster loads: every module under defs/ found by discovery, plus the shared resources.

As in dagster-open-platform, nothing is listed here by hand: ``dg.components.load_defs`` collects each
``defs/<domain>/*.py`` (its ``defs`` object, or its assets, jobs, schedules and sensors), so a new domain needs no
edit here. Then two policies are applied by selection, so that they reach assets added later too: linking and
publishing follow ingestion by declarative automation (lib/automation.py), and one freshness policy covers every
materializable asset so that a table not rebuilt for a day and a half shows as stale in the UI.
"""

from pathlib import Path

import dagster as dg

import jx_pipeline.defs
from jx_pipeline.defs.ingest.assets import SourceDatabaseResource
from jx_pipeline.defs.ingest.schedules import INGEST
from jx_pipeline.defs.operations.jobs import PUBLISH
from jx_pipeline.lib import automation
from jx_pipeline.lib.executor import jx_executor
from jx_pipeline.lib.warehouse import WarehouseResource

RESOURCES = {
    "warehouse": WarehouseResource(url=dg.EnvVar("JX_WAREHOUSE_URL")),
    "source_db": SourceDatabaseResource(url=dg.EnvVar("JX_SOURCE_DB_URL")),
}
# rebuilt from all current data after the day's ingestion: links, identities, marts and the service catalog
FOLLOWS_INGESTION = dg.AssetSelection.groups("linking") | PUBLISH


def build_defs() -> dg.Definitions:
    # the folder holding the package: the checkout, or site-packages of a wheel install (no pyproject.toml there)
    found = dg.components.load_defs(jx_pipeline.defs, project_root=Path(jx_pipeline.__file__).parent.parent)
    return (
        dg.Definitions.merge(
            found,
            # steps in one process, several, or on Celery workers: chosen per run (lib/executor.py)
            dg.Definitions(resources=RESOURCES, executor=jx_executor),
        )
        .map_resolved_asset_specs(
            func=automation.with_condition(automation.after_ingestion(INGEST)),
            selection=FOLLOWS_INGESTION,
        )
        .map_resolved_asset_specs(func=automation.with_freshness, selection=dg.AssetSelection.all())
    )


defs = build_defs()
