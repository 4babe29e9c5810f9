"""The marts on the test world: built from a real core (a few feeds of every domain loaded, staged, linked and
resolved), checked against independent counts and PostGIS's own geodesic areas, scanned for personal data (and
proven able to find it), small counts suppressed, the service catalog's check broken on purpose, and the Dagster
assets' metadata (row count, column schema, table name, a PNG map preview)."""

import base64
import io
import re
import threading
import time

import dagster as dg
import psycopg
import pytest

from jx_pipeline.catalog import load_catalog
from jx_pipeline.defs.mart import checks
from jx_pipeline.lib import marts, marts_privacy
from jx_pipeline.lib.pg import connect
from jx_pipeline_tests.conftest import WORLD_DAYS, run_cli

DAYS = ["2026-11-01", "2026-11-02"][: min(WORLD_DAYS, 1)]  # one landing day: enough records, a quick fixture
FEEDS = (
    "gaj_hjrk",  # registered residents: persons with ID, address
    "gaj_ldrk",  # floating population
    "scjgj_qydj",  # enterprises
    "swj_nsrdj",  # taxpayers
    "swj_zzssb",  # VAT returns (economy, linked through the credit code)
    "zrzyj_gdbh",  # farmland parcels (name in village, coordinates)
    "gaj_jq110",  # police incidents (coordinates)
)


@pytest.fixture(scope="module")
def built(world, warehouse_url, source_url):
    """Reference, entities, the FEEDS for every day, links and identities, then the marts."""
    from jx_pipeline.defs.admin import assets as admin
    from jx_pipeline.defs.entities import assets as entities
    from jx_pipeline.lib import identity, ingest, linking, staging
    from jx_pipeline.lib.warehouse import WarehouseResource

    catalog = load_catalog()
    assets = [admin.raw_admin_division, admin.raw_admin_boundary, admin.core_admin_unit]
    assets += [entities.core_geo_entity, entities.core_address_point]
    assert dg.materialize(assets, resources={"warehouse": WarehouseResource(url=warehouse_url)}).success
    with connect(warehouse_url) as conn:
        for feed in (_feed(catalog, f) for f in FEEDS):
            for day in DAYS:
                ingest.load_partition(
                    conn, feed, day, "t", world=world, source_url=source_url, first_partition=DAYS[0]
                )
                staging.stage_partition(conn, feed, day, "t")
        linking.link(conn, catalog)
        identity.resolve(conn, catalog)
        counts = marts.refresh(conn, catalog)
    return catalog, counts


def _feed(catalog, feed_id):
    return next(f for f in catalog.feeds if f.id == feed_id)


def test_refresh_publishes_every_mart_with_its_row_count(built, wh):
    _, counts = built
    assert set(counts) == set(marts.MARTS)
    for name, n in counts.items():
        assert wh.execute(f"select count(*) from mart.{name}").fetchone()[0] == n, name
    assert counts["geo_entity_profile"] == wh.execute("select count(*) from core.geo_entity").fetchone()[0]
    assert (
        counts["admin_unit_profile"]
        == wh.execute(
            "select count(*) from core.admin_unit where level in ('county', 'town', 'village')"
        ).fetchone()[0]
    )
    assert counts["feed_link_coverage"] == len(built[0].feeds)
    # nothing built aside is left behind, nor the refresh's working tables
    assert not wh.execute("select relname from pg_class where relname like '%%\\_\\_next%%'").fetchall()
    assert [wh.execute("select to_regclass(%s)", (t,)).fetchone()[0] for t in marts.WORK] == [None] * len(
        marts.WORK
    )


def test_the_pipeline_connects_with_jit_off(wh, warehouse_url):
    """lib/pg.py's SESSION_OPTIONS: JIT compiled the marts' recount over 40 feeds for longer than it ran."""
    assert wh.execute("show jit").fetchone() == ("off",)
    with psycopg.connect(warehouse_url) as plain:  # the server's own default
        assert plain.execute("show jit").fetchone() == ("on",)


