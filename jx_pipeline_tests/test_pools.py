"""Pools: the catalog's per-department limit and the warehouse cap, held while a 7-day backfill of every feed
runs from the CLI and, at the same time, from the UI (GraphQL launchPartitionBackfill, run by the real daemon).

The limits are proved from the event log: for each pool, the most steps that were between STEP_START and their
end at one moment, over both runs; and the runs must actually have been held back (a "blocked by limit" event),
or the test proved nothing. Correct results: both runs succeed with every check passed (each compares with
an independent count), and every feed x day partition is materialized. A catalog of two departments (three
feeds each) keeps it quick; the landing zone is the session's world (its days with files, and days with none).
"""

import subprocess

import dagster as dg
import pytest
import yaml

from jx_pipeline.catalog import load_catalog
from jx_pipeline.definitions import defs
from jx_pipeline.lib import pools
from jx_pipeline_tests import dagster_procs
from jx_pipeline_tests.conftest import JX, catalog_with

DAYS = [f"2026-11-0{d}" for d in range(1, 8)]
LIMITS = {"jxj": 1, "sfj": 2}  # file-only departments: no source database needed
FEEDS = 3  # of each department (the first ones in the catalog), to keep it quick
INGEST = "tag:jx/ingest=feed or tag:jx/staged=feed or key:quality/scorecard"


def test_every_step_is_in_its_pool():
    repo = defs.get_repository_def()
    job = repo.get_job("daily")
    by_op = {node.name: node.definition.pool for node in job.graph.nodes}
    for dept in load_catalog().departments:
        assert by_op[f"raw_{dept.code}"] == pools.source_pool(dept.code)
        assert by_op[f"staged_{dept.code}"] == pools.WAREHOUSE
    heavy = ("quality__scorecard", "core__entity_link", "core_identity", "mart_refresh")
    assert {by_op[op] for op in heavy} == {pools.WAREHOUSE}


def test_catalog_limits_default_to_one_and_sync_into_the_instance(tmp_path):
    assert set(pools.limits(load_catalog()).values()) == {1}  # the shipped catalog sets none: the default
    path = catalog_with(tmp_path, lambda doc: doc["departments"][0].update(max_concurrent_loads=3))
    catalog = load_catalog(path)
    first = catalog.departments[0].code
    with dg.DagsterInstance.get() as instance:
        changed = pools.sync(instance, catalog)
        assert changed.get(pools.source_pool(first)) == 3
        assert instance.event_log_storage.get_concurrency_info(pools.source_pool(first)).slot_count == 3
        assert pools.sync(instance, catalog) == {}  # nothing to change the second time
        pools.sync(instance, load_catalog())  # back to the shipped catalog's
        assert instance.event_log_storage.get_concurrency_info(pools.source_pool(first)).slot_count == 1


@pytest.fixture(scope="module")
def small_catalog(tmp_path_factory):
    def keep(doc):
        doc["departments"] = [
            {**d, "max_concurrent_loads": LIMITS[d["code"]]}
            for d in doc["departments"]
            if d["code"] in LIMITS
        ]
        doc["feeds"] = [f for d in LIMITS for f in [f for f in doc["feeds"] if f["department"] == d][:FEEDS]]

    path = catalog_with(tmp_path_factory.mktemp("pools_catalog"), keep)
    assert {d["code"] for d in yaml.safe_load(path.read_text())["departments"]} == set(LIMITS)
    return path


def _intervals(instance, run_ids):
    """step key -> [(start, end)] over the runs, from STEP_START to STEP_SUCCESS / STEP_FAILURE."""
    out, blocked = {}, []
    for run_id in run_ids:
        start = {}
        for rec in instance.get_records_for_run(run_id, limit=100000).records:
            ev = rec.event_log_entry
            if not ev.dagster_event:
                continue
            kind, step = ev.dagster_event.event_type, ev.dagster_event.step_key
            if kind == dg.DagsterEventType.STEP_START:
                start[step] = ev.timestamp
            elif kind in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
                out.setdefault(step, []).append((start.pop(step), ev.timestamp))
            elif kind == dg.DagsterEventType.ENGINE_EVENT and "blocked by limit for pool" in (
                ev.message or ""
            ):
                blocked.append((step, ev.message))
    return out, blocked


