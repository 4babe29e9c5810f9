"""The admin chain: vendored NBS division files -> ``raw.admin_division`` -> ``core.admin_unit``."""

import uuid

import dagster as dg

from jx_pipeline.defs.admin import checks
from jx_pipeline.lib import divisions as sources
from jx_pipeline.lib import retry
from jx_pipeline.lib.warehouse import WarehouseResource, replace_rows, run_sql, table_metadata
from jx_pipeline.lib.world import world_file

OWNERS = ["team:jx-data-engineering"]


@dg.asset(
    retry_policy=retry.POLICY,
    key=["raw", "reference", "admin_division"],
    group_name="reference",
    kinds={"postgres", "csv"},
    owners=OWNERS,
    tags={"layer": "raw"},
    description="Jiaxing's 7 counties, 72 towns and 1,202 villages as published by NBS (统计用区划代码 2022), "
    "landed with lineage (batch, source file, row number).",
)
def raw_admin_division(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    batch_id = context.run.run_id if context.run else uuid.uuid4().hex
    rows = list(sources.read_rows())  # 1,281 rows; read fully so a bad row stops before the table is touched
    columns = ["batch_id", "source_file", "row_number", "level", "code", "name", "parent_code"]
    with warehouse.connect() as conn, conn.transaction():
        replace_rows(conn, "raw.admin_division", columns, ((batch_id, *row) for row in rows))
        meta = table_metadata(conn, "raw", "admin_division")
    return dg.MaterializeResult(
        metadata={**meta, "batch_id": batch_id, "source_dir": str(sources.source_dir())}
    )


@dg.asset(
    retry_policy=retry.POLICY,
    key=["raw", "reference", "admin_boundary"],
    group_name="reference",
    kinds={"postgres", "postgis", "parquet"},
    owners=OWNERS,
    tags={"layer": "raw"},
    description="Admin-unit boundaries (CGCS2000, EPSG:4490) from the world's spatial hand-over "
    "(entities/admin_units.parquet under JX_WORLD_DIR).",
)
def raw_admin_boundary(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    import pyarrow.parquet as pq
    import shapely

    path = world_file("entities/admin_units.parquet")
    table = pq.read_table(path, columns=["code", "name", "level", "geometry"])
    geoms = shapely.set_srid(shapely.from_wkb(table.column("geometry").to_numpy(zero_copy_only=False)), 4490)
    ewkb = shapely.to_wkb(geoms, hex=True, include_srid=True)
    batch_id = context.run.run_id if context.run else uuid.uuid4().hex
    columns = ["batch_id", "source_file", "row_number", "code", "name", "level", "geom"]
    cols = zip(
        table.column("code").to_pylist(),
        table.column("name").to_pylist(),
        table.column("level").to_pylist(),
        ewkb,
        strict=True,
    )
    rows = ((batch_id, str(path), i, *values) for i, values in enumerate(cols, start=1))
    with warehouse.connect() as conn, conn.transaction():
        replace_rows(conn, "raw.admin_boundary", columns, rows)
        meta = table_metadata(conn, "raw", "admin_boundary")
    return dg.MaterializeResult(metadata={**meta, "batch_id": batch_id, "source_file": str(path)})


@dg.asset(
    retry_policy=retry.POLICY,
    key=["core", "admin_unit"],
    deps=[raw_admin_division, raw_admin_boundary],
    group_name="reference",
    kinds={"postgres", "postgis"},
    owners=OWNERS,
    tags={"layer": "core"},
    check_specs=checks.SPECS,
    description="The admin-unit tree (city → county → town → village) every entity and link is keyed on.",
)
def core_admin_unit(warehouse: WarehouseResource) -> dg.MaterializeResult:
    with warehouse.connect() as conn, conn.transaction():
        run_sql(
            conn,
            "admin/core_admin_unit.sql",
            {"city_code": sources.CITY_CODE, "city_name": sources.CITY_NAME},
        )
        meta = table_metadata(conn, "core", "admin_unit")
        per_level = dict(
            conn.execute("select level, count(*) from core.admin_unit group by level").fetchall()
        )
        results = checks.evaluate(conn)
    return dg.MaterializeResult(
        metadata={**meta, "units_per_level": dg.MetadataValue.json(per_level)},
        check_results=results,
    )


defs = dg.Definitions(assets=[raw_admin_division, raw_admin_boundary, core_admin_unit])
