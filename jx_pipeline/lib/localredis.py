"""The local Redis kept under ``.jx/redis``: the Celery workers' broker and result store on one machine.

Like the PostgreSQL cluster under ``.jx/pg``, a user gets it from one command: Debian's ``redis-server`` is
installed when missing, configured to listen on 127.0.0.1 only, with protected mode on and a generated password
(``.jx/redis/password`` and the config that holds it are mode 600), and started with its pid file and log next
to them. Nothing here runs when ``JX_CELERY_BROKER_URL`` points at a broker of one's own (several machines).
It keeps nothing on disk: queued steps belong to live runs, and a run is re-executed after a restart.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from jx_pipeline.lib import settings
from jx_pipeline.lib.errors import JxError

DEFAULT_PORT = 56379
PACKAGES = ["redis-server"]


@dataclass(frozen=True)
class LocalRedis:
    root: Path
    port: int
    host: str = "127.0.0.1"

    @property
    def conf_file(self) -> Path:
        return self.root / "redis.conf"

    @property
    def password_file(self) -> Path:
        return self.root / "password"

    @property
    def pid_file(self) -> Path:
        return self.root / "redis.pid"

    @property
    def log_file(self) -> Path:
        return self.root / "redis.log"

    def password(self) -> str:
        return self.password_file.read_text().strip()

    def url(self, db: int = 0) -> str:
        return f"redis://:{self.password()}@{self.host}:{self.port}/{db}"


def local_redis() -> LocalRedis:
    return LocalRedis(
        root=settings.STATE_DIR / "redis", port=int(os.environ.get("JX_REDIS_PORT", DEFAULT_PORT))
    )


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def init(redis: LocalRedis) -> None:
    """The folder, the password (once) and the config (rewritten: the port may have changed)."""
    redis.root.mkdir(parents=True, exist_ok=True)
    if not redis.password_file.exists():
        _write_private(redis.password_file, secrets.token_urlsafe(24) + "\n")
    _write_private(
        redis.conf_file,
        "# jx-pipeline local Redis: Celery's broker, loopback only, password, nothing kept on disk\n"
        f"bind {redis.host}\nport {redis.port}\nprotected-mode yes\nrequirepass {redis.password()}\n"
        f"daemonize yes\npidfile {redis.pid_file}\nlogfile {redis.log_file}\ndir {redis.root}\n"
        'save ""\nappendonly no\nmaxclients 1000\n',
    )


def _client(redis: LocalRedis):
    import redis as redis_py

    return redis_py.Redis(
        host=redis.host,
        port=redis.port,
        password=redis.password(),
        socket_connect_timeout=1,
        socket_timeout=2,
    )


def _pid(redis: LocalRedis) -> int | None:
    try:
        pid = int(redis.pid_file.read_text().strip())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None
    return pid


def running(redis: LocalRedis) -> bool:
    """Our server answers on its port with our password."""
    if _pid(redis) is None or not redis.password_file.exists():
        return False
    import redis as redis_py

    try:
        return bool(_client(redis).ping())
    except redis_py.RedisError:
        return False


def up(redis: LocalRedis, install: bool = True, log=print) -> None:
    if running(redis):
        return
    from jx_pipeline.lib import localpg

    localpg.ensure_packages(PACKAGES, install=install, log=log, why="the Celery workers' broker")
    init(redis)
    if localpg._listening(redis.host, redis.port):
        raise JxError(
            f"port {redis.port} on {redis.host} is already taken by another process, so the local Redis cannot start",
            fix=f"JX_REDIS_PORT={redis.port + 1} jx-pipeline redis up   (or stop whatever listens: ss -ltnp 'sport = :{redis.port}')",
        )
    log(f"starting Redis on {redis.host}:{redis.port}")
    done = subprocess.run(["redis-server", str(redis.conf_file)], capture_output=True, text=True)
    deadline = time.monotonic() + 10
    while not running(redis):
        if done.returncode != 0 or time.monotonic() > deadline:
            tail = redis.log_file.read_text().strip().splitlines()[-2:] if redis.log_file.exists() else []
            raise JxError(
                f"Redis did not start: {' | '.join(tail) or done.stderr.strip() or 'no answer on its port'}",
                fix=f"read {redis.log_file}, then jx-pipeline redis up",
            )
        time.sleep(0.05)


def down(redis: LocalRedis, timeout: float = 10) -> bool:
    """Stop our server (by its pid file); True when it was running."""
    pid = _pid(redis)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _pid(redis) == pid and time.monotonic() < deadline:
        time.sleep(0.05)
    if _pid(redis) == pid:
        os.kill(pid, signal.SIGKILL)
    return True