def test_every_table_and_column_has_a_chinese_and_english_comment(built, wh):
    rows = wh.execute(
        """select c.relname, a.attname, col_description(c.oid, a.attnum), obj_description(c.oid, 'pg_class')
             from pg_class c join pg_namespace n on n.oid = c.relnamespace
             join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
            where n.nspname = 'mart' and c.relkind = 'r'"""
    ).fetchall()
    assert {r[0] for r in rows} == set(marts.MARTS)
    bilingual = re.compile(r"^[^\x00-\x7f].* — .*[A-Za-z]{3}")  # 中文标题 — English description
    missing = [f"{t}.{c}" for t, c, doc, _ in rows if not doc or not bilingual.match(doc)]
    assert not missing, missing
    assert all(bilingual.match(tdoc) for _, _, _, tdoc in rows)


def test_geometries_are_cgcs2000_with_a_gist_index(built, wh):
    spatial = wh.execute(
        "select f_table_name, type, srid from geometry_columns where f_table_schema = 'mart'"
    ).fetchall()
    assert {t for t, _, _ in spatial} == {
        "geo_entity_profile",
        "admin_unit_profile",
        "natural_resource_summary",
    }
    assert all(srid == 4490 for _, _, srid in spatial)
    assert dict((t, g) for t, g, _ in spatial)["admin_unit_profile"] == "MULTIPOLYGON"
    for table, _, _ in spatial:
        idx = wh.execute(
            "select indexdef from pg_indexes where schemaname = 'mart' and tablename = %s and indexdef ~ 'gist'",
            (table,),
        ).fetchall()
        assert idx and "(geom)" in idx[0][0], table


def test_areas_are_metric_and_class_areas_are_intersections(built, wh):
    """Areas in EPSG:4549 agree with PostGIS's geodesic area on the CGCS2000 ellipsoid (geography) within 0.1 %;
    a unit's class area is the intersection's area, not whole entities counted by centroid."""
    worst = wh.execute(
        """select max(abs(p.area_m2 - st_area(e.geom::geography)) / st_area(e.geom::geography))
             from mart.geo_entity_profile p join core.geo_entity e using (entity_id) where p.area_m2 > 0"""
    ).fetchone()[0]
    assert worst < 0.001
    expected = dict(
        wh.execute(
            """select u.code, sum(st_area(st_intersection(e.geom, u.geom)::geography))
                 from core.admin_unit u join core.geo_entity e on e.entity_type = 'farmland'
                  and st_intersects(e.geom, u.geom)
                where u.level = 'town' group by 1"""
        ).fetchall()
    )
    got = dict(
        wh.execute(
            "select unit_code, farmland_area_m2 from mart.admin_unit_profile where level = 'town'"
        ).fetchall()
    )
    assert expected and all(abs(float(got[k]) - v) <= 0.001 * v + 1 for k, v in expected.items())
    assert sum(float(v) for v in got.values()) == pytest.approx(sum(expected.values()), rel=0.001)


def test_checks_pass_on_the_built_marts(built, wh):
    catalog, _ = built
    results = {(r.asset_key.path[-1], r.check_name): r for r in checks.evaluate(wh, catalog)}
    assert {k for k, r in results.items() if not r.passed} == set(), {
        k: r.metadata for k, r in results.items() if not r.passed
    }
    assert results[("admin_unit_profile", "residents_add_up")].metadata["persons_in_core"].value > 100


