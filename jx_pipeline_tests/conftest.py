"""Tests run against the real PostgreSQL + PostGIS that ``make test`` started (or JX_* URLs point at), in
databases of their own, created here and dropped at the end: ``make test`` never writes the demo's warehouse,
Dagster storage or state, and the session fails if the demo's databases changed while it ran (db_snapshot).

Under pytest-xdist (``make test`` runs a process per core) the controller runs no test: it only guards the demo,
before any worker starts and after all have finished, and its exit status is the run's. Each worker is a session
of its own (databases, state folder, pseudonym secret), started from the controller's environment, which the
controller leaves as it found it but for ``JX_DB_PREFIX`` (the demo's is passed on as ``JX_TEST_DEMO_PREFIX``).
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

# Before settings is imported: the local cluster's databases of this session are jx_test_<pid>_*, so that CLI
# runs in LOCAL_MODE (no external URLs) use them too, never the demo's jx_*.
DEMO_PREFIX = os.environ.get("JX_TEST_DEMO_PREFIX") or os.environ.get("JX_DB_PREFIX") or "jx"
TEST_PREFIX = f"jx_test_{os.getpid()}"
os.environ.update({"JX_TEST_DEMO_PREFIX": DEMO_PREFIX, "JX_DB_PREFIX": TEST_PREFIX})
WORKER = os.environ.get("PYTEST_XDIST_WORKER")  # set by pytest-xdist in its workers, before this import

from jx_pipeline.lib import settings  # noqa: E402
from jx_pipeline.lib.errors import JxError  # noqa: E402
from jx_pipeline.lib.pg import connect  # noqa: E402
from jx_pipeline_tests.db_snapshot import database_exists, differences, files, snapshot  # noqa: E402

assert settings.DB_PREFIX == TEST_PREFIX, "jx_pipeline.lib.settings was imported before the test conftest"
TEST_DBS = (settings.WAREHOUSE_DB, settings.DAGSTER_DB, settings.SOURCES_DB)


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _demo_urls() -> list[str]:
    """The databases ``make demo`` fills: the external URLs, or the local cluster's jx_* databases."""
    ext = settings.external_urls()
    if ext:
        return [*ext, *([os.environ["JX_SOURCE_DB_URL"]] if os.environ.get("JX_SOURCE_DB_URL") else [])]
    cluster = settings.local_cluster()
    return [cluster.url(f"{DEMO_PREFIX}_{kind}") for kind in ("warehouse", "dagster", "sources")]


DEMO_STATE = ("dagster", "dagster_home", "pseudonym.key")


def _drop_leftovers(admin_url: str) -> None:
    """Databases of earlier sessions that were killed before they could drop theirs."""
    with connect(admin_url, autocommit=True) as conn:
        for (name,) in conn.execute(
            "select datname from pg_database where datname like 'jx_test_%'"
        ).fetchall():
            m = re.fullmatch(r"jx_test_(\d+)_(warehouse|dagster|sources)", name)
            if m and int(m[1]) != os.getpid() and not Path(f"/proc/{m[1]}").exists():
                conn.execute(f'drop database if exists "{name}" with (force)')


GUARD = os.environ.get("JX_TEST_DEMO_GUARD") != "0"  # off only on a machine where a demo runs meanwhile


def _demo_snapshot(urls: list[str]) -> dict[str, dict]:
    """Every table of the demo's databases, and the files of its run records, logs and pseudonym key."""
    taken = {f"database {urlsplit(url).path.lstrip('/')}": snapshot(url) for url in urls}
    return taken | {f"state folder {settings.STATE_DIR}": files(settings.STATE_DIR, DEMO_STATE)}


def _guard_demo() -> tuple[list[str], dict[str, dict], str]:
    """The demo's databases that exist (none in a fresh clone), their snapshot, and a URL to create others."""
    demo = _demo_urls()
    admin = demo[0]
    connect(admin).close()
    guarded = [u for u in demo if database_exists(admin, urlsplit(u).path.lstrip("/"))]
    return guarded, (_demo_snapshot(guarded) if GUARD and not WORKER else {}), admin


