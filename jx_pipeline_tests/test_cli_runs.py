"""The CLI's run registry tells a killed run's process from a running one, zombies included: when a run is
killed with its CLI, the run's process is left unreaped for a while and still has an entry in /proc; counted as
running, its pool slots stayed held and the next run waited (a CI failure of test_crash)."""

import subprocess
import time
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
    finally:
        running.kill()
        running.wait()
        ended.wait()
    assert not cli_runs.alive(ended.pid)  # reaped: gone from /proc
