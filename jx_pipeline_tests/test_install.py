"""The package works from a wheel, outside the source checkout, and every process of a deployment makes the same
pseudonymous master keys from one secret that is never written to logs or run records.

The wheel is installed into a fresh venv with the locked dependencies (uv, from its local cache), then run from
a folder that is not the checkout, against databases of this test.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jx_pipeline.lib import settings
from jx_pipeline.lib.migrations import discover
from jx_pipeline.lib.pg import connect
from jx_pipeline_tests.conftest import run_cli

# the uv that `make` uses (python3 -m uv), else one on PATH
UV = (
    ["python3", "-m", "uv"]
    if subprocess.run(["python3", "-m", "uv", "--version"], capture_output=True).returncode == 0
    else ["uv"]
)


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    started = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, **kwargs)
    assert done.returncode == 0, f"{cmd[:4]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    print(f"{' '.join(Path(c).name for c in cmd[:4])}: {time.monotonic() - started:.1f} s")  # shown with -s
    return done


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory) -> Path:
    """A fresh venv holding the built wheel and the locked dependencies; prints how long each step took."""
    root = tmp_path_factory.mktemp("install")
    started = time.monotonic()
    # an sdist, then the wheel from it (so nothing is built inside the checkout, and the sdist is complete too)
    _run([*UV, "build", "--quiet", "-o", str(root / "dist"), str(settings.PROJECT_ROOT)])
    built = time.monotonic()
    (wheel,) = (root / "dist").glob("jx_pipeline-*.whl")
    venv = root / "venv"
    _run([*UV, "venv", "--quiet", "--python", sys.executable, str(venv)])
    lock = settings.PROJECT_ROOT / "requirements.lock"
    _run(
        [*UV, "pip", "install", "--quiet", "--python", str(venv / "bin/python"), "-r", str(lock), str(wheel)]
    )
    print(
        f"wheel built in {built - started:.1f} s, venv with dependencies in {time.monotonic() - built:.1f} s"
    )
    return venv


def _env(venv: Path, **extra: str) -> dict[str, str]:
    """Nothing of the checkout or the session: no JX_* settings, no PYTHONPATH; the venv's commands first."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("JX_", "DAGSTER_", "PYTHON", "VIRTUAL_ENV"))
    }
    return env | {"PATH": f"{venv / 'bin'}:{env['PATH']}", **extra}


def test_wheel_install_runs_outside_the_checkout(wheel_venv, make_scratch_db, world, tmp_path):
    wh_url, dg_url = make_scratch_db(), make_scratch_db()
    secret = f"deployment-secret-{os.getpid()}-{time.time_ns()}"
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = _env(
        wheel_venv,
        JX_WAREHOUSE_URL=wh_url,
        JX_DAGSTER_STORAGE_URL=dg_url,
        JX_WORLD_DIR=str(world),
        JX_PSEUDONYM_SECRET=secret,
    )
    jx = str(wheel_venv / "bin/jx-pipeline")

    where = _run(
        [str(wheel_venv / "bin/python"), "-c", "import jx_pipeline; print(jx_pipeline.__file__)"],
        env=env,
        cwd=work,
    )
    assert Path(where.stdout.strip()).is_relative_to(wheel_venv), where.stdout  # the wheel, not the checkout

    # the catalog (feeds.yaml) and noise.yaml are read from the wheel (a world is ~1 min to generate here)
    data = (
        "from jx_pipeline.catalog import load_catalog; from jx_pipeline.world import generate; import yaml; "
    )
    data += "print(len(load_catalog().feeds), len(yaml.safe_load(generate.NOISE_DEFAULTS.read_text())))"
    feeds, noise = _run([str(wheel_venv / "bin/python"), "-c", data], env=env, cwd=work).stdout.split()
    assert int(feeds) == 168 and int(noise) > 0
    _run([jx, "db", "up"], env=env, cwd=work)
    status = _run([jx, "db", "status"], env=env, cwd=work)
    assert f"migrations    : {[m.version for m in discover()]}" in status.stdout, status.stdout
    assert "postgis       : 3." in status.stdout

    _run([jx, "materialize", "--select", "group:reference"], env=env, cwd=work)
    with connect(wh_url) as conn:
        units = conn.execute("select count(*) from core.admin_unit").fetchone()[0]
    with connect(
        dg_url
    ) as conn:  # the run is recorded in the Postgres storage, not in files next to the venv
        runs = conn.execute("select status from runs").fetchall()
        stored = (
            conn.execute("select string_agg(event, '') from event_logs").fetchone()[0]
            + conn.execute("select string_agg(run_body, '') from runs").fetchone()[0]
        )
    assert units > 0
    assert runs == [("SUCCESS",)], runs
    assert (work / ".jx" / "dagster_home" / "dagster.yaml").is_file()  # state in ./.jx of where it runs
    assert not list(wheel_venv.rglob("dagster_home")) and not list(wheel_venv.rglob("history"))

    # the pseudonym secret comes from the environment only: never in run records, logs or the state folder
    assert secret not in stored
    logs = [p for p in (work / ".jx").rglob("*") if p.is_file()]
    assert logs and not [p for p in logs if secret.encode() in p.read_bytes()]
    assert not (work / ".jx" / "pseudonym.key").exists()
    assert secret not in _run([jx, "db", "env"], env=env, cwd=work).stdout


