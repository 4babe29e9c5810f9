"""The Celery workers of this machine: background processes with pid files and logs under ``.jx/celery``.

A worker loads the code once and keeps the environment it was started with (databases, world, state folder,
pseudonym secret), so a worker started before a code change or for another world would run steps wrongly and
quietly. Each worker therefore records a fingerprint of both; ``up`` restarts the workers whose fingerprint is
not the current one and ``check`` refuses a Celery run while such a worker is alive. Workers on other machines
are started there the same way (``jx-pipeline workers up`` with the same ``JX_*`` environment).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from jx_pipeline.lib import settings
from jx_pipeline.lib.errors import JxError
from jx_pipeline.lib.executor import QUEUE, broker_url

APP = "jx_pipeline.lib.celery_app"
# what does not change what a step does (the executor choice, the CLI's own switches)
NOT_STEP_ENV = {"JX_EXECUTOR", "JX_DEBUG", "JX_NO_INSTALL", "JX_UI_PORT"}


def worker_dir() -> Path:
    return settings.STATE_DIR / "celery"


@dataclass(frozen=True)
class Worker:
    index: int

    @property
    def name(self) -> str:
        return f"jx-worker-{self.index}@{socket.gethostname()}"

    def file(self, suffix: str) -> Path:
        return worker_dir() / f"worker-{self.index}.{suffix}"

    def pid(self) -> int | None:
        try:
            pid = int(self.file("pid").read_text())
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ValueError, IndexError):
            return None
        return None if state in ("Z", "X") else pid  # a zombie has ended

    def started_with(self) -> tuple[str, int] | None:
        """(fingerprint, concurrency) the worker was started with."""
        try:
            fp, concurrency = self.file("fingerprint").read_text().split()
        except (FileNotFoundError, ValueError):
            return None
        return fp, int(concurrency)


def worker_env() -> dict[str, str]:
    """What a worker runs with: this process's environment plus the URLs, Dagster home and state folder."""
    return {
        "PYTHONWARNINGS": "ignore",
        **os.environ,
        **settings.dagster_env(),
        "JX_CELERY_BROKER_URL": broker_url(),
    }


def fingerprint(env: dict[str, str]) -> str:
    """A hash of the code (every file of the package: path, size, mtime) and of the JX_* / DAGSTER_* variables
    a step reads; secrets go into the hash only, never to disk as they are."""
    h = hashlib.sha256()
    for key in sorted(env):
        if key.startswith(("JX_", "DAGSTER_")) and key not in NOT_STEP_ENV:
            h.update(f"{key}={env[key]}\0".encode())
    for path in sorted(settings.PACKAGE_DIR.rglob("*")):
        if path.suffix in (".py", ".sql", ".yaml", ".csv") and "__pycache__" not in path.parts:
            st = path.stat()
            h.update(f"{path.relative_to(settings.PACKAGE_DIR)}:{st.st_size}:{st.st_mtime_ns}\0".encode())
    return h.hexdigest()[:16]


def local_workers() -> list[Worker]:
    """The workers with a pid file here (alive or not), by index."""
    found = sorted(int(p.name.split("-")[1].split(".")[0]) for p in worker_dir().glob("worker-*.pid"))
    return [Worker(i) for i in found]


def _stop(worker: Worker, timeout: float) -> None:
    """Warm shutdown (the step under way finishes), then the whole process group after ``timeout``."""
    pid = worker.pid()
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while worker.pid() == pid and time.monotonic() < deadline:
            time.sleep(0.1)
        if worker.pid() == pid:
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):  # our own child (started by this process): reaped
            os.waitpid(pid, os.WNOHANG)
    for suffix in ("pid", "fingerprint"):
        worker.file(suffix).unlink(missing_ok=True)


def _spawn(worker: Worker, env: dict[str, str], concurrency: int) -> None:
    worker_dir().mkdir(parents=True, exist_ok=True)
    celery = str(Path(sys.executable).with_name("celery"))
    args = [celery, "-A", APP, "worker", "-n", worker.name, "-Q", QUEUE, "--concurrency", str(concurrency)]
    # a pool process that grew past 3 GB (a large linking step) is replaced after its step
    args += [
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
        "--max-memory-per-child",
        "3000000",
    ]
    with worker.file("log").open("ab") as log:
        proc = subprocess.Popen(
            args,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped together with its pool
            cwd=settings.PROJECT_ROOT,
        )
    worker.file("pid").write_text(f"{proc.pid}\n")
    worker.file("fingerprint").write_text(f"{fingerprint(env)} {concurrency}\n")


def _app(url: str):
    from celery import Celery

    return Celery("jx-control", broker=url, broker_connection_retry_on_startup=True)


def answering(url: str, names: list[str] | None = None, timeout: float = 1.0) -> set[str]:
    """Workers on the broker that answer a ping (all of them, or those of ``names``)."""
    replies = _app(url).control.ping(destination=names, timeout=timeout) or []
    return {name for reply in replies for name in reply}


def up(count: int, concurrency: int = 1, log=print, timeout: float = 120) -> list[Worker]:
    """``count`` workers with the current code and environment: the missing ones started, stale ones restarted,
    ones above ``count`` stopped; returns them once each answers on the broker."""
    if count < 1:
        raise JxError(f"{count} workers asked for", fix="jx-pipeline workers up --count 2")
    env = worker_env()
    want = fingerprint(env)
    workers = [Worker(i) for i in range(1, count + 1)]
    for extra in local_workers():
        if extra.index > count:
            log(f"stopping {extra.name} (more than {count} asked for)")
            _stop(extra, timeout=60)
    for worker in workers:
        if worker.pid() is not None and worker.started_with() == (want, concurrency):
            continue
        if worker.pid() is not None:
            log(f"restarting {worker.name}: its code, environment or concurrency changed")
            _stop(worker, timeout=60)
        log(f"starting {worker.name} (log {worker.file('log')})")
        _spawn(worker, env, concurrency)
    names = [w.name for w in workers]
    deadline = time.monotonic() + timeout
    while (ready := answering(env["JX_CELERY_BROKER_URL"], names)) != set(names):
        dead = [w for w in workers if w.pid() is None]
        if dead or time.monotonic() > deadline:
            w = (dead or [w for w in workers if w.name not in ready])[0]
            tail = w.file("log").read_text(errors="replace").strip().splitlines()[-3:]
            raise JxError(
                f"Celery worker {w.name} did not come up: {' | '.join(tail) or 'no output'}",
                fix=f"read {w.file('log')}, then jx-pipeline workers up --count {count}",
            )
        time.sleep(0.5)
    return workers


def down(timeout: float = 60) -> list[Worker]:
    stopped = [w for w in local_workers() if w.pid() is not None]
    for worker in local_workers():
        _stop(worker, timeout)
    return stopped


def check() -> int:
    """Before a Celery run: how many workers answer; refuses stale local workers and a run nobody would take."""
    env = worker_env()
    want = fingerprint(env)
    stale = [w for w in local_workers() if w.pid() is not None and (w.started_with() or ("",))[0] != want]
    if stale:
        raise JxError(
            f"Celery worker {stale[0].name} runs older code or another environment (world, databases, secret)",
            fix="jx-pipeline workers up   (restarts it; make workers does the same)",
        )
    ready = answering(env["JX_CELERY_BROKER_URL"])
    if not ready:
        raise JxError(
            "no Celery worker answers on the broker, so the run's steps would wait forever",
            fix="jx-pipeline workers up --count 2   (or make workers)",
        )
    return len(ready)
