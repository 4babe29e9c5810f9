"""When ingestion (raw, staged, scorecard) runs: a daily schedule for yesterday's landing day, and a sensor that reacts to new files.

The schedule covers feeds that land on time; the sensor picks up late or re-sent files (a file's modification
time newer than the last run saw) and asks for just those feeds and days. Both start stopped: an operator turns
them on in the UI (Automation) or with `dagster schedule start` / `dagster sensor start`.
"""

import json
from datetime import timedelta

import dagster as dg

from jx_pipeline.catalog import Catalog, load_catalog
from jx_pipeline.defs.ingest.assets import DAILY, feed_key
from jx_pipeline.lib.world import world_dir

SCORECARD = dg.AssetKey(["quality", "scorecard"])

INGEST = (
    dg.AssetSelection.tag("jx/ingest", "feed")
    | dg.AssetSelection.tag("jx/staged", "feed")
    | dg.AssetSelection.assets(SCORECARD)
)
ingest_job = dg.define_asset_job(
    "ingest",
    selection=INGEST,
    partitions_def=DAILY,
    description="Every feed: raw load, staging with its checks, then the quality scorecard.",
)


@dg.schedule(
    name="ingest_daily",
    cron_schedule="30 2 * * *",
    job=ingest_job,
    execution_timezone="Asia/Shanghai",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
def daily_ingest(context: dg.ScheduleEvaluationContext):
    """At 02:30 Beijing time, ingest yesterday's landing day (today's partition is still filling)."""
    day = (context.scheduled_execution_time - timedelta(days=1)).strftime("%Y-%m-%d")
    return dg.RunRequest(run_key=f"daily:{day}", partition_key=day)


def landing_changes(
    catalog: Catalog, seen: dict[str, int]
) -> tuple[dict[str, list[dg.AssetKey]], dict[str, int]]:
    """Feeds per landing day whose files are newer than ``seen`` ("feed/day" -> newest mtime), and the new cursor."""
    feeds = {f.id: f for f in catalog.feeds}
    changed: dict[str, list[dg.AssetKey]] = {}
    cursor = dict(seen)
    for folder in sorted((world_dir() / "landing").glob("*/*/*")):
        feed = feeds.get(folder.parent.name)
        files = (
            [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
            if folder.is_dir()
            else []
        )
        if feed is None or not files:
            continue
        newest = max(p.stat().st_mtime_ns for p in files)
        mark = f"{feed.id}/{folder.name}"
        if newest > seen.get(mark, 0):
            changed.setdefault(folder.name, []).extend([feed_key(feed), feed_key(feed, "staged")])
            cursor[mark] = newest
    return changed, cursor


@dg.sensor(job=ingest_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED)
def landing_files_sensor(context: dg.SensorEvaluationContext):
    """New or re-sent files in the landing zone: one run per landing day, for the feeds whose files changed."""
    seen = json.loads(context.cursor) if context.cursor else {}
    changed, cursor = landing_changes(load_catalog(), seen)
    valid = set(DAILY.get_partition_keys())
    for day, keys in sorted(changed.items()):
        if day not in valid:
            context.log.warning(f"landing folder {day} is not a partition of {DAILY}: skipped")
            continue
        yield dg.RunRequest(
            run_key=f"{day}:{cursor_digest(cursor, day)}",
            partition_key=day,
            asset_selection=[*keys, SCORECARD],
        )
    context.update_cursor(json.dumps(cursor, sort_keys=True))


def cursor_digest(cursor: dict[str, int], day: str) -> str:
    return str(max(v for k, v in cursor.items() if k.endswith(f"/{day}")))


defs = dg.Definitions(jobs=[ingest_job], schedules=[daily_ingest], sensors=[landing_files_sensor])
