"""The end-to-end bench stops the stage it is running when it is stopped: killed from outside, it once left its
`dagster asset materialize` child loading for minutes, competing with whatever was measured next."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from jx_pipeline.lib import settings

SCRIPT = """
import os
import sys
sys.path.insert(0, {bench!r})
import end_to_end
end_to_end.stop_on_sigterm()
end_to_end.run_measured(["address", "parse"], dict(os.environ), sys.stdout)
"""


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_killing_the_bench_stops_its_running_stage(tmp_path):
    bench = str(Path(settings.PROJECT_ROOT) / "bench")
    log = tmp_path / "stage.log"
    with log.open("w") as out:  # the stage (`jx-pipeline address parse`) waits for input until stopped
        proc = subprocess.Popen(
            [sys.executable, "-c", SCRIPT.format(bench=bench)], stdin=subprocess.PIPE, stdout=out
        )
    try:
        deadline = time.monotonic() + 60
        # the stage leads a process group of its own (seen once it has left the fork for its own session)
        while not ((stage := _children(proc.pid)) and os.getpgid(stage[0]) == stage[0]):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.001)  # at once: a kill while the bench is still starting the stage once lost it
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 143
        deadline = time.monotonic() + 30
        while _group_alive(stage[0]):
            assert time.monotonic() < deadline, "the stage outlived the bench:\n" + _ps(stage[0])
            time.sleep(0.1)
    finally:
        proc.kill()
        proc.wait()
        proc.stdin.close()


def _ps(pgid: int) -> str:
    return subprocess.run(
        ["ps", "-o", "pid,stat,args", "-g", str(pgid)], capture_output=True, text=True
    ).stdout


def _children(pid: int) -> list[int]:
    kids = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(x) for x in kids.read_text().split()] if kids.exists() else []


def test_a_stage_of_steps_that_ran_at_once_counts_their_time_once():
    """--runs demo times a stage by the time its steps covered: overlapping steps (multiprocess) count once."""
    from datetime import datetime, timedelta

    sys.path.insert(0, str(Path(settings.PROJECT_ROOT) / "bench"))
    import end_to_end

    t = datetime(2026, 11, 1)

    def span(a, b):
        return (t + timedelta(seconds=a), t + timedelta(seconds=b))

    assert end_to_end._union([span(0, 10), span(5, 12), span(20, 21), span(6, 7)]) == 13.0
    assert end_to_end._union([span(3, 4)]) == 1.0 and end_to_end._union([]) == 0.0
