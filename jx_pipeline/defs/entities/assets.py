"""Geographic entities from the natural-resources hand-over, and the door-plate gazetteer parsed from them.

``core.geo_entity`` holds every entity (山水林田湖草, roads, buildings, door plates) in CGCS2000 with a GiST index;
``core.address_point`` is each door plate's address parsed and standardized by the same parser that reads the
departments' addresses, so that a record's address and a door plate meet on the same key.
"""

import hashlib
import inspect
import uuid

import dagster as dg
import psycopg
import rapidfuzz

from jx_pipeline.defs.admin.assets import OWNERS
from jx_pipeline.lib import address, link_texts, reconcile, retry, tallies
from jx_pipeline.lib.warehouse import WarehouseResource, replace_rows, run_sql, sql_file, table_metadata
from jx_pipeline.lib.world import world_file


@dg.asset(
    retry_policy=retry.POLICY,
    key=["core", "geo_entity"],
    group_name="entities",
    kinds={"postgres", "postgis", "parquet"},
    owners=OWNERS,
    tags={"layer": "core"},
    description="Every geographic entity (山水林田湖草, roads, buildings, door plates 门牌) in CGCS2000, "
    "from the hand-over file entities/geo_entities.parquet under JX_WORLD_DIR. Read and merged again only when "
    "the file, the code loading it or the table changed since the last load (metadata: loaded, loaded_in_run).",
    check_specs=[
        dg.AssetCheckSpec(
            "rows_match_handover",
            asset=["core", "geo_entity"],
            blocking=True,
            description="core.geo_entity holds as many rows as the hand-over file has (its Parquet metadata).",
        )
    ],
)
def core_geo_entity(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    path = world_file("entities/geo_entities.parquet")
    key = _handover_key(path)
    with warehouse.connect() as conn:
        tallies.ensure(conn, {TABLE: ("entity_id",)})  # a base: the table's mark then names its content
        mark = tallies.written(conn, TABLE)
        last = _unchanged(context, "entities_per_type", handover_key=key, table_mark=mark) if mark else None
        if last is None:
            with conn.transaction():
                _load(context, conn, path)
            mark = tallies.written(conn, TABLE)
            loaded = {"loaded": True}
        else:  # the same hand-over and code as that run's, and no row written since: the merge would write none
            loaded = {"loaded": False, "loaded_in_run": last["run_id"]}
        with conn.transaction():
            meta = table_metadata(conn, "core", "geo_entity")
            per_type = dict(
                conn.execute("select entity_type, count(*) from core.geo_entity group by 1").fetchall()
            )
            tally = reconcile.geo_entities(conn, path)
    return dg.MaterializeResult(
        metadata={
            **meta,
            "entities_per_type": dg.MetadataValue.json(per_type),
            "source_file": str(path),
            **loaded,
            "handover_key": key,
            "table_mark": mark or "",
        },
        check_results=[tally.check("rows_match_handover")],
    )


TABLE = "core.geo_entity"


def _load(context: dg.AssetExecutionContext, conn: psycopg.Connection, path) -> None:
    """The hand-over merged into core.geo_entity (sql/entities/geo_entity_merge.sql), in the caller's
    transaction: only the entities gone, new or changed are written."""
    import pyarrow.parquet as pq
    import shapely

    cols = ["entity_id", "entity_type", "name", "village_code", "parent_id", "address"]
    table = pq.read_table(path, columns=[*cols, "geometry"])
    geoms = shapely.set_srid(shapely.from_wkb(table.column("geometry").to_numpy(zero_copy_only=False)), 4490)
    batch_id = context.run.run_id if context.run else uuid.uuid4().hex
    values = [table.column(c).to_pylist() for c in cols]
    rows = (
        (*row, g, batch_id)
        for *row, g in zip(*values, shapely.to_wkb(geoms, hex=True, include_srid=True), strict=True)
    )
    conn.execute("create temp table geo_entity_next (like core.geo_entity) on commit drop")
    replace_rows(conn, "geo_entity_next", [*cols, "geom", "batch_id"], rows)
    run_sql(conn, "entities/geo_entity_merge.sql")


def _handover_key(path) -> str:
    """What a load of core.geo_entity is made of: the hand-over file's bytes (scale 0.1: 20 MB, 0.04 s to hash)
    and the code and SQL that load it. A day whose key and table are as the last load left them skips reading
    and merging the file (1.8 s of reading and 4 s in all at scale 0.1, writing nothing)."""
    h = hashlib.sha256(path.read_bytes())
    h.update(inspect.getsource(_load).encode())
    h.update(sql_file("entities/geo_entity_merge.sql").encode())
    return h.hexdigest()[:20]


@dg.asset(
    retry_policy=retry.POLICY,
    key=["core", "address_point"],
    deps=[core_geo_entity, dg.AssetKey(["core", "admin_unit"])],
    group_name="entities",
    kinds={"postgres", "postgis"},
    owners=OWNERS,
    tags={"layer": "core"},
    check_specs=[
        dg.AssetCheckSpec(
            "parses_to_itself",
            asset=["core", "address_point"],
            blocking=True,
            description="Every door plate's own address parses back to its village and to itself.",
        ),
        dg.AssetCheckSpec(
            "one_point_per_door_plate",
            asset=["core", "address_point"],
            blocking=True,
            description="core.address_point holds one row per door plate of core.geo_entity, none missing, none stray.",
        ),
    ],
    description="The door-plate gazetteer: each address point's address parsed into county, town, village, "
    "road, number, complex, group, with its standard form. Parsed again only when the parser, its divisions, "
    "the door plates or this table changed since the last materialization (metadata: parsed, parsed_in_run).",
)
def core_address_point(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    with warehouse.connect() as conn:
        key, table = _points_key(conn), _table_key(conn)
        last = _unchanged(context, "points", source_key=key, table_key=table)
        if last is None:
            rows, wrong = _parsed(conn)
            with conn.transaction():
                replace_rows(conn, "core.address_point", POINT_COLUMNS, rows)
            table = _table_key(conn)
            points, sample, parsed = len(rows), wrong[:10], {"parsed": True}
            wrong = len(wrong)
        else:  # the same door plates, parser and table as that run's: its parse stands (3.1 + 1.6 s at 0.1)
            points, wrong, sample = last["points"], last["not_parsed_to_itself"], last.get("wrong_sample", [])
            parsed = {"parsed": False, "parsed_in_run": last["run_id"]}
        meta = table_metadata(conn, "core", "address_point")
        points_tally = reconcile.address_points(conn)
    return dg.MaterializeResult(
        metadata={
            **meta,
            "not_parsed_to_itself": wrong,
            "wrong_sample": dg.MetadataValue.json(sample),
            "points": points,
            **parsed,
            "source_key": key,
            "table_key": table,
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="parses_to_itself",
                passed=not wrong,
                metadata={
                    "points": points,
                    "wrong": wrong,
                    "sample": dg.MetadataValue.json(sample),
                    **parsed,
                },
            ),
            points_tally.check("one_point_per_door_plate"),
        ],
    )


POINT_COLUMNS = [
    "entity_id",
    "village_code",
    "town_code",
    "county_code",
    "road",
    "number",
    "complex",
    "village",
    "grp",
    "std_address",
    "geom",
]


def _parsed(conn: psycopg.Connection) -> tuple[list[tuple], list[str]]:
    """Each door plate's address parsed (the rows of core.address_point), and those that do not parse back to
    their own village and door plate."""
    parser = link_texts.parser(conn, link_texts.parser_key(conn))  # stored for linking and the steps ahead
    points = conn.execute(
        "select entity_id, village_code, address, st_astext(geom) from core.geo_entity"
        " where entity_type = 'address_point' order by entity_id"
    ).fetchall()
    rows, wrong = [], []
    for entity_id, village_code, text, wkt in points:
        p = parser.parse(text)
        if p.village_code != village_code or p.entity_id != entity_id:
            wrong.append(f"{entity_id} {text} -> {p.village_code} {p.entity_id}")
        rows.append(
            (
                entity_id,
                village_code,
                village_code[:9],
                village_code[:6],
                p.road,
                p.number,
                p.complex,
                p.village,
                p.group,
                address.standard(parser, p),
                f"SRID=4490;{wkt}",
            )
        )
    return rows, wrong


def _points_key(conn: psycopg.Connection) -> str:
    """What core.address_point is made of: the parser, its divisions and the door plates' addresses (linking's
    parser key), the door plates' points, the code that parses them, and the PostGIS and rapidfuzz versions."""
    points = conn.execute(
        "select md5(coalesce(string_agg(concat_ws('|', entity_id, md5(st_asbinary(geom))), E'\\n'"
        " order by entity_id), '')) from core.geo_entity where entity_type = 'address_point'"
    ).fetchone()[0]
    postgis = conn.execute("select postgis_full_version()").fetchone()[0]
    h = hashlib.sha256(f"{link_texts.parser_key(conn)}|{points}|{postgis}|{rapidfuzz.__version__}".encode())
    h.update(inspect.getsource(_parsed).encode())
    h.update(repr(POINT_COLUMNS).encode())
    return h.hexdigest()[:20]


def _table_key(conn: psycopg.Connection) -> str:
    return conn.execute(
        "select md5(coalesce(string_agg(md5(a::text), '' order by entity_id), '')) from core.address_point a"
    ).fetchone()[0]


def _unchanged(context: dg.AssetExecutionContext, figure: str, **same: str) -> dict | None:
    """The last materialization's metadata when it holds ``figure`` and each of ``same`` (what it was made of,
    the table's content as it left it) equals now's, with the run that did the work; None otherwise."""
    event = context.instance.get_latest_materialization_event(context.asset_key)
    mat = event.asset_materialization if event else None
    meta = {k: v.value for k, v in mat.metadata.items()} if mat else {}
    if figure not in meta or any(meta.get(k) != v for k, v in same.items()):
        return None
    done = meta.get("parsed_in_run") or meta.get("loaded_in_run") or event.run_id
    return {**meta, "run_id": done}


defs = dg.Definitions(assets=[core_geo_entity, core_address_point])
