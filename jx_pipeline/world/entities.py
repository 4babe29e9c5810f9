"""The natural-resources bureau's hand-over: GeoParquet files of admin units and geographic entities in
CGCS2000 (EPSG:4490), plus the entity ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from jx_pipeline.world import geo, people, places, writers

_PROJJSON = CRS.from_epsg(4490).to_json_dict()


def _to_deg(geoms: np.ndarray) -> np.ndarray:
    def fn(xy: np.ndarray) -> np.ndarray:
        lon, lat = geo.to_deg(xy[:, 0], xy[:, 1])
        return np.round(np.column_stack([lon, lat]), 7)

    return shapely.transform(geoms, fn)


def _geoparquet(frame: pd.DataFrame, geoms: np.ndarray, path: Path) -> None:
    types = sorted(set(shapely.get_type_id(geoms).tolist()))
    names = {
        0: "Point",
        1: "LineString",
        3: "Polygon",
        6: "MultiPolygon",
        5: "MultiLineString",
        7: "GeometryCollection",
    }
    frame = frame.copy()
    frame["geometry"] = shapely.to_wkb(geoms)
    bbox = shapely.total_bounds(geoms).round(7).tolist()
    meta = {
        "version": "1.1.0",
        "primary_column": "geometry",
        "columns": {
            "geometry": {
                "encoding": "WKB",
                "geometry_types": [names[t] for t in types],
                "crs": _PROJJSON,
                "bbox": bbox,
            }
        },
    }
    writers.write_parquet(frame, path, {b"geo": json.dumps(meta, sort_keys=True).encode()})


def write(out: Path, admin: places.AdminUnits, pop: people.Population, natural: pd.DataFrame) -> list[str]:
    t = admin.table
    polys = np.array([admin.geometry.polygons[c] for c in t.code], dtype=object)
    polys = np.array(
        [g if g.geom_type == "MultiPolygon" else shapely.MultiPolygon([g]) for g in polys], dtype=object
    )
    _geoparquet(
        t[["code", "name", "level", "parent_code"]], _to_deg(polys), out / "entities" / "admin_units.parquet"
    )

    ap = pop.address_points
    units = t.set_index("code")
    town = units.parent_code.reindex(ap.village_code).to_numpy()
    county = units.parent_code.reindex(town).to_numpy()
    plate = np.where(
        ap.road.notna(),
        ap.road.astype(object) + ap.number.astype("Int64").astype(str) + "号",
        units.short_name.reindex(ap.village_code).to_numpy()
        + ap.group_no.astype("Int64").astype(str)
        + "组"
        + ap.number.astype("Int64").astype(str)
        + "号",
    )
    plate = np.where(ap.complex.notna(), plate + ap.complex.fillna("").astype(object), plate)
    full = (
        "浙江省嘉兴市" + units.name.reindex(county).to_numpy() + units.name.reindex(town).to_numpy() + plate
    )
    parts = [
        pd.DataFrame(
            {
                "entity_id": natural.entity_id,
                "entity_type": natural.entity_type,
                "name": natural.name,
                "village_code": natural.village_code,
                "parent_id": None,
                "address": None,
            }
        ),
        pd.DataFrame(
            {
                "entity_id": pop.roads.entity_id,
                "entity_type": "road",
                "name": pop.roads.name,
                "village_code": None,
                "parent_id": None,
                "address": None,
            }
        ),
        pd.DataFrame(
            {
                "entity_id": ap.entity_id,
                "entity_type": "address_point",
                "name": plate,
                "village_code": ap.village_code,
                "parent_id": None,
                "address": full,
            }
        ),
        pd.DataFrame(
            {
                "entity_id": pop.buildings.entity_id,
                "entity_type": "building",
                "name": pop.buildings.building_no.astype(str) + "幢",
                "village_code": pop.buildings.village_code,
                "parent_id": pop.buildings.parent_id,
                "address": None,
            }
        ),
    ]
    frame = pd.concat(parts, ignore_index=True).astype(object)
    geoms = np.concatenate(
        [
            natural.geom.to_numpy(),
            pop.roads.geom.to_numpy(),
            shapely.points(ap.x.to_numpy(), ap.y.to_numpy()),
            pop.buildings.geom.to_numpy(),
        ]
    )
    _geoparquet(frame, _to_deg(geoms), out / "entities" / "geo_entities.parquet")
    writers.write_parquet(
        frame[["entity_id", "entity_type", "village_code"]], out / "truth" / "entities.parquet"
    )
    return ["entities/admin_units.parquet", "entities/geo_entities.parquet", "truth/entities.parquet"]
