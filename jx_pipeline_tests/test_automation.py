"""Declarative automation: what carries which condition, one freshness policy everywhere, sensors and schedules on
by default, and the ``after_ingestion`` condition evaluated by Dagster's own evaluator at fixed moments.

The behaviour tests use a two-asset graph shaped like the pipeline (a day-partitioned feed with a blocking
check, an unpartitioned rebuild downstream) on the Postgres instance, with the real condition from
lib/automation.py; ``dg.evaluate_automation_conditions`` is the same code the automation sensor runs. The
freshness test runs the real ``dagster-daemon`` (its freshness daemon) over the real code location.
"""

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from dagster._core.definitions.freshness import FreshnessState
from dagster._core.events import DagsterEventType, StepMaterializationData
from dagster._core.instance.utils import RUNLESS_JOB_NAME, RUNLESS_RUN_ID

from jx_pipeline.definitions import FOLLOWS_INGESTION, defs
from jx_pipeline.defs.ingest.assets import DAILY
from jx_pipeline.lib import automation, settings
from jx_pipeline_tests import dagster_procs

BEIJING = ZoneInfo("Asia/Shanghai")
REPO = defs.get_repository_def()


def test_linking_and_publishing_follow_ingestion_and_nothing_else_is_automated():
    graph = REPO.asset_graph
    following = FOLLOWS_INGESTION.resolve(graph)
    assert {k.to_user_string() for k in following} >= {"core/entity_link", "core/person", "core/legal_person"}
    for key in graph.get_all_asset_keys():
        cond = graph.get(key).automation_condition
        if key in following:
            assert cond is not None and cond.get_label() == "after_ingestion", key
        else:  # ingestion is started by the landing sensor and the cadence schedules, which know the day
            assert cond is None, key


def test_one_freshness_policy_on_every_materializable_asset():
    graph = REPO.asset_graph
    nodes = [graph.get(k) for k in graph.get_all_asset_keys() if graph.get(k).is_materializable]
    assert len(nodes) > 2 * 168
    assert {n.freshness_policy for n in nodes} == {automation.FRESHNESS}


