"""Real Dagster processes for operations tests: the webserver (the UI's GraphQL) and the daemon, on the test
session's Postgres instance, with the environment a test gives them; stopped by process group at the end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from jx_pipeline.lib import settings
from jx_pipeline_tests.conftest import free_port

BIN = Path(sys.executable).parent


def env(**extra: str) -> dict[str, str]:
    return {"PYTHONWARNINGS": "ignore", **os.environ, **settings.dagster_env(), **extra}


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextmanager
def started(argv: list[str], log: Path, environ: dict[str, str]):
    with log.open("w") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=environ,
            cwd=settings.PROJECT_ROOT,
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            _stop(proc)


def workspace() -> str:
    return str(settings.dagster_home() / "workspace.yaml")


@contextmanager
def daemon(log: Path, environ: dict[str, str]):
    """``dagster-daemon run``: schedules, sensors, backfills, the run queue, automation and freshness."""
    with started([str(BIN / "dagster-daemon"), "run", "-w", workspace()], log, environ) as proc:
        yield proc


@contextmanager
def webserver(log: Path, environ: dict[str, str], timeout: float = 240):
    """``dagster-webserver`` on 127.0.0.1; yields its GraphQL URL once /server_info answers."""
    port = free_port()
    argv = [str(BIN / "dagster-webserver"), "-w", workspace(), "-h", "127.0.0.1", "-p", str(port)]
    with started(argv, log, environ) as proc:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/server_info", proc, log, timeout)
        yield f"{base}/graphql"


def wait_for_http(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    """Poll ``url`` until it answers; fail with the log's tail when ``proc`` ends first or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=5).close()
            return
        except OSError:  # refused, reset, or an HTTP error while the server starts
            assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, f"{url} did not answer in {timeout} s"
            time.sleep(0.5)


def graphql(url: str, query: str, variables: dict | None = None) -> dict:
    req = urllib.request.Request(
        url,
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=120) as resp:
        body = json.load(resp)
    assert "errors" not in body, body["errors"]
    return body["data"]


LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on UnauthorizedError { message }
  }
}"""


def launch_backfill(url: str, keys: list[list[str]], partitions: list[str], title: str) -> str:
    params = {
        "partitionNames": partitions,
        "assetSelection": [{"path": k} for k in keys],
        "fromFailure": False,
        "title": title,
    }
    result = graphql(url, LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
    assert result["__typename"] == "LaunchBackfillSuccess", result
    return result["backfillId"]


def wait_until(what: str, until, timeout: float = 600):
    """Poll ``until()`` every second until it returns something truthy (returned); fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not (found := until()):
        assert time.monotonic() < deadline, f"waited {timeout} s for {what}"
        time.sleep(1)
    return found
