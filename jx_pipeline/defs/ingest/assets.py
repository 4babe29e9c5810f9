"""Raw ingestion assets built from the feed catalog: one asset per feed, one multi-asset step per department.

A step per feed would cost ~2 s of process start-up each (168 feeds); a department's feeds are alike, so they
share one subsettable step. Partitions are landing days; a backfill over a range runs as one step per department.
"""

import os

import dagster as dg
from psycopg import sql

from jx_pipeline.catalog import Catalog, Feed, load_catalog
from jx_pipeline.catalog.schema import DatabaseSource
from jx_pipeline.defs.admin.assets import OWNERS
from jx_pipeline.lib import ingest, quarantine, reconcile, retry
from jx_pipeline.lib.pools import source_pool
from jx_pipeline.lib.progress import log_step as log_progress
from jx_pipeline.lib.warehouse import WarehouseResource
from jx_pipeline.lib.world import world_dir

PARTITION_START = os.environ.get("JX_PARTITION_START", "2026-11-01")
# landing days are Beijing days: a file landed at 00:30 Beijing (16:30 UTC the day before) belongs to the new day
DAILY = dg.DailyPartitionsDefinition(start_date=PARTITION_START, end_offset=1, timezone="Asia/Shanghai")


class SourceDatabaseResource(dg.ConfigurableResource):
    """Where the departments' source databases are reached (one URL here; per department in production)."""

    url: str = ""


def feed_key(feed: Feed, layer: str = "raw") -> dg.AssetKey:
    return dg.AssetKey([layer, feed.department, feed.id.removeprefix(f"{feed.department}_")])


def by_department(catalog: Catalog) -> dict[str, list[Feed]]:
    depts: dict[str, list[Feed]] = {}
    for feed in catalog.feeds:
        depts.setdefault(feed.department, []).append(feed)
    return depts


def _spec(feed: Feed, catalog: Catalog) -> dg.AssetSpec:
    dept = catalog.department(feed.department)
    src = feed.source
    where = (
        f"table {feed.department}.{src.table} (watermark {src.watermark})"
        if isinstance(src, DatabaseSource)
        else f"landing files ({src.format}, {src.encoding})"
    )
    return dg.AssetSpec(
        key=feed_key(feed),
        group_name=feed.department,
        owners=OWNERS,
        kinds={"postgres", "sql" if isinstance(src, DatabaseSource) else src.format},
        tags={"layer": "raw", "domain": feed.domain, "cadence": feed.cadence, "jx/ingest": "feed"},
        description=f"{feed.name} ({feed.name_en}) from {dept.name} ({dept.name_en}): {where}, as landed, with lineage.",
        metadata={"feed_id": feed.id, "dagster/table_name": f"jx_warehouse.raw.{feed.id}"},
    )


def _department_asset(code: str, feeds: list[Feed], catalog: Catalog) -> dg.AssetsDefinition:
    by_key = {feed_key(f): f for f in feeds}
    checks = [
        dg.AssetCheckSpec(
            "rows_reconcile",
            asset=k,
            blocking=False,  # a failing partition is quarantined instead (lib/quarantine.py)
            description="Records at the source, counted by a separate reader (landing files) or count(*) over the"
            " same watermark window (source table) = raw rows + raw rejects, counted in SQL, per partition loaded."
            + quarantine.CHECK_NOTE,
        )
        for k in by_key
    ]

    @dg.multi_asset(
        retry_policy=retry.POLICY,
        name=f"raw_{code}",
        specs=[_spec(f, catalog) for f in feeds],
        check_specs=checks,
        can_subset=True,
        partitions_def=DAILY,
        backfill_policy=dg.BackfillPolicy.single_run(),
        op_tags={"jx/department": code},
        pool=source_pool(code),  # at most the catalog's max_concurrent_loads of the department at once
    )
    def _load(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource, source_db: SourceDatabaseResource
    ):
        partitions = context.partition_keys
        with warehouse.connect() as conn:
            for key in sorted(context.selected_asset_keys, key=lambda k: k.to_user_string()):
                feed = by_key[key]
                results = [
                    ingest.load_partition(
                        conn,
                        feed,
                        p,
                        context.run.run_id,
                        world=world_dir(),
                        source_url=source_db.url,
                        first_partition=PARTITION_START,
                    )
                    for p in partitions
                ]
                read = sum(r.rows_read for r in results)
                loaded = sum(r.rows_loaded for r in results)
                rejected = sum(r.rows_rejected for r in results)
                tally, failures = reconcile.Tally(), {}
                for p in partitions:  # a partition that does not reconcile is quarantined, the run goes on
                    counted = reconcile.raw(
                        conn,
                        feed,
                        [p],
                        world=world_dir(),
                        source_url=source_db.url,
                        first_partition=PARTITION_START,
                    )
                    tally.add(counted)
                    quarantine.record(conn, feed, p, quarantine.RAW, counted.failure(), context.run.run_id)
                    if counted.failure():
                        failures[p] = counted.failure()
                conn.commit()
                counted = conn.execute(
                    sql.SQL("select count(*) from {} where _partition = any(%s)").format(
                        ingest.raw_table(feed)
                    ),
                    (partitions,),
                ).fetchone()[0]
                yield dg.MaterializeResult(
                    asset_key=key,
                    metadata={
                        "dagster/row_count": dg.MetadataValue.int(counted),
                        "rows_read": read,
                        "rows_loaded": loaded,
                        "rows_rejected": rejected,
                        "files": dg.MetadataValue.json([f for r in results for f in r.files]),
                        "extra_columns": dg.MetadataValue.json(
                            sorted({c for r in results for c in r.extra_columns})
                        ),
                        **quarantine.metadata(failures),
                    },
                )
                yield tally.check(
                    "rows_reconcile",
                    key,
                    severity=quarantine.severity(failures),
                    rows_read=read,
                    rows_loaded=loaded,
                    rows_rejected=rejected,
                    **quarantine.metadata(failures),
                )
        log_progress(context)  # 'progress: steps 5/55, departments 2/27, rows ...' in the run's events

    return _load


def build_defs(catalog: Catalog | None = None) -> dg.Definitions:
    catalog = catalog or load_catalog()
    return dg.Definitions(
        assets=[_department_asset(code, feeds, catalog) for code, feeds in by_department(catalog).items()]
    )


@dg.definitions
def defs() -> dg.Definitions:
    """Found by definitions.py's discovery over defs/ (dg.components.load_defs)."""
    return build_defs()
