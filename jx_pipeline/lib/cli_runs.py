"""The runs this machine's `jx-pipeline materialize` started, with the process running each (``.jx/cli_runs``).

A run whose process was killed (kill -9, power loss) would show Started and hold its Dagster pool slots for ever:
Dagster's run monitoring covers launched runs only, not a CLI's in-process run. The next CLI call releases it.
"""

from __future__ import annotations

from pathlib import Path

from jx_pipeline.lib import settings


def _runs_dir():
    return settings.STATE_DIR / "cli_runs"


def remember(run_id: str, pid: int) -> None:
    """The CLI's run and the process running it, so that a later CLI call can tell the run was killed."""
    folder = _runs_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{run_id}.pid").write_text(str(pid))


def forget(run_id: str) -> None:
    (_runs_dir() / f"{run_id}.pid").unlink(missing_ok=True)


def alive(pid: int) -> bool:
    """The process exists and is not a zombie: a killed run's process whose parent was killed too stays in /proc
    until something reaps it, which can take a while (or for ever, under an init that does not reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def release_dead(instance) -> list[str]:
    """Mark the runs whose process is gone failed and free their pool slots; returns their ids."""
    released = []
    for path in sorted(_runs_dir().glob("*.pid")) if _runs_dir().is_dir() else []:
        run_id, pid = path.stem, int(path.read_text() or 0)
        if pid and alive(pid):
            continue  # still running
        run = instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            instance.report_run_failed(
                run, message=f"its process {pid} ended without finishing the run (killed)"
            )
            released.append(run_id)
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        path.unlink(missing_ok=True)
    return released
