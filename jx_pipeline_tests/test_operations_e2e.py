"""The pipeline running itself (issue 12 item 7): the real ``dagster-daemon``, no CLI call, does every run.

A warehouse, Dagster instance and landing zone of the test's own (two file-only departments) receive, in turn:
day 1 -> the landing sensor ingests it, the automation condition links and publishes; day 2 -> only day 2's feed
partitions run, then linking and the marts; a day-1 file re-sent without its last record -> that feed's day-1
partition reruns and the mart counts one record less; day 3 with one department's file broken -> the run-failure
sensor writes quality.run_alert, while the other department's day 3 is loaded, linked and published all the same.
Every phase is judged by the published data (mart.feed_link_coverage, mart.data_service) and by the runs the
daemon made. The daemon runs each run in one process (JX_EXECUTOR=in_process) and ticks its sensors every few
seconds (JX_SENSOR_INTERVAL_S); linking may follow at once (JX_AUTOMATION_CRON=none, not once a Beijing day).
"""

import os
import time
from datetime import UTC, datetime
from typing import NamedTuple

import dagster as dg
import pytest
from psycopg import sql

from jx_pipeline.catalog import load_catalog
from jx_pipeline.defs.admin import assets as admin
from jx_pipeline.defs.entities import assets as entities
from jx_pipeline.lib import ingest, settings
from jx_pipeline.lib.pg import connect
from jx_pipeline.lib.warehouse import WarehouseResource
from jx_pipeline_tests import dagster_procs
from jx_pipeline_tests.conftest import catalog_with, run_cli

DEPTS = ("jxj", "fgw")  # file-only departments
D1, D2, D3 = "2026-11-01", "2026-11-02", "2026-11-03"
RESENT = "jxj_zjtx"  # a daily CSV feed (UTF-8) with a day-1 file only
BAD = "jxj_mjkh"  # a CSV feed of jxj with a day-3 file in the session world
SENSOR = "landing_files_sensor"


@pytest.fixture(scope="module")
def site(world, tmp_path_factory, make_scratch_db_module):
    """Its own warehouse (`jx-pipeline db up`), Dagster instance and empty landing zone; the reference and the
    geographic entities (hand-overs loaded once by `make demo`, not by the daemon) materialized in it."""
    tmp = tmp_path_factory.mktemp("ops")

    def keep(doc):
        doc["departments"] = [d for d in doc["departments"] if d["code"] in DEPTS]
        doc["feeds"] = [f for f in doc["feeds"] if f["department"] in DEPTS]

    zone = tmp / "zone"
    (zone / "landing").mkdir(parents=True)
    (zone / "entities").symlink_to(world / "entities")
    home = tmp / "dagster_home"  # the shipped instance, its run queue looked at every second (not every 5 s)
    home.mkdir()
    shipped = (settings.PACKAGE_DIR / "dagster.yaml").read_text(encoding="utf-8")
    queued = "  class: QueuedRunCoordinator\n"
    assert queued in shipped
    queue = queued + "  config:\n    dequeue_interval_seconds: 1\n"
    (home / "dagster.yaml").write_text(shipped.replace(queued, queue), encoding="utf-8")
    own = {
        "JX_WAREHOUSE_URL": make_scratch_db_module(),
        "JX_DAGSTER_STORAGE_URL": make_scratch_db_module(),
        "JX_DAGSTER_HOME": str(home),
        "JX_DAGSTER_ARTIFACTS": str(tmp / "dagster"),
        "JX_CATALOG": str(catalog_with(tmp, keep)),
        "JX_WORLD_DIR": str(zone),
    }
    done = run_cli("db", "up", env=own)
    assert done.returncode == 0, done.stdout + done.stderr
    mp = pytest.MonkeyPatch()
    for k, v in own.items():
        mp.setenv(k, v)
    mp.setenv("DAGSTER_HOME", str(settings.dagster_home()))
    with dg.DagsterInstance.get() as instance:
        hand_over = [*admin.defs.assets, *entities.defs.assets]
        resources = {"warehouse": WarehouseResource(url=own["JX_WAREHOUSE_URL"])}
        assert dg.materialize(hand_over, instance=instance, resources=resources).success
    yield zone, tmp
    mp.undo()