def test_entity_sizes_are_kept_until_an_entity_or_a_unit_is_written(built, warehouse_url):
    """The entities' classes, places and sizes (staged._mart_entity, _mart_class_area) are made again only when
    core.geo_entity or core.admin_unit was written since (a rename shows in the profile), when their tally is
    gone (as after a crash) or on a full refresh; kept, the marts equal a full refresh's."""
    catalog = built[0]
    profiles = "select md5(string_agg(t::text, '|' order by t::text)) from mart.{} t"

    with connect(warehouse_url) as conn:

        def made(full: bool = False) -> bool:
            stats = {}
            marts.refresh(conn, catalog, full=full, stats=stats)
            conn.commit()
            return stats["entities_made"]

        def kept_table() -> int:
            return conn.execute("select 'staged._mart_entity'::regclass::oid").fetchone()[0]

        def digests() -> list:
            names = ("geo_entity_profile", "admin_unit_profile", "natural_resource_summary")
            return [conn.execute(profiles.format(n)).fetchone()[0] for n in names]

        made()
        table = kept_table()
        assert made() is False and kept_table() == table
        kept = digests()
        assert made(full=True) is True and digests() == kept
        entity, name = conn.execute(
            "select entity_id, name from core.geo_entity where entity_type = 'farmland' order by 1 limit 1"
        ).fetchone()
        renamed = "select name from mart.geo_entity_profile where entity_id = %s"
        try:
            conn.execute("update core.geo_entity set name = %s where entity_id = %s", (name + "X", entity))
            conn.commit()
            assert made() is True and conn.execute(renamed, (entity,)).fetchone()[0] == name + "X"
            assert made() is False
            conn.execute(
                "update core.admin_unit set name = name where code = (select min(code) from core.admin_unit)"
            )
            conn.commit()
            assert made() is True  # a write, though of the same values
            conn.execute("delete from staged._key_tally where relid = 'core.admin_unit'::regclass")
            conn.commit()
            assert made() is True  # no tally: not known whether it was written
            assert made() is False
        finally:
            conn.execute("update core.geo_entity set name = %s where entity_id = %s", (name, entity))
            conn.commit()
        assert made() is True and conn.execute(renamed, (entity,)).fetchone()[0] == name
        assert digests() == kept


def test_pii_scan_finds_nothing_and_finds_what_is_planted(built, wh):
    """The published marts hold no ID number, mobile number or person's name; the same scan finds each kind
    when a value is planted (in a transaction rolled back afterwards)."""
    assert marts_privacy.scan(wh) == []
    idno, name = wh.execute(
        "select id_number, name from core.person where id_number is not null and length(name) >= 2"
        " and name not in (select name from core.geo_entity where name is not null) limit 1"
    ).fetchone()
    try:
        wh.execute("update mart.geo_entity_profile set name = %s where entity_id = (select min(entity_id)"
                   " from mart.geo_entity_profile)", (name,))  # fmt: skip
        wh.execute("update mart.feed_link_coverage set quarantine_reasons = array['x', %s]"
                   " where feed_id = 'gaj_hjrk'", (f"行{idno}",))  # fmt: skip
        wh.execute(
            """update mart.admin_unit_profile set organisations_by_type = organisations_by_type
                   || jsonb_build_object('contact', '联系 13912345678') where unit_code = (
                   select min(unit_code) from mart.admin_unit_profile)"""
        )
        found = {(f.table, f.column, f.kind) for f in marts_privacy.scan(wh)}
        assert found == {
            ("geo_entity_profile", "name", "person_name"),
            ("feed_link_coverage", "quarantine_reasons", "id_number"),
            ("admin_unit_profile", "organisations_by_type", "mobile_phone"),
        }
        failed = {r.asset_key.path[-1] for r in checks.evaluate(wh, built[0]) if not r.passed}
        assert failed == {"geo_entity_profile", "feed_link_coverage", "admin_unit_profile"}
    finally:
        wh.rollback()


def _png(metadata) -> bytes:
    data = re.search(r"data:image/png;base64,([A-Za-z0-9+/=]+)", metadata.value)
    return base64.b64decode(data[1])


