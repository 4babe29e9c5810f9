"""Tests run against the real PostgreSQL + PostGIS that ``make test`` started (or JX_* URLs point at)."""

import os
import socket
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from jx_pipeline.lib import settings
from jx_pipeline.lib.errors import JxError
from jx_pipeline.lib.pg import connect

try:
    os.environ.update(settings.dagster_env())
    connect(os.environ["JX_WAREHOUSE_URL"]).close()
except JxError as exc:  # pragma: no cover - only when the database is not running
    pytest.exit(exc.render() + "\n(run the suite through `make test`, which starts it)", returncode=2)

JX = str(Path(sys.executable).with_name("jx-pipeline"))


WORLD_SCALE, WORLD_SEED, WORLD_DAYS = 0.001, 11, 2


@pytest.fixture(scope="session", autouse=True)
def world(tmp_path_factory) -> Path:
    """One small generated world for the session; JX_WORLD_DIR points every asset (and subprocess) at it."""
    from jx_pipeline.world import generate

    out = tmp_path_factory.mktemp("world") / "w"
    opts = generate.Options(out=out, scale=WORLD_SCALE, seed=WORLD_SEED, days=WORLD_DAYS, progress=False)
    generate.generate(opts, log=lambda m: None)
    os.environ["JX_WORLD_DIR"] = str(out)
    return out


@pytest.fixture(scope="session")
def warehouse_url() -> str:
    return os.environ["JX_WAREHOUSE_URL"]


@pytest.fixture(scope="session")
def dagster_url() -> str:
    return os.environ["JX_DAGSTER_STORAGE_URL"]


@pytest.fixture
def wh(warehouse_url):
    with connect(warehouse_url) as conn:
        yield conn


@contextmanager
def scratch_databases(warehouse_url: str):
    """Creates new, empty databases on the same server (dropped afterwards); each call returns a URL."""
    base, names = warehouse_url.rsplit("/", 1)[0], []

    def make() -> str:
        names.append(f"jx_test_{uuid.uuid4().hex[:10]}")
        with connect(warehouse_url, autocommit=True) as conn:
            conn.execute(f'create database "{names[-1]}"')
        return f"{base}/{names[-1]}"

    try:
        yield make
    finally:
        with connect(warehouse_url, autocommit=True) as conn:
            for name in names:
                conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
def make_scratch_db(warehouse_url):
    with scratch_databases(warehouse_url) as make:
        yield make


@pytest.fixture(scope="module")
def make_scratch_db_module(warehouse_url):
    with scratch_databases(warehouse_url) as make:
        yield make


def catalog_with(tmp_path: Path, mutate) -> Path:
    """A copy of the shipped catalog changed by ``mutate(doc)``, written to tmp_path (for JX_CATALOG / load_catalog)."""
    import yaml

    from jx_pipeline.catalog import DEFAULT_CATALOG

    doc = yaml.safe_load(DEFAULT_CATALOG.read_text(encoding="utf-8"))
    mutate(doc)
    path = tmp_path / "feeds.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def source_url(world, make_scratch_db_module) -> str:
    """The world's department source databases, loaded into a scratch database."""
    from jx_pipeline.catalog import load_catalog
    from jx_pipeline.world.sourcedb import load

    url = make_scratch_db_module()
    load(world, url, load_catalog())
    return url


@pytest.fixture
def scratch_db(make_scratch_db) -> str:
    return make_scratch_db()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


LOCAL_MODE = {"JX_WAREHOUSE_URL": None, "JX_DAGSTER_STORAGE_URL": None}


def run_cli(
    *args: str, env: dict | None = None, timeout: int = 300, input: str | None = None
) -> subprocess.CompletedProcess:
    """Run the installed command (``input`` on its stdin); ``env`` values of None remove the variable
    (LOCAL_MODE: no external URLs)."""
    full = {**os.environ, **(env or {})}
    full = {k: v for k, v in full.items() if v is not None}
    return subprocess.run(
        [JX, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full,
        cwd=settings.PROJECT_ROOT,
        input=input,
    )


def table_digest(conn: psycopg.Connection, qualified: str, order_by: str) -> str:
    return conn.execute(
        f"select md5(string_agg(t::text, '|' order by {order_by})) from {qualified} t"
    ).fetchone()[0]
