"""Benchmark: a day's records gathered feed by feed by each staged partition's ``record_key`` index
(``pg.by_key``, as linking and identity resolution now gather them) against the planner's own choice (it hashed
every row of every feed), on a loaded warehouse, alternating, in the same run.

The day's keys are those of one landing day's staged partitions (the latest by default); each round reads every
feed's current versions of them as linking does (``linking._select``) and counts them, so both ways must count
the same.

    .venv/bin/python bench/gather_by_key.py --warehouse URL --repeat 3
"""

from __future__ import annotations

import argparse
import os
import time

from psycopg import sql

from jx_pipeline.catalog import load_catalog
from jx_pipeline.lib import linking, staging
from jx_pipeline.lib.pg import BY_KEY, connect, settings_for


def _keys(conn, catalog, day: str | None) -> str:
    """The working table ``bench_keys`` (feed_id, record_key) of the day's staged rows; returns the day."""
    if day is None:
        day = conn.execute(
            "select max(partition_key) from quality.load_audit where stage = 'staged'"
        ).fetchone()[0]
    conn.execute(
        "create temp table bench_keys (feed_id text, record_key text, primary key (feed_id, record_key))"
    )
    for feed in catalog.feeds:
        table = staging.staged_table(feed)
        if conn.execute("select to_regclass(%s)", (table.as_string(conn),)).fetchone()[0] is None:
            continue
        conn.execute(
            sql.SQL(
                "insert into bench_keys select %s, record_key from {} where _partition = %s on conflict do nothing"
            ).format(table),
            (feed.id, day),
        )
    conn.execute("analyze bench_keys")
    return day


def _gather(conn, catalog) -> int:
    found = 0
    for feed in catalog.feeds:
        select = linking._select(conn, feed, "bench_keys")
        if select is not None:
            found += conn.execute(sql.SQL("select count(*) from ({}) x").format(select)).fetchone()[0]
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warehouse", default=os.environ.get("JX_WAREHOUSE_URL"), help="the warehouse's URL")
    ap.add_argument("--repeat", type=int, default=3, help="rounds of both ways")
    ap.add_argument("--day", help="the landing day whose keys are read (default: the latest staged)")
    args = ap.parse_args()
    catalog = load_catalog()
    with connect(args.warehouse) as conn:
        day = _keys(conn, catalog, args.day)
        keys, feeds = conn.execute("select count(*), count(distinct feed_id) from bench_keys").fetchone()
        print(f"day {day}: {keys:,} keys of {feeds} feeds")
        for n in range(args.repeat):
            t0 = time.perf_counter()
            hashed = _gather(conn, catalog)
            t1 = time.perf_counter()
            with settings_for(conn, **BY_KEY):
                by_key = _gather(conn, catalog)
            t2 = time.perf_counter()
            if hashed != by_key:
                raise SystemExit(f"the two ways found {hashed} and {by_key} records")
            print(
                f"round {n + 1}: planner's choice {t1 - t0:.2f} s, by key {t2 - t1:.2f} s"
                f" ({hashed:,} records, {(t1 - t0) / (t2 - t1):.1f}x)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