def test_small_counts_are_suppressed(built, wh, warehouse_url):
    """Two persons moved (their population links re-pointed) onto a door plate where nobody lives: that door
    plate's residents are published as null with residents_suppressed; put back, the count is published."""
    catalog, _ = built
    with connect(warehouse_url) as conn:
        empty = conn.execute(
            """select entity_id from mart.geo_entity_profile where entity_class = 'door_plate' and residents = 0
                  and records_by_department = '{}'
                order by entity_id limit 1"""
        ).fetchone()[0]
        people = [
            k
            for (k,) in conn.execute(
                """select m.master_key from core.identity_member m
                     join core.entity_link l using (feed_id, record_key)
                    where m.kind = 'person' and l.feed_id = any(%s) and l.entity_id is not null
                    group by 1 order by 1 limit 2""",
                ([f.id for f in catalog.feeds if f.domain == "population"],),
            ).fetchall()
        ]
        moved = conn.execute(
            """update core.entity_link l set entity_id = %s from core.identity_member m
                where m.feed_id = l.feed_id and m.record_key = l.record_key and m.kind = 'person'
                  and m.master_key = any(%s) and l.entity_id is not null
            returning l.feed_id, l.record_key, (select entity_id from core.entity_link o
                where o.feed_id = l.feed_id and o.record_key = l.record_key)""",
            (empty, people),
        ).fetchall()
        conn.commit()
        try:
            marts.refresh(conn, catalog)
            row = conn.execute(
                "select residents, residents_suppressed, records_population, records_population_suppressed,"
                " records_by_department from mart.geo_entity_profile where entity_id = %s",
                (empty,),
            ).fetchone()
            assert row[:4] == (None, True, None, True)
            assert "gaj" not in row[4]  # the population records' department count would tell them apart
            assert marts_privacy.small_counts(conn, "geo_entity_profile", marts.SUPPRESS_BELOW) == {
                "residents": 0,
                "households": 0,
                "records_population": 0,
            }
            # the check sees a planted small count
            conn.execute("update mart.geo_entity_profile set residents = 3 where entity_id = %s", (empty,))
            assert (
                marts_privacy.small_counts(conn, "geo_entity_profile", marts.SUPPRESS_BELOW)["residents"] == 1
            )
            conn.rollback()
        finally:
            with conn.cursor() as cur:
                cur.executemany(
                    "update core.entity_link set entity_id = %s where feed_id = %s and record_key = %s",
                    [(old, f, k) for f, k, old in moved],
                )
            conn.commit()
            marts.refresh(conn, catalog)
    assert not wh.execute("select residents_suppressed from mart.geo_entity_profile where entity_id = %s",
                          (empty,)).fetchone()[0]  # fmt: skip


def test_catalog_check_fails_when_a_mart_or_a_row_is_missing(built, wh):
    assert not any(checks.catalog_problems(wh).values())
    try:
        wh.execute("create table mart.stray (id int)")
        wh.execute("delete from mart.data_service where service_id = 'natural_resource_summary'")
        wh.execute("update mart.data_service set row_count = row_count + 1 where service_id = 'entity_class'")
        wh.execute("insert into mart.data_service select 'gone', title_zh, title_en, description, null, null,"
                   " null, 0, now(), '{}', '{}', null from mart.data_service limit 1")  # fmt: skip
        assert checks.catalog_problems(wh) == {
            "tables_without_catalog_row": ["natural_resource_summary", "stray"],
            "catalog_rows_without_table": ["gone"],
            "row_count_wrong": ["entity_class: catalog 10, table 9"],
        }
    finally:
        wh.rollback()


