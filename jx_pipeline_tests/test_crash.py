"""Crash safety: `jx-pipeline materialize` killed with SIGKILL (its whole process group, Dagster's processes
included) in the middle of a raw load, a staged load, the entity links and the identities. After each kill the
warehouse holds no half state; after a re-run it equals a load that was never interrupted."""

import os
import signal

import dagster as dg
import psycopg
import pytest

from jx_pipeline.catalog import load_catalog
from jx_pipeline.defs.admin import assets as admin
from jx_pipeline.defs.entities import assets as entities
from jx_pipeline.lib import identity, ingest, linking, staging
from jx_pipeline.lib.pg import connect
from jx_pipeline.lib.warehouse import WarehouseResource
from jx_pipeline_tests.faults import (
    half_state,
    held_first_row,
    last_run,
    materialize,
    wait_for_statement,
    warehouse_digest,
)

DEPARTMENT = "wjw"  # landing files only, 7 feeds
DAY = "2026-11-01"
FEEDS = f"tag:jx/ingest=feed and group:{DEPARTMENT} or tag:jx/staged=feed and group:{DEPARTMENT}"
LINKING = "key:core/entity_link or key:core/person or key:core/legal_person"
IN_TXN = ("active", "idle in transaction")
CORE = ("core.entity_link", "core.person", "core.legal_person", "core.identity_member")
# linking's and identity resolution's memory of what they read, though in the staged layer
PARSE_CACHE = tuple(
    f"staged._{t}"
    for t in (
        "parse_cache",
        "parse_cache_key",
        "link_input",
        "link_input_key",
        "ident_input",
        "ident_input_key",
        "ident_naming",
        "seen_partition",
        "ident_link_table",
        "ident_change",
        "mart_change",
    )
)


@pytest.fixture(scope="module")
def warehouses(world, make_scratch_db_module, warehouse_url):
    """(warehouse, reference, Dagster storage): both warehouses start with the reference data and entities; the
    reference then gets the department's day loaded, staged and linked without interruption."""
    wh, dagster = make_scratch_db_module(), make_scratch_db_module()
    chain = [admin.raw_admin_division, admin.raw_admin_boundary, admin.core_admin_unit]
    chain += [entities.core_geo_entity, entities.core_address_point]
    assert dg.materialize(chain, resources={"warehouse": WarehouseResource(url=wh)}).success
    ref = make_scratch_db_module()
    with connect(warehouse_url, autocommit=True) as conn:  # the same starting point, copied
        conn.execute(f'drop database "{ref.rsplit("/", 1)[1]}"')
        conn.execute(f'create database "{ref.rsplit("/", 1)[1]}" template "{wh.rsplit("/", 1)[1]}"')
    catalog = load_catalog()
    with connect(ref) as conn:
        for feed in (f for f in catalog.feeds if f.department == DEPARTMENT):
            ingest.load_partition(conn, feed, DAY, "reference", world=world, first_partition=DAY)
            _stage(conn, feed, "reference")
        linking.link(conn, catalog)
        identity.resolve(conn, catalog)
    return wh, ref, dagster


def _stage(conn, feed, batch_id: str) -> None:
    """Staged rows and expectation results of the day, written by the staged asset's own code."""
    from jx_pipeline.defs.staged import results

    results.stage_feed(conn, feed, [DAY], batch_id)


def _kill_during(select: str, pattern: str, wh: str, dagster: str, tmp_path, partition: str | None) -> str:
    """Start a run, SIGKILL its process group once a statement matching ``pattern`` is under way in the
    warehouse; returns that statement."""
    env = {"JX_WAREHOUSE_URL": wh, "JX_DAGSTER_STORAGE_URL": dagster, "JX_SOURCE_DB_URL": ""}
    env["JX_STATE_DIR"] = str(tmp_path / "state")
    proc = materialize(select, env, tmp_path / "killed.log", partition)
    try:
        seen = wait_for_statement(wh, wh.rsplit("/", 1)[1], pattern, proc, states=IN_TXN)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    _wait_backends_gone(wh)
    return seen


def _wait_backends_gone(url: str) -> None:
    """The killed run's server sessions end (and roll back) when they notice their client is gone."""
    db = url.rsplit("/", 1)[1]
    with connect(url, autocommit=True) as conn:
        for _ in range(500):
            if not conn.execute(
                "select count(*) from pg_stat_activity where datname = %s and pid <> pg_backend_pid()"
                " and backend_type = 'client backend'",
                (db,),
            ).fetchone()[0]:
                return
            conn.execute("select pg_sleep(0.02)")
    raise AssertionError("the killed run's sessions are still open")


