"""The daily schedule and the landing-zone sensor of ingestion."""

import os
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg

from jx_pipeline.catalog import load_catalog
from jx_pipeline.definitions import defs
from jx_pipeline.defs.ingest import schedules


def test_daily_schedule_targets_every_feed_for_yesterday():
    repo = defs.get_repository_def()
    sched = repo.get_schedule_def("ingest_daily")
    assert sched.cron_schedule == "30 2 * * *"
    job = repo.get_job("ingest")
    assert len(job.asset_layer.executable_asset_keys) == 2 * 168 + 1  # raw, staged, scorecard
    when = datetime(2026, 11, 3, 2, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    with dg.build_schedule_context(scheduled_execution_time=when, repository_def=repo) as ctx:
        runs = list(sched.evaluate_tick(ctx).run_requests)
    assert [r.partition_key for r in runs] == ["2026-11-02"]


def test_daily_schedule_picks_yesterdays_beijing_day_whatever_zone_the_tick_time_is_in():
    """02:30 Beijing on 3 November is 18:30 UTC on 2 November: yesterday is still 2 November (a Beijing day).
    Before, the UTC date of the tick was used: 1 November."""
    repo = defs.get_repository_def()
    sched = repo.get_schedule_def("ingest_daily")
    assert sched.execution_timezone == "Asia/Shanghai"
    for when in (
        datetime(2026, 11, 3, 2, 30, tzinfo=ZoneInfo("Asia/Shanghai")),
        datetime(2026, 11, 2, 18, 30, tzinfo=ZoneInfo("UTC")),
    ):
        with dg.build_schedule_context(scheduled_execution_time=when, repository_def=repo) as ctx:
            runs = list(sched.evaluate_tick(ctx).run_requests)
        assert [r.partition_key for r in runs] == ["2026-11-02"], when


def test_sensor_requests_changed_feeds_once_per_day(world, monkeypatch):
    monkeypatch.setenv("JX_WORLD_DIR", str(world))
    # a file written less than the margin before a tick is seen by the next tick too (same run key, one run)
    newest = max(p.stat().st_mtime_ns for p in (world / "landing").rglob("*"))
    time.sleep(max(0.0, (newest + schedules.MARGIN_NS - time.time_ns()) / 1e9))
    today = datetime(2026, 11, 3, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # the world's last day

    def tick(cursor):
        ctx = dg.build_sensor_context(cursor=cursor)
        with dg.partition_loading_context(effective_dt=today):
            return list(schedules.landing_files_sensor(ctx)), ctx.cursor

    first, cursor = tick(None)
    days = sorted({r.partition_key for r in first})
    assert days == ["2026-11-01", "2026-11-02", "2026-11-03"]
    day1 = next(r for r in first if r.partition_key == "2026-11-01")
    file_feeds = [f for f in load_catalog().feeds if f.source.kind == "file"]
    assert len(day1.asset_selection) == 2 * len(file_feeds) + 1
    assert tick(cursor)[0] == []  # nothing new
    resent = next((world / "landing" / "gaj" / "gaj_ldrk" / "2026-11-02").iterdir())
    now = time.time_ns()  # re-sent now, rewritten in place: only the file is newer than the last scan
    os.utime(resent, ns=(now, now))
    later, _ = tick(cursor)
    assert [(r.partition_key, [k.to_user_string() for k in r.asset_selection]) for r in later] == [
        ("2026-11-02", ["raw/gaj/ldrk", "staged/gaj/ldrk", "quality/scorecard"])
    ]
