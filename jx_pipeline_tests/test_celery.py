"""Scale-out on Celery: the same definitions, with `--executor celery`, run their steps on two Celery workers
(a Redis of the test's own as broker, started by `jx-pipeline workers up` like `make workers` does), and the
warehouse they build equals an in-process run's, table by table.

Where a step ran is read from what the run itself recorded in Dagster's storage: the process id of each step's
STEP_START event, and the worker named in dagster-celery's "Executing steps ... in celery worker" event."""

import os
import subprocess
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from jx_pipeline.lib import link_texts, settings
from jx_pipeline.lib.pg import connect
from jx_pipeline_tests.conftest import JX, free_port
from jx_pipeline_tests.faults import warehouse_digest

DEPARTMENTS = ("wjw", "tjj")  # landing files only; files and a source table
SELECT = " or ".join(f"tag:jx/{t}=feed and group:{d}" for d in DEPARTMENTS for t in ("ingest", "staged"))
DAY = "2026-11-01"


def _run(args: list[str], env: dict, log: Path, timeout: float = 240) -> subprocess.Popen:
    full = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    with log.open("wb") as out:
        return subprocess.Popen(
            [JX, *args], env=full, cwd=settings.PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT
        )


def _wait(proc: subprocess.Popen, log: Path, timeout: float = 240) -> None:
    assert proc.wait(timeout=timeout) == 0, log.read_text(errors="replace")[-4000:]


def _steps(dagster_url: str, newest: bool = False) -> tuple[str, dict[str, int], dict[str, str], set[int]]:
    """(status, {step: pid of its STEP_START}, {step: celery worker named by its engine event}, the pids of the
    orchestrating process's engine events) of the fixture's run (the first), or of the newest."""
    with psycopg.connect(dagster_url) as conn:
        run_id, status = conn.execute(
            f"select run_id, status from runs order by create_timestamp {'desc' if newest else ''} limit 1"
        ).fetchone()
        rows = conn.execute(
            "select step_key, dagster_event_type, event from event_logs where run_id = %s"
            " and dagster_event_type in ('STEP_START', 'ENGINE_EVENT') order by id",
            (run_id,),
        ).fetchall()
    pids, workers, orchestrator = {}, {}, set()
    for step, kind, event in rows:
        ev = dg.deserialize_value(event, dg.EventLogEntry).dagster_event
        if kind == "STEP_START":
            pids[step] = ev.pid
        elif "Celery worker" in ev.engine_event_data.metadata:  # sent by the worker that took the step
            workers[step] = ev.engine_event_data.metadata["Celery worker"].value
        elif ev.pid is not None:
            orchestrator.add(ev.pid)
    return status, pids, workers, orchestrator


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.fixture(scope="module")
def runs(world, source_url, make_scratch_db_module, tmp_path_factory):
    """The same selection materialized twice: on two Celery workers and in one process, each into a warehouse
    and a Dagster storage of its own; yields both, and the workers' pids while they still run."""
    tmp = tmp_path_factory.mktemp("celery")
    state = tmp / "state"  # the test's own .jx: its Redis, worker pid files and logs
    base = {"JX_SOURCE_DB_URL": source_url, "JX_STATE_DIR": str(state), "JX_REDIS_PORT": str(free_port())}
    base |= {"JX_CELERY_BROKER_URL": None, "JX_EXECUTOR": None, "JX_PARSE_AHEAD": None}
    base |= {"JX_PARSE_AHEAD_MIN": "1"}  # the test world's departments have a few thousand texts
    celery = base | {
        "JX_WAREHOUSE_URL": make_scratch_db_module(),
        "JX_DAGSTER_STORAGE_URL": make_scratch_db_module(),
    }
    local = base | {
        "JX_WAREHOUSE_URL": make_scratch_db_module(),
        "JX_DAGSTER_STORAGE_URL": make_scratch_db_module(),
    }
    up = subprocess.run(
        [JX, "workers", "up", "--count", "2"],
        env={k: v for k, v in {**os.environ, **celery}.items() if v is not None},
        capture_output=True,
        text=True,
        timeout=240,
        cwd=settings.PROJECT_ROOT,
    )
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        worker_pids = [int((state / "celery" / f"worker-{i}.pid").read_text()) for i in (1, 2)]
        # both runs at once: the in-process one needs no worker, and the machine has two cores
        args = ["materialize", "--select", SELECT, "--partition-range", f"{DAY}...{DAY}"]
        on_celery = _run([*args, "--executor", "celery"], celery, tmp / "celery.log")
        in_process = _run([*args, "--executor", "in_process"], local, tmp / "local.log")
        _wait(on_celery, tmp / "celery.log")
        _wait(in_process, tmp / "local.log")
        yield celery, local, worker_pids, tmp
    finally:
        env = {k: v for k, v in {**os.environ, **celery}.items() if v is not None}
        subprocess.run([JX, "workers", "down"], env=env, capture_output=True, timeout=120)
        subprocess.run([JX, "redis", "down"], env=env, capture_output=True, timeout=60)