def _complete(select: str, wh: str, dagster: str, tmp_path, partition: str | None) -> None:
    env = {"JX_WAREHOUSE_URL": wh, "JX_DAGSTER_STORAGE_URL": dagster, "JX_SOURCE_DB_URL": ""}
    env["JX_STATE_DIR"] = str(tmp_path / "state")
    proc = materialize(select, env, tmp_path / "rerun.log", partition)
    assert proc.wait(timeout=600) == 0, (tmp_path / "rerun.log").read_text(errors="replace")[-3000:]


def test_kill_during_raw_and_staged_loads_then_rerun(warehouses, tmp_path):
    wh, ref, dagster = warehouses
    # the second feed of the step: the first one's load is committed by then, the second one's is under way
    second = sorted(f.id for f in load_catalog().feeds if f.department == DEPARTMENT)[1]
    feed = next(f for f in load_catalog().feeds if f.id == second)
    with connect(wh) as conn:  # the parents exist before the run, so that the hold below applies to its day
        ingest.ensure_raw_table(conn, feed)
        staging.ensure_staged_table(conn, feed)
    with held_first_row(wh, f'raw."{second}"'):  # a small day's COPY is over in milliseconds otherwise
        seen = _kill_during(
            FEEDS, rf'^\s*copy raw\."?{second}(__\d{{8}})?"?\s', wh, dagster, tmp_path, f"{DAY}...{DAY}"
        )
    assert half_state(wh) == [], seen
    assert last_run(dagster)[1] == "STARTED"  # what the operator sees until run monitoring marks it failed

    with held_first_row(wh, f'staged."{second}"'):
        seen = _kill_during(
            FEEDS, rf'^\s*copy staged\."?{second}(__\d{{8}})?"?\s', wh, dagster, tmp_path, f"{DAY}...{DAY}"
        )
    assert half_state(wh) == [], seen

    _complete(FEEDS, wh, dagster, tmp_path, f"{DAY}...{DAY}")
    got, want = warehouse_digest(wh), warehouse_digest(ref)
    loaded = {k: v for k, v in want.items() if k not in CORE + PARSE_CACHE}  # linking is the other test's
    assert {k: got.get(k) for k in loaded} == loaded
    assert want["quality.load_audit"][0] == 2 * sum(
        1 for f in load_catalog().feeds if f.department == DEPARTMENT
    )


def test_kill_during_links_and_identities_then_rerun(world, warehouses, tmp_path):
    wh, ref, dagster = warehouses
    with connect(wh) as conn:  # the day loaded and staged, as the linking run expects
        catalog = load_catalog()
        for feed in (f for f in catalog.feeds if f.department == DEPARTMENT):
            ingest.load_partition(conn, feed, DAY, "setup", world=world, first_partition=DAY)
            _stage(conn, feed, "setup")
        conn.execute(
            "delete from core.identity_member; delete from core.person; delete from core.legal_person"
        )
        conn.execute("delete from core.entity_link")
    empty = {t: (0, "0") for t in CORE}

    seen = _kill_during(
        LINKING,
        r'core"?\."?entity_link',
        wh,
        dagster,
        tmp_path,
        None,  # the rebuild's SQL or its writes
    )
    assert {t: warehouse_digest(wh)[t] for t in CORE} == empty, seen

    seen = _kill_during(
        LINKING,
        r'core"?\."?(person|legal_person|identity_member)',  # identity.sql or lib/rebuild.py's writes
        wh,
        dagster,
        tmp_path,
        None,
    )
    after = warehouse_digest(wh)
    assert after["core.entity_link"] == warehouse_digest(ref)["core.entity_link"]  # that step had completed
    assert {t: after[t] for t in CORE[1:]} == {t: empty[t] for t in CORE[1:]}, seen

    _complete(LINKING, wh, dagster, tmp_path, None)
    got, expected = warehouse_digest(wh), warehouse_digest(ref)
    # partition versions and the link table compared are table oids: only their number compares
    for oids in ("staged._seen_partition", "staged._ident_link_table"):
        assert got.pop(oids)[0] == expected.pop(oids)[0] > 0
    assert got == expected
    with psycopg.connect(dagster) as conn:
        statuses = [
            s for (s,) in conn.execute("select status from runs order by create_timestamp").fetchall()
        ]
    assert statuses[-1] == "SUCCESS"
