"""Transient database faults are retried with backoff, data errors are not: PostgreSQL restarted in the middle
of a real `jx-pipeline materialize` run, on a throwaway cluster of this module's own (the shared one is never
restarted). The warehouse lives on it; Dagster's own storage lives on the suite's cluster, because dagster-postgres
does not retry an event write that a restart cuts off (the run then fails whatever our steps do: README,
Guarantees)."""

import os
import threading
import time

import psycopg
import pytest

from jx_pipeline.catalog import load_catalog
from jx_pipeline.definitions import defs
from jx_pipeline.lib import ingest, localpg, retry
from jx_pipeline.lib.errors import JxError
from jx_pipeline.lib.pg import connect
from jx_pipeline.lib.settings import LocalCluster
from jx_pipeline_tests.conftest import catalog_with, free_port
from jx_pipeline_tests.faults import last_run, materialize, wait_for_statement, warehouse_digest

DEPARTMENT = "wjw"  # landing files only (no source database), 7 feeds
DAY = "2026-11-01"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    own = LocalCluster(root=tmp_path_factory.mktemp("own_pg") / "pg", port=free_port())
    localpg.init(own, log=lambda m: None)
    localpg.start(own, log=lambda m: None)
    try:
        yield own
    finally:
        localpg.stop(own)


@pytest.fixture
def dbs(cluster, make_scratch_db):
    """Fresh warehouse and reference warehouse on the own cluster; Dagster storage on the suite's."""
    names = {"wh": "wh", "ref": "wh_ref"}
    with connect(cluster.url("postgres"), autocommit=True) as conn:
        for name in names.values():
            conn.execute(f"drop database if exists {name} with (force)")
            conn.execute(f"create database {name}")
    return {k: cluster.url(v) for k, v in names.items()} | {"dagster": make_scratch_db()}


def _env(dbs, tmp_path, **extra):
    return {
        "JX_WAREHOUSE_URL": dbs["wh"],
        "JX_DAGSTER_STORAGE_URL": dbs["dagster"],
        "JX_SOURCE_DB_URL": "",
        "JX_STATE_DIR": str(tmp_path / "state"),
        **extra,
    }


def _restart(cluster: LocalCluster) -> None:
    """pg_ctl stop -m fast (every session is terminated), then start again: down for a second or two."""
    localpg.stop(cluster)
    localpg.start(cluster, log=lambda m: None)


def test_every_asset_step_retries_with_backoff():
    policies = {a.node_def.name: a.node_def.retry_policy for a in defs.resolve_asset_graph().assets_defs}
    assert policies and all(p == retry.POLICY for p in policies.values()), policies
    assert retry.POLICY.max_retries >= 2 and retry.POLICY.backoff is not None


def test_classifier_retries_database_faults_only(wh):
    with pytest.raises(psycopg.Error) as deadlock:  # a real server error, not a constructed one
        wh.execute("do $$ begin raise exception using errcode = '40P01'; end $$")
    assert retry.transient(deadlock.value)
    wh.rollback()
    with pytest.raises(psycopg.Error) as bad_value:
        wh.execute("select 'x'::int")
    assert not retry.transient(bad_value.value)
    assert not retry.transient(JxError("feed x file y row 3: column(s) ['a'] missing"))
    assert not retry.transient(ValueError("bad input"))


def test_a_restart_in_the_middle_of_a_run_is_retried_and_the_warehouse_is_right(
    world, cluster, dbs, tmp_path
):
    proc = materialize(
        f"tag:jx/ingest=feed and group:{DEPARTMENT}",
        _env(dbs, tmp_path),
        tmp_path / "run.log",
        f"{DAY}...{DAY}",
    )
    try:
        seen = wait_for_statement(dbs["wh"], "wh", r"^\s*copy\s", proc)
        _restart(cluster)  # drops every warehouse connection, the open load transaction among them
        rc = proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
    log = (tmp_path / "run.log").read_text(errors="replace")
    assert rc == 0, f"the run failed after a restart during {seen!r}:\n{log[-3000:]}"
    _, status, events = last_run(dbs["dagster"])
    step = f"raw_{DEPARTMENT}"
    assert status == "SUCCESS"
    assert events.get((step, "STEP_UP_FOR_RETRY"), 0) >= 1 and events[(step, "STEP_SUCCESS")] == 1

    # the reference: the same partition loaded without any fault
    feeds = [f for f in load_catalog().feeds if f.department == DEPARTMENT]
    with connect(dbs["ref"]) as conn:
        from jx_pipeline.lib.migrations import migrate

        migrate(conn)
        for feed in feeds:
            ingest.load_partition(conn, feed, DAY, "reference", world=world, first_partition=DAY)
    got, want = warehouse_digest(dbs["wh"]), warehouse_digest(dbs["ref"])
    assert got == want and got["quality.load_audit"][0] == len(feeds)