def test_assets_materialize_with_metadata_previews_and_checks(built, warehouse_url):
    from PIL import Image

    from jx_pipeline.defs.mart import assets
    from jx_pipeline.lib.warehouse import WarehouseResource

    defs = assets.build_defs()
    res = dg.materialize(list(defs.assets), resources={"warehouse": WarehouseResource(url=warehouse_url)})
    assert res.success
    mats = {e.asset_key.path[-1]: e.materialization.metadata for e in res.get_asset_materialization_events()}
    assert set(mats) == set(marts.MARTS)
    with connect(warehouse_url) as conn:
        for name, meta in mats.items():
            assert (
                meta["dagster/row_count"].value
                == conn.execute(f"select count(*) from mart.{name}").fetchone()[0]
            )
            assert meta["dagster/table_name"].value.endswith(f".mart.{name}")
            cols = [c.name for c in meta["dagster/column_schema"].schema.columns]
            assert cols and all(c.description for c in meta["dagster/column_schema"].schema.columns), name
    for name in (
        "geo_entity_profile",
        "admin_unit_profile",
        "natural_resource_summary",
        "feed_link_coverage",
    ):
        png = _png(mats[name]["preview"])
        img = Image.open(io.BytesIO(png))
        assert img.format == "PNG" and 150 < img.width < 800 and len(png) < 60_000, (name, img.size, len(png))
        assert len(set(img.convert("RGB").getdata())) > 4  # a drawing, not a blank square
    evaluations = {(e.asset_key.path[-1], e.check_name): e.passed for e in res.get_asset_check_evaluations()}
    assert len(evaluations) == len(checks.specs()) and all(evaluations.values()), evaluations
    residents = next(e for e in res.get_asset_check_evaluations() if e.check_name == "residents_add_up")
    assert residents.metadata["persons_counted"].value.startswith("aside"), residents.metadata  # lib/aside.py
    assert residents.metadata["persons_in_core"].value > 0

    # a table in mart that the catalog does not describe: the blocking check fails
    with connect(warehouse_url) as conn:
        conn.execute("create table mart.stray_table (id int)")
        conn.commit()
    try:
        res = dg.materialize(
            list(defs.assets),
            resources={"warehouse": WarehouseResource(url=warehouse_url)},
            raise_on_error=False,
        )
        failed = {
            (e.asset_key.path[-1], e.check_name) for e in res.get_asset_check_evaluations() if not e.passed
        }
        assert failed == {("data_service", "catalog_matches_marts")}
    finally:
        with connect(warehouse_url) as conn:
            conn.execute("drop table mart.stray_table")
            conn.commit()


def _reader_url(owner_url: str) -> tuple[str, str]:
    """The platform's read-only role (made by `db up`), or the owner when this build has no roles."""
    done = run_cli("db", "url", "--reader", env={"JX_WAREHOUSE_URL": owner_url})
    if done.returncode == 0 and done.stdout.strip():
        return done.stdout.strip(), "jx_platform_reader"
    return owner_url, "owner"  # pragma: no cover - before the roles existed


COUNTS = """select (select count(*) from mart.geo_entity_profile), (select count(*) from mart.admin_unit_profile),
                   (select count(*) from mart.feed_link_coverage), (select count(*) from mart.data_service),
                   'mart.geo_entity_profile'::regclass::oid"""


def _reading(url: str, seen: list, errors: list, stop: threading.Event) -> threading.Thread:
    def loop():
        with psycopg.connect(url, autocommit=True) as conn:
            while not stop.is_set():
                try:
                    seen.append(conn.execute(COUNTS).fetchone())
                except psycopg.Error as e:
                    errors.append(f"{type(e).__name__}: {e}")

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


