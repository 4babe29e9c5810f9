"""`jx-pipeline serve`: the real OGC API Features server (tipg under uvicorn) over the published marts, as
jx_platform_reader on 127.0.0.1, read through plain HTTP (GeoJSON) and through GDAL's OAPIF driver."""

import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from jx_pipeline.lib import localpg
from jx_pipeline.lib.pg import connect
from jx_pipeline_tests.conftest import JX, free_port, run_cli
from jx_pipeline_tests.dagster_procs import wait_for_http
from jx_pipeline_tests.published import OGR_TYPE, summary

LIMIT = 10000  # tipg's largest page


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=60) as r:
        return json.loads(r.read())


@pytest.fixture(scope="module")
def server(published, tmp_path_factory):
    port = free_port()
    env = {**os.environ, "JX_WAREHOUSE_URL": published.owner_url}
    log = (tmp_path_factory.mktemp("serve") / "serve.log").open("w")
    proc = subprocess.Popen(
        [JX, "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base}/healthz", proc, Path(log.name), 90)
        yield base
    finally:
        if proc.poll() is None:  # ended already: wait_for_http's failure (with the log) is the one to see
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


def test_collections_are_the_spatial_marts_and_nothing_else(published, server):
    ids = {c["id"] for c in _get(f"{server}/collections")["collections"]}
    assert ids == {f"mart.{t}" for t in published.spatial}
    with pytest.raises(urllib.error.HTTPError) as refused:
        _get(f"{server}/collections/core.admin_unit/items")
    assert refused.value.code == 404


def test_geojson_of_every_spatial_mart_has_its_row_count(published, server):
    for table, (kind, _srid) in sorted(published.spatial.items()):
        page = _get(f"{server}/collections/mart.{table}/items?f=geojson&limit={LIMIT}")
        assert page["type"] == "FeatureCollection"
        assert page["numberMatched"] == published.rows[table] > 0, table
        assert len(page["features"]) == min(published.rows[table], LIMIT), table
        types = {f["geometry"]["type"] for f in page["features"]}
        assert kind == "GEOMETRY" or types == {OGR_TYPE[kind].replace(" ", "")}, (table, types)


def test_the_server_reads_as_the_reader_role(published, server):
    _get(f"{server}/collections/mart.admin_unit_profile/items?limit=1")
    database = published.owner_url.rsplit("/", 1)[1]
    with connect(published.owner_url) as conn:
        users = {
            u for (u,) in conn.execute("select usename from pg_stat_activity where datname = %s", (database,))
        }
    assert "jx_platform_reader" in users


def test_gdal_oapif_reads_a_mart_through_the_server(published, server, tmp_path):
    localpg.ensure_packages(["gdal-bin"], why="GDAL's OAPIF driver, a real OGC API client")
    env = {"PATH": "/usr/bin:/bin"}
    source = f"OAPIF:{server}"
    listing = subprocess.run(
        ["ogrinfo", "-ro", "-q", source], capture_output=True, text=True, env=env, timeout=120
    )
    assert listing.returncode == 0, listing.stderr
    assert {f"mart.{t}" for t in published.spatial} <= set(listing.stdout.split())
    table = "admin_unit_profile"
    info = subprocess.run(
        ["ogrinfo", "-ro", "-so", source, f"mart.{table}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert info.returncode == 0, info.stderr
    seen = summary(info.stdout)
    assert (seen["count"], seen["type"]) == (published.rows[table], OGR_TYPE[published.spatial[table][0]])
    copy = tmp_path / "oapif.gpkg"  # every feature through the server's pages
    done = subprocess.run(
        ["ogr2ogr", "-f", "GPKG", str(copy), source, f"mart.{table}", "-nln", table],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    info = subprocess.run(
        ["ogrinfo", "-ro", "-so", str(copy), table], capture_output=True, text=True, timeout=60
    )
    assert summary(info.stdout)["count"] == published.rows[table]


def test_serve_without_the_reader_says_how_to_fix_it(published):
    done = run_cli(
        "serve",
        "--port",
        str(free_port()),
        env={"JX_WAREHOUSE_URL": published.owner_url, "JX_READER_PASSWORD": "not-the-pw-5821"},
    )
    assert done.returncode == 2
    assert "cannot connect as jx_platform_reader" in done.stderr and "jx-pipeline db up" in done.stderr
    assert "not-the-pw-5821" not in done.stderr
