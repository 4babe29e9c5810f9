"""core.entity_provenance: from a geographic entity back to the exact landing-file rows its records came from,
checked against the files themselves (read here with the csv module, not by the pipeline's readers)."""

import csv
import uuid
from collections import defaultdict

import dagster as dg
import psycopg
import pytest

from jx_pipeline.catalog import load_catalog
from jx_pipeline.defs.admin import assets as admin
from jx_pipeline.defs.entities import assets as entities
from jx_pipeline.lib import identity, ingest, linking, marts, roles, staging
from jx_pipeline.lib.migrations import migrate
from jx_pipeline.lib.pg import connect
from jx_pipeline.lib.warehouse import WarehouseResource
from jx_pipeline_tests.conftest import WORLD_DAYS

DAYS = [f"2026-11-{d:02d}" for d in range(1, WORLD_DAYS + 2)]
# CSV feeds of persons and organisations with addresses; tjj_fdcxm and zwfw_bjxx deliver split days (_part2)
FEEDS = ("gaj_ldrk", "wjw_csyxzm", "swj_grsds", "zwfw_bjxx", "tjj_fdcxm")
LINEAGE_ONLY = {
    "entity_id", "feed_id", "department", "record_key", "link_method", "link_score", "current_version",
    "landing_day", "source_file", "source_path", "row_number", "row_id", "in_raw", "quarantined",
    "staged_batch_id", "raw_batch_id",
}  # fmt: skip


@pytest.fixture(scope="module")
def core(world, make_scratch_db_module):
    """A scratch warehouse: the gazetteer, five feeds loaded and staged for every landing day, linked, identities
    resolved and the marts refreshed."""
    url = make_scratch_db_module()
    with connect(url) as conn:
        migrate(conn)
        roles.grant(conn)  # as `jx-pipeline db up` does
    assets = [admin.raw_admin_division, admin.raw_admin_boundary, admin.core_admin_unit]
    assets += [entities.core_geo_entity, entities.core_address_point]
    assert dg.materialize(assets, resources={"warehouse": WarehouseResource(url=url)}).success
    catalog = load_catalog()
    feeds = [f for f in catalog.feeds if f.id in FEEDS]
    with connect(url) as conn:
        for feed in feeds:
            for day in DAYS:
                ingest.load_partition(conn, feed, day, "t", world=world, first_partition=DAYS[0])
                staging.stage_partition(conn, feed, day, "t")
        chosen = catalog.model_copy(update={"feeds": feeds})
        linking.link(conn, chosen)
        identity.resolve(conn, chosen)
        marts.refresh(conn, chosen)
        conn.commit()
    return url, {f.id: f for f in feeds}


def _file_rows(world, feed, wanted: set[str]) -> dict[str, list[tuple[str, str, int, list[str]]]]:
    """Every row of the feed's landing files whose key is wanted: key -> [(day, file, row number, values)],
    in delivery order (days, then files by name, then rows; the header is row 1)."""
    found = defaultdict(list)
    key_at = list(feed.columns).index(feed.column_for("record_key"))
    encoding = "utf-8-sig" if feed.source.encoding == "utf-8" else feed.source.encoding
    for day in DAYS:
        folder = world / "landing" / feed.department / feed.id / day
        for path in sorted(folder.glob("*.csv")) if folder.exists() else []:
            with path.open(encoding=encoding, newline="") as fh:
                reader = csv.reader(fh, delimiter=feed.source.delimiter)
                header = next(reader)
                assert header == list(feed.columns), path
                for number, values in enumerate(reader, start=2):
                    if values[key_at].strip() in wanted:
                        found[values[key_at].strip()].append((day, path.name, number, values))
    return found


def _follow(conn, world, feeds, entity_id: str) -> list[tuple]:
    """Follow one entity to its rows and check each against the landing files; returns the provenance rows."""
    cur = conn.execute("select * from core.entity_provenance(%s)", (entity_id,))
    cols = [d.name for d in cur.description]
    rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    assert set(cols) == LINEAGE_ONLY  # lineage and keys, no personal data of the records
    # the records: exactly those linked to the entity (by any method)
    linked = set(
        conn.execute(
            "select feed_id, record_key from core.entity_link where entity_id = %s", (entity_id,)
        ).fetchall()
    )
    assert linked and {(r["feed_id"], r["record_key"]) for r in rows} == linked
    # the mart row's record counts are the current versions followed here
    counted = conn.execute(
        "select records_population + records_legal_person + records_economy + records_other"
        " from mart.geo_entity_profile where entity_id = %s",
        (entity_id,),
    ).fetchone()[0]
    assert counted == sum(r["current_version"] for r in rows) > 0
    for feed_id in {r["feed_id"] for r in rows}:
        feed = feeds[feed_id]
        mine = [r for r in rows if r["feed_id"] == feed_id]
        in_files = _file_rows(world, feed, {r["record_key"] for r in mine})
        for key, occurrences in in_files.items():
            # staging keeps a key's last delivery of each day: one version per landing day it was delivered on
            last_per_day = {day: (day, name, number) for day, name, number, _ in occurrences}
            got = {
                (str(r["landing_day"]), r["source_file"], r["row_number"])
                for r in mine
                if r["record_key"] == key
            }
            assert got == set(last_per_day.values()), (feed_id, key)
            current = [r for r in mine if r["record_key"] == key and r["current_version"]]
            assert [
                (str(current[0]["landing_day"]), current[0]["source_file"], current[0]["row_number"])
            ] == [max(last_per_day.values())]
        assert set(in_files) == {r["record_key"] for r in mine}
        for r in mine:
            assert r["department"] == feed.department and r["in_raw"] and r["quarantined"] is None
            path = world / "landing" / feed.department / feed_id / str(r["landing_day"]) / r["source_file"]
            assert r["source_path"] == str(path)
            # the raw row named is that file row, value for value
            raw = conn.execute(
                psycopg.sql.SQL("select {} from raw.{} where _partition = %s and _row_id = %s").format(
                    psycopg.sql.SQL(", ").join(psycopg.sql.Identifier(c.lower()) for c in feed.columns),
                    psycopg.sql.Identifier(feed_id),
                ),
                (str(r["landing_day"]), r["row_id"]),
            ).fetchone()
            values = next(v for d, n, k, v in in_files[r["record_key"]] if (d, n, k) == (
                str(r["landing_day"]), r["source_file"], r["row_number"]))  # fmt: skip
            assert [x or "" for x in raw] == values, (feed_id, r)
    return rows


