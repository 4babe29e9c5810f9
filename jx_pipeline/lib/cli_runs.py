"""The runs this machine's `jx-pipeline materialize` started, with the process running each (``.jx/cli_runs``).

A run whose process was killed (kill -9, power loss) would show Started and hold its Dagster pool slots for ever:
Dagster's run monitoring covers launched runs only, not a CLI's in-process run. The next CLI call releases it.
The process is written down the moment it starts, before its run exists: a kill in the second between the run's
start and the CLI noticing it left a run nobody would release (a CI failure of test_crash). Entries are kept per
Dagster storage, so that a CLI pointed at another storage never reads them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

from jx_pipeline.lib import settings

# a run's RUN_START comes this long after its process started, at most (loading the code location under load)
START_WINDOW_S = 900


def _runs_dir() -> Path:
    url = re.sub(r"//([^:@/]*):[^@]*@", r"//\1@", os.environ.get("JX_DAGSTER_STORAGE_URL", ""))
    return settings.STATE_DIR / "cli_runs" / hashlib.sha256(url.encode()).hexdigest()[:12]


def _file(pid: int) -> Path:
    return _runs_dir() / f"{pid}.json"


def _started_at(pid: int) -> str | None:
    """The process's start time in clock ticks since boot, with the boot's id: a pid reused later differs."""
    try:
        ticks = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except (OSError, IndexError):
        return None
    return f"{boot}:{ticks}"


def _write(pid: int, since: float, run_id: str | None) -> None:
    folder = _runs_dir()
    folder.mkdir(parents=True, exist_ok=True)
    entry = {"pid": pid, "since": since, "run_id": run_id, "process": _started_at(pid)}
    tmp = folder / f".{pid}.tmp"
    tmp.write_text(json.dumps(entry))
    os.replace(tmp, _file(pid))  # a reader never sees half an entry


def started(pid: int, since: float) -> None:
    """A ``dagster asset materialize`` process the CLI started at ``since`` (epoch seconds); its run is not known
    yet."""
    _write(pid, since, None)


def remember(run_id: str, pid: int, since: float) -> None:
    """The run the process turned out to start."""
    _write(pid, since, run_id)


def alive(pid: int, process: str | None = None) -> bool:
    """The process exists and is not a zombie (a killed run's process whose parent was killed too stays in /proc
    until something reaps it), and is the one written down (``process``), not a later one given the same pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
        return False
    return process is None or _started_at(pid) == process


def run_of(instance, pid: int, since: float) -> str | None:
    """The first run that process ``pid`` started (its RUN_START event carries the pid), created in the window
    after ``since``."""
    import dagster as dg
    from dagster._core.storage.dagster_run import RunsFilter

    window = RunsFilter(
        created_after=datetime.fromtimestamp(since - 5, tz=UTC),
        created_before=datetime.fromtimestamp(since + START_WINDOW_S, tz=UTC),
    )
    for run in reversed(instance.get_runs(filters=window, limit=200)):  # oldest first
        starts = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.RUN_START).records
        if any(r.event_log_entry.dagster_event.pid == pid for r in starts):
            return run.run_id
    return None


def release_dead(instance) -> list[str]:
    """Mark the runs whose process is gone failed and free their pool slots; returns their ids."""
    released = []
    for path in sorted(_runs_dir().glob("*.json")) if _runs_dir().is_dir() else []:
        try:
            entry = json.loads(path.read_text())
            pid, since, run_id, process = entry["pid"], entry["since"], entry["run_id"], entry.get("process")
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)  # not an entry of ours (writes are atomic): nothing to release
            continue
        if alive(pid, process):
            continue  # still running
        run_id = run_id or run_of(instance, pid, since)  # none: the process ended before it started a run
        run = instance.get_run_by_id(run_id) if run_id else None
        if run is not None and not run.is_finished:
            instance.report_run_failed(
                run, message=f"its process {pid} ended without finishing the run (killed)"
            )
            released.append(run_id)
        if run_id:
            instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        path.unlink(missing_ok=True)
    return released