def _max_overlap(intervals) -> int:
    points = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])  # an end before a start
    most = now = 0
    for _, delta in points:
        now += delta
        most = max(most, now)
    return most


def _pool_of(step: str) -> str:
    if step.startswith("raw_"):
        return pools.source_pool(step.removeprefix("raw_"))
    return pools.WAREHOUSE


def test_seven_day_backfill_from_cli_and_ui_at_once_holds_the_limits(small_catalog, tmp_path):
    catalog = load_catalog(small_catalog)
    keys = [
        [layer, f.department, f.id.removeprefix(f"{f.department}_")]
        for f in catalog.feeds
        for layer in ("raw", "staged")
    ] + [["quality", "scorecard"]]
    environ = dagster_procs.env(JX_CATALOG=str(small_catalog), JX_AUTOMATION="off")
    with dg.DagsterInstance.get() as instance:
        pools.sync(instance, catalog)
        warehouse_cap = instance.get_concurrency_config().pool_config.default_pool_limit
        assert warehouse_cap == 2  # dagster.yaml's concurrency: pools: default_limit
        before = {r.run_id for r in instance.get_runs()}
        with (
            dagster_procs.daemon(tmp_path / "daemon.log", environ),
            dagster_procs.webserver(tmp_path / "web.log", environ) as url,
        ):
            backfill_id = dagster_procs.launch_backfill(url, keys, DAYS, title="7-day backfill (test_pools)")
            # the CLI's run starts once the UI's is under way, so that the two compete for the pools
            dagster_procs.wait_until(
                "the backfill's run to start",
                lambda: [
                    r
                    for r in instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
                    if r.status == dg.DagsterRunStatus.STARTED
                ],
            )
            argv = [JX, "materialize", "--select", INGEST, "--executor", "multiprocess"]
            cli = subprocess.run(
                [*argv, "--partition-range", f"{DAYS[0]}...{DAYS[-1]}"],
                env=environ,
                capture_output=True,
                text=True,
                timeout=900,
            )
            assert cli.returncode == 0, cli.stdout[-3000:] + cli.stderr[-3000:]
            dagster_procs.wait_until(
                "the backfill's runs to finish",
                lambda: all(
                    r.is_finished
                    for r in instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
                ),
            )
        ui_runs = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
        assert [r.status for r in ui_runs] == [dg.DagsterRunStatus.SUCCESS] * len(ui_runs) and ui_runs
        cli_runs = [r for r in instance.get_runs() if r.run_id not in before and r not in ui_runs]
        cli_runs = [r for r in cli_runs if "dagster/backfill" not in r.tags]
        assert len(cli_runs) == 1 and cli_runs[0].status == dg.DagsterRunStatus.SUCCESS
        run_ids = [r.run_id for r in [*ui_runs, *cli_runs]]

        steps, blocked = _intervals(instance, run_ids)
        by_pool: dict[str, list] = {}
        for step, spans in steps.items():
            by_pool.setdefault(_pool_of(step), []).extend(spans)
        limits = {**pools.limits(catalog), pools.WAREHOUSE: warehouse_cap}
        seen = {pool: _max_overlap(spans) for pool, spans in by_pool.items()}
        assert all(seen[p] <= limits[p] for p in seen), (seen, limits)
        assert blocked, "no step waited for a pool: the runs never competed, the limits were not exercised"

        # correct results: every check of both runs passed and every feed x day partition exists
        checks = [
            rec.event_log_entry.dagster_event.event_specific_data
            for run_id in run_ids
            for rec in instance.get_records_for_run(
                run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, limit=10000
            ).records
        ]
        assert len(checks) == len(run_ids) * 3 * len(catalog.feeds)  # raw rows_reconcile, staged x2
        assert all(c.passed for c in checks), [c for c in checks if not c.passed][:3]
        for key in keys[:-1]:
            done = instance.get_materialized_partitions(dg.AssetKey(key))
            assert set(DAYS) <= done, (key, sorted(done))
    print(f"max steps at once per pool {seen} (limits {limits}); {len(blocked)} blocked-by-pool events")