def test_the_daemon_runs_the_days(world, site):
    zone, tmp = site
    feeds = [f.id for f in load_catalog().feeds]
    environ = dagster_procs.env(
        JX_AUTOMATION="on",
        JX_AUTOMATION_CRON="none",
        JX_SENSOR_INTERVAL_S="2",
        JX_EXECUTOR="in_process",
    )
    started = time.monotonic()
    with (
        dg.DagsterInstance.get() as instance,
        connect(os.environ["JX_WAREHOUSE_URL"], autocommit=True) as wh,
        dagster_procs.daemon(tmp / "daemon.log", environ),
    ):
        # day 1 lands: ingested by the landing sensor, then linked and published by the automation condition
        t0 = time.time()
        day1 = [f for fid in feeds for f in _land(world, zone, fid, D1)]
        ends = _ingested(instance, D1, day1, t0)
        cover = _published(instance, wh, ends)
        assert {f for f, c in cover.items() if c.partitions} == set(day1)
        assert all(c.records > 0 and c.not_linked == 0 for f, c in cover.items() if f in day1)

        # day 2 lands: only day 2's partitions of the feeds that sent one, then linking and the marts again
        t1 = time.time()
        day2 = [f for fid in feeds for f in _land(world, zone, fid, D2)]
        assert day2 and set(day2) < set(feeds)
        ends = _ingested(instance, D2, day2, t1)
        before, cover = cover, _published(instance, wh, ends)
        assert {f: c.partitions - before[f].partitions for f, c in cover.items()} == {
            f: int(f in day2) for f in feeds
        }
        assert {f for f, c in cover.items() if c.day == D2} == set(day2)
        assert all(c.not_linked == 0 for c in cover.values())
        _only(instance, t1, (D2,))

        # in one delivery: a day-1 file re-sent without its last record, and day 3 with jxj's file of BAD broken.
        # The day-1 partition reruns and the marts count one record less; the day-3 run fails in jxj's step, the
        # failure alert row exists, and fgw's day 3 is loaded, linked and published all the same.
        t2 = time.time()
        folder = zone / "landing" / "jxj" / RESENT / D1
        (file,) = [p for p in folder.iterdir() if not p.name.startswith(".")]
        raw_before = _raw_rows(wh, RESENT, D1)
        _deliver(folder, file.name, b"".join(file.read_bytes().splitlines(keepends=True)[:-1]))
        bad = load_catalog().feed(BAD)
        cols = [*bad.columns, "EXTRA_COL"]
        body = ",".join(cols) + "\n" + ",".join("1" for _ in cols) + "\n"
        _deliver(zone / "landing" / "jxj" / BAD / D3, f"{BAD}_20261103.csv", body.encode())
        day3 = [f for fid in feeds if fid != BAD for f in _land(world, zone, fid, D3)]
        good = [f for f in day3 if f.startswith("fgw_")]
        assert good
        resent_end = _ingested(instance, D1, [RESENT], t2)
        runs = _wait("day 3's ingest run", lambda: _sensor_runs(instance, D3, t2, [*day3, BAD]))
        assert [r.status for r in runs] == [dg.DagsterRunStatus.FAILURE], [(r.run_id, r.status) for r in runs]
        alert = _wait(
            "the run-failure alert",
            lambda: wh.execute(
                "select job_name, step_key, error_class, message, partition_key from quality.run_alert"
                " where run_id = %s",
                (runs[0].run_id,),
            ).fetchone(),
        )
        assert alert[:3] == ("ingest", "raw_jxj", "JxError") and alert[4] == D3, alert
        assert BAD in alert[3] and "EXTRA_COL" in alert[3].upper(), alert[3]
        before, cover = cover, _published(instance, wh, max(resent_end, _end(instance, runs[0])))
        assert _raw_rows(wh, RESENT, D1) == raw_before - 1
        jxj = [f for f in feeds if f.startswith("jxj_")]
        assert {f: before[f].records - cover[f].records for f in jxj} == {f: int(f == RESENT) for f in jxj}
        assert {f for f, c in cover.items() if c.day == D3} == set(good)
        assert all(c.not_linked == 0 for c in cover.values())
        _only(instance, t2, (D1, D3))
        _links_first(instance, t0)
    print(f"operations end to end: {time.monotonic() - started:.0f} s")


class _Cover(NamedTuple):  # a feed's row of mart.feed_link_coverage
    records: int
    not_linked: int
    partitions: int
    day: str


def _land(world, zone, feed_id: str, day: str) -> list[str]:
    """The world's files of a feed and day into the zone (written aside, renamed in, as a landing zone gets them)."""
    dept = feed_id.split("_", 1)[0]
    src = world / "landing" / dept / feed_id / day
    if not src.is_dir():
        return []
    for f in sorted(src.iterdir()):
        _deliver(zone / "landing" / dept / feed_id / day, f.name, f.read_bytes())
    return [feed_id]


