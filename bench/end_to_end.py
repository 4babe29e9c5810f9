"""End to end at several scales: landing files to published marts, per stage, plus one day's increment.

Issue 13 asks where the time goes as the city's volume grows. For each scale this generates a world (not timed:
it stands for the departments' deliveries), makes fresh databases on the server of ``--admin-url`` and runs the
pipeline over every landing day but the last, one `jx-pipeline materialize` per stage; then the last day lands as
the increment and the same stages run for it. ``--runs demo`` runs each phase as `make demo` does instead, in two
runs (ingest; entities, links and marts), and ``--runs daily`` in one, as the ``daily`` job runs a landing day;
each stage timed by its steps' events and each run's time outside its steps (process start, code location, run
bookkeeping: paid once per run, not per stage) on a row of its own. The
stages: raw, staged (with its checks and the scorecard), entities, links, identities, marts. Per stage it prints
wall time, records per second (records = raw rows loaded plus rejected of the stage's days, from
``quality.load_audit``) and the peak PSS of the stage's whole process tree (Dagster's step processes included; PostgreSQL's own server
processes are not in the tree and are reported apart as the cluster's PSS at the end of the stage). With two or
more scales it prints the time ratio between consecutive scales next to their record ratio (linear = equal).

    .venv/bin/python bench/end_to_end.py --scales 0.001 0.01 --seed 7 \\
        --admin-url "$(.venv/bin/jx-pipeline db url | sed 's,/jx_warehouse$,/postgres,')"

A scale's world is reused from ``--workdir`` when its manifest matches. The run's JSON lines go to stdout.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo_seeds import JX, _databases, _url

INGEST_RAW = "tag:jx/ingest=feed"
STAGES = [  # (name, selection, partitioned by landing day)
    ("raw", INGEST_RAW, True),
    ("staged", "tag:jx/staged=feed or key:quality/scorecard", True),
    ("entities", "group:entities", False),
    ("links", "key:core/entity_link or tag:jx/texts=department", False),  # its texts parsed ahead too
    ("identities", "key:core/person or key:core/legal_person", False),
    ("marts", "group:mart", False),
]


# --runs demo: each phase in make demo's two runs; --runs daily: in one run, as the `daily` job
# (defs/operations/jobs.py) does a landing day; each stage's time taken from its steps' events
INGEST_RUN = f"{INGEST_RAW} or tag:jx/staged=feed or key:quality/scorecard"
CORE_RUN = "group:entities or group:linking or group:mart"
RUNS = {
    "demo": [("ingest", INGEST_RUN, True), ("core and marts", CORE_RUN, False)],
    "daily": [("daily", f"{INGEST_RUN} or {CORE_RUN}", "day")],  # a run per landing day of the phase
}
STEP_STAGE = [  # step key prefix -> stage; any other step is a mart's
    ("raw_", "raw"),
    ("staged_", "staged"),
    ("quality__", "staged"),
    ("core__geo_entity", "entities"),
    ("core__address_point", "entities"),
    ("core__entity_link", "links"),
    ("core__address_texts", "links"),
    ("core_identity", "identities"),
]


def _union(spans: list[tuple]) -> float:
    """Seconds covered by the (start, end) spans: steps that ran at once (multiprocess) count once."""
    total, reach = 0.0, None
    for a, b in sorted(spans):
        if reach is None or a > reach:
            total, reach = total + (b - a).total_seconds(), b
        elif b > reach:
            total, reach = total + (b - reach).total_seconds(), b
    return total


def step_seconds(dagster_url: str) -> dict[str, float]:
    """Seconds per stage of the latest run in Dagster's storage: the time covered by its steps (each from its
    start to its success or failure, as Dagster recorded them), and under "" the time covered by any step."""
    with psycopg.connect(dagster_url) as conn:
        rows = conn.execute(
            "select step_key, dagster_event_type, timestamp from event_logs"
            " where run_id = (select run_id from runs order by create_timestamp desc limit 1)"
            " and dagster_event_type in ('STEP_START', 'STEP_SUCCESS', 'STEP_FAILURE') order by id"
        ).fetchall()
    started, spans = {}, {}
    for step, kind, at in rows:
        if kind == "STEP_START":
            started[step] = at
        elif step in started:
            stage = next((st for prefix, st in STEP_STAGE if step.startswith(prefix)), "marts")
            spans.setdefault(stage, []).append((started.pop(step), at))
    out = {stage: _union(s) for stage, s in spans.items()}
    out[""] = _union([x for s in spans.values() for x in s])
    return out


def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            return next(int(ln.split()[1]) for ln in f if ln.startswith("Pss:"))
    except (OSError, StopIteration, ValueError):
        return 0


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def tree_pss_kib(root: int) -> int:
    """PSS of ``root`` and all its descendants (KiB)."""
    tree, todo, total = _children(), [root], 0
    while todo:
        pid = todo.pop()
        total += _pss_kib(pid)
        todo.extend(tree.get(pid, ()))
    return total


def postgres_pss_kib() -> int:
    """PSS of every postgres process on the machine (the warehouse's server side)."""
    total = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/comm") as f:
                    if f.read().strip() == "postgres":
                        total += _pss_kib(int(entry.name))
            except OSError:
                pass
    return total


_spawn = {"starting": False, "stopped": False}


def stop_on_sigterm() -> None:
    """`kill` of the bench unwinds it (SIGTERM's default ends Python at once), so the running stage is stopped."""

    def stop(*_):
        if _spawn["starting"]:  # unwinding inside Popen would lose the stage's pid: stop once it is known
            _spawn["stopped"] = True
            return
        sys.exit(143)

    signal.signal(signal.SIGTERM, stop)


def run_measured(args: list[str], env: dict, log) -> tuple[int, float, int]:
    """Run ``jx-pipeline args``; return (exit code, wall seconds, peak PSS of its process tree in KiB)."""
    started = time.monotonic()
    # its own process group, stopped with the bench: killed from outside, the bench left Dagster's child running
    _spawn["starting"] = True  # a SIGTERM from here to the `try` below waits for the stage's pid
    try:
        proc = subprocess.Popen(
            [JX, *args], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    except BaseException:
        _spawn["starting"] = False
        raise
    peak, done = 0, threading.Event()

    def sample():
        nonlocal peak
        while not done.wait(0.5):
            peak = max(peak, tree_pss_kib(proc.pid))

    t = threading.Thread(target=sample, daemon=True)
    try:
        _spawn["starting"] = False
        if _spawn["stopped"]:
            sys.exit(143)
        t.start()
        rc = proc.wait()
    finally:
        if proc.poll() is None:  # the bench was interrupted (Ctrl-C, kill): stop the stage's whole tree too
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
        done.set()
    t.join()
    return rc, time.monotonic() - started, peak


def _records(url: str, stage: str, days: list[str]) -> int:
    audit_stage = "staged" if stage == "staged" else "raw"  # later stages read every current record
    sql = "select coalesce(sum(rows_read), 0) from quality.load_audit where stage = %s"
    params: list = [audit_stage]
    if stage in ("raw", "staged"):
        sql += " and partition_key = any(%s)"
        params.append(days)
    with psycopg.connect(url) as conn:
        return int(conn.execute(sql, params).fetchone()[0])


def _has_marts(env: dict) -> bool:
    from jx_pipeline.definitions import defs

    return any(k.path[0] == "mart" for k in defs.resolve_asset_graph().get_all_asset_keys())


def _world_days(world: Path) -> list[str]:
    return sorted({p.name for p in (world / "landing").glob("*/*/*") if p.is_dir()})


def _copy_state(admin_url: str, names: list[str], state: Path, suffix: str, back: bool) -> None:
    """The databases and the state folder saved as ``<name><suffix>`` (``back``: restored from there), so an
    increment can be run again and again from the same initial load."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for name in names:
            src, dst = (name + suffix, name) if back else (name, name + suffix)
            conn.execute(f'drop database if exists "{dst}" with (force)')
            conn.execute(f'create database "{dst}" template "{src}"')
    src, dst = (Path(f"{state}{suffix}"), state) if back else (state, Path(f"{state}{suffix}"))
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst, symlinks=True)


def run_scale(
    scale: float,
    seed: int,
    days: int,
    admin_url: str,
    workdir: Path,
    keep: bool,
    executor: str,
    runs: str,
    snapshot: str = "",
) -> list[dict]:
    tag = f"jx_e2e_{str(scale).replace('.', '')}"
    names = [f"{tag}_wh", f"{tag}_dg", f"{tag}_src"]
    world = workdir / f"world-{scale}-{seed}-{days + 1}"
    state = workdir / tag / "state"
    env = {
        **os.environ,
        "JX_WAREHOUSE_URL": _url(admin_url, names[0]),
        "JX_DAGSTER_STORAGE_URL": _url(admin_url, names[1]),
        "JX_SOURCE_DB_URL": _url(admin_url, names[2]),
        "JX_WORLD_DIR": str(world),
        "JX_STATE_DIR": str(state),
        "JX_PSEUDONYM_SECRET": f"end-to-end-{seed}",
        "PYTHONWARNINGS": "ignore",
    }
    if snapshot == "replay":
        _copy_state(admin_url, names, state, "_pre", back=True)
    else:
        _databases(admin_url, names, create=True)
    log_path = workdir / tag / "log.txt"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    try:
        with log_path.open("w") as log:
            gen = ["world", "generate", "--scale", str(scale), "--seed", str(seed), "--days", str(days + 1),
                   "--out", str(world), "--reuse", "--quiet"]  # fmt: skip
            setup = (("world", gen), ("db", ["db", "up"]),
                     ("reference", ["materialize", "--select", "group:reference"]))  # fmt: skip
            for name, argv in setup if snapshot != "replay" else ():
                rc, secs, peak = run_measured(argv, env, log)
                if rc:
                    raise SystemExit(f"{name} failed at scale {scale}: see {log_path}")
                rows.append({"scale": scale, "phase": "setup", "stage": name, "seconds": round(secs, 1)})
            all_days = _world_days(world)
            phases = [("initial", all_days[:-1]), ("increment", all_days[-1:])]
            marts = _has_marts(env)

            def run(what: tuple, phase: str, days: list[str]) -> tuple[float, int]:
                """Materialize (name, selection, partitioned) over the days; (seconds, peak PSS KiB)."""
                name, select, partitioned = what
                argv = ["materialize", "--executor", executor, "--select", select]
                if partitioned == "day":  # one run for the day, unpartitioned assets with it
                    argv += ["--partition", days[0]]
                elif partitioned:
                    argv += ["--partition-range", f"{days[0]}...{days[-1]}"]
                rc, secs, peak = run_measured(argv, env, log)
                if rc:
                    raise SystemExit(f"{name} ({phase}) failed at scale {scale}: see {log_path}")
                return secs, peak

            for phase, phase_days in phases:
                if phase == "increment" and snapshot == "save":
                    _copy_state(admin_url, names, state, "_pre", back=False)
                if phase == "initial" and snapshot == "replay":
                    continue
                if runs in RUNS:
                    rows += _runs_phase(RUNS[runs], scale, phase, phase_days, env, run)
                    continue
                for stage, select, partitioned in STAGES:
                    if stage == "marts" and not marts:
                        continue
                    secs, peak = run((stage, select, partitioned), phase, phase_days)
                    records = _records(env["JX_WAREHOUSE_URL"], stage, phase_days)
                    rows.append(_row(scale, phase, stage, secs, records, peak))
    finally:
        if not keep:
            _databases(admin_url, names, create=False)
    return rows


def _row(scale: float, phase: str, stage: str, secs: float, records: int, peak_kib: int) -> dict:
    row = {
        "scale": scale,
        "phase": phase,
        "stage": stage,
        "seconds": round(secs, 1),
        "records": records,
        "records_per_s": round(records / secs) if secs and records else None,
        "peak_pss_mib": round(peak_kib / 1024),
        "postgres_pss_mib": round(postgres_pss_kib() / 1024),
    }
    print(json.dumps(row), flush=True)
    return row


def _runs_phase(runs: list[tuple], scale, phase, days, env, run) -> list[dict]:
    """One phase as make demo (two runs) or the daily job (one per landing day) runs it; a row per stage (the
    time its steps covered, summed over the days) and one per run for the time outside any step (process
    start, code location, run bookkeeping). Peak PSS: the largest run's."""
    rows = []
    for what in runs:
        secs, peak, steps = 0.0, 0, {}
        for chunk in [[d] for d in days] if what[2] == "day" else [days]:
            s, p = run(what, phase, chunk)
            secs, peak = secs + s, max(peak, p)
            for stage, step_secs in step_seconds(env["JX_DAGSTER_STORAGE_URL"]).items():
                steps[stage] = steps.get(stage, 0.0) + step_secs
        outside = secs - steps.pop("")
        for stage, step_secs in steps.items():
            records = _records(env["JX_WAREHOUSE_URL"], stage, days)
            rows.append(_row(scale, phase, stage, step_secs, records, peak))
        rows.append(_row(scale, phase, f"({what[0]} run outside steps)", outside, 0, peak))
    return rows


def _table(rows: list[dict]) -> str:
    head = "| scale | phase | stage | seconds | records | records/s | peak PSS MiB | postgres PSS MiB |"
    lines = [head, "|" + "---|" * 8]
    for r in rows:
        if r["phase"] == "setup":
            continue
        lines.append(
            f"| {r['scale']} | {r['phase']} | {r['stage']} | {r['seconds']} | {r['records']:,} | "
            f"{r['records_per_s'] or 0:,} | {r['peak_pss_mib']:,} | {r['postgres_pss_mib']:,} |"
        )
    return "\n".join(lines)


def _ratios(by_scale: dict[float, list[dict]]) -> list[str]:
    out, scales = [], sorted(by_scale)
    for a, b in itertools.pairwise(scales):
        for phase in ("initial", "increment"):
            ta = sum(r["seconds"] for r in by_scale[a] if r["phase"] == phase)
            tb = sum(r["seconds"] for r in by_scale[b] if r["phase"] == phase)
            ra = sum(r["records"] for r in by_scale[a] if r["phase"] == phase and r["stage"] == "raw")
            rb = sum(r["records"] for r in by_scale[b] if r["phase"] == phase and r["stage"] == "raw")
            if ta and ra:
                out.append(
                    f"{phase} {a} -> {b}: time x{tb / ta:.2f} for records x{rb / ra:.2f} ({ta:.0f} s -> {tb:.0f} s)"
                )
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scales", type=float, nargs="+", required=True)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--days", type=int, default=2, help="landing days of the initial load (+1 for the increment)"
    )
    p.add_argument("--admin-url", required=True, help="a database URL on the server (to create databases)")
    p.add_argument("--workdir", help="where worlds and logs go (default: a new temporary folder)")
    p.add_argument("--keep", action="store_true", help="keep the databases of each scale")
    p.add_argument(
        "--executor",
        choices=["in_process", "multiprocess"],
        default="in_process",
        help="where a stage's steps run: one process, or one per step on every core (default in_process)",
    )
    p.add_argument(
        "--runs",
        choices=["stages", *RUNS],
        default="stages",
        help="one `jx-pipeline materialize` per stage (its peak memory apart), make demo's two runs per phase"
        " (ingest; entities, links and marts), or one run per phase as the daily job; each stage timed by its"
        " steps' events (default stages)",
    )
    p.add_argument(
        "--snapshot",
        choices=["save", "replay"],
        default="",
        help="save: copy the databases and state after the initial load (<db>_pre, state_pre); replay: start"
        " from that copy and run the increment only, to measure it again",
    )
    args = p.parse_args()
    stop_on_sigterm()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="end_to_end_"))
    by_scale = {
        s: run_scale(
            s,
            args.seed,
            args.days,
            args.admin_url,
            workdir,
            args.keep,
            args.executor,
            args.runs,
            args.snapshot,
        )
        for s in args.scales
    }
    rows = [r for s in args.scales for r in by_scale[s]]
    print(_table(rows))
    for r in rows:
        if r["phase"] == "setup":
            print(
                f"setup {r['scale']} {r['stage']}: {r['seconds']} s (world generation is not pipeline time)"
            )
    for line in _ratios(by_scale):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
