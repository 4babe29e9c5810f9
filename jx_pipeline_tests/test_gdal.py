"""Real downstream clients, connected as jx_platform_reader: GDAL (`ogrinfo`, `ogr2ogr` to a GeoPackage) reads
every spatial mart with its geometry type, EPSG:4490, its row count and its extent; SQLAlchemy reads the service
catalog. gdal-bin is installed with apt-get when missing (localpg.ensure_packages), as PostgreSQL is."""

import re
import subprocess
from urllib.parse import unquote, urlsplit

import pytest
import sqlalchemy as sa
from psycopg import sql

from jx_pipeline.lib import localpg
from jx_pipeline.lib.errors import JxError
from jx_pipeline.lib.pg import connect
from jx_pipeline_tests.published import OGR_TYPE, summary


@pytest.fixture(scope="module")
def gdal():
    localpg.ensure_packages(["gdal-bin"], why="GDAL, the downstream client these tests read the marts with")


def _pg(url: str) -> tuple[str, dict]:
    """GDAL's PG: connection string and the environment with the password (GDAL echoes its connection string)."""
    u = urlsplit(url)
    conn = (
        f"PG:host={u.hostname} port={u.port or 5432} dbname={u.path.lstrip('/')} user={unquote(u.username)}"
    )
    return conn, {"PGPASSWORD": unquote(u.password or "")}


def _ogr(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", **env}, timeout=120
    )


def _owner_view(published, table: str) -> dict:
    """What the owner's own SQL says about the table: the figures GDAL must reproduce."""
    kind, srid = published.spatial[table]
    with connect(published.owner_url) as conn:
        n, *ext = conn.execute(
            sql.SQL(
                "select count(*), st_xmin(st_extent(geom)), st_ymin(st_extent(geom)),"
                " st_xmax(st_extent(geom)), st_ymax(st_extent(geom)) from {}"
            ).format(sql.Identifier("mart", table))
        ).fetchone()
    return {"type": OGR_TYPE[kind], "count": n, "epsg": srid, "extent": ext if n else None}


def _close(a, b) -> bool:
    return (a is None and b is None) or (
        a is not None and b is not None and max(map(abs, (x - y for x, y in zip(a, b, strict=True)))) < 1e-5
    )


def test_every_spatial_mart_is_a_reader_layer(published):
    marts = set(published.spatial)
    assert {"geo_entity_profile", "admin_unit_profile"} <= marts
    assert all(srid == 4490 for _, srid in published.spatial.values())
    with connect(published.owner_url) as conn:  # every table of schema mart with a geometry column
        geometric = {
            t
            for (t,) in conn.execute(
                "select distinct table_name from information_schema.columns c"
                " join pg_type ty on ty.typname = c.udt_name"
                " where table_schema = 'mart' and ty.typname = 'geometry'"
            ).fetchall()
        }
    assert geometric == marts


def test_ogrinfo_reads_every_spatial_mart_as_the_reader(gdal, published):
    conn, env = _pg(published.reader_url)
    assert "jx_platform_reader" in conn
    listing = _ogr("ogrinfo", "-ro", "-q", f"{conn} schemas=mart", env=env)  # as the README tells clients
    assert listing.returncode == 0, listing.stderr
    layers = set(re.findall(r"^\d+: (\S+)", listing.stdout, re.M))
    assert layers == set(published.spatial), listing.stdout
    for table in sorted(published.spatial):
        done = _ogr("ogrinfo", "-ro", "-so", conn, f"mart.{table}", env=env)
        assert done.returncode == 0, done.stderr
        seen, expected = summary(done.stdout), _owner_view(published, table)
        assert seen["count"] > 0 and seen["count"] == published.rows[table] == expected["count"], table
        assert (seen["type"], seen["epsg"]) == (expected["type"], 4490), table
        assert _close(seen["extent"], expected["extent"]), (table, seen["extent"], expected["extent"])


def test_ogr2ogr_copies_every_spatial_mart_to_a_geopackage(gdal, published, tmp_path):
    conn, env = _pg(published.reader_url)
    gpkg = tmp_path / "marts.gpkg"
    for table in sorted(published.spatial):
        done = _ogr(
            "ogr2ogr",
            "-f",
            "GPKG",
            *(["-update"] if gpkg.exists() else []),
            "-nln",
            table,
            str(gpkg),
            conn,
            f"mart.{table}",
            env=env,
        )
        assert done.returncode == 0, done.stderr
    for table in sorted(published.spatial):
        done = _ogr("ogrinfo", "-ro", "-so", str(gpkg), table, env={})
        assert done.returncode == 0, done.stderr
        seen, expected = summary(done.stdout), _owner_view(published, table)
        assert (seen["count"], seen["type"], seen["epsg"]) == (expected["count"], expected["type"], 4490), (
            table
        )
        assert _close(seen["extent"], expected["extent"]), table


def test_gdal_as_the_reader_gets_no_row_outside_mart(gdal, published):
    """Without schemas=mart GDAL lists every geometry table of the database (PostgreSQL's catalog, names
    and comments, is readable by every role); each one outside mart is refused."""
    conn, env = _pg(published.reader_url)
    listing = _ogr("ogrinfo", "-ro", "-q", conn, env=env)
    others = [
        name for name in re.findall(r"^\d+: (\S+)", listing.stdout, re.M) if not name.startswith("mart.")
    ]
    assert "core.admin_unit" in others and any(name.startswith("staged.") for name in others), listing.stdout
    for name in others:
        done = _ogr("ogrinfo", "-ro", "-so", conn, name, env=env)
        schema = name.split(".")[0]
        assert f"permission denied for schema {schema}" in done.stderr, name  # (ogrinfo still exits 0)
        assert not re.search(r"Feature Count: [1-9]", done.stdout), name  # no row came through


def test_sqlalchemy_reads_the_service_catalog_as_the_reader(published):
    u = urlsplit(published.reader_url)
    engine = sa.create_engine(published.reader_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as c:
            assert (
                c.execute(sa.text("select current_user")).scalar()
                == unquote(u.username)
                == "jx_platform_reader"
            )
            service = sa.Table("data_service", sa.MetaData(), schema="mart", autoload_with=c)
            rows = {r.service_id: r for r in c.execute(sa.select(service))}
            with pytest.raises(sa.exc.ProgrammingError, match="permission denied for schema core"):
                c.execute(sa.text("select count(*) from core.admin_unit"))
    finally:
        engine.dispose()
    assert set(rows) == set(published.rows)  # one catalog row per mart, each with its row count
    assert {k: r.row_count for k, r in rows.items()} == published.rows
    for table, (kind, srid) in published.spatial.items():
        assert (rows[table].geometry_type, rows[table].srid) == (kind, srid), table


def test_missing_package_without_apt_names_it_and_the_fix():
    with pytest.raises(JxError) as err:
        localpg.ensure_packages(["jx-no-such-package"], install=False, why="a test")
    assert "missing system package (a test): jx-no-such-package" in str(err.value)
    assert "apt-get install -y --no-install-recommends jx-no-such-package" in err.value.fix
