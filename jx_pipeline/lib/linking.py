"""Attaching every staged record to a geographic entity, by the strongest evidence it carries.

In order: its address resolved to a door plate (exact standardized key, or a one-character typo fixed inside the
block), the entity of its name inside its village (natural entities), its coordinates (inside a natural entity's
polygon, or the nearest door plate within 30 m), and its identity (the entity most often linked for the same ID
number or credit code in any feed). A record whose address names a place outside the city is kept as
``outside_city`` and never attached to a local entity. Otherwise it stays unmatched — kept and counted. One row
per record in ``core.entity_link`` with the method and a score.
"""

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from jx_pipeline.catalog.schema import Catalog, Feed
from jx_pipeline.lib import address, locks, staging

NEAREST_M = 30
NATURAL = ("farmland", "river", "forest", "pond", "grassland", "lake", "hill")


@dataclass
class Record:
    feed_id: str
    record_key: str
    address: str | None
    lon: float | None
    lat: float | None
    identity: str | None
    entity_name: str | None
    village_name: str | None


def alive(feed: Feed) -> sql.Composable:
    """True for a current version that is not a deletion (an increment's D, or the deleted flag)."""
    mapped = set(feed.columns.values())
    cond = sql.SQL("true")
    if "change_type" in mapped:
        cond = sql.SQL("coalesce(change_type, '') <> 'D'")
    if "deleted" in mapped:
        cond = sql.SQL("{} and not coalesce(deleted, false)").format(cond)
    return cond


def current_records(conn: psycopg.Connection, feed: Feed) -> list[Record]:
    """The latest version of every record of a feed that is not deleted."""
    mapped = set(feed.columns.values())
    latest = staging.current(conn, feed)
    if latest is None:
        return []

    def col(name: str) -> sql.Composable:
        return sql.Identifier(name) if name in mapped else sql.SQL("null")

    ident = sql.SQL("coalesce({}, {})").format(col("id_number"), col("credit_code"))
    rows = conn.execute(
        sql.SQL(
            "select record_key, {addr}, {lon}, {lat}, {ident}, {name}, {village}, {alive} from {latest}"
        ).format(
            addr=col("address"),
            lon=col("lon"),
            lat=col("lat"),
            ident=ident,
            name=col("entity_name"),
            village=col("village_name"),
            alive=alive(feed),
            latest=latest,
        )
    ).fetchall()
    return [Record(feed.id, *r[:7]) for r in rows if r[7]]


def _by_coordinates(conn: psycopg.Connection, records: list[Record]) -> dict[tuple, tuple[str, str, float]]:
    """(feed, key) -> (entity, method, score) from coordinates: natural polygons first, then door plates."""
    pts = [r for r in records if r.lon is not None and r.lat is not None]
    if not pts:
        return {}
    conn.execute(
        "create temp table link_pt (feed_id text, record_key text, geom geometry(Point, 4490)) on commit drop"
    )
    with conn.cursor().copy("copy link_pt from stdin") as copy:
        for r in pts:
            copy.write_row((r.feed_id, r.record_key, f"SRID=4490;POINT({r.lon} {r.lat})"))
    conn.execute("create index on link_pt using gist (geom)")
    out = {}
    for feed_id, key, entity in conn.execute(
        "select p.feed_id, p.record_key, e.entity_id from link_pt p join core.geo_entity e"
        " on e.entity_type = any(%s) and st_intersects(e.geom, p.geom)",
        (list(NATURAL),),
    ).fetchall():
        out[(feed_id, key)] = (entity, "coordinate_polygon", 1.0)
    for feed_id, key, entity, dist in conn.execute(
        """select p.feed_id, p.record_key, a.entity_id,
                  st_distance(st_transform(a.geom, 4549), st_transform(p.geom, 4549))
             from link_pt p cross join lateral (
                  select entity_id, geom from core.address_point order by geom <-> p.geom limit 1) a"""
    ).fetchall():
        if (feed_id, key) not in out and dist <= NEAREST_M:
            out[(feed_id, key)] = (entity, "coordinate_nearest", round(1 - dist / NEAREST_M / 2, 3))
    return out


def _natural_by_name(conn: psycopg.Connection) -> dict[tuple[str, str], str]:
    rows = conn.execute(
        "select village_code, name, entity_id from core.geo_entity where entity_type = any(%s) and name is not null",
        (list(NATURAL),),
    ).fetchall()
    return {(v, n): e for v, n, e in rows}


def link(conn: psycopg.Connection, catalog: Catalog, before_commit: Callable | None = None) -> Counter:
    """Rebuild ``core.entity_link`` from the current staged records; returns the count per method.
    ``before_commit(conn)`` (the asset's check) runs in the rebuild's own snapshot before it commits, so a
    staged load committed meanwhile cannot make the check compare two different moments.

    One rebuild at a time (the ``core`` lock), from one snapshot of every feed: staged loads wait while the
    records are read, then go on while addresses are parsed; the rebuild commits as a whole."""
    with locks.exclusive(conn, "core"), locks.staged_snapshot(conn) as release:
        records = [r for f in catalog.feeds for r in current_records(conn, f)]
        release()
        parser = address.from_warehouse(conn)
        natural = _natural_by_name(conn)
        kind = dict(conn.execute("select entity_id, entity_type from core.geo_entity").fetchall())
        village_of = dict(conn.execute("select entity_id, village_code from core.geo_entity").fetchall())
        links: dict[tuple, tuple[str | None, str, float]] = {}
        outside: set[tuple] = set()
        by_coord = _by_coordinates(conn, records)
        for r in records:
            k = (r.feed_id, r.record_key)
            if r.address:
                p = parser.parse(r.address)
                if p.outside:  # another city's place: no local entity, not even through identity
                    outside.add(k)
                    continue
                if p.entity_id:
                    links[k] = (
                        p.entity_id,
                        "address_fuzzy" if p.fuzzy else "address_exact",
                        0.9 if p.fuzzy else 1.0,
                    )
                    continue
            if r.entity_name and r.village_name:
                code = parser.parse(r.village_name).village_code or parser.villages_of_city.get(
                    r.village_name
                )
                e = natural.get((code, r.entity_name)) if code else None
                if e:
                    links[k] = (e, "name_in_village", 1.0)
                    continue
            if k in by_coord:
                links[k] = by_coord[k]
        # identity: borrow the entity most often linked for the same ID number or credit code
        votes: dict[str, Counter] = defaultdict(Counter)
        for r in records:
            hit = links.get((r.feed_id, r.record_key))
            if r.identity and hit and hit[1] != "identity":
                votes[r.identity][hit[0]] += 1
        for r in records:
            k = (r.feed_id, r.record_key)
            if k not in links and k not in outside and r.identity and votes.get(r.identity):
                entity, n = votes[r.identity].most_common(1)[0]
                links[k] = (entity, "identity", round(n / sum(votes[r.identity].values()), 3))
        conn.execute("delete from core.entity_link")
        with conn.cursor().copy(
            "copy core.entity_link (feed_id, record_key, entity_id, entity_type, village_code, method, score)"
            " from stdin"
        ) as copy:
            for r in records:
                k = (r.feed_id, r.record_key)
                entity, method, score = links.get(
                    k, (None, "outside_city" if k in outside else "unmatched", 0.0)
                )
                copy.write_row(
                    (r.feed_id, r.record_key, entity, kind.get(entity), village_of.get(entity), method, score)
                )
        unmatched = len(records) - len(links) - len(outside)
        if before_commit:
            before_commit(conn)
        return Counter(m for _, m, _ in links.values()) + Counter(
            outside_city=len(outside), unmatched=unmatched
        )
