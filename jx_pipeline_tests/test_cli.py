"""The jx-pipeline command against the running local cluster or the external URLs."""

from jx_pipeline.lib.migrations import discover
from jx_pipeline.lib.pg import connect
from jx_pipeline_tests.conftest import run_cli


def test_db_status_and_url(warehouse_url):
    status = run_cli("db", "status")
    assert status.returncode == 0, status.stderr
    assert (
        f"migrations    : {[m.version for m in discover()]}" in status.stdout
        and "postgis       : 3." in status.stdout
    )
    assert warehouse_url.split(":")[2].split("@")[0] not in status.stdout  # password masked
    url = run_cli("db", "url")
    assert url.returncode == 0 and url.stdout.strip() == warehouse_url
    with connect(url.stdout.strip()) as conn:
        assert conn.execute("select current_database()").fetchone()[0] == warehouse_url.rsplit("/", 1)[1]


def test_db_up_twice_is_a_no_op():
    done = run_cli("db", "up")
    assert done.returncode == 0, done.stderr
    assert "warehouse migrations applied: none pending" in done.stdout
    assert "creating" not in done.stdout and "created database" not in done.stdout


def test_db_env_exports_what_dagster_needs():
    out = run_cli("db", "env").stdout
    for key in ("JX_WAREHOUSE_URL", "JX_DAGSTER_STORAGE_URL", "DAGSTER_HOME", "JX_DAGSTER_ARTIFACTS"):
        assert f"export {key}=" in out


def test_external_urls_use_existing_postgres_and_install_nothing(make_scratch_db, tmp_path):
    wh_url, dg_url = make_scratch_db(), make_scratch_db()
    env = {
        "JX_WAREHOUSE_URL": wh_url,
        "JX_DAGSTER_STORAGE_URL": dg_url,
        "JX_STATE_DIR": str(tmp_path),
        "JX_PG_BINDIR": str(tmp_path / "nobin"),
    }
    done = run_cli("db", "up", env=env)
    assert done.returncode == 0, done.stderr
    assert f"warehouse migrations applied: {[m.version for m in discover()]}" in done.stdout
    assert not (tmp_path / "pg").exists()
    with connect(wh_url) as conn:
        assert conn.execute("select to_regclass('core.admin_unit')").fetchone()[0] == "core.admin_unit"
    with connect(dg_url) as conn:  # Dagster's storage tables are created up front
        assert conn.execute("select to_regclass('runs')").fetchone()[0] == "runs"


def test_address_parse_answers_a_typed_line_at_once():
    """On a terminal each line is answered before the next is typed (piped input is read in chunks)."""
    import json
    import os
    import pty
    import select
    import subprocess

    from jx_pipeline_tests.conftest import JX

    main, side = pty.openpty()
    proc = subprocess.Popen(
        [JX, "address", "parse", "--gazetteer", "none"], stdin=side, stdout=subprocess.PIPE
    )
    try:
        os.write(main, "海宁工人路108号\n".encode())
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "no answer before end of input"
        assert json.loads(proc.stdout.readline())["county_code"] == "330481"
    finally:
        os.write(main, b"\x04")
        proc.wait(30)
        os.close(main)
        os.close(side)
