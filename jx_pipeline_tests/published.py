"""A small warehouse with its marts published, built the way the pipeline builds it, for the tests of the
clients downstream (GDAL, SQLAlchemy, the OGC API server): `jx-pipeline db up` (migrations, roles, grants), the
admin units and geographic entities, a few feeds of every domain loaded, staged and linked for one day, then
the real `marts.refresh`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from jx_pipeline.catalog import load_catalog
from jx_pipeline.lib.pg import connect

FEEDS_PER_DOMAIN = 3
DAY = "2026-11-01"

# PostGIS type (geometry_columns) -> the name ogrinfo prints
OGR_TYPE = {
    "POINT": "Point",
    "LINESTRING": "Line String",
    "POLYGON": "Polygon",
    "MULTIPOINT": "Multi Point",
    "MULTILINESTRING": "Multi Line String",
    "MULTIPOLYGON": "Multi Polygon",
    "GEOMETRY": "Unknown (any)",
}


def summary(text: str) -> dict:
    """Geometry type, feature count, EPSG code and extent from `ogrinfo -so`."""
    extent = re.search(r"Extent: \(([-\d.]+), ([-\d.]+)\) - \(([-\d.]+), ([-\d.]+)\)", text)
    epsg = re.findall(r'ID\["EPSG",(\d+)\]', text)
    return {
        "type": re.search(r"^Geometry: (.+)$", text, re.M)[1],
        "count": int(re.search(r"^Feature Count: (\d+)$", text, re.M)[1]),
        "epsg": int(epsg[-1]) if epsg else None,
        "extent": [float(v) for v in extent.groups()] if extent else None,
    }


@dataclass(frozen=True)
class Published:
    owner_url: str
    reader_url: str
    rows: dict[str, int]  # what marts.refresh returned
    spatial: dict[str, tuple[str, int]]  # mart table -> (geometry type, SRID), as geometry_columns records it


def build(world: Path, warehouse_url: str, sources_url: str, run_cli) -> Published:
    from jx_pipeline.defs.admin import assets as admin
    from jx_pipeline.defs.entities import assets as entities
    from jx_pipeline.lib import identity, ingest, linking, marts, roles, staging
    from jx_pipeline.lib.warehouse import WarehouseResource
    from jx_pipeline.world.sourcedb import load

    done = run_cli("db", "up", env={"JX_WAREHOUSE_URL": warehouse_url})
    assert done.returncode == 0, done.stdout + done.stderr
    full = load_catalog()
    chosen = [
        f
        for domain in ("population", "legal_person", "economy", "other")
        for f in [f for f in full.feeds if f.domain == domain][:FEEDS_PER_DOMAIN]
    ]
    catalog = full.model_copy(update={"feeds": chosen})
    load(world, sources_url, catalog)
    assets = [admin.raw_admin_division, admin.raw_admin_boundary, admin.core_admin_unit]
    assets += [entities.core_geo_entity, entities.core_address_point]
    resources = {"warehouse": WarehouseResource(url=warehouse_url)}
    assert dg.materialize(assets, resources=resources, raise_on_error=True).success
    with connect(warehouse_url) as conn:
        for feed in catalog.feeds:
            ingest.load_partition(
                conn, feed, DAY, "t", world=world, source_url=sources_url, first_partition=DAY
            )
            staging.stage_partition(conn, feed, DAY, "t")
        linking.link(conn, catalog)
        identity.resolve(conn, catalog)
        rows = marts.refresh(conn, catalog)
        conn.commit()
        spatial = {
            t: (kind, srid)
            for t, kind, srid in conn.execute(
                "select f_table_name, type, srid from geometry_columns where f_table_schema = 'mart'"
            ).fetchall()
        }
    return Published(warehouse_url, roles.url(roles.READER, warehouse_url), rows, spatial)
