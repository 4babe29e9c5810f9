"""Small map previews of the marts for their Dagster asset pages: a PNG drawn with matplotlib, embedded in the
metadata's Markdown as a data: URI so the page shows it without any file server.

Kept small (a few hundred pixels, a 64-colour palette, ~10-40 KB): the image is stored with every
materialization in Dagster's event log. Labels are English (no CJK font is assumed on the machine).
"""

from __future__ import annotations

import base64
import io

import psycopg
import shapely
from psycopg import sql

_NATURAL = ("mountain", "water", "forest", "farmland", "lake", "grassland")


def _figure(width: float = 4.6, height: float = 3.8):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), dpi=72)
    return fig, ax


def _png(fig) -> bytes:
    from matplotlib import pyplot as plt
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB").quantize(64)
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()


def markdown(png: bytes, caption: str) -> str:
    return f"![{caption}](data:image/png;base64,{base64.b64encode(png).decode()})\n\n{caption}"


def _polygons(ax, geoms, colours, edge="none", width=0.0) -> None:
    from matplotlib.collections import PolyCollection

    verts, fill = [], []
    for g, c in zip(geoms, colours, strict=True):
        for part in getattr(g, "geoms", [g]):
            if part.geom_type == "Polygon":
                verts.append(list(part.exterior.coords))
                fill.append(c)
    ax.add_collection(PolyCollection(verts, facecolors=fill, edgecolors=edge, linewidths=width))
    ax.autoscale_view()
    ax.set_aspect(1 / 0.86)  # ~cos(30.7 deg): degrees of longitude are shorter at Jiaxing
    ax.set_xticks([])
    ax.set_yticks([])


def natural_classes(conn: psycopg.Connection) -> bytes | None:
    """The 山水林田湖草 classes of the village with the most natural area, in its boundary (at a town's or a
    county's extent the parcels are too small to see)."""
    top = conn.execute(
        "select unit_code, st_asbinary(st_simplifypreservetopology(geom, 0.0002)) from mart.admin_unit_profile"
        " where level = 'village' order by mountain_area_m2 + water_area_m2 + forest_area_m2 + farmland_area_m2"
        " + lake_area_m2 + grassland_area_m2 desc limit 1"
    ).fetchone()
    if not top:
        return None
    colour = dict(conn.execute("select entity_class, colour from mart.entity_class").fetchall())
    rows = conn.execute(
        "select entity_class, st_asbinary(st_simplifypreservetopology(geom, 0.00002)) from mart.geo_entity_profile"
        " where village_code = %s and entity_class = any(%s)",
        (top[0], list(_NATURAL)),
    ).fetchall()
    fig, ax = _figure()
    _polygons(ax, [shapely.from_wkb(top[1])], ["#f7f7f7"], edge="#222222", width=0.8)
    _polygons(
        ax, [shapely.from_wkb(g) for _, g in rows], [colour[c] for c, _ in rows], edge="#333333", width=0.2
    )
    from matplotlib.patches import Patch

    present = sorted({c for c, _ in rows}, key=_NATURAL.index)
    ax.legend(handles=[Patch(color=colour[c], label=c) for c in present], fontsize=7, loc="lower left")
    ax.set_title(f"Natural classes of village {top[0]} ({len(rows)} entities)", fontsize=9)
    return _png(fig)


def residents_by_village(conn: psycopg.Connection) -> bytes | None:
    """Residents per village (grey: suppressed, fewer than 5)."""
    rows = conn.execute(
        "select residents, st_asbinary(st_simplifypreservetopology(geom, 0.0005)) from mart.admin_unit_profile"
        " where level = 'village'"
    ).fetchall()
    if not rows:
        return None
    from matplotlib import cm, colormaps, colors

    top = max((r for r, _ in rows if r), default=1)
    norm = colors.Normalize(0, top)
    cmap = colormaps["YlOrRd"]
    fill = ["#bdbdbd" if r is None else colors.to_hex(cmap(norm(r))) for r, _ in rows]
    fig, ax = _figure()
    _polygons(ax, [shapely.from_wkb(g) for _, g in rows], fill, edge="white", width=0.1)
    fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.7, label="residents")
    ax.set_title(f"Residents per village ({len(rows)} villages; grey: suppressed)", fontsize=9)
    return _png(fig)


