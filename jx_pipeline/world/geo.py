"""Plausible Jiaxing geography: admin polygons that tessellate the city around real seats, and a placement grid.

Counties are Voronoi cells of approximate real centroids inside an outline of Jiaxing; towns and villages
are Voronoi cells of seeded generator points inside their parent, sub-districts (街道) crowded near the county
seat. Work is done in metres (CGCS2000 / 3-degree GK CM 120E, EPSG:4549) and stored in EPSG:4490.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import Transformer

from jx_pipeline.world.rng import stream

TO_M = Transformer.from_crs(4490, 4549, always_xy=True)
TO_DEG = Transformer.from_crs(4549, 4490, always_xy=True)

# A coarse outline of Jiaxing (lon, lat): Hangzhou Bay to the south-east, Taihu plain to the north.
OUTLINE_DEG = [
    (120.30, 30.58),
    (120.36, 30.75),
    (120.48, 30.83),
    (120.62, 30.90),
    (120.75, 31.00),
    (120.90, 31.03),
    (121.00, 30.98),
    (121.10, 30.92),
    (121.20, 30.88),
    (121.28, 30.80),
    (121.30, 30.70),
    (121.22, 30.63),
    (121.10, 30.58),
    (120.98, 30.45),
    (120.88, 30.38),
    (120.75, 30.36),
    (120.60, 30.38),
    (120.48, 30.40),
    (120.38, 30.47),
]
# code: (seat lon, seat lat, centroid lon, centroid lat); seats are the real county seats.
COUNTIES = {
    "330402": (120.763, 30.747, 120.86, 30.72),  # 南湖区
    "330411": (120.709, 30.765, 120.68, 30.82),  # 秀洲区
    "330421": (120.926, 30.830, 120.95, 30.91),  # 嘉善县
    "330424": (120.946, 30.526, 120.90, 30.49),  # 海盐县
    "330481": (120.681, 30.511, 120.60, 30.47),  # 海宁市
    "330482": (121.015, 30.677, 121.12, 30.70),  # 平湖市
    "330483": (120.565, 30.630, 120.46, 30.66),  # 桐乡市
}
CELL_M = 80.0  # placement grid: one natural entity or one settlement block per cell


def to_m(lon, lat):
    return TO_M.transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))


def to_deg(x, y):
    return TO_DEG.transform(np.asarray(x, dtype=float), np.asarray(y, dtype=float))


def outline_m() -> shapely.Polygon:
    lon, lat = zip(*OUTLINE_DEG, strict=True)
    x, y = to_m(lon, lat)
    return shapely.Polygon(np.column_stack([x, y]))


def _voronoi(points: np.ndarray, region: shapely.Geometry) -> list[shapely.Geometry]:
    """Voronoi cells of ``points`` (in input order) clipped to ``region``."""
    if len(points) == 1:
        return [region]
    cells = shapely.voronoi_polygons(shapely.multipoints(points), extend_to=region, ordered=True)
    return [shapely.make_valid(shapely.intersection(c, region)) for c in shapely.get_parts(cells)]


def _spread_points(
    rng: np.random.Generator,
    region: shapely.Geometry,
    n: int,
    near: np.ndarray | None,
    near_share: int,
    spread: float,
) -> np.ndarray:
    """n well-spread points in region (best-candidate sampling); the first ``near_share`` cluster near ``near``."""
    minx, miny, maxx, maxy = region.bounds
    shapely.prepare(region)
    chosen = np.empty((0, 2))
    for i in range(n):
        if near is not None and i < near_share:
            cand = near + rng.normal(0, spread, (16, 2))
        else:
            cand = np.column_stack([rng.uniform(minx, maxx, 48), rng.uniform(miny, maxy, 48)])
        cand = cand[shapely.contains_xy(region, cand[:, 0], cand[:, 1])]
        if not len(cand):  # region too thin for rejection sampling: a point on it
            p = shapely.point_on_surface(region)
            cand = np.array([[p.x, p.y]])
        if len(chosen):
            d = np.sqrt(((cand[:, None, :] - chosen[None, :, :]) ** 2).sum(-1)).min(axis=1)
            best = cand[d.argmax()]
        else:
            best = cand[0]
        chosen = np.vstack([chosen, best])
    return chosen


@dataclass
class AdminGeometry:
    """Polygons (metres) and generator points per admin code, the Voronoi hierarchy kept for cell lookups."""

    polygons: dict[str, shapely.Geometry]
    seats: dict[str, tuple[float, float]]
    children: dict[str, list[str]]
    generators: dict[str, np.ndarray]  # parent code -> generator points of its children, in children order


def build_admin_geometry(
    seed: int, towns: dict[str, list[str]], villages: dict[str, list[str]], is_subdistrict: dict[str, bool]
) -> AdminGeometry:
    """towns: county -> town codes; villages: town -> village codes (both in a stable order)."""
    region = outline_m()
    codes = list(COUNTIES)
    cx, cy = to_m([COUNTIES[c][2] for c in codes], [COUNTIES[c][3] for c in codes])
    sx, sy = to_m([COUNTIES[c][0] for c in codes], [COUNTIES[c][1] for c in codes])
    gen = {"330400": np.column_stack([cx, cy])}
    polys = dict(zip(codes, _voronoi(gen["330400"], region), strict=True))
    seats = {c: (float(x), float(y)) for c, x, y in zip(codes, sx, sy, strict=True)}
    children = {"330400": codes}
    for county in codes:
        rng = stream(seed, "geo", county)
        kids = towns[county]
        # sub-districts first so that they crowd around the county seat
        kids = sorted(kids, key=lambda t: (not is_subdistrict[t], t))
        n_sub = sum(is_subdistrict[t] for t in kids)
        pts = _spread_points(rng, polys[county], len(kids), np.array(seats[county]), n_sub, 2500.0)
        children[county], gen[county] = kids, pts
        for town, cell, p in zip(kids, _voronoi(pts, polys[county]), pts, strict=True):
            polys[town], seats[town] = cell, (float(p[0]), float(p[1]))
    for county in codes:
        for town in children[county]:
            rng = stream(seed, "geo", town)
            kids = villages.get(town, [])
            if not kids:
                continue
            pts = _spread_points(rng, polys[town], len(kids), None, 0, 0.0)
            children[town], gen[town] = kids, pts
            for vil, cell, p in zip(kids, _voronoi(pts, polys[town]), pts, strict=True):
                polys[vil], seats[vil] = cell, (float(p[0]), float(p[1]))
    polys["330400"] = region
    return AdminGeometry(polys, seats, children, gen)


def locate(admin: AdminGeometry, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Village code of each point, following the Voronoi hierarchy (nearest generator at each level)."""
    out = np.empty(len(x), dtype=object)
    idx = np.arange(len(x))

    def descend(parent: str, sel: np.ndarray) -> None:
        kids = admin.children.get(parent)
        if not kids or parent not in admin.generators:
            out[sel] = parent
            return
        g = admin.generators[parent]
        d = (x[sel, None] - g[None, :, 0]) ** 2 + (y[sel, None] - g[None, :, 1]) ** 2
        which = d.argmin(axis=1)
        for k, kid in enumerate(kids):
            sub = sel[which == k]
            if len(sub):
                descend(kid, sub)

    descend("330400", idx)
    return out


def grid_cells(admin: AdminGeometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centres (x, y) of the placement grid inside Jiaxing and the village code of each."""
    minx, miny, maxx, maxy = admin.polygons["330400"].bounds
    xs = np.arange(minx + CELL_M / 2, maxx, CELL_M)
    ys = np.arange(miny + CELL_M / 2, maxy, CELL_M)
    gx, gy = np.meshgrid(xs, ys)
    gx, gy = gx.ravel(), gy.ravel()
    inside = shapely.contains_xy(admin.polygons["330400"], gx, gy)
    gx, gy = gx[inside], gy[inside]
    return gx, gy, locate(admin, gx, gy)