def test_an_entity_leads_back_to_the_exact_landing_file_rows(core, world):
    url, feeds = core
    with connect(url) as conn:
        # rows of the mart: the busiest door plate with a record changed on a later day, and one with a row from
        # a split delivery (population counts published, not suppressed)
        busiest = conn.execute(
            "select entity_id from mart.geo_entity_profile where not records_population_suppressed"
            " order by records_population + records_legal_person + records_economy + records_other desc, 1"
            " limit 40"
        ).fetchall()
        changed = next(
            e
            for (e,) in busiest
            if conn.execute(
                "select count(*) filter (where not current_version) from core.entity_provenance(%s)", (e,)
            ).fetchone()[0]
        )
        rows = _follow(conn, world, feeds, changed)
        assert {r["landing_day"].isoformat() for r in rows} > {DAYS[0]}  # an earlier and a later version
        split = conn.execute(
            "select l.entity_id from core.entity_link l join staged.zwfw_bjxx s using (record_key)"
            " join mart.geo_entity_profile p using (entity_id)"
            " where l.feed_id = 'zwfw_bjxx' and s._source_file like '%%_part2.csv'"
            " and not p.records_population_suppressed order by 1 limit 1"
        ).fetchone()[0]
        rows = _follow(conn, world, feeds, split)
        assert any(r["source_file"].endswith("_part2.csv") for r in rows)


def test_a_raw_row_that_is_gone_shows(core):
    """The raw side is read, not assumed: a raw row deleted by hand is reported as not in raw."""
    url, _feeds = core
    with connect(url) as conn, conn.transaction(force_rollback=True):
        entity, feed_id, partition, row_id = conn.execute(
            "select l.entity_id, l.feed_id, s._partition, s._row_id from core.entity_link l"
            " join staged.gaj_ldrk s using (record_key) where l.feed_id = 'gaj_ldrk' and l.entity_id is not null"
            " order by 1 limit 1"
        ).fetchone()
        before = conn.execute(
            "select count(*) filter (where not in_raw) from core.entity_provenance(%s)", (entity,)
        ).fetchone()[0]
        conn.execute("delete from raw.gaj_ldrk where _partition = %s and _row_id = %s", (partition, row_id))
        gone = conn.execute(
            "select feed_id, landing_day::text, row_id from core.entity_provenance(%s) where not in_raw",
            (entity,),
        ).fetchall()
        assert before == 0 and gone == [(feed_id, partition, row_id)]


def test_not_executable_by_public_only_by_a_granted_role(core):
    """PUBLIC cannot run it, nor can the platform's reader; jx_engineer and any role granted it follow lineage
    without a right on raw or staged (the function runs as its owner)."""
    url, _ = core
    role = f"jx_test_prov_{uuid.uuid4().hex[:8]}"
    with connect(url) as conn, conn.transaction(force_rollback=True):
        entity = conn.execute(
            "select entity_id from core.entity_link where entity_id is not null limit 1"
        ).fetchone()[0]
        conn.execute(f'create role "{role}" nologin')  # dropped with the rollback
        conn.execute(f'grant usage on schema core to "{role}"')
        assert not conn.execute(
            "select has_function_privilege(%s, 'core.entity_provenance(text)', 'execute')", (role,)
        ).fetchone()[0]
        # db up's grants (the session made the roles): the engineer may run it, the platform's reader may not
        granted = dict(
            conn.execute(
                "select rolname, has_function_privilege(rolname, 'core.entity_provenance(text)', 'execute')"
                " from pg_roles where rolname in ('jx_engineer', 'jx_platform_reader')"
            ).fetchall()
        )
        assert granted == {"jx_engineer": True, "jx_platform_reader": False}
        conn.execute(f'set local role "{role}"')
        with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
            conn.execute("select * from core.entity_provenance(%s)", (entity,))
        conn.execute("reset role")
        conn.execute(f'grant execute on function core.entity_provenance(text) to "{role}"')
        conn.execute(f'set local role "{role}"')
        n = conn.execute("select count(*) from core.entity_provenance(%s)", (entity,)).fetchone()[0]
        with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
            conn.execute("select count(*) from staged.gaj_ldrk")
        conn.execute("reset role")
        assert (
            n
            == conn.execute(
                "select count(*) from core.entity_link l join lateral (select 1 from staged.gaj_ldrk s"
                " where s.record_key = l.record_key union all select 1 from staged.wjw_csyxzm s"
                " where s.record_key = l.record_key union all select 1 from staged.swj_grsds s"
                " where s.record_key = l.record_key union all select 1 from staged.zwfw_bjxx s"
                " where s.record_key = l.record_key union all select 1 from staged.tjj_fdcxm s"
                " where s.record_key = l.record_key) v on true where l.entity_id = %s",
                (entity,),
            ).fetchone()[0]
        )
