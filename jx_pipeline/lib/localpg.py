"""The local PostgreSQL 15 + PostGIS cluster kept under ``.jx/pg``: install, init, start, stop.

A new user gets a working warehouse from one command on a fresh Debian/Ubuntu machine; nothing here runs
when ``JX_WAREHOUSE_URL`` points at an existing PostgreSQL.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
from pathlib import Path

from jx_pipeline.lib.errors import JxError
from jx_pipeline.lib.settings import LocalCluster

PG_MAJOR = "15"
APT_PACKAGES = [f"postgresql-{PG_MAJOR}", f"postgresql-{PG_MAJOR}-postgis-3"]


def bin_dir() -> Path:
    return Path(os.environ.get("JX_PG_BINDIR", f"/usr/lib/postgresql/{PG_MAJOR}/bin"))


def share_dir() -> Path:
    return Path(os.environ.get("JX_PG_SHAREDIR", f"/usr/share/postgresql/{PG_MAJOR}"))


def missing_packages() -> list[str]:
    """Which required system components are absent, described for a human."""
    missing = []
    absent = [tool for tool in ("initdb", "pg_ctl", "postgres") if not (bin_dir() / tool).exists()]
    if absent:
        missing.append(f"PostgreSQL {PG_MAJOR} server ({bin_dir() / absent[0]} not found)")
    postgis = [share_dir() / "extension" / "postgis.control", bin_dir().parent / "lib" / "postgis-3.so"]
    absent_postgis = [p for p in postgis if not p.exists()]
    if absent_postgis:
        missing.append(f"PostGIS 3 for PostgreSQL {PG_MAJOR} ({absent_postgis[0]} not found)")
    return missing


def _can_install() -> list[str] | None:
    """The command prefix that may run apt-get non-interactively, or None."""
    if shutil.which("apt-get") is None:
        return None
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        return ["sudo", "-n"]
    return None


def apt_fix(packages: list[str]) -> str:
    return f"sudo apt-get update && sudo apt-get install -y --no-install-recommends {' '.join(packages)}"


APT_FIX = apt_fix(APT_PACKAGES)


def installed(package: str) -> bool:
    """Whether dpkg has the Debian package fully installed (False without dpkg: not a Debian machine)."""
    if shutil.which("dpkg-query") is None:
        return False
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${db:Status-Status}", package], capture_output=True, text=True
    )
    return done.returncode == 0 and done.stdout.strip() == "installed"


# helpers and tests install at the same time: apt waits for another apt's lock instead of failing at once
_APT_LOCK_WAIT = ["-o", "DPkg::Lock::Timeout=300"]


def ensure_packages(packages: list[str], *, install: bool = True, log=print, why: str = "") -> list[str]:
    """Install those of the Debian ``packages`` that are not installed yet, with apt-get (as root, or with
    passwordless sudo), and return them. Without apt-get or the right to use it (or ``install=False``), a
    clear error names the packages and the command that installs them."""
    missing = [p for p in packages if not installed(p)]
    if not missing:
        return []
    fix = apt_fix(missing)
    prefix = _can_install() if install else None
    if prefix is None:
        need = f" ({why})" if why else ""
        raise JxError(f"missing system package{need}: {' '.join(missing)}", fix=fix)
    log(f"installing {' '.join(missing)} with apt-get ...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    steps = [
        ["apt-get", *_APT_LOCK_WAIT, "update", "-qq"],
        ["apt-get", *_APT_LOCK_WAIT, "install", "-y", "-qq", "--no-install-recommends", *missing],
    ]
    for step in steps:
        done = subprocess.run(prefix + step, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
            raise JxError(f"'{' '.join(step)}' failed: {tail[0]}", fix=fix)
    still = [p for p in missing if not installed(p)]
    if still:
        raise JxError(f"missing system package after apt-get install: {' '.join(still)}", fix=apt_fix(still))
    return missing


def ensure_postgres(install: bool = True, log=print) -> None:
    """PostgreSQL and PostGIS where this project looks for them (JX_PG_BINDIR / JX_PG_SHAREDIR may point at
    a build of one's own: then nothing is installed)."""
    missing = missing_packages()
    if not missing:
        return
    if not install or _can_install() is None:
        raise JxError("missing system package: " + "; ".join(missing), fix=APT_FIX)
    ensure_packages(APT_PACKAGES, install=install, log=log, why="the local PostgreSQL cluster")
    if missing_packages():
        raise JxError("missing system package after install: " + "; ".join(missing_packages()), fix=APT_FIX)


def _service_user() -> str | None:
    """PostgreSQL refuses to run as root: as root we run it as the ``postgres`` user."""
    return "postgres" if os.geteuid() == 0 else None


def _run(cmd: list[str], *, check: bool = True) -> subprocess.CompletedProcess:
    user = _service_user()
    full = (["runuser", "-u", user, "--"] if user else []) + cmd
    done = subprocess.run(full, capture_output=True, text=True)
    if check and done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise JxError(f"'{Path(cmd[0]).name} {' '.join(cmd[1:2])}' failed: {detail[0]}")
    return done


def _make_reachable(path: Path, user: str, log) -> None:
    """Let the service user traverse into the project folder (o+x only, no read), as initdb requires."""
    uid = pwd.getpwnam(user).pw_uid
    for parent in reversed(path.parents):
        st = parent.stat()
        if st.st_uid != uid and not st.st_mode & stat.S_IXOTH:
            parent.chmod(st.st_mode | stat.S_IXOTH)
            log(f"note: added o+x to {parent} so that user '{user}' can reach {path}")


def _chown(path: Path, user: str | None) -> None:
    if user:
        pw = pwd.getpwnam(user)
        os.chown(path, pw.pw_uid, pw.pw_gid)


def init(cluster: LocalCluster, log=print) -> bool:
    """Create the cluster if it does not exist yet. Returns True when it was created."""
    if (cluster.data_dir / "PG_VERSION").exists():
        return False
    user = _service_user()
    cluster.root.mkdir(parents=True, exist_ok=True)
    if user:
        _make_reachable(cluster.root, user, log)
    _chown(cluster.root, user)
    if not cluster.password_file.exists():
        cluster.password_file.write_text(secrets.token_urlsafe(24) + "\n")
        cluster.password_file.chmod(0o600)
    _chown(cluster.password_file, user)
    log(f"creating PostgreSQL {PG_MAJOR} cluster in {cluster.data_dir}")
    _run(
        [
            str(bin_dir() / "initdb"),
            "-D",
            str(cluster.data_dir),
            "-U",
            cluster.user,
            "--auth=scram-sha-256",
            f"--pwfile={cluster.password_file}",
            "--encoding=UTF8",
            "--locale=C",
        ]
    )
    conf = cluster.data_dir / "postgresql.conf"
    with conf.open("a") as fh:
        fh.write(
            "\n# jx-pipeline local cluster: loopback only, no unix socket, tuned for a small machine\n"
            f"listen_addresses = '{cluster.host}'\nunix_socket_directories = ''\n"
            "shared_buffers = 512MB\nwork_mem = 64MB\nmaintenance_work_mem = 512MB\n"
            "synchronous_commit = off\nmax_wal_size = 4GB\nmax_connections = 200\n"
        )
    return True


def _listening(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


def running_port(cluster: LocalCluster) -> int | None:
    """The port of our cluster's live postmaster, or None when it is not running."""
    pidfile = cluster.data_dir / "postmaster.pid"
    if not pidfile.exists():
        return None
    if _run([str(bin_dir() / "pg_ctl"), "status", "-D", str(cluster.data_dir)], check=False).returncode != 0:
        return None
    lines = pidfile.read_text().splitlines()
    return int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None


def check_port_free(host: str, port: int) -> None:
    if _listening(host, port):
        raise JxError(
            f"port {port} on {host} is already taken by another process, so the local cluster cannot start",
            fix=f"JX_PG_PORT={port + 1} jx-pipeline db up   (or stop whatever listens: ss -ltnp 'sport = :{port}')",
        )


# Set at every start, so clusters made before them get them too. No replica and no WAL archive reads this
# cluster: with wal_level minimal, a table created or truncated in a load's transaction is written without WAL
# and synced at commit (PostgreSQL's "Populating a Database"), which halves the writes of every bulk load.
SERVER_OPTIONS = "-c wal_level=minimal -c max_wal_senders=0"


def start(cluster: LocalCluster, log=print) -> None:
    port = running_port(cluster)
    if port == cluster.port:
        return
    if port is not None:
        raise JxError(
            f"the local cluster is running on port {port}, not on JX_PG_PORT={cluster.port}",
            fix=f"jx-pipeline db down && JX_PG_PORT={cluster.port} jx-pipeline db up",
        )
    check_port_free(cluster.host, cluster.port)
    log(f"starting PostgreSQL on {cluster.host}:{cluster.port}")
    done = _run(
        [
            str(bin_dir() / "pg_ctl"),
            "start",
            "-w",
            "-t",
            "60",
            "-D",
            str(cluster.data_dir),
            "-l",
            str(cluster.log_file),
            "-o",
            f"-p {cluster.port} {SERVER_OPTIONS}",
        ],
        check=False,
    )
    if done.returncode != 0:
        tail = cluster.log_file.read_text().strip().splitlines()[-3:] if cluster.log_file.exists() else []
        raise JxError(
            f"PostgreSQL did not start: {' | '.join(tail) or done.stderr.strip()}",
            fix=f"read {cluster.log_file}, then jx-pipeline db up",
        )


def stop(cluster: LocalCluster, mode: str = "fast") -> bool:
    """Stop the cluster (``mode`` "immediate": as a crash would); True when it was running."""
    if running_port(cluster) is None:
        return False
    _run([str(bin_dir() / "pg_ctl"), "stop", "-w", "-m", mode, "-D", str(cluster.data_dir)])
    return True
