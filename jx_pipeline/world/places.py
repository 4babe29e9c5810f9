"""Geographic entities of the synthetic city: 山水林田湖草 natural entities, roads, door-plate address points
(门牌) and buildings, placed on an 80 m grid inside the village they belong to: parcels, ponds and settlements
each own a cell and never overlap; rivers run across several cells.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from jx_pipeline.world import geo, vocab
from jx_pipeline.world.rng import stream

# share of natural entities per type at every scale (山 hills only in 海盐 county)
NATURAL_MIX = {"farmland": 0.50, "river": 0.16, "pond": 0.14, "forest": 0.12, "grassland": 0.07, "hill": 0.01}
TYPE_LABEL = {
    "farmland": "耕地",
    "river": "河道",
    "pond": "坑塘水面",
    "lake": "湖泊",
    "forest": "林地",
    "grassland": "草地",
    "hill": "山体",
}


@dataclass
class AdminUnits:
    """The real division table plus the generated geometry."""

    table: pd.DataFrame  # code, name, level, parent_code, short_name
    geometry: geo.AdminGeometry

    def name(self, code: str) -> str:
        return self._names[code]

    def __post_init__(self) -> None:
        self._names = dict(zip(self.table.code, self.table.name, strict=True))


def _ring(cx, cy, radius, n, rng, jitter):
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = radius * (1 + rng.uniform(-jitter, jitter, n))
    return shapely.Polygon(np.column_stack([cx + r * np.cos(ang), cy + r * np.sin(ang)]))


def _shape(kind: str, cx: float, cy: float, rng: np.random.Generator) -> shapely.Geometry:
    half = geo.CELL_M / 2 - 3
    if kind == "farmland":
        w, h = rng.uniform(0.6, 1.0) * half, rng.uniform(0.5, 1.0) * half
        box = shapely.box(cx - w, cy - h, cx + w, cy + h)
        return shapely.affinity.rotate(box, rng.uniform(-12, 12))
    if kind == "pond":
        return _ring(cx, cy, rng.uniform(0.45, 0.75) * half, 16, rng, 0.15)
    return _ring(cx, cy, rng.uniform(0.6, 0.9) * half, 10, rng, 0.25)


def natural_entities(seed: int, admin: AdminUnits, cells: pd.DataFrame, n_total: int) -> pd.DataFrame:
    """Natural entities in free cells, spread over villages by their free area; rivers span cell chains."""
    rng = stream(seed, "natural")
    free = cells[~cells.settlement].reset_index(drop=True)
    kinds = np.array(list(NATURAL_MIX))
    pick = rng.choice(len(free), size=min(n_total, len(free)), replace=False)
    pick.sort()
    chosen = free.iloc[pick].reset_index(drop=True)
    kind = rng.choice(kinds, size=len(chosen), p=list(NATURAL_MIX.values()))
    haiyan = chosen.village_code.str.startswith("330424")
    kind = np.where((kind == "hill") & ~haiyan, "forest", kind)
    rows = []
    shorts = dict(zip(admin.table.code, admin.table.short_name, strict=True))
    for i, (cx, cy, vil, k) in enumerate(
        zip(chosen.x.to_numpy(), chosen.y.to_numpy(), chosen.village_code.to_numpy(), kind, strict=True)
    ):
        erng = stream(seed, "natural", i)
        if k == "river":
            length = int(erng.integers(3, 12))
            dx = erng.choice([-1.0, 1.0], size=length)  # always moving on: a river never folds onto a point
            dy = erng.choice([-1.0, 0.0, 1.0], size=length) * 0.15
            steps = np.cumsum(np.column_stack([dx, dy]), axis=0) * geo.CELL_M
            origin = np.array([cx, cy])
            line = shapely.LineString(np.vstack([origin, origin + steps]))
            geom = line.buffer(erng.uniform(4, 12), cap_style="flat")
            name = f"{erng.choice(vocab.WATER_STEMS)}{erng.choice(vocab.WATER_STEMS)}{erng.choice(vocab.RIVER_SUFFIXES)}"
        else:
            geom = _shape(k, cx, cy, erng)
            if k == "pond":
                big = erng.random() < 0.15
                k = "lake" if big else "pond"
                name = f"{erng.choice(vocab.WATER_STEMS)}{erng.choice(vocab.WATER_STEMS)}{erng.choice(vocab.POND_SUFFIXES)}"
            elif k == "hill":
                name = str(erng.choice(vocab.HILL_NAMES))
            else:
                name = f"{shorts[vil]}{TYPE_LABEL[k]}{int(erng.integers(1, 60))}号"
        rows.append((k, name, vil, geom))
    df = pd.DataFrame(rows, columns=["entity_type", "name", "village_code", "geom"])
    df.insert(0, "entity_id", [f"N{i:07d}" for i in range(len(df))])
    return df


def settlement_cells(seed: int, admin: AdminUnits, gx, gy, gvil, need: dict[str, int]) -> pd.DataFrame:
    """Mark, per village, the ``need[village]`` cells nearest its seat as settlement (door plates, buildings)."""
    cells = pd.DataFrame({"x": gx, "y": gy, "village_code": gvil})
    settlement = np.zeros(len(cells), dtype=bool)
    seats = admin.geometry.seats
    x, y = cells.x.to_numpy(), cells.y.to_numpy()
    for vil, idx in cells.groupby("village_code").indices.items():
        n = min(need.get(vil, 0), len(idx))
        if n <= 0:
            continue
        sx, sy = seats[vil]
        d = (x[idx] - sx) ** 2 + (y[idx] - sy) ** 2
        settlement[idx[np.argsort(d, kind="stable")[:n]]] = True
    cells["settlement"] = settlement
    return cells


def admin_units(seed: int) -> AdminUnits:
    """The real division table (vendored NBS files) with generated, tessellating geometry."""
    from jx_pipeline.lib import divisions

    rows = [(divisions.CITY_CODE, divisions.CITY_NAME, "city", None)]
    for _file, _row, level, code, name, parent in divisions.read_rows():
        rows.append((code, name, level, parent.ljust(6, "0") if level == "county" else parent))
    table = pd.DataFrame(rows, columns=["code", "name", "level", "parent_code"])
    table["short_name"] = table.name.str.replace(r"(村民委员会|居民委员会|村委会|居委会)$", "", regex=True)
    towns = table[table.level == "town"]
    villages = table[table.level == "village"]
    geometry = geo.build_admin_geometry(
        seed,
        {c: towns.code[towns.parent_code == c].tolist() for c in table.code[table.level == "county"]},
        {t: villages.code[villages.parent_code == t].tolist() for t in towns.code},
        dict(zip(towns.code, towns.name.str.endswith("街道"), strict=True)),
    )
    return AdminUnits(table, geometry)
