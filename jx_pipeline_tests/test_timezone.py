"""Beijing days end to end: partitions, the landing sensor at the day boundary, its cursor and its scan cost.

The sensor is evaluated at a fixed moment through Dagster's own partition clock (``dg.partition_loading_context``)
on a landing zone written in a temporary folder; file times are real.
"""

import json
import os
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from jx_pipeline.catalog import load_catalog
from jx_pipeline.defs.ingest import schedules
from jx_pipeline.defs.ingest.assets import DAILY

BEIJING = ZoneInfo("Asia/Shanghai")


def _land(root, feed, day: str, name: str | None = None, ago: float = 3600) -> None:
    """A file landed ``ago`` seconds before now (its folder touched then too)."""
    folder = root / "landing" / feed.department / feed.id / day
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name or f"{feed.id}_{day.replace('-', '')}.csv")
    path.write_text(",".join(feed.columns) + "\n")
    then = time.time() - ago
    for p in (path, folder):
        os.utime(p, (then, then))


def _tick(at: datetime, cursor: str | None = None) -> tuple[list[dg.RunRequest], str | None]:
    ctx = dg.build_sensor_context(cursor=cursor)
    with dg.partition_loading_context(effective_dt=at):
        runs = list(schedules.landing_files_sensor(ctx))
    return runs, ctx.cursor


@pytest.fixture
def landing(tmp_path, monkeypatch):
    monkeypatch.setenv("JX_WORLD_DIR", str(tmp_path))
    return tmp_path


def test_partitions_are_beijing_days():
    assert DAILY.timezone == "Asia/Shanghai"
    window = DAILY.time_window_for_partition_key("2026-11-03")
    assert window.start == datetime(2026, 11, 2, 16, 0, tzinfo=UTC)  # 00:00 Beijing
    assert window.end == datetime(2026, 11, 3, 16, 0, tzinfo=UTC)


def test_a_file_landed_at_0030_beijing_is_requested_for_that_day_at_once(landing):
    feed = load_catalog().feed("gaj_ldrk")
    _land(landing, feed, "2026-11-03")
    at = datetime(2026, 11, 3, 0, 30, tzinfo=BEIJING)
    assert at.astimezone(UTC) == datetime(2026, 11, 2, 16, 30, tzinfo=UTC)  # still 2 November in UTC
    with dg.partition_loading_context(effective_dt=at):
        assert DAILY.get_partition_keys()[-1] == "2026-11-03"
    runs, _ = _tick(at)
    assert [(r.partition_key, [k.to_user_string() for k in r.asset_selection]) for r in runs] == [
        ("2026-11-03", ["raw/gaj/ldrk", "staged/gaj/ldrk", "quality/scorecard"])
    ]


def test_sensor_keeps_a_day_that_is_not_a_partition_yet_and_requests_it_when_it_is(landing):
    """A folder for tomorrow (an upload tool that names the day ahead, a clock ahead) is not requested yet —
    and not forgotten: before, its mtime went into the cursor and it was never requested."""
    feed = load_catalog().feed("gaj_czfw")
    _land(landing, feed, "2026-11-03")
    _land(landing, feed, "2026-11-04")
    first, cursor = _tick(datetime(2026, 11, 3, 0, 30, tzinfo=BEIJING))
    assert [r.partition_key for r in first] == ["2026-11-03"]
    assert json.loads(cursor)["pending"] == ["gaj_czfw/2026-11-04"]
    later, cursor = _tick(datetime(2026, 11, 4, 0, 30, tzinfo=BEIJING), cursor)
    assert [r.partition_key for r in later] == ["2026-11-04"]
    again, _ = _tick(datetime(2026, 11, 4, 1, 30, tzinfo=BEIJING), cursor)
    assert again == []


def test_sensor_sees_an_old_day_changed_and_a_recent_file_replaced(landing):
    feed = load_catalog().feed("gaj_ldrk")
    days = [(datetime(2026, 11, 1) + timedelta(days=i)).strftime("%Y-%m-%d") for i in range(30)]
    for day in days:
        _land(landing, feed, day)
    at = datetime(2026, 11, 30, 12, 0, tzinfo=BEIJING)
    first, cursor = _tick(at)
    assert [r.partition_key for r in first] == days
    assert _tick(at, cursor)[0] == []
    resend = landing / "landing" / "gaj" / "gaj_ldrk" / days[0] / "gaj_ldrk_20261101_resend1.csv"
    resend.write_text(",".join(feed.columns) + "\n")  # a re-send to a day weeks old: a new file in its folder
    recent = landing / "landing" / "gaj" / "gaj_ldrk" / days[-1] / "gaj_ldrk_20261130.csv"
    recent.write_text(recent.read_text() + "\n")  # rewritten in place: only the file's own mtime moves
    later, _ = _tick(at, cursor)
    assert [r.partition_key for r in later] == [days[0], days[-1]]


def test_sensor_tick_cost_over_168_feeds_and_60_days(landing):
    """Timing printed (not asserted): the first tick reads every file; later ticks stat the recent days' files
    and only the folders of older days."""
    feeds = load_catalog().feeds
    days = [(datetime(2026, 11, 1) + timedelta(days=i)).strftime("%Y-%m-%d") for i in range(60)]
    for feed in feeds:
        for day in days:
            _land(landing, feed, day)
    at = datetime(2026, 12, 30, 12, 0, tzinfo=BEIJING)
    started = time.perf_counter()
    first, cursor = _tick(at)
    cold = time.perf_counter() - started
    started = time.perf_counter()
    again, steady = _tick(at, cursor)
    warm = time.perf_counter() - started
    print(
        f"\nsensor tick over {len(feeds)} feeds x {len(days)} days ({len(feeds) * len(days)} folders):"
        f" first {cold:.2f} s, steady {warm:.2f} s; cursor {len(steady)} bytes"
    )
    assert len(first) == len(days) and again == []
    assert len(steady) < 100  # the mark and no pending folders
