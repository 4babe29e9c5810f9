"""Benchmark: Dagster's per-run and per-event overhead on small partitions, with the storage pool of
``lib/storage_pool.py`` and without it (``JX_STORAGE_POOL=off``: a new Postgres connection per event, as
dagster-postgres ships), alternating in the same run on the same warehouse.

Uses a database prefix of its own (default ``bench``) and a world folder; loads the world's source databases and
reference data first. Each measurement is a whole `jx-pipeline materialize` of the selection over the world's days.

    .venv/bin/python bench/run_overhead.py --world /tmp/w001 --select 'group:cl or group:czj or group:fgw' --repeat 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

JX = str(Path(sys.executable).parent / "jx-pipeline")


def _jx(args: list[str], env: dict) -> float:
    started = time.monotonic()
    done = subprocess.run([JX, *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"jx-pipeline {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return time.monotonic() - started


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--world", required=True, help="a world folder (jx-pipeline world generate --out …)")
    p.add_argument("--select", default="tag:jx/ingest=feed or tag:jx/staged=feed")
    p.add_argument("--prefix", default="bench", help="JX_DB_PREFIX of the databases used")
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args()
    manifest = json.loads((Path(args.world) / "manifest.json").read_text())
    env = {**os.environ, "JX_DB_PREFIX": args.prefix, "JX_WORLD_DIR": str(Path(args.world).resolve())}
    _jx(["db", "up"], env)
    gen = ["world", "generate", "--out", args.world, "--reuse", "--quiet"]
    gen += [
        "--scale",
        str(manifest["scale"]),
        "--seed",
        str(manifest["seed"]),
        "--days",
        str(manifest["days"]),
    ]
    _jx(gen, env)  # up to date: only loads the source databases of the prefix
    _jx(["materialize", "--select", "group:reference"], env)
    run = ["materialize", "--select", args.select, "--partition-range", "world"]
    _jx(run, env)  # warm: tables and partitions exist, as in a daily run
    times: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(args.repeat):
        for mode in ("off", "on"):
            times[mode].append(_jx(run, {**env, "JX_STORAGE_POOL": mode}))
    best = {m: min(t) for m, t in times.items()}
    print(
        f"selection: {args.select!r} over the world's days ({manifest['scale']} scale, seed {manifest['seed']})"
    )
    for mode, label in (("off", "a connection per event (as shipped)"), ("on", "pooled (ours)")):
        print(f"  {label:40s} best {best[mode]:6.1f} s   runs {', '.join(f'{t:.1f}' for t in times[mode])}")
    print(f"  pooled / as shipped: {best['on'] / best['off']:.2f}")
    print(json.dumps({"select": args.select, "times": times, "ratio": round(best["on"] / best["off"], 3)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