def test_steps_ran_on_two_worker_processes(runs):
    celery, local, worker_pids, _ = runs
    status, pids, workers, orchestrator = _steps(celery["JX_DAGSTER_STORAGE_URL"])
    assert status == "SUCCESS"
    expected = {f"{layer}_{d}" for d in DEPARTMENTS for layer in ("raw", "staged")}
    assert set(pids) == expected, pids
    # every step in a pool process of one of the two workers the test started, none in the run's own process
    assert len(orchestrator) == 1 and not orchestrator & set(pids.values()), (orchestrator, pids)
    owners = {step: _parent(pid) for step, pid in pids.items()}
    assert set(owners.values()) == set(worker_pids), (owners, worker_pids)
    # dagster-celery's own record of the worker that took each step names both workers
    assert set(workers) == expected
    assert {name.split("@")[0] for name in workers.values()} == {"jx-worker-1", "jx-worker-2"}

    # the in-process run, read the same way, ran every step in the run's own process: the check above can fail
    status, pids, workers, orchestrator = _steps(local["JX_DAGSTER_STORAGE_URL"])
    assert status == "SUCCESS" and set(pids) == expected and workers == {}
    assert set(pids.values()) == orchestrator and len(orchestrator) == 1


def test_warehouse_equals_the_in_process_runs(runs):
    celery, local, _, _ = runs
    got, want = warehouse_digest(celery["JX_WAREHOUSE_URL"]), warehouse_digest(local["JX_WAREHOUSE_URL"])
    assert got == want
    loaded = {t: n for t, (n, _) in want.items() if t.startswith(("raw.", "staged.")) and n}
    assert {t.split(".")[1].split("_")[0] for t in loaded} == set(DEPARTMENTS), (
        loaded
    )  # both departments' rows

    # one row less on the Celery side, and the comparison sees it
    table = min(t for t in loaded if t.startswith("staged."))
    with connect(celery["JX_WAREHOUSE_URL"]) as conn:
        conn.execute(f"delete from {table} where ctid = (select min(ctid) from {table})")
        conn.commit()
    changed = warehouse_digest(celery["JX_WAREHOUSE_URL"])
    assert changed != want and changed[table][0] == want[table][0] - 1


def test_texts_are_parsed_ahead_on_the_workers_as_in_process(runs):
    """The departments' steps ahead of linking (core/address_texts/<dept>) run on the workers in a Celery run,
    and what they parsed is what the parser gives in this process."""
    celery, _, worker_pids, tmp = runs
    steps = {f"core__address_texts__{d}" for d in DEPARTMENTS}
    select = " or ".join(f"key:core/address_texts/{d}" for d in DEPARTMENTS)
    log = tmp / "texts.log"
    try:
        _wait(_run(["materialize", "--executor", "celery", "--select", select], celery, log), log)
        status, pids, _, _ = _steps(celery["JX_DAGSTER_STORAGE_URL"], newest=True)
        assert status == "SUCCESS" and set(pids) == steps
        assert {_parent(pid) for pid in pids.values()} <= set(worker_pids)
        with connect(celery["JX_WAREHOUSE_URL"]) as conn:
            rows = conn.execute(
                "select text_md5, text, entity_id, fuzzy, outside, village_code from staged._parse_cache"
            ).fetchall()
            parser = link_texts.parser(conn, link_texts.parser_key(conn))
        assert len(rows) > 100
        assert [(u.hex, *rest) for u, *rest in rows] == [link_texts.parse_row(parser, r[1]) for r in rows]
    finally:  # the warehouse as the fixture left it, for the comparison with the in-process run's
        with connect(celery["JX_WAREHOUSE_URL"]) as conn:
            conn.execute("delete from staged._parse_cache")
            conn.execute("delete from staged._parse_cache_key")
            conn.execute("delete from staged._seen_partition where starts_with(consumer, 'parse:')")
            conn.commit()


def test_the_broker_password_stays_out_of_logs_and_run_records(runs):
    """The broker URL holds Redis's password: not in the run's config or events, nor in the workers' logs."""
    celery, _, _, tmp = runs
    password = (tmp / "state" / "redis" / "password").read_text().strip()
    assert len(password) >= 24 and oct((tmp / "state" / "redis" / "password").stat().st_mode)[-3:] == "600"
    logs = [*(tmp / "state" / "celery").glob("*.log"), tmp / "celery.log"]
    assert logs and not [p for p in logs if password in p.read_text(errors="replace")]
    with psycopg.connect(celery["JX_DAGSTER_STORAGE_URL"]) as conn:
        found = conn.execute(
            "select (select count(*) from runs where run_body like %(p)s)"
            " + (select count(*) from event_logs where event like %(p)s)",
            {"p": f"%{password}%"},
        ).fetchone()[0]
        assert conn.execute("select count(*) from runs").fetchone()[0] >= 1
    assert found == 0


def _celery_run(env: dict) -> subprocess.CompletedProcess:
    full = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    return subprocess.run(
        [JX, "materialize", "--executor", "celery", "--select", SELECT],
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=settings.PROJECT_ROOT,
    )


def test_a_celery_run_without_workers_is_refused(runs, tmp_path):
    """No worker on the broker: the CLI says so before the run, instead of a run whose steps wait forever."""
    celery, *_ = runs
    done = _celery_run(celery | {"JX_STATE_DIR": str(tmp_path / "state"), "JX_REDIS_PORT": str(free_port())})
    assert done.returncode != 0
    assert "local Redis" in done.stderr + done.stdout and "workers up" in done.stderr + done.stdout


def test_a_run_for_another_world_is_refused_while_the_workers_run_the_old_one(runs, tmp_path):
    """Workers keep the environment they started with: a Celery run with another world is refused before it starts
    (its steps would read the workers' world), with the command that restarts them."""
    celery, *_ = runs
    done = _celery_run(celery | {"JX_WORLD_DIR": str(tmp_path)})
    assert done.returncode != 0
    assert "another environment" in done.stderr and "jx-pipeline workers up" in done.stderr, done.stderr
