"""When ingestion (raw, staged, scorecard) runs: a schedule per feed cadence of the catalog, and a sensor that
reacts to new files.

The schedules cover feeds that land on time: daily feeds every night for yesterday, weekly feeds on Monday for
the last week's days, monthly feeds on the 1st for the last month's days (one run over the range; the raw and
staged steps load a range in one go). The sensor picks up late or re-sent files (a file's modification time
newer than the last scan) and asks for just those feeds and days. Days are Beijing days (Asia/Shanghai)
everywhere: the landing folders, the partitions and the schedules' clock. Both start RUNNING in `make ui`
unless JX_AUTOMATION=off; an operator stops them in the UI (Automation) or with `dagster schedule stop` /
`dagster sensor stop`.
"""

import json
import os
import time
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from jx_pipeline.catalog import Catalog, load_catalog
from jx_pipeline.defs.ingest.assets import DAILY, PARTITION_START, feed_key
from jx_pipeline.lib import automation
from jx_pipeline.lib.world import world_dir

SCORECARD = dg.AssetKey(["quality", "scorecard"])
RECENT_DAYS = (
    7  # the days whose files the sensor stats on every tick; older days only when their folder changed
)
MARGIN_NS = 2 * 10**9  # files written while a scan runs are seen by the next one too (same run key: one run)

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


# cadence -> (cron at 02:30 Beijing, the days of the period before the tick it covers)
CADENCE_CRON = {"daily": "30 2 * * *", "weekly": "30 2 * * 1", "monthly": "30 2 1 * *"}
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def period(cadence: str, today: date) -> tuple[date, date]:
    """The landing days (first, last) a tick on ``today`` (a Beijing date) covers: the day, week or month before."""
    last = today - timedelta(days=1)
    if cadence == "daily":
        return last, last
    if cadence == "weekly":
        return today - timedelta(days=7), last
    return last.replace(day=1), last


def cadence_selection(catalog: Catalog, cadence: str) -> list[dg.AssetKey]:
    feeds = [f for f in catalog.feeds if f.cadence == cadence]
    return [k for f in feeds for k in (feed_key(f), feed_key(f, "staged"))] + [SCORECARD] if feeds else []


def _cadence_schedule(cadence: str, keys: list[dg.AssetKey]) -> dg.ScheduleDefinition:
    name = "ingest_daily" if cadence == "daily" else f"ingest_{cadence}"

    @dg.schedule(
        name=name,
        cron_schedule=CADENCE_CRON[cadence],
        job=ingest_job,
        execution_timezone=DAILY.timezone,
        default_status=automation.schedule_status(),
        description=f"02:30 Beijing: the {cadence} feeds ({len(keys) // 2} assets) for the {cadence} period"
        " before the tick.",
    )
    def _schedule(context: dg.ScheduleEvaluationContext):
        beijing = context.scheduled_execution_time.astimezone(ZoneInfo(DAILY.timezone))
        first, last = (d.isoformat() for d in period(cadence, beijing.date()))
        first = max(first, PARTITION_START)
        if last < first:
            return dg.SkipReason(
                f"{cadence} period ends {last}, before the first partition {PARTITION_START}"
            )
        if first == last:
            return dg.RunRequest(run_key=f"{cadence}:{last}", partition_key=last, asset_selection=keys)
        return dg.RunRequest(
            run_key=f"{cadence}:{first}...{last}",
            asset_selection=keys,
            tags={RANGE_START: first, RANGE_END: last},
        )

    return _schedule


def cadence_schedules(catalog: Catalog) -> list[dg.ScheduleDefinition]:
    """One schedule per cadence the catalog's feeds use."""
    return [_cadence_schedule(c, keys) for c in CADENCE_CRON if (keys := cadence_selection(catalog, c))]


def landing_changes(
    catalog: Catalog, mark: int, recent: set[str], pending: set[str]
) -> dict[str, dict[str, int]]:
    """Day -> {feed: newest mtime} for the landing folders changed after ``mark`` (ns): a file or the folder
    itself newer (a file added, replaced or removed). Files are looked at only in the ``recent`` days and the
    ``pending`` "feed/day" folders; an older day's folder is opened only when its own mtime moved."""
    feeds = {f.id for f in catalog.feeds}
    changed: dict[str, dict[str, int]] = {}
    root = world_dir() / "landing"
    for dept in _dirs(root):
        for feed in _dirs(dept.path):
            if feed.name not in feeds:
                continue
            for day in _dirs(feed.path):
                folder = day.stat().st_mtime_ns
                key = f"{feed.name}/{day.name}"
                if folder <= mark and day.name not in recent and key not in pending:
                    continue
                files = [
                    e.stat().st_mtime_ns
                    for e in os.scandir(day.path)
                    if e.is_file() and not e.name.startswith(".")
                ]
                newest = max([folder, *files])
                if files and (newest > mark or key in pending):
                    changed.setdefault(day.name, {})[feed.name] = newest
    return changed


def _dirs(path) -> list[os.DirEntry]:
    if not os.path.isdir(path):
        return []
    return sorted((e for e in os.scandir(path) if e.is_dir()), key=lambda e: e.name)


def _cursor(text: str | None) -> tuple[int, set[str]]:
    """(mark, pending) from the cursor; a cursor of the older form ("feed/day" -> mtime) gives its newest mtime."""
    state = json.loads(text) if text else {}
    if "mark" in state:
        return int(state["mark"]), set(state.get("pending", []))
    return max(state.values(), default=0), set()


@dg.sensor(
    job=ingest_job,
    minimum_interval_seconds=automation.sensor_interval(60),
    default_status=automation.sensor_status(),
)
def landing_files_sensor(context: dg.SensorEvaluationContext):
    """New or re-sent files in the landing zone: one run per landing day, for the feeds whose files changed.

    The cursor is the time of the last scan (less a margin) and the folders seen but not requested yet (a day
    that is not a partition yet): they are looked at again on every tick until they are requested."""
    mark, pending = _cursor(context.cursor)
    started = time.time_ns()
    keys = DAILY.get_partition_keys()  # up to today, a Beijing day
    valid, recent = set(keys), set(keys[-RECENT_DAYS:])
    catalog = load_catalog()
    by_id = {f.id: f for f in catalog.feeds}
    waiting: list[str] = []
    for day, feeds in sorted(landing_changes(catalog, mark, recent, pending).items()):
        if day not in valid:
            if _is_day(day) and keys and day > keys[-1]:
                waiting += [f"{f}/{day}" for f in feeds]
                context.log.info(f"landing folder {day} is not a partition yet: kept for a later tick")
            else:
                context.log.warning(
                    f"landing folder {day} of {sorted(feeds)} is not a partition of {DAILY} and is not loaded;"
                    f" fix: name day folders YYYY-MM-DD (Beijing days) from {PARTITION_START} on,"
                    " or set JX_PARTITION_START earlier"
                )
            continue
        yield dg.RunRequest(
            run_key=f"{day}:{max(feeds.values())}",
            partition_key=day,
            asset_selection=[
                k for f in sorted(feeds) for k in (feed_key(by_id[f]), feed_key(by_id[f], "staged"))
            ]
            + [SCORECARD],
        )
    context.update_cursor(json.dumps({"mark": started - MARGIN_NS, "pending": sorted(waiting)}))


def _is_day(name: str) -> bool:
    try:
        date.fromisoformat(name)
    except ValueError:
        return False
    return len(name) == 10


defs = dg.Definitions(
    jobs=[ingest_job], schedules=cadence_schedules(load_catalog()), sensors=[landing_files_sensor]
)