def _deliver(folder, name: str, body: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{name}.part"
    tmp.write_bytes(body)
    os.replace(tmp, folder / name)


def _wait(what: str, until, timeout: float = 180):
    return dagster_procs.wait_until(what, until, timeout)


def _feeds_of(run: dg.DagsterRun) -> set[str]:
    return {f"{k.path[1]}_{k.path[2]}" for k in run.asset_selection or () if k.path[0] == "raw"}


def _sensor_runs(instance, day: str, since: float, feeds: list[str]) -> list[dg.DagsterRun] | None:
    """The landing sensor's runs of ``day`` created since ``since``, once they cover ``feeds`` and are over."""
    after = datetime.fromtimestamp(since, UTC)
    runs = instance.get_runs(dg.RunsFilter(tags={"dagster/sensor_name": SENSOR}, created_after=after))
    mine = [r for r in runs if r.tags.get("dagster/partition") == day]
    covered = set().union(*(_feeds_of(r) for r in mine)) if mine else set()
    return mine if covered >= set(feeds) and all(r.is_finished for r in mine) else None


def _end(instance, run: dg.DagsterRun) -> float:
    return instance.get_run_record_by_id(run.run_id).end_time


def _ingested(instance, day: str, feeds: list[str], since: float) -> float:
    """Waits for the sensor's runs of exactly ``feeds`` x ``day`` (raw, staged, scorecard) to succeed; their end."""
    runs = _wait(f"the landing sensor's run(s) of {day}", lambda: _sensor_runs(instance, day, since, feeds))
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs), [(r.run_id, r.status) for r in runs]
    assert set().union(*(_feeds_of(r) for r in runs)) == set(feeds)
    for r in runs:  # each run: its feeds' raw and staged assets of the day, and the scorecard
        expected = {f"{layer}/{f.replace('_', '/', 1)}" for f in _feeds_of(r) for layer in ("raw", "staged")}
        assert {k.to_user_string() for k in r.asset_selection} == expected | {"quality/scorecard"}
    return max(_end(instance, r) for r in runs)


def _published(instance, wh, ingested_at: float) -> dict[str, _Cover]:
    """Waits for core/entity_link rebuilt after ingestion ended, then the marts, by a run the automation condition
    started after ingestion; returns mart.feed_link_coverage per feed."""
    mart = dg.AssetKey(["mart", "feed_link_coverage"])
    link = dg.AssetKey(["core", "entity_link"])

    def done():
        ev = instance.get_latest_materialization_event(mart)
        linked = instance.get_latest_materialization_event(link)
        if not (ev and linked and ingested_at < linked.timestamp < ev.timestamp):
            return None
        run = instance.get_run_record_by_id(ev.run_id)
        after = run.start_time and run.start_time > ingested_at
        return run if after and run.dagster_run.status == dg.DagsterRunStatus.SUCCESS else None

    run = _wait("linking, then the marts, after ingestion", done)
    assert run.dagster_run.tags.get("dagster/from_automation_condition") == "true", run.dagster_run.tags
    refreshed = wh.execute("select min(refreshed_at) from mart.data_service").fetchone()[0]
    assert refreshed > datetime.fromtimestamp(ingested_at, UTC)
    rows = wh.execute(
        "select feed_id, current_records, not_linked_yet, partitions_published, data_day::text"
        " from mart.feed_link_coverage"
    ).fetchall()
    return {r[0]: _Cover(*r[1:]) for r in rows}


def _only(instance, since: float, days: tuple[str, ...]) -> None:
    """Every run since ``since``: the landing sensor's for ``days``, or automation's over linking and marts only."""
    runs = instance.get_runs(dg.RunsFilter(created_after=datetime.fromtimestamp(since, UTC)))
    for r in runs:
        if r.tags.get("dagster/sensor_name") == SENSOR:
            assert r.tags.get("dagster/partition") in days, r.tags
        else:
            assert r.tags.get("dagster/from_automation_condition") == "true", r.tags
            assert "dagster/partition" not in r.tags, r.tags
            assert {k.path[0] for k in r.asset_selection} <= {"core", "mart"}, r.asset_selection


def _links_first(instance, since: float) -> None:
    """No mart refresh since ``since`` ran ahead of linking: each read links rebuilt after the last ingest run
    that had ended when the refresh started (the marts must not publish records whose links are stale)."""
    after = datetime.fromtimestamp(since, UTC)
    ingests = instance.get_runs(dg.RunsFilter(tags={"dagster/sensor_name": SENSOR}, created_after=after))
    ends = [e for r in ingests if (e := _end(instance, r))]
    links = _materializations(instance, ["core", "entity_link"], since)
    for mart in _materializations(instance, ["mart", "feed_link_coverage"], since):
        started = instance.get_run_record_by_id(mart.run_id).start_time
        last = max((e for e in ends if e < started), default=None)
        # the links this refresh read: rebuilt in its own run, or before it started
        read = [k for k in links if k.run_id == mart.run_id or k.timestamp < started]
        assert last is None or any(k.timestamp > last for k in read), (
            f"run {mart.run_id} published the marts before linking caught up with the ingest run ended at {last}"
        )


def _materializations(instance, key: list[str], since: float):
    found = dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), after_timestamp=since)
    return instance.fetch_materializations(found, limit=1000).records


def _raw_rows(wh, feed_id: str, day: str) -> int:
    table = ingest.raw_table(load_catalog().feed(feed_id))
    query = sql.SQL("select count(*) from {} where _partition = %s").format(table)
    return wh.execute(query, (day,)).fetchone()[0]
