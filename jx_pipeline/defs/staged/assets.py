"""Staged assets built from the feed catalog: each raw feed typed and standardized, then validated by its GE suite.

One subsettable step per department, like raw. Both checks run in the asset's own step and gate the data: a
partition that does not reconcile, or fails its expectations, is quarantined (lib/quarantine.py) and left out of
linking and the marts, while the other feeds and departments go on. They are not Dagster-blocking checks for that
reason (see lib/quarantine.py).
"""

import dagster as dg

from jx_pipeline.catalog import Catalog, Feed, load_catalog
from jx_pipeline.defs.ingest.assets import DAILY, OWNERS, by_department, feed_key
from jx_pipeline.lib import canonical, quarantine, retry, staging
from jx_pipeline.lib.pools import WAREHOUSE
from jx_pipeline.lib.progress import log_step as log_progress
from jx_pipeline.lib.warehouse import WarehouseResource


def _spec(feed: Feed, catalog: Catalog) -> dg.AssetSpec:
    dept = catalog.department(feed.department)
    columns = [
        dg.TableColumn(f, canonical.sql_type(f).replace(" not null", ""), description=feed.column_for(f))
        for f in staging.fields(feed)
    ]
    return dg.AssetSpec(
        key=feed_key(feed, "staged"),
        deps=[feed_key(feed)],
        group_name=feed.department,
        owners=OWNERS,
        kinds={"postgres"} | ({"postgis"} if feed.coordinates else set()),
        tags={"layer": "staged", "domain": feed.domain, "cadence": feed.cadence, "jx/staged": "feed"},
        description=(
            f"{feed.name} ({feed.name_en}) from {dept.name}: canonical typed columns (IDs checked and 15→18"
            " upgraded, credit codes, phones, dates, amounts"
            + (f", coordinates {feed.coordinates.crs}→CGCS2000" if feed.coordinates else "")
            + "); bad values nulled with a reason in quality.rejects."
        ),
        metadata={
            "feed_id": feed.id,
            "dagster/table_name": f"jx_warehouse.staged.{feed.id}",
            "dagster/column_schema": dg.TableSchema(columns=columns),
        },
    )


def _checks(keys: list[dg.AssetKey]) -> list[dg.AssetCheckSpec]:
    return [
        spec
        for k in keys
        for spec in (
            dg.AssetCheckSpec(
                "rows_reconcile",
                asset=k,
                blocking=False,  # quarantined instead: lib/quarantine.py
                description="Raw rows of the partition = staged rows + row-scope rejects, all counted in SQL,"
                " for every partition staged." + quarantine.CHECK_NOTE,
            ),
            dg.AssetCheckSpec(
                "expectations",
                asset=k,
                blocking=False,  # quarantined instead: lib/quarantine.py
                description="The feed's Great Expectations suite (generated from the catalog + its own)."
                + quarantine.CHECK_NOTE,
            ),
        )
    ]


def _department_asset(code: str, feeds: list[Feed], catalog: Catalog) -> dg.AssetsDefinition:
    by_key = {feed_key(f, "staged"): f for f in feeds}

    @dg.multi_asset(
        retry_policy=retry.POLICY,
        name=f"staged_{code}",
        specs=[_spec(f, catalog) for f in feeds],
        check_specs=_checks(list(by_key)),
        can_subset=True,
        partitions_def=DAILY,
        backfill_policy=dg.BackfillPolicy.single_run(),
        op_tags={"jx/department": code},
        pool=WAREHOUSE,
    )
    def _stage(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        from jx_pipeline.defs.staged import results

        keys = sorted(context.selected_asset_keys, key=lambda k: k.to_user_string())
        with warehouse.connect() as conn:
            feeds = [(by_key[k], k) for k in keys]
            yield from results.stage_department(
                conn, warehouse.url, feeds, context.partition_keys, context.run.run_id
            )
        log_progress(context)  # 'progress: steps 5/55, departments 2/27, rows ...' in the run's events

    return _stage


def build_defs(catalog: Catalog | None = None) -> dg.Definitions:
    catalog = catalog or load_catalog()
    return dg.Definitions(
        assets=[_department_asset(code, feeds, catalog) for code, feeds in by_department(catalog).items()]
    )


@dg.definitions
def defs() -> dg.Definitions:
    """Found by definitions.py's discovery over defs/ (dg.components.load_defs)."""
    return build_defs()