def test_schedules_sensors_and_automation_start_running_unless_turned_off():
    """The test session sets JX_AUTOMATION=off; a code location loaded without it (as in `make ui`) starts all."""
    code = (
        "import json; from jx_pipeline.definitions import defs; r = defs.get_repository_def();"
        "print(json.dumps({s.name: s.default_status.value for s in [*r.schedule_defs, *r.sensor_defs]}))"
    )
    env = {k: v for k, v in os.environ.items() if k != "JX_AUTOMATION"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    on = json.loads(out.stdout.strip().splitlines()[-1])
    assert {
        "landing_files_sensor",
        "run_failure_alert",
        "automation_condition_sensor",
        "ingest_daily",
    } <= set(on)
    assert set(on.values()) == {"RUNNING"}, on
    off = {s.name: s.default_status.value for s in [*REPO.schedule_defs, *REPO.sensor_defs]}
    assert set(off.values()) == {"STOPPED"}, off
    sensor = REPO.get_sensor_def("automation_condition_sensor")
    assert set(sensor.asset_selection.resolve(REPO.asset_graph)) >= set(
        FOLLOWS_INGESTION.resolve(REPO.asset_graph)
    )


def _graph(name: str, cron: str):
    """A day-partitioned feed with a blocking check (fails when the run is tagged fail=1), and a rebuild."""
    feed_key = dg.AssetKey(["staged", "autotest", name])

    @dg.asset(
        key=feed_key,
        partitions_def=DAILY,
        check_specs=[dg.AssetCheckSpec("rows_reconcile", asset=feed_key, blocking=True)],
    )
    def feed(context: dg.AssetExecutionContext):
        ok = context.run.tags.get("fail") != "1"
        return dg.MaterializeResult(check_results=[dg.AssetCheckResult(passed=ok)])

    @dg.asset(
        key=["core", f"autotest_{name}"],
        deps=[feed],
        automation_condition=automation.after_ingestion(dg.AssetSelection.assets(feed), cron=cron),
    )
    def rebuild() -> None: ...

    return feed, rebuild


class _Clock:
    def __init__(self, assets, instance):
        self.assets, self.instance, self.cursor = assets, instance, None

    def requested(self, when: str) -> int:
        at = datetime.fromisoformat(when).replace(tzinfo=BEIJING)
        result = dg.evaluate_automation_conditions(
            defs=self.assets, instance=self.instance, evaluation_time=at, cursor=self.cursor
        )
        self.cursor = result.cursor
        return result.total_requested


def _land(feed, instance, day: str, fail: bool = False):
    dg.materialize(
        [feed], partition_key=day, instance=instance, tags={"fail": "1"} if fail else {}, raise_on_error=False
    )


@pytest.fixture
def instance():
    with dg.DagsterInstance.get() as inst:  # the test session's Postgres storage
        yield inst


def test_after_ingestion_at_most_once_per_beijing_day(instance):
    feed, rebuild = _graph("daily_window", automation.DEFAULT_CRON)
    clock = _Clock([feed, rebuild], instance)
    assert clock.requested("2026-11-02T23:00") == 0  # nothing landed yet
    _land(feed, instance, "2026-11-02")
    assert clock.requested("2026-11-02T23:30") == 0  # landed, but this Beijing day's rebuild window is spent
    assert clock.requested("2026-11-03T00:10") == 1  # a new day: rebuild once
    dg.materialize([rebuild], instance=instance, selection=[rebuild.key])  # the requested run
    assert clock.requested("2026-11-03T00:20") == 0
    _land(feed, instance, "2026-11-03")  # a re-sent file later that day
    assert clock.requested("2026-11-03T10:00") == 0  # at most once per day
    assert clock.requested("2026-11-03T23:59") == 0
    assert clock.requested("2026-11-04T00:05") == 1  # the update is not forgotten: next day's window
    assert clock.requested("2026-11-04T00:06") == 0  # requested once, not on every tick


def test_after_ingestion_waits_for_blocking_checks(instance):
    feed, rebuild = _graph("checks", "none")  # no daily window: as soon as ingestion is done
    clock = _Clock([feed, rebuild], instance)
    assert clock.requested("2026-11-02T09:00") == 0
    _land(feed, instance, "2026-11-02", fail=True)  # the feed's blocking check fails
    assert clock.requested("2026-11-02T09:01") == 0
    _land(feed, instance, "2026-11-02")  # corrected file: the check passes
    assert clock.requested("2026-11-02T09:02") == 1


def _materialized(instance, key: dg.AssetKey, hours_ago: float) -> None:
    """A materialization of ``key`` recorded as having happened ``hours_ago`` (how a table last rebuilt then looks
    to Dagster: its latest materialization event's timestamp)."""
    event = dg.DagsterEvent(
        event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value,
        event_specific_data=StepMaterializationData(dg.AssetMaterialization(key)),
        job_name=RUNLESS_JOB_NAME,
    )
    instance.report_dagster_event(event, run_id=RUNLESS_RUN_ID, timestamp=time.time() - hours_ago * 3600)


def _freshness_until(instance, expected: dict[dg.AssetKey, FreshnessState], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while True:
        records = instance.get_freshness_state_records(list(expected))
        seen = {k: r.freshness_state if r else None for k, r in ((k, records.get(k)) for k in expected)}
        if seen == expected:
            return
        assert time.monotonic() < deadline, f"freshness states {seen}, expected {expected}"
        time.sleep(1)


FRESHNESS_QUERY = """
query($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) { ... on AssetNode { freshnessStatusInfo { freshnessStatus } } }
}"""


def _ui_freshness(url: str, *keys: dg.AssetKey) -> list[str]:
    return [
        dagster_procs.graphql(url, FRESHNESS_QUERY, {"key": {"path": list(k.path)}})["assetNodeOrError"][
            "freshnessStatusInfo"
        ]["freshnessStatus"]
        for k in keys
    ]


def test_stale_mart_is_flagged_by_the_freshness_daemon(make_scratch_db, tmp_path, monkeypatch):
    """The real dagster-daemon over the real code location, on an instance of the test's own: a mart last rebuilt
    past the policy's fail window is FAIL (its asset page in the UI: DEGRADED), past its warn window WARN, just now
    PASS; the stale mart rebuilt turns PASS."""
    monkeypatch.setenv("JX_DAGSTER_STORAGE_URL", make_scratch_db())
    monkeypatch.setenv("JX_DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("JX_DAGSTER_ARTIFACTS", str(tmp_path / "dagster"))
    home = settings.dagster_home()
    marts = sorted(k for k in REPO.asset_graph.get_all_asset_keys() if k.path[0] == "mart")
    stale, late, fresh = marts[:3]
    fail_h = automation.FRESHNESS.fail_window.to_timedelta().total_seconds() / 3600
    warn_h = automation.FRESHNESS.warn_window.to_timedelta().total_seconds() / 3600
    environ = dagster_procs.env(JX_AUTOMATION="off", FRESHNESS_DAEMON_INTERVAL_SECONDS="1")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        _materialized(instance, stale, fail_h + 1)
        _materialized(instance, late, (warn_h + fail_h) / 2)
        _materialized(instance, fresh, 0.1)
        with (
            dagster_procs.daemon(tmp_path / "daemon.log", environ),
            dagster_procs.webserver(tmp_path / "web.log", environ) as url,
        ):
            _freshness_until(
                instance, {stale: FreshnessState.FAIL, late: FreshnessState.WARN, fresh: FreshnessState.PASS}
            )
            # what the asset pages show (their "Freshness" status, from the UI's GraphQL)
            assert _ui_freshness(url, stale, late, fresh) == ["DEGRADED", "WARNING", "HEALTHY"]
            instance.report_runless_asset_event(dg.AssetMaterialization(stale))  # rebuilt now
            _freshness_until(instance, {stale: FreshnessState.PASS, late: FreshnessState.WARN})
            assert _ui_freshness(url, stale) == ["HEALTHY"]
