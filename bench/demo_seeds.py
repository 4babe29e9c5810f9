"""Run the `make demo` pipeline for several seeds and scales; print pass/fail and timings per seed.

`make demo` must succeed for any seed at scales 0.001-0.1 (issue 10). Each seed gets fresh databases (warehouse,
Dagster storage, sources) created on the server of ``--admin-url`` and dropped afterwards (``--keep`` keeps
them), so a run never touches the demo's own `jx_warehouse` / `jx_dagster`. The steps are the demo's: world
generate, `db up` (migrations), materialize reference, ingest over the world's days, entities + linking.

    .venv/bin/python bench/demo_seeds.py --seeds 1 3 11 --scale 0.001 --days 2 \
        --admin-url "$(.venv/bin/jx-pipeline db url | sed 's,/jx_warehouse$,/postgres,')"

The code run is the jx_pipeline that Python imports: to try a snapshot (`git archive HEAD | tar -x -C DIR`) while
the checkout changes, run from another folder with PYTHONPATH=DIR and JX_PROJECT_ROOT=DIR.

Measured 2026-11-28 (2 shared cores, load ~10; wall seconds world/db/reference/ingest/linking), all passed:
seed 11 at 0.001 (114/41/74/1471/141; failed before the exact completeness allowance: ybj_mbjd), seeds 1
(77/26/36/753/95), 3 (56/19/30/525/26), 23 (40/11/15/802/68), 99 (39/13/15/805/66) at 0.001, 2 days;
seed 7 at 0.01, 2 days (274/27/43/1760/290); seed 11 at 0.01, 2 days, load ~3 (40/5/8/421/79).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

JX = str(Path(sys.executable).with_name("jx-pipeline"))
INGEST = "tag:jx/ingest=feed or tag:jx/staged=feed or key:quality/scorecard"
STEPS = [
    ("reference", ["materialize", "--select", "group:reference"]),
    ("ingest", ["materialize", "--select", INGEST, "--partition-range", "world"]),
    ("linking", ["materialize", "--select", "group:entities or group:linking"]),
]


def _url(admin_url: str, db: str) -> str:
    return admin_url.rsplit("/", 1)[0] + "/" + db


def _databases(admin_url: str, names: list[str], create: bool) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for name in names:
            conn.execute(f'drop database if exists "{name}" with (force)')
            if create:
                conn.execute(f'create database "{name}"')


def run_seed(
    seed: int, scale: float, days: int, admin_url: str, workdir: Path, prefix: str, keep: bool
) -> dict:
    tag = f"{prefix}_s{seed}_{str(scale).replace('.', '')}"
    names = [f"{tag}_wh", f"{tag}_dg", f"{tag}_src"]
    _databases(admin_url, names, create=True)
    world = workdir / tag / "world"
    shutil.rmtree(
        workdir / tag, ignore_errors=True
    )  # this script's own folder of that seed, from an earlier run
    env = {
        **os.environ,
        "JX_WAREHOUSE_URL": _url(admin_url, names[0]),
        "JX_DAGSTER_STORAGE_URL": _url(admin_url, names[1]),
        "JX_SOURCE_DB_URL": _url(admin_url, names[2]),
        "JX_WORLD_DIR": str(world),
        "JX_STATE_DIR": str(workdir / tag / "state"),  # Dagster artifacts and the pseudonym key of this run
        "JX_PSEUDONYM_SECRET": f"demo-seeds-{seed}",
    }
    result = {"seed": seed, "scale": scale, "days": days, "ok": True, "seconds": {}}
    steps = [
        ("world", ["world", "generate", "--scale", str(scale), "--seed", str(seed), "--days", str(days),
                   "--out", str(world), "--quiet"]),
        ("db", ["db", "up"]),
        *STEPS,
    ]  # fmt: skip
    log = workdir / tag / "log.txt"
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        with log.open("w") as out:
            for name, args in steps:
                started = time.monotonic()
                rc = subprocess.call([JX, *args], env=env, stdout=out, stderr=subprocess.STDOUT)
                result["seconds"][name] = round(time.monotonic() - started, 1)
                if rc != 0:
                    result.update(ok=False, failed_step=name, log=str(log))
                    break
    finally:
        if not keep:
            _databases(admin_url, names, create=False)
    if not result["ok"]:
        text = log.read_text(errors="replace").splitlines()
        result["errors"] = [ln for ln in text if "Error" in ln or "failed" in ln.lower()][-8:]
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", required=True)
    p.add_argument("--scale", type=float, default=0.001)
    p.add_argument("--days", type=int, default=2)
    p.add_argument("--admin-url", required=True, help="a database URL on the server (to create databases)")
    p.add_argument("--workdir", help="where worlds and logs go (default: a new temporary folder)")
    p.add_argument("--prefix", default="jx_demo_seeds", help="prefix of the databases created")
    p.add_argument("--keep", action="store_true", help="keep each seed's databases")
    args = p.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="demo_seeds_"))
    results = []
    for seed in args.seeds:
        r = run_seed(seed, args.scale, args.days, args.admin_url, workdir, args.prefix, args.keep)
        results.append(r)
        print(json.dumps(r, ensure_ascii=False), flush=True)
    failed = [r["seed"] for r in results if not r["ok"]]
    print(f"{len(results) - len(failed)}/{len(results)} seeds passed at scale {args.scale}" + (
        f"; failed: {failed}" if failed else ""))  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
