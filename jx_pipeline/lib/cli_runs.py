"""The runs this machine's `jx-pipeline materialize` started, with the process running each (``.jx/cli_runs``).

A run whose process was killed (kill -9, power loss) would show Started and hold its Dagster pool slots for ever:
Dagster's run monitoring covers launched runs only, not a CLI's in-process run. The next CLI call releases it.
The process is written down the moment it starts, before its run exists: a kill in the second between the run's
start and the CLI noticing it left a run nobody would release (a CI failure of test_crash).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from jx_pipeline.lib import settings


def _runs_dir():
    return settings.STATE_DIR / "cli_runs"


def _file(pid: int) -> Path:
    return _runs_dir() / f"{pid}.json"


def started(pid: int, since: float) -> None:
    """A ``dagster asset materialize`` process the CLI started at ``since`` (epoch seconds); its run is not known
    yet."""
    _runs_dir().mkdir(parents=True, exist_ok=True)
    _file(pid).write_text(json.dumps({"pid": pid, "since": since, "run_id": None}))


def remember(run_id: str, pid: int, since: float) -> None:
    """The run the process turned out to start."""
    _runs_dir().mkdir(parents=True, exist_ok=True)
    _file(pid).write_text(json.dumps({"pid": pid, "since": since, "run_id": run_id}))


def forget(pid: int) -> None:
    _file(pid).unlink(missing_ok=True)


def alive(pid: int) -> bool:
    """The process exists and is not a zombie: a killed run's process whose parent was killed too stays in /proc
    until something reaps it, which can take a while (or for ever, under an init that does not reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def run_of(instance, pid: int, since: float) -> str | None:
    """The run that process ``pid`` started (its RUN_START event carries the pid), created after ``since``."""
    import dagster as dg
    from dagster._core.storage.dagster_run import RunsFilter

    created_after = datetime.fromtimestamp(since - 5, tz=UTC)
    for run in instance.get_runs(filters=RunsFilter(created_after=created_after), limit=20):
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
        except (OSError, ValueError):
            path.unlink(missing_ok=True)  # half written by a process killed mid-write: nothing to release
            continue
        if alive(entry["pid"]):
            continue  # still running
        run_id = entry["run_id"] or run_of(instance, entry["pid"], entry["since"])
        run = instance.get_run_by_id(run_id) if run_id else None
        if run is not None and not run.is_finished:
            instance.report_run_failed(
                run, message=f"its process {entry['pid']} ended without finishing the run (killed)"
            )
            released.append(run_id)
        if run_id:
            instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        path.unlink(missing_ok=True)
    return released