def test_a_data_error_is_attempted_once_not_retried(world, cluster, dbs, tmp_path):
    def rename_a_column(doc):  # the catalog names a column the department's files do not have
        feed = next(
            f for f in doc["feeds"] if f["department"] == DEPARTMENT and f["source"]["kind"] == "file"
        )
        fixed = {*feed["key"], feed.get("change_column")}
        source, canonical = next((c, v) for c, v in feed["columns"].items() if c not in fixed)
        feed["columns"] = {k: v for k, v in feed["columns"].items() if k != source} | {
            "NO_SUCH_COLUMN": canonical
        }

    started = time.monotonic()
    proc = materialize(
        f"tag:jx/ingest=feed and group:{DEPARTMENT}",
        _env(dbs, tmp_path, JX_CATALOG=str(catalog_with(tmp_path, rename_a_column))),
        tmp_path / "run.log",
        f"{DAY}...{DAY}",
    )
    assert proc.wait(timeout=300) != 0
    log = (tmp_path / "run.log").read_text(errors="replace")
    _, status, events = last_run(dbs["dagster"])
    step = f"raw_{DEPARTMENT}"
    assert status == "FAILURE"
    assert events[(step, "STEP_START")] == 1 and (step, "STEP_UP_FOR_RETRY") not in events
    assert events[(step, "STEP_FAILURE")] == 1
    assert "['NO_SUCH_COLUMN'] missing" in log and "fix:" in log
    assert time.monotonic() - started < 120  # no backoff waits


def test_a_step_connection_waits_for_a_restarting_server_not_for_a_wrong_password(cluster):
    localpg.stop(cluster)
    starter = threading.Timer(1.5, localpg.start, args=(cluster,), kwargs={"log": lambda m: None})
    starter.start()
    try:
        started = time.monotonic()
        with connect(cluster.url("postgres"), wait=60) as conn:  # refused at first, then accepted
            assert conn.execute("select 1").fetchone() == (1,)
        assert time.monotonic() - started >= 1.0
    finally:
        starter.join()
    started = time.monotonic()
    with pytest.raises(JxError, match="password authentication failed"):
        connect(cluster.url("postgres").replace(cluster.password(), "wrong"), wait=60)
    assert time.monotonic() - started < 10  # waiting cannot fix a password: no retries
    with pytest.raises(JxError, match=r"still refused after 2 s"):
        connect(f"postgresql://jx:x@127.0.0.1:{free_port()}/none", wait=2)


def test_a_load_written_without_wal_survives_a_crash(cluster, dbs):
    """The local cluster runs with wal_level minimal (localpg.SERVER_OPTIONS): a table created and filled in one
    transaction skips the WAL and is synced at commit. A crash (pg_ctl stop -m immediate: no shutdown
    checkpoint) right after the commit keeps every row."""
    with connect(dbs["wh"]) as conn:
        assert conn.execute("show wal_level").fetchone() == ("minimal",)
        conn.execute("set synchronous_commit = on")  # the cluster's off may lose the last ~0.6 s of commits
        with conn.transaction():
            conn.execute("create table bulk as select g, md5(g::text) h from generate_series(1, 200000) g")
    localpg.stop(cluster, mode="immediate")
    localpg.start(cluster, log=lambda m: None)
    with connect(dbs["wh"]) as conn:
        assert conn.execute("select count(*), sum(g) from bulk").fetchone() == (200000, 200000 * 200001 // 2)
