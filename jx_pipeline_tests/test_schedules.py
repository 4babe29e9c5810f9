"""The daily schedule and the landing-zone sensor of ingestion."""

import json
import os
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


def test_sensor_requests_changed_feeds_once_per_day(world, monkeypatch):
    monkeypatch.setenv("JX_WORLD_DIR", str(world))
    ctx = dg.build_sensor_context(cursor=None)
    first = list(schedules.landing_files_sensor(ctx))
    days = sorted({r.partition_key for r in first})
    assert days == ["2026-11-01", "2026-11-02", "2026-11-03"]
    day1 = next(r for r in first if r.partition_key == "2026-11-01")
    file_feeds = [f for f in load_catalog().feeds if f.source.kind == "file"]
    assert len(day1.asset_selection) == 2 * len(file_feeds) + 1
    again = list(schedules.landing_files_sensor(dg.build_sensor_context(cursor=ctx.cursor)))
    assert again == []  # nothing new
    resent = next((world / "landing" / "gaj" / "gaj_ldrk" / "2026-11-02").iterdir())
    st = resent.stat()
    os.utime(resent, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    later = list(schedules.landing_files_sensor(dg.build_sensor_context(cursor=ctx.cursor)))
    assert [(r.partition_key, [k.to_user_string() for k in r.asset_selection]) for r in later] == [
        ("2026-11-02", ["raw/gaj/ldrk", "staged/gaj/ldrk", "quality/scorecard"])
    ]
    assert json.loads(ctx.cursor)
