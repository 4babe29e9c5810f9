"""The suite runs in databases of its own and leaves the demo alone; `make test` fails when nothing ran.

The session-wide proof is conftest's guard: every table of the demo's databases is counted and checksummed
before and after the session, and any difference fails it. These tests show that guard can fail.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from jx_pipeline.lib import roles, settings
from jx_pipeline.lib.pg import connect
from jx_pipeline_tests.conftest import DEMO_PREFIX, LOCAL_MODE, TEST_PREFIX, run_cli
from jx_pipeline_tests.db_snapshot import differences, snapshot


def test_the_session_has_its_own_databases_and_state(warehouse_url, dagster_url):
    names = {url.rsplit("/", 1)[1] for url in (warehouse_url, dagster_url, os.environ["JX_SOURCE_DB_URL"])}
    assert names == {f"{TEST_PREFIX}_warehouse", f"{TEST_PREFIX}_dagster", f"{TEST_PREFIX}_sources"}
    assert not any(n.startswith(f"{DEMO_PREFIX}_") and not n.startswith("jx_test_") for n in names)
    for key in ("DAGSTER_HOME", "JX_DAGSTER_ARTIFACTS"):  # run records, compute logs: not in the demo's .jx
        assert not Path(os.environ[key]).is_relative_to(settings.STATE_DIR), key
    assert (Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml").is_file()


def test_local_mode_commands_use_the_sessions_databases():
    """`jx-pipeline` without external URLs (the local cluster) names its databases from JX_DB_PREFIX."""
    wh = run_cli("db", "url", env=LOCAL_MODE)
    dg = run_cli("db", "url", "--dagster", env=LOCAL_MODE)
    assert wh.returncode == 0 and dg.returncode == 0, wh.stderr + dg.stderr
    assert wh.stdout.strip().endswith(f"/{TEST_PREFIX}_warehouse")
    assert dg.stdout.strip().endswith(f"/{TEST_PREFIX}_dagster")
    up = run_cli("db", "up", env=LOCAL_MODE)  # the session's databases exist and are migrated already
    assert up.returncode == 0, up.stderr
    assert "created database" not in up.stdout and "none pending" in up.stdout


def test_a_bad_db_prefix_is_refused():
    done = run_cli("db", "url", env={**LOCAL_MODE, "JX_DB_PREFIX": 'x"; drop database jx_warehouse; --'})
    assert done.returncode == 2 and "is not a plain database name prefix" in done.stderr, done.stderr


@pytest.mark.parametrize(
    "change",
    [
        "update guarded set v = 'B' where k = 2",
        "insert into guarded values (4, 'c')",
        "delete from guarded where k = 3",
        "insert into guarded values (1, 'a')",  # a repeated row
        "create table other (k int)",
    ],
)
def test_snapshot_sees_any_change(scratch_db, change):
    with connect(scratch_db, autocommit=True) as conn:
        conn.execute("create table guarded (k int, v text)")
        conn.execute("insert into guarded values (1, 'a'), (2, 'b'), (3, 'c')")
        before = snapshot(scratch_db)
        assert differences(before, snapshot(scratch_db)) == []
        conn.execute(change)
    changed = differences(before, snapshot(scratch_db))
    assert len(changed) == 1 and changed[0].startswith(("public.guarded:", "public.other: created")), changed


NESTED_TEST = """
import os
import psycopg

def test_writes_into_the_demo():
    with psycopg.connect(os.environ["GUARD_DEMO_URL"], autocommit=True) as conn:
        conn.execute("update guarded set v = 'changed' where k = 1")
    os.makedirs(os.environ["GUARD_STATE"] + "/dagster", exist_ok=True)
    with open(os.environ["GUARD_STATE"] + "/dagster/compute.log", "w") as fh:
        fh.write("a run of the tests")
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one process", "two xdist workers"])
def test_a_session_that_writes_the_demo_fails(make_scratch_db, tmp_path, workers):
    """A whole pytest session under this conftest, whose 'demo' is a scratch database that one test writes; run
    in one process, and as `make test` runs it, on xdist workers (the controller guards, a worker writes)."""
    demo_wh, demo_dg = make_scratch_db(), make_scratch_db()
    with connect(demo_wh, autocommit=True) as conn:
        conn.execute("create table guarded (k int, v text)")
        conn.execute("insert into guarded values (1, 'a'), (2, 'b')")
    tests = tmp_path / "nested"
    tests.mkdir()
    (tests / "test_nested.py").write_text(textwrap.dedent(NESTED_TEST))
    (tests / "conftest.py").write_text(
        "import pytest\nfrom jx_pipeline_tests.conftest import *  # noqa\n"
        "from jx_pipeline_tests.conftest import pytest_sessionfinish, pytest_sessionstart  # noqa\n"
        "@pytest.fixture(scope='session', autouse=True)\ndef world():\n    return None\n"
    )
    # roles are per server: the nested session keeps this one's passwords, or its `db up` would change them
    keep = {r.password_env for r in roles.ROLES}
    env = {
        k: v
        for k, v in os.environ.items()
        if k in keep
        or not k.startswith(("JX_", "DAGSTER_", "PYTEST_XDIST_"))  # not this session's, nor worker
    }
    state = tmp_path / "demo-state"
    env |= {"JX_WAREHOUSE_URL": demo_wh, "JX_DAGSTER_STORAGE_URL": demo_dg, "JX_STATE_DIR": str(state)}
    env |= {"GUARD_DEMO_URL": demo_wh, "GUARD_STATE": str(state)}
    env["PYTHONPATH"] = str(settings.PROJECT_ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *workers, str(tests)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tests,
        timeout=600,
    )
    out = done.stdout + done.stderr
    assert "1 passed" in out, out  # the test itself passed ...
    assert done.returncode == 1, out  # ... but the session failed, naming the table
    assert "the demo's databases or state changed" in out, out
    assert "public.guarded: 2 -> 2 rows" in out and "dagster/compute.log: created" in out, out
    for role in roles.ROLES:  # the nested session's `db up` left the server's roles as they were
        with connect(roles.url(role, demo_wh)) as conn:
            assert conn.execute("select current_user").fetchone()[0] == role.name


def _make_test(tests: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "-s", "-o", ".venv/.installed", "test", f"PYTEST_ARGS=-p no:cacheprovider {tests}"],
        capture_output=True,
        text=True,
        cwd=settings.PROJECT_ROOT,
        timeout=600,
    )


def test_make_test_fails_when_no_test_is_collected(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    done = _make_test(empty)
    assert done.returncode != 0, done.stdout + done.stderr
    assert "collected no tests" in done.stderr
    one = tmp_path / "one"
    one.mkdir()
    (one / "test_one.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
    done = _make_test(one)
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout + done.stderr
