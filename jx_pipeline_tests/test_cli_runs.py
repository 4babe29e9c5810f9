"""The CLI's run registry tells a killed run's process from a running one, zombies included: when a run is
killed with its CLI, the run's process is left unreaped for a while and still has an entry in /proc; counted as
running, its pool slots stayed held and the next run waited (a CI failure of test_crash)."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from jx_pipeline.lib import cli_runs


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_a_zombie_is_dead_and_a_running_process_alive():
    running = subprocess.Popen(["sleep", "30"])
    ended = subprocess.Popen(["true"])  # not waited for: a zombie until reaped below
    try:
        deadline = time.monotonic() + 10
        while _state(ended.pid) != "Z":
            assert time.monotonic() < deadline, "the child did not exit"
            time.sleep(0.02)
        assert Path(f"/proc/{ended.pid}").exists()  # what the old check looked at
        assert not cli_runs.alive(ended.pid)
        assert cli_runs.alive(running.pid)
        assert cli_runs.alive(running.pid, cli_runs._started_at(running.pid))
        assert not cli_runs.alive(running.pid, "another-boot:1")  # the pid reused by a later process
    finally:
        running.kill()
        running.wait()
        ended.wait()
    assert not cli_runs.alive(ended.pid)  # reaped: gone from /proc


SLOW_ASSET = """
import time
import dagster as dg

@dg.asset(pool="{pool}")
def slow():
    time.sleep(120)

defs = dg.Definitions(assets=[slow], executor=dg.in_process_executor)
"""


def test_a_run_killed_before_the_cli_knew_it_is_released(tmp_path, monkeypatch):
    """A real `dagster asset materialize` holding a pool slot, SIGKILLed before the CLI learnt its run id (the
    window that left a run Started and its slot held for ever): the next release finds the run by its process,
    marks it failed and frees the slot."""
    import dagster as dg

    from jx_pipeline.lib import settings

    monkeypatch.setattr(settings, "STATE_DIR", tmp_path / "state")
    pool = f"jx_test_cli_{uuid.uuid4().hex[:8]}"
    (tmp_path / "defs.py").write_text(SLOW_ASSET.format(pool=pool))
    exe = Path(sys.executable).parent / "dagster"
    with dg.DagsterInstance.get() as instance:
        instance.event_log_storage.set_concurrency_slots(pool, 1)
        since = time.time()
        proc = subprocess.Popen(
            [exe, "asset", "materialize", "-f", tmp_path / "defs.py", "--select", "slow"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
            start_new_session=True,
        )
        cli_runs.started(proc.pid, since)  # what follow() writes first, before it knows the run
        try:
            deadline = time.monotonic() + 120
            while instance.event_log_storage.get_concurrency_info(pool).claimed_slots == [] or not (
                run_id := cli_runs.run_of(instance, proc.pid, since)
            ):
                assert proc.poll() is None and time.monotonic() < deadline, "the run never took its slot"
                time.sleep(0.2)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            assert (
                instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED
            )  # held for ever otherwise
            assert cli_runs.release_dead(instance) == [run_id]
            assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
            assert instance.event_log_storage.get_concurrency_info(pool).claimed_slots == []
            assert cli_runs.release_dead(instance) == []  # released once
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            instance.event_log_storage.delete_concurrency_limit(pool)
