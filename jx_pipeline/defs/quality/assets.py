"""The quality scorecard: per feed and landing day, rows read/staged/rejected, pass rate, failed expectations
and reject reasons; per department through the view ``quality.department_scorecard``.

Recomputed from what the staged steps recorded, so it costs one SQL statement and can run after any subset.
"""

import dagster as dg

from jx_pipeline.catalog import load_catalog
from jx_pipeline.defs.ingest.assets import DAILY, OWNERS, feed_key
from jx_pipeline.lib import retry
from jx_pipeline.lib.pools import WAREHOUSE
from jx_pipeline.lib.warehouse import WarehouseResource, run_sql, table_metadata


def _markdown(rows: list[tuple]) -> str:
    lines = [
        "| department | day | feeds | rows read | rejected | flagged | pass rate | expectations failed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {' | '.join(str(v) for v in r)} |" for r in rows]
    return "\n".join(lines)


def build_defs() -> dg.Definitions:
    catalog = load_catalog()

    @dg.asset(
        retry_policy=retry.POLICY,
        key=["quality", "scorecard"],
        deps=[feed_key(f, "staged") for f in catalog.feeds],
        group_name="quality",
        owners=OWNERS,
        kinds={"postgres"},
        tags={"layer": "quality"},
        partitions_def=DAILY,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=WAREHOUSE,
        description="Per-department quality scorecard: pass rates and reject reasons per feed and landing day.",
    )
    def scorecard(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        params = {
            "partitions": context.partition_keys,
            "feeds": [f.id for f in catalog.feeds],
            "departments": [f.department for f in catalog.feeds],
        }
        with warehouse.connect() as conn:
            with conn.transaction():
                run_sql(conn, "quality/scorecard.sql", params)
            rows = conn.execute(
                "select department, partition_key, feeds, rows_read, rows_rejected, rows_flagged, pass_rate,"
                " expectations_failed from quality.department_scorecard where partition_key = any(%s)"
                " order by partition_key, pass_rate, department",
                (context.partition_keys,),
            ).fetchall()
            meta = table_metadata(conn, "quality", "scorecard")
        return dg.MaterializeResult(
            metadata={**meta, "departments": dg.MetadataValue.md(_markdown(rows)), "feed_days": len(rows)}
        )

    return dg.Definitions(assets=[scorecard])


@dg.definitions
def defs() -> dg.Definitions:
    """Found by definitions.py's discovery over defs/ (dg.components.load_defs)."""
    return build_defs()