KEYS = """
import json, sys
from jx_pipeline.lib import identity
print(json.dumps([identity.pseudonym(k, v) for k, v in
                  [("person", "330402198001010011"), ("legal_person", "91330400MA2B12345X")]]))
"""


def _master_keys(state: Path, secret: str | None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("JX_PSEUDONYM_SECRET", "JX_STATE_DIR")}
    env |= {"JX_STATE_DIR": str(state)} | ({"JX_PSEUDONYM_SECRET": secret} if secret else {})
    return json.loads(_run([sys.executable, "-c", KEYS], env=env).stdout)


def test_one_secret_gives_every_machine_the_same_master_keys(tmp_path):
    """Two processes with their own state folders (two machines) agree only through JX_PSEUDONYM_SECRET."""
    a, b = tmp_path / "machine-a", tmp_path / "machine-b"
    shared = _master_keys(a, "one-deployment-secret")
    assert shared == _master_keys(b, "one-deployment-secret")
    assert not (a / "pseudonym.key").exists() and not (b / "pseudonym.key").exists()
    assert shared != _master_keys(a, "another-deployment-secret")
    # without it each machine makes its own key file, and their master keys differ: a single-machine default
    assert _master_keys(a, None) != _master_keys(b, None)
    assert (a / "pseudonym.key").exists() and _master_keys(a, None) == _master_keys(a, None)


def test_db_status_shows_a_fingerprint_that_machines_compare(tmp_path):
    def status(machine: str, secret: str | None) -> str:
        env = {"JX_STATE_DIR": str(tmp_path / machine), "JX_PSEUDONYM_SECRET": secret}
        done = run_cli("db", "status", env=env)
        assert done.returncode == 0, done.stderr
        (line,) = [x for x in done.stdout.splitlines() if x.startswith("pseudonyms    :")]
        return line

    a = status("machine-a", "one-deployment-secret")
    assert a == status("machine-b", "one-deployment-secret")
    assert "JX_PSEUDONYM_SECRET, fingerprint " in a and "one-deployment-secret" not in a
    assert a != status("machine-a", "another-deployment-secret")
    assert "not made yet" in status("machine-c", None)  # status alone makes no key file
    assert not (tmp_path / "machine-c" / "pseudonym.key").exists()


def test_processes_starting_together_share_the_generated_key(tmp_path):
    """Without the variable, the processes of one machine agree on the one key file, however they race."""
    env = {k: v for k, v in os.environ.items() if k != "JX_PSEUDONYM_SECRET"} | {
        "JX_STATE_DIR": str(tmp_path)
    }
    procs = [
        subprocess.Popen([sys.executable, "-c", KEYS], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    outs = {p.communicate(timeout=120)[0] for p in procs}
    assert all(p.returncode == 0 for p in procs) and len(outs) == 1, outs
    assert [p.name for p in tmp_path.iterdir()] == ["pseudonym.key"]  # no temporary file left
