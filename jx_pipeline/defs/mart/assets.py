"""The published layer: the marts of schema ``mart`` and their service catalog, as one step.

One refresh builds every mart aside and swaps them all in in one transaction (lib/marts.py), so the assets are
materialized together; their checks run inside that transaction after the swap, and each asset's page shows its
row count, column schema (with the Chinese/English comments) and a small map preview.
"""

import dagster as dg

from jx_pipeline.catalog import load_catalog
from jx_pipeline.defs.admin.assets import OWNERS
from jx_pipeline.defs.mart import checks
from jx_pipeline.lib import marts, marts_preview, quarantine, retry
from jx_pipeline.lib.aside import Aside
from jx_pipeline.lib.errors import JxError
from jx_pipeline.lib.pools import WAREHOUSE
from jx_pipeline.lib.warehouse import WarehouseResource, table_metadata

DEPS = [
    dg.AssetKey(k)
    for k in (
        ["core", "entity_link"],
        ["core", "person"],
        ["core", "legal_person"],
        ["core", "geo_entity"],
        ["core", "address_point"],
        ["core", "admin_unit"],
        ["quality", "scorecard"],
    )
]
DESCRIPTIONS = {
    "entity_class": "Entity classes: 山水林田湖草 (mountains, water, forest, farmland, lakes, grassland) and the built"
    " ones, with the core types each covers and its map colour.",
    "geo_entity_profile": "One row per geographic entity: class, village/town/county, area or length (EPSG:4549),"
    " geometry, linked records per domain and department, residents, households, organisations, last record date.",
    "admin_unit_profile": "One row per county, town and village with its boundary: residents, households,"
    " organisations by type, economy indicators, area of each 山水林田湖草 class by intersection.",
    "natural_resource_summary": "Per county and 山水林田湖草 class: entity count and area (m², mu, share of county).",
    "feed_link_coverage": "Per department and feed: current records, linked by each method, unmatched share, staged"
    " pass rate, quarantined partitions.",
    "department_coverage": "Per department: feed_link_coverage summed.",
    "data_service": "The service catalog: one row per published mart (titles, geometry, bbox, rows, refresh time,"
    " source feeds and departments, data day).",
}


class MartConfig(dg.Config):
    """``full``: read every current record again instead of only those changed since the last refresh (the
    marts are the same; the kept inputs only save the work)."""

    full: bool = False


def build_defs() -> dg.Definitions:
    catalog = load_catalog()

    @dg.multi_asset(
        name="mart_refresh",
        pool=WAREHOUSE,  # a warehouse-heavy step (lib/pools.py)
        retry_policy=retry.POLICY,
        specs=[
            dg.AssetSpec(
                ["mart", name],
                deps=DEPS,
                group_name="mart",
                owners=OWNERS,
                kinds={"postgres", "postgis"},
                tags={"layer": "mart"},
                description=DESCRIPTIONS[name],
            )
            for name in marts.MARTS
        ],
        check_specs=checks.specs(),
    )
    def mart_refresh(config: MartConfig, warehouse: WarehouseResource):
        found: list[dg.AssetCheckResult] = []
        aside: dict[str, Aside] = {}  # the persons of core counted on a second connection meanwhile

        def judge(conn) -> None:
            """The checks, on the swapped-in marts before the transaction commits: personal data found rolls
            the refresh back (the previous marts stay published); the other checks report."""
            found.extend(checks.evaluate(conn, catalog, aside.get("persons")))
            leaks = [r for r in found if not r.passed and r.check_name in checks.PRIVACY]
            if leaks:
                raise JxError(
                    "the new marts would publish personal data; nothing was published: "
                    + "; ".join(f"{r.asset_key.to_user_string()} {r.check_name} {r.metadata}" for r in leaks),
                    fix="find where the value comes from (sql/mart/*.sql) and keep persons as counts only",
                )

        with warehouse.connect() as conn:
            read: dict = {}
            marts.refresh(
                conn,
                catalog,
                judge,
                full=config.full,
                stats=read,
                at_snapshot=lambda c: aside.update(
                    persons=Aside(c, lambda a: checks.population_persons(a, catalog))
                ),
            )
            left_out = quarantine.listing(conn)
            for name in marts.MARTS:
                meta = table_metadata(conn, "mart", name)
                md = marts_preview.preview(conn, name)
                if md:
                    meta["preview"] = dg.MetadataValue.md(md)
                if name == "feed_link_coverage" and left_out:
                    meta["quarantined"] = dg.MetadataValue.json(left_out)
                if name == "data_service":
                    meta["services"] = dg.MetadataValue.md(_service_table(conn))
                    # records read again: those of changed partitions and with changed links or identities
                    meta["records_read"] = read["records_read"]
                    meta["inputs"] = read["mode"]
                    # the entities' classes, places and sizes made again (an entity or admin unit written since)
                    meta["entities_made"] = read["entities_made"]
                yield dg.MaterializeResult(asset_key=["mart", name], metadata=meta)
        yield from found

    return dg.Definitions(assets=[mart_refresh])


def _service_table(conn) -> str:
    rows = conn.execute(
        "select service_id, title_zh, coalesce(geometry_type, '-'), row_count, coalesce(data_day::text, '-')"
        " from mart.data_service order by service_id"
    ).fetchall()
    lines = ["| service | 标题 | geometry | rows | data day |", "|---|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d:,} | {e} |" for a, b, c, d, e in rows]
    return "\n".join(lines)


@dg.definitions
def defs() -> dg.Definitions:
    """Found by definitions.py's discovery over defs/ (dg.components.load_defs)."""
    return build_defs()
