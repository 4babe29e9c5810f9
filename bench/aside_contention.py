"""Benchmark: what a blocking check's count read aside (lib/aside.py) costs the step it runs beside.

A step (linking, identities, the marts) works on one connection, mostly in one server process, while its check's
independent count runs on a second connection in the step's snapshot. On this 2-core machine the count has one
core to itself only if it runs in one process: with parallel workers it takes part of the step's core too. This
measures, on a loaded warehouse, a single-process stand-in for the step's work (a distinct count over
linking's memory, ``staged._link_input``) alone, then with the marts' real aside read beside it
(``checks.population_persons``: identity_member joined with entity_link) at the aside's worker count
(``aside.WORKERS``) and at the server's parallel setting, alternating; and prints the step's time and the
aside's, each variant's ratio against the step alone. Read only; run it on an otherwise idle server.

    .venv/bin/python bench/aside_contention.py --warehouse URL --repeat 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import psycopg

from jx_pipeline.catalog import load_catalog
from jx_pipeline.defs.mart import checks
from jx_pipeline.lib import aside, settings
from jx_pipeline.lib.pg import connect

STEP = "select count(distinct (feed_id, record_key)) from staged._link_input where fp % 3 = 0"  # one process


def once(url: str, workers: int | None) -> dict:
    """The step's stand-in timed, with the aside read beside it at ``workers`` (None: no aside)."""
    catalog = load_catalog()
    took: dict = {}

    def read(conn: psycopg.Connection) -> int:
        started = time.perf_counter()
        n = checks.population_persons(conn, catalog, from_links=True)[0]
        took["aside_s"] = round(time.perf_counter() - started, 2)
        return n

    with connect(url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with conn.transaction():
            conn.execute("set local max_parallel_workers_per_gather = 0")
            conn.execute("set local jit = off")
            started = time.perf_counter()
            beside = None
            if workers is not None:
                aside.WORKERS = workers
                beside = aside.Aside(conn, read)
            conn.execute(STEP).fetchone()
            took["step_s"] = round(time.perf_counter() - started, 2)
            if beside is not None:
                beside.result(conn)  # the step waits for a slower aside
                took["step_with_wait_s"] = round(time.perf_counter() - started, 2)
                took["aside_error"] = beside.error
    return took


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--warehouse", help="warehouse URL (default: this checkout's)")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    url = args.warehouse or settings.resolve_urls()[0]
    with connect(url) as conn:
        server = int(conn.execute("show max_parallel_workers_per_gather").fetchone()[0])
    ours = aside.WORKERS
    variants = [
        ("step alone", None),
        (f"aside with {server} workers", server),
        (f"aside with {ours} workers (ours)", ours),
    ]
    runs: dict[str, list[dict]] = {name: [] for name, _ in variants}
    try:
        once(url, ours)  # warm the caches of both reads
        for _ in range(args.repeat):
            for name, workers in variants:
                r = once(url, workers)
                runs[name].append(r)
                print(json.dumps({"variant": name, **r}), flush=True)
    finally:
        aside.WORKERS = ours
    alone = statistics.median(r["step_s"] for r in runs["step alone"])
    print("| variant | step s (median) | × step alone | step + its wait for the aside s | aside s |")
    print("|---|---|---|---|---|")
    for name, rs in runs.items():
        step = statistics.median(r["step_s"] for r in rs)
        cols = [
            f"{statistics.median(r[k] for r in rs):.2f}" if k in rs[0] else ""
            for k in ("step_with_wait_s", "aside_s")
        ]
        print(f"| {name} | {step:.2f} | {step / alone:.2f} | {cols[0]} | {cols[1]} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