def class_areas(conn: psycopg.Connection) -> bytes | None:
    """Area of each natural class per county (km²), stacked."""
    rows = conn.execute(
        "select s.county_code, s.entity_class, s.area_m2 / 1e6, c.colour from mart.natural_resource_summary s"
        " join mart.entity_class c using (entity_class) order by 1"
    ).fetchall()
    if not rows:
        return None
    counties = sorted({r[0] for r in rows})
    fig, ax = _figure(4.6, 3.0)
    left = dict.fromkeys(counties, 0.0)
    for cls in _NATURAL:
        part = {r[0]: float(r[2]) for r in rows if r[1] == cls}
        colour = next((r[3] for r in rows if r[1] == cls), "#999999")
        ax.barh(
            counties,
            [part.get(c, 0) for c in counties],
            left=[left[c] for c in counties],
            color=colour,
            label=cls,
        )
        for c in counties:
            left[c] += part.get(c, 0)
    ax.set_xlabel("km²")
    ax.legend(fontsize=7)
    ax.set_title("Natural class area per county", fontsize=9)
    return _png(fig)


def link_rates(conn: psycopg.Connection, table: str) -> bytes | None:
    """Share of current records linked to an entity, per department."""
    rows = conn.execute(
        sql.SQL(
            "select department, sum(linked_records)::float / nullif(sum(current_records), 0)"
            " from {} group by 1 order by 2 nulls first"
        ).format(sql.Identifier("mart", table))
    ).fetchall()
    if not rows:
        return None
    fig, ax = _figure(4.6, 4.4)
    ax.barh([r[0] for r in rows], [r[1] or 0 for r in rows], color="#3182bd")
    ax.set_xlim(0, 1)
    ax.tick_params(labelsize=6)
    ax.set_xlabel("linked share of current records")
    ax.set_title("Records attached to the map, per department", fontsize=9)
    return _png(fig)


def class_legend(conn: psycopg.Connection) -> bytes | None:
    rows = conn.execute(
        "select entity_class, class_zh, colour from mart.entity_class order by family desc, 1"
    ).fetchall()
    if not rows:
        return None
    from matplotlib.patches import Rectangle

    fig, ax = _figure(3.0, 2.4)
    for i, (cls, _, colour) in enumerate(rows):
        ax.add_patch(Rectangle((0, -i), 0.8, 0.8, color=colour))
        ax.text(1.0, -i + 0.4, cls, va="center", fontsize=8)
    ax.set_xlim(0, 4)
    ax.set_ylim(-len(rows), 1)
    ax.axis("off")
    return _png(fig)


PREVIEWS = {
    "entity_class": (class_legend, "Colours of the entity classes in the previews."),
    "geo_entity_profile": (
        natural_classes,
        "The 山水林田湖草 classes of the village with the most natural area.",
    ),
    "admin_unit_profile": (residents_by_village, "Residents per village (grey: suppressed, fewer than 5)."),
    "natural_resource_summary": (class_areas, "Area of each 山水林田湖草 class per county, km²."),
    "feed_link_coverage": (lambda c: link_rates(c, "feed_link_coverage"), "Linked share per department."),
    "department_coverage": (lambda c: link_rates(c, "feed_link_coverage"), "Linked share per department."),
}


def preview(conn: psycopg.Connection, name: str) -> str | None:
    """The Markdown preview of a mart (None for a mart without one, or with no rows to draw)."""
    if name not in PREVIEWS:
        return None
    draw, caption = PREVIEWS[name]
    png = draw(conn)
    return None if png is None else markdown(png, caption)
