"""Benchmark: linking's parsing spread over Celery workers — one worker, then two, alternating, on a warehouse
that holds staged data and the gazetteer (a `make demo` one).

Each run empties the parse cache (it names another parser, so every department's step reads all its partitions
and parses every text again), then runs the departments' steps ahead of linking (`core/address_texts/<dept>`,
`jx-pipeline materialize --executor celery`). A Celery worker parses on one core (it may not fork), as one
machine of one core would: two workers are two such machines. Printed per run: the run's wall time, the time its
steps covered (from Dagster's events), texts parsed and texts/s; then the ratio of one worker's time to two's.
The caches the runs leave must be equal.

    .venv/bin/python bench/texts_workers.py --workers 1 2 --repeat 2
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo_seeds import JX
from end_to_end import step_seconds

from jx_pipeline.lib import settings

SELECT = "tag:jx/texts=department"
DIGEST = (
    "select count(*), md5(string_agg(concat_ws('|', text_md5, entity_id, fuzzy, outside, village_code), ','"
    " order by text_md5)) from staged._parse_cache"
)


def _cli(*args: str) -> float:
    started = time.monotonic()
    subprocess.run([JX, *args], check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def run(n: int, warehouse: str, dagster: str) -> dict:
    _cli("workers", "down")
    _cli("workers", "up", "--count", str(n))
    with psycopg.connect(warehouse, autocommit=True) as conn:
        conn.execute("update staged._parse_cache_key set key = 'bench: another parser'")
    wall = _cli("materialize", "--executor", "celery", "--select", SELECT)
    with psycopg.connect(warehouse) as conn:
        texts, digest = conn.execute(DIGEST).fetchone()
    steps = step_seconds(dagster)[""]
    return {"workers": n, "wall": wall, "steps": steps, "texts": texts, "digest": digest}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts, run in turn")
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args()
    warehouse, dagster = settings.resolve_urls()
    env_workers = os.environ.get("JX_WORKERS")
    print(f"warehouse {warehouse.rsplit('/', 1)[-1]}; JX_WORKERS={env_workers or 'unset'}")
    results = []
    try:
        for i in range(args.repeat):
            for n in args.workers:
                r = run(n, warehouse, dagster)
                results.append(r)
                print(
                    f"round {i + 1}: {n} worker(s): run {r['wall']:.1f} s, steps {r['steps']:.1f} s,"
                    f" {r['texts']:,} texts, {r['texts'] / r['steps']:,.0f} texts/s",
                    flush=True,
                )
    finally:
        _cli("workers", "down")
    assert len({r["digest"] for r in results}) == 1, "the runs left different caches"
    best = {n: min(r["steps"] for r in results if r["workers"] == n) for n in args.workers}
    base = best[args.workers[0]]
    for n, secs in best.items():
        print(
            f"{n} worker(s): best steps {secs:.1f} s; {args.workers[0]} worker(s) / {n}: {base / secs:.2f}x"
        )


if __name__ == "__main__":
    main()