def test_a_reader_never_sees_a_half_built_or_empty_mart(built, warehouse_url):
    """A reader (jx_platform_reader) counts the marts' rows in a loop while they are rebuilt twice: every read
    sees the full tables, before or after a swap, never an error or an empty one. The same loop does see a
    naive rebuild (rename, create, fill in separate statements) — the test can fail."""
    catalog, counts = built
    url, role = _reader_url(warehouse_url)
    with psycopg.connect(url) as conn:
        assert conn.execute("select current_user").fetchone()[0] == (
            "jx_platform_reader" if role != "owner" else conn.info.user
        )
    full = (
        counts["geo_entity_profile"],
        counts["admin_unit_profile"],
        counts["feed_link_coverage"],
        counts["data_service"],
    )
    seen, errors, stop = [], [], threading.Event()
    reader = _reading(url, seen, errors, stop)
    try:
        time.sleep(0.3)
        with connect(warehouse_url) as conn:
            for _ in range(2):
                marts.refresh(conn, catalog)
        time.sleep(0.3)
    finally:
        stop.set()
        reader.join(10)
    assert not errors, errors[:3]
    assert len(seen) > 20
    assert {row[:4] for row in seen} == {full}
    assert len({row[4] for row in seen}) == 3  # the reader read the first build, and both rebuilds

    # control: the same reader against a rebuild that is not atomic sees an empty mart
    seen, errors, stop = [], [], threading.Event()
    reader = _reading(url, seen, errors, stop)
    try:
        time.sleep(0.3)
        with psycopg.connect(warehouse_url, autocommit=True) as conn:
            conn.execute("alter table mart.feed_link_coverage rename to feed_link_coverage_old")
            conn.execute("create table mart.feed_link_coverage (like mart.feed_link_coverage_old)")
            time.sleep(0.5)
            conn.execute("insert into mart.feed_link_coverage select * from mart.feed_link_coverage_old")
            conn.execute("drop table mart.feed_link_coverage_old")
        time.sleep(0.3)
    finally:
        stop.set()
        reader.join(10)
    assert any(row[2] == 0 for row in seen) or errors
    with connect(warehouse_url) as conn:
        marts.refresh(conn, catalog)  # as built, for the other tests


def test_a_quarantined_partition_is_left_out_and_said(built, warehouse_url):
    """A partition in quality.quarantine (lib/quarantine.py) is left out of the marts even before linking runs
    again: its feed's records are not counted, feed_link_coverage says which partition and why; with every
    population feed quarantined no resident is left; cleared, all is back."""
    catalog, _ = built
    reason = "id_number: 9 of 200 fail the checksum"
    population = [f for f in catalog.feeds if f.domain == "population"]
    totals = "select coalesce(sum(residents), 0) from mart.admin_unit_profile where level = 'county'"
    with connect(warehouse_url) as conn:
        before = conn.execute(
            "select current_records from mart.feed_link_coverage where feed_id = 'gaj_hjrk'"
        ).fetchone()[0]
        residents = conn.execute(totals).fetchone()[0]
        gaj_before = conn.execute(
            "select partitions_quarantined from mart.department_coverage where department = 'gaj'"
        ).fetchone()[0]
        # every landing day of every population feed in this warehouse (other tests may have staged more days)
        days: dict[str, list[str]] = {}
        for feed in population:
            if conn.execute("select to_regclass(%s)", (f'staged."{feed.id}"',)).fetchone()[0] is None:
                continue
            days[feed.id] = [
                d for (d,) in conn.execute(f'select distinct _partition from staged."{feed.id}" order by 1')
            ]
            for day in days[feed.id]:
                conn.execute(
                    "insert into quality.quarantine (feed_id, department, partition_key, check_name, reason)"
                    " values (%s, %s, %s, 'test/marts', %s)",
                    (feed.id, feed.department, day, reason),
                )
        conn.commit()
        try:
            marts.refresh(conn, catalog)
            row = conn.execute(
                "select current_records, linked_records, partitions_quarantined, quarantine_reasons"
                " from mart.feed_link_coverage where feed_id = 'gaj_hjrk'"
            ).fetchone()
            assert before > 0 and row[:3] == (0, 0, len(days["gaj_hjrk"]))
            assert row[3] == [f"{d}: test/marts: {reason}" for d in days["gaj_hjrk"]]
            gaj = sum(len(v) for k, v in days.items() if k.startswith("gaj_"))
            assert (
                conn.execute(
                    "select partitions_quarantined from mart.department_coverage where department = 'gaj'"
                ).fetchone()[0]
                == gaj_before + gaj
            )
            # a resident is a person with a population record: none is left when all of them are left out
            assert residents > 0 and conn.execute(totals).fetchone()[0] == 0
            results = {(r.asset_key.path[-1], r.check_name): r.passed for r in checks.evaluate(conn, catalog)}
            assert all(results.values()), results
            conn.rollback()
        finally:
            conn.execute("delete from quality.quarantine where check_name = 'test/marts'")
            conn.commit()
            marts.refresh(conn, catalog)
        assert (
            conn.execute(
                "select current_records from mart.feed_link_coverage where feed_id = 'gaj_hjrk'"
            ).fetchone()[0]
            == before
        )
        assert conn.execute(totals).fetchone()[0] == residents


