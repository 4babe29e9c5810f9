"""Bad set-ups end in one clear line naming what is wrong (password masked) and the fixing command."""

import socket

import pytest

from jx_pipeline.lib import localpg
from jx_pipeline.lib.errors import JxError, mask_url
from jx_pipeline.lib.pg import connect
from jx_pipeline_tests.conftest import LOCAL_MODE, free_port, run_cli


def _assert_clear(done, *needles):
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith("jx-pipeline: error: ") and lines[1].startswith("  fix: "), done.stderr
    for needle in needles:
        assert needle in done.stderr, done.stderr


def test_mask_url_hides_passwords_only():
    assert mask_url("postgresql://u:s3cr%40t@h:5/db") == "postgresql://u:***@h:5/db"
    assert mask_url("postgresql+psycopg2://u:p@h/db and host=h password=p2 user=u") == (
        "postgresql+psycopg2://u:***@h/db and host=h password=*** user=u"
    )
    assert mask_url("postgresql://u@h/db") == "postgresql://u@h/db"


def test_unreachable_database_error_masks_the_password():
    url = f"postgresql://jx:sekret-pw@127.0.0.1:{free_port()}/nowhere"
    with pytest.raises(JxError) as err:
        connect(url)
    assert "sekret-pw" not in str(err.value)
    assert f"postgresql://jx:***@127.0.0.1:{url.split(':')[3].split('/')[0]}/nowhere" in err.value.message
    assert err.value.fix.startswith("jx-pipeline db up")


def test_cli_on_unreachable_external_database(tmp_path):
    port = free_port()
    done = run_cli(
        "db",
        "up",
        env={
            "JX_WAREHOUSE_URL": f"postgresql://u:sekret-pw@127.0.0.1:{port}/wh",
            "JX_DAGSTER_STORAGE_URL": f"postgresql://u:sekret-pw@127.0.0.1:{port}/dg",
            "JX_STATE_DIR": str(tmp_path),
        },
    )
    _assert_clear(done, "cannot connect", f"127.0.0.1:{port}", "u:***@")
    assert "sekret-pw" not in done.stderr + done.stdout
    assert not (tmp_path / "pg").exists()  # external mode starts nothing


def test_cli_with_only_one_external_url():
    done = run_cli(
        "db",
        "status",
        env={"JX_WAREHOUSE_URL": "postgresql://u:p@127.0.0.1/wh", "JX_DAGSTER_STORAGE_URL": ""},
    )
    _assert_clear(done, "JX_DAGSTER_STORAGE_URL is not set")


def test_port_already_taken(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(JxError, match=f"port {port} on 127.0.0.1 is already taken"):
            localpg.check_port_free("127.0.0.1", port)
        done = run_cli("db", "up", env={**LOCAL_MODE, "JX_STATE_DIR": str(tmp_path), "JX_PG_PORT": str(port)})
    _assert_clear(done, f"port {port} on 127.0.0.1 is already taken", f"JX_PG_PORT={port + 1}")
    assert (tmp_path / "pg" / "data" / "PG_VERSION").exists()  # the cluster was created, just not started


def test_missing_system_package(tmp_path):
    done = run_cli(
        "db",
        "up",
        env={
            **LOCAL_MODE,
            "JX_STATE_DIR": str(tmp_path),
            "JX_PG_BINDIR": str(tmp_path / "nobin"),
            "JX_NO_INSTALL": "1",
        },
    )
    _assert_clear(
        done, "missing system package: PostgreSQL 15 server", "apt-get install", "postgresql-15-postgis-3"
    )


def test_missing_local_cluster(tmp_path):
    done = run_cli("db", "url", env={**LOCAL_MODE, "JX_STATE_DIR": str(tmp_path)})
    _assert_clear(done, "has not been created", "jx-pipeline db up")