def _start_session(admin: str) -> str:
    """Create this session's databases and state folder, point the environment at them."""
    _drop_leftovers(admin)
    with connect(admin, autocommit=True) as conn:
        for name in TEST_DBS:
            conn.execute(f'drop database if exists "{name}" with (force)')
            conn.execute(f'create database "{name}"')
    state = tempfile.mkdtemp(prefix=f"{TEST_PREFIX}_")
    os.environ.update(
        {
            "JX_WAREHOUSE_URL": _with_db(admin, settings.WAREHOUSE_DB),
            "JX_DAGSTER_STORAGE_URL": _with_db(admin, settings.DAGSTER_DB),
            "JX_SOURCE_DB_URL": _with_db(admin, settings.SOURCES_DB),
            # Dagster's instance, run artifacts and compute logs, and the pseudonym key: not the demo's
            "JX_DAGSTER_HOME": f"{state}/dagster_home",
            "JX_DAGSTER_ARTIFACTS": f"{state}/dagster",
            "JX_PSEUDONYM_SECRET": f"jx-test-{uuid.uuid4().hex}",
            # schedules and sensors start stopped: a UI started by a test launches no runs of its own
            "JX_AUTOMATION": "off",
        }
    )
    os.environ.update(settings.dagster_env())
    from jx_pipeline.lib import roles

    for (
        role
    ) in roles.ROLES:  # roles are per server: every db up of the session (any state dir) keeps the checkout's
        os.environ.setdefault(role.password_env, role.password())
    return state


DEMO_URLS: list[str] = []
DEMO_BEFORE: dict[str, dict] = {}
ADMIN_URL = SESSION_STATE = ""


def _xdist_controller(session) -> bool:
    return session.config.pluginmanager.hasplugin("dsession")


def pytest_sessionstart(session):
    """Snapshot the demo (not in a worker); then, unless this is the xdist controller, the session's databases,
    migrated and given Dagster's tables by the command a user runs (external URLs: ours)."""
    global DEMO_URLS, DEMO_BEFORE, ADMIN_URL, SESSION_STATE
    try:
        DEMO_URLS, DEMO_BEFORE, ADMIN_URL = _guard_demo()
        if _xdist_controller(session):
            return
        SESSION_STATE = _start_session(ADMIN_URL)
    except JxError as exc:  # pragma: no cover - only when the database is not running
        pytest.exit(exc.render() + "\n(run the suite through `make test`, which starts it)", returncode=2)
    done = subprocess.run([JX, "db", "up"], capture_output=True, text=True, env=dict(os.environ))
    if done.returncode != 0:
        pytest.exit(
            f"jx-pipeline db up on the test databases failed:\n{done.stdout}{done.stderr}", returncode=2
        )


def pytest_sessionfinish(session, exitstatus):
    """Drop this session's databases; fail the session if any table of the demo's databases changed (not in a
    worker: the controller guards the whole run)."""
    if SESSION_STATE:
        with connect(ADMIN_URL, autocommit=True) as conn:
            for name in TEST_DBS:
                conn.execute(f'drop database if exists "{name}" with (force)')
        shutil.rmtree(SESSION_STATE, ignore_errors=True)
    if WORKER or not ADMIN_URL:
        return
    after = _demo_snapshot(DEMO_URLS) if GUARD else {}
    changed = [
        f"{where}: {line}" for where in DEMO_BEFORE for line in differences(DEMO_BEFORE[where], after[where])
    ]
    if changed:
        session.config.get_terminal_writer().line(
            "\nthe demo's databases or state changed during the test session (tests must use their own):\n  "
            + "\n  ".join(changed)
            + "\n(if another process wrote them meanwhile, e.g. make demo or make ui, run the suite again;"
            " JX_TEST_DEMO_GUARD=0 skips this check)",
            red=True,
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


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


@pytest.fixture(scope="session")
def published(world, warehouse_url):
    """A scratch warehouse with its marts refreshed and the roles granted (published.py): for the tests of the
    clients downstream, which only read it."""
    from jx_pipeline_tests.published import build

    with scratch_databases(warehouse_url) as make:
        yield build(world, make(), make(), run_cli)