def test_the_refresh_bench_reads_a_day_again_and_leaves_the_marts_as_they_were(built, warehouse_url):
    """bench/mart_refresh.py: each day round reads again exactly the records it noted (here the module's one
    landing day holds them all), the changed records' way; the full round reads every record; the marts' digests
    are the same after every round (the bench fails itself when they differ)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parents[1] / "bench" / "mart_refresh.py"
    done = subprocess.run(
        [sys.executable, str(bench), "--rounds", "2", "--warehouse", warehouse_url],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    *rounds, summary = [json.loads(line) for line in done.stdout.splitlines()]
    with connect(warehouse_url) as conn:
        current = conn.execute("select count(*) from staged._mart_record").fetchone()[0]
    days, full = rounds[:-1], rounds[-1]
    assert len(days) == 2 and all(r["mode"] == "changed records" for r in days)
    assert all(0 < r["noted"] == r["records_read"] <= current for r in days), days
    assert full["mode"] == "every record" and full["records_read"] == current
    assert len({json.dumps(r["marts"], sort_keys=True) for r in rounds}) == 1
    assert summary["records_read"] == days[0]["records_read"]
    assert summary["full_refresh_s"] == full["seconds"]


def test_the_rebuilds_keep_their_working_tables_where_parallel_workers_read_them(built, warehouse_url, wh):
    """Linking, identity resolution and the marts' refresh run again (lib/work_schema.py): before each commits,
    one of its working tables is unlogged in the rebuild's own schema, and a table made there as the rebuild
    makes its own (a bare name; a run that changed nothing leaves some of its own empty) can be read by
    parallel workers. After it, neither the schema nor a table is left anywhere, in ``public`` neither."""
    from jx_pipeline.lib import identity, linking, work_schema
    from jx_pipeline_tests.test_work_schema import workers_planned

    catalog = built[0]
    where = (
        "select n.nspname, c.relpersistence from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where c.relname = %s"
    )
    public = "select count(*) from pg_class where relnamespace = 'public'::regnamespace"
    tables_before = wh.execute(public).fetchone()[0]
    seen = {}

    def probe(table: str):
        def look(conn) -> None:
            conn.execute("create unlogged table probe_rows as select g from generate_series(1, 50000) g")
            conn.execute("analyze probe_rows")
            seen[table] = (
                conn.execute(where, (table,)).fetchall(),
                conn.execute(where, ("probe_rows",)).fetchall(),
                workers_planned(conn, "probe_rows"),
            )
            conn.execute("drop table probe_rows")

        return look

    with connect(warehouse_url) as conn:
        linking.link(conn, catalog, before_commit=probe("link_rec"))
        identity.resolve(conn, catalog, before_commit=probe("ident_person"))
        marts.refresh(conn, catalog, before_commit=probe("mart_resident"))
    schemas = {
        "link_rec": work_schema.LINKING,
        "ident_person": work_schema.IDENTITY,
        "mart_resident": work_schema.MARTS,
    }
    for table, schema in schemas.items():
        assert seen[table][:2] == ([(schema, "u")], [(schema, "u")]), seen
        assert seen[table][2] >= 1, seen
        assert wh.execute(where, (table,)).fetchall() == []
        assert wh.execute("select to_regnamespace(%s)", (schema,)).fetchone() == (None,)
    assert wh.execute(public).fetchone()[0] == tables_before
